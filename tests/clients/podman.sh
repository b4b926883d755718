#!/usr/bin/env bash
# podman against a fresh registry: push (OCI and Docker v2s2 manifests),
# pull back by tag and by digest, compare image IDs; push a manifest list.
# podman runs daemonless with its own throw-away storage (vfs works as root
# everywhere, also inside containers where overlay-on-overlay does not).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

client_init podman
make_image_layout "$WORK/img" v1 amd64 256
start_registry || exit 1

PM=(podman --root "$WORK/storage" --runroot "$WORK/run"
    --storage-driver "${PODMAN_STORAGE_DRIVER:-vfs}" --events-backend none)
SRC_DIGEST="$(layout_ref_digest "$WORK/img" v1)"
# The image ID is the config digest, which no re-compression changes.
IMAGE_ID="$(jq -r .config.digest "$(layout_blob "$WORK/img" "$SRC_DIGEST")")"
IMAGE_ID="${IMAGE_ID#sha256:}"

# GET a manifest; prints its body and checks Docker-Content-Digest against
# the body's own sha256.
get_manifest() { # get_manifest REPO REF OUTFILE
    local hdr="$WORK/headers"
    curl -sf --max-time 10 -D "$hdr" -o "$3" \
        -H "Accept: $OCI_MANIFEST, $OCI_INDEX, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json" \
        "http://$HOST/v2/$1/manifests/$2"
    local dcd
    dcd="$(tr -d '\r' <"$hdr" | awk -F': ' 'tolower($1) == "docker-content-digest" {print $2}')"
    assert_eq "Docker-Content-Digest" "$(sha256_of "$3")" "$dcd"
}

load_local() {
    # A relative path: podman names the image after it, and mktemp's
    # upper-case letters are not valid in an image name.
    (cd "$WORK" && "${PM[@]}" pull oci:img:v1)
    assert_eq "image id" "$IMAGE_ID" "$("${PM[@]}" image inspect --format '{{.Id}}' "$IMAGE_ID")"
}

push_oci() {
    "${PM[@]}" push --tls-verify=false --digestfile "$WORK/digest-oci" \
        "$IMAGE_ID" "$HOST/test/podman:v1"
    get_manifest test/podman v1 "$WORK/pushed.json"
    assert_eq "pushed digest" "$(cat "$WORK/digest-oci")" "$(sha256_of "$WORK/pushed.json")"
    assert_eq "config digest" "sha256:$IMAGE_ID" "$(jq -r .config.digest "$WORK/pushed.json")"
    assert_eq "layer count" 2 "$(jq '.layers | length' "$WORK/pushed.json")"
}

# Docker schema 2 media types are still what many clients send.
push_v2s2() {
    "${PM[@]}" push --tls-verify=false --format v2s2 --digestfile "$WORK/digest-v2s2" \
        "$IMAGE_ID" "$HOST/test/podman:docker"
    get_manifest test/podman docker "$WORK/pushed-v2s2.json"
    assert_eq "pushed digest" "$(cat "$WORK/digest-v2s2")" "$(sha256_of "$WORK/pushed-v2s2.json")"
    assert_eq mediaType application/vnd.docker.distribution.manifest.v2+json \
        "$(jq -r .mediaType "$WORK/pushed-v2s2.json")"
}

remove_local() {
    "${PM[@]}" rmi -a -f
    if "${PM[@]}" image exists "$IMAGE_ID"; then
        echo "image still present"
        return 1
    fi
}

pull_tag() {
    local ref="$HOST/test/podman:$1" want="$2"
    "${PM[@]}" pull --tls-verify=false "$ref"
    assert_eq "image id" "$IMAGE_ID" "$("${PM[@]}" image inspect --format '{{.Id}}' "$ref")"
    # One image (same config) may carry several manifests' digests.
    local digests
    digests="$("${PM[@]}" image inspect --format '{{json .RepoDigests}}' "$ref")"
    echo "RepoDigests: $digests"
    jq -e --arg d "$HOST/test/podman@$want" 'any(.[]; . == $d)' <<<"$digests"
    assert_eq architecture amd64 "$("${PM[@]}" image inspect --format '{{.Architecture}}' "$ref")"
}

pull_digest() {
    local d
    d="$(cat "$WORK/digest-oci")"
    "${PM[@]}" rmi -a -f
    "${PM[@]}" pull --tls-verify=false "$HOST/test/podman@$d"
    assert_eq "image id" "$IMAGE_ID" "$("${PM[@]}" image inspect --format '{{.Id}}' "$HOST/test/podman@$d")"
}

manifest_list() {
    "${PM[@]}" manifest create cargohold-list
    "${PM[@]}" manifest add --tls-verify=false cargohold-list "docker://$HOST/test/podman:v1"
    "${PM[@]}" manifest push --tls-verify=false --all cargohold-list "docker://$HOST/test/podman:list"
    get_manifest test/podman list "$WORK/list.json"
    cat "$WORK/list.json"
    echo
    assert_eq "list entry" "$(cat "$WORK/digest-oci")" "$(jq -r '.manifests[0].digest' "$WORK/list.json")"
    "${PM[@]}" rmi -a -f
    "${PM[@]}" pull --tls-verify=false "$HOST/test/podman:list"
    assert_eq "image id via list" "$IMAGE_ID" \
        "$("${PM[@]}" image inspect --format '{{.Id}}' "$HOST/test/podman:list")"
}

check "podman pull oci layout into local storage" load_local
check "podman push (OCI manifest) test/podman:v1" push_oci
check "podman push --format v2s2 test/podman:docker" push_v2s2
check "podman rmi local images" remove_local
check "podman pull test/podman:v1: same image id and digest" pull_tag v1 "$(cat "$WORK/digest-oci" 2>/dev/null || true)"
check "podman pull test/podman:docker (v2s2): same image id" pull_tag docker "$(cat "$WORK/digest-v2s2" 2>/dev/null || true)"
check "podman pull by digest" pull_digest
check "podman manifest push --all + pull through the list" manifest_list
finish
