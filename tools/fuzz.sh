#!/usr/bin/env bash
# Runs every Fuzz* target in the module for a short time ($1, default 10s),
# one at a time (go test -fuzz takes one target per package per run).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-10s}
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
  pkg=./$(dirname "${f#./}")
  for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | cut -c6-); do
    t=$fuzztime
    # Each FuzzAnalyze worker first loads the POS dictionary (~20 s).
    [ "$fn" = FuzzAnalyze ] && t=60s
    echo "fuzz: $pkg $fn ($t)"
    go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$t" "$pkg"
  done
done
