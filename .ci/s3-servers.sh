#!/usr/bin/env bash
# Starts and stops the S3 servers the store suite runs against, on 127.0.0.1 only:
#   - LocalStack 4.13.1 (PyPI, pinned in .ci/.venv-localstack): CI's main S3 server
#   - s3s-fs 0.14.1 (crates.io, in .ci/.s3s-fs): strict signatures, the cross-check
# Both get a free port and the bucket `cargohold-test`. Their variables go to an env file
# of `export` lines (default .ci/.s3/env) that `source` loads:
#   CARGOHOLD_TEST_S3_{ENDPOINT,REGION,BUCKET,ACCESS_KEY,SECRET_KEY}     LocalStack
#   CARGOHOLD_TEST_S3SFS_{ENDPOINT,REGION,BUCKET,ACCESS_KEY,SECRET_KEY}  s3s-fs
#
# Usage: .ci/s3-servers.sh start [localstack|s3s-fs|all]   (default all; installs if missing)
#        .ci/s3-servers.sh stop                            (kills what start saved, by PID)
#        .ci/s3-servers.sh install                         (installs only)
# e.g.   .ci/s3-servers.sh start && source .ci/.s3/env && cargo test -p blob-gateway
#        .ci/s3-servers.sh stop
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source-path=SCRIPTDIR/..
source tests/lib/proc.sh # free_port, stop_pid, wait_until, wait_http

LOCALSTACK_VERSION=4.13.1
S3S_FS_VERSION=0.14.1
CONSTRAINTS=${CARGOHOLD_LOCALSTACK_CONSTRAINTS:-$PWD/.ci/localstack-constraints.txt}
# Tools live outside the checkout so a fresh clone on the same machine reuses them.
TOOLS=$(realpath -m "${CARGOHOLD_CI_TOOLS:-/var/cache/cargohold-ci}")
VENV=$TOOLS/venv-localstack
S3S_ROOT=$TOOLS/s3s-fs
STATE=.ci/.s3
ENV_FILE=${CARGOHOLD_S3_ENV_FILE:-$STATE/env}
BUCKET=cargohold-test
REGION=us-east-1
READY_TIMEOUT=${CARGOHOLD_S3_READY_TIMEOUT:-120}

log() { echo "s3-servers: $*" >&2; }
die() { log "$*"; exit 1; }

install_localstack() {
    local have
    have=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("localstack-core"))' 2>/dev/null || true)
    [[ $have == "$LOCALSTACK_VERSION" ]] && return
    local py
    py=$(command -v python3.11 || command -v python3) || die "python3.11 is needed for LocalStack $LOCALSTACK_VERSION"
    "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
        die "$py is not Python 3.11; LocalStack $LOCALSTACK_VERSION's constraints are for 3.11"
    [[ -r $CONSTRAINTS ]] || die "constraints file $CONSTRAINTS is missing (set CARGOHOLD_LOCALSTACK_CONSTRAINTS)"
    log "installing LocalStack $LOCALSTACK_VERSION into $VENV (about a minute)"
    rm -rf "$VENV"
    "$py" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -c "$CONSTRAINTS" \
        "localstack-core[runtime]==$LOCALSTACK_VERSION" 'cbor2<6' 'pyopenssl<25' 'cryptography<45' service_identity
}

install_s3s_fs() {
    if [[ -x $S3S_ROOT/bin/s3s-fs ]] && grep -qs "s3s-fs $S3S_FS_VERSION" "$S3S_ROOT/.crates.toml"; then
        return
    fi
    log "installing s3s-fs $S3S_FS_VERSION into $S3S_ROOT (a few minutes)"
    cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked --root "$S3S_ROOT" --quiet
}

# ready NAME WAIT_CMD...: runs a wait_until/wait_http command; dies saying why it failed.
ready() {
    local name=$1 rc=0
    shift
    "$@" || rc=$?
    case $rc in
    0) ;;
    1) die "$name exited during start-up; see $STATE/$name.log" ;;
    *) die "$name not ready after ${READY_TIMEOUT}s; see $STATE/$name.log" ;;
    esac
}

