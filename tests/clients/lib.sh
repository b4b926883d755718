# shellcheck shell=bash
# Shared helpers for the real-client scenarios in tests/clients/.
# Sourced, not executed. Every scenario script:
#   source lib.sh; client_init NAME; start_registry; check "..." fn; ...
# It prints TAP-like `ok - NAME` / `not ok - NAME` lines; run.sh counts them.

CLIENTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CLIENTS_DIR/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/proc.sh
source "$REPO_ROOT/tests/lib/proc.sh" # free_port, stop_pid, wait_http

# The server under test. Anything accepting `serve --listen ADDR --root DIR`
# works, e.g. REGISTRY_CMD=tests/clients/docker-registry-serve.sh to check
# these scripts against CNCF distribution. Split on spaces so extra leading
# arguments can be given.
REGISTRY_CMD="${REGISTRY_CMD:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/cargohold}"

OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
OCI_INDEX=application/vnd.oci.image.index.v1+json
OCI_CONFIG=application/vnd.oci.image.config.v1+json
OCI_LAYER_GZIP=application/vnd.oci.image.layer.v1.tar+gzip

# The python with the oras SDK (.ci/setup makes the venv).
ORAS_PYTHON="${ORAS_PYTHON:-$REPO_ROOT/.ci/.venv/bin/python}"

PASSED=0
FAILED=0
REG_PID=""
SCENARIO=""
# Other processes a scenario started (proxies, daemons): stopped by PID on exit.
EXTRA_PIDS=()

# auth_setup [EXTRA_AUTH_LINES]: turns auth on for the servers started from here on
# (docs/auth.md): CARGOHOLD_CONFIG=$WORK/auth.toml, auth directory $WORK/auth. public/*
# anyone may pull; public/secret (an exact rule inside public/*) and private/* only alice
# and bob; alice pushes. Users alice and bob, passwords pw-alice and pw-bob, added with
# CARGOHOLD_BIN (the cargohold binary, whatever REGISTRY_CMD wraps).
auth_setup() {
    export CARGOHOLD_CONFIG="$WORK/auth.toml"
    cat >"$CARGOHOLD_CONFIG" <<TOML
[auth]
dir = "$WORK/auth"
${1:-}

[[auth.rules]]
repository = "public/*"
pull = ["*"]
push = ["alice"]

[[auth.rules]]
repository = "public/secret"
pull = ["alice", "bob"]
push = ["alice"]

[[auth.rules]]
repository = "private/*"
pull = ["alice", "bob"]
push = ["alice"]
TOML
    local u
    for u in alice bob; do
        echo "pw-$u" | "${CARGOHOLD_BIN:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/cargohold}" \
            user add "$u" >/dev/null
    done
}

# push_as_alice HOSTPORT: the layout $WORK/img:v1 pushed with alice's credentials to each
# repository auth_setup's rules tell apart: public/app, private/app, public/secret.
push_as_alice() {
    local repo
    for repo in public/app private/app public/secret; do
        "${SK[@]}" copy --preserve-digests --dest-tls-verify=false --dest-creds alice:pw-alice \
            "oci:$WORK/img:v1" "docker://$1/$repo:v1"
    done
}

# oras_ready: whether ORAS_PYTHON imports the SDK; if not, a `not ok` line says so.
oras_ready() {
    "$ORAS_PYTHON" -c 'import oras' 2>/dev/null && return 0
    echo "not ok - $SCENARIO: python with the oras SDK at $ORAS_PYTHON (run .ci/setup)"
    FAILED=$((FAILED + 1))
    return 1
}

# client_init NAME: creates the scenario's scratch dir and the EXIT trap.
client_init() {
    SCENARIO="$1"
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/cargohold-clients-$SCENARIO.XXXXXX")"
    STEP_LOG="$WORK/step.log"
    SERVER_LOG="$WORK/server.log"
    trap client_cleanup EXIT
}

