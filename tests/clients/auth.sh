#!/usr/bin/env bash
# Real clients against an auth-enabled registry (docs/auth.md): skopeo --creds and
# podman login speak the token flow; anonymous pull of a public repository, a private
# one denied anonymously and served with credentials, a push denied without push rights,
# a robot token. Then `upload_url` (docs/configuration.md): the registry restarted with
# upload POSTs answered by a Location on another port, where an nginx that drops
# Authorization stands for the DNS-only upload host; skopeo, podman and containerd's
# `ctr` push through it on the session URL's capability alone. The configuration
# reaches the server as CARGOHOLD_CONFIG and CARGOHOLD_UPLOAD_URL, so the S3 adapter
# (REGISTRY_CMD=tests/clients/cargohold-s3-serve.sh) runs it too.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

client_init auth
make_image_layout "$WORK/img" v1 amd64 256
BIN="${CARGOHOLD_BIN:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/cargohold}"
auth_setup "basic = true"
start_registry || exit 1
PM=(podman --root "$WORK/storage" --runroot "$WORK/run"
    --storage-driver "${PODMAN_STORAGE_DRIVER:-vfs}" --events-backend none)
export REGISTRY_AUTH_FILE="$WORK/podman-auth.json"
echo "{}" >"$REGISTRY_AUTH_FILE"

base_challenges() {
    local hdr
    hdr="$(curl -s -o /dev/null -D - "http://$HOST/v2/" | tr -d '\r')"
    grep -q '^HTTP/1.1 401' <<<"$hdr"
    grep -qi '^www-authenticate: Bearer realm="http://.*/token",service="cargohold"' <<<"$hdr"
}

push_private_with_creds() {
    "${SK[@]}" copy --dest-tls-verify=false --dest-creds alice:pw-alice \
        "oci:$WORK/img:v1" "docker://$HOST/private/app:v1"
}

anonymous_push_refused() {
    ! "${SK[@]}" copy --dest-tls-verify=false "oci:$WORK/img:v1" "docker://$HOST/public/anon:v1"
}

private_denied_anonymously() {
    ! "${SK[@]}" inspect --tls-verify=false "docker://$HOST/private/app:v1"
}

private_served_with_creds() {
    "${SK[@]}" inspect --tls-verify=false --creds bob:pw-bob "docker://$HOST/private/app:v1" >/dev/null
    "${SK[@]}" copy --src-tls-verify=false --src-creds bob:pw-bob \
        "docker://$HOST/private/app:v1" "oci:$WORK/back:v1"
}

push_denied_without_push_rights() {
    ! "${SK[@]}" copy --dest-tls-verify=false --dest-creds bob:pw-bob \
        "oci:$WORK/img:v1" "docker://$HOST/private/bob:v1"
}

podman_login_and_push() {
    (cd "$WORK" && "${PM[@]}" pull -q oci:img:v1 >"$WORK/image-id")
    ! echo wrong | "${PM[@]}" login --tls-verify=false -u alice --password-stdin "$HOST"
    # The failed login above slows the next one by a second: wait it out.
    sleep 1.2
    echo pw-alice | "${PM[@]}" login --tls-verify=false -u alice --password-stdin "$HOST"
    "${PM[@]}" push --tls-verify=false "$(cat "$WORK/image-id")" "$HOST/public/podman:v1"
    "${PM[@]}" logout "$HOST"
}

anonymous_pull_of_public() {
    "${SK[@]}" inspect --tls-verify=false "docker://$HOST/public/podman:v1" >/dev/null
    curl -sf "http://$HOST/v2/public/podman/tags/list" | jq -e '.tags == ["v1"]'
}

robot_token_pushes_where_allowed() {
    local out secret
    out="$("$BIN" token create ci --repo 'public/ci*' --access pull,push)"
    secret="$(awk '/^password: /{print $2}' <<<"$out")"
    "${SK[@]}" copy --dest-tls-verify=false --dest-creds "robot\$ci:$secret" \
        "oci:$WORK/img:v1" "docker://$HOST/public/ci:v1"
    ! "${SK[@]}" copy --dest-tls-verify=false --dest-creds "robot\$ci:$secret" \
        "oci:$WORK/img:v1" "docker://$HOST/private/ci:v1"
    "$BIN" token revoke ci
    ! "${SK[@]}" copy --dest-tls-verify=false --dest-creds "robot\$ci:$secret" \
        "oci:$WORK/img:v1" "docker://$HOST/public/ci:v2"
}

check "auth: /v2/ answers 401 with a Bearer challenge" base_challenges
check "auth: skopeo --dest-creds pushes to a private repository" push_private_with_creds
check "auth: an anonymous push is refused" anonymous_push_refused
check "auth: a private repository is denied anonymously" private_denied_anonymously
check "auth: a private repository is served with credentials" private_served_with_creds
check "auth: a push without push rights is refused" push_denied_without_push_rights
check "auth: podman login (wrong, then right password) and push" podman_login_and_push
check "auth: anonymous pull of a public repository" anonymous_pull_of_public
check "auth: a robot token pushes where allowed, and not once revoked" robot_token_pushes_where_allowed

