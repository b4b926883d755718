#!/usr/bin/env bash
# The pull-through mirror (docs/mirror.md) with real clients, offline. Upstreams: Debian's
# docker-registry (CNCF distribution) as `distribution.local`, and a second `cargohold
# serve` with token auth standing in for Docker Hub as `docker.io` (the mirror logs in as
# alice). The mirror is cargohold on the filesystem (fs) or S3 (s3: the CARGOHOLD_TEST_S3_*
# variables of .ci/s3-servers.sh), behind infra/nginx/cargohold.conf or cargohold-s3.conf.
#
#   bash tests/mirror/run.sh fs|s3      # KEEP_TMP=1 keeps the scratch dir
#
# 1. skopeo through the path prefix; podman through registries.conf [[registry.mirror]];
#    containerd's `?ns=` form with curl (OCI-Namespace answered) and with `ctr images pull`
#    through a hosts.toml mirror entry (docs/mirror.md's example; a containerd of its own).
# 2. nginx: a cached pull (path prefix, and ?ns=) reaches the API zero times; a miss goes
#    to the API and is fetched.
# 3. 20 skopeo clients pull one uncached image at once: the upstream's access log shows
#    one GET per blob (none for a blob already stored for another repository).
# 4. Pushes into the mirrored namespace are refused (403 DENIED).
# 5. The upstream tag moved: the mirror follows after the 2 s TTL. Both upstreams stopped:
#    the cached images still pull (the tag past its TTL served from the cache), ctr's
#    through nginx, whose access log shows the `ns=` cargohold's leaves out.
# Prints `ok - …`/`not ok - …` lines and `N passed, N failed`; exits non-zero on failure.
set -euo pipefail
STORE="${1:-}"
[[ "$STORE" == fs || "$STORE" == s3 ]] || {
    echo "not ok - usage: $0 fs|s3 (the mirror's store)"
    echo "0 passed, 1 failed"
    exit 2
}

MIRROR_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
unset REGISTRY_CMD
# shellcheck source-path=SCRIPTDIR source=../static/lib.sh
source "$MIRROR_DIR/../static/lib.sh"
static_require
[[ "$STORE" == fs ]] || static_require_s3
CARGOHOLD="${API_CMD[0]}"
[[ -x /usr/bin/docker-registry ]] || {
    echo "not ok - missing /usr/bin/docker-registry (apt-get install docker-registry)"
    echo "0 passed, 1 failed"
    exit 1
}

client_init "mirror-$STORE"
chmod 755 "$WORK"
NGX="$WORK/nginx"
NGINX_USER="root root"
static_store "$STORE"
UPSTREAM_PIDS=()
PM=(podman --root "$WORK/storage" --runroot "$WORK/run"
    --storage-driver "${PODMAN_STORAGE_DRIVER:-vfs}" --events-backend none)

mirror_cleanup() {
    local rc=$? pid
    set +e
    stop_nginx
    for pid in "${UPSTREAM_PIDS[@]}"; do stop_pid "$pid"; done
    [[ -n "${KEEP_TMP:-}" ]] || cleanup_store
    # client_cleanup exits with the status it finds.
    (exit "$rc")
    client_cleanup
}
trap mirror_cleanup EXIT

# --- the upstreams and the images on them ---------------------------------------------

# start_upstream NAME CMD...: CMD gets `--listen 127.0.0.1:PORT`; sets <NAME>_HOST.
start_upstream() {
    local name="$1" port
    shift
    port="$(free_port)"
    "$@" --listen "127.0.0.1:$port" >>"$WORK/$name.log" 2>&1 &
    UPSTREAM_PIDS+=($!)
    wait_http "http://127.0.0.1:$port/v2/" $! 30 '200|401'
    printf -v "${name}_HOST" '%s' "127.0.0.1:$port"
}

HUB_CONFIG="$WORK/hub.toml"
cat >"$HUB_CONFIG" <<TOML
[auth]
dir = "$WORK/hub-auth"
[[auth.rules]]
repository = "library/*"
pull = ["*"]
push = ["alice"]
[[auth.rules]]
repository = "private/*"
pull = ["alice"]
push = ["alice"]
TOML
echo pw-alice | "$CARGOHOLD" user add alice --config "$HUB_CONFIG" >/dev/null
start_upstream HUB "$CARGOHOLD" serve --config "$HUB_CONFIG" --root "$WORK/hub-root" \
    --access-log "$WORK/hub-access.log"