client_cleanup() {
    local rc=$? pid
    for pid in "${EXTRA_PIDS[@]}"; do
        stop_pid "$pid"
    done
    stop_registry
    if [[ "$FAILED" -gt 0 || "$rc" -ne 0 ]] && [[ -s "$SERVER_LOG" ]]; then
        echo "# $SCENARIO: last lines of the registry's log:" >&2
        tail -n 20 "$SERVER_LOG" | sed 's/^/#   server: /' >&2
    fi
    if [[ -n "${KEEP_TMP:-}" ]]; then
        echo "# $SCENARIO: scratch dir kept at $WORK" >&2
    else
        [[ "$FAILED" -eq 0 && "$rc" -eq 0 ]] ||
            echo "# $SCENARIO: KEEP_TMP=1 keeps the scratch dir for a look" >&2
        rm -rf "$WORK"
    fi
    exit "$rc"
}

# start_registry: sets PORT, HOST (127.0.0.1:PORT) and REG_PID.
start_registry() {
    local -a cmd
    read -r -a cmd <<<"$REGISTRY_CMD"
    if [[ ! -x "${cmd[0]}" ]]; then
        echo "not ok - $SCENARIO: registry binary ${cmd[0]} is missing (cargo build --bin cargohold)"
        FAILED=$((FAILED + 1))
        return 1
    fi
    local attempt rc
    for attempt in 1 2 3; do
        PORT="$(free_port)"
        HOST="127.0.0.1:$PORT"
        rm -rf "$WORK/registry-root"
        mkdir -p "$WORK/registry-root"
        "${cmd[@]}" serve --listen "$HOST" --root "$WORK/registry-root" >>"$SERVER_LOG" 2>&1 &
        REG_PID=$!
        # Up to 30 s for the first answer on /v2/ (200, or 401 if auth is on).
        rc=0
        wait_http "http://$HOST/v2/" "$REG_PID" 30 '200|401' || rc=$?
        if [[ $rc -eq 0 ]]; then
            echo "# $SCENARIO: registry pid $REG_PID on $HOST ($attempt)" >&2
            return 0
        fi
        if [[ $rc -eq 2 ]]; then
            # Alive but silent for 30 s: retrying would not help.
            echo "# $SCENARIO: registry on $HOST did not answer GET /v2/ in 30 s" >&2
            stop_registry
            break
        fi
        # Exited early: maybe someone took the port meanwhile; try another.
        echo "# $SCENARIO: registry exited before answering (attempt $attempt)" >&2
        stop_registry
    done
    tail -n 30 "$SERVER_LOG" | sed 's/^/#   server: /' >&2
    echo "not ok - $SCENARIO: registry starts and answers GET /v2/"
    FAILED=$((FAILED + 1))
    return 1
}

# start_containerd: a containerd daemon of this scenario's own (root, state and socket
# under $WORK/containerd; no CRI plugin), for `ctr`; CTR is the command line that talks to
# it. Stopped on exit, by PID.
start_containerd() {
    local dir="$WORK/containerd"
    mkdir -p "$dir"
    cat >"$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd-ttrpc.sock"
TOML
    containerd --config "$dir/config.toml" >>"$dir/containerd.log" 2>&1 &
    local pid=$!
    EXTRA_PIDS+=("$pid")
    CTR=(ctr --address "$dir/containerd.sock" --namespace cargohold-test)
    wait_until "$pid" 30 "${CTR[@]}" version >/dev/null 2>&1 || {
        tail -n 20 "$dir/containerd.log"
        return 1
    }
}

# Stop only the server this script started, by its PID.
stop_registry() {
    stop_pid "$REG_PID"
    REG_PID=""
}

# check NAME CMD...: runs CMD in a subshell with errexit on (so a check
# function is a plain list of commands that stops at the first failure),
# prints ok/not ok, and on failure the tail of its output as # comments.
check() {
    local name="$1" rc
    shift
    : >"$STEP_LOG"
    set +e
    (
        set -euo pipefail
        "$@"
    ) >"$STEP_LOG" 2>&1
    rc=$?
    set -e
    if [[ $rc -eq 0 ]]; then
        echo "ok - $name"
        PASSED=$((PASSED + 1))
    else
        echo "not ok - $name"
        FAILED=$((FAILED + 1))
        tail -n 25 "$STEP_LOG" | sed 's/^/#   /'
        if [[ -n "$REG_PID" ]] && ! kill -0 "$REG_PID" 2>/dev/null; then
            echo "#   (registry process $REG_PID has died; log tail follows)"
            tail -n 20 "$SERVER_LOG" | sed 's/^/#   server: /'
        fi
    fi
    return 0
}

