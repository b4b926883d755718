#!/usr/bin/env bash
# infra/nginx/ in front of cargohold's filesystem store, with real clients:
#   1. cargohold + nginx: skopeo pushes an image, a two-platform index and a Docker v2s2
#      image THROUGH nginx; a pull with the API running is counted in the API's log.
#   2. the API stopped (port closed): skopeo inspect/copy and podman pull from nginx
#      alone; every header of the static answers checked with curl; writes get 503.
#   3. the API restarted on the same root: push again through nginx, pull, delete.
# Prints `ok - ...`/`not ok - ...`, measured figures as `# ...` lines, and a last line
# `N passed, N failed`; exits non-zero on any failure.
#
#   bash tests/static/nginx-fs.sh            # needs target/debug/cargohold (built by cargo)
#   KEEP_TMP=1 bash tests/static/nginx-fs.sh # keep the scratch dir (logs, store, configs)
#
# Needs, as root: nginx and libnginx-mod-http-js (Debian), skopeo, podman, jq, curl,
# python3. Builds nothing. Every process it starts is stopped by its PID on exit.
# NJS_MODULE overrides the module's path (Debian: /usr/lib/nginx/modules/...).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
static_require

client_init nginx-fs
ROOT="$WORK/registry-root"
NGX="$WORK/nginx"
API_PORT=""
NGINX_PORT=""

DOCKER_MANIFEST=application/vnd.docker.distribution.manifest.v2+json
ALL_MANIFESTS="$OCI_MANIFEST, $OCI_INDEX, $DOCKER_MANIFEST, application/vnd.docker.distribution.manifest.list.v2+json"
SK=(skopeo --command-timeout 120s)
PM=(podman --root "$WORK/storage" --runroot "$WORK/run"
    --storage-driver "${PODMAN_STORAGE_DRIVER:-vfs}" --events-backend none)
layer_digests() { jq -r '[.layers[].digest] | join(" ")' "$1"; }

# Figures for the report, kept in a file: checks run in subshells.
measure() { echo "$*" >>"$WORK/measured"; }

