#!/usr/bin/env bash
# bench/run.sh — registry benchmark: cargohold vs CNCF distribution vs ferro-oci-server.
#
# Runs the same workload against each registry, started here on 127.0.0.1 with a
# fresh temporary storage directory, prints one table (one row per figure, one
# column per server, plus cargohold's ratio to the best peer) and writes the raw
# results to bench/results/latest.txt.  Then a cargohold-only section: push/pull on S3
# (redirect vs proxy delivery, when CARGOHOLD_TEST_S3_* are set) and pulls through nginx
# in front of the filesystem store, with the API's CPU seconds per GB pulled.
# See bench/README.md.
#
# Usage:  bench/run.sh
#   BENCH_SERVERS="cargohold distribution ferro"   which servers, in column order ("none": none)
#   BENCH_DELIVERY=0                                skip the cargohold-only blob-delivery section
#   other knobs: see the "Tunables" block below (all BENCH_* environment variables)
#
# Only loopback traffic; every load step is bounded in request count and time;
# every process started here is stopped by its PID on exit.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")

# ---------------------------------------------------------------- Tunables
BENCH_SERVERS=${BENCH_SERVERS:-"cargohold distribution ferro"}
[[ "$BENCH_SERVERS" == none ]] && BENCH_SERVERS="" # only the blob-delivery section
BENCH_PUSHERS=${BENCH_PUSHERS:-4}            # concurrent pushers (one image each)
BENCH_PUSH_MIB=${BENCH_PUSH_MIB:-512}        # layer bytes pushed per push mode, all pushers together
BENCH_BLOB_MIB=${BENCH_BLOB_MIB:-32}         # size of each pushed layer
BENCH_CHUNK_MIB=${BENCH_CHUNK_MIB:-8}        # PATCH size for chunked pushes
BENCH_WRK_THREADS=${BENCH_WRK_THREADS:-2}
BENCH_WRK_CONNS=${BENCH_WRK_CONNS:-64}
BENCH_WRK_WARMUP_SECS=${BENCH_WRK_WARMUP_SECS:-2}
BENCH_REQ_ROUNDS=${BENCH_REQ_ROUNDS:-5}      # request rows: rounds, servers taking turns (median kept)
BENCH_REQ_SECS=${BENCH_REQ_SECS:-4}          # request rows: measured wrk run length per round
BENCH_BIG_MIB=${BENCH_BIG_MIB:-256}          # blob GET size
BENCH_GET_COUNT=${BENCH_GET_COUNT:-5}        # measured sequential downloads (after 1 warm-up)
BENCH_TAGS=${BENCH_TAGS:-1000}               # tags for the tags/list figure
BENCH_LAT_COUNT=${BENCH_LAT_COUNT:-2000}     # measured tags/list requests (after 20 warm-up)
BENCH_STEP_TIMEOUT=${BENCH_STEP_TIMEOUT:-300} # hard cap (s) for any single step
BENCH_TMP=${BENCH_TMP:-$BENCH_DIR/.run}      # parent of the run's temp dir (per-server storage dirs)
BENCH_RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results/latest.txt}
BENCH_INSTALL=${BENCH_INSTALL:-1}            # 1: install missing tools (apt-get, cargo install)
BENCH_BUILD_CARGOHOLD=${BENCH_BUILD_CARGOHOLD:-1} # 1: cargo build --release --bin cargohold first
# Blob-delivery section (cargohold only: S3 push/pull, redirect vs proxy, nginx in front of
# the filesystem store). The S3 rows need CARGOHOLD_TEST_S3_* (source .ci/.s3/env).
BENCH_DELIVERY=${BENCH_DELIVERY:-1}          # 1: run the section; 0: skip it
BENCH_S3_PUSHERS=${BENCH_S3_PUSHERS:-$BENCH_PUSHERS}
BENCH_S3_PUSH_MIB=${BENCH_S3_PUSH_MIB:-128}  # layer bytes pushed to S3 per push mode (LocalStack is slow)
BENCH_S3_BLOB_MIB=${BENCH_S3_BLOB_MIB:-16}   # size of each layer pushed to S3
BENCH_PULL_MIB=${BENCH_PULL_MIB:-64}         # blob pulled in every delivery mode
BENCH_S3_PULL_COUNT=${BENCH_S3_PULL_COUNT:-5}    # measured downloads per S3 mode (after 1 warm-up)
BENCH_FS_PULL_COUNT=${BENCH_FS_PULL_COUNT:-20}   # measured downloads, fs API direct and nginx (after 1 warm-up)
BENCH_PULL_SECS=${BENCH_PULL_SECS:-30}       # stop starting measured downloads after this many seconds
BENCH_S3_CLEANUP=${BENCH_S3_CLEANUP:-1}      # 1: delete the run's key prefix from the bucket at the end (aws CLI)
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
NJS_MODULE=${NJS_MODULE:-/usr/lib/nginx/modules/ngx_http_js_module.so}

CARGOHOLD_BIN=${CARGOHOLD_BIN:-$REPO_DIR/target/release/cargohold}
DISTRIBUTION_BIN=${DISTRIBUTION_BIN:-/usr/bin/docker-registry}
FERRO_VERSION=1.0.0
FERRO_BIN=${FERRO_BIN:-$BENCH_DIR/.tools/bin/ferro-oci-server}
PUSHER_BIN=$BENCH_DIR/pusher/target/release/pusher

OCI_ACCEPT="application/vnd.oci.image.manifest.v1+json"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- State & cleanup
mkdir -p "$BENCH_TMP"
RUN_DIR=$(mktemp -d "$BENCH_TMP/regbench.XXXXXX")
RAW="$RUN_DIR/raw.txt"
: >"$RAW"
SERVER_PID=""
REQ_PIDS=()          # servers of the interleaved request rows, all running at once
SAMPLER_PID=""
NGINX_PID=""
NGINX_WORKERS=""     # worker PIDs of our nginx, for the CPU figure and a last-resort KILL
S3_PREFIX=""         # key prefix this run wrote in the bucket (deleted at the end)
declare -A R=()      # R["server|key"]=value
declare -A D=()      # D[key]=value, the blob-delivery section
DNOTES=()            # notes under the blob-delivery table
declare -A STATUS=() # STATUS[server]=ok|skipped:<why>|failed:<why>
WARNINGS=()