# index_consistent: what the clients pushed, tagged and deleted left an index that
# `cargohold index check` finds nothing in (cargohold on the filesystem only).
index_consistent() {
    [[ -z ${INDEX_CHECKED:-} ]] || return 0
    INDEX_CHECKED=1
    local -a cmd
    read -r -a cmd <<<"$REGISTRY_CMD"
    [[ ${cmd[0]##*/} == cargohold && -d "$WORK/registry-root" ]] || return 0
    check "$SCENARIO: cargohold index check finds nothing" \
        "${cmd[0]}" index check --root "$WORK/registry-root"
}

# finish: the scenario's exit status (run.sh counts the lines itself).
finish() {
    index_consistent
    echo "# $SCENARIO: $PASSED passed, $FAILED failed" >&2
    [[ "$FAILED" -eq 0 ]]
}

# Assertion helpers for use inside check functions (output goes to the log).
assert_eq() { # assert_eq WHAT EXPECTED ACTUAL
    if [[ "$2" != "$3" ]]; then
        echo "$1: expected '$2', got '$3'"
        return 1
    fi
}

# refused CMD...: CMD must fail. (A bare `! CMD` in a check function would not stop it:
# errexit ignores a negated command.)
refused() {
    if "$@"; then
        echo "succeeded, but should have been refused: $*"
        return 1
    fi
}

sha256_of() { # "sha256:<hex>" of a file
    echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"
}

# ---------------------------------------------------------------------------
# OCI image layouts, built offline from tar, gzip, jq and sha256sum.
# Everything is deterministic apart from the random layer, so a digest that
# changes on the way through the registry is a real finding.

layout_init() { # layout_init DIR
    mkdir -p "$1/blobs/sha256"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$1/oci-layout"
    printf '{"schemaVersion":2,"mediaType":"%s","manifests":[]}' "$OCI_INDEX" >"$1/index.json"
}

# layout_put_blob DIR FILE -> prints a descriptor body {"digest","size"}
layout_put_blob() {
    local dir="$1" file="$2" digest size
    digest="$(sha256_of "$file")"
    size="$(stat -c %s "$file")"
    cp "$file" "$dir/blobs/sha256/${digest#sha256:}"
    jq -cn --arg d "$digest" --argjson s "$size" '{digest: $d, size: $s}'
}

# layout_add_ref DIR DESCRIPTOR_JSON TAG: lists a blob in index.json under TAG.
layout_add_ref() {
    local dir="$1" desc="$2" tag="$3" tmp
    tmp="$(mktemp)"
    jq -c --argjson d "$desc" --arg t "$tag" \
        '.manifests += [$d + {annotations: {"org.opencontainers.image.ref.name": $t}}]' \
        "$dir/index.json" >"$tmp"
    mv "$tmp" "$dir/index.json"
}

# make_layer DIR SRC_DIR -> prints {"layer": descriptor, "diff_id": "sha256:.."}
make_layer() {
    local dir="$1" src="$2" tarball desc diff
    tarball="$(mktemp)"
    # Fixed order, owner and mtime: the same input gives the same digest.
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
        -C "$src" -cf "$tarball" .
    diff="$(sha256_of "$tarball")"
    gzip -n -6 -c "$tarball" >"$tarball.gz"
    desc="$(layout_put_blob "$dir" "$tarball.gz")"
    rm -f "$tarball" "$tarball.gz"
    jq -cn --argjson d "$desc" --arg mt "$OCI_LAYER_GZIP" --arg diff "$diff" \
        '{layer: ({mediaType: $mt} + $d), diff_id: $diff}'
}

# make_image DIR ARCH [RANDOM_KIB] -> prints the manifest's descriptor
# (mediaType, digest, size). Two layers: a small base and an app layer that
# carries RANDOM_KIB of incompressible data (default 64).
make_image() {
    local dir="$1" arch="$2" kib="${3:-64}" src l1 l2 cfgdesc mandesc
    src="$(mktemp -d)"
    mkdir -p "$src/base/etc" "$src/app/app"
    printf 'cargohold test image\n' >"$src/base/etc/issue"
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$src/base/etc/passwd"
    printf 'hello from %s\n' "$arch" >"$src/app/app/hello.txt"
    head -c "$((kib * 1024))" /dev/urandom >"$src/app/app/random.bin"
    l1="$(make_layer "$dir" "$src/base")"
    l2="$(make_layer "$dir" "$src/app")"
    jq -cn --arg arch "$arch" --argjson l1 "$l1" --argjson l2 "$l2" '{
        created: "1970-01-01T00:00:00Z",
        architecture: $arch, os: "linux",
        config: {Cmd: ["/app/hello.txt"], Env: ["PATH=/usr/bin:/bin"]},
        rootfs: {type: "layers", diff_ids: [$l1.diff_id, $l2.diff_id]},
        history: [{created: "1970-01-01T00:00:00Z", created_by: "cargohold test base"},
                  {created: "1970-01-01T00:00:00Z", created_by: "cargohold test app"}]
    }' >"$src/config.json"
    cfgdesc="$(layout_put_blob "$dir" "$src/config.json")"
    jq -cn --arg mt "$OCI_MANIFEST" --arg cmt "$OCI_CONFIG" --argjson c "$cfgdesc" \
        --argjson l1 "$l1" --argjson l2 "$l2" '{
        schemaVersion: 2, mediaType: $mt,
        config: ({mediaType: $cmt} + $c),
        layers: [$l1.layer, $l2.layer],
        annotations: {"org.opencontainers.image.title": "cargohold-test"}
    }' >"$src/manifest.json"
    mandesc="$(layout_put_blob "$dir" "$src/manifest.json")"
    rm -rf "$src"
    jq -cn --arg mt "$OCI_MANIFEST" --argjson m "$mandesc" '{mediaType: $mt} + $m'
}

# make_image_layout DIR TAG [ARCH] [RANDOM_KIB]: a one-image layout.
make_image_layout() {
    local desc
    layout_init "$1"
    desc="$(make_image "$1" "${3:-amd64}" "${4:-64}")"
    layout_add_ref "$1" "$desc" "$2"
}

# make_index_layout DIR TAG: an image index for linux/amd64 + linux/arm64.
make_index_layout() {
    local dir="$1" tag="$2" amd arm tmp desc
    layout_init "$dir"
    amd="$(make_image "$dir" amd64 32)"
    arm="$(make_image "$dir" arm64 32)"
    tmp="$(mktemp)"
    jq -cn --arg mt "$OCI_INDEX" --argjson a "$amd" --argjson b "$arm" '{
        schemaVersion: 2, mediaType: $mt,
        manifests: [
            ($a + {platform: {architecture: "amd64", os: "linux"}}),
            ($b + {platform: {architecture: "arm64", os: "linux"}})
        ]
    }' >"$tmp"
    desc="$(layout_put_blob "$dir" "$tmp")"
    rm -f "$tmp"
    layout_add_ref "$dir" "$(jq -c --arg mt "$OCI_INDEX" '{mediaType: $mt} + .' <<<"$desc")" "$tag"
}

