#!/usr/bin/env bash
# Real clients against an auth-enabled registry (docs/auth.md): skopeo --creds, podman
# login, oras (Python SDK, oras_auth.py) and `cargohold push | pull | copy --creds` speak
# the token flow; anonymous pull of a public repository, a private one denied anonymously
# and served with credentials, a push denied without push rights, a robot token, a
# cross-repository mount with and without pull on the source. Then `upload_url`
# (docs/configuration.md): the registry restarted with upload POSTs answered by a
# Location on another port, where an nginx that drops Authorization stands for the
# DNS-only upload host; skopeo, podman and containerd's `ctr` push through it on the
# session URL's capability alone. Last, a registry whose tokens live a second: a token
# expiring in the middle of a cargohold push (the client fetches a new one). The
# configuration reaches the server as CARGOHOLD_CONFIG, CARGOHOLD_UPLOAD_URL and
# CARGOHOLD_TOKEN_TTL, so the S3 adapter
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
    refused "${PM[@]}" login --tls-verify=false -u alice --password-stdin "$HOST" <<<wrong
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
    refused "${SK[@]}" copy --dest-tls-verify=false --dest-creds "robot\$ci:$secret" \
        "oci:$WORK/img:v1" "docker://$HOST/private/ci:v1"
    "$BIN" token revoke ci
    ! "${SK[@]}" copy --dest-tls-verify=false --dest-creds "robot\$ci:$secret" \
        "oci:$WORK/img:v1" "docker://$HOST/public/ci:v2"
}

signing_key_is_openssl_readable() {
    openssl pkey -in "$WORK/auth/signing-key.pem" -noout
    openssl pkey -in "$WORK/auth/signing-key.pem" -pubout | grep -q 'BEGIN PUBLIC KEY'
}

# --- cargohold's own client ---------------------------------------------------------------
IMG_DIGEST="$(layout_ref_digest "$WORK/img" v1)"
IMG_MANIFEST="$(layout_blob "$WORK/img" "$IMG_DIGEST")"
# requests PATTERN: access-log lines of the registry matching PATTERN (settle first: the
# server writes them in batches, at most a second late).
requests() { grep -cE -- "$1" "$SERVER_LOG" || true; }
settle() { sleep 1.2; }

cli_push_and_pull() {
    "$BIN" push --quiet --creds alice:pw-alice "$WORK/img" "$HOST/private/cli:v1"
    "$BIN" push --quiet --creds alice:pw-alice "$WORK/img" "$HOST/public/cli:v1"
    "$BIN" pull --quiet --creds bob:pw-bob "$HOST/private/cli:v1" "$WORK/cli-private"
    assert_eq "pulled digest" "$IMG_DIGEST" "$(layout_ref_digest "$WORK/cli-private" v1)"
    layout_intact "$WORK/cli-private"
}

cli_private_denied_anonymously() {
    refused "$BIN" pull --quiet "$HOST/private/cli:v1" "$WORK/cli-anon" 2>"$WORK/err"
    cat "$WORK/err"
    grep -qiE 'denied|unauthorized|401' "$WORK/err"
}

cli_public_anonymously() {
    "$BIN" pull --quiet "$HOST/public/cli:v1" "$WORK/cli-public"
    assert_eq "pulled digest" "$IMG_DIGEST" "$(layout_ref_digest "$WORK/cli-public" v1)"
    layout_intact "$WORK/cli-public"
}

cli_push_denied() {
    refused "$BIN" push --quiet --creds bob:pw-bob "$WORK/img" "$HOST/private/cli-bob:v1" 2>"$WORK/err"
    cat "$WORK/err"
    refused "$BIN" push --quiet "$WORK/img" "$HOST/public/cli-anon:v1"
    # Nothing of either arrived.
    [[ $(curl -s -o /dev/null -w '%{http_code}' -u alice:pw-alice \
        "http://$HOST/v2/private/cli-bob/manifests/v1") == 404 ]]
}

