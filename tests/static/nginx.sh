#!/usr/bin/env bash
# infra/nginx/ in front of cargohold's store, with real clients; STORE is the store:
#   fs  cargohold.conf, nginx reading the filesystem store cargohold writes;
#   s3  cargohold-s3.conf, nginx proxying reads to the S3 test bucket (anonymous GETs of a
#       fresh key prefix that cargohold writes).
# The scenario, the same for both:
#   1. cargohold + nginx: skopeo pushes an image, a two-platform index and a Docker v2s2
#      image THROUGH nginx; a pull with the API running is counted in the API's log and
#      in nginx's access log (the `# figures:` lines).
#   2. the API stopped (port closed): skopeo inspect/copy and podman pull from nginx (and
#      the bucket) alone; every header of the answers checked with curl; writes get 503.
#   3. the API restarted on the same store: push again through nginx, pull, delete.
#   4. auth on (tests/static/auth.sh): cargohold with rules, nginx with the include
#      `cargohold nginx-auth` writes: /v2/ challenges, public repositories static (API
#      stopped too), private ones denied anonymously and pulled with a token via the API.
# Prints `ok - ...`/`not ok - ...`, figures as `# ...` lines, and a last line
# `N passed, N failed`; exits non-zero on any failure.
#
#   bash tests/static/nginx.sh fs                       # needs target/debug/cargohold
#   source .ci/.s3/env; bash tests/static/nginx.sh s3   # after .ci/s3-servers.sh start
#   KEEP_TMP=1 bash tests/static/nginx.sh fs|s3         # keep the scratch dir (and objects)
#
# Needs, as root: nginx and libnginx-mod-http-js (Debian), skopeo, podman, jq, curl,
# python3; for s3 the S3 test server's CARGOHOLD_TEST_S3_{ENDPOINT,REGION,BUCKET,
# ACCESS_KEY,SECRET_KEY} (.ci/test exports them; .ci/s3-servers.sh start writes
# .ci/.s3/env), and a bucket that allows anonymous GETs (LocalStack does; checked first).
# Builds nothing. Every process it starts is stopped by its PID on exit; on s3 the objects
# it wrote under its own prefix are deleted. NJS_MODULE overrides the module's path.
set -euo pipefail

STORE="${1:-}"
case "$STORE" in
fs | s3) ;;
*)
    echo "not ok - usage: $0 fs|s3 (the store nginx is in front of)"
    echo "0 passed, 1 failed"
    exit 2
    ;;
esac

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
static_require

if [[ "$STORE" == s3 ]]; then
    static_require_s3
fi

client_init "nginx-$STORE"
NGX="$WORK/nginx"
API_PORT=""
NGINX_PORT=""
# The workers only read (the data root, or nothing but cargohold.js): unprivileged, as a
# real installation would run them, when they can (mktemp made $WORK 0700).
chmod 755 "$WORK"
NGINX_USER="nobody $(id -gn nobody)"

# --- the store (lib.sh: static_store; the store's own checks further down) ------------------
static_store "$STORE"

DOCKER_MANIFEST=application/vnd.docker.distribution.manifest.v2+json
ALL_MANIFESTS="$OCI_MANIFEST, $OCI_INDEX, $DOCKER_MANIFEST, application/vnd.docker.distribution.manifest.list.v2+json"
PM=(podman --root "$WORK/storage" --runroot "$WORK/run"
    --storage-driver "${PODMAN_STORAGE_DRIVER:-vfs}" --events-backend none)

# Figures for the report, kept in a file: checks run in subshells.
figure() { echo "$*" >>"$WORK/figures"; }

cleanup() {
    local rc=$?
    stop_nginx
    stop_registry
    if [[ "$FAILED" -gt 0 || "$rc" -ne 0 ]]; then
        [[ -s "$SERVER_LOG" ]] && tail -n 15 "$SERVER_LOG" | sed 's/^/#   api: /' >&2
        [[ -s "$NGX/error.log" ]] && grep -a -v -E '\[(info|notice)\]' "$NGX/error.log" | tail -n 15 | sed 's/^/#   nginx: /' >&2
    fi
    if [[ -n "${KEEP_TMP:-}" ]]; then
        echo "# nginx-$STORE: scratch dir kept at $WORK$STORE_NOTE" >&2
    else
        cleanup_store || true
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- nginx's access log (lib.sh's format) ----------------------------------------------------
# Its lines after line $1: to the API ($5 its address), to the bucket (any other upstream),
# answered by nginx itself ($5 "-"), and the clients' own (not /_cargohold/ subrequests).
API_ADDR() { echo "127.0.0.1:$API_PORT"; }
# nginx's own fills of its manifest cache (from its socket, remote "unix:") are left out,
# and a client's request answered that way counts as answered by nginx.
since() {
    tail -n "+$(($1 + 1))" "$NGX/access.log" |
        awk '$9 != "unix:" { if ($5 ~ /^unix:/) $5 = "-"; print }'
}
to_api() { since "$1" | awk -v a="$(API_ADDR)" '$5 == a'; }
to_bucket() { since "$1" | awk -v a="$(API_ADDR)" '$5 != "-" && $5 != a'; }
by_nginx() { since "$1" | awk '$5 == "-"'; }
from_clients() { since "$1" | awk '$7 !~ /^\/_cargohold\//'; }
count_bytes() { awk -v f="$1" '{ s += ($f == "-" ? 0 : $f); n++ } END { printf "%d %d", n, s }'; }
by_method() { awk '{print $1}' | sort | uniq -c | awk '{printf "%s %s, ", $2, $1}'; }

