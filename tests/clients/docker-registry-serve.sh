#!/usr/bin/env bash
# Adapter with cargohold's command line for CNCF distribution (Debian's
# docker-registry), so the client scripts can be checked against a reference
# registry:  REGISTRY_CMD=tests/clients/docker-registry-serve.sh tests/clients/run.sh
# Usage: docker-registry-serve.sh serve --listen ADDR --root DIR
set -euo pipefail

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

mkdir -p "$root"
config="$root/distribution-config.yml"
# delete.enabled: the skopeo scenario deletes manifests.
cat >"$config" <<YAML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $root/data
  delete:
    enabled: true
http:
  addr: $listen
YAML
# exec: the caller stops us by the PID it started.
exec /usr/bin/docker-registry serve "$config"