# push_referrer HOST REPO SUBJECT_DIGEST SUBJECT_SIZE SUBJECT_MEDIA_TYPE [ARTIFACT_TYPE]:
# pushes, by digest and with curl, a signature-like artifact (empty config and layer) whose
# subject is the given manifest; prints its digest.
push_referrer() {
    local host="$1" repo="$2" type="${6:-application/vnd.example.sig}" dir cfg sig
    dir="$(mktemp -d)"
    printf '{}' >"$dir/empty.json"
    cfg="$(sha256_of "$dir/empty.json")"
    curl -sf -X POST --data-binary @"$dir/empty.json" \
        "http://$host/v2/$repo/blobs/uploads/?digest=$cfg" >/dev/null
    jq -cn --arg mt "$OCI_MANIFEST" --arg cfg "$cfg" --arg subject "$3" --arg smt "$5" \
        --argjson ssize "$4" --arg type "$type" '{
        schemaVersion: 2, mediaType: $mt, artifactType: $type,
        config: {mediaType: "application/vnd.oci.empty.v1+json", digest: $cfg, size: 2},
        layers: [{mediaType: "application/vnd.oci.empty.v1+json", digest: $cfg, size: 2}],
        subject: {mediaType: $smt, digest: $subject, size: $ssize}}' >"$dir/sig.json"
    sig="$(sha256_of "$dir/sig.json")"
    curl -sf -X PUT -H "Content-Type: $OCI_MANIFEST" --data-binary @"$dir/sig.json" \
        "http://$host/v2/$repo/manifests/$sig" >/dev/null
    rm -rf "$dir"
    echo "$sig"
}