cleanup() {
    local rc=$?
    stop_nginx
    stop_registry
    if [[ "$FAILED" -gt 0 || "$rc" -ne 0 ]]; then
        [[ -s "$SERVER_LOG" ]] && tail -n 15 "$SERVER_LOG" | sed 's/^/#   api: /' >&2
        [[ -s "$NGX/error.log" ]] && grep -a -v '\[info\]' "$NGX/error.log" | tail -n 15 | sed 's/^/#   nginx: /' >&2
    fi
    if [[ -n "${KEEP_TMP:-}" ]]; then
        echo "# nginx-fs: scratch dir kept at $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
    echo "not ok - cargohold starts on 127.0.0.1:$API_PORT"
    echo "$PASSED passed, $((FAILED + 1)) failed"
    exit 1
fi
if ! start_nginx >"$STEP_LOG" 2>&1; then
    echo "not ok - nginx starts with infra/nginx/cargohold.conf"
    sed 's/^/#   /' "$STEP_LOG"
    echo "$PASSED passed, $((FAILED + 1)) failed"
    exit 1
fi
echo "ok - nginx starts with infra/nginx/cargohold.conf (njs loaded)"
PASSED=$((PASSED + 1))
echo "# nginx-fs: nginx pid $NGINX_PID on $NGINX, API pid $REG_PID on 127.0.0.1:$API_PORT" >&2

# --- 1. pushes through nginx, a pull with the API running -----------------------------------

push_image() {
    "${SK[@]}" copy --preserve-digests --dest-tls-verify=false \
        "oci:$WORK/img:v1" "docker://$NGINX/test/app:v1"
    [[ -f "$ROOT/index/test/app/_manifests/v1" ]]
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
# field): only the sidecar can tell nginx it is an index.
push_bare_index() {
    jq -c 'del(.mediaType)' "$IDX_BLOB" >"$WORK/bare-index.json"
    assert_eq "has mediaType" false "$(jq 'has("mediaType")' "$WORK/bare-index.json")"
    req PUT /v2/test/multi/manifests/bare -H "Content-Type: $OCI_INDEX" \
        --data-binary "@$WORK/bare-index.json"
    expect 201 Docker-Content-Digest "$(sha256_of "$WORK/bare-index.json")"
}

# The request kinds of the pushes went where they should: uploads and manifest PUTs to
# the API, and nothing else.
push_routing() {
    local to_api static bytes
    to_api="$(awk '$5 != "-"' "$NGX/access.log" | awk '{print $1}' | sort | uniq -c | awk '{printf "%s %s, ", $2, $1}')"
    static="$(awk '$5 == "-"' "$NGX/access.log" | awk '{print $1}' | sort | uniq -c | awk '{printf "%s %s, ", $2, $1}')"
    bytes="$(awk '$5 != "-" {s += $6} END {print s + 0}' "$NGX/access.log")"
    echo "to the API: $to_api; static: $static"
    measure "pushes through nginx: passed to the API, by method: $to_api$bytes request bytes;" \
        "answered by nginx: ${static%, } (\"-\": the clients' TLS probes, 400)"
    # Every write reached the API, no GET or HEAD did.
    if awk '$5 != "-" && ($1 == "GET" || $1 == "HEAD")' "$NGX/access.log" | grep .; then
        echo "the reads above were passed to the API"
        return 1
    fi
    awk '$5 != "-" && $1 == "PUT" && $2 ~ /\/manifests\//' "$NGX/access.log" | grep -q .
}

# The nginx worker is unprivileged: it must be able to read what cargohold wrote.
readable_by_worker() {
    if grep -q '^user root' "$NGX/nginx.conf"; then
        echo "workers run as root here; nothing to check"
        return 0
    fi
    runuser -u nobody -- cat "$ROOT/index/test/app/_tags/list" "$ROOT/.meta/index/test/app/_manifests/v1.json"
    runuser -u nobody -- test -r "$ROOT/blobs/sha256/${BIG_LAYER#sha256:}"
}

pull_with_api_running() {
    local mark nmark api
    mark="$(log_lines "$SERVER_LOG")"
    nmark="$(log_lines "$NGX/access.log")"
    "${SK[@]}" copy --preserve-digests --src-tls-verify=false \
        "docker://$NGINX/test/app:v1" "oci:$WORK/warm-img:v1"
    "${SK[@]}" copy --all --preserve-digests --src-tls-verify=false \
        "docker://$NGINX/test/multi:v1" "oci:$WORK/warm-multi:v1"
    "${PM[@]}" pull --tls-verify=false "$NGINX/test/app:v1"
    "${PM[@]}" rmi -a -f
    api="$(api_requests "$mark")"
    local reqs bytes
    reqs="$(tail -n "+$((nmark + 1))" "$NGX/access.log" | wc -l)"
    bytes="$(tail -n "+$((nmark + 1))" "$NGX/access.log" | awk '{s += $4} END {print s + 0}')"
    measure "pull with the API running (skopeo image, skopeo --all index, podman image):" \
        "requests reaching the API: ${api% *}, bytes from the API: ${api#* };" \
        "requests nginx answered: $reqs, body bytes: $bytes"
    assert_eq "requests that reached the API during the pull" 0 "${api% *}"
    assert_eq "pulled image digest" "$IMG_DIGEST" "$(layout_ref_digest "$WORK/warm-img" v1)"
    assert_eq "pulled index digest" "$IDX_DIGEST" "$(layout_ref_digest "$WORK/warm-multi" v1)"
}

check "skopeo push of a 2-layer image through nginx (test/app:v1)" push_image
check "skopeo push --all of a two-platform index through nginx (test/multi:v1)" push_index
check "skopeo push --format v2s2 through nginx (test/docker:v1)" push_docker
check "curl PUT through nginx of an index without mediaType (test/multi:bare)" push_bare_index
check "pushes: every write passed to the API, no read" push_routing
check "the nginx worker (nobody) can read the store cargohold wrote" readable_by_worker
check "pull with the API running: 0 requests reach the API" pull_with_api_running

# --- 2. nginx alone ------------------------------------------------------------------------

# Started and stopped here, not inside a check: check runs in a subshell, and REG_PID
# must stay right in this shell for the cleanup.
stop_registry
check "API stopped by PID; its port is closed" api_port_closed
STATIC_MARK="$(log_lines "$NGX/access.log")"

static_pull_index() {
    "${SK[@]}" copy --all --preserve-digests --src-tls-verify=false \
        "docker://$NGINX/test/multi:v1" "oci:$WORK/pulled-multi:v1"
    assert_eq "index digest" "$IDX_DIGEST" "$(layout_ref_digest "$WORK/pulled-multi" v1)"
    local child
    for child in $(jq -r '.manifests[].digest' "$IDX_BLOB"); do
        cmp "$(layout_blob "$WORK/multi" "$child")" "$(layout_blob "$WORK/pulled-multi" "$child")"
        for d in $(jq -r '.config.digest, .layers[].digest' "$(layout_blob "$WORK/multi" "$child")"); do
            cmp "$(layout_blob "$WORK/multi" "$d")" "$(layout_blob "$WORK/pulled-multi" "$d")"
        done
    done
    layout_intact "$WORK/pulled-multi"
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
    local passed
    passed="$(tail -n "+$((STATIC_MARK + 1))" "$NGX/access.log" | awk '$5 != "-"' | wc -l)"
    local n
    n="$(tail -n "+$((STATIC_MARK + 1))" "$NGX/access.log" | wc -l)"
    echo "$n requests, $passed passed to the API"
    tail -n "+$((STATIC_MARK + 1))" "$NGX/access.log" | awk '$5 != "-"'
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
    req GET "/v2/test/app/manifests/$IMG_DIGEST" -H "Accept: $ALL_MANIFESTS"
    expect 200 Content-Type "$OCI_MANIFEST" Docker-Content-Digest "$IMG_DIGEST" \
        ETag "\"$IMG_DIGEST\"" Cache-Control "public, max-age=31536000, immutable"
    req GET /v2/test/multi/manifests/v1 -H "Accept: $ALL_MANIFESTS"
    expect 200 Content-Type "$OCI_INDEX" Docker-Content-Digest "$IDX_DIGEST"
    assert_eq "body digest" "$IDX_DIGEST" "$(sha256_of "$WORK/b")"
    req GET /v2/test/docker/manifests/v1 -H "Accept: $ALL_MANIFESTS"
    expect 200 Content-Type "$DOCKER_MANIFEST" Docker-Content-Digest "$DOCKER_DIGEST"
    assert_eq "body digest" "$DOCKER_DIGEST" "$(sha256_of "$WORK/b")"
}

manifest_head() {
    req HEAD /v2/test/app/manifests/v1
    expect 200 Content-Type "$OCI_MANIFEST" Docker-Content-Digest "$IMG_DIGEST" \
        Content-Length "$(stat -c %s "$IMG_MANIFEST")"
    assert_eq "HEAD body bytes" 0 "$BODY_BYTES"
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
}

# The media type comes from the sidecar when it describes these bytes, else from the body.
manifest_type_from_sidecar() {
    req GET /v2/test/multi/manifests/bare
    expect 200 Content-Type "$OCI_INDEX" Docker-Content-Digest "$(sha256_of "$WORK/bare-index.json")"
    req GET /v2/test/multi/manifests/bare -H "Accept: $OCI_MANIFEST"
    expect_error 404 MANIFEST_UNKNOWN
}

manifest_type_fallback() {
    local meta="$ROOT/.meta/index/test/docker/_manifests/v1.json"
    cp "$meta" "$WORK/sidecar.saved"
    rm "$meta"
    req GET /v2/test/docker/manifests/v1
    expect 200 Content-Type "$DOCKER_MANIFEST" Docker-Content-Digest "$DOCKER_DIGEST"
    # A sidecar left by another write (its ETag is not these bytes' sha256) is ignored.
    jq -c --arg t "$OCI_INDEX" '.content_type = $t | .etag = "0000"' "$WORK/sidecar.saved" >"$meta"
    req GET /v2/test/docker/manifests/v1
    expect 200 Content-Type "$DOCKER_MANIFEST"
    cp "$WORK/sidecar.saved" "$meta"
    req GET /v2/test/docker/manifests/v1
    expect 200 Content-Type "$DOCKER_MANIFEST"
}

# -- blobs
blob_headers() {
    local size
    size="$(stat -c %s "$BIG_LAYER_FILE")"
    req GET "/v2/test/app/blobs/$BIG_LAYER"
    expect 200 Content-Type application/octet-stream Docker-Content-Digest "$BIG_LAYER" \
        ETag "\"$BIG_LAYER\"" Cache-Control "public, max-age=31536000, immutable" \
        Content-Length "$size"
    cmp "$BIG_LAYER_FILE" "$WORK/b"
    req HEAD "/v2/test/app/blobs/$BIG_LAYER"
    expect 200 Content-Type application/octet-stream Docker-Content-Digest "$BIG_LAYER" \
        Content-Length "$size" Accept-Ranges bytes
}

blob_range() {
    local size
    size="$(stat -c %s "$BIG_LAYER_FILE")"
    req GET "/v2/test/app/blobs/$BIG_LAYER" -H 'Range: bytes=1000-1999'
    expect 206 Content-Range "bytes 1000-1999/$size" Content-Length 1000 \
        Docker-Content-Digest "$BIG_LAYER"
    cmp "$WORK/b" <(tail -c "+1001" "$BIG_LAYER_FILE" | head -c 1000)
    req GET "/v2/test/app/blobs/$BIG_LAYER" -H "Range: bytes=$((size - 10))-"
    expect 206 Content-Range "bytes $((size - 10))-$((size - 1))/$size"
    cmp "$WORK/b" <(tail -c 10 "$BIG_LAYER_FILE")
}

blob_other_repo() {
    # The bytes are in blobs/, but test/multi never linked them.
    [[ -f "$ROOT/blobs/sha256/${BIG_LAYER#sha256:}" ]]
    [[ ! -e "$ROOT/index/test/multi/_blobs/$BIG_LAYER" ]]
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
    etag="$(hdr ETag)"
    [[ -n "$etag" ]]
    req GET /v2/test/app/tags/list -H "If-None-Match: $etag"
    expect 304
    req GET /v2/no/such/repo/tags/list
    expect_error 404 NAME_UNKNOWN
    req GET /v2/_catalog
    expect 200 Content-Type application/json Cache-Control "public, max-age=0, must-revalidate"
    assert_eq catalog '["test/app","test/docker","test/multi"]' "$(jq -c .repositories "$WORK/b")"
}


# -- with the API down, what needs it fails cleanly

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
    [[ ! -e "$ROOT/index/test/app/_manifests/v2" ]]
}

# -- nothing but index/ and blobs/ is ever read from disk
private_paths() {
    local p
    for p in /config.json /index/_catalog "/blobs/sha256/${BIG_LAYER#sha256:}" \
        /.meta/config.json.json /v2/.meta/manifests/v1 /v2/test/app/_manifests/v1 \
        /v2/test/app/manifests/..%2F..%2F..%2Fconfig.json \
        /v2/test/app/manifests/%2e%2e%2f%2e%2e%2f%2e%2e%2fconfig.json \
        "/v2/test/app/blobs/sha256:${BIG_LAYER#sha256:}/../../../../config.json" \
        /v2/uploads/manifests/v1 /v2/test/app/blobs/uploads/; do
        req GET "$p" --path-as-is
        [[ "$STATUS" != 200 ]] || { cat "$WORK/b"; return 1; }
    done
}

check "GET/HEAD /v2/: 200 {} and the API version header" base
check "manifests: Content-Type per type (OCI, index, Docker), digest, ETag, Cache-Control" manifest_headers
check "HEAD manifest: headers and Content-Length, no body" manifest_head
check "manifest If-None-Match: 304" manifest_304
check "Accept negotiation: index for a manifest-only Accept is 404; Accept lines merged" accept_negotiation
check "unknown manifests: 404 MANIFEST_UNKNOWN JSON" manifest_unknown
check "media type from the sidecar (index pushed without mediaType)" manifest_type_from_sidecar
check "media type from the body when the sidecar is missing or stale" manifest_type_fallback
check "blob GET/HEAD: octet-stream, digest, ETag, immutable, bytes" blob_headers
check "blob Range: 206 with Content-Range" blob_range
check "blob of another repository: 404 BLOB_UNKNOWN" blob_other_repo
check "tags/list and _catalog: static JSON, revalidate, 304, NAME_UNKNOWN" lists
check "referrers of an unknown digest: 200 empty index" referrers
check "API down: paginated lists and referrer filters get 503 JSON" api_only_requests_503
check "API down: POST/PUT/DELETE and a skopeo push fail cleanly (503)" writes_fail_cleanly
check "private files (config, .meta, uploads, raw blobs) never served" private_paths

# --- 3. the API back on the same root -----------------------------------------------------

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
    local mark api
    mark="$(log_lines "$SERVER_LOG")"
    "${SK[@]}" copy --preserve-digests --src-tls-verify=false \
        "docker://$NGINX/test/app:v2" "oci:$WORK/pulled2:v2"
    assert_eq "manifest digest" "$IMG2_DIGEST" "$(layout_ref_digest "$WORK/pulled2" v2)"
    layout_intact "$WORK/pulled2"
    api="$(api_requests "$mark")"
    echo "API requests during the pull: $api"
    assert_eq "requests that reached the API during the pull" 0 "${api% *}"
}

