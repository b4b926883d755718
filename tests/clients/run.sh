#!/usr/bin/env bash
# Runs the real-client scenarios (default: all) against target/debug/cargohold
# or $REGISTRY_CMD, each with its own server, and prints `N passed, N failed`.
#   tests/clients/run.sh                 # skopeo podman oras auth
#   tests/clients/run.sh skopeo oras     # a subset
#   REGISTRY_CMD=tests/clients/docker-registry-serve.sh tests/clients/run.sh
# Per scenario time limit: CLIENT_TIMEOUT seconds (default 900).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
scenarios=("$@")
if [[ ${#scenarios[@]} -eq 0 ]]; then
    scenarios=(skopeo podman oras auth)
fi

passed=0
failed=0
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

for name in "${scenarios[@]}"; do
    script="$here/$name.sh"
    if [[ ! -f "$script" ]]; then
        echo "not ok - $name: no such scenario ($script)"
        failed=$((failed + 1))
        continue
    fi
    echo "# --- $name"
    # timeout signals the whole process group, so a hung client and the
    # scenario's registry both go; stdin closed: nothing may prompt.
    set +e
    timeout --kill-after=15 "${CLIENT_TIMEOUT:-900}" bash "$script" </dev/null 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    set -e
    p=$(grep -c '^ok - ' "$out" || true)
    f=$(grep -c '^not ok - ' "$out" || true)
    # A scenario that died without saying why still counts as a failure.
    if [[ $rc -ne 0 && $f -eq 0 ]]; then
        if [[ $rc -eq 124 || $rc -eq 137 ]]; then
            echo "not ok - $name: timed out after ${CLIENT_TIMEOUT:-900}s"
        else
            echo "not ok - $name: exited with status $rc"
        fi
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
done

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