# With pull on the source (alice, private/cli -> public/cli-copy): each blob is mounted,
# not sent (the mount answers 201). Without it (a robot that may push public/ci*, not
# read private/*): the copy is refused, and a mount the robot asks for itself opens an
# upload session (202) instead of revealing the blob.
cli_cross_repository_mount() {
    settle
    local before out secret layer token loc
    before=$(requests 'method=POST path="/v2/public/cli-copy/blobs/uploads/" status=201')
    "$BIN" copy --quiet --no-direct --creds alice:pw-alice "$HOST/private/cli:v1" "$HOST/public/cli-copy:v1"
    inspect_matches "$HOST/public/cli-copy:v1" "$IMG_DIGEST" "$IMG_MANIFEST"
    settle
    assert_eq "blobs mounted" 3 \
        $(($(requests 'method=POST path="/v2/public/cli-copy/blobs/uploads/" status=201') - before))
    out="$("$BIN" token create mounter --repo 'public/ci*' --access pull,push)"
    secret="$(awk '/^password: /{print $2}' <<<"$out")"
    refused "$BIN" copy --quiet --creds "robot\$mounter:$secret" "$HOST/private/cli:v1" "$HOST/public/ci-copy:v1"
    layer="$(jq -r '.layers[1].digest' "$IMG_MANIFEST")"
    token="$(curl -sf -u "robot\$mounter:$secret" \
        "http://$HOST/token?service=cargohold&scope=repository:public/ci-mount:pull,push&scope=repository:private/cli:pull" |
        jq -r .token)"
    loc="$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -X POST -H "Authorization: Bearer $token" \
        "http://$HOST/v2/public/ci-mount/blobs/uploads/?mount=$layer&from=private/cli")"
    assert_eq "mount without pull on the source" 202 "${loc%% *}"
    assert_eq "the blob in public/ci-mount" 404 "$(curl -s -o /dev/null -w '%{http_code}' -I \
        -H "Authorization: Bearer $token" "http://$HOST/v2/public/ci-mount/blobs/$layer")"
    "$BIN" token revoke mounter
}

# A server whose tokens live a second (+1 s leeway): the push, in small chunks, is paused
# (SIGSTOP) in the middle of its large layer for longer than its token lives; its next
# PATCH is refused (401), and the client fetches a new token and carries on.
cli_token_expires_mid_push() {
    make_image_layout "$WORK/long" v1 amd64 65536
    local pid i digest patches='method=PATCH path="/v2/private/long/blobs/uploads/[^"]*"'
    "$BIN" push --quiet --no-direct --creds alice:pw-alice --jobs 1 --chunk-size $((64 << 10)) \
        "$WORK/long" "$HOST/private/long:v1" &
    pid=$!
    # The small layer takes one PATCH; the large one 1024, seconds' worth even on a fast
    # machine, while the server's log (written in batches) lags up to a second.
    for i in $(seq 1 300); do
        [[ $(requests "$patches status=202") -ge 3 ]] && break
        sleep 0.05
    done
    kill -STOP "$pid"
    sleep 3
    kill -CONT "$pid"
    wait "$pid"
    settle
    echo "PATCHes: $(requests "$patches status=202") accepted, $(requests "$patches status=401") refused"
    [[ $(requests "$patches status=401") -ge 1 ]]
    digest="$(layout_ref_digest "$WORK/long" v1)"
    "$BIN" pull --quiet --creds bob:pw-bob "$HOST/private/long:v1" "$WORK/long-back"
    assert_eq "pulled digest" "$digest" "$(layout_ref_digest "$WORK/long-back" v1)"
    layout_intact "$WORK/long-back"
}

check "auth: the generated signing key is PKCS#8 that openssl reads" signing_key_is_openssl_readable
check "auth: /v2/ answers 401 with a Bearer challenge" base_challenges
check "auth: skopeo --dest-creds pushes to a private repository" push_private_with_creds
check "auth: an anonymous push is refused" anonymous_push_refused
check "auth: a private repository is denied anonymously" private_denied_anonymously
check "auth: a private repository is served with credentials" private_served_with_creds
check "auth: a push without push rights is refused" push_denied_without_push_rights
check "auth: cargohold push --creds (alice), pull --creds (bob) of a private repository" cli_push_and_pull
check "auth: cargohold pull of a private repository is denied anonymously" cli_private_denied_anonymously
check "auth: cargohold pull of a public repository anonymously" cli_public_anonymously
check "auth: cargohold push without push rights (bob, anonymous) is refused" cli_push_denied
check "auth: cargohold copy mounts with pull on the source; without it, no mount (202)" cli_cross_repository_mount
mkdir -p "$WORK/oras"
if oras_ready; then
    # Its checks print their own ok/not ok lines.
    "$ORAS_PYTHON" "$CLIENTS_DIR/oras_auth.py" "$HOST" "$WORK/oras" || FAILED=$((FAILED + 1))
fi
# From here on failed logins lock the address for a while (tests/api: backoff), which the
# clients above would have to wait out.
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

# Tokens of a second from here on: a new server (the users stay, the store is new), its
# uploads on its own address again.
stop_registry
unset CARGOHOLD_UPLOAD_URL
export CARGOHOLD_TOKEN_TTL=1s
start_registry || exit 1
check "auth: a token expiring in the middle of a cargohold push: a new one, the push completes" \
    cli_token_expires_mid_push
finish
