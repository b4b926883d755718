#!/usr/bin/env bash
# Direct uploads against the standard flow, into one S3 server (LocalStack from
# .ci/s3-servers.sh). Two image shapes of the same total size, each pushed into a fresh
# repository:
#   one layer of LAYER_MIB:                      LAYERS layers of LAYER_MIB / LAYERS each:
#   1. cargohold push, direct single object        5. cargohold push, direct (--jobs JOBS)
#   2. cargohold push, direct parts (--part-size)  6. cargohold push --no-direct (--jobs JOBS)
#   3. cargohold push --no-direct (standard)
#   4. skopeo copy (standard)
# For each: MB/s of the image's bytes, the API process's CPU seconds per GB pushed
# (utime+stime from /proc), and the S3 server's, where .ci/s3-servers.sh started it here
# (its pid file): on 2 cores the two share the CPU. Then the limits, in the same run: the S3 server's own throughput
# for presigned PUTs with a SHA-256 checksum, sent by curl, JOBS × PART_MIB in parallel;
# and one SHA-256 pass over LAYER_MIB with the sha2 crate the API verifies with
# (blob-gateway's sha256_pass example), in CPU s/GB: what the direct parts' API CPU is held
# to. Last, the ratios: direct parts' API CPU ÷ that pass, direct parts' MB/s ÷ the
# standard flow's.
# One stream cannot reach a limit measured with JOBS streams: the multi-layer shape is what
# an image of several large layers gets from parallel layer transfers.
# Not a timed test: run by hand (`source .ci/.s3/env; bench/direct-upload.sh`); the MB/s
# of one run on a shared machine are noisy, so run it a few times and take medians.
# LocalStack keeps every object in memory or temporary files until it stops, about 7 GiB
# a run at the default size: restart it between runs (`.ci/s3-servers.sh stop`, `start`).
# LAYER_MIB (default 512) sets the image size, LAYERS (default 4) the second shape's layer
# count; CARGOHOLD_BIN the binary (release if built).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../tests/clients/lib.sh
source tests/clients/lib.sh
: "${CARGOHOLD_TEST_S3_ENDPOINT:?source .ci/.s3/env first (.ci/s3-servers.sh start)}"
LAYER_MIB=${LAYER_MIB:-512}
LAYERS=${LAYERS:-4}
JOBS=${JOBS:-4}
PART_MIB=${PART_MIB:-64}
BIN=${CARGOHOLD_BIN:-target/release/cargohold}
[[ -x $BIN ]] || BIN=target/debug/cargohold
SHA_PASS=${SHA_PASS_BIN:-target/release/examples/sha256_pass}
[[ -x $SHA_PASS ]] || nice cargo build -q --release -p blob-gateway --example sha256_pass
export CARGOHOLD_BIN=$BIN
REGISTRY_CMD=tests/clients/cargohold-s3-serve.sh
client_init bench-direct
start_registry
# bench_image DIR LAYERS MIB: a one-image layout of LAYERS random, uncompressed tar
# layers of MIB MiB each (gzip of random bytes only costs setup time).
bench_image() {
    local dir=$1 n=$2 mib=$3 i layers=() diffs=() d cfg man
    layout_init "$dir"
    for i in $(seq 1 "$n"); do
        mkdir -p "$dir/src"
        head -c $((mib << 20)) /dev/urandom >"$dir/src/random$i.bin"
        tar --mtime=@0 --owner=0 --group=0 -C "$dir/src" -cf "$dir/layer.tar" "random$i.bin"
        rm -rf "$dir/src"
        d=$(layout_put_blob "$dir" "$dir/layer.tar")
        diffs+=("$(jq -r .digest <<<"$d")")
        layers+=("$(jq -c '{mediaType: "application/vnd.oci.image.layer.v1.tar"} + .' <<<"$d")")
        rm -f "$dir/layer.tar"
    done
    jq -cn '{architecture: "amd64", os: "linux", rootfs: {type: "layers", diff_ids: $ARGS.positional}}' \
        --args "${diffs[@]}" >"$dir/config.json"
    cfg=$(layout_put_blob "$dir" "$dir/config.json")
    jq -cn --arg mt "$OCI_MANIFEST" --arg cmt "$OCI_CONFIG" --argjson c "$cfg" \
        '{schemaVersion: 2, mediaType: $mt, config: ({mediaType: $cmt} + $c),
          layers: [$ARGS.positional[] | fromjson]}' --args "${layers[@]}" >"$dir/manifest.json"
    man=$(layout_put_blob "$dir" "$dir/manifest.json")
    rm -f "$dir/config.json" "$dir/manifest.json"
    layout_add_ref "$dir" "$(jq -c --arg mt "$OCI_MANIFEST" '{mediaType: $mt} + .' <<<"$man")" v1
}

# One image per way (same shape, fresh random layers): a blob the store already holds
# would be mounted, not pushed.
for way in single parts std skopeo; do
    bench_image "$WORK/$way" 1 "$LAYER_MIB"
done
for way in multi multi-std; do
    bench_image "$WORK/$way" "$LAYERS" $((LAYER_MIB / LAYERS))
done
# The images' gigabytes are otherwise still being written back during the first pushes.
sync
BYTES=$(du -sb "$WORK/single/blobs" | cut -f1)
echo "# $BIN; images of $((BYTES >> 20)) MiB; S3 at $CARGOHOLD_TEST_S3_ENDPOINT"

