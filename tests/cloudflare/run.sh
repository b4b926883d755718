#!/usr/bin/env bash
# infra/cloudflare/worker.js in Miniflare, pulled from by skopeo and curl, offline.
#
#   npm ci --prefix tests/cloudflare        # once: miniflare, from package-lock.json
#   bash tests/cloudflare/run.sh            # KEEP_TMP=1 keeps the scratch dir
#
# 1. target/debug/cargohold serves a fresh filesystem store; a multi-layer image and a
#    two-platform index are pushed to it, and a third image and a referrer through the
#    worker (which forwards writes to the API).
# 2. serve.mjs copies the store (minus .meta/, content types from the sidecars) into
#    Miniflare's local R2 bucket and serves the worker: W1 streams blobs; W2 redirects
#    blob GETs to a static server standing in for the bucket's custom domain, and its
#    bucket has no metadata at all.
# 3. cargohold stops; every pull then comes from R2 alone: skopeo inspect and copy (the
#    image, and --all of the index) with digests compared, and curl checks of headers.
# 4. auth on (auth.sh): a cargohold with rules; W3 challenges /v2/, serves public
#    repositories with no token, verifies tokens for private ones and serves them from R2,
#    refuses forged and expired tokens, all with the API stopped.
# Prints `ok - …`/`not ok - …` lines and `N passed, N failed`; exits non-zero on failure.
set -euo pipefail

CF_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The store's directory is what gets copied into R2: always cargohold on the filesystem.
unset REGISTRY_CMD
# shellcheck source-path=SCRIPTDIR source=../clients/lib.sh
source "$CF_DIR/../clients/lib.sh"

client_init cloudflare
WORKER_PIDS=()
STATIC_PID=""

cf_cleanup() {
    local rc=$? pid
    set +e
    # stop_pid (tests/lib/proc.sh): each worker leads its own process group (node + workerd).
    for pid in "${WORKER_PIDS[@]}"; do stop_pid "$pid"; done
    [[ -z "$STATIC_PID" ]] || stop_pid "$STATIC_PID"
    if [[ "$FAILED" -gt 0 || "$rc" -ne 0 ]]; then
        for f in "$WORK"/worker-*.log; do
            [[ -s "$f" ]] || continue
            echo "# last lines of $(basename "$f"):" >&2
            tail -n 15 "$f" | sed 's/^/#   /' >&2
        done
    fi
    (exit "$rc")
    client_cleanup
}
trap cf_cleanup EXIT
# The workers run in their own sessions: a TERM (from timeout, say) must still stop them.
trap 'exit 143' TERM
trap 'exit 130' INT

summary() {
    index_consistent # before the summary line, which must be the last
    echo "$PASSED passed, $FAILED failed"
    finish
}

if [[ ! -d "$CF_DIR/node_modules/miniflare" ]]; then
    echo "not ok - miniflare is installed (run: npm ci --prefix tests/cloudflare)"
    FAILED=$((FAILED + 1))
    summary
    exit 1
fi

# start_worker VAR ROOT [serve.mjs args]: serves the worker on a store copy; sets
# VAR_URL (https://127.0.0.1:P, self-signed: curl -k, skopeo --tls-verify=false), VAR_LOG
# and VAR_PID.
start_worker() {
    local var="$1" root="$2" log pid url=""
    shift 2
    log="$WORK/worker-${var,,}.log"
    # Its own process group, so a stuck node and its workerd can be stopped together.
    setsid node "$CF_DIR/serve.mjs" --root "$root" --api "http://$HOST" "$@" >"$log" 2>&1 &
    pid=$!
    WORKER_PIDS+=("$pid")
    if wait_until "$pid" 60 grep -q '^listening ' "$log"; then
        url="$(sed -n 's/^listening //p' "$log")"
    fi
    if [[ -z "$url" ]]; then
        echo "not ok - worker $var starts in Miniflare"
        FAILED=$((FAILED + 1))
        tail -n 30 "$log" | sed 's/^/#   /'
        return 1
    fi
    echo "# worker $var: pid $pid on $url" >&2
    printf -v "${var}_URL" '%s' "$url"
    printf -v "${var}_LOG" '%s' "$log"
    printf -v "${var}_PID" '%s' "$pid"
}

