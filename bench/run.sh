#!/usr/bin/env bash
# bench/run.sh — registry benchmark: cargohold (as shipped, and with access lines off) vs
# CNCF distribution vs ferro-oci-server, nginx in front of cargohold's store, and
# cargohold's blob delivery (S3 redirect/proxy, nginx). See bench/README.md.
#
# This script only builds and installs what is missing, and starts and stops the servers
# (each by its PID, on 127.0.0.1, with fresh storage). Every figure comes from the driver
# bench/pusher: each phase below is one call that measures what was just started and adds
# to the run's JSON state; its last call prints the table and writes the results.
#
# Usage:  bench/run.sh
#   BENCH_SERVERS="cargohold cargohold-nolog distribution ferro"   columns, in order ("none": none);
#     also "cargohold-base": the build CARGOHOLD_BASE_BIN names (a regression check)
#   BENCH_DELIVERY=0                      skip the cargohold-only blob-delivery section
#   BENCH_* workload knobs: `bench/pusher/target/release/pusher init --help`, or the README
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")

BENCH_SERVERS=${BENCH_SERVERS:-"cargohold cargohold-nolog distribution ferro"}
[[ "$BENCH_SERVERS" == none ]] && BENCH_SERVERS=""
export BENCH_SERVERS
BENCH_DELIVERY=${BENCH_DELIVERY:-1}           # 1: the blob-delivery section
BENCH_INSTALL=${BENCH_INSTALL:-1}             # 1: install missing tools (apt-get, cargo install)
BENCH_BUILD_CARGOHOLD=${BENCH_BUILD_CARGOHOLD:-1} # 1: cargo build --release --bin cargohold first
BENCH_TMP=${BENCH_TMP:-$BENCH_DIR/.run}       # parent of the run's scratch dir (storage dirs)
BENCH_RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results/latest.txt}
BENCH_JSON=${BENCH_JSON:-${BENCH_RESULTS%.txt}.json}
BENCH_PHASE_TIMEOUT=${BENCH_PHASE_TIMEOUT:-3600} # hard cap (s) on one driver call
BENCH_S3_CLEANUP=${BENCH_S3_CLEANUP:-1}       # 1: delete the run's key prefix from the bucket
BENCH_PIN=${BENCH_PIN:-}                      # SERVER_CPUS/LOAD_CPUS (e.g. 0/1): taskset; empty: none
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
NJS_MODULE=${NJS_MODULE:-/usr/lib/nginx/modules/ngx_http_js_module.so}
CARGOHOLD_BIN=${CARGOHOLD_BIN:-$REPO_DIR/target/release/cargohold}
DISTRIBUTION_BIN=${DISTRIBUTION_BIN:-/usr/bin/docker-registry}
FERRO_VERSION=1.0.0
FERRO_BIN=${FERRO_BIN:-$BENCH_DIR/.tools/bin/ferro-oci-server}
DRIVER=$BENCH_DIR/pusher/target/release/pusher

# BENCH_PIN: every server and nginx on one CPU set, the driver and its wrk on the other,
# so that where the scheduler happens to put the load generator does not decide a round.
PIN_SERVER=() PIN_LOAD=()
if [[ -n "$BENCH_PIN" ]]; then
  [[ "$BENCH_PIN" == ?*/?* ]] || { echo "BENCH_PIN: SERVER_CPUS/LOAD_CPUS, e.g. 0/1" >&2; exit 2; }
  PIN_SERVER=(taskset -c "${BENCH_PIN%%/*}") PIN_LOAD=(taskset -c "${BENCH_PIN#*/}")
fi

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
has() { [[ " $BENCH_SERVERS " == *" $1 "* ]]; }