cpu() { # CPU seconds (user+system) of PID so far; 0 without a PID
    [[ -n $1 ]] || { echo 0; return; }
    awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
S3_PID=$(cat .ci/.s3/localstack.pid 2>/dev/null || true)
[[ -n $S3_PID && -e /proc/$S3_PID ]] || S3_PID=''


declare -A RATE CPUGB # by row name: MB/s and API CPU s/GB, for the ratios at the end
measure() { # measure NAME LAYOUT CMD...: one push of LAYOUT's bytes, timed, with the API's CPU
    local name=$1 b c0 c1 s0 s1 t0 t1 row
    b=$(du -sb "$2/blobs" | cut -f1)
    shift 2
    c0=$(cpu "$REG_PID") s0=$(cpu "$S3_PID")
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    c1=$(cpu "$REG_PID") s1=$(cpu "$S3_PID")
    row=$(awk -v n="$name" -v b="$b" -v t="$(echo "$t1 - $t0" | bc)" -v c="$(echo "$c1 - $c0" | bc)" \
        -v s="$(echo "$s1 - $s0" | bc)" -v has_s3="${S3_PID:+1}" \
        'BEGIN { printf "%-36s %8.1f MB/s %8.2f API CPU s/GB (%.1fs)", n, b / t / 1e6, c / (b / 1e9), t
                 if (has_s3) printf " %6.2f S3 CPU s/GB", s / (b / 1e9); printf "\n" }')
    echo "$row"
    RATE[$name]=$(awk '{print $1}' <<<"${row:36}")
    CPUGB[$name]=$(awk '{print $3}' <<<"${row:36}")
}

measure "cargohold push, direct single" "$WORK/single" "$BIN" push -q "$WORK/single" "$HOST/b/single:v1"
measure "cargohold push, direct parts" "$WORK/parts" "$BIN" push -q --part-size $((PART_MIB << 20)) \
    --jobs "$JOBS" "$WORK/parts" "$HOST/b/parts:v1"
measure "cargohold push --no-direct" "$WORK/std" "$BIN" push -q --no-direct "$WORK/std" "$HOST/b/std:v1"
measure "skopeo copy (standard)" "$WORK/skopeo" "${SK[@]}" copy -q --dest-tls-verify=false \
    "oci:$WORK/skopeo:v1" "docker://$HOST/b/skopeo:v1"
measure "$LAYERS layers: cargohold push, direct" "$WORK/multi" "$BIN" push -q --jobs "$JOBS" \
    "$WORK/multi" "$HOST/b/multi:v1"
measure "$LAYERS layers: push --no-direct" "$WORK/multi-std" "$BIN" push -q --no-direct --jobs "$JOBS" \
    "$WORK/multi-std" "$HOST/b/multi-std:v1"

# The limits: N presigned PUTs of MIB each, with their SHA-256, by curl in parallel; the
# presigned requests come from the extension (start only; never completed). JOBS × PART_MIB
# is the issue's limit; one PUT of the whole image is what one stream reaches.
limit() { # limit N MIB
    local n=$1 mib=$2 i pids=() t0 t1
    for i in $(seq 1 "$n"); do
        head -c $((mib << 20)) /dev/urandom >"$WORK/limit$i"
        curl -sf -X POST "http://$HOST/v2/b/limit/_cargohold/direct/start" \
            -d "{\"digest\":\"$(sha256_of "$WORK/limit$i")\",\"size\":$((mib << 20))}" >"$WORK/start$i.json"
    done
    t0=$(date +%s.%N)
    for i in $(seq 1 "$n"); do
        local h=()
        while IFS= read -r l; do h+=(-H "$l"); done < <(jq -r '.put.headers[] | "\(.[0]): \(.[1])"' "$WORK/start$i.json")
        curl -sf -o /dev/null -X PUT "${h[@]}" --data-binary @"$WORK/limit$i" "$(jq -r .put.url "$WORK/start$i.json")" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i"; done
    t1=$(date +%s.%N)
    rm -f "$WORK"/limit*
    awk -v n="$n" -v m="$mib" -v t="$(echo "$t1 - $t0" | bc)" \
        'BEGIN { printf "%-36s %8.1f MB/s (%d x %d MiB in %.1fs)\n", "limit: presigned PUTs by curl", n * m * 1048576 / t / 1e6, n, m, t }'
}
limit "$JOBS" "$PART_MIB"
limit 1 "$LAYER_MIB"

# One SHA-256 pass over the layer's size, in the CPU s/GB the API rows use.
TIMEFORMAT='%3U %3S'
sha_cpu=$({ time "$SHA_PASS" "$LAYER_MIB" >/dev/null; } 2>&1 | awk -v m="$LAYER_MIB" '{print ($1 + $2) / (m * 1048576 / 1e9)}')
printf '%-36s %8s      %8.2f CPU s/GB\n' "limit: one SHA-256 pass (sha2)" "" "$sha_cpu"
parts="cargohold push, direct parts"
awk -v c="${CPUGB[$parts]}" -v p="$sha_cpu" -v r="${RATE[$parts]}" -v s="${RATE["cargohold push --no-direct"]}" \
    'BEGIN { printf "direct parts: API CPU %.2fx one SHA-256 pass; MB/s %.2fx the standard flow\n", c / p, r / s }'