# sync_worker VAR: copies the store into the worker's bucket again (SIGUSR2) and waits.
sync_worker() {
    local log_var="${1}_LOG" pid_var="${1}_PID" next
    local log="${!log_var}" pid="${!pid_var}"
    next=$(($(grep -c '^synced ' "$log") + 1))
    kill -USR2 "$pid"
    wait_until "$pid" 60 grep -q -E "^(synced|sync-failed) $next( |\$)" "$log" || true
    grep -q "^synced $next " "$log" && return 0
    echo "sync of worker $1 did not finish"
    return 1
}

# --- HTTP helpers (used inside checks) ---------------------------------------------
# req [curl args] URL: headers to $WORK/h, body to $WORK/b; prints the status code.
req() {
    : >"$WORK/h"
    : >"$WORK/b" # curl leaves the file alone when there is no body
    curl -sk --max-time 30 -D "$WORK/h" -o "$WORK/b" -w '%{http_code}' "$@"
}
# hdr NAME: the last response's header value ('' if absent).
hdr() { { grep -i "^$1:" "$WORK/h" || true; } | tail -n 1 | cut -d: -f2- | sed 's/^ *//' | tr -d '\r'; }
# expect STATUS [curl args] URL: the status, and the API version header every answer has.
expect() {
    local want="$1" got
    shift
    got="$(req "$@")"
    assert_eq "status of ${*: -1}" "$want" "$got" || { head -c 600 "$WORK/b"; echo; return 1; }
    assert_eq "Docker-Distribution-API-Version of ${*: -1}" registry/2.0 "$(hdr Docker-Distribution-API-Version)"
}
# expect_error STATUS CODE [curl args] URL: the spec's error envelope.
expect_error() {
    local status="$1" code="$2"
    shift 2
    expect "$status" "$@"
    assert_eq "Content-Type" application/json "$(hdr Content-Type)"
    assert_eq "error code" "$code" "$(jq -r '.errors[0].code' "$WORK/b")"
    jq -e '.errors[0].message | type == "string"' "$WORK/b" >/dev/null
}
host_of() { echo "${1#https://}"; }

MANIFEST_ACCEPT="$OCI_MANIFEST, $OCI_INDEX, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"
EMPTY_DIGEST=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a
NOTE_TYPE=application/vnd.cargohold.test.note
SECRET="cargohold-unfinished-upload-$RANDOM$RANDOM"

check "worker unit tests (node --test)" node --test "$CF_DIR/worker.test.mjs"

make_image_layout "$WORK/img" v1 amd64 1024 # a 1 MiB random layer
make_index_layout "$WORK/multi" v1
make_image_layout "$WORK/via" v1 arm64 16
SRC_DIGEST="$(layout_ref_digest "$WORK/img" v1)"
SRC_MANIFEST="$(layout_blob "$WORK/img" "$SRC_DIGEST")"
BIG_LAYER="$(jq -r '.layers[1].digest' "$SRC_MANIFEST")"
IDX_DIGEST="$(layout_ref_digest "$WORK/multi" v1)"
IDX_BLOB="$(layout_blob "$WORK/multi" "$IDX_DIGEST")"
MULTI_LAYER="$(jq -r '.layers[1].digest' "$(layout_blob "$WORK/multi" "$(jq -r '.manifests[0].digest' "$IDX_BLOB")")")"
VIA_DIGEST="$(layout_ref_digest "$WORK/via" v1)"

# R2's multipart rule (equal parts of at least 5 MiB): the bytes of an unfinished upload
# short of a part are then kept as uploads/<id>/tail-<id>, an object in the bucket.
export CARGOHOLD_PART_SIZE=$((5 << 20))
start_registry || { summary; exit 1; }
ROOT="$WORK/registry-root"
start_worker W1 "$ROOT" || { summary; exit 1; }
W1H="$(host_of "$W1_URL")"

