#!/usr/bin/env bash
# Figures of the pull-through mirror (docs/mirror.md), upstream = Debian's docker-registry
# on loopback, the mirror = cargohold on the filesystem behind infra/nginx/cargohold.conf:
#   1. upstream requests and bytes for 20 concurrent first pulls of one image (skopeo),
#      directly from the upstream and through the mirror (goal: each blob fetched once);
#   2. time to first byte and total time of a 32 MiB layer: from the upstream directly,
#      a mirror miss (fetched while streamed), a mirror hit (median of RUNS);
#   3. requests reaching the API for a cached pull through nginx (goal: none).
#   bash bench/mirror.sh            # CARGOHOLD_BIN=target/debug/cargohold to skip the build
# Not a timed test: figures for docs and reviews. Stops what it starts by PID.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -z "${CARGOHOLD_BIN:-}" ]]; then
    (cd "$BENCH_DIR/.." && cargo build -q --release --bin cargohold)
    CARGOHOLD_BIN="$BENCH_DIR/../target/release/cargohold"
fi
export REGISTRY_CMD="$CARGOHOLD_BIN"
# shellcheck source-path=SCRIPTDIR source=../tests/static/lib.sh
source "$BENCH_DIR/../tests/static/lib.sh"
static_require
RUNS="${RUNS:-5}"

client_init mirror-bench
chmod 755 "$WORK"
NGX="$WORK/nginx"
NGINX_USER="root root"
ROOT="$WORK/mirror-root"
API_STORE_ARGS=(--root "$ROOT")
NGINX_CONF=cargohold.conf
NGINX_EDITS=("root /srv/cargohold;" "root $ROOT;")
UP_PID=""
bench_cleanup() {
    local rc=$?
    set +e
    stop_nginx
    stop_pid "$UP_PID"
    (exit "$rc")
    client_cleanup
}
trap bench_cleanup EXIT

UP_PORT="$(free_port)"
UP="127.0.0.1:$UP_PORT"
"$BENCH_DIR/../tests/clients/docker-registry-serve.sh" serve --listen "$UP" --root "$WORK/up" \
    >"$WORK/up.log" 2>&1 &
UP_PID=$!
wait_http "http://$UP/v2/" "$UP_PID" 30 200

make_image_layout "$WORK/img" v1 amd64 8192
push() { "${SK[@]}" copy --preserve-digests --dest-tls-verify=false "oci:$1:v1" "docker://$2" >/dev/null; }
push "$WORK/img" "$UP/library/direct:v1"
push "$WORK/img" "$UP/library/viamirror:v1"
for i in $(seq 1 "$RUNS"); do
    make_image_layout "$WORK/ttfb-$i" v1 amd64 32768
    push "$WORK/ttfb-$i" "$UP/library/ttfb-$i:v1"
done

export CARGOHOLD_CONFIG="$WORK/mirror.toml"
printf '[[mirror.upstream]]\nname = "up"\nurl = "http://%s"\ntag_ttl = "1h"\n' "$UP" >"$CARGOHOLD_CONFIG"
API_PORT="$(free_port)"
start_api
start_nginx >/dev/null
MIRROR="127.0.0.1:$API_PORT"

# upstream_traffic REPO SINCE: "<requests> <bytes>" of the upstream's access lines for
# REPO after line SINCE of its log (the pushes above come before).
upstream_traffic() {
    tail -n "+$(($2 + 1))" "$WORK/up.log" | grep -E "\"(GET|HEAD) /v2/$1/" |
        sed -E 's/.*HTTP\/1\.1" [0-9]+ ([0-9]+) .*/\1/' |
        awk '{ n++; b += $1 } END { printf "%d %d\n", n, b }'
}
pull20() { # pull20 HOST/REPO:TAG
    local i pids=()
    for i in $(seq 1 20); do
        "${SK[@]}" copy --src-tls-verify=false "docker://$1" "oci:$WORK/out-$i-$RANDOM:v1" >/dev/null 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i"; done
}
image_bytes="$(jq -r '[.config.size, .layers[].size] | add' "$(layout_blob "$WORK/img" "$(layout_ref_digest "$WORK/img" v1)")")"

up_mark="$(wc -l <"$WORK/up.log")"
pull20 "$UP/library/direct:v1"
pull20 "$MIRROR/up/library/viamirror:v1"
sleep 1
read -r direct_n direct_b < <(upstream_traffic library/direct "$up_mark")
read -r mirror_n mirror_b < <(upstream_traffic library/viamirror "$up_mark")

# TTFB: the layer of each ttfb image, first from the upstream, then a miss, then a hit.
measure() { curl -s -o /dev/null -w '%{time_starttransfer} %{time_total}\n' "$1"; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
: >"$WORK/ttfb"
for i in $(seq 1 "$RUNS"); do
    d="$(jq -r '.layers[1].digest' "$(layout_blob "$WORK/ttfb-$i" "$(layout_ref_digest "$WORK/ttfb-$i" v1)")")"
    {
        echo "direct $(measure "http://$UP/v2/library/ttfb-$i/blobs/$d")"
        echo "miss $(measure "http://$MIRROR/v2/up/library/ttfb-$i/blobs/$d")"
        echo "hit $(measure "http://$MIRROR/v2/up/library/ttfb-$i/blobs/$d")"
    } >>"$WORK/ttfb"
done
row() { # row KIND: median TTFB and total, ms
    local f t
    f="$(awk -v k="$1" '$1 == k { print $2 * 1000 }' "$WORK/ttfb" | median)"
    t="$(awk -v k="$1" '$1 == k { print $3 * 1000 }' "$WORK/ttfb" | median)"
    printf '| 32 MiB layer, %s | %.1f ms | %.1f ms |\n' "$1" "$f" "$t"
}

mark="$(log_lines "$SERVER_LOG")"
"${SK[@]}" copy --src-tls-verify=false "docker://$NGINX/up/library/viamirror:v1" "oci:$WORK/out-nginx:v1" >/dev/null
read -r api_n api_b < <(api_requests "$mark")

echo "cargohold: $CARGOHOLD_BIN; upstream: docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null || echo '?')"
echo
echo "| 20 concurrent first pulls of one image ($image_bytes bytes of blobs) | upstream requests | upstream bytes |"
echo "|---|---|---|"
echo "| directly from the upstream | $direct_n | $direct_b |"
echo "| through the mirror | $mirror_n | $mirror_b |"
echo
echo "| blob GET (median of $RUNS) | time to first byte | total |"
echo "|---|---|---|"
row direct
row miss
row hit
echo
echo "| cached pull through nginx (skopeo) | API requests | API bytes |"
echo "|---|---|---|"
echo "| up/library/viamirror:v1 | $api_n | $api_b |"
