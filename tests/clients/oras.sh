#!/usr/bin/env bash
# oras Python SDK against a fresh registry: artifact push/pull, subject,
# the referrers API with artifactType filtering. The checks are in
# oras_scenario.py; this script only runs the server around them.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ORAS_PYTHON="${ORAS_PYTHON:-$REPO_ROOT/.ci/.venv/bin/python}"

client_init oras
if ! "$ORAS_PYTHON" -c 'import oras' 2>/dev/null; then
    echo "not ok - oras: python with the oras SDK at $ORAS_PYTHON (run .ci/setup)"
    exit 1
fi
start_registry || exit 1
mkdir -p "$WORK/oras"
if "$ORAS_PYTHON" "$CLIENTS_DIR/oras_scenario.py" "$HOST" "$WORK/oras"; then
    exit 0
fi
# shellcheck disable=SC2034 # read by the EXIT trap in lib.sh
FAILED=1 # keep the scratch dir for a look
exit 1
