# shellcheck shell=bash
# Helpers for tests/static/: cargohold (JSON request log) and a private nginx running
# infra/nginx/cargohold.conf, both started and stopped by PID, and curl assertions.
# Sourced; it sources tests/clients/lib.sh (layouts, check, assert_eq, free_port,
# stop_registry). The scenario sets WORK (client_init), ROOT, NGX and API_PORT.

STATIC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../clients/lib.sh
source "$STATIC_DIR/../clients/lib.sh"
CONF_DIR="$REPO_ROOT/infra/nginx"
NJS_MODULE="${NJS_MODULE:-/usr/lib/nginx/modules/ngx_http_js_module.so}"
read -r -a API_CMD <<<"$REGISTRY_CMD"
NGINX_PID=""

# static_require: says clearly what is missing and exits, with the summary line.
static_require() {
    local -a missing=()
    local tool m
    command -v nginx >/dev/null || missing+=("nginx (apt-get install nginx)")
    [[ -f "$NJS_MODULE" ]] || missing+=("the njs module $NJS_MODULE (apt-get install libnginx-mod-http-js)")
    for tool in skopeo podman jq curl python3 runuser; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    [[ -x "${API_CMD[0]}" ]] || missing+=("${API_CMD[0]} (cargo build --bin cargohold)")
    if [[ ${#missing[@]} -gt 0 ]]; then
        for m in "${missing[@]}"; do
            echo "not ok - missing $m"
        done
        echo "0 passed, ${#missing[@]} failed"
        exit 1
    fi
}

# --- the API server ---------------------------------------------------------------------

# start_api: cargohold on $API_PORT over $ROOT (kept between starts), JSON log lines
# (one per request, target cargohold::request) appended to $SERVER_LOG.
start_api() {
    mkdir -p "$ROOT"
    "${API_CMD[@]}" serve --listen "127.0.0.1:$API_PORT" --root "$ROOT" --log-format json \
        >>"$SERVER_LOG" 2>&1 &
    REG_PID=$!
    wait_for_registry
}

# Waits until the API started as $REG_PID answers GET /v2/ on $API_PORT (30 s at most).
wait_for_registry() {
    local i code
    for ((i = 0; i < 300; i++)); do
        kill -0 "$REG_PID" 2>/dev/null || break
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$API_PORT/v2/" || true)"
        [[ "$code" == 200 ]] && return 0
        sleep 0.1
    done
    echo "cargohold did not answer on 127.0.0.1:$API_PORT"
    tail -n 20 "$SERVER_LOG"
    stop_registry
    return 1
}

api_port_closed() {
    local rc=0
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$API_PORT/v2/" || rc=$?
    # 7: could not connect. Anything else (even a timeout) means something is there.
    assert_eq "curl exit status on the API port" 7 "$rc"
}

# api_requests SINCE_LINE: "<count> <bytes>" of the request lines cargohold logged after
# line SINCE_LINE of its log (bytes: the Content-Length of its answers).
api_requests() {
    api_log_settle
    tail -n "+$(($1 + 1))" "$SERVER_LOG" |
        jq -R -s -r '[split("\n")[] | fromjson? | select(.target == "cargohold::request")]
                     | "\(length) \(map(.fields.bytes // 0) | add // 0)"'
}

# cargohold writes request lines in batches, at most a second after the request
# (docs/configuration.md): a count or a mark of its log waits for the batch first.
api_log_settle() { sleep 1.2; }
log_lines() {
    [[ "$1" != "${SERVER_LOG:-}" ]] || api_log_settle
    wc -l <"$1" | tr -d ' '
}

# --- nginx ------------------------------------------------------------------------------

# write_nginx_conf: a private nginx.conf (temp paths, logs, pid all in $NGX) that loads
# njs and includes a copy of infra/nginx/cargohold.conf with the four EDIT values set.
write_nginx_conf() {
    local user want
    user="nobody $(id -gn nobody)"
    mkdir -p "$NGX"
    # The workers only need to read the data root; run them unprivileged when they can
    # reach it (mktemp made $WORK 0700), as a real installation would.
    chmod 755 "$WORK"
    if ! runuser -u nobody -- test -x "$ROOT" 2>/dev/null; then
        user="root root"
        echo "# nginx-fs: $ROOT is not reachable for nobody; nginx workers run as root" >&2
    fi
    sed -e "s|server 127.0.0.1:5000;|server 127.0.0.1:$API_PORT;|" \
        -e "s|/etc/nginx/njs/cargohold.js|$CONF_DIR/cargohold.js|" \
        -e "s|listen 8080;|listen 127.0.0.1:$NGINX_PORT;|" \
        -e "s|root /srv/cargohold;|root $ROOT;|" \
        "$CONF_DIR/cargohold.conf" >"$NGX/cargohold.conf"
    for want in "server 127.0.0.1:$API_PORT;" "js_import cargohold from $CONF_DIR/cargohold.js;" \
        "listen 127.0.0.1:$NGINX_PORT;" "root $ROOT;"; do
        grep -qF "$want" "$NGX/cargohold.conf" || {
            echo "infra/nginx/cargohold.conf changed: no '$want' after substitution"
            return 1
        }
    done
    cat >"$NGX/nginx.conf" <<EOF
load_module $NJS_MODULE;
user $user;
worker_processes 1;
pid $NGX/nginx.pid;
error_log $NGX/error.log info;
events { worker_connections 256; }
http {
    # Which requests were passed to the API (\$upstream_addr is "-" for static answers).
    log_format cargohold_test '\$request_method \$request_uri \$status \$body_bytes_sent \$upstream_addr \$request_length';
    access_log $NGX/access.log cargohold_test;
    client_body_temp_path $NGX/client_body;
    proxy_temp_path $NGX/proxy;
    fastcgi_temp_path $NGX/fastcgi;
    uwsgi_temp_path $NGX/uwsgi;
    scgi_temp_path $NGX/scgi;
    include $NGX/cargohold.conf;
}
EOF
}

start_nginx() {
    local i code _
    for _ in 1 2 3; do
        NGINX_PORT="$(free_port)"
        NGINX="127.0.0.1:$NGINX_PORT"
        write_nginx_conf || return 1
        nginx -t -q -e "$NGX/error.log" -c "$NGX/nginx.conf" -p "$NGX/" || return 1
        nginx -e "$NGX/error.log" -c "$NGX/nginx.conf" -p "$NGX/" -g 'daemon off;' \
            >>"$NGX/stdout.log" 2>&1 &
        NGINX_PID=$!
        for ((i = 0; i < 100; i++)); do
            kill -0 "$NGINX_PID" 2>/dev/null || break
            code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$NGINX/v2/" || true)"
            [[ "$code" == 200 ]] && return 0
            sleep 0.1
        done
        stop_nginx # the port may have been taken meanwhile: try another
    done
    tail -n 20 "$NGX/error.log"
    return 1
}

# Stops only the nginx this script started: SIGQUIT to its master, by PID.
stop_nginx() {
    [[ -n "$NGINX_PID" ]] || return 0
    local i
    if kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$NGINX_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$NGINX_PID" 2>/dev/null || true
    fi
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
}

# --- HTTP helpers for the curl checks -----------------------------------------------------

# req METHOD PATH [CURL_ARGS...]: one request to nginx; sets STATUS, headers in $WORK/h,
# body in $WORK/b. Every answer must carry Docker-Distribution-API-Version.
req() {
    local method="$1" path="$2"
    shift 2
    # curl -I writes the headers where the body would go; its size_download is the body.
    local -a how=(-X "$method" -o "$WORK/b")
    [[ "$method" == HEAD ]] && how=(-I -o /dev/null)
    : >"$WORK/b"
    local out
    out="$(curl -s --max-time 10 "${how[@]}" -D "$WORK/h" -w '%{http_code} %{size_download}' \
        "$@" "http://$NGINX$path")"
    STATUS="${out% *}"
    BODY_BYTES="${out#* }"
    echo "$method $path -> $STATUS, $BODY_BYTES body bytes"
    assert_eq "Docker-Distribution-API-Version on $method $path" registry/2.0 \
        "$(hdr Docker-Distribution-API-Version)"
}

hdr() { # the value of response header NAME of the last req, "" if absent
    tr -d '\r' <"$WORK/h" | awk -v n="$(tr '[:upper:]' '[:lower:]' <<<"$1")" '
        { i = index($0, ":") }
        i > 0 && tolower(substr($0, 1, i - 1)) == n { v = substr($0, i + 1); sub(/^ +/, "", v); print v }' |
        tail -n 1
}

expect() { # expect STATUS [HEADER VALUE]...
    assert_eq status "$1" "$STATUS"
    shift
    while [[ $# -gt 0 ]]; do
        assert_eq "$1" "$2" "$(hdr "$1")"
        shift 2
    done
}

expect_error() { # expect_error STATUS CODE: the spec's error envelope
    expect "$1" Content-Type application/json
    cat "$WORK/b"
    echo
    assert_eq "error code" "$2" "$(jq -r '.errors[0].code' "$WORK/b")"
    jq -e '.errors[0].message | type == "string"' "$WORK/b" >/dev/null
}

# Every blob file of an OCI layout hashes to its name.
layout_intact() {
    local f
    for f in "$1"/blobs/sha256/*; do
        assert_eq "blob $(basename "$f")" "sha256:$(basename "$f")" "$(sha256_of "$f")"
    done
}

# --- pulls both nginx scenarios check the same way (nginx at $NGINX, skopeo as ${SK[@]}) ---

static_inspect() {
    local out
    out="$("${SK[@]}" inspect --tls-verify=false "docker://$NGINX/test/app:v1")"
    echo "$out"
    assert_eq digest "$IMG_DIGEST" "$(jq -r .Digest <<<"$out")"
    assert_eq layers "$(layer_digests "$IMG_MANIFEST")" "$(jq -r '.Layers | join(" ")' <<<"$out")"
    "${SK[@]}" inspect --raw --tls-verify=false "docker://$NGINX/test/multi:v1" >"$WORK/idx-raw.json"
    assert_eq "index bytes" "$IDX_DIGEST" "$(sha256_of "$WORK/idx-raw.json")"
    out="$("${SK[@]}" --override-arch arm64 --override-os linux inspect --tls-verify=false \
        "docker://$NGINX/test/multi:v1")"
    assert_eq "arm64 through the index" arm64 "$(jq -r .Architecture <<<"$out")"
    assert_eq tags v1 "$("${SK[@]}" list-tags --tls-verify=false "docker://$NGINX/test/app" | jq -r '.Tags | join(" ")')"
}

static_pull_image() {
    "${SK[@]}" copy --preserve-digests --src-tls-verify=false \
        "docker://$NGINX/test/app:v1" "oci:$WORK/pulled:v1"
    local got
    got="$(layout_ref_digest "$WORK/pulled" v1)"
    assert_eq "manifest digest" "$IMG_DIGEST" "$got"
    assert_eq layers "$(layer_digests "$IMG_MANIFEST")" "$(layer_digests "$(layout_blob "$WORK/pulled" "$got")")"
    layout_intact "$WORK/pulled"
    cmp "$BIG_LAYER_FILE" "$(layout_blob "$WORK/pulled" "$BIG_LAYER")"
}

# --- checks both nginx scenarios share ---

referrers() {
    req GET "/v2/test/app/referrers/sha256:$(printf '%064d' 7)"
    expect 200 Content-Type "$OCI_INDEX" Cache-Control "public, max-age=0, must-revalidate"
    assert_eq body "{\"schemaVersion\":2,\"mediaType\":\"$OCI_INDEX\",\"manifests\":[]}" "$(cat "$WORK/b")"
    req GET "/v2/test/app/referrers/$IMG_DIGEST"
    expect 200 Content-Type "$OCI_INDEX"
    jq -e '.manifests == []' "$WORK/b"
}

api_only_requests_503() {
    local p
    for p in "/v2/test/app/tags/list?n=1" "/v2/_catalog?n=10&last=a" \
        "/v2/test/app/referrers/$IMG_DIGEST?artifactType=application/x-test"; do
        req GET "$p"
        expect_error 503 TOOMANYREQUESTS
        expect 503 Retry-After 10
    done
}

