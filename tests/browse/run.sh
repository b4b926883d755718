#!/usr/bin/env bash
# The browse UI in a real browser: Debian's chromium, headless, driven by playwright-core
# (tests/browse/package-lock.json; no browser download), through browse.mjs.
#   1. cargohold serve (filesystem store): fixtures pushed through the API (five
#      repositories, a two-platform index, a signature with the index as subject), every
#      page checked, then a tag deleted and checked gone;
#   2. nginx (infra/nginx/cargohold.conf) in front of the same store with the API stopped:
#      the same pages, read-only;
#   3. cargohold index check on the store.
# Screenshots of each page: $BROWSE_OUT (default target/browse-test/), <mode>-<page>.png.
# Prints `ok - `/`not ok - ` lines and `N passed, N failed` last; exits non-zero on any
# failure. Needs target/debug/cargohold, chromium, nginx + njs, node (npm ci --prefix
# tests/browse, as .ci/setup does). Stops what it starts by PID.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../static/lib.sh
source "$HERE/../static/lib.sh"
OUT="${BROWSE_OUT:-$REPO_ROOT/target/browse-test}"

missing=()
[[ -x "${API_CMD[0]}" ]] || missing+=("${API_CMD[0]} (cargo build --bin cargohold)")
[[ -x "${CHROMIUM:-/usr/bin/chromium}" ]] || missing+=("chromium (apt-get install chromium)")
command -v nginx >/dev/null || missing+=("nginx")
[[ -d "$HERE/node_modules/playwright-core" ]] || missing+=("playwright-core (npm ci --prefix tests/browse)")
if [[ ${#missing[@]} -gt 0 ]]; then
    for m in "${missing[@]}"; do echo "not ok - browse: missing $m"; done
    echo "0 passed, ${#missing[@]} failed"
    exit 1
fi

client_init browse
chmod 755 "$WORK"
rm -rf "$OUT"
mkdir -p "$OUT"
ROOT="$WORK/registry-root"
mkdir -p "$ROOT"
NGX="$WORK/nginx"
API_PORT="$(free_port)"
API_STORE_ARGS=(--root "$ROOT")
NGINX_CONF=cargohold.conf
NGINX_EDITS=("root /srv/cargohold;" "root $ROOT;")
NGINX_USER="root root"
trap 'stop_nginx; client_cleanup' EXIT

# browse MODE URL: browse.mjs's lines, counted here.
browse() {
    local line
    while IFS= read -r line; do
        echo "$line"
        case "$line" in
        "ok - "*) PASSED=$((PASSED + 1)) ;;
        "not ok - "*) FAILED=$((FAILED + 1)) ;;
        esac
    done < <(cd "$HERE" && timeout 300 node browse.mjs "$1" "$2" "$OUT" 2>&1 || echo "# browse.mjs $1 exited with $?")
}

if start_api; then
    browse push "http://127.0.0.1:$API_PORT"
    if start_nginx; then
        stop_registry
        check "browse: the API is stopped" api_port_closed
        browse static "http://$NGINX"
        stop_nginx
    else
        echo "not ok - browse: nginx did not start"
        FAILED=$((FAILED + 1))
    fi
else
    echo "not ok - browse: cargohold did not start"
    FAILED=$((FAILED + 1))
fi
index_consistent
echo "# screenshots in $OUT"
echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
