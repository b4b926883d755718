# shellcheck shell=bash
# Processes the tests and .ci/ start: stopped by PID only (never by name), waited on with
# bounded loops that give up early when the process has died. Sourced by
# tests/clients/lib.sh (and so tests/static/, tests/cloudflare/) and .ci/s3-servers.sh.
#
#   free_port                          a free loopback port (bind to port 0)
#   stop_pid PID [SIGNAL] [GRACE]      SIGNAL (TERM; QUIT for nginx), up to GRACE s (5), KILL
#   wait_until PID TIMEOUT CMD...      until CMD succeeds: 0; 1 if PID died; 2 after TIMEOUT s
#   wait_http URL PID TIMEOUT [CODES]  until URL answers with a status matching CODES (a
#                                      regex, default any), same results as wait_until

# A free loopback port: the kernel's choice for port 0. There is a tiny window before the
# server binds it; the callers retry on another port when their server exits early.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# stop_pid PID [SIGNAL] [GRACE_SECONDS]: sends SIGNAL (default TERM) to PID, or to the
# whole process group when PID leads one (started with setsid: LocalStack's workers,
# node's workerd), waits up to GRACE seconds (default 5) for it to go, then sends KILL.
# Reaps PID when it is this shell's child. A PID that is already gone is fine; always 0.
stop_pid() {
    local pid="${1:-}" sig="${2:-TERM}" grace="${3:-5}" target i
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    target="$pid"
    if [[ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" == "$pid" ]]; then
        target="-$pid"
    fi
    if kill -0 -- "$target" 2>/dev/null; then
        kill "-$sig" -- "$target" 2>/dev/null || true
        for ((i = 0; i < grace * 10; i++)); do
            kill -0 -- "$target" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 -- "$target" 2>/dev/null; then
            echo "stop_pid: $target still running ${grace}s after SIG$sig; sending KILL" >&2
            kill -KILL -- "$target" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    return 0
}

# wait_until PID TIMEOUT CMD...: runs CMD every 0.1 s until it succeeds (0), PID is no
# longer running (1; PID "" never dies), or TIMEOUT seconds have passed (2).
wait_until() {
    local pid="$1" timeout="$2" deadline i
    shift 2
    deadline=$((SECONDS + timeout))
    for ((i = 0; i <= timeout * 10; i++)); do
        "$@" && return 0
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        ((SECONDS < deadline)) || return 2
        sleep 0.1
    done
    return 2
}

# wait_http URL PID TIMEOUT [CODES]: wait_until URL answers with an HTTP status matching
# the regex CODES (default: any status; connection errors never match).
wait_http() {
    local url="$1" pid="$2" timeout="$3" codes="${4:-[1-5][0-9][0-9]}"
    wait_until "$pid" "$timeout" http_status_matches "$url" "$codes"
}

http_status_matches() { # http_status_matches URL CODES
    local code
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true)"
    [[ "$code" =~ ^($2)$ ]]
}