# ---------------------------------------------------------------- Processes
mkdir -p "$BENCH_TMP"
RUN_DIR=$(mktemp -d "$BENCH_TMP/regbench.XXXXXX")
export BENCH_STATE=$RUN_DIR/state.json
PIDS=()         # every server and nginx master started here, stopped by PID
NGINX_PID=""    # the nginx master of the current phase
S3_PREFIX=""    # key prefix this run wrote in the bucket (deleted at the end)

stop_pid() { # stop_pid PID [SIGNAL]: SIGNAL (TERM), 10 s, then KILL
  local pid=$1 sig=${2:-TERM} i
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# Our nginx: QUIT to the master (it stops its workers); a worker left behind (master
# killed) by its own PID if it is still an nginx worker.
stop_nginx() {
  [[ -n "$NGINX_PID" ]] || return 0
  local workers w
  workers=$(pgrep -P "$NGINX_PID" || true)
  stop_pid "$NGINX_PID" QUIT
  for w in $workers; do
    grep -q '^nginx: worker' "/proc/$w/cmdline" 2>/dev/null && kill -KILL "$w" 2>/dev/null || true
  done
  NGINX_PID=""
}

stop_all() {
  stop_nginx
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  PIDS=()
}

# Delete what this run wrote under its own key prefix in the shared bucket.
s3_cleanup() {
  [[ -n "$S3_PREFIX" ]] || return 0
  local url="s3://$CARGOHOLD_TEST_S3_BUCKET/$S3_PREFIX/"
  S3_PREFIX=""
  [[ "$BENCH_S3_CLEANUP" == 1 ]] || { log "left $url in the bucket"; return 0; }
  command -v aws >/dev/null || { log "no aws CLI: $url stays in the bucket"; return 0; }
  AWS_ACCESS_KEY_ID=$CARGOHOLD_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$CARGOHOLD_TEST_S3_SECRET_KEY \
    AWS_DEFAULT_REGION=$CARGOHOLD_TEST_S3_REGION AWS_EC2_METADATA_DISABLED=true \
    timeout -k 5 120 aws --endpoint-url "$CARGOHOLD_TEST_S3_ENDPOINT" s3 rm --recursive --only-show-errors \
    "$url" >&2 || log "could not delete $url from the bucket"
}

cleanup() {
  stop_all
  s3_cleanup
  [[ -n "${RUN_DIR:-}" && -d "$RUN_DIR" ]] && rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- Tools
ensure_tools() {
  command -v curl >/dev/null || die "curl is required"
  command -v python3 >/dev/null || die "python3 is required (free-port lookup)"
  local need_apt=()
  command -v wrk >/dev/null || need_apt+=(wrk)
  has distribution && [[ ! -x "$DISTRIBUTION_BIN" ]] && need_apt+=(docker-registry)
  if ((${#need_apt[@]})); then
    [[ "$BENCH_INSTALL" == 1 ]] || die "missing: ${need_apt[*]} (apt-get install them, or set BENCH_INSTALL=1)"
    log "apt-get install ${need_apt[*]}"
    apt-get update -qq >&2
    # RUNLEVEL=1 keeps the package's init script from starting a registry on :5000
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
  fi
  if has ferro && [[ ! -x "$FERRO_BIN" && "$BENCH_INSTALL" == 1 ]]; then
    log "cargo install ferro-oci-server@$FERRO_VERSION (takes a few minutes)"
    cargo install "ferro-oci-server@$FERRO_VERSION" --locked --root "$BENCH_DIR/.tools" >&2 ||
      log "ferro-oci-server did not install: its column will be n/a"
  fi
  log "building the driver (bench/pusher)"
  cargo build --release --quiet --manifest-path "$BENCH_DIR/pusher/Cargo.toml" >&2
  [[ -x "$DRIVER" ]] || die "the driver did not build"
  if { has cargohold || has cargohold-nolog || [[ "$BENCH_DELIVERY" == 1 ]]; } &&
    [[ "$BENCH_BUILD_CARGOHOLD" == 1 && -f "$REPO_DIR/Cargo.toml" ]]; then
    log "cargo build --release --bin cargohold"
    (cd "$REPO_DIR" && cargo build --release --quiet --bin cargohold >&2) || log "cargohold did not build"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# ---------------------------------------------------------------- Servers
# start_<name> PORT DIR: start in the background with its defaults, logging to
# DIR/server.log; set PID, or set WHY and return 1. Each gets a fresh DIR.
# The servers inherit no CARGOHOLD_*/RUST_LOG setting from this shell: defaults only.
# Called in the background (`clean_env CMD... &`): exec keeps the server's PID that of
# the job, so that stop_pid and the RSS and CPU readings reach the server itself.
clean_env() {
  local -a unset=(-u RUST_LOG)
  local v
  for v in $(compgen -e | grep '^CARGOHOLD_' || true); do unset+=(-u "$v"); done
  exec env "${unset[@]}" "${PIN_SERVER[@]}" "$@"
}

start_cargohold() { # start_cargohold PORT DIR [serve options...]
  local port=$1 dir=$2
  shift 2
  [[ -x "$CARGOHOLD_BIN" ]] || { WHY="skipped: $CARGOHOLD_BIN not built"; return 1; }
  mkdir -p "$dir/root"
  clean_env "$CARGOHOLD_BIN" serve --listen "127.0.0.1:$port" --root "$dir/root" "$@" >>"$dir/server.log" 2>&1 &
  PID=$!
}

start_cargohold-nolog() { start_cargohold "$@" --access-log off; }

# An earlier build, to show a change's effect in one run (columns of the same table):
# CARGOHOLD_BASE_BIN=/path/to/old/cargohold BENCH_SERVERS="cargohold cargohold-base ferro".
# Started with its own defaults, so no flag a later version added.
start_cargohold-base() {
  local port=$1 dir=$2
  [[ -x "${CARGOHOLD_BASE_BIN:-}" ]] || { WHY="skipped: set CARGOHOLD_BASE_BIN to an earlier cargohold build"; return 1; }
  mkdir -p "$dir/root"
  clean_env "$CARGOHOLD_BASE_BIN" serve --listen "127.0.0.1:$port" --root "$dir/root" >>"$dir/server.log" 2>&1 &
  PID=$!
}

# Debian's /etc/docker/registry/config.yml with this port and directory, less its
# htpasswd auth (the request rows are anonymous, as on the other servers).
start_distribution() {
  local port=$1 dir=$2
  [[ -x "$DISTRIBUTION_BIN" ]] || { WHY="skipped: $DISTRIBUTION_BIN missing"; return 1; }
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
  "${PIN_SERVER[@]}" "$DISTRIBUTION_BIN" serve "$dir/config.yml" >>"$dir/server.log" 2>&1 &
  PID=$!
}

start_ferro() { # ferro-oci-server takes no flags, only these environment variables
  local port=$1 dir=$2
  [[ -x "$FERRO_BIN" ]] || { WHY="skipped: $FERRO_BIN missing (cargo install ferro-oci-server@$FERRO_VERSION --locked --root bench/.tools)"; return 1; }
  mkdir -p "$dir/data"
  FERRO_OCI_LISTEN="127.0.0.1:$port" FERRO_OCI_STORAGE_DIR="$dir/data" clean_env "$FERRO_BIN" >>"$dir/server.log" 2>&1 &
  PID=$!
}

start_cargohold_s3() { # start_cargohold_s3 PORT DIR DELIVERY: on the test bucket under $S3_PREFIX
  local port=$1 dir=$2 delivery=$3
  mkdir -p "$dir"
  clean_env "$CARGOHOLD_BIN" serve --listen "127.0.0.1:$port" --storage s3 \
    --s3-endpoint "$CARGOHOLD_TEST_S3_ENDPOINT" --s3-region "$CARGOHOLD_TEST_S3_REGION" \
    --s3-bucket "$CARGOHOLD_TEST_S3_BUCKET" --s3-path-style \
    --s3-access-key "$CARGOHOLD_TEST_S3_ACCESS_KEY" --s3-secret-key "$CARGOHOLD_TEST_S3_SECRET_KEY" \
    --s3-prefix "$S3_PREFIX" --blob-delivery "$delivery" >>"$dir/server.log" 2>&1 &
  PID=$!
}

# up NAME PORT DIR START_FN [ARGS]: start, wait up to 30 s for GET /v2/; sets BASE and PID,
# adds PID to PIDS. On failure records the server's status in the state and returns 1.
up() {
  local name=$1 port=$2 dir=$3 fn=$4 i
  shift 4
  BASE="http://127.0.0.1:$port" PID="" WHY=""
  mkdir -p "$dir"
  if ! "$fn" "$port" "$dir" "$@"; then
    "$DRIVER" status --name "$name" --status "${WHY:-failed to start}"
    return 1
  fi
  PIDS+=("$PID")
  for ((i = 0; i < 300; i++)); do
    kill -0 "$PID" 2>/dev/null || break
    if [[ $(curl -s -o /dev/null --max-time 1 -w '%{http_code}' "$BASE/v2/") == 200 ]]; then
      log "$name: pid $PID on $BASE"
      return 0
    fi
    sleep 0.1
  done
  "$DRIVER" status --name "$name" --status "failed: not answering GET /v2/ on $BASE within 30 s" --log "$dir/server.log"
  stop_pid "$PID"
  return 1
}

# start_nginx API_PORT ROOT DIR: a private nginx (paths, pid and logs in DIR) with a copy
# of infra/nginx/cargohold.conf whose EDIT values point at this API and ROOT (as
# tests/static/lib.sh does), plus a server that serves DIR/plain as plain static files.
# Sets NGX (its base URL), NGX_PLAIN (the plain server's) and NGINX_PID.
start_nginx() {
  local api_port=$1 root=$2 ngx=$3 conf_dir="$REPO_DIR/infra/nginx" user="" want port plain_port i
  [[ -x "$NGINX_BIN" && -f "$NJS_MODULE" ]] ||
    { "$DRIVER" note "nginx rows skipped: needs nginx and $NJS_MODULE (apt-get install nginx libnginx-mod-http-js)"; return 1; }
  port=$(free_port) plain_port=$(free_port)
  mkdir -p "$ngx/plain"
  # The auth include of an open registry, as `cargohold nginx-auth` writes it.
  # (In a subshell: clean_env execs.)
  (clean_env "$CARGOHOLD_BIN" nginx-auth --root "$root") >"$ngx/cargohold-auth.conf" ||
    { "$DRIVER" note "nginx rows skipped: cargohold nginx-auth failed"; return 1; }
  sed -e "s|server 127.0.0.1:5000;|server 127.0.0.1:$api_port;|" \
    -e "s|/etc/nginx/njs/cargohold.js|$conf_dir/cargohold.js|" \
    -e "s|listen 8080;|listen 127.0.0.1:$port;|" \
    -e "s|root /srv/cargohold;|root $root;|" \
    -e "s|include /etc/nginx/cargohold-auth.conf;|include $ngx/cargohold-auth.conf;|" \
    -e "s|/var/lib/nginx/cargohold-manifests|$ngx/manifest-cache|" \
    -e "s|unix:/run/nginx-cargohold-manifests.sock|unix:$ngx/manifests.sock|" \
    "$conf_dir/cargohold.conf" >"$ngx/cargohold.conf"
  for want in "server 127.0.0.1:$api_port;" "$conf_dir/cargohold.js;" "listen 127.0.0.1:$port;" "root $root;" "include $ngx/cargohold-auth.conf;" \
    "$ngx/manifest-cache" "unix:$ngx/manifests.sock;"; do
    grep -qF "$want" "$ngx/cargohold.conf" ||
      { "$DRIVER" note "nginx rows skipped: infra/nginx/cargohold.conf changed: no '$want' after substitution"; return 1; }
  done
  # Workers only read the store: unprivileged when nobody can reach it, else as root.
  if ((EUID == 0)); then
    if runuser -u nobody -- test -r "$root/index" 2>/dev/null; then user="user nobody $(id -gn nobody);"; else user="user root root;"; fi
  fi
  cat >"$ngx/nginx.conf" <<NGX
load_module $NJS_MODULE;
$user
worker_processes auto;
pid $ngx/nginx.pid;
error_log $ngx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $ngx/client_body;
    proxy_temp_path $ngx/proxy;
    fastcgi_temp_path $ngx/fastcgi;
    uwsgi_temp_path $ngx/uwsgi;
    scgi_temp_path $ngx/scgi;
    include $ngx/cargohold.conf;
    server {
        listen 127.0.0.1:$plain_port;
        root $ngx/plain;
        location / { types { } default_type application/vnd.oci.image.manifest.v1+json; }
    }
}
NGX
  if ! "$NGINX_BIN" -t -q -e "$ngx/error.log" -c "$ngx/nginx.conf" -p "$ngx/" 2>"$ngx/test.log"; then
    "$DRIVER" note "nginx rows skipped: nginx -t failed: $(tail -n 3 "$ngx/test.log" | tr '\n' ' ')"
    return 1
  fi
  "${PIN_SERVER[@]}" "$NGINX_BIN" -e "$ngx/error.log" -c "$ngx/nginx.conf" -p "$ngx/" -g 'daemon off;' >>"$ngx/stdout.log" 2>&1 &
  NGINX_PID=$!
  NGX="http://127.0.0.1:$port" NGX_PLAIN="http://127.0.0.1:$plain_port"
  for ((i = 0; i < 100; i++)); do
    [[ $(curl -s -o /dev/null --max-time 1 -w '%{http_code}' "$NGX/v2/") == 200 ]] && return 0
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.1
  done
  "$DRIVER" note "nginx rows skipped: not answering GET /v2/ on $NGX within 10 s: $(tail -n 3 "$ngx/error.log" | tr '\n' ' ')"
  stop_nginx
  return 1
}

# ---------------------------------------------------------------- Phases
drive() { timeout -k 10 "$BENCH_PHASE_TIMEOUT" "${PIN_LOAD[@]}" "$DRIVER" "$@"; }

# The previous phase's gigabytes are still being written back and would slow whoever is
# measured first: flush them before each phase.
settle() { sync; }

# Each server alone on a fresh store.
phase_servers() {
  local name dir
  for name in $BENCH_SERVERS; do
    settle
    dir=$RUN_DIR/$name
    if declare -F "start_$name" >/dev/null; then
      up "$name" "$(free_port)" "$dir" "start_$name" && drive server --name "$name" --url "$BASE" --pid "$PID" || true
    else
      "$DRIVER" status --name "$name" --status "failed: unknown server (have: cargohold cargohold-nolog cargohold-base distribution ferro)"
    fi
    stop_all
    rm -rf "$dir"
  done
}

# Every server that ran above at once, on fresh stores, with nginx over cargohold's.
phase_requests() {
  local name dir targets=() nginx=()
  settle
  for name in $BENCH_SERVERS; do
    declare -F "start_$name" >/dev/null || continue
    dir=$RUN_DIR/req-$name
    up "$name" "$(free_port)" "$dir" "start_$name" || continue
    targets+=(--target "$name=$BASE@$PID")
    if [[ "$name" == cargohold ]] && start_nginx "${BASE##*:}" "$dir/root" "$RUN_DIR/req-nginx"; then
      nginx=(--nginx "$NGX" --nginx-plain "$NGX_PLAIN/manifest" --plain-file "$RUN_DIR/req-nginx/plain/manifest")
    fi
  done
  ((${#targets[@]})) && drive requests "${targets[@]}" "${nginx[@]}" || true
  stop_all
  rm -rf "$RUN_DIR"/req-*
}

have_s3_env() {
  [[ -n "${CARGOHOLD_TEST_S3_ENDPOINT:-}" && -n "${CARGOHOLD_TEST_S3_REGION:-}" && -n "${CARGOHOLD_TEST_S3_BUCKET:-}" &&
    -n "${CARGOHOLD_TEST_S3_ACCESS_KEY:-}" && -n "${CARGOHOLD_TEST_S3_SECRET_KEY:-}" ]]
}

# cargohold alone: S3 (redirect, then proxy on the same prefix), then the filesystem store
# pulled from the API and through nginx.
phase_delivery() {
  [[ -x "$CARGOHOLD_BIN" ]] || { "$DRIVER" note "blob delivery skipped: $CARGOHOLD_BIN not built"; return 0; }
  settle
  local dir=$RUN_DIR/delivery
  if have_s3_env; then
    S3_PREFIX="bench-$(date +%s)-$$"
    "$DRIVER" note "S3: endpoint $CARGOHOLD_TEST_S3_ENDPOINT, bucket $CARGOHOLD_TEST_S3_BUCKET, prefix $S3_PREFIX"
    if up cargohold-s3 "$(free_port)" "$dir/s3" start_cargohold_s3 redirect; then
      drive prepare --label cargohold-s3 --url "$BASE" --s3 || true
      drive pull --key s3_redirect --url "$BASE" --pid "$PID" --expect-redirect yes || true
      stop_all
      up cargohold-s3 "$(free_port)" "$dir/s3" start_cargohold_s3 proxy &&
        drive pull --key s3_proxy --url "$BASE" --pid "$PID" --expect-redirect no || true
      stop_all
    fi
    s3_cleanup
  else
    "$DRIVER" note "S3 rows skipped: CARGOHOLD_TEST_S3_* not set; to enable: .ci/s3-servers.sh start localstack && source .ci/.s3/env"
  fi
  if up cargohold-fs "$(free_port)" "$dir/fs" start_cargohold; then
    drive prepare --label cargohold-fs --url "$BASE" || true
    drive pull --key fs_direct --url "$BASE" --pid "$PID" --expect-redirect no || true
    if start_nginx "${BASE##*:}" "$dir/fs/root" "$dir/nginx"; then
      drive pull --key fs_nginx --url "$NGX" --pid "$PID" --nginx-pid "$NGINX_PID" --expect-redirect no || true
    fi
    stop_all
  fi
  rm -rf "$dir"
}

main() {
  ensure_tools
  "$DRIVER" init --work-dir "$RUN_DIR" \
    --info "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --info "host=$(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)" \
    --info "commit=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo none)" \
    --info "cargohold=$CARGOHOLD_BIN" \
    --info "distribution=$("$DISTRIBUTION_BIN" --version 2>/dev/null || echo n/a)" \
    --info "ferro=ferro-oci-server $FERRO_VERSION ($FERRO_BIN)" \
    --info "nginx=$("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //' || echo n/a)" \
    --info "pin=${BENCH_PIN:-none}" \
    --info "s3=$(have_s3_env && echo "$CARGOHOLD_TEST_S3_ENDPOINT/$CARGOHOLD_TEST_S3_BUCKET" || echo off)"
  [[ -n "${BENCH_SERVERS// /}" ]] && phase_servers && phase_requests
  [[ "$BENCH_DELIVERY" == 1 ]] && phase_delivery
  local delivery=()
  [[ "$BENCH_DELIVERY" == 1 ]] && delivery=(--delivery)
  "$DRIVER" report --text "$BENCH_RESULTS" --json "$BENCH_JSON" "${delivery[@]}"
  log "results: $BENCH_RESULTS, every step and round: $BENCH_JSON"
}

main "$@"
