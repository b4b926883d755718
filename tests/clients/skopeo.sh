#!/usr/bin/env bash
# skopeo against a fresh registry: push, inspect, list-tags, pull back,
# cross-repo copy, nested repository names, a two-platform index, delete.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

client_init skopeo
make_image_layout "$WORK/img" v1 amd64 1024 # 1 MiB random layer: more than one read buffer
make_index_layout "$WORK/multi" v1
start_registry || exit 1

SRC_DIGEST="$(layout_ref_digest "$WORK/img" v1)"
SRC_MANIFEST="$(layout_blob "$WORK/img" "$SRC_DIGEST")"
IDX_DIGEST="$(layout_ref_digest "$WORK/multi" v1)"
IDX_BLOB="$(layout_blob "$WORK/multi" "$IDX_DIGEST")"

push_image() {
    "${SK[@]}" copy --preserve-digests --dest-tls-verify=false \
        "oci:$WORK/img:v1" "docker://$HOST/test/app:v1"
}

inspect_image() {
    inspect_matches "$HOST/test/app:v1" "$SRC_DIGEST" "$SRC_MANIFEST"
}

# The registry must hand back the manifest byte for byte.
inspect_raw_bytes() {
    "${SK[@]}" inspect --raw --tls-verify=false "docker://$HOST/test/app:v1" >"$WORK/raw.json"
    assert_eq "raw manifest digest" "$SRC_DIGEST" "$(sha256_of "$WORK/raw.json")"
}

inspect_config_bytes() {
    local cfg
    cfg="$(jq -r .config.digest "$SRC_MANIFEST")"
    "${SK[@]}" inspect --config --raw --tls-verify=false "docker://$HOST/test/app:v1" >"$WORK/config.json"
    assert_eq "config digest" "$cfg" "$(sha256_of "$WORK/config.json")"
}

# A second tag on the same manifest, then list-tags must show both.
tag_and_list() {
    "${SK[@]}" copy --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
        "docker://$HOST/test/app:v1" "docker://$HOST/test/app:v2"
    local out
    out="$("${SK[@]}" list-tags --tls-verify=false "docker://$HOST/test/app")"
    echo "$out"
    assert_eq repository "$HOST/test/app" "$(jq -r .Repository <<<"$out")"
    assert_eq tags "v1 v2" "$(jq -r '.Tags | sort | join(" ")' <<<"$out")"
}

# Pull into a new layout: same manifest digest, same layers, every blob intact.
pull_back() {
    pull_image_matches "$HOST/test/app:v1" "$SRC_DIGEST" "$SRC_MANIFEST" "$WORK/back"
}

# Registry-to-registry copy into another repository (skopeo tries a blob mount).
cross_repo_copy() {
    "${SK[@]}" copy --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
        "docker://$HOST/test/app:v1" "docker://$HOST/test/mounted:v1"
    assert_eq digest "$SRC_DIGEST" \
        "$("${SK[@]}" inspect --tls-verify=false "docker://$HOST/test/mounted:v1" | jq -r .Digest)"
}

nested_repo() {
    "${SK[@]}" copy --preserve-digests --dest-tls-verify=false \
        "oci:$WORK/img:v1" "docker://$HOST/a/b/c:v1"
    assert_eq digest "$SRC_DIGEST" \
        "$("${SK[@]}" inspect --tls-verify=false "docker://$HOST/a/b/c:v1" | jq -r .Digest)"
    assert_eq tags v1 \
        "$("${SK[@]}" list-tags --tls-verify=false "docker://$HOST/a/b/c" | jq -r '.Tags | join(" ")')"
    "${SK[@]}" copy --src-tls-verify=false "docker://$HOST/a/b/c:v1" "oci:$WORK/abc:v1"
    assert_eq "pulled digest" "$SRC_DIGEST" "$(layout_ref_digest "$WORK/abc" v1)"
}

push_index() {
    "${SK[@]}" copy --all --preserve-digests --dest-tls-verify=false \
        "oci:$WORK/multi:v1" "docker://$HOST/test/multi:v1"
}

index_raw() {
    "${SK[@]}" inspect --raw --tls-verify=false "docker://$HOST/test/multi:v1" >"$WORK/index-raw.json"
    cat "$WORK/index-raw.json"
    echo
    assert_eq "index digest" "$IDX_DIGEST" "$(sha256_of "$WORK/index-raw.json")"
    assert_eq mediaType "$OCI_INDEX" "$(jq -r .mediaType "$WORK/index-raw.json")"
    assert_eq platforms "linux/amd64 linux/arm64" \
        "$(jq -r '[.manifests[].platform | .os + "/" + .architecture] | sort | join(" ")' "$WORK/index-raw.json")"
}