start_upstream DIST "$MIRROR_DIR/../clients/docker-registry-serve.sh" serve --root "$WORK/dist-root"

make_image_layout "$WORK/img" v1 amd64 256
make_image_layout "$WORK/img2" v1 amd64 256
make_image_layout "$WORK/big" v1 amd64 8192
make_image_layout "$WORK/ctrimg" v1 amd64 256
digest_of() { layout_ref_digest "$WORK/$1" v1; }
manifest_of() { layout_blob "$WORK/$1" "$(digest_of "$1")"; }
push() { # push LAYOUT HOST/REPO:TAG [CREDS]
    "${SK[@]}" copy --preserve-digests --dest-tls-verify=false ${3:+--dest-creds "$3"} \
        "oci:$WORK/$1:v1" "docker://$2" >/dev/null
}
push img "$DIST_HOST/library/app:v1"
push big "$DIST_HOST/library/big:v1"
push img "$HUB_HOST/private/app:v1" alice:pw-alice
push img2 "$HUB_HOST/library/other:v1" alice:pw-alice
push ctrimg "$HUB_HOST/library/ctr:v1" alice:pw-alice

export CARGOHOLD_CONFIG="$WORK/mirror.toml"
cat >"$CARGOHOLD_CONFIG" <<TOML
[[mirror.upstream]]
name = "docker.io"
aliases = ["registry-1.docker.io"]
url = "http://$HUB_HOST"
username = "alice"
password = "pw-alice"
tag_ttl = "2s"

[[mirror.upstream]]
name = "distribution.local"
aliases = ["$DIST_HOST"]
url = "http://$DIST_HOST"
tag_ttl = "1h"
TOML
API_PORT="$(free_port)"
MIRROR="127.0.0.1:$API_PORT"
if ! start_api || ! start_nginx >"$STEP_LOG" 2>&1; then
    echo "not ok - the mirror and nginx start"
    sed 's/^/#   /' "$STEP_LOG"
    echo "$PASSED passed, $((FAILED + 1)) failed"
    exit 1
fi
echo "# mirror: API $MIRROR, nginx $NGINX, hub $HUB_HOST, distribution $DIST_HOST" >&2

# --- 1. the clients, both addressing forms ------------------------------------------------

skopeo_prefix() {
    pull_image_matches "$MIRROR/distribution.local/library/app:v1" "$(digest_of img)" \
        "$(manifest_of img)" "$WORK/out-skopeo"
}

