# shellcheck shell=bash
# Helpers for tests/static/nginx.sh: cargohold (JSON request log) and a private nginx
# running a copy of an infra/nginx/ config, both started and stopped by PID
# (tests/lib/proc.sh), and curl assertions. Sourced; it sources tests/clients/lib.sh
# (layouts, check, assert_eq, stop_registry, and through it free_port, stop_pid,
# wait_http). The scenario sets WORK (client_init), NGX, API_PORT, API_STORE_ARGS (the
# store's `serve` options), NGINX_CONF (a file in infra/nginx/), NGINX_EDITS (its
# store-specific EDIT values, FROM TO pairs) and NGINX_USER.

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


# --- the store ---------------------------------------------------------------------------

# static_require_s3: the CARGOHOLD_TEST_S3_* variables .ci/s3-servers.sh writes, or a
# clear failure and exit.
static_require_s3() {
    missing_s3=()
    for v in ENDPOINT REGION BUCKET ACCESS_KEY SECRET_KEY; do
        [[ -n "$(eval "echo \"\${CARGOHOLD_TEST_S3_$v:-}\"")" ]] || missing_s3+=("CARGOHOLD_TEST_S3_$v")
    done
    if [[ ${#missing_s3[@]} -gt 0 ]]; then
        echo "not ok - missing ${missing_s3[*]} (source .ci/.s3/env after .ci/s3-servers.sh start)"
        echo "0 passed, 1 failed"
        exit 1
    fi
}

# static_store fs|s3 (after client_init): the store the API writes and nginx reads. Sets
# API_STORE_ARGS, NGINX_CONF, NGINX_EDITS; STORED_IN, STORE_DESC, STORE_NOTE (words for the
# output); defines stored_status KEY (200 if the store holds KEY, else 404 or the bucket's
# status), cleanup_store, and on s3 `s3 METHOD KEY [CURL_ARGS...]` (a signed request).
# shellcheck disable=SC2034,SC2317 # set and defined for the scenario that sources this
static_store() {
    case "$1" in
    fs)
        ROOT="$WORK/registry-root"
        mkdir -p "$ROOT"
        API_STORE_ARGS=(--root "$ROOT")
        NGINX_CONF=cargohold.conf
        NGINX_EDITS=("root /srv/cargohold;" "root $ROOT;")
        STORED_IN=root
        # How late nginx may still answer a manifest from its cache after a write
        # (infra/nginx/cargohold.conf: kept until the end of the next second), plus slack.
        MANIFEST_CACHE_WINDOW=2.2
        STORE_DESC="the filesystem store $ROOT"
        STORE_NOTE=""
        if ! runuser -u nobody -- test -x "$ROOT" 2>/dev/null; then
            NGINX_USER="root root"
            echo "# nginx-fs: $ROOT is not reachable for nobody; nginx workers run as root" >&2
        fi
        stored_status() { if [[ -f "$ROOT/$1" ]]; then echo 200; else echo 404; fi; }
        cleanup_store() { :; }
        ;;
    s3)
        S3_ENDPOINT="${CARGOHOLD_TEST_S3_ENDPOINT%/}"
        S3_BUCKET="$CARGOHOLD_TEST_S3_BUCKET"
        S3_SCHEME="${S3_ENDPOINT%%://*}"
        S3_HOSTPORT="${S3_ENDPOINT#*://}"
        S3_HOSTPORT="${S3_HOSTPORT%%/*}"
        [[ "$S3_HOSTPORT" == *:* ]] || S3_HOSTPORT="$S3_HOSTPORT:$([[ $S3_SCHEME == https ]] && echo 443 || echo 80)"
        PREFIX="nginx-s3-$(date +%s)-$$-$RANDOM"
        BUCKET_URL="$S3_ENDPOINT/$S3_BUCKET/$PREFIX" # path-style, as cargohold is run here
        API_STORE_ARGS=(--storage s3 --s3-endpoint "$S3_ENDPOINT" --s3-region "$CARGOHOLD_TEST_S3_REGION"
            --s3-bucket "$S3_BUCKET" --s3-path-style
            --s3-access-key "$CARGOHOLD_TEST_S3_ACCESS_KEY" --s3-secret-key "$CARGOHOLD_TEST_S3_SECRET_KEY"
            --s3-prefix "$PREFIX")
        NGINX_CONF=cargohold-s3.conf
        # shellcheck disable=SC2016 # nginx variables, not the shell's
        NGINX_EDITS=("server 127.0.0.1:9000;" "server $S3_HOSTPORT;"
            'set $cargohold_s3 http://cargohold_bucket/registry;'
            "set \$cargohold_s3 $S3_SCHEME://cargohold_bucket/$S3_BUCKET/$PREFIX;"
            'set $cargohold_s3_host 127.0.0.1:9000;' "set \$cargohold_s3_host $S3_HOSTPORT;")
        STORED_IN=prefix
        MANIFEST_CACHE_WINDOW=0 # no manifest cache: every request reaches the bucket
        STORE_DESC="S3 ($S3_ENDPOINT, bucket $S3_BUCKET, prefix $PREFIX)"
        STORE_NOTE=", objects under $BUCKET_URL/"

        # s3 METHOD KEY [CURL_ARGS...]: a signed request (the test's keys) for the object KEY
        # under this run's prefix; prints the status. Only the test writes and cleans this way.
        s3() {
            local method="$1" key="$2"
            shift 2
            curl -s -o "$WORK/s3-body" -w '%{http_code}' --max-time 10 -X "$method" \
                --aws-sigv4 "aws:amz:$CARGOHOLD_TEST_S3_REGION:s3" \
                --user "$CARGOHOLD_TEST_S3_ACCESS_KEY:$CARGOHOLD_TEST_S3_SECRET_KEY" \
                "$@" "$BUCKET_URL/$key"
        }
        # The status of an anonymous GET of KEY under the prefix, as nginx makes it.
        stored_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$BUCKET_URL/$1"; }
        # Deletes every object under this run's prefix (best effort; LocalStack in CI is
        # thrown away anyway, the shared development one is not).
        cleanup_store() {
            local keys key _
            for _ in 1 2 3 4 5; do
                curl -s --max-time 10 --aws-sigv4 "aws:amz:$CARGOHOLD_TEST_S3_REGION:s3" \
                    --user "$CARGOHOLD_TEST_S3_ACCESS_KEY:$CARGOHOLD_TEST_S3_SECRET_KEY" \
                    "$S3_ENDPOINT/$S3_BUCKET/?list-type=2&prefix=$PREFIX/" >"$WORK/list.xml" 2>/dev/null || return 0
                keys="$(python3 -c 'import re,sys; print("\n".join(re.findall(r"<Key>([^<]*)</Key>", open(sys.argv[1]).read())))' "$WORK/list.xml")"
                [[ -n "$keys" ]] || return 0
                while IFS= read -r key; do
                    curl -s -o /dev/null --max-time 10 -X DELETE --aws-sigv4 "aws:amz:$CARGOHOLD_TEST_S3_REGION:s3" \
                        --user "$CARGOHOLD_TEST_S3_ACCESS_KEY:$CARGOHOLD_TEST_S3_SECRET_KEY" \
                        "$S3_ENDPOINT/$S3_BUCKET/$key" || true
                done <<<"$keys"
            done
        }
        ;;
    esac
}

# --- the API server ---------------------------------------------------------------------

# start_api: cargohold on $API_PORT over the store API_STORE_ARGS names (kept between
# starts; auth from CARGOHOLD_CONFIG when exported), JSON log lines (one per request,
# target cargohold::request) appended to $SERVER_LOG; waits until it answers GET /v2/ (30
# s at most) with 200, or 401 with auth on.
start_api() {
    "${API_CMD[@]}" serve --listen "127.0.0.1:$API_PORT" --log-format json "${API_STORE_ARGS[@]}" \
        >>"$SERVER_LOG" 2>&1 &
    REG_PID=$!
    wait_http "http://127.0.0.1:$API_PORT/v2/" "$REG_PID" 30 '200|401' && return 0
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

# write_auth_include: the auth include for the API's settings (CARGOHOLD_CONFIG), by
# `cargohold nginx-auth`, as an installation writes it.
write_auth_include() {
    mkdir -p "$NGX"
    "${API_CMD[@]}" nginx-auth >"$NGX/cargohold-auth.conf"
}

# write_nginx_conf: a private nginx.conf (temp paths, logs, pid all in $NGX) that loads
# njs and includes a copy of infra/nginx/$NGINX_CONF with its EDIT values set: the API,
# cargohold.js, the port and the auth include (write_auth_include) here, the store's from
# NGINX_EDITS. The access log has one line
# per request, subrequests included: method, URI, status, body bytes, upstream address
# ("-": answered by nginx itself), bytes received from the upstream, $uri, request bytes.
write_nginx_conf() {
    local -a edits=(
        "server 127.0.0.1:5000;" "server 127.0.0.1:$API_PORT;"
        "js_import cargohold from /etc/nginx/njs/cargohold.js;" "js_import cargohold from $CONF_DIR/cargohold.js;"
        "listen 8080;" "listen 127.0.0.1:$NGINX_PORT;"
        "include /etc/nginx/cargohold-auth.conf;" "include $NGX/cargohold-auth.conf;"
        "${NGINX_EDITS[@]}"
    )
    # The filesystem config's manifest cache and the socket nginx fills it through.
    [[ $NGINX_CONF != cargohold.conf ]] || edits+=(
        "/var/lib/nginx/cargohold-manifests" "$NGX/manifest-cache"
        "unix:/run/nginx-cargohold-manifests.sock" "unix:$NGX/manifests.sock"
    )
    local conf from to i
    conf="$(<"$CONF_DIR/$NGINX_CONF")"
    for ((i = 0; i < ${#edits[@]}; i += 2)); do
        from="${edits[i]}" to="${edits[i + 1]}"
        [[ "$conf" == *"$from"* ]] || {
            echo "infra/nginx/$NGINX_CONF changed: no '$from' to replace"
            return 1
        }
        conf="${conf//"$from"/"$to"}"
    done
    write_auth_include || return 1
    printf '%s\n' "$conf" >"$NGX/$NGINX_CONF"
    cat >"$NGX/nginx.conf" <<EOF
load_module $NJS_MODULE;
user $NGINX_USER;
worker_processes 1;
pid $NGX/nginx.pid;
error_log $NGX/error.log info;
events { worker_connections 256; }
http {
    log_format cargohold_test '\$request_method \$request_uri \$status \$body_bytes_sent \$upstream_addr \$upstream_bytes_received \$uri \$request_length \$remote_addr';
    access_log $NGX/access.log cargohold_test;
    log_subrequest on;
    client_body_temp_path $NGX/client_body;
    proxy_temp_path $NGX/proxy;
    fastcgi_temp_path $NGX/fastcgi;
    uwsgi_temp_path $NGX/uwsgi;
    scgi_temp_path $NGX/scgi;
    include $NGX/$NGINX_CONF;
}
EOF
}

# start_nginx: sets NGINX_PORT, NGINX (127.0.0.1:port) and NGINX_PID; up to 10 s for a 200
# on /v2/, on another port if the first was taken meanwhile.
start_nginx() {
    local _
    for _ in 1 2 3; do
        NGINX_PORT="$(free_port)"
        NGINX="127.0.0.1:$NGINX_PORT"
        write_nginx_conf || return 1
        nginx -t -q -e "$NGX/error.log" -c "$NGX/nginx.conf" -p "$NGX/" || return 1
        nginx -e "$NGX/error.log" -c "$NGX/nginx.conf" -p "$NGX/" -g 'daemon off;' \
            >>"$NGX/stdout.log" 2>&1 &
        NGINX_PID=$!
        wait_http "http://$NGINX/v2/" "$NGINX_PID" 10 200 && return 0
        stop_nginx
    done
    tail -n 20 "$NGX/error.log"
    return 1
}

# reload_nginx: the auth include written again, and nginx's master told to reload (SIGHUP,
# by PID); waits (10 s at most) until the old workers are gone (until then one of them may
# still answer a new connection with the old configuration) and GET /v2/ answers STATUS.
reload_nginx() {
    write_auth_include || return 1
    nginx -t -q -e "$NGX/error.log" -c "$NGX/nginx.conf" -p "$NGX/" || return 1
    local old i pid
    old="$(ps -o pid= --ppid "$NGINX_PID")"
    kill -HUP "$NGINX_PID"
    for ((i = 0; i < 100; i++)); do
        for pid in $old; do
            kill -0 "$pid" 2>/dev/null && break
            pid=""
        done
        [[ -z ${pid:-} ]] && break
        sleep 0.1
    done
    wait_http "http://$NGINX/v2/" "$NGINX_PID" 10 "$1"
}

# Stops only the nginx this script started: SIGQUIT (graceful) to its master, by PID.
stop_nginx() {
    stop_pid "$NGINX_PID" QUIT
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