# Each platform resolves through the index and pulls by its own digest.
platform_pull() {
    local arch="$1" child out
    child="$(jq -r --arg a "$arch" '.manifests[] | select(.platform.architecture == $a) | .digest' "$IDX_BLOB")"
    out="$("${SK[@]}" --override-arch "$arch" --override-os linux inspect --tls-verify=false \
        "docker://$HOST/test/multi:v1")"
    # skopeo reports the index's digest, and the chosen instance's details.
    assert_eq "digest" "$IDX_DIGEST" "$(jq -r .Digest <<<"$out")"
    assert_eq "$arch architecture" "$arch" "$(jq -r .Architecture <<<"$out")"
    assert_eq "$arch layers via index" "$(layer_digests "$(layout_blob "$WORK/multi" "$child")")" \
        "$(jq -r '.Layers | join(" ")' <<<"$out")"
    "${SK[@]}" copy --preserve-digests --src-tls-verify=false \
        "docker://$HOST/test/multi@$child" "oci:$WORK/pulled-$arch:x"
    assert_eq "$arch pulled digest" "$child" "$(layout_ref_digest "$WORK/pulled-$arch" x)"
    assert_eq "$arch hello layer" "hello from $arch" \
        "$(tar -xzOf "$(layout_blob "$WORK/pulled-$arch" \
            "$(jq -r '.layers[1].digest' "$(layout_blob "$WORK/pulled-$arch" "$child")")")" ./app/hello.txt)"
}

manifest_status() { # manifest_status REPO REF -> HTTP status of GET manifest
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
        -H "Accept: $OCI_MANIFEST, $OCI_INDEX" "http://$HOST/v2/$1/manifests/$2"
}

# skopeo delete by tag deletes the manifest that tag points at.
delete_by_tag() {
    "${SK[@]}" delete --tls-verify=false "docker://$HOST/test/app:v1"
    if "${SK[@]}" inspect --tls-verify=false "docker://$HOST/test/app:v1"; then
        echo "inspect of deleted tag succeeded"
        return 1
    fi
    assert_eq "GET deleted manifest by digest" 404 "$(manifest_status test/app "$SRC_DIGEST")"
    assert_eq "GET deleted manifest by tag" 404 "$(manifest_status test/app v1)"
}

delete_by_digest() {
    "${SK[@]}" delete --tls-verify=false "docker://$HOST/a/b/c@$SRC_DIGEST"
    if "${SK[@]}" inspect --tls-verify=false "docker://$HOST/a/b/c@$SRC_DIGEST"; then
        echo "inspect of deleted digest succeeded"
        return 1
    fi
    assert_eq "GET deleted manifest" 404 "$(manifest_status a/b/c "$SRC_DIGEST")"
}

# Deleting in one repository must not break the same content elsewhere.
other_repo_intact() {
    "${SK[@]}" copy --src-tls-verify=false "docker://$HOST/test/mounted:v1" "oci:$WORK/after-delete:v1"
    assert_eq digest "$SRC_DIGEST" "$(layout_ref_digest "$WORK/after-delete" v1)"
}

check "skopeo copy oci layout -> test/app:v1" push_image
check "skopeo inspect: digest, layers, architecture" inspect_image
check "skopeo inspect --raw: manifest bytes unchanged" inspect_raw_bytes
check "skopeo inspect --config: config bytes unchanged" inspect_config_bytes
check "skopeo copy to tag v2 + list-tags" tag_and_list
check "skopeo copy back to oci layout: digests match" pull_back
check "skopeo copy registry -> other repository" cross_repo_copy
check "skopeo push/inspect/list-tags/pull repo a/b/c" nested_repo
check "skopeo copy --all two-platform index" push_index
check "skopeo inspect --raw index: digest and both platforms" index_raw
check "index platform linux/amd64 inspect + pull by digest" platform_pull amd64
check "index platform linux/arm64 inspect + pull by digest" platform_pull arm64
check "skopeo delete by tag, inspect then fails" delete_by_tag
check "skopeo delete by digest in a/b/c, inspect then fails" delete_by_digest
check "other repository still pullable after deletes" other_repo_intact
finish
