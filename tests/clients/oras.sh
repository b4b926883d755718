#!/usr/bin/env bash
# oras Python SDK against a fresh registry: artifact push/pull, subject,
# the referrers API with artifactType filtering. The checks are in
# oras_scenario.py; this script only runs the server around them.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

client_init oras
oras_ready || exit 1
start_registry || exit 1
mkdir -p "$WORK/oras"
if "$ORAS_PYTHON" "$CLIENTS_DIR/oras_scenario.py" "$HOST" "$WORK/oras"; then
    exit 0
fi
# shellcheck disable=SC2034 # read by the EXIT trap in lib.sh
FAILED=1 # keep the scratch dir for a look
exit 1
