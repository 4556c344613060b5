#!/usr/bin/env bash
# make demo: oops end to end on this machine, no cloud, nothing but Go.
#
# Builds examples/hello for three commits, publishes them to a directory
# store, starts `oops proxy`, deploys the first, then the second, shows
# `oops list` and `oops status`, rolls back, and after each step asks the
# proxy over real HTTP which release answers. Everything lives in .demo/
# and is stopped and removed at the end, even on failure or Ctrl-C
# (KEEP=1 keeps it to poke around).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO=${DEMO_DIR:-$ROOT/.demo}
GO=${GO:-go}

if [ -t 1 ]; then B=$'\033[1m'; D=$'\033[2m'; R=$'\033[0m'; else B=; D=; R=; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$R"; }
run() { printf '%s$ %s%s\n' "$D" "$*" "$R"; "$@"; }

proxy_pid=
cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [ -n "$proxy_pid" ]; then
		kill "$proxy_pid" 2>/dev/null
		wait "$proxy_pid" 2>/dev/null
	fi
	# The apps run detached in their own sessions (that is the point):
	# stop each one's process group by the pid oops recorded.
	for f in "$DEMO"/app/.oops/local/blue*.json "$DEMO"/app/.oops/local/green*.json; do
		[ -f "$f" ] || continue
		pid=$(sed -n 's/^ *"pid": *\([0-9][0-9]*\).*/\1/p' "$f")
		[ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null
	done
	if [ $rc -ne 0 ] && [ -f "$DEMO/proxy.log" ]; then
		echo "--- proxy log:" >&2
		tail -n 20 "$DEMO/proxy.log" >&2
	fi
	if [ -n "${KEEP:-}" ]; then
		echo "kept $DEMO (KEEP=1); the apps were stopped"
	else
		rm -rf "$DEMO"
	fi
	[ $rc -eq 0 ] && printf '\n%sdemo done, cleaned up.%s\n' "$B" "$R"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nothing listens on, from $1 up.
free_port() {
	local p=$1
	while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
	echo "$p"
}

# GET http://127.0.0.1:$1$2 with bash alone (no curl needed); prints the body.
get() {
	exec 3<>"/dev/tcp/127.0.0.1/$1"
	printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "${2:-/}" >&3
	sed '1,/^\r*$/d' <&3
	exec 3<&-
}

ask() {
	printf '%s$ GET http://%s/%s  ->  %s' "$D" "$LISTEN" "$R" "$B"
	get "$PUBLIC_PORT" /
	printf '%s' "$R"
}

rm -rf "$DEMO"
mkdir -p "$DEMO/bin" "$DEMO/app" "$DEMO/build"

step "build oops"
run "$GO" build -o "$DEMO/bin/oops" "$ROOT/cmd/oops"
export PATH="$DEMO/bin:$PATH"
cd "$DEMO/app"

PUBLIC_PORT=$(free_port 18080)
BLUE_PORT=$(free_port $((PUBLIC_PORT + 1)))
GREEN_PORT=$(free_port $((BLUE_PORT + 1)))
LISTEN=127.0.0.1:$PUBLIC_PORT

step "three commits of examples/hello, each built and packed as a release (the third fails its health check)"
if command -v git >/dev/null 2>&1; then
	git init -q .
	git config user.email demo@example.com
	git config user.name "oops demo"
	cp "$ROOT/examples/hello/main.go" main.go
	git add main.go && git commit -q -m "hello, first version"
	git commit -q --allow-empty -m "hello, second version"
	git commit -q --allow-empty -m "hello, third version (its health check fails)"
	V1=$(git rev-parse HEAD~2)
	V2=$(git rev-parse HEAD~1)
	V3=$(git rev-parse HEAD)
	git log --oneline
else
	# No git: made-up commits (full SHAs need no repository).
	V1=1111111111111111111111111111111111111111
	V2=2222222222222222222222222222222222222222
	V3=3333333333333333333333333333333333333333
fi
for v in "$V1" "$V2" "$V3"; do
	flags="-X main.commit=$v"
	[ "$v" = "$V3" ] && flags="$flags -X main.healthy=false"
	mkdir -p "$DEMO/build/$v"
	(cd "$ROOT" && "$GO" build -ldflags "$flags" -o "$DEMO/build/$v/hello" ./examples/hello)
	tar -czf "$DEMO/build/hello-$v.tar.gz" -C "$DEMO/build/$v" hello
done

cat >.oopsrc <<EOF
{
  "application-name": "hello",
  "store": ".oops",
  "target": "local",
  "listen": "$LISTEN",
  "blue-port": $BLUE_PORT,
  "green-port": $GREEN_PORT,
  "command": ["./hello"],
  "health-path": "/healthcheck",
  "drain-timeout": "5s"
}
EOF
run cat .oopsrc

step "publish them to a directory store"
for v in "$V1" "$V2" "$V3"; do
	run oops publish "$DEMO/build/hello-$v.tar.gz" --commit "$v"
done
run oops list

step "start the proxy (in the background; its log is in .demo/proxy.log)"
printf '%s$ oops proxy &%s\n' "$D" "$R"
oops proxy >"$DEMO/proxy.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 100); do
	[ -S .oops/local/proxy.sock ] && break
	kill -0 "$proxy_pid" 2>/dev/null || { cat "$DEMO/proxy.log" >&2; exit 1; }
	sleep 0.1
done
[ -S .oops/local/proxy.sock ] || { echo "the proxy did not start" >&2; exit 1; }
printf '%s$ GET http://%s/%s  ->  %s' "$D" "$LISTEN" "$R" "$B"
get "$PUBLIC_PORT" / | head -n 1
printf '%s(nothing deployed yet)\n' "$R"

step "deploy the first release: it goes to the off color, then traffic switches"
run oops deploy "${V1:0:7}" --yes -m "first release"
ask

step "deploy the second: the first keeps running on the other color"
run oops deploy "${V2:0:7}" --yes -m "second release"
ask
run oops status
run oops list

step "roll back: one switch in the proxy, no redeploy"
run oops rollback --yes -m "demo: the second release is bad"
ask
run oops status

step "and forward again (the second release is still warm on the off color)"
run oops deploy "${V2:0:7}" --yes --force -m "demo: it was fine after all"
ask

step "a release that never gets healthy is refused: it is stopped, traffic stays"
printf '%s$ oops deploy %s --yes --timeout 3s%s\n' "$D" "${V3:0:7}" "$R"
if oops deploy "${V3:0:7}" --yes --timeout 3s; then
	echo "the broken release was deployed: that should not happen" >&2
	exit 1
else
	printf '%s(exit %d: deployment failed, traffic untouched)%s\n' "$D" $? "$R"
fi
ask
if oops history --help >/dev/null 2>&1; then
	step "what happened, as history recorded it"
	run oops history
fi