podman_mirror() {
    # docker.io itself is unreachable here: only the mirror can answer.
    cat >"$WORK/registries.conf" <<CONF
[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "$MIRROR/docker.io"
insecure = true
CONF
    CONTAINERS_REGISTRIES_CONF="$WORK/registries.conf" "${PM[@]}" pull docker.io/private/app:v1
    assert_eq "image id" "$(jq -r .config.digest "$(manifest_of img)")" \
        "sha256:$("${PM[@]}" image inspect --format '{{.Id}}' docker.io/private/app:v1)"
}

# curl_pull BASE REPO REF QUERY: a pull as containerd makes it (the manifest, its config
# and layers, each checked against its digest); prints the manifest's digest.
curl_pull() {
    local base="$1" repo="$2" ref="$3" query="$4" d
    curl -sf --max-time 30 -D "$WORK/h" -o "$WORK/m.json" -H "Accept: $OCI_MANIFEST" \
        "http://$base/v2/$repo/manifests/$ref$query"
    [[ "$query" != *ns=* ]] || assert_eq OCI-Namespace "${query#*ns=}" "$(hdr OCI-Namespace)"
    for d in $(jq -r '.config.digest, .layers[].digest' "$WORK/m.json"); do
        curl -sfL --max-time 30 -o "$WORK/blob" "http://$base/v2/$repo/blobs/$d$query"
        assert_eq "blob $d" "$d" "$(sha256_of "$WORK/blob")"
    done
    sha256_of "$WORK/m.json"
}

containerd_ns() {
    assert_eq digest "$(digest_of img)" "$(curl_pull "$MIRROR" private/app v1 '?ns=docker.io')"
    assert_eq digest "$(digest_of img)" "$(curl_pull "$MIRROR" private/app v1 '?ns=registry-1.docker.io')"
}

# ctr_pull_via MIRROR_HOSTPORT: `ctr images pull docker.io/library/ctr:v1` with docs/mirror.md's
# hosts.toml for docker.io naming MIRROR_HOSTPORT; the server is Docker Hub's, unreachable
# here, so only the mirror can answer. Checks the image containerd stored, then removes it
# and its content (garbage collected at once) so that the next pull fetches it all again.
ctr_pull_via() {
    local d
    mkdir -p "$WORK/certs.d/docker.io"
    cat >"$WORK/certs.d/docker.io/hosts.toml" <<TOML
server = "https://registry-1.docker.io"

[host."http://$1"]
  capabilities = ["pull", "resolve"]
TOML
    "${CTR[@]}" images pull --hosts-dir "$WORK/certs.d" --snapshotter native \
        docker.io/library/ctr:v1
    assert_eq "ctr's image digest" "$(digest_of ctrimg)" \
        "$("${CTR[@]}" images ls | awk '$1 == "docker.io/library/ctr:v1" {print $3}')"
    for d in $(jq -r '.config.digest, .layers[].digest' "$(manifest_of ctrimg)"); do
        "${CTR[@]}" content get "$d" | sha256sum | grep -q "^${d#sha256:} "
    done
    "${CTR[@]}" images rm --sync docker.io/library/ctr:v1
}

# The ns form with containerd itself: cargohold logs paths only, so the request lines
# without the docker.io/ prefix answered 200 are the ns form's; the image is then the
# mirror's docker.io/library/ctr.
ctr_ns() {
    local mark d
    mark="$(log_lines "$SERVER_LOG")"
    ctr_pull_via "$MIRROR"
    api_log_settle
    tail -n "+$((mark + 1))" "$SERVER_LOG" |
        jq -R -r 'fromjson? | select(.target == "cargohold::request") | .fields
                  | "\(.method) \(.path) \(.status)"' >"$WORK/ctr-requests"
    cat "$WORK/ctr-requests"
    grep -Eq "^(HEAD|GET) /v2/library/ctr/manifests/v1 200$" "$WORK/ctr-requests"
    for d in $(jq -r '.config.digest, .layers[].digest' "$(manifest_of ctrimg)"); do
        # 307 on S3: a layer another repository already holds is linked, then redirected
        # to the bucket like any stored blob.
        grep -Eq "^GET /v2/library/ctr/blobs/$d (200|307)$" "$WORK/ctr-requests"
        assert_eq "index/docker.io/library/ctr/_blobs/$d" 200 \
            "$(stored_status "index/docker.io/library/ctr/_blobs/$d")"
    done
    for d in v1 "$(digest_of ctrimg)"; do
        assert_eq "index/docker.io/library/ctr/_manifests/$d" 200 \
            "$(stored_status "index/docker.io/library/ctr/_manifests/$d")"
    done
    if grep -Ev " (200|307)$" "$WORK/ctr-requests"; then
        echo "ctr's requests above were not all answered 200 (or 307 to the bucket)"
        return 1
    fi
}

check "skopeo pulls through the path prefix (docker-registry upstream)" skopeo_prefix
check "podman pulls docker.io/private/app through registries.conf [[registry.mirror]] (token-auth upstream, mirror's credentials)" podman_mirror
check "containerd's ?ns= form (curl): manifest and blobs, OCI-Namespace answered" containerd_ns
if start_containerd >"$STEP_LOG" 2>&1; then
    check "ctr images pull through hosts.toml (the ns form): docker.io/library/ctr fetched and cached as the mirror's docker.io/library/ctr" ctr_ns
else
    echo "not ok - containerd starts (apt-get install containerd)"
    sed 's/^/#   /' "$STEP_LOG"
    FAILED=$((FAILED + 1))
fi

# --- 2. nginx in front --------------------------------------------------------------------

nginx_cached() {
    local mark
    mark="$(log_lines "$SERVER_LOG")"
    pull_image_matches "$NGINX/distribution.local/library/app:v1" "$(digest_of img)" \
        "$(manifest_of img)" "$WORK/out-nginx"
    assert_eq digest "$(digest_of img)" "$(curl_pull "$NGINX" library/app v1 "?ns=$DIST_HOST")"
    assert_eq "API requests and bytes for cached pulls through nginx" "0 0" "$(api_requests "$mark")"
}

nginx_miss() {
    local mark
    mark="$(log_lines "$SERVER_LOG")"
    pull_image_matches "$NGINX/docker.io/library/other:v1" "$(digest_of img2)" \
        "$(manifest_of img2)" "$WORK/out-miss"
    local n
    n="$(api_requests "$mark")"
    [[ "${n% *}" -gt 0 ]] || { echo "no API request for a miss: $n"; return 1; }
}

check "nginx: a cached pull (path prefix, and ?ns=) reaches the API zero times" nginx_cached
check "nginx: a miss goes to the API, which fetches it upstream" nginx_miss

# --- 3. 20 clients at once ----------------------------------------------------------------

concurrent() {
    local i pids=() d count
    for i in $(seq 1 20); do
        "${SK[@]}" copy --src-tls-verify=false "docker://$MIRROR/distribution.local/library/big:v1" \
            "oci:$WORK/out-big-$i:v1" >"$WORK/big-$i.log" 2>&1 &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || { cat "$WORK/big-$((i + 1)).log"; return 1; }
    done
    for i in $(seq 1 20); do
        assert_eq "client $i digest" "$(digest_of big)" "$(layout_ref_digest "$WORK/out-big-$i" v1)"
        layout_intact "$WORK/out-big-$i"
    done
    # The base layer is app's too: stored already, it is linked after a HEAD upstream.
    local stored
    stored="$(jq -r '.config.digest, .layers[].digest' "$(manifest_of img)")"
    for d in $(jq -r '.config.digest, .layers[].digest' "$(manifest_of big)"); do
        count="$(grep -c "\"GET /v2/library/big/blobs/$d HTTP" "$WORK/DIST.log" || true)"
        echo "$d: $count upstream GETs"
        if grep -qx "$d" <<<"$stored"; then
            assert_eq "upstream GETs of $d (stored for library/app)" 0 "$count"
        else
            assert_eq "upstream GETs of $d" 1 "$count"
        fi
    done
}

