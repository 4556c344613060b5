#!/usr/bin/env bash
# Runs every fuzz target in the module for a bounded time each: `make fuzz`.
# Targets are discovered, never listed here: for each package with tests,
# `go test -list '^Fuzz'` names its Fuzz functions, and each runs alone
# (go test -fuzz takes one target of one package at a time).
#
#   FUZZTIME=2m make fuzz          # longer per target (default 30s)
#   PKGS=./config/ make fuzz       # only some packages
#
# A crasher is written by go test to <package>/testdata/fuzz/<Target>/ and
# the run fails; commit that file: it is a regression case `go test` runs
# from then on.
set -euo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
cd "$(dirname "$0")/.."
# shellcheck disable=SC2086
pkgs=$($GO list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ${PKGS:-./...})
ran=0 failed=()
for pkg in $pkgs; do
  targets=$($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
  for target in $targets; do
    echo "fuzz: $pkg $target for $FUZZTIME" >&2
    ran=$((ran + 1))
    if ! $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"; then
      failed+=("$pkg $target")
    fi
  done
done
if [ "$ran" = 0 ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi
if [ ${#failed[@]} -gt 0 ]; then
  printf 'fuzz: FAILED %s (crasher under its testdata/fuzz/: commit it as a regression case)\n' "${failed[@]}" >&2
  exit 1
fi
echo "fuzz: $ran targets, $FUZZTIME each: no crash" >&2