stop_pid() { # stop_pid PID [grace-seconds]
  local pid=$1 grace=${2:-10} i
  [[ -n "$pid" ]] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Our nginx: TERM to the master (it stops its workers), by PID; a worker left behind
# (master killed) is killed by its recorded PID if it is still an nginx worker.
stop_nginx() {
  [[ -n "$NGINX_PID" ]] || return 0
  stop_pid "$NGINX_PID" 10
  local w
  for w in $NGINX_WORKERS; do
    if grep -q '^nginx: worker' "/proc/$w/cmdline" 2>/dev/null; then kill -KILL "$w" 2>/dev/null || true; fi
  done
  NGINX_PID="" NGINX_WORKERS=""
}

# Delete what this run wrote under its own key prefix in the shared bucket.
s3_cleanup() {
  [[ -n "$S3_PREFIX" ]] || return 0
  local pfx=$S3_PREFIX
  S3_PREFIX=""
  [[ "$BENCH_S3_CLEANUP" == 1 ]] || { log "left s3://$CARGOHOLD_TEST_S3_BUCKET/$pfx/ in the bucket"; return 0; }
  if ! command -v aws >/dev/null; then
    log "no aws CLI: s3://$CARGOHOLD_TEST_S3_BUCKET/$pfx/ stays in the bucket"
    return 0
  fi
  AWS_ACCESS_KEY_ID=$CARGOHOLD_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$CARGOHOLD_TEST_S3_SECRET_KEY \
    AWS_DEFAULT_REGION=$CARGOHOLD_TEST_S3_REGION AWS_EC2_METADATA_DISABLED=true \
    timeout -k 5 120 aws --endpoint-url "$CARGOHOLD_TEST_S3_ENDPOINT" s3 rm --recursive --only-show-errors \
    "s3://$CARGOHOLD_TEST_S3_BUCKET/$pfx/" >&2 ||
    log "could not delete s3://$CARGOHOLD_TEST_S3_BUCKET/$pfx/ from the bucket"
}

cleanup() {
  stop_pid "$SAMPLER_PID" 2
  SAMPLER_PID=""
  stop_nginx
  stop_pid "$SERVER_PID" 10
  SERVER_PID=""
  local pid
  for pid in "${REQ_PIDS[@]}"; do stop_pid "$pid" 10; done
  REQ_PIDS=()
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
  if [[ " $BENCH_SERVERS " == *" distribution "* && ! -x "$DISTRIBUTION_BIN" ]]; then
    need_apt+=(docker-registry)
  fi
  if ((${#need_apt[@]})); then
    [[ "$BENCH_INSTALL" == 1 ]] || die "missing: ${need_apt[*]} (apt-get install them, or set BENCH_INSTALL=1)"
    log "apt-get install ${need_apt[*]}"
    apt-get update -qq >&2
    # policy-rc.d stops the package's init script from starting a registry on :5000
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
  fi
  if [[ " $BENCH_SERVERS " == *" ferro "* && ! -x "$FERRO_BIN" ]]; then
    [[ "$BENCH_INSTALL" == 1 ]] || die "missing $FERRO_BIN (cargo install ferro-oci-server@$FERRO_VERSION --locked --root bench/.tools)"
    log "cargo install ferro-oci-server@$FERRO_VERSION (takes a few minutes)"
    cargo install "ferro-oci-server@$FERRO_VERSION" --locked --root "$BENCH_DIR/.tools" >&2
  fi
  log "building the load generator (bench/pusher)"
  cargo build --release --quiet --manifest-path "$BENCH_DIR/pusher/Cargo.toml" >&2
  [[ -x "$PUSHER_BIN" ]] || die "pusher did not build"
  if [[ " $BENCH_SERVERS " == *" cargohold "* || "$BENCH_DELIVERY" == 1 ]] &&
    [[ "$BENCH_BUILD_CARGOHOLD" == 1 && -f "$REPO_DIR/Cargo.toml" ]]; then
    log "cargo build --release --bin cargohold"
    (cd "$REPO_DIR" && cargo build --release --quiet --bin cargohold >&2) ||
      WARNINGS+=("cargohold: cargo build --release --bin cargohold failed")
  fi
}

# CPU busy % of the whole machine over one second (steal and iowait count as idle).
cpu_busy_pct() {
  local a b
  a=$(awk '/^cpu / { print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / { print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
    t = y[2] - x[2]; printf "%.0f", (t > 0) ? 100 * (y[1] - x[1]) / t : 0 }'
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# ---------------------------------------------------------------- Servers
# start_<name> PORT DIR: start the server in the background and set SERVER_PID,
# or set SKIP_REASON and return 1 when it cannot be started.
# Each gets a fresh empty DIR; logs go to DIR/server.log.

start_cargohold() {
  local port=$1 dir=$2
  [[ -x "$CARGOHOLD_BIN" ]] || { SKIP_REASON="skipped: $CARGOHOLD_BIN not built"; return 1; }
  mkdir -p "$dir/root"
  # cargohold reads its log filter from CARGOHOLD_LOG (not RUST_LOG): warn drops the
  # per-request INFO lines, as the peers run with their access logs off.
  CARGOHOLD_LOG=${CARGOHOLD_LOG:-warn} "$CARGOHOLD_BIN" serve --listen "127.0.0.1:$port" --root "$dir/root" \
    >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
}

start_distribution() {
  local port=$1 dir=$2
  [[ -x "$DISTRIBUTION_BIN" ]] || { SKIP_REASON="skipped: $DISTRIBUTION_BIN missing"; return 1; }
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  "$DISTRIBUTION_BIN" serve "$dir/config.yml" >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
}

start_ferro() {
  local port=$1 dir=$2
  [[ -x "$FERRO_BIN" ]] || { SKIP_REASON="skipped: $FERRO_BIN missing"; return 1; }
  mkdir -p "$dir/data"
  FERRO_OCI_LISTEN="127.0.0.1:$port" FERRO_OCI_STORAGE_DIR="$dir/data" RUST_LOG=${FERRO_RUST_LOG:-warn} \
    "$FERRO_BIN" >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
}

wait_ready() { # wait_ready URL PID — up to 30 s
  local url=$1 pid=$2 i
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || return 1
    if curl -s -o /dev/null --max-time 1 -w '%{http_code}' "$url/v2/" | grep -q '^200$'; then return 0; fi
    sleep 0.1
  done
  return 1
}

# Periodic VmRSS sampler (every 0.5 s) for the server; bounded by the server's life
# and by a hard iteration cap (2 h).
start_sampler() {
  local pid=$1 out=$2
  (
    max=0
    for ((i = 0; i < 14400; i++)); do
      v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || break
      [[ -n "$v" ]] || break
      ((v > max)) && max=$v && echo "$max" >"$out"
      sleep 0.5
    done
  ) &
  SAMPLER_PID=$!
}

# ---------------------------------------------------------------- Helpers
# kv FILE KEY -> value of KEY=... in FILE
kv() { awk -F= -v k="$2" '$1 == k { sub(/^[^=]*=/, ""); print; exit }' "$1" 2>/dev/null || true; }

# step NAME CMD... : run a bounded step, capture output in $STEP_OUT, log it to RAW
step() {
  local name=$1; shift
  STEP_OUT="$RUN_DIR/step.out"
  log "  $CUR_SERVER: $name"
  local rc=0
  timeout -k 5 "$BENCH_STEP_TIMEOUT" "$@" >"$STEP_OUT" 2>"$RUN_DIR/step.err" || rc=$?
  {
    echo "## $CUR_SERVER $name (rc=$rc)"
    cat "$STEP_OUT"
    sed 's/^/stderr: /' "$RUN_DIR/step.err"
  } >>"$RAW"
  if ((rc != 0)); then
    WARNINGS+=("$CUR_SERVER: $name failed (rc=$rc): $(tail -n 2 "$RUN_DIR/step.err" | tr '\n' ' ' | cut -c1-300)")
    return 1
  fi
}

put() { R["$CUR_SERVER|$1"]=$2; echo "$CUR_SERVER.$1=$2" >>"$RAW"; }

WRK_LUA="$RUN_DIR/wrk.lua"
cat >"$WRK_LUA" <<'EOF'
-- Request method and Accept header from the environment; key=value summary at the end.
wrk.method = os.getenv("WRK_METHOD") or "GET"
wrk.headers["Accept"] = os.getenv("WRK_ACCEPT") or "*/*"
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("requests=%d\n", summary.requests))
  io.write(string.format("secs=%.3f\n", secs))
  io.write(string.format("rps=%.1f\n", summary.requests / secs))
  io.write(string.format("p50_ms=%.3f\n", latency:percentile(50) / 1000))
  io.write(string.format("p99_ms=%.3f\n", latency:percentile(99) / 1000))
  io.write(string.format("errors_status=%d\n", e.status))
  io.write(string.format("errors_socket=%d\n", e.connect + e.read + e.write + e.timeout))
end
EOF

# wrk_fig KEY METHOD URL : measure for BENCH_REQ_SECS (warm-up is a round of its own, see
# bench_requests); records KEY_rps, KEY_p50, KEY_p99
# (wrk for GET, the pusher's wrk-like `load` for HEAD)
wrk_fig() {
  local key=$1 method=$2 url=$3
  local secs=$BENCH_REQ_SECS
  # Sanity-check the request once with curl first.
  local code
  if [[ "$method" == HEAD ]]; then
    code=$(curl -s -o /dev/null -I --max-time 5 -H "Accept: $OCI_ACCEPT" -w '%{http_code}' "$url" || true)
  else
    code=$(curl -s -o /dev/null --max-time 5 -H "Accept: $OCI_ACCEPT" -w '%{http_code}' "$url" || true)
  fi
  if [[ "$code" != 200 ]]; then
    WARNINGS+=("$CUR_SERVER: $key: $method $url answered $code, not 200; figure skipped")
    return 0
  fi
  if [[ "$method" == HEAD ]]; then
    # wrk 4.1 cannot do HEAD: its response parser then waits for Content-Length body
    # bytes that never come (0 requests).  The pusher's `load` is the same closed loop
    # (N keep-alive connections, T threads, fixed time; within ~6% of wrk on a GET).
    step "$key" "$PUSHER_BIN" load --full-url "$url" --method HEAD --accept "$OCI_ACCEPT" \
      --threads "$BENCH_WRK_THREADS" --conns "$BENCH_WRK_CONNS" --secs "$secs" || return 0
  else
    WRK_METHOD=$method WRK_ACCEPT=$OCI_ACCEPT step "$key" \
      wrk -t "$BENCH_WRK_THREADS" -c "$BENCH_WRK_CONNS" -d "${secs}s" --timeout 5s --latency -s "$WRK_LUA" "$url" || return 0
  fi
  local es ek
  es=$(kv "$STEP_OUT" errors_status); ek=$(kv "$STEP_OUT" errors_socket)
  if [[ "${es:-0}" != 0 || "${ek:-0}" != 0 ]]; then
    WARNINGS+=("$CUR_SERVER: $key: $es non-2xx/3xx responses, $ek socket errors/timeouts during wrk")
  fi
  put "${key}_rps" "$(kv "$STEP_OUT" rps)"
  put "${key}_p50" "$(kv "$STEP_OUT" p50_ms)"
  put "${key}_p99" "$(kv "$STEP_OUT" p99_ms)"
}

# ---------------------------------------------------------------- One server
# The previous phase's gigabytes (its pushes, its deleted storage) are still being written
# back when the next one starts, and would slow whoever measures first: flush them.
settle() { sync; }

bench_server() {
  local name=$1 port dir base
  CUR_SERVER=$name
  settle
  port=$(free_port)
  dir="$RUN_DIR/$name"
  mkdir -p "$dir"
  base="http://127.0.0.1:$port"
  local busy
  busy=$(cpu_busy_pct)
  R["$name|bg_cpu"]=$busy
  log "== $name on $base (storage $dir); CPU busy before start: ${busy}%"
  echo "$name.bg_cpu_busy_pct=$busy" >>"$RAW"
  if ! declare -F "start_$name" >/dev/null; then
    STATUS[$name]="failed: unknown server (have: cargohold distribution ferro)"
    return 0
  fi
  SERVER_PID="" SKIP_REASON=""
  if ! "start_$name" "$port" "$dir"; then
    STATUS[$name]=${SKIP_REASON:-"failed to start"}
    log "$name: ${STATUS[$name]}"
    return 0
  fi
  if ! wait_ready "$base" "$SERVER_PID"; then
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      STATUS[$name]="failed: not ready on $base within 30 s (server.log tail in the raw results)"
    else
      local rc=0
      wait "$SERVER_PID" 2>/dev/null || rc=$?
      STATUS[$name]="failed: exited (rc=$rc) before answering GET /v2/ (server.log tail in the raw results)"
    fi
    { echo "## $name server.log"; tail -n 30 "$dir/server.log"; } >>"$RAW"
    stop_pid "$SERVER_PID"; SERVER_PID=""
    return 0
  fi
  STATUS[$name]=ok
  if awk -v b="$busy" 'BEGIN { exit !(b > 15) }'; then
    WARNINGS+=("$name: machine not idle before the run (${busy}% CPU busy over 1 s): figures are noisy")
  fi
  echo "## $name pid=$SERVER_PID port=$port" >>"$RAW"
  start_sampler "$SERVER_PID" "$dir/rss.max"

  local P=$PUSHER_BIN to=$BENCH_STEP_TIMEOUT
  # Warm-up: a small image, a small push of each kind, a few tags/list reads.
  step "warm-up image" "$P" image --url "$base" --repo bench/warm --tag latest --timeout-s "$to" || true
  step "warm-up push mono" "$P" push --url "$base" --mode mono --pushers "$BENCH_PUSHERS" --total-mib 64 \
    --blob-mib 8 --repo-prefix bench/warm-mono --seed 101 --timeout-s "$to" || true
  step "warm-up push chunked" "$P" push --url "$base" --mode chunked --pushers "$BENCH_PUSHERS" --total-mib 64 \
    --blob-mib 8 --chunk-mib "$BENCH_CHUNK_MIB" --repo-prefix bench/warm-chunked --seed 102 --timeout-s "$to" || true

  # 1. Push throughput.
  if step "push monolithic" "$P" push --url "$base" --mode mono --pushers "$BENCH_PUSHERS" \
    --total-mib "$BENCH_PUSH_MIB" --blob-mib "$BENCH_BLOB_MIB" --seed 1 --timeout-s "$to"; then
    put push_mono "$(kv "$STEP_OUT" mb_per_s)"
  fi
  if step "push chunked" "$P" push --url "$base" --mode chunked --pushers "$BENCH_PUSHERS" \
    --total-mib "$BENCH_PUSH_MIB" --blob-mib "$BENCH_BLOB_MIB" --chunk-mib "$BENCH_CHUNK_MIB" --seed 2 --timeout-s "$to"; then
    put push_chunked "$(kv "$STEP_OUT" mb_per_s)"
  fi

  # 2./3. Manifest GET by tag and by digest, blob HEAD: in bench_requests, interleaved.

  # 4. Blob GET throughput.
  if step "push ${BENCH_BIG_MIB} MiB blob" "$P" blob --url "$base" --repo bench/big --size-mib "$BENCH_BIG_MIB" \
    --seed 7 --timeout-s "$to"; then
    local bdig
    bdig=$(kv "$STEP_OUT" digest)
    if step "blob GET" "$P" get-blob --url "$base" --repo bench/big --digest "$bdig" --count "$BENCH_GET_COUNT" \
      --warmup 1 --timeout-s "$to"; then
      put blob_get "$(kv "$STEP_OUT" gb_per_s)"
    fi
  fi

  # 5. tags/list with many tags.
  if step "tag ${BENCH_TAGS}x" "$P" tags --url "$base" --repo bench/tags --count "$BENCH_TAGS" --concurrency 8 \
    --timeout-s "$to"; then
    put tag_push_secs "$(kv "$STEP_OUT" secs)"
    if step "tags/list latency" "$P" latency --full-url "$base/v2/bench/tags/tags/list" --count "$BENCH_LAT_COUNT" \
      --warmup 20 --timeout-s "$to"; then
      local seen
      seen=$(kv "$STEP_OUT" tags_in_response)
      put tags_seen "${seen:-?}"
      if [[ "${seen:-}" != "$BENCH_TAGS" ]]; then
        WARNINGS+=("$name: tags/list returned ${seen:-?} tags, not $BENCH_TAGS (paginated or missing)")
      fi
      put tags_p50 "$(kv "$STEP_OUT" p50_ms)"
      put tags_p99 "$(kv "$STEP_OUT" p99_ms)"
    fi
  fi

  # 6. Memory: VmHWM (kernel's peak RSS) at the end, and the max of periodic VmRSS samples.
  local hwm sampled
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || true)
  stop_pid "$SAMPLER_PID" 2; SAMPLER_PID=""
  sampled=$(cat "$dir/rss.max" 2>/dev/null || echo "")
  if [[ -n "$hwm" ]]; then
    put rss_hwm "$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')"
  else
    WARNINGS+=("$name: server process gone before the VmHWM reading")
  fi
  [[ -n "$sampled" ]] && put rss_sampled "$(awk -v k="$sampled" 'BEGIN { printf "%.1f", k / 1024 }')"
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    STATUS[$name]="failed: server exited during the run"
    { echo "## $name server.log (tail)"; tail -n 30 "$dir/server.log"; } >>"$RAW"
  fi
  stop_pid "$SERVER_PID"; SERVER_PID=""
  if [[ -s "$dir/server.log" ]]; then
    { echo "## $name server.log (last 20 lines)"; tail -n 20 "$dir/server.log"; } >>"$RAW"
  fi
  rm -rf "$dir"
}

# ---------------------------------------------------------------- Request rows, interleaved
# Manifest GET by tag and by digest, and blob HEAD: tens of thousands of tiny requests a
# second, whose rate follows whatever else the machine does (on a 2-core VM it drifts by
# 15% within a minute). Measured one server after the other, the drift decides the ratio.
# So every server that ran above runs here at once, on a fresh store holding one small
# image, and the rows are measured in BENCH_REQ_ROUNDS short rounds in which the servers
# take turns (who goes first rotates); each figure is the median of its rounds, and every
# round's figures are in the raw output.

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# req_figs ROUND BASE MANIFEST_DIGEST LAYER_DIGEST : one round of the request rows
req_figs() {
  local r=$1 base=$2 mdig=$3 ldig=$4
  wrk_fig "man_tag.$r" GET "$base/v2/bench/small/manifests/latest"
  wrk_fig "man_digest.$r" GET "$base/v2/bench/small/manifests/$mdig"
  wrk_fig "blob_head.$r" HEAD "$base/v2/bench/small/blobs/$ldig"
}

bench_requests() {
  local names=() bases=() pids=() mdigs=() ldigs=() name port dir base pid
  settle
  for name in $BENCH_SERVERS; do
    [[ "${STATUS[$name]:-}" == ok ]] || continue
    CUR_SERVER=$name
    port=$(free_port)
    dir="$RUN_DIR/req-$name"
    mkdir -p "$dir"
    base="http://127.0.0.1:$port"
    SERVER_PID="" SKIP_REASON=""
    "start_$name" "$port" "$dir" || { WARNINGS+=("$name: request rows: ${SKIP_REASON:-not started}"); continue; }
    pid=$SERVER_PID SERVER_PID=""
    REQ_PIDS+=("$pid")
    if ! wait_ready "$base" "$pid"; then
      WARNINGS+=("$name: request rows: not ready on $base within 30 s")
      continue
    fi
    echo "## $name (request rows) pid=$pid port=$port" >>"$RAW"
    step "small image" "$PUSHER_BIN" image --url "$base" --repo bench/small --tag latest --seed 3 \
      --timeout-s "$BENCH_STEP_TIMEOUT" || continue
    names+=("$name") bases+=("$base") pids+=("$pid")
    mdigs+=("$(kv "$STEP_OUT" manifest_digest)") ldigs+=("$(kv "$STEP_OUT" layer_digest)")
  done
  local n=${#names[@]} r i j
  # A warm-up round first, every server and figure for BENCH_WRK_WARMUP_SECS, kept in the
  # raw output only (`man_tag.warmup_*`): the first seconds after the servers start stall
  # now and then (the machine still settling after the per-server runs), and without it
  # that landed on whoever went first in round 1.
  log "request rows: warm-up round"
  for ((i = 0; i < n; i++)); do
    CUR_SERVER=${names[$i]} base=${bases[$i]}
    BENCH_REQ_SECS=$BENCH_WRK_WARMUP_SECS req_figs warmup "$base" "${mdigs[$i]}" "${ldigs[$i]}"
  done
  for ((r = 0; r < BENCH_REQ_ROUNDS; r++)); do
    log "request rows: round $((r + 1)) of $BENCH_REQ_ROUNDS"
    for ((i = 0; i < n; i++)); do
      j=$(((i + r) % n))
      CUR_SERVER=${names[$j]} base=${bases[$j]}
      req_figs "$r" "$base" "${mdigs[$j]}" "${ldigs[$j]}"
    done
  done
  local key m vals hwm
  for ((i = 0; i < n; i++)); do
    CUR_SERVER=${names[$i]}
    for key in man_tag man_digest blob_head; do
      for m in rps p50 p99; do
        vals=""
        for ((r = 0; r < BENCH_REQ_ROUNDS; r++)); do vals+=" ${R["$CUR_SERVER|$key.${r}_$m"]:-}"; done
        [[ -n "${vals// /}" ]] && put "${key}_$m" "$(echo "$vals" | median)"
      done
    done
  done
  # Peak RSS: the larger of this phase's and the server's own run's.
  for ((i = 0; i < n; i++)); do
    CUR_SERVER=${names[$i]}
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/${pids[$i]}/status" 2>/dev/null || true)
    [[ -n "$hwm" ]] || continue
    hwm=$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')
    if [[ -z "${R["$CUR_SERVER|rss_hwm"]:-}" ]] ||
      awk -v a="$hwm" -v b="${R["$CUR_SERVER|rss_hwm"]}" 'BEGIN { exit !(a > b) }'; then
      put rss_hwm "$hwm"
    fi
  done
  for pid in "${REQ_PIDS[@]}"; do stop_pid "$pid" 10; done
  REQ_PIDS=()
  for name in $BENCH_SERVERS; do rm -rf "$RUN_DIR/req-$name"; done
}

# ---------------------------------------------------------------- Blob delivery (cargohold only)
# S3 push and pull (redirect vs proxy) and nginx in front of the filesystem store, with the
# API process's CPU time per GB pulled. Figures go to D[key]; its own table in report_delivery.

have_s3_env() {
  [[ -n "${CARGOHOLD_TEST_S3_ENDPOINT:-}" && -n "${CARGOHOLD_TEST_S3_REGION:-}" && -n "${CARGOHOLD_TEST_S3_BUCKET:-}" &&
    -n "${CARGOHOLD_TEST_S3_ACCESS_KEY:-}" && -n "${CARGOHOLD_TEST_S3_SECRET_KEY:-}" ]]
}

dput() { D[$1]=$2; echo "delivery.$1=$2" >>"$RAW"; }

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# proc_cpu_ticks PID...: utime+stime (all threads, in clock ticks) summed over the PIDs.
# Fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends the command name.
proc_cpu_ticks() {
  local pid sum=0 t
  for pid in "$@"; do
    t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }') || t=""
    [[ -n "$t" ]] || { echo ""; return 0; }
    sum=$((sum + t))
  done
  echo "$sum"
}

# per_gb TICKS0 TICKS1 BYTES: CPU seconds per 10^9 bytes
per_gb() {
  awk -v a="$1" -v b="$2" -v n="$3" -v hz="$CLK_TCK" 'BEGIN {
    if (a == "" || b == "" || n + 0 <= 0) { print ""; exit }
    printf "%.3f", (b - a) / hz / (n / 1e9) }'
}

# start_cargohold_s3 PORT DIR DELIVERY: cargohold on the test bucket under $S3_PREFIX.
start_cargohold_s3() {
  local port=$1 dir=$2 delivery=$3
  CARGOHOLD_LOG=${CARGOHOLD_LOG:-warn} "$CARGOHOLD_BIN" serve --listen "127.0.0.1:$port" --storage s3 \
    --s3-endpoint "$CARGOHOLD_TEST_S3_ENDPOINT" --s3-region "$CARGOHOLD_TEST_S3_REGION" \
    --s3-bucket "$CARGOHOLD_TEST_S3_BUCKET" --s3-path-style \
    --s3-access-key "$CARGOHOLD_TEST_S3_ACCESS_KEY" --s3-secret-key "$CARGOHOLD_TEST_S3_SECRET_KEY" \
    --s3-prefix "$S3_PREFIX" --blob-delivery "$delivery" >>"$dir/server.log" 2>&1 &
  SERVER_PID=$!
}

# up NAME BASE DIR: wait for the server just started; on failure log it and stop it.
up() {
  local name=$1 base=$2 dir=$3
  if wait_ready "$base" "$SERVER_PID"; then
    echo "## $name pid=$SERVER_PID $base" >>"$RAW"
    return 0
  fi
  DNOTES+=("$name: did not answer GET /v2/ on $base within 30 s (server.log tail in the raw results)")
  { echo "## $name server.log (tail)"; tail -n 30 "$dir/server.log"; } >>"$RAW"
  stop_pid "$SERVER_PID"; SERVER_PID=""
  return 1
}

# pull_fig KEY BASE REPO DIGEST EXPECT_REDIRECT COUNT: one unmeasured download, then up to
# COUNT sequential downloads (at most BENCH_PULL_SECS of them), with the API's CPU ticks
# read before and after; with nginx running, its workers' too.
# Sets D[KEY_mbs], D[KEY_cpu] (API s/GB) and D[KEY_ngx_cpu] (nginx workers s/GB).
pull_fig() {
  local key=$1 base=$2 repo=$3 dig=$4 expect=$5 count=$6 to=$BENCH_STEP_TIMEOUT
  step "$key warm-up" "$PUSHER_BIN" get-blob --url "$base" --repo "$repo" --digest "$dig" --count 1 --warmup 0 \
    --expect-redirect "$expect" --timeout-s "$to" || return 0
  local a0 a1 n0="" n1="" bytes
  a0=$(proc_cpu_ticks "$SERVER_PID")
  local -a workers=()
  read -r -a workers <<<"$NGINX_WORKERS"
  ((${#workers[@]})) && n0=$(proc_cpu_ticks "${workers[@]}")
  step "$key" "$PUSHER_BIN" get-blob --url "$base" --repo "$repo" --digest "$dig" --count "$count" --warmup 0 \
    --max-secs "$BENCH_PULL_SECS" --expect-redirect "$expect" --timeout-s "$to" || return 0
  a1=$(proc_cpu_ticks "$SERVER_PID")
  ((${#workers[@]})) && n1=$(proc_cpu_ticks "${workers[@]}")
  bytes=$(kv "$STEP_OUT" bytes)
  echo "$CUR_SERVER.$key.api_cpu_ticks=$a0..$a1 (CLK_TCK=$CLK_TCK) bytes=$bytes nginx_worker_ticks=$n0..$n1" >>"$RAW"
  dput "${key}_mbs" "$(kv "$STEP_OUT" mb_per_s)"
  dput "${key}_n" "$(kv "$STEP_OUT" downloads)"
  local v
  v=$(per_gb "$a0" "$a1" "$bytes")
  if [[ -n "$v" ]]; then dput "${key}_cpu" "$v"; else DNOTES+=("$CUR_SERVER: $key: API CPU not readable"); fi
  if [[ -n "$n0" && -n "$n1" ]]; then
    dput "${key}_ngx_cpu" "$(per_gb "$n0" "$n1" "$bytes")"
  fi
}

bench_s3() {
  local port dir base to=$BENCH_STEP_TIMEOUT P=$PUSHER_BIN
  dir="$RUN_DIR/cargohold-s3"
  mkdir -p "$dir"
  S3_PREFIX="bench-$(date +%s)-$$"
  echo "## cargohold-s3: endpoint $CARGOHOLD_TEST_S3_ENDPOINT bucket $CARGOHOLD_TEST_S3_BUCKET prefix $S3_PREFIX" >>"$RAW"

  # 1. Pushes and the blob to pull, with the default delivery (redirect).
  CUR_SERVER=cargohold-s3-redirect
  port=$(free_port); base="http://127.0.0.1:$port"
  log "== cargohold on S3 ($CARGOHOLD_TEST_S3_ENDPOINT, prefix $S3_PREFIX), --blob-delivery redirect, on $base"
  start_cargohold_s3 "$port" "$dir" redirect
  up "$CUR_SERVER" "$base" "$dir" || return 0
  step "warm-up image" "$P" image --url "$base" --repo bench/warm --tag latest --timeout-s "$to" || true
  step "warm-up push mono" "$P" push --url "$base" --mode mono --pushers "$BENCH_S3_PUSHERS" --total-mib 8 \
    --blob-mib 2 --repo-prefix bench/warm-mono --seed 101 --timeout-s "$to" || true
  step "warm-up push chunked" "$P" push --url "$base" --mode chunked --pushers "$BENCH_S3_PUSHERS" --total-mib 8 \
    --blob-mib 2 --chunk-mib "$BENCH_CHUNK_MIB" --repo-prefix bench/warm-chunked --seed 102 --timeout-s "$to" || true
  if step "push monolithic" "$P" push --url "$base" --mode mono --pushers "$BENCH_S3_PUSHERS" \
    --total-mib "$BENCH_S3_PUSH_MIB" --blob-mib "$BENCH_S3_BLOB_MIB" --seed 11 --timeout-s "$to"; then
    dput s3_push_mono "$(kv "$STEP_OUT" mb_per_s)"
  fi
  if step "push chunked" "$P" push --url "$base" --mode chunked --pushers "$BENCH_S3_PUSHERS" \
    --total-mib "$BENCH_S3_PUSH_MIB" --blob-mib "$BENCH_S3_BLOB_MIB" --chunk-mib "$BENCH_CHUNK_MIB" --seed 12 \
    --timeout-s "$to"; then
    dput s3_push_chunked "$(kv "$STEP_OUT" mb_per_s)"
  fi
  local dig=""
  if step "push ${BENCH_PULL_MIB} MiB blob" "$P" blob --url "$base" --repo bench/pull --size-mib "$BENCH_PULL_MIB" \
    --seed 17 --timeout-s "$to"; then
    dig=$(kv "$STEP_OUT" digest)
  fi

  # 2. Pull, redirect: the client follows the 307 to the presigned URL.
  [[ -n "$dig" ]] && pull_fig s3_redirect "$base" bench/pull "$dig" yes "$BENCH_S3_PULL_COUNT"
  kill -0 "$SERVER_PID" 2>/dev/null || DNOTES+=("$CUR_SERVER: the server exited during the run")
  stop_pid "$SERVER_PID"; SERVER_PID=""

  # 3. Pull, proxy: a second process on the same prefix streams the bytes itself.
  if [[ -n "$dig" ]]; then
    CUR_SERVER=cargohold-s3-proxy
    port=$(free_port); base="http://127.0.0.1:$port"
    log "== cargohold on S3, --blob-delivery proxy, on $base"
    start_cargohold_s3 "$port" "$dir" proxy
    if up "$CUR_SERVER" "$base" "$dir"; then
      pull_fig s3_proxy "$base" bench/pull "$dig" no "$BENCH_S3_PULL_COUNT"
      kill -0 "$SERVER_PID" 2>/dev/null || DNOTES+=("$CUR_SERVER: the server exited during the run")
      stop_pid "$SERVER_PID"; SERVER_PID=""
    fi
  fi
  if [[ -s "$dir/server.log" ]]; then
    { echo "## cargohold-s3 server.log (last 20 lines)"; tail -n 20 "$dir/server.log"; } >>"$RAW"
  fi
  s3_cleanup
}

# A private nginx (temp paths, pid, logs in DIR/nginx) with a copy of
# infra/nginx/cargohold.conf whose five EDIT values point at this API, ROOT and an open
# auth include (as tests/static/lib.sh does). Sets NGINX_PID and NGINX_WORKERS.
start_nginx() {
  local api_port=$1 ngx_port=$2 root=$3 ngx=$4 conf_dir="$REPO_DIR/infra/nginx" user="" want i
  mkdir -p "$ngx"
  sed -e "s|server 127.0.0.1:5000;|server 127.0.0.1:$api_port;|" \
    -e "s|/etc/nginx/njs/cargohold.js|$conf_dir/cargohold.js|" \
    -e "s|listen 8080;|listen 127.0.0.1:$ngx_port;|" \
    -e "s|root /srv/cargohold;|root $root;|" \
    -e "s|include /etc/nginx/cargohold-auth.conf;|include $ngx/cargohold-auth.conf;|" \
    "$conf_dir/cargohold.conf" >"$ngx/cargohold.conf"
  # The auth include of an open registry (the API here runs without auth).
  "$CARGOHOLD_BIN" nginx-auth >"$ngx/cargohold-auth.conf" || { DNOTES+=("nginx: cargohold nginx-auth failed"); return 1; }
  for want in "server 127.0.0.1:$api_port;" "js_import cargohold from $conf_dir/cargohold.js;" \
    "listen 127.0.0.1:$ngx_port;" "root $root;" "include $ngx/cargohold-auth.conf;"; do
    grep -qF "$want" "$ngx/cargohold.conf" || { DNOTES+=("nginx: infra/nginx/cargohold.conf changed: no '$want' after substitution"); return 1; }
  done
  # Workers only read the store: unprivileged when nobody can reach it, else as root.
  if ((EUID == 0)); then
    if command -v runuser >/dev/null && runuser -u nobody -- test -r "$root/index" 2>/dev/null; then
      user="user nobody $(id -gn nobody);"
    else
      user="user root root;"
    fi
  fi
  cat >"$ngx/nginx.conf" <<NGX
load_module $NJS_MODULE;
$user
worker_processes 1;
pid $ngx/nginx.pid;
error_log $ngx/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $ngx/client_body;
    proxy_temp_path $ngx/proxy;
    fastcgi_temp_path $ngx/fastcgi;
    uwsgi_temp_path $ngx/uwsgi;
    scgi_temp_path $ngx/scgi;
    include $ngx/cargohold.conf;
}
NGX
  if ! "$NGINX_BIN" -t -q -e "$ngx/error.log" -c "$ngx/nginx.conf" -p "$ngx/" 2>"$ngx/test.log"; then
    DNOTES+=("nginx: configuration test failed (nginx -t output in the raw results)")
    { echo "## nginx -t"; tail -n 20 "$ngx/test.log"; } >>"$RAW"
    return 1
  fi
  "$NGINX_BIN" -e "$ngx/error.log" -c "$ngx/nginx.conf" -p "$ngx/" -g 'daemon off;' >>"$ngx/stdout.log" 2>&1 &
  NGINX_PID=$!
  if ! wait_ready "http://127.0.0.1:$ngx_port" "$NGINX_PID"; then
    DNOTES+=("nginx: not answering GET /v2/ on 127.0.0.1:$ngx_port within 30 s")
    { echo "## nginx error.log"; tail -n 20 "$ngx/error.log"; } >>"$RAW"
    stop_nginx
    return 1
  fi
  for ((i = 0; i < 50; i++)); do # the worker is forked right after the master starts
    NGINX_WORKERS=$(pgrep -P "$NGINX_PID" | tr '\n' ' ') || true
    [[ -n "$NGINX_WORKERS" ]] && break
    sleep 0.1
  done
  echo "## nginx pid=$NGINX_PID workers=$NGINX_WORKERS port=$ngx_port $user" >>"$RAW"
}

bench_nginx() {
  local port nport dir base to=$BENCH_STEP_TIMEOUT P=$PUSHER_BIN
  CUR_SERVER=cargohold-fs
  dir="$RUN_DIR/cargohold-fs"
  mkdir -p "$dir"
  port=$(free_port); base="http://127.0.0.1:$port"
  log "== cargohold on the filesystem store, direct and behind nginx; API on $base"
  start_cargohold "$port" "$dir" || { DNOTES+=("cargohold-fs: $SKIP_REASON"); return 0; }
  up "$CUR_SERVER" "$base" "$dir" || return 0
  local dig=""
  step "warm-up image" "$P" image --url "$base" --repo bench/warm --tag latest --timeout-s "$to" || true
  if step "push ${BENCH_PULL_MIB} MiB blob" "$P" blob --url "$base" --repo bench/pull --size-mib "$BENCH_PULL_MIB" \
    --seed 17 --timeout-s "$to"; then
    dig=$(kv "$STEP_OUT" digest)
  fi
  if [[ -n "$dig" ]]; then
    pull_fig fs_direct "$base" bench/pull "$dig" no "$BENCH_FS_PULL_COUNT"
    if [[ ! -x "$NGINX_BIN" || ! -f "$NJS_MODULE" ]]; then
      DNOTES+=("nginx rows skipped: needs nginx and $NJS_MODULE (apt-get install nginx libnginx-mod-http-js)")
    else
      nport=$(free_port)
      CUR_SERVER=cargohold-fs+nginx
      if start_nginx "$port" "$nport" "$dir/root" "$dir/nginx"; then
        log "   nginx on http://127.0.0.1:$nport (root $dir/root)"
        pull_fig fs_nginx "http://127.0.0.1:$nport" bench/pull "$dig" no "$BENCH_FS_PULL_COUNT"
        stop_nginx
      fi
    fi
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || DNOTES+=("cargohold-fs: the server exited during the run")
  stop_pid "$SERVER_PID"; SERVER_PID=""
  if [[ -s "$dir/server.log" ]]; then
    { echo "## cargohold-fs server.log (last 20 lines)"; tail -n 20 "$dir/server.log"; } >>"$RAW"
  fi
  rm -rf "$dir"
}

bench_delivery() {
  [[ -x "$CARGOHOLD_BIN" ]] || { DNOTES+=("section skipped: $CARGOHOLD_BIN not built"); return 0; }
  local busy
  busy=$(cpu_busy_pct)
  echo "delivery.bg_cpu_busy_pct=$busy" >>"$RAW"
  log "== blob-delivery section; CPU busy before start: ${busy}%"
  if awk -v b="$busy" 'BEGIN { exit !(b > 15) }'; then
    DNOTES+=("machine not idle before the section (${busy}% CPU busy over 1 s): figures are noisy")
  fi
  if have_s3_env; then
    bench_s3
  else
    DNOTES+=("S3 rows skipped: CARGOHOLD_TEST_S3_* not set; to enable: .ci/s3-servers.sh start localstack && source .ci/.s3/env")
    log "S3 rows skipped (CARGOHOLD_TEST_S3_* not set; .ci/s3-servers.sh start localstack && source .ci/.s3/env)"
  fi
  bench_nginx
}

DROWS=(
  "s3_push_mono|S3: push monolithic, ${BENCH_S3_PUSHERS} pushers, ${BENCH_S3_PUSH_MIB} MiB (MB/s)|higher|"
  "s3_push_chunked|S3: push chunked ${BENCH_CHUNK_MIB} MiB PATCH, ${BENCH_S3_PUSHERS} pushers (MB/s)|higher|"
  "s3_redirect_mbs|S3: blob GET ${BENCH_PULL_MIB} MiB, redirect (MB/s)|higher|s3_proxy_mbs"
  "s3_proxy_mbs|S3: blob GET ${BENCH_PULL_MIB} MiB, proxy (MB/s)|higher|"
  "s3_redirect_cpu|S3: API CPU per GB pulled, redirect (s/GB)|lower|s3_proxy_cpu"
  "s3_proxy_cpu|S3: API CPU per GB pulled, proxy (s/GB)|lower|"
  "fs_nginx_mbs|fs: blob GET ${BENCH_PULL_MIB} MiB through nginx (MB/s)|higher|fs_direct_mbs"
  "fs_direct_mbs|fs: blob GET ${BENCH_PULL_MIB} MiB from the API (MB/s)|higher|"
  "fs_nginx_cpu|fs: API CPU per GB pulled, through nginx (s/GB)|lower|fs_direct_cpu"
  "fs_direct_cpu|fs: API CPU per GB pulled, from the API (s/GB)|lower|"
  "fs_nginx_ngx_cpu|fs: nginx worker CPU per GB, through nginx (s/GB)|lower|"
)

report_delivery() {
  local row key label dir ref v r ratio
  echo "cargohold blob delivery: S3 (redirect vs proxy) and nginx in front of the filesystem store"
  printf '%-56s %13s  %-6s %s\n' "figure" "cargohold" "better" "vs the row below"
  for row in "${DROWS[@]}"; do
    IFS='|' read -r key label dir ref <<<"$row"
    v=${D[$key]:-}
    ratio="-"
    if [[ -n "$ref" && -n "$v" ]]; then
      r=${D[$ref]:-}
      [[ -n "$r" ]] && ratio=$(awk -v a="$v" -v b="$r" 'BEGIN { if (b == 0) print "-"; else printf "%.2fx", a / b }')
    fi
    printf '%-56s %13s  %-6s %s\n' "$label" "${v:-n/a}" "$dir" "$ratio"
  done
  echo
  echo "one cargohold per block, no peer columns (the peers have no S3 mode or nginx layout here)."
  echo "last column = this row / the row below it (redirect / proxy, nginx / API direct)."
  echo "blob GET: sequential downloads on one connection, redirects followed; API CPU = utime+stime"
  echo "of the cargohold process over the measured downloads (/proc/PID/stat, ${CLK_TCK} ticks/s)"
  echo "divided by the GB (10^9 bytes) pulled. Downloads measured: S3 redirect ${D[s3_redirect_n]:-0}," \
    "proxy ${D[s3_proxy_n]:-0}; fs API ${D[fs_direct_n]:-0}, nginx ${D[fs_nginx_n]:-0}."
  local n
  for n in "${DNOTES[@]}"; do echo "note: $n"; done
}

# ---------------------------------------------------------------- Report
ROWS=(
  "push_mono|push monolithic, ${BENCH_PUSHERS} pushers, ${BENCH_PUSH_MIB} MiB (MB/s)|higher"
  "push_chunked|push chunked ${BENCH_CHUNK_MIB} MiB PATCH, ${BENCH_PUSHERS} pushers (MB/s)|higher"
  "man_tag_rps|manifest GET by tag (req/s)|higher"
  "man_tag_p50|manifest GET by tag p50 (ms)|lower"
  "man_tag_p99|manifest GET by tag p99 (ms)|lower"
  "man_digest_rps|manifest GET by digest (req/s)|higher"
  "man_digest_p50|manifest GET by digest p50 (ms)|lower"
  "man_digest_p99|manifest GET by digest p99 (ms)|lower"
  "blob_head_rps|blob HEAD (req/s)|higher"
  "blob_head_p50|blob HEAD p50 (ms)|lower"
  "blob_head_p99|blob HEAD p99 (ms)|lower"
  "blob_get|blob GET ${BENCH_BIG_MIB} MiB (GB/s)|higher"
  "tags_p50|tags/list, ${BENCH_TAGS} tags, p50 (ms)|lower"
  "tags_p99|tags/list, ${BENCH_TAGS} tags, p99 (ms)|lower"
  "rss_hwm|peak RSS, VmHWM (MiB)|lower"
)

report() {
  local servers=($BENCH_SERVERS) s row key label dir v best ratio have_ch=0
  [[ " $BENCH_SERVERS " == *" cargohold "* && -n "${STATUS[cargohold]:-}" && "${STATUS[cargohold]}" == ok* ]] && have_ch=1
  printf '%-52s' "figure"
  for s in "${servers[@]}"; do printf ' %13s' "$s"; done
  printf '  %-6s %s\n' "better" "cargohold / best peer"
  for row in "${ROWS[@]}"; do
    IFS='|' read -r key label dir <<<"$row"
    printf '%-52s' "$label"
    best=""
    for s in "${servers[@]}"; do
      v=${R["$s|$key"]:-}
      printf ' %13s' "${v:-n/a}"
      [[ "$s" == cargohold || -z "$v" ]] && continue
      if [[ -z "$best" ]]; then best=$v
      elif [[ "$dir" == higher ]]; then best=$(awk -v a="$best" -v b="$v" 'BEGIN { print (b > a) ? b : a }')
      else best=$(awk -v a="$best" -v b="$v" 'BEGIN { print (b < a) ? b : a }')
      fi
    done
    ratio="-"
    v=${R["cargohold|$key"]:-}
    if ((have_ch)) && [[ -n "$v" && -n "$best" ]]; then
      ratio=$(awk -v c="$v" -v b="$best" 'BEGIN { if (b == 0) print "-"; else printf "%.2fx", c / b }')
    fi
    printf '  %-6s %s\n' "$dir" "$ratio"
  done
  echo
  echo "ratio = cargohold's figure divided by the best peer's figure for that row;"
  echo "'better' says which way is good: for 'higher' rows a ratio > 1 means cargohold wins,"
  echo "for 'lower' rows (latency, memory) a ratio < 1 means cargohold wins."
  echo "MB/s = 10^6 bytes/s, GB/s = 10^9 bytes/s (of blob bytes); latencies in milliseconds."
  for s in "${servers[@]}"; do
    [[ "${STATUS[$s]:-}" == ok ]] || echo "note: $s: ${STATUS[$s]:-not run}"
  done
  if ((${#WARNINGS[@]})); then
    echo
    echo "warnings:"
    for w in "${WARNINGS[@]}"; do echo "  - $w"; done
  fi
}

# ---------------------------------------------------------------- Main
main() {
  LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
  log "load average: $LOAD_AT_START"
  ensure_tools
  for s in $BENCH_SERVERS; do
    bench_server "$s"
  done
  [[ -n "${BENCH_SERVERS// /}" ]] && bench_requests
  [[ "$BENCH_DELIVERY" == 1 ]] && bench_delivery
  local table="$RUN_DIR/table.txt"
  if [[ -n "${BENCH_SERVERS// /}" ]]; then
    report >"$table"
  else
    echo "(no servers in BENCH_SERVERS: comparison table skipped)" >"$table"
  fi
  if [[ "$BENCH_DELIVERY" == 1 ]]; then
    echo >>"$table"
    report_delivery >>"$table"
  fi
  cat "$table"
  mkdir -p "$(dirname "$BENCH_RESULTS")"
  {
    echo "# cargohold bench — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# host: $(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "# repo: $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
    echo "# servers: $BENCH_SERVERS"
    echo "# distribution: $("$DISTRIBUTION_BIN" --version 2>/dev/null || echo n/a)"
    echo "# ferro-oci-server: $FERRO_VERSION ($FERRO_BIN)"
    echo "# cargohold: $CARGOHOLD_BIN"
    echo "# settings: pushers=$BENCH_PUSHERS push_mib=$BENCH_PUSH_MIB blob_mib=$BENCH_BLOB_MIB chunk_mib=$BENCH_CHUNK_MIB" \
      "wrk=-t$BENCH_WRK_THREADS/-c$BENCH_WRK_CONNS req_rounds=$BENCH_REQ_ROUNDS x ${BENCH_REQ_SECS}s big_mib=$BENCH_BIG_MIB get_count=$BENCH_GET_COUNT" \
      "tags=$BENCH_TAGS lat_count=$BENCH_LAT_COUNT"
    echo "# delivery: enabled=$BENCH_DELIVERY s3=$(have_s3_env && echo "$CARGOHOLD_TEST_S3_ENDPOINT/$CARGOHOLD_TEST_S3_BUCKET" || echo off)" \
      "s3_pushers=$BENCH_S3_PUSHERS s3_push_mib=$BENCH_S3_PUSH_MIB s3_blob_mib=$BENCH_S3_BLOB_MIB pull_mib=$BENCH_PULL_MIB" \
      "s3_pull_count=$BENCH_S3_PULL_COUNT fs_pull_count=$BENCH_FS_PULL_COUNT pull_secs=$BENCH_PULL_SECS" \
      "nginx=$("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //' || echo n/a)"
    echo "# load average (1/5/15 min): at the start $LOAD_AT_START, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    cat "$table"
    echo
    echo "# ---- raw step output"
    cat "$RAW"
  } >"$BENCH_RESULTS"
  log "raw results: $BENCH_RESULTS"
}

main "$@"