# --- 1. pushes, while the API runs -------------------------------------------------
push_image() {
    "${SK[@]}" copy --preserve-digests --dest-tls-verify=false "oci:$WORK/img:v1" "docker://$HOST/test/app:v1"
    "${SK[@]}" copy --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
        "docker://$HOST/test/app:v1" "docker://$HOST/test/app:v2"
}
push_index() {
    "${SK[@]}" copy --all --preserve-digests --dest-tls-verify=false "oci:$WORK/multi:v1" "docker://$HOST/test/multi:v1"
}
# skopeo through the worker: its HEADs are answered from the (still empty) bucket, its
# POST/PATCH/PUT go to the API with their bodies.
push_through_worker() {
    "${SK[@]}" copy --preserve-digests --dest-tls-verify=false "oci:$WORK/via:v1" "docker://$W1H/test/via:v1"
    assert_eq "digest at the API" "$VIA_DIGEST" \
        "$("${SK[@]}" inspect --tls-verify=false "docker://$HOST/test/via:v1" | jq -r .Digest)"
}
# An artifact whose subject is test/app's manifest, pushed with curl through the worker.
push_referrer() {
    expect 201 -X POST -H 'Content-Type: application/octet-stream' --data-binary '{}' \
        "$W1_URL/v2/test/app/blobs/uploads/?digest=$EMPTY_DIGEST"
    jq -cn --arg mt "$OCI_MANIFEST" --arg at "$NOTE_TYPE" --arg e "$EMPTY_DIGEST" \
        --arg s "$SRC_DIGEST" --argjson n "$(stat -c %s "$SRC_MANIFEST")" '{
        schemaVersion: 2, mediaType: $mt, artifactType: $at,
        config: {mediaType: "application/vnd.oci.empty.v1+json", digest: $e, size: 2},
        layers: [{mediaType: "application/vnd.oci.empty.v1+json", digest: $e, size: 2}],
        subject: {mediaType: $mt, digest: $s, size: $n}
    }' | tr -d '\n' >"$WORK/note.json"
    expect 201 -X PUT -H "Content-Type: $OCI_MANIFEST" --data-binary "@$WORK/note.json" \
        "$W1_URL/v2/test/app/manifests/$(sha256_of "$WORK/note.json")"
    assert_eq OCI-Subject "$SRC_DIGEST" "$(hdr OCI-Subject)"
}
# cargohold's Location is relative and must stay so; the session is left open, so the
# bucket holds an uploads/ object with known bytes.
proxy_upload_session() {
    expect 202 -X POST "$W1_URL/v2/test/app/blobs/uploads/"
    local loc
    loc="$(hdr Location)"
    [[ "$loc" == /v2/test/app/blobs/uploads/* ]] || { echo "Location $loc is not relative"; return 1; }
    expect 202 -X PATCH -H 'Content-Type: application/octet-stream' --data-binary "$SECRET" "$W1_URL$loc"
    assert_eq Range "0-$((${#SECRET} - 1))" "$(hdr Range)"
    grep -rlq -- "$SECRET" "$ROOT/uploads"
}
# A query string goes to the API: the bucket is still empty, so only it can answer.
proxy_query() {
    expect 200 "$W1_URL/v2/test/app/tags/list?n=1"
    assert_eq "page" '["v1"]' "$(jq -c .tags "$WORK/b")"
    [[ "$(hdr Link)" == *'/v2/test/app/tags/list?n=1&last=v1>; rel="next"'* ]] || { echo "Link: $(hdr Link)"; return 1; }
}

check "cargohold: skopeo push multi-layer image test/app:v1 (+ tag v2)" push_image
check "cargohold: skopeo copy --all two-platform index test/multi:v1" push_index
check "proxy: skopeo push through the worker reaches the API" push_through_worker
check "proxy: monolithic blob POST + manifest PUT with subject" push_referrer
check "proxy: upload session POST/PATCH, relative Location kept" proxy_upload_session
check "proxy: GET with a query string is answered by the API" proxy_query

curl -s "http://$HOST/v2/_catalog" >"$WORK/api-catalog.json" || true
curl -s "http://$HOST/v2/test/app/tags/list" >"$WORK/api-tags.json" || true

# --- 2. the bucket ---------------------------------------------------------------
check "worker W1: store copied into R2 again (uploads/ included)" sync_worker W1
# W2's bucket: the same objects without any metadata, as `aws s3 sync` of the directory
# would leave them; its blob GETs redirect to a static server of that directory.
cp -a "$ROOT" "$WORK/bare-root"
rm -rf "$WORK/bare-root/.meta"
STATIC_PORT="$(free_port)"
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/bare-root" "$STATIC_PORT" \
    >"$WORK/static.log" 2>&1 &
STATIC_PID=$!
STATIC_URL="http://127.0.0.1:$STATIC_PORT"
start_worker W2 "$WORK/bare-root" --blobs-url "$STATIC_URL" || { summary; exit 1; }
W2H="$(host_of "$W2_URL")"

api_stopped() {
    if curl -s -o /dev/null --max-time 2 "http://$HOST/v2/"; then
        echo "the API still answers"
        return 1
    fi
}
stop_registry
check "cargohold stopped: from here on only R2 answers" api_stopped
wait_http "$STATIC_URL/config.json" "$STATIC_PID" 5 || true

# --- 3. pulls through the worker ---------------------------------------------------
pull_inspect() { # pull_inspect HOST
    inspect_matches "$1/test/app:v1" "$SRC_DIGEST" "$SRC_MANIFEST"
    "${SK[@]}" inspect --raw --tls-verify=false "docker://$1/test/app:v1" >"$WORK/raw.json"
    assert_eq "raw manifest digest" "$SRC_DIGEST" "$(sha256_of "$WORK/raw.json")"
    "${SK[@]}" inspect --config --raw --tls-verify=false "docker://$1/test/app:v1" >"$WORK/cfg.json"
    assert_eq "config digest" "$(jq -r .config.digest "$SRC_MANIFEST")" "$(sha256_of "$WORK/cfg.json")"
}
pull_copy() { # pull_copy HOST DEST
    pull_image_matches "$1/test/app:v1" "$SRC_DIGEST" "$SRC_MANIFEST" "$2"
    [[ -f "$(layout_blob "$2" "$BIG_LAYER")" ]]
}
pull_index_all() {
    pull_index_matches "$W1H/test/multi:v1" "$WORK/multi" "$WORK/multi-back"
}
pull_platform() {
    local child out
    child="$(jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest' "$IDX_BLOB")"
    out="$("${SK[@]}" --override-arch arm64 --override-os linux inspect --tls-verify=false "docker://$W1H/test/multi:v1")"
    assert_eq "arm64 architecture" arm64 "$(jq -r .Architecture <<<"$out")"
    assert_eq "arm64 layers" "$(jq -r '[.layers[].digest] | join(" ")' "$(layout_blob "$WORK/multi" "$child")")" \
        "$(jq -r '.Layers | join(" ")' <<<"$out")"
}
list_tags() {
    assert_eq tags "v1 v2" "$("${SK[@]}" list-tags --tls-verify=false "docker://$W1H/test/app" | jq -r '.Tags | join(" ")')"
    expect 200 "$W1_URL/v2/test/app/tags/list"
    cmp "$WORK/b" "$WORK/api-tags.json"
    assert_eq Content-Type application/json "$(hdr Content-Type)"
    assert_eq Cache-Control "public, max-age=0, must-revalidate" "$(hdr Cache-Control)"
    local etag
    etag="$(hdr ETag)"
    expect 304 -H "If-None-Match: $etag" "$W1_URL/v2/test/app/tags/list"
}
pull_pushed_through_worker() {
    "${SK[@]}" copy --preserve-digests --src-tls-verify=false "docker://$W1H/test/via:v1" "oci:$WORK/via-back:v1"
    assert_eq digest "$VIA_DIGEST" "$(layout_ref_digest "$WORK/via-back" v1)"
}

check "W1: skopeo inspect (+ --raw, --config) test/app:v1, digests match" pull_inspect "$W1H"
check "W1: skopeo copy test/app:v1 to an OCI layout, every blob verified" pull_copy "$W1H" "$WORK/back"
check "W1: skopeo copy --all test/multi:v1: index, both platforms, all blobs" pull_index_all
check "W1: skopeo inspect --override-arch arm64 resolves through the index" pull_platform
check "W1: skopeo list-tags; tags/list bytes, type, cache-control, 304" list_tags
check "W1: the image pushed through the worker pulls back" pull_pushed_through_worker

# --- 4. headers --------------------------------------------------------------------
base_endpoint() {
    expect 200 "$W1_URL/v2/"
    assert_eq body '{}' "$(cat "$WORK/b")"
    assert_eq Content-Type application/json "$(hdr Content-Type)"
    expect 200 -I "$W1_URL/v2/"
    expect 200 "$W1_URL/v2"
}
manifest_by_tag() {
    expect 200 -H "Accept: $MANIFEST_ACCEPT" "$W1_URL/v2/test/app/manifests/v1"
    cmp "$WORK/b" "$SRC_MANIFEST"
    assert_eq Content-Type "$OCI_MANIFEST" "$(hdr Content-Type)"
    assert_eq Docker-Content-Digest "$SRC_DIGEST" "$(hdr Docker-Content-Digest)"
    assert_eq ETag "\"$SRC_DIGEST\"" "$(hdr ETag)"
    assert_eq Cache-Control "public, max-age=0, must-revalidate" "$(hdr Cache-Control)"
    assert_eq Content-Length "$(stat -c %s "$SRC_MANIFEST")" "$(hdr Content-Length)"
}
manifest_by_digest() {
    expect 200 "$W1_URL/v2/test/app/manifests/$SRC_DIGEST"
    cmp "$WORK/b" "$SRC_MANIFEST"
    assert_eq Cache-Control "public, max-age=31536000, immutable" "$(hdr Cache-Control)"
    assert_eq Docker-Content-Digest "$SRC_DIGEST" "$(hdr Docker-Content-Digest)"
    expect 200 -I "$W1_URL/v2/test/app/manifests/$SRC_DIGEST"
    assert_eq "HEAD Content-Type" "$OCI_MANIFEST" "$(hdr Content-Type)"
    assert_eq "HEAD Content-Length" "$(stat -c %s "$SRC_MANIFEST")" "$(hdr Content-Length)"
    assert_eq "HEAD Cache-Control" "public, max-age=31536000, immutable" "$(hdr Cache-Control)"
}
manifest_head() {
    expect 200 -I -H "Accept: $MANIFEST_ACCEPT" "$W1_URL/v2/test/multi/manifests/v1"
    assert_eq Content-Type "$OCI_INDEX" "$(hdr Content-Type)"
    assert_eq Docker-Content-Digest "$IDX_DIGEST" "$(hdr Docker-Content-Digest)"
    assert_eq Content-Length "$(stat -c %s "$IDX_BLOB")" "$(hdr Content-Length)"
}
manifest_accept() {
    # An OCI index to a client listing only Docker manifests: unknown, as from the API.
    expect_error 404 MANIFEST_UNKNOWN -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "$W1_URL/v2/test/multi/manifests/v1"
    expect 200 -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' -H 'Accept: */*' \
        "$W1_URL/v2/test/multi/manifests/v1"
    expect 200 -H 'Accept: application/json' "$W1_URL/v2/test/multi/manifests/v1"
    expect 200 -H "Accept: $OCI_INDEX;q=0.9" "$W1_URL/v2/test/multi/manifests/v1"
}
manifest_not_modified() {
    expect 304 -H "If-None-Match: \"$SRC_DIGEST\"" "$W1_URL/v2/test/app/manifests/v1"
    assert_eq "304 body bytes" 0 "$(stat -c %s "$WORK/b")"
    assert_eq ETag "\"$SRC_DIGEST\"" "$(hdr ETag)"
    expect 200 -H 'If-None-Match: "sha256:other"' "$W1_URL/v2/test/app/manifests/v1"
}
blob_get() {
    local size
    size="$(stat -c %s "$(layout_blob "$WORK/img" "$BIG_LAYER")")"
    expect 200 "$W1_URL/v2/test/app/blobs/$BIG_LAYER"
    assert_eq "body digest" "$BIG_LAYER" "$(sha256_of "$WORK/b")"
    assert_eq Content-Type application/octet-stream "$(hdr Content-Type)"
    assert_eq Docker-Content-Digest "$BIG_LAYER" "$(hdr Docker-Content-Digest)"
    assert_eq Cache-Control "public, max-age=31536000, immutable" "$(hdr Cache-Control)"
    assert_eq Content-Length "$size" "$(hdr Content-Length)"
    expect 200 -I "$W1_URL/v2/test/app/blobs/$BIG_LAYER"
    assert_eq "HEAD Content-Length" "$size" "$(hdr Content-Length)"
    assert_eq "HEAD Docker-Content-Digest" "$BIG_LAYER" "$(hdr Docker-Content-Digest)"
}
blob_range() {
    local file size
    file="$(layout_blob "$WORK/img" "$BIG_LAYER")"
    size="$(stat -c %s "$file")"
    expect 206 -H 'Range: bytes=1000-1999' "$W1_URL/v2/test/app/blobs/$BIG_LAYER"
    assert_eq Content-Range "bytes 1000-1999/$size" "$(hdr Content-Range)"
    assert_eq Content-Length 1000 "$(hdr Content-Length)"
    cmp "$WORK/b" <(tail -c +1001 "$file" | head -c 1000)
    expect 206 -H 'Range: bytes=-100' "$W1_URL/v2/test/app/blobs/$BIG_LAYER"
    assert_eq Content-Range "bytes $((size - 100))-$((size - 1))/$size" "$(hdr Content-Range)"
    cmp "$WORK/b" <(tail -c 100 "$file")
    expect 206 -H "Range: bytes=$((size - 10))-" "$W1_URL/v2/test/app/blobs/$BIG_LAYER"
    assert_eq "open range bytes" 10 "$(stat -c %s "$WORK/b")"
    expect 416 -H "Range: bytes=$size-" "$W1_URL/v2/test/app/blobs/$BIG_LAYER"
    assert_eq Content-Range "bytes */$size" "$(hdr Content-Range)"
}
blob_other_repo() {
    # test/multi's layer exists in the bucket, but test/app has no link to it.
    expect 200 -I "$W1_URL/v2/test/multi/blobs/$MULTI_LAYER"
    expect_error 404 BLOB_UNKNOWN "$W1_URL/v2/test/app/blobs/$MULTI_LAYER"
    expect 404 -I "$W1_URL/v2/test/app/blobs/$MULTI_LAYER"
    expect_error 404 BLOB_UNKNOWN "$W1_URL/v2/test/nothing/blobs/$BIG_LAYER"
}
unknowns() {
    expect_error 404 MANIFEST_UNKNOWN "$W1_URL/v2/test/app/manifests/nope"
    expect_error 404 MANIFEST_UNKNOWN "$W1_URL/v2/test/app/manifests/sha256:$(printf '0%.0s' {1..64})"
    expect_error 404 MANIFEST_UNKNOWN "$W1_URL/v2/test/nothing/manifests/v1"
    expect_error 404 NAME_UNKNOWN "$W1_URL/v2/test/nothing/tags/list"
}
referrers() {
    expect 200 "$W1_URL/v2/test/app/referrers/$SRC_DIGEST"
    assert_eq Content-Type "$OCI_INDEX" "$(hdr Content-Type)"
    assert_eq "referrer" "$(sha256_of "$WORK/note.json") $NOTE_TYPE" \
        "$(jq -r '.manifests[] | .digest + " " + .artifactType' "$WORK/b")"
    expect 200 "$W1_URL/v2/test/app/referrers/$IDX_DIGEST"
    assert_eq Content-Type "$OCI_INDEX" "$(hdr Content-Type)"
    assert_eq Cache-Control "public, max-age=0, must-revalidate" "$(hdr Cache-Control)"
    assert_eq "empty index" "{\"schemaVersion\":2,\"mediaType\":\"$OCI_INDEX\",\"manifests\":[]}" "$(cat "$WORK/b")"
    expect 200 "$W1_URL/v2/test/nothing/referrers/$SRC_DIGEST"
}
catalog_and_config() {
    expect 200 "$W1_URL/v2/_catalog"
    cmp "$WORK/b" "$WORK/api-catalog.json"
    assert_eq repositories "test/app test/multi test/via" "$(jq -r '.repositories | join(" ")' "$WORK/b")"
    assert_eq Content-Type application/json "$(hdr Content-Type)"
    expect 200 "$W1_URL/config.json"
    assert_eq format_version 2 "$(jq -r .format_version "$WORK/b")"
}
# With the API down, what only it can answer fails cleanly; nothing falls back to R2.
api_only_requests() {
    expect_error 502 UNKNOWN "$W1_URL/v2/test/app/tags/list?n=1"
    expect_error 502 UNKNOWN -X PUT -H "Content-Type: $OCI_MANIFEST" --data-binary "@$SRC_MANIFEST" \
        "$W1_URL/v2/test/app/manifests/v9"
    expect_error 502 UNKNOWN -X DELETE "$W1_URL/v2/test/app/manifests/$SRC_DIGEST"
    expect 200 "$W1_URL/v2/test/app/manifests/$SRC_DIGEST"
}
# The bucket holds the open session's bytes (W1 synced uploads/); no path reaches them.
uploads_never_served() {
    local key id url code
    key="$(cd "$ROOT" && grep -rl -- "$SECRET" uploads | head -n 1)"
    [[ -n "$key" ]]
    id="$(cut -d/ -f2 <<<"$key")"
    for url in "/$key" "/v2/$key" "/v2/test/app/blobs/uploads/$id" "/v2/test/app/$key" \
        "/v2/test/app/manifests/../../../../$key" "/v2/test/app/manifests/..%2F..%2F..%2F..%2F${key//\//%2F}" \
        "/v2/test/app/blobs/..%2F..%2F..%2F..%2F${key//\//%2F}" "/v2/%2e%2e/%2e%2e/$key" "/blobs/../$key"; do
        code="$(curl -sk --path-as-is --max-time 10 -o "$WORK/b" -w '%{http_code}' "$W1_URL$url")"
        echo "$url -> $code"
        [[ "$code" != 2* ]] || { echo "served $url"; return 1; }
        if grep -q -- "$SECRET" "$WORK/b"; then
            echo "upload bytes leaked through $url"
            return 1
        fi
    done
}

check "GET/HEAD /v2/: 200 {} with Docker-Distribution-API-Version" base_endpoint
check "manifest by tag: bytes, type, digest, ETag, must-revalidate" manifest_by_tag
check "manifest by digest (GET, HEAD): immutable" manifest_by_digest
check "HEAD manifest (index): type, digest, length" manifest_head
check "manifest Accept negotiation: unlisted type is MANIFEST_UNKNOWN" manifest_accept
check "manifest If-None-Match: 304" manifest_not_modified
check "blob GET/HEAD: bytes, octet-stream, digest, immutable, length" blob_get
check "blob Range: 206 with Content-Range, suffix, open, 416" blob_range
check "blob of another repository: 404 BLOB_UNKNOWN" blob_other_repo
check "unknown manifest/repository: 404 JSON MANIFEST_UNKNOWN/NAME_UNKNOWN" unknowns
check "referrers: stored index, or empty OCI index 200" referrers
check "catalog bytes as the API's; /config.json" catalog_and_config
check "API down: query, PUT, DELETE answer 502 JSON; reads still served" api_only_requests
check "uploads/ objects are never served" uploads_never_served

# --- 5. W2: blob redirects, a bucket without metadata ------------------------------
redirect_blob() {
    expect 307 "$W2_URL/v2/test/app/blobs/$BIG_LAYER"
    assert_eq Location "$STATIC_URL/blobs/sha256/${BIG_LAYER#sha256:}" "$(hdr Location)"
    assert_eq Docker-Content-Digest "$BIG_LAYER" "$(hdr Docker-Content-Digest)"
    expect_error 404 BLOB_UNKNOWN "$W2_URL/v2/test/app/blobs/$MULTI_LAYER"
    expect 200 -I "$W2_URL/v2/test/app/blobs/$BIG_LAYER"
    assert_eq "HEAD Content-Length" "$(stat -c %s "$(layout_blob "$WORK/img" "$BIG_LAYER")")" "$(hdr Content-Length)"
}
no_metadata() {
    expect 200 "$W2_URL/v2/test/multi/manifests/v1"
    assert_eq "Content-Type from the body" "$OCI_INDEX" "$(hdr Content-Type)"
    assert_eq Docker-Content-Digest "$IDX_DIGEST" "$(hdr Docker-Content-Digest)"
    expect 200 -I "$W2_URL/v2/test/app/manifests/v1"
    assert_eq "HEAD Content-Type from the body" "$OCI_MANIFEST" "$(hdr Content-Type)"
    assert_eq "HEAD Docker-Content-Digest" "$SRC_DIGEST" "$(hdr Docker-Content-Digest)"
    expect 200 -I "$W2_URL/v2/test/multi/manifests/$IDX_DIGEST"
    assert_eq "HEAD by digest Content-Type" "$OCI_INDEX" "$(hdr Content-Type)"
    assert_eq "HEAD by digest Content-Length" "$(stat -c %s "$IDX_BLOB")" "$(hdr Content-Length)"
}
check "W2: blob GET is a 307 to the custom domain, after the repository check" redirect_blob
check "W2: no stored Content-Type: taken from the manifest's mediaType" no_metadata
check "W2: skopeo inspect through redirects and a bare bucket" pull_inspect "$W2H"
check "W2: skopeo copy through redirects, every blob verified" pull_copy "$W2H" "$WORK/back2"

# --- 6. W3: auth on (tests/cloudflare/auth.sh) ---------------------------------------
# shellcheck source-path=SCRIPTDIR source=auth.sh
source "$CF_DIR/auth.sh"

summary