localstack_s3_up() { # localstack_s3_up PORT: its health check lists S3 as up
    curl -fs --max-time 2 "http://127.0.0.1:$1/_localstack/health" | grep -Eq '"s3": *"(available|running)"'
}

start_localstack() {
    local port
    port=$(free_port)
    mkdir -p "$STATE/localstack-data"
    # hypercorn binds where told (the default server binds 0.0.0.0); S3 only, no DNS, no
    # certificate download, signatures checked.
    (
        cd "$STATE/localstack-data"
        exec env GATEWAY_SERVER=hypercorn GATEWAY_LISTEN="127.0.0.1:$port" \
            LOCALSTACK_HOST="127.0.0.1:$port" SERVICES=s3 S3_SKIP_SIGNATURE_VALIDATION=0 \
            DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 \
            OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$PWD" \
            setsid "$VENV/bin/python" -m localstack.runtime.main
    ) >"$STATE/localstack.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$STATE/localstack.pid"
    ready localstack wait_until "$pid" "$READY_TIMEOUT" localstack_s3_up "$port"
    curl -fs -o /dev/null -X PUT "http://127.0.0.1:$port/$BUCKET" || die "LocalStack: creating bucket $BUCKET failed"
    write_env CARGOHOLD_TEST_S3 "http://127.0.0.1:$port" test test
    log "LocalStack $LOCALSTACK_VERSION on 127.0.0.1:$port (pid $pid)"
}

start_s3s_fs() {
    local port secret
    port=$(free_port)
    secret=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
    rm -rf "$STATE/s3s-fs-data"
    mkdir -p "$STATE/s3s-fs-data/$BUCKET" # a bucket is a directory under the root
    setsid "$S3S_ROOT/bin/s3s-fs" --host 127.0.0.1 --port "$port" \
        --access-key cargohold --secret-key "$secret" "$STATE/s3s-fs-data" \
        >"$STATE/s3s-fs.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$STATE/s3s-fs.pid"
    ready s3s-fs wait_http "http://127.0.0.1:$port/" "$pid" "$READY_TIMEOUT"
    write_env CARGOHOLD_TEST_S3SFS "http://127.0.0.1:$port" cargohold "$secret"
    log "s3s-fs $S3S_FS_VERSION on 127.0.0.1:$port (pid $pid)"
}

# write_env PREFIX ENDPOINT ACCESS_KEY SECRET_KEY
write_env() {
    {
        echo "export $1_ENDPOINT=$2"
        echo "export $1_REGION=$REGION"
        echo "export $1_BUCKET=$BUCKET"
        echo "export $1_ACCESS_KEY=$3"
        echo "export $1_SECRET_KEY=$4"
    } >>"$ENV_FILE"
}

stop_one() {
    local name=$1 pidfile="$STATE/$1.pid" pid
    [[ -f $pidfile ]] || return 0
    pid=$(<"$pidfile")
    rm -f "$pidfile"
    kill -0 "$pid" 2>/dev/null || return 0
    # setsid made it a process-group leader: stop_pid ends the group (LocalStack's workers too).
    stop_pid "$pid" TERM 10
    log "stopped $name (pid $pid)"
}

stop_all() {
    stop_one localstack
    stop_one s3s-fs
    rm -f "$ENV_FILE"
}

which=${2:-all}
case ${1:-} in
install)
    install_localstack
    install_s3s_fs
    ;;
start)
    case $which in localstack | s3s-fs | all) ;; *) die "unknown server $which (localstack, s3s-fs or all)" ;; esac
    command -v curl >/dev/null || die "curl is needed"
    mkdir -p "$STATE"
    stop_all # a previous run's servers, if any
    echo "# Written by .ci/s3-servers.sh start; removed by stop." >"$ENV_FILE"
    # A failed start leaves nothing running.
    trap 'rc=$?; if ((rc != 0)); then stop_all; fi; exit $rc' EXIT
    if [[ $which == all || $which == localstack ]]; then install_localstack; start_localstack; fi
    if [[ $which == all || $which == s3s-fs ]]; then install_s3s_fs; start_s3s_fs; fi
    trap - EXIT
    log "variables in $ENV_FILE"
    ;;
stop)
    stop_all
    ;;
*)
    die "usage: $0 start [localstack|s3s-fs|all] | stop | install"
    ;;
esac
