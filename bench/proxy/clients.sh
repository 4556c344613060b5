#!/usr/bin/env bash
# Real clients (curl, Node) against the same app directly, through nginx and
# through the oops proxy, side by side: forwarding headers, Expect:
# 100-continue, early answers to uploads, a hung app, and timing. Prints one
# row per check and marks where nginx and oops differ. Opt-in, not part of
# make test:
#
#   bash bench/proxy/clients.sh            # N=200 uploads per proxy by default
#   N=1000 bash bench/proxy/clients.sh
#   OOPS_BIN=/path/to/older/oops bash bench/proxy/clients.sh
#
# Needs go and curl; node for the Node rows and nginx for the nginx column
# (scripts/deps.sh bench installs nginx); what is missing is skipped with a
# message. Everything listens on 127.0.0.1.
#
# nginx runs the configuration most guides give a reverse proxy (below);
# what it does with X-Forwarded-* is that configuration's choice.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-200}
TIMEOUT=${TIMEOUT:-3s} # upstream-timeout and nginx's proxy_read_timeout

have() { command -v "$1" >/dev/null 2>&1; }
have go || { echo "clients.sh: go is required" >&2; exit 1; }
have curl || { echo "clients.sh: curl is required" >&2; exit 1; }
NGINX=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
[ -n "$NGINX" ] || echo "clients.sh: nginx not installed (scripts/deps.sh bench): no nginx column" >&2
have node || echo "clients.sh: node not installed: no Node rows" >&2

tmp=$(mktemp -d)
chmod 755 "$tmp" # nginx's workers (user nobody when run as root) write body files here
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# OOPS_BIN: an oops binary to compare (another version) instead of this tree's.
if [ -n "${OOPS_BIN:-}" ]; then cp "$OOPS_BIN" "$tmp/oops"; else go build -o "$tmp/oops" ./cmd/oops; fi
go build -o "$tmp/clientapp" ./bench/proxy/clientapp
port() { "$tmp/clientapp" -freeport; }
wait_up() {
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$1/healthcheck" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "clients.sh: $1 did not come up" >&2
  return 1
}

APP=$(port)
"$tmp/clientapp" -port "$APP" >/dev/null &
pids+=($!)
wait_up "http://127.0.0.1:$APP"

# oops proxy with the app as its live (blue) color; nothing is deployed.
OOPS=$(port)
mkdir -m 700 "$tmp/site"
# Versions before upstream-timeout refuse the key: they keep their default.
extra=", \"upstream-timeout\": \"$TIMEOUT\""
grep -aq upstream-timeout "$tmp/oops" || extra=""
cat >"$tmp/site/.oopsrc" <<EOF
{"application-name": "clients", "store": "releases", "target": "local",
 "listen": "127.0.0.1:$OOPS", "blue-port": $APP, "green-port": $(port)$extra}
EOF
(cd "$tmp/site" && exec "$tmp/oops" proxy --no-start 2>"$tmp/oops.log") &
pids+=($!)
wait_up "http://127.0.0.1:$OOPS"

targets=("direct http://127.0.0.1:$APP" "oops http://127.0.0.1:$OOPS")
if [ -n "$NGINX" ]; then
  NG=$(port)
  mkdir -p "$tmp/nginx"
  cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  client_max_body_size 0;
  upstream app { server 127.0.0.1:$APP; keepalive 16; }
  server {
    listen 127.0.0.1:$NG;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Host \$host;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_read_timeout $TIMEOUT;
    }
  }
}
EOF
  "$NGINX" -e stderr -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>"$tmp/nginx/stderr" &
  pids+=($!)
  wait_up "http://127.0.0.1:$NG"
  targets=("direct http://127.0.0.1:$APP" "nginx http://127.0.0.1:$NG" "oops http://127.0.0.1:$OOPS")
fi

head -c $((2 << 20)) /dev/zero >"$tmp/2MiB"
head -c $((16 << 20)) /dev/zero >"$tmp/16MiB"
FWD=(-H 'X-Forwarded-For: 203.0.113.9' -H 'X-Forwarded-Host: shop.example' -H 'X-Forwarded-Proto: https' -H 'Forwarded: for=203.0.113.9;proto=https')

