#!/usr/bin/env bash
# Scale figures of the browse UI: an index of 100,000 repositories and a repository of
# 10,000 tags (written directly by registry-api/examples/browse_scale.rs), served by
# `cargohold serve` on loopback, each view opened in headless chromium with an empty
# cache (tests/browse/bench.mjs). Prints a table: requests, bytes, time to first render.
#   bash bench/browse.sh [REPOS] [TAGS]      # needs chromium and npm ci --prefix tests/browse
# Not a timed test: figures for docs and reviews. Stops what it starts by PID.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../tests/lib/proc.sh
source tests/lib/proc.sh

REPOS="${1:-100000}"
TAGS="${2:-10000}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cargohold-browse-bench.XXXXXX")"
PID=""
trap 'stop_pid "$PID"; rm -rf "$WORK"' EXIT

cargo build -q --release -p registry-api --bin cargohold --example browse_scale
started=$SECONDS
first="$(target/release/examples/browse_scale "$WORK/root" "$REPOS" "$TAGS" | tee /dev/stderr | sed -E 's/.*first tag //')"
echo "# generated in $((SECONDS - started)) s; $(du -sh "$WORK/root" | cut -f1) on disk" >&2
PORT="$(free_port)"
target/release/cargohold serve --root "$WORK/root" --listen "127.0.0.1:$PORT" --access-log off \
    >"$WORK/server.log" 2>&1 &
PID=$!
wait_http "http://127.0.0.1:$PORT/v2/" "$PID" 30 200
(cd tests/browse && node bench.mjs "http://127.0.0.1:$PORT" "$first")
