#!/usr/bin/env bash
# Installs what the tests (and, with "bench", the benchmarks) need on a fresh
# machine. Idempotent: does nothing when everything is there.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  [ $# -gt 0 ] || return 0
  echo "deps: installing $*" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
have git || need+=(git)
if [ "${1:-}" = bench ]; then
  have jq || need+=(jq)
  have aws || need+=(awscli)
  have nginx || need+=(nginx)
  have wrk || need+=(wrk)
fi
apt_install "${need[@]}"
if ! have moto_server; then
  echo "deps: moto_server missing; trying pip install 'moto[server]'" >&2
  python3 -m pip install -q 'moto[server]' >&2 || echo "deps: could not install moto; AWS tests will fail under CI" >&2
fi
