#!/usr/bin/env bash
# Adapter that runs cargohold on the S3 test bucket with the command line the client
# scripts use, so every client scenario also runs against the S3 store:
#   source .ci/.s3/env
#   REGISTRY_CMD=tests/clients/cargohold-s3-serve.sh tests/clients/run.sh
# Usage: cargohold-s3-serve.sh serve --listen ADDR --root DIR
# Each DIR gets its own key prefix in the bucket, so scenarios never see each other.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${CARGOHOLD_BIN:-${CARGO_TARGET_DIR:-$here/../../target}/debug/cargohold}"

listen="" root=""
[[ "${1:-}" == serve ]] || { echo "usage: $0 serve --listen ADDR --root DIR" >&2; exit 2; }
shift
while [[ $# -gt 0 ]]; do
    case "$1" in
        --listen) listen="$2"; shift 2 ;;
        --root) root="$2"; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ -n "$listen" && -n "$root" ]] || { echo "--listen and --root are required" >&2; exit 2; }
: "${CARGOHOLD_TEST_S3_ENDPOINT:?source .ci/.s3/env first (.ci/s3-servers.sh start)}"

prefix="clients-$(basename "$root")-$$"
# exec: the caller stops us by the PID it started. Blob downloads redirect to presigned
# URLs on the bucket, as in production.
exec "$bin" serve --listen "$listen" --storage s3 \
    --s3-endpoint "$CARGOHOLD_TEST_S3_ENDPOINT" --s3-region "$CARGOHOLD_TEST_S3_REGION" \
    --s3-bucket "$CARGOHOLD_TEST_S3_BUCKET" --s3-path-style \
    --s3-access-key "$CARGOHOLD_TEST_S3_ACCESS_KEY" --s3-secret-key "$CARGOHOLD_TEST_S3_SECRET_KEY" \
    --s3-prefix "$prefix"