delete_through_nginx() {
    "${SK[@]}" delete --tls-verify=false "docker://$NGINX/test/app:v2"
    req GET /v2/test/app/manifests/v2
    expect_error 404 MANIFEST_UNKNOWN
    req GET /v2/test/app/tags/list
    assert_eq tags '["v1"]' "$(jq -c .tags "$WORK/b")"
}

nginx_error_log_clean() {
    if grep -a -E 'js exception|\[(crit|alert|emerg)\]' "$NGX/error.log"; then
        return 1
    fi
    # proxy_request_buffering off: no push was spooled to disk on its way to the API.
    if grep -a 'buffered to a temporary file' "$NGX/error.log"; then
        return 1
    fi
}

start_api >"$STEP_LOG" 2>&1 || true
check "API restarted on the same root and port, reached through nginx" api_back
check "push again through nginx (test/app:v2), tag list updated" push_again
check "pull test/app:v2 through nginx: digests match, 0 requests reach the API" pull_again
check "skopeo delete through nginx; nginx stops serving the tag at once" delete_through_nginx
check "nginx error log: no njs exceptions, nothing critical, no request body spooled" nginx_error_log_clean

[[ -f "$WORK/measured" ]] && sed 's/^/# measured: /' "$WORK/measured"
echo "$PASSED passed, $FAILED failed"
[[ "$FAILED" -eq 0 ]]