# --- upload_url --------------------------------------------------------------------------

# start_upload_host: nginx on UP_PORT passing everything to the registry with the
# Authorization header removed. Its log says whether each request came with one.
start_upload_host() {
    local dir="$WORK/upload-host"
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<NGINX
user root root;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 64; }
http {
    map \$http_authorization \$credentials { "" none; default sent; }
    log_format upload '\$request_method \$uri \$status credentials=\$credentials';
    access_log $dir/access.log upload;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$UP_PORT;
        client_max_body_size 0;
        location / {
            proxy_pass http://$HOST;
            proxy_http_version 1.1;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_set_header Authorization "";
        }
    }
}
NGINX
    nginx -e "$dir/error.log" -c "$dir/nginx.conf" -p "$dir/" -g 'daemon off;' >>"$dir/stdout.log" 2>&1 &
    local pid=$!
    EXTRA_PIDS+=("$pid")
    wait_http "http://127.0.0.1:$UP_PORT/v2/" "$pid" 10 401
}

# uploaded_via_upload_host REPO CREDENTIALS: the upload host passed on a closing PUT of
# REPO that the registry answered 201, and it came with CREDENTIALS (sent or none).
uploaded_via_upload_host() {
    cat "$WORK/upload-host/access.log"
    grep -q "^PUT /v2/$1/blobs/uploads/[^ ]* 201 credentials=$2" "$WORK/upload-host/access.log"
}

skopeo_pushes_via_upload_host() {
    "${SK[@]}" copy --dest-tls-verify=false --dest-creds alice:pw-alice \
        "oci:$WORK/img:v1" "docker://$HOST/public/up-skopeo:v1"
    uploaded_via_upload_host public/up-skopeo sent
    pull_image_matches "$HOST/public/up-skopeo:v1" "$IMG_DIGEST" "$IMG_MANIFEST" "$WORK/up-skopeo"
}

podman_pushes_via_upload_host() {
    echo pw-alice | "${PM[@]}" login --tls-verify=false -u alice --password-stdin "$HOST"
    "${PM[@]}" push --tls-verify=false "$(cat "$WORK/image-id")" "$HOST/public/up-podman:v1"
    "${PM[@]}" logout "$HOST"
    uploaded_via_upload_host public/up-podman sent
    "${SK[@]}" inspect --tls-verify=false "docker://$HOST/public/up-podman:v1" >/dev/null
}

# containerd drops the authorizer when a Location names another host: its PUT reaches
# the upload host with no credentials at all.
ctr_pushes_via_upload_host() {
    tar -C "$WORK/img" -cf "$WORK/img.tar" .
    "${CTR[@]}" images import --no-unpack --base-name "$HOST/public/up-ctr" "$WORK/img.tar"
    "${CTR[@]}" images push --plain-http --user alice:pw-alice "$HOST/public/up-ctr:v1"
    uploaded_via_upload_host public/up-ctr none
    pull_image_matches "$HOST/public/up-ctr:v1" "$IMG_DIGEST" "$IMG_MANIFEST" "$WORK/up-ctr"
}

# The session URL without its capability is refused; with it, no credentials are needed.
session_url_needs_its_capability() {
    local loc
    loc="$(curl -sf -X POST -u alice:pw-alice -D - -o /dev/null "http://$HOST/v2/private/up/blobs/uploads/" |
        tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')"
    echo "Location: $loc"
    [[ "$loc" == "http://127.0.0.1:$UP_PORT/v2/private/up/blobs/uploads/"*"?cap="* ]]
    assert_eq "PATCH without the capability" 401 \
        "$(curl -s -o /dev/null -w '%{http_code}' -X PATCH --data-binary x "${loc%%\?*}")"
    assert_eq "PATCH with it" 202 \
        "$(curl -s -o /dev/null -w '%{http_code}' -X PATCH --data-binary x "$loc")"
}

IMG_DIGEST="$(layout_ref_digest "$WORK/img" v1)"
IMG_MANIFEST="$(layout_blob "$WORK/img" "$IMG_DIGEST")"
stop_registry
UP_PORT="$(free_port)"
export CARGOHOLD_UPLOAD_URL="http://127.0.0.1:$UP_PORT"
if start_registry && start_upload_host >"$STEP_LOG" 2>&1; then
    check "upload_url: skopeo pushes, its uploads on the other host (credentials dropped there)" \
        skopeo_pushes_via_upload_host
    check "upload_url: podman pushes, its uploads on the other host (credentials dropped there)" \
        podman_pushes_via_upload_host
    if command -v containerd >/dev/null && start_containerd >"$STEP_LOG" 2>&1; then
        check "upload_url: ctr push sends no credentials to the other host, and succeeds" \
            ctr_pushes_via_upload_host
    else
        echo "not ok - upload_url: containerd starts (apt-get install containerd)"
        FAILED=$((FAILED + 1))
    fi
    check "upload_url: a session URL without its capability is refused" \
        session_url_needs_its_capability
else
    echo "not ok - upload_url: the registry restarts with upload_url, nginx proxies the upload host"
    FAILED=$((FAILED + 1))
fi
finish