# No header of the store's own on the last answer: x-amz-*, LocalStack's, an ETag that is
# not ours ("sha256:..."; the lists have the store's, as `lists` says).
no_store_headers() {
    if tr -d '\r' <"$WORK/h" | grep -i -E '^(x-amz-|x-localstack|server: (amazons3|hypercorn))'; then
        return 1
    fi
    local etag
    etag="$(hdr ETag)"
    [[ -z "$etag" || "$etag" == \"sha256:* || "${1:-}" == lists ]] || { echo "ETag $etag"; return 1; }
}

# --- the content --------------------------------------------------------------------------

make_image_layout "$WORK/img" v1 amd64 1024 # 1 MiB random layer
make_index_layout "$WORK/multi" v1
make_image_layout "$WORK/img2" v2 amd64 128 # pushed after the API's restart
IMG_DIGEST="$(layout_ref_digest "$WORK/img" v1)"
IMG_MANIFEST="$(layout_blob "$WORK/img" "$IMG_DIGEST")"
IMG_CONFIG="$(jq -r .config.digest "$IMG_MANIFEST")"
BIG_LAYER="$(jq -r '.layers[1].digest' "$IMG_MANIFEST")" # random: in test/app only
BIG_LAYER_FILE="$(layout_blob "$WORK/img" "$BIG_LAYER")"
IDX_DIGEST="$(layout_ref_digest "$WORK/multi" v1)"
IDX_BLOB="$(layout_blob "$WORK/multi" "$IDX_DIGEST")"
IMG2_DIGEST="$(layout_ref_digest "$WORK/img2" v2)"

API_PORT="$(free_port)"
if ! start_api; then
    echo "not ok - cargohold starts on 127.0.0.1:$API_PORT over $STORE_DESC"
    echo "$PASSED passed, $((FAILED + 1)) failed"
    exit 1
fi
if ! start_nginx >"$STEP_LOG" 2>&1; then
    echo "not ok - nginx starts with infra/nginx/$NGINX_CONF"
    sed 's/^/#   /' "$STEP_LOG"
    echo "$PASSED passed, $((FAILED + 1)) failed"
    exit 1
fi
echo "ok - nginx starts with infra/nginx/$NGINX_CONF (njs loaded)"
PASSED=$((PASSED + 1))
echo "# nginx-$STORE: nginx pid $NGINX_PID on $NGINX, API pid $REG_PID on 127.0.0.1:$API_PORT$STORE_NOTE" >&2

# --- 1. pushes through nginx, a pull with the API running -----------------------------------

# s3: nginx reads the bucket without credentials: that must work for index/ (here the
# config.json cargohold wrote at start), and a missing key must be a plain 404 or 403.
anonymous_reads() {
    assert_eq "anonymous GET of $PREFIX/config.json" 200 "$(stored_status config.json)"
    local missing
    missing="$(stored_status index/no/such/key)"
    [[ "$missing" == 404 || "$missing" == 403 ]] || { echo "missing key: $missing"; return 1; }
}

push_image() {
    "${SK[@]}" copy --preserve-digests --dest-tls-verify=false \
        "oci:$WORK/img:v1" "docker://$NGINX/test/app:v1"
    assert_eq "index/test/app/_manifests/v1 in the store" 200 "$(stored_status index/test/app/_manifests/v1)"
}

push_index() {
    "${SK[@]}" copy --all --preserve-digests --dest-tls-verify=false \
        "oci:$WORK/multi:v1" "docker://$NGINX/test/multi:v1"
}

push_docker() {
    "${SK[@]}" copy --format v2s2 --dest-tls-verify=false --digestfile "$WORK/docker-digest" \
        "oci:$WORK/img:v1" "docker://$NGINX/test/docker:v1"
}

# An index whose type is only in the Content-Type it was pushed with (no mediaType
# field): only the store (the sidecar, the object's Content-Type) can tell nginx it is one.
push_bare_index() {
    jq -c 'del(.mediaType)' "$IDX_BLOB" >"$WORK/bare-index.json"
    assert_eq "has mediaType" false "$(jq 'has("mediaType")' "$WORK/bare-index.json")"
    req PUT /v2/test/multi/manifests/bare -H "Content-Type: $OCI_INDEX" \
        --data-binary "@$WORK/bare-index.json"
    expect 201 Docker-Content-Digest "$(sha256_of "$WORK/bare-index.json")"
}

# The request kinds of the pushes went where they should: uploads and manifest PUTs to
# the API, the clients' existence checks to nginx's files or the bucket, nothing else.
push_routing() {
    local api bucket own bytes
    api="$(to_api 0 | by_method)"
    bucket="$(to_bucket 0 | by_method)"
    own="$(by_nginx 0 | by_method)"
    bytes="$(to_api 0 | count_bytes 8)"
    echo "to the API: $api; to the bucket: $bucket; answered by nginx: $own"
    if [[ "$STORE" == s3 ]]; then
        figure "pushes through nginx: to the API, by method: $api${bytes#* } request bytes;" \
            "to the bucket (existence checks, with their link subrequests): ${bucket%, }"
    else
        figure "pushes through nginx: to the API, by method: $api${bytes#* } request bytes;" \
            "answered by nginx: ${own%, } (\"-\": the clients' TLS probes, 400)"
    fi
    if to_api 0 | awk '$1 == "GET" || $1 == "HEAD"' | grep .; then
        echo "the reads above were passed to the API"
        return 1
    fi
    if to_bucket 0 | awk '$1 != "GET" && $1 != "HEAD"' | grep .; then
        echo "the writes above were sent to the bucket"
        return 1
    fi
    to_api 0 | awk '$1 == "PUT" && $2 ~ /\/manifests\//' | grep -q .
}

# fs: the nginx worker is unprivileged: it must be able to read what cargohold wrote.
readable_by_worker() {
    if grep -q '^user root' "$NGX/nginx.conf"; then
        echo "workers run as root here; nothing to check"
        return 0
    fi
    runuser -u nobody -- cat "$ROOT/index/test/app/_tags/list" "$ROOT/.meta/index/test/app/_manifests/v1.json"
    runuser -u nobody -- test -r "$ROOT/blobs/sha256/${BIG_LAYER#sha256:}"
}

# mark_logs: API_MARK and NGINX_MARK, the lines the API's log and nginx's have now.
mark_logs() {
    API_MARK="$(log_lines "$SERVER_LOG")"
    NGINX_MARK="$(log_lines "$NGX/access.log")"
}

# no_api_requests WHEN: since mark_logs, no request reached the API, nginx passed none.
no_api_requests() {
    local api
    api="$(api_requests "$API_MARK")"
    echo "API requests $1: $api"
    assert_eq "requests that reached the API $1" 0 "${api% *}"
    assert_eq "requests nginx passed to the API $1" 0 "$(to_api "$NGINX_MARK" | wc -l)"
}

# pull_figure WHAT: the figure line of the pulls since mark_logs.
pull_figure() {
    local api bucket clients
    api="$(api_requests "$API_MARK")"
    bucket="$(to_bucket "$NGINX_MARK" | count_bytes 6)"
    clients="$(from_clients "$NGINX_MARK" | count_bytes 4)"
    if [[ "$STORE" == s3 ]]; then
        bucket="bucket ${bucket% *} requests, ${bucket#* } bytes received (headers and bodies); "
    else
        bucket=""
    fi
    figure "$1 through nginx, API running: API ${api% *} requests, ${api#* } bytes;" \
        "${bucket}nginx answered ${clients% *} client requests, ${clients#* } body bytes"
}

pull_with_api_running() {
    local api
    mark_logs
    pull_image_matches "$NGINX/test/app:v1" "$IMG_DIGEST" "$IMG_MANIFEST" "$WORK/warm-img"
    cmp "$BIG_LAYER_FILE" "$(layout_blob "$WORK/warm-img" "$BIG_LAYER")"
    pull_figure "pull of test/app:v1 (2 layers, 1 MiB; skopeo copy)"
    no_api_requests "during the pull"
    # The same with the index and podman: still nothing for the API.
    pull_index_matches "$NGINX/test/multi:v1" "$WORK/multi" "$WORK/warm-multi"
    "${PM[@]}" pull --tls-verify=false "$NGINX/test/app:v1"
    "${PM[@]}" rmi -a -f
    pull_figure "pulls (skopeo image, skopeo --all index, podman image)"
    no_api_requests "(index, podman)"
    # For comparison, the same image pulled from the API itself.
    mark_logs
    pull_image_matches "127.0.0.1:$API_PORT/test/app:v1" "$IMG_DIGEST" "$IMG_MANIFEST" "$WORK/direct-img"
    api="$(api_requests "$API_MARK")"
    figure "the same pull of test/app:v1 from the API directly, for comparison:" \
        "API ${api% *} requests, ${api#* } bytes$([[ "$STORE" == s3 ]] && echo " (blobs answered by 307 to the bucket)")"
}

[[ "$STORE" != s3 ]] ||
    check "the bucket answers anonymous GETs under the prefix (index/), 404/403 if missing" anonymous_reads
check "skopeo push of a 2-layer image through nginx (test/app:v1)" push_image
check "skopeo push --all of a two-platform index through nginx (test/multi:v1)" push_index
check "skopeo push --format v2s2 through nginx (test/docker:v1)" push_docker
check "curl PUT through nginx of an index without mediaType (test/multi:bare)" push_bare_index
check "pushes: every write passed to the API, $([[ "$STORE" == s3 ]] && echo "every read to the bucket" || echo "no read")" push_routing
[[ "$STORE" != fs ]] ||
    check "the nginx worker (nobody) can read the store cargohold wrote" readable_by_worker
check "pull with the API running: 0 requests reach the API" pull_with_api_running

# --- 2. nginx (and the bucket) alone -----------------------------------------------------------

# Started and stopped here, not inside a check: check runs in a subshell, and REG_PID
# must stay right in this shell for the cleanup.
stop_registry
check "API stopped by PID; its port is closed" api_port_closed
STATIC_MARK="$(log_lines "$NGX/access.log")"

static_inspect() {
    local out
    inspect_matches "$NGINX/test/app:v1" "$IMG_DIGEST" "$IMG_MANIFEST"
    "${SK[@]}" inspect --raw --tls-verify=false "docker://$NGINX/test/multi:v1" >"$WORK/idx-raw.json"
    assert_eq "index bytes" "$IDX_DIGEST" "$(sha256_of "$WORK/idx-raw.json")"
    out="$("${SK[@]}" --override-arch arm64 --override-os linux inspect --tls-verify=false \
        "docker://$NGINX/test/multi:v1")"
    assert_eq "arm64 through the index" arm64 "$(jq -r .Architecture <<<"$out")"
    assert_eq tags v1 "$("${SK[@]}" list-tags --tls-verify=false "docker://$NGINX/test/app" | jq -r '.Tags | join(" ")')"
}

static_pull_image() {
    pull_image_matches "$NGINX/test/app:v1" "$IMG_DIGEST" "$IMG_MANIFEST" "$WORK/pulled"
    cmp "$BIG_LAYER_FILE" "$(layout_blob "$WORK/pulled" "$BIG_LAYER")"
}

static_pull_index() {
    pull_index_matches "$NGINX/test/multi:v1" "$WORK/multi" "$WORK/pulled-multi"
}

static_podman_pull() {
    "${PM[@]}" pull --tls-verify=false "$NGINX/test/app:v1"
    assert_eq "image id" "${IMG_CONFIG#sha256:}" \
        "$("${PM[@]}" image inspect --format '{{.Id}}' "$NGINX/test/app:v1")"
    "${PM[@]}" image inspect --format '{{json .RepoDigests}}' "$NGINX/test/app:v1" |
        jq -e --arg d "$NGINX/test/app@$IMG_DIGEST" 'any(.[]; . == $d)'
    # The arm64 instance, chosen through the index.
    "${PM[@]}" pull --tls-verify=false --arch arm64 "$NGINX/test/multi:v1"
    assert_eq architecture arm64 \
        "$("${PM[@]}" image inspect --format '{{.Architecture}}' "$NGINX/test/multi:v1")"
}

no_request_passed() {
    local n passed
    n="$(since "$STATIC_MARK" | wc -l)"
    passed="$(to_api "$STATIC_MARK" | wc -l)"
    echo "$n requests, $passed passed to the API"
    to_api "$STATIC_MARK"
    assert_eq "requests nginx passed to the API during the static pulls" 0 "$passed"
    [[ "$n" -gt 0 ]]
}

check "API down: skopeo inspect, inspect --raw of the index, arm64 via index, list-tags" static_inspect
check "API down: skopeo copy pull of the image, digests and bytes match" static_pull_image
check "API down: skopeo copy --all pull of the index, digests and bytes match" static_pull_index
check "API down: podman pull of the image (id, RepoDigests) and of arm64 via the index" static_podman_pull
check "API down: nginx passed none of the pull requests to the API" no_request_passed

DOCKER_DIGEST="$(cat "$WORK/docker-digest" 2>/dev/null || echo missing)"

# -- the API version check
base() {
    req GET /v2/
    expect 200 Content-Type application/json
    assert_eq body '{}' "$(cat "$WORK/b")"
    req HEAD /v2/
    expect 200
}

# -- manifests: Content-Type per type, digest, ETag, Cache-Control, HEAD, 304
manifest_headers() {
    req GET /v2/test/app/manifests/v1 -H "Accept: $ALL_MANIFESTS"
    expect 200 Content-Type "$OCI_MANIFEST" Docker-Content-Digest "$IMG_DIGEST" \
        ETag "\"$IMG_DIGEST\"" Cache-Control "public, max-age=0, must-revalidate"
    assert_eq "body digest" "$IMG_DIGEST" "$(sha256_of "$WORK/b")"
    no_store_headers
    req GET "/v2/test/app/manifests/$IMG_DIGEST" -H "Accept: $ALL_MANIFESTS"
    expect 200 Content-Type "$OCI_MANIFEST" Docker-Content-Digest "$IMG_DIGEST" \
        ETag "\"$IMG_DIGEST\"" Cache-Control "public, max-age=31536000, immutable"
    req GET /v2/test/multi/manifests/v1 -H "Accept: $ALL_MANIFESTS"
    expect 200 Content-Type "$OCI_INDEX" Docker-Content-Digest "$IDX_DIGEST"
    assert_eq "body digest" "$IDX_DIGEST" "$(sha256_of "$WORK/b")"
    req GET /v2/test/docker/manifests/v1 -H "Accept: $ALL_MANIFESTS"
    expect 200 Content-Type "$DOCKER_MANIFEST" Docker-Content-Digest "$DOCKER_DIGEST"
    assert_eq "body digest" "$DOCKER_DIGEST" "$(sha256_of "$WORK/b")"
    # A Range on a manifest is not honoured: the whole manifest, hashed whole.
    req GET /v2/test/app/manifests/v1 -H 'Range: bytes=0-9'
    expect 200 Docker-Content-Digest "$IMG_DIGEST"
    assert_eq "body digest" "$IMG_DIGEST" "$(sha256_of "$WORK/b")"
}

# HEAD by tag and by digest (on s3: a GET of the object, hashed; a HEAD of the object).
manifest_head() {
    local size
    size="$(stat -c %s "$IMG_MANIFEST")"
    req HEAD /v2/test/app/manifests/v1
    expect 200 Content-Type "$OCI_MANIFEST" Docker-Content-Digest "$IMG_DIGEST" Content-Length "$size"
    assert_eq "HEAD body bytes" 0 "$BODY_BYTES"
    req HEAD "/v2/test/app/manifests/$IMG_DIGEST"
    expect 200 Content-Type "$OCI_MANIFEST" Docker-Content-Digest "$IMG_DIGEST" Content-Length "$size" \
        ETag "\"$IMG_DIGEST\"" Cache-Control "public, max-age=31536000, immutable"
    assert_eq "HEAD body bytes" 0 "$BODY_BYTES"
    [[ "$STORE" == s3 ]] || return 0
    one_bodiless_bucket_request "/v2/test/app/manifests/$IMG_DIGEST" "$size"
}

# s3: a HEAD of PATH makes one request to the bucket, which sends no body: it receives at
# least SIZE bytes fewer than the GET of the same object.
one_bodiless_bucket_request() {
    local path="$1" size="$2" mark head get
    mark="$(log_lines "$NGX/access.log")"
    req HEAD "$path"
    sleep 0.2 # the access log line is written after the answer
    to_bucket "$mark"
    assert_eq "bucket requests for a HEAD of $path" 1 "$(to_bucket "$mark" | wc -l)"
    head="$(to_bucket "$mark" | awk '{print $6}')"
    mark="$(log_lines "$NGX/access.log")"
    req GET "$path"
    sleep 0.2
    get="$(to_bucket "$mark" | awk '{s += $6} END {print s}')"
    echo "bucket bytes: HEAD $head, GET $get, manifest $size"
    [[ $((head + size)) -le $((get + 16)) ]]
}

manifest_304() {
    req GET /v2/test/app/manifests/v1 -H "If-None-Match: \"$IMG_DIGEST\""
    expect 304 ETag "\"$IMG_DIGEST\"" Docker-Content-Digest "$IMG_DIGEST"
    assert_eq "304 body bytes" 0 "$BODY_BYTES"
    req GET /v2/test/app/manifests/v1 -H 'If-None-Match: "sha256:0000"'
    expect 200
}

# -- Accept negotiation, like registry-api's `accepts`
accept_negotiation() {
    req GET /v2/test/multi/manifests/v1 -H "Accept: $OCI_MANIFEST"
    expect_error 404 MANIFEST_UNKNOWN
    jq -e '.errors[0].detail.reason | contains("Accept")' "$WORK/b"
    req GET "/v2/test/multi/manifests/$IDX_DIGEST" -H "Accept: $DOCKER_MANIFEST"
    expect_error 404 MANIFEST_UNKNOWN
    req HEAD "/v2/test/multi/manifests/$IDX_DIGEST" -H "Accept: $DOCKER_MANIFEST"
    expect 404 Content-Type application/json
    # Several Accept lines, as containers/image sends them, are one list.
    req GET /v2/test/multi/manifests/v1 -H "Accept: $DOCKER_MANIFEST" -H "Accept: $OCI_INDEX"
    expect 200 Content-Type "$OCI_INDEX"
    req GET /v2/test/multi/manifests/v1 -H "Accept: $OCI_MANIFEST" -H 'Accept: */*'
    expect 200 Content-Type "$OCI_INDEX"
    req GET /v2/test/multi/manifests/v1 -H "Accept: $OCI_MANIFEST;q=0.9, $OCI_INDEX;q=0.5"
    expect 200 Content-Type "$OCI_INDEX"
    # No Accept, or one naming no manifest type, accepts anything.
    req GET /v2/test/multi/manifests/v1 -H 'Accept:'
    expect 200 Content-Type "$OCI_INDEX"
    req GET /v2/test/multi/manifests/v1 -H 'Accept: application/json'
    expect 200 Content-Type "$OCI_INDEX"
}

manifest_unknown() {
    req GET /v2/test/app/manifests/nope -H "Accept: $ALL_MANIFESTS"
    expect_error 404 MANIFEST_UNKNOWN
    req GET "/v2/test/app/manifests/sha256:$(printf '%064d' 0)"
    expect_error 404 MANIFEST_UNKNOWN
    # A manifest of another repository is not served here.
    req GET "/v2/test/multi/manifests/$IMG_DIGEST"
    expect_error 404 MANIFEST_UNKNOWN
    req GET /v2/no/such/repo/manifests/v1
    expect_error 404 MANIFEST_UNKNOWN
    req HEAD /v2/test/app/manifests/nope
    expect 404 Content-Type application/json
    req HEAD "/v2/test/app/manifests/sha256:$(printf '%064d' 0)"
    expect 404 Content-Type application/json
}

# The media type is the one stored with the manifest (fs: the sidecar; s3: the object's
# Content-Type), else the body's.
manifest_type_stored() {
    req GET /v2/test/multi/manifests/bare
    expect 200 Content-Type "$OCI_INDEX" Docker-Content-Digest "$(sha256_of "$WORK/bare-index.json")"
    req GET /v2/test/multi/manifests/bare -H "Accept: $OCI_MANIFEST"
    expect_error 404 MANIFEST_UNKNOWN
}

# The filesystem config's manifest cache: once what was cached has expired, four GETs and
# a HEAD by tag cost nginx at most one fill over its socket (remote "unix:" in the log),
# and every answer has the manifest's own headers and bytes.
manifest_cache() {
    local mark m
    sleep "$MANIFEST_CACHE_WINDOW"
    mark="$(log_lines "$NGX/access.log")"
    for m in HEAD GET GET GET GET; do
        req "$m" /v2/test/app/manifests/v1 -H "Accept: $ALL_MANIFESTS"
        expect 200 Content-Type "$OCI_MANIFEST" Docker-Content-Digest "$IMG_DIGEST" \
            ETag "\"$IMG_DIGEST\"" Vary Accept Content-Length "$(stat -c %s "$IMG_MANIFEST")"
    done
    assert_eq "body digest" "$IMG_DIGEST" "$(sha256_of "$WORK/b")"
    sleep 0.2 # the access log line is written after the answer
    tail -n "+$((mark + 1))" "$NGX/access.log"
    [[ $(tail -n "+$((mark + 1))" "$NGX/access.log" | awk '$9 == "unix:"' | wc -l) -le 1 ]]
}

case "$STORE" in
fs)
    TYPE_STORED_NAME="media type from the sidecar (index pushed without mediaType)"
    TYPE_FALLBACK_NAME="media type from the body when the sidecar is missing or stale"
    manifest_type_fallback() {
        local meta="$ROOT/.meta/index/test/docker/_manifests/v1.json"
        cp "$meta" "$WORK/sidecar.saved"
        rm "$meta"
        req GET /v2/test/docker/manifests/v1
        expect 200 Content-Type "$DOCKER_MANIFEST" Docker-Content-Digest "$DOCKER_DIGEST"
        # A sidecar without a record (format 1) left by another write (its ETag is not
        # these bytes' sha256) is ignored.
        jq -c --arg t "$OCI_INDEX" '.content_type = $t | .etag = "0000" | del(.digest)' \
            "$WORK/sidecar.saved" >"$meta"
        req GET /v2/test/docker/manifests/v1
        expect 200 Content-Type "$DOCKER_MANIFEST" Docker-Content-Digest "$DOCKER_DIGEST"
        cp "$WORK/sidecar.saved" "$meta"
        req GET /v2/test/docker/manifests/v1
        expect 200 Content-Type "$DOCKER_MANIFEST"
    }
    # Format 2: a manifest's sidecar records its digest and type, and nginx sends the bytes
    # of that digest. A tag's new sidecar is renamed before its data: for that instant
    # (copied here by hand), the answer is the new manifest, digest and bytes together.
    RECORD_NAME="sidecars record digest and type; a tag's sidecar renamed before its data: new digest, new bytes"
    manifest_record() {
        local meta="$ROOT/.meta/index/test/multi/_manifests"
        assert_eq "recorded digest of test/multi:v1" "$IDX_DIGEST" "$(jq -r .digest "$meta/v1.json")"
        assert_eq "recorded type of test/multi:v1" "$OCI_INDEX" "$(jq -r .content_type "$meta/v1.json")"
        assert_eq "recorded digest by digest" "$IDX_DIGEST" "$(jq -r .digest "$meta/$IDX_DIGEST.json")"
        cp "$meta/v1.json" "$WORK/v1-sidecar.saved"
        cp "$meta/bare.json" "$meta/v1.json"
        sleep "$MANIFEST_CACHE_WINDOW"
        local bare_digest
        bare_digest="$(sha256_of "$WORK/bare-index.json")"
        for m in GET HEAD; do
            req "$m" /v2/test/multi/manifests/v1 -H "Accept: $ALL_MANIFESTS"
            expect 200 Docker-Content-Digest "$bare_digest" ETag "\"$bare_digest\"" \
                Content-Length "$(stat -c %s "$WORK/bare-index.json")"
        done
        req GET /v2/test/multi/manifests/v1
        assert_eq "body digest" "$bare_digest" "$(sha256_of "$WORK/b")"
        cp "$WORK/v1-sidecar.saved" "$meta/v1.json"
        sleep "$MANIFEST_CACHE_WINDOW"
        req GET /v2/test/multi/manifests/v1
        expect 200 Docker-Content-Digest "$IDX_DIGEST"
        assert_eq "body digest" "$IDX_DIGEST" "$(sha256_of "$WORK/b")"
    }
    ;;
s3)
    TYPE_STORED_NAME="media type from the object's Content-Type (index pushed without mediaType)"
    TYPE_FALLBACK_NAME="media type from the body for objects without a manifest Content-Type"
    RECORD_NAME="manifests carry x-amz-meta-digest; a HEAD by tag is one bodiless request to the bucket"
    manifest_record() {
        local size
        assert_eq "stored digest metadata" 200 "$(s3 HEAD index/test/app/_manifests/v1 -I -D "$WORK/s3-h")"
        assert_eq "x-amz-meta-digest" "$IMG_DIGEST" \
            "$(tr -d '\r' <"$WORK/s3-h" | awk -F': ' 'tolower($1) == "x-amz-meta-digest" {print $2}')"
        size="$(stat -c %s "$IMG_MANIFEST")"
        req HEAD /v2/test/app/manifests/v1
        expect 200 Content-Type "$OCI_MANIFEST" Docker-Content-Digest "$IMG_DIGEST" Content-Length "$size"
        one_bodiless_bucket_request /v2/test/app/manifests/v1 "$size"
    }
    # Objects placed by another tool, without a manifest Content-Type: the body decides
    # (its mediaType; an index if it has `manifests`; else an image manifest).
    manifest_type_fallback() {
        local docker_file="$WORK/docker-manifest.json" raw_digest
        req GET /v2/test/docker/manifests/v1
        cp "$WORK/b" "$docker_file"
        assert_eq "put raw docker" 200 "$(s3 PUT index/test/docker/_manifests/raw \
            -H 'Content-Type: binary/octet-stream' --data-binary "@$docker_file")"
        req GET /v2/test/docker/manifests/raw
        expect 200 Content-Type "$DOCKER_MANIFEST" Docker-Content-Digest "$DOCKER_DIGEST"
        assert_eq "put raw bare index" 200 "$(s3 PUT index/test/multi/_manifests/raw \
            -H 'Content-Type: binary/octet-stream' --data-binary "@$WORK/bare-index.json")"
        req GET /v2/test/multi/manifests/raw
        expect 200 Content-Type "$OCI_INDEX" Docker-Content-Digest "$(sha256_of "$WORK/bare-index.json")"
        # HEAD by digest of such an object: the type needs the body, so nginx GETs it.
        raw_digest="$(sha256_of "$WORK/bare-index.json")"
        assert_eq "put raw by digest" 200 "$(s3 PUT "index/test/multi/_manifests/$raw_digest" \
            -H 'Content-Type: binary/octet-stream' --data-binary "@$WORK/bare-index.json")"
        req HEAD "/v2/test/multi/manifests/$raw_digest"
        expect 200 Content-Type "$OCI_INDEX" Content-Length "$(stat -c %s "$WORK/bare-index.json")"
    }
    ;;
