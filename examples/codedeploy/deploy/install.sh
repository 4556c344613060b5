#!/bin/sh
# AfterInstall: copy this release into the off color's folder,
# /opt/<application>/<color>, with the environment its service reads.
# (OOPS_APPS_DIR and SYSTEMD_UNIT_DIR move /opt and the unit folder: tests.)
set -eu
BUNDLE=$(cd "$(dirname "$0")/.." && pwd)
# Two steps: a failing `oops` inside eval "$(...)" would go unnoticed.
env=$(oops -C "$BUNDLE" hook env)
eval "$env"
dir=${OOPS_APPS_DIR:-/opt}/$OOPS_APPLICATION/$OOPS_COLOR
echo "installing ${OOPS_COMMIT:-?} on $OOPS_COLOR (port $OOPS_PORT) in $dir"
rm -rf "$dir.new"
mkdir -p "$dir.new"
cp -a "$BUNDLE"/. "$dir.new"/
cat > "$dir.new/oops.env" <<ENV
PORT=$OOPS_PORT
OOPS_COLOR=$OOPS_COLOR
OOPS_COMMIT=$OOPS_COMMIT
ENV
rm -rf "$dir.old"
if [ -d "$dir" ]; then mv "$dir" "$dir.old"; fi
mv "$dir.new" "$dir"
# One systemd template serves both colors: <application>@blue, <application>@green.
unit=${SYSTEMD_UNIT_DIR:-/etc/systemd/system}/$OOPS_APPLICATION@.service
if ! cmp -s "$BUNDLE/deploy/app@.service" "$unit"; then
  cp "$BUNDLE/deploy/app@.service" "$unit"
  systemctl daemon-reload
fi