# layout_ref_digest DIR TAG: the digest index.json lists under TAG.
layout_ref_digest() {
    jq -er --arg t "$2" \
        '[.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t)][0].digest' \
        "$1/index.json"
}

# layout_blob DIR DIGEST: path of a blob in a layout.
layout_blob() {
    echo "$1/blobs/sha256/${2#sha256:}"
}

# ---------------------------------------------------------------------------
# What a client pulled, checked the same way here, in tests/static/ and in
# tests/cloudflare/: skopeo as ${SK[@]}, registries without TLS (or self-signed).

SK=(skopeo --command-timeout 120s)

# Layer digests of a manifest file, one line, space separated.
layer_digests() { jq -r '[.layers[].digest] | join(" ")' "$1"; }

# layout_intact DIR: every blob file of an OCI layout hashes to its name.
layout_intact() {
    local f
    for f in "$1"/blobs/sha256/*; do
        assert_eq "blob $(basename "$f")" "sha256:$(basename "$f")" "$(sha256_of "$f")"
    done
}

# inspect_matches REF DIGEST MANIFEST [ARCH]: `skopeo inspect docker://REF` reports
# DIGEST, the layers of the manifest file MANIFEST, and ARCH (default amd64).
inspect_matches() {
    local out
    out="$("${SK[@]}" inspect --tls-verify=false "docker://$1")"
    echo "$out"
    assert_eq digest "$2" "$(jq -r .Digest <<<"$out")"
    assert_eq layers "$(layer_digests "$3")" "$(jq -r '.Layers | join(" ")' <<<"$out")"
    assert_eq architecture "${4:-amd64}" "$(jq -r .Architecture <<<"$out")"
}

# pull_image_matches REF DIGEST MANIFEST DEST: `skopeo copy docker://REF` into the OCI
# layout DEST (under REF's tag) keeps DIGEST and MANIFEST's layers, every blob intact.
pull_image_matches() {
    local tag="${1##*:}" got
    "${SK[@]}" copy --preserve-digests --src-tls-verify=false "docker://$1" "oci:$4:$tag"
    got="$(layout_ref_digest "$4" "$tag")"
    assert_eq "pulled manifest digest" "$2" "$got"
    assert_eq "pulled layers" "$(layer_digests "$3")" "$(layer_digests "$(layout_blob "$4" "$got")")"
    layout_intact "$4"
}

# pull_index_matches REF SRC DEST: `skopeo copy --all docker://REF` into the OCI layout
# DEST gives the index SRC (a layout) has under REF's tag, byte for byte: the index, each
# platform's manifest, config and layers, and no other blob.
pull_index_matches() {
    local tag="${1##*:}" idx child d
    idx="$(layout_ref_digest "$2" "$tag")"
    "${SK[@]}" copy --all --preserve-digests --src-tls-verify=false "docker://$1" "oci:$3:$tag"
    assert_eq "index digest" "$idx" "$(layout_ref_digest "$3" "$tag")"
    for child in $(jq -r '.manifests[].digest' "$(layout_blob "$2" "$idx")"); do
        for d in "$child" $(jq -r '.config.digest, .layers[].digest' "$(layout_blob "$2" "$child")"); do
            cmp "$(layout_blob "$2" "$d")" "$(layout_blob "$3" "$d")"
        done
    done
    layout_intact "$3"
    assert_eq "blob count" "$(find "$2/blobs/sha256" -type f | wc -l)" "$(find "$3/blobs/sha256" -type f | wc -l)"
}