esac

# -- blobs
blob_headers() {
    local size
    size="$(stat -c %s "$BIG_LAYER_FILE")"
    req GET "/v2/test/app/blobs/$BIG_LAYER"
    expect 200 Content-Type application/octet-stream Docker-Content-Digest "$BIG_LAYER" \
        ETag "\"$BIG_LAYER\"" Cache-Control "public, max-age=31536000, immutable" \
        Content-Length "$size" Accept-Ranges bytes
    cmp "$BIG_LAYER_FILE" "$WORK/b"
    no_store_headers
    assert_eq "Content-Type lines" 1 "$(grep -c -i '^content-type:' "$WORK/h")"
    req HEAD "/v2/test/app/blobs/$BIG_LAYER"
    expect 200 Content-Type application/octet-stream Docker-Content-Digest "$BIG_LAYER" \
        Content-Length "$size" Accept-Ranges bytes
    assert_eq "HEAD body bytes" 0 "$BODY_BYTES"
    no_store_headers
}

blob_range() {
    local size
    size="$(stat -c %s "$BIG_LAYER_FILE")"
    req GET "/v2/test/app/blobs/$BIG_LAYER" -H 'Range: bytes=1000-1999'
    expect 206 Content-Range "bytes 1000-1999/$size" Content-Length 1000 \
        Docker-Content-Digest "$BIG_LAYER" Content-Type application/octet-stream
    cmp "$WORK/b" <(tail -c "+1001" "$BIG_LAYER_FILE" | head -c 1000)
    no_store_headers
    req GET "/v2/test/app/blobs/$BIG_LAYER" -H "Range: bytes=$((size - 10))-"
    expect 206 Content-Range "bytes $((size - 10))-$((size - 1))/$size"
    cmp "$WORK/b" <(tail -c 10 "$BIG_LAYER_FILE")
    req GET "/v2/test/app/blobs/$BIG_LAYER" -H "Range: bytes=$size-"
    expect 416
}

