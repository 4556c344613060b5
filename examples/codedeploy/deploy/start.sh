#!/bin/sh
# ApplicationStart: (re)start the off color with the new release. The live
# color keeps serving; nothing here touches the load balancer.
set -eu
BUNDLE=$(cd "$(dirname "$0")/.." && pwd)
# Two steps: a failing `oops` inside eval "$(...)" would go unnoticed.
env=$(oops -C "$BUNDLE" hook env)
eval "$env"
echo "starting $OOPS_APPLICATION@$OOPS_COLOR on port $OOPS_PORT"
systemctl enable --quiet "$OOPS_APPLICATION@$OOPS_COLOR"
systemctl restart "$OOPS_APPLICATION@$OOPS_COLOR"
