#!/usr/bin/env bash
# Direct uploads against the standard flow, into one S3 server (LocalStack from
# .ci/s3-servers.sh): the same image pushed four ways, each into a fresh repository:
#   1. cargohold push, direct single object       3. cargohold push --no-direct (standard)
#   2. cargohold push, direct parts (--part-size)  4. skopeo copy (standard)
# For each: MB/s of the image's bytes, and the API process's CPU seconds per GB pushed
# (utime+stime from /proc). Then the limit: the S3 server's own throughput for presigned
# PUTs with a SHA-256 checksum, sent by curl, JOBS × PART_MIB in parallel.
# Not a timed test: run by hand (`source .ci/.s3/env; bench/direct-upload.sh`).
# LAYER_MIB (default 512) sets the large layer; CARGOHOLD_BIN the binary (release if built).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../tests/clients/lib.sh
source tests/clients/lib.sh
: "${CARGOHOLD_TEST_S3_ENDPOINT:?source .ci/.s3/env first (.ci/s3-servers.sh start)}"
LAYER_MIB=${LAYER_MIB:-512}
JOBS=${JOBS:-4}
PART_MIB=${PART_MIB:-64}
BIN=${CARGOHOLD_BIN:-target/release/cargohold}
[[ -x $BIN ]] || BIN=target/debug/cargohold
export CARGOHOLD_BIN=$BIN
REGISTRY_CMD=tests/clients/cargohold-s3-serve.sh
client_init bench-direct
start_registry
# One image per way (same shape, fresh random layer): a blob the store already holds
# would be mounted, not pushed.
for way in single parts std skopeo; do
    make_image_layout "$WORK/$way" v1 amd64 $((LAYER_MIB * 1024))
done
BYTES=$(du -sb "$WORK/single/blobs" | cut -f1)
echo "# $BIN; images of $((BYTES >> 20)) MiB; S3 at $CARGOHOLD_TEST_S3_ENDPOINT"

cpu() { # CPU seconds (user+system) of PID so far
    awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}

measure() { # measure NAME CMD...: one push, timed, with the API's CPU
    local name=$1 c0 c1 t0 t1
    shift
    c0=$(cpu "$REG_PID")
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    c1=$(cpu "$REG_PID")
    awk -v n="$name" -v b="$BYTES" -v t="$(echo "$t1 - $t0" | bc)" -v c="$(echo "$c1 - $c0" | bc)" \
        'BEGIN { printf "%-34s %8.1f MB/s %8.2f API CPU s/GB (%.1fs)\n", n, b / t / 1e6, c / (b / 1e9), t }'
}

measure "cargohold push, direct single" "$BIN" push -q "$WORK/single" "$HOST/b/single:v1"
measure "cargohold push, direct parts" "$BIN" push -q --part-size $((PART_MIB << 20)) \
    --jobs "$JOBS" "$WORK/parts" "$HOST/b/parts:v1"
measure "cargohold push --no-direct" "$BIN" push -q --no-direct "$WORK/std" "$HOST/b/std:v1"
measure "skopeo copy (standard)" "${SK[@]}" copy -q --dest-tls-verify=false \
    "oci:$WORK/skopeo:v1" "docker://$HOST/b/skopeo:v1"

# The limit: JOBS presigned PUTs of PART_MIB each, with their SHA-256, by curl in parallel.
# The presigned requests come from the extension (start only; never completed).
limit() {
    local i files=() pids=() t0 t1
    for i in $(seq 1 "$JOBS"); do
        head -c $((PART_MIB << 20)) /dev/urandom >"$WORK/part$i"
        local d
        d=$(sha256_of "$WORK/part$i")
        curl -sf -X POST "http://$HOST/v2/b/limit/_cargohold/direct/start" \
            -d "{\"digest\":\"$d\",\"size\":$((PART_MIB << 20))}" >"$WORK/start$i.json"
        files+=("$i")
    done
    t0=$(date +%s.%N)
    for i in "${files[@]}"; do
        local h=()
        while IFS= read -r l; do h+=(-H "$l"); done < <(jq -r '.put.headers[] | "\(.[0]): \(.[1])"' "$WORK/start$i.json")
        curl -sf -o /dev/null -X PUT "${h[@]}" --data-binary @"$WORK/part$i" "$(jq -r .put.url "$WORK/start$i.json")" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i"; done
    t1=$(date +%s.%N)
    awk -v n="$JOBS" -v m="$PART_MIB" -v t="$(echo "$t1 - $t0" | bc)" \
        'BEGIN { printf "%-34s %8.1f MB/s (%d x %d MiB in %.1fs)\n", "limit: presigned PUTs by curl", n * m * 1048576 / t / 1e6, n, m, t }'
}
limit