blob_other_repo() {
    # The bytes are in blobs/, but test/multi never linked them.
    assert_eq "blob in the store" 200 "$(stored_status "blobs/sha256/${BIG_LAYER#sha256:}")"
    assert_eq "link in the store" 404 "$(stored_status "index/test/multi/_blobs/$BIG_LAYER")"
    req GET "/v2/test/multi/blobs/$BIG_LAYER"
    expect_error 404 BLOB_UNKNOWN
    req HEAD "/v2/test/multi/blobs/$BIG_LAYER"
    expect 404 Content-Type application/json
    req GET "/v2/test/app/blobs/sha256:$(printf '%064d' 0)"
    expect_error 404 BLOB_UNKNOWN
}

# -- tags, catalog, referrers
lists() {
    local etag
    req GET /v2/test/app/tags/list
    expect 200 Content-Type application/json Cache-Control "public, max-age=0, must-revalidate"
    assert_eq body '{"name":"test/app","tags":["v1"]}' "$(cat "$WORK/b")"
    no_store_headers lists
    etag="$(hdr ETag)"
    [[ -n "$etag" ]]
    req GET /v2/test/app/tags/list -H "If-None-Match: $etag"
    expect 304
    assert_eq "304 body bytes" 0 "$BODY_BYTES"
    req GET /v2/no/such/repo/tags/list
    expect_error 404 NAME_UNKNOWN
    req GET /v2/_catalog
    expect 200 Content-Type application/json Cache-Control "public, max-age=0, must-revalidate"
    assert_eq catalog '["test/app","test/docker","test/multi"]' "$(jq -c .repositories "$WORK/b")"
    no_store_headers lists
}

referrers() {
    req GET "/v2/test/app/referrers/sha256:$(printf '%064d' 7)"
    expect 200 Content-Type "$OCI_INDEX" Cache-Control "public, max-age=0, must-revalidate"
    assert_eq body "{\"schemaVersion\":2,\"mediaType\":\"$OCI_INDEX\",\"manifests\":[]}" "$(cat "$WORK/b")"
    req GET "/v2/test/app/referrers/$IMG_DIGEST"
    expect 200 Content-Type "$OCI_INDEX"
    jq -e '.manifests == []' "$WORK/b"
}

# -- with the API down, what needs it fails cleanly

api_only_requests_503() {
    local p
    for p in "/v2/test/app/tags/list?n=1" "/v2/_catalog?n=10&last=a" \
        "/v2/test/app/referrers/$IMG_DIGEST?artifactType=application/x-test"; do
        req GET "$p"
        expect_error 503 TOOMANYREQUESTS
        expect 503 Retry-After 10
    done
}

writes_fail_cleanly() {
    req POST /v2/test/app/blobs/uploads/
    expect_error 503 TOOMANYREQUESTS
    req PUT /v2/test/app/manifests/v9 -H "Content-Type: $OCI_MANIFEST" --data-binary "@$IMG_MANIFEST"
    expect_error 503 TOOMANYREQUESTS
    req DELETE "/v2/test/app/manifests/$IMG_DIGEST"
    expect_error 503 TOOMANYREQUESTS
    if "${SK[@]}" copy --retry-times 0 --dest-tls-verify=false "oci:$WORK/img2:v2" \
        "docker://$NGINX/test/app:v2"; then
        echo "push succeeded with the API stopped"
        return 1
    fi
    assert_eq "index/test/app/_manifests/v2 in the store" 404 "$(stored_status index/test/app/_manifests/v2)"
    assert_eq "index/test/app/_manifests/v9 in the store" 404 "$(stored_status index/test/app/_manifests/v9)"
}

# -- nothing but index/ and blobs/ paths built from a valid name is ever read
private_paths() {
    local p
    # (config.json is public, served for the browse UI as the Worker serves it.)
    for p in /index/_catalog /index/test/app/_tags/list "/blobs/sha256/${BIG_LAYER#sha256:}" \
        /.meta/config.json.json /v2/.meta/manifests/v1 \
        /_cargohold/manifest /_cargohold/blob-link /v2/test/app/_manifests/v1 \
        /v2/test/app/manifests/..%2F..%2F..%2Fconfig.json \
        /v2/test/app/manifests/%2e%2e%2f%2e%2e%2f%2e%2e%2fconfig.json \
        "/v2/test/app/blobs/sha256:${BIG_LAYER#sha256:}/../../../../config.json" \
        /v2/uploads/manifests/v1 /v2/test/app/blobs/uploads/ /v2/../uploads/x/state.json; do
        req GET "$p" --path-as-is
        [[ "$STATUS" != 200 ]] || { cat "$WORK/b"; return 1; }
    done
}

check "GET/HEAD /v2/: 200 {} and the API version header" base
check "manifests: Content-Type per type (OCI, index, Docker), digest, ETag, Cache-Control" manifest_headers
check "HEAD manifest by tag and by digest: headers and Content-Length, no body$([[ "$STORE" == s3 ]] && echo "; by digest one bodiless request to the bucket")" manifest_head
check "manifest If-None-Match: 304" manifest_304
check "Accept negotiation: index for a manifest-only Accept is 404; Accept lines merged" accept_negotiation
check "unknown manifests: 404 MANIFEST_UNKNOWN JSON" manifest_unknown
check "$TYPE_STORED_NAME" manifest_type_stored
check "$TYPE_FALLBACK_NAME" manifest_type_fallback
check "$RECORD_NAME" manifest_record
[[ $MANIFEST_CACHE_WINDOW == 0 ]] ||
    check "manifest cache: 5 requests by tag, at most 1 fill; headers and bytes the manifest's" manifest_cache
check "blob GET/HEAD: octet-stream, digest, ETag, immutable, bytes; no x-amz-*/store ETag" blob_headers
check "blob Range: 206 with Content-Range, 416 past the end" blob_range
check "blob of another repository: 404 BLOB_UNKNOWN" blob_other_repo
check "tags/list and _catalog: JSON, revalidate, 304 by the store's ETag, NAME_UNKNOWN" lists
check "referrers of an unknown digest: 200 empty index" referrers
check "API down: paginated lists and referrer filters get 503 JSON" api_only_requests_503
check "API down: POST/PUT/DELETE and a skopeo push fail cleanly (503), nothing written" writes_fail_cleanly
check "private paths (.meta, uploads/, internal locations, raw keys) never served" private_paths

# --- 3. the API back on the same store ------------------------------------------------------

# Paginated, so nginx passes it on: the API answers through nginx again.
api_back() {
    req GET "/v2/test/app/tags/list?n=5"
    expect 200 Content-Type application/json
    assert_eq tags '["v1"]' "$(jq -c .tags "$WORK/b")"
}

push_again() {
    "${SK[@]}" copy --preserve-digests --dest-tls-verify=false \
        "oci:$WORK/img2:v2" "docker://$NGINX/test/app:v2"
    req GET /v2/test/app/tags/list
    assert_eq tags '["v1","v2"]' "$(jq -c .tags "$WORK/b")"
}

pull_again() {
    mark_logs
    pull_image_matches "$NGINX/test/app:v2" "$IMG2_DIGEST" "$(layout_blob "$WORK/img2" "$IMG2_DIGEST")" "$WORK/pulled2"
    no_api_requests "during the pull"
}

delete_through_nginx() {
    req GET /v2/test/app/manifests/v2 -H "Accept: $ALL_MANIFESTS"
    expect 200
    "${SK[@]}" delete --tls-verify=false "docker://$NGINX/test/app:v2"
    sleep "$MANIFEST_CACHE_WINDOW"
    req GET /v2/test/app/manifests/v2 -H "Accept: $ALL_MANIFESTS"
    expect_error 404 MANIFEST_UNKNOWN
    req GET /v2/test/app/tags/list
    assert_eq tags '["v1"]' "$(jq -c .tags "$WORK/b")"
}

nginx_error_log_clean() {
    if grep -a -E 'js exception|\[(crit|alert|emerg)\]' "$NGX/error.log"; then
        return 1
    fi
    # Nothing spooled to disk: neither pushes on their way to the API (proxy_request_buffering
    # off) nor blobs from the bucket.
    if grep -a -E 'buffered to a temporary file|upstream response is buffered' "$NGX/error.log"; then
        return 1
    fi
}

start_api >"$STEP_LOG" 2>&1 || true
check "API restarted on the same $STORED_IN and port, reached through nginx" api_back
check "push again through nginx (test/app:v2), tag list updated" push_again
check "pull test/app:v2 through nginx: digests match, 0 requests reach the API" pull_again
check "skopeo delete through nginx; nginx stops serving the tag$([[ $MANIFEST_CACHE_WINDOW == 0 ]] && echo " at once" || echo " within its manifest cache's window (${MANIFEST_CACHE_WINDOW} s)")" delete_through_nginx

# --- 4. auth on: public repositories static, private ones only through the API ----------------
# shellcheck source-path=SCRIPTDIR source=auth.sh
source "$(dirname "${BASH_SOURCE[0]}")/auth.sh"

check "nginx error log: no njs exceptions, nothing critical, nothing spooled to disk" nginx_error_log_clean

[[ -f "$WORK/figures" ]] && sed 's/^/# figures: /' "$WORK/figures"
echo "$PASSED passed, $FAILED failed"
[[ "$FAILED" -eq 0 ]]