# Each check prints one short line for a base URL.
header_line() { grep "^$1:" | cut -d' ' -f2- | tr -d '\n'; }
curl_header() { curl -sS --max-time 10 "${FWD[@]}" "$2/headers" | header_line "$1"; }
check_xfp() { curl_header X-Forwarded-Proto "$1"; }
check_xfh() { curl_header X-Forwarded-Host "$1"; }
check_xff() { curl_header X-Forwarded-For "$1"; }
check_fwd() { curl_header Forwarded "$1"; }
check_plain_xfp() { curl -sS --max-time 10 "$1/headers" | header_line X-Forwarded-Proto; }
check_expect_curl() {
  # curl sends Expect: 100-continue for bodies over 1 MiB and waits 1s.
  curl -sS --max-time 30 -o "$tmp/out" -w '%{http_code} %{time_total}s' --data-binary @"$tmp/2MiB" "$1/upload" || true
  printf ' %s' "$(tr -d '\n' <"$tmp/out")"
}
check_expect_node() {
  # A Node client that sends the body only once it gets its 100 Continue.
  node -e '
const http = require("http"), t0 = Date.now();
const body = Buffer.alloc(2 << 20);
const req = http.request(process.argv[1] + "/upload", {method: "POST", headers: {"Expect": "100-continue", "Content-Length": body.length}, timeout: 10000});
req.on("continue", () => req.end(body));
req.on("timeout", () => { console.log("no answer in 10s"); process.exit(0); });
req.on("error", e => { console.log("error " + e.code); process.exit(0); });
req.on("response", r => { let s = ""; r.on("data", d => s += d); r.on("end", () => console.log(r.statusCode + " " + ((Date.now() - t0) / 1000) + "s " + s.trim())); });
' "$1"
}
check_node_xfp() {
  node -e '
fetch(process.argv[1] + "/headers", {headers: {"x-forwarded-proto": "https"}}).then(r => r.text()).then(t => {
  const l = t.split("\n").find(l => l.startsWith("X-Forwarded-Proto:")); console.log(l.slice(19)); }).catch(e => console.log("error " + e.message));
' "$1"
}
check_hang() { curl -sS --max-time 20 -o /dev/null -w '%{http_code} %{time_total}s' "$1/hang" 2>/dev/null || echo " (no answer)"; }
check_early_curl() {
  # N uploads of 16 MiB, 8 at a time, to an app that answers 413 at once.
  seq "$N" | xargs -P 8 -I{} sh -c 'curl -sS -o /dev/null -w "%{http_code}\n" --data-binary @"$2" "$1/toolarge" 2>/dev/null || echo "curl-exit-$?"' _ "$1" "$tmp/16MiB" |
    sort | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep = ", "}'
}
check_early_node() {
  node -e '
const http = require("http"), n = +process.argv[2], body = Buffer.alloc(16 << 20);
let done = 0, running = 0, next = 0; const counts = {};
function one() {
  if (next >= n) return; next++; running++;
  let settled = false;
  const fin = k => { if (settled) return; settled = true; counts[k] = (counts[k] || 0) + 1; running--; done++;
    if (done === n) console.log(Object.entries(counts).map(([k, v]) => k + " x" + v).join(", ")); else one(); };
  const req = http.request(process.argv[1] + "/toolarge", {method: "POST", agent: false, headers: {"Content-Length": body.length}});
  req.on("response", r => { r.resume(); r.on("end", () => fin(String(r.statusCode))); });
  req.on("error", e => fin(e.code || "error"));
  req.end(body);
}
for (let i = 0; i < 8; i++) one();
' "$1" "$N"
}
check_get_timing() {
  node -e '
const http = require("http"), agent = new http.Agent({keepAlive: true, maxSockets: 1});
const n = 2000, t0 = process.hrtime.bigint(); let i = 0;
function one() {
  http.get(process.argv[1] + "/", {agent}, r => { r.resume(); r.on("end", () => {
    if (++i < n) return one();
    console.log((Number(process.hrtime.bigint() - t0) / 1e3 / n).toFixed(0) + " us/request"); agent.destroy(); }); });
}
one();
' "$1"
}

row() {
  local name=$1 fn=$2 compare=${3:-yes} line out nginx_out="" oops_out=""
  line=$(printf '%-34s' "$name")
  for t in "${targets[@]}"; do
    local label=${t%% *} url=${t#* }
    out=$("$fn" "$url" 2>&1 | tr '\r\n' '  ' | cut -c1-60) || true
    [ "$label" = nginx ] && nginx_out=$out
    [ "$label" = oops ] && oops_out=$out
    line+=$(printf ' | %-28s' "$out")
  done
  if [ "$compare" = yes ] && [ -n "$NGINX" ] && [ "${nginx_out%% *}" != "${oops_out%% *}" ]; then line+="  <- differs"; fi
  echo "$line"
}

header=$(printf '%-34s' check)
for t in "${targets[@]}"; do header+=$(printf ' | %-28s' "${t%% *}"); done
echo "$header"
echo "client sends X-Forwarded-* (https, 203.0.113.9, shop.example); the proxies see it from 127.0.0.1"
row "curl: X-Forwarded-Proto" check_xfp
row "curl: X-Forwarded-Host" check_xfh
row "curl: X-Forwarded-For" check_xff
row "curl: Forwarded" check_fwd
row "curl, no headers: X-Forwarded-Proto" check_plain_xfp
have node && row "node fetch: X-Forwarded-Proto" check_node_xfp
echo "the app never sends 100 Continue"
row "curl: 2 MiB upload, Expect" check_expect_curl
have node && row "node: Expect, waits for 100" check_expect_node
echo "the app answers 413 before reading a 16 MiB upload ($N uploads; anything but 413 is a reset or error)"
row "curl: early 413" check_early_curl
have node && row "node: early 413" check_early_node
echo "the app never answers (upstream-timeout / proxy_read_timeout $TIMEOUT)"
row "curl: hung app" check_hang
have node && row "node: 2000 keep-alive GETs" check_get_timing no
exit 0