check "20 skopeo clients pulling one uncached image: one upstream GET per blob" concurrent

# --- 4. read-only -------------------------------------------------------------------------

push_refused() {
    if "${SK[@]}" copy --dest-tls-verify=false "oci:$WORK/img:v1" \
        "docker://$MIRROR/docker.io/library/app:v9" 2>"$WORK/push.err"; then
        echo "the push was accepted"
        return 1
    fi
    grep -i "denied\|read-only" "$WORK/push.err"
    local code
    code="$(curl -s -o "$WORK/b" -w '%{http_code}' -X POST "http://$MIRROR/v2/library/app/blobs/uploads/?ns=docker.io")"
    assert_eq status 403 "$code"
    assert_eq code DENIED "$(jq -r '.errors[0].code' "$WORK/b")"
}

check "pushes into a mirrored repository are refused (403 DENIED)" push_refused

# --- 5. the upstream changes, then goes away ----------------------------------------------

tag_moved() {
    push img2 "$HUB_HOST/private/app:v1" alice:pw-alice
    sleep 2.5
    pull_image_matches "$MIRROR/docker.io/private/app:v1" "$(digest_of img2)" \
        "$(manifest_of img2)" "$WORK/out-moved"
}

upstreams_gone() {
    local pid
    for pid in "${UPSTREAM_PIDS[@]}"; do stop_pid "$pid"; done
    sleep 2.5 # past docker.io's TTL: the revalidation fails, the cached tag is served
    pull_image_matches "$MIRROR/docker.io/private/app:v1" "$(digest_of img2)" \
        "$(manifest_of img2)" "$WORK/out-gone"
    pull_image_matches "$MIRROR/distribution.local/library/app:v1" "$(digest_of img)" \
        "$(manifest_of img)" "$WORK/out-gone2"
    grep -q "serving the cached tag" "$SERVER_LOG"
}

check "the upstream tag moved: the mirror follows after the 2 s TTL" tag_moved
check "both upstreams stopped: the cached images still pull (failure logged)" upstreams_gone

mirror_index_consistent() {
    "$CARGOHOLD" index check "${API_STORE_ARGS[@]}"
}

# Through nginx with the upstreams stopped: its access log has the query cargohold's leaves out.
ctr_gone_via_nginx() {
    ctr_pull_via "$NGINX"
    grep "/v2/library/ctr/" "$NGX/access.log"
    grep -Eq "^(HEAD|GET) /v2/library/ctr/manifests/v1\?ns=docker.io 200 " "$NGX/access.log"
    grep -q "^GET /v2/library/ctr/blobs/sha256:[0-9a-f]*?ns=docker.io 200 " "$NGX/access.log"
}

check "ctr pulls docker.io/library/ctr again through nginx, upstreams stopped (?ns=docker.io in nginx's log)" ctr_gone_via_nginx
check "cargohold index check finds nothing in the mirror's store" mirror_index_consistent

echo "$PASSED passed, $FAILED failed"
[[ "$FAILED" -eq 0 ]]
