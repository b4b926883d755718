#!/usr/bin/env bash
# Real clients against an auth-enabled registry (docs/auth.md): skopeo --creds and
# podman login speak the token flow; anonymous pull of a public repository, a private
# one denied anonymously and served with credentials, a push denied without push rights,
# a robot token. The configuration reaches the server as CARGOHOLD_CONFIG, so the S3
# adapter (REGISTRY_CMD=tests/clients/cargohold-s3-serve.sh) runs it too.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

client_init auth
make_image_layout "$WORK/img" v1 amd64 256
BIN="${CARGOHOLD_BIN:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/cargohold}"
auth_setup "basic = true"
start_registry || exit 1
PM=(podman --root "$WORK/storage" --runroot "$WORK/run"
    --storage-driver "${PODMAN_STORAGE_DRIVER:-vfs}" --events-backend none)
export REGISTRY_AUTH_FILE="$WORK/podman-auth.json"
echo "{}" >"$REGISTRY_AUTH_FILE"

base_challenges() {
    local hdr
    hdr="$(curl -s -o /dev/null -D - "http://$HOST/v2/" | tr -d '\r')"
    grep -q '^HTTP/1.1 401' <<<"$hdr"
    grep -qi '^www-authenticate: Bearer realm="http://.*/token",service="cargohold"' <<<"$hdr"
}

push_private_with_creds() {
    "${SK[@]}" copy --dest-tls-verify=false --dest-creds alice:pw-alice \
        "oci:$WORK/img:v1" "docker://$HOST/private/app:v1"
}

anonymous_push_refused() {
    ! "${SK[@]}" copy --dest-tls-verify=false "oci:$WORK/img:v1" "docker://$HOST/public/anon:v1"
}

private_denied_anonymously() {
    ! "${SK[@]}" inspect --tls-verify=false "docker://$HOST/private/app:v1"
}

private_served_with_creds() {
    "${SK[@]}" inspect --tls-verify=false --creds bob:pw-bob "docker://$HOST/private/app:v1" >/dev/null
    "${SK[@]}" copy --src-tls-verify=false --src-creds bob:pw-bob \
        "docker://$HOST/private/app:v1" "oci:$WORK/back:v1"
}

push_denied_without_push_rights() {
    ! "${SK[@]}" copy --dest-tls-verify=false --dest-creds bob:pw-bob \
        "oci:$WORK/img:v1" "docker://$HOST/private/bob:v1"
}

podman_login_and_push() {
    (cd "$WORK" && "${PM[@]}" pull -q oci:img:v1 >"$WORK/image-id")
    ! echo wrong | "${PM[@]}" login --tls-verify=false -u alice --password-stdin "$HOST"
    # The failed login above slows the next one by a second: wait it out.
    sleep 1.2
    echo pw-alice | "${PM[@]}" login --tls-verify=false -u alice --password-stdin "$HOST"
    "${PM[@]}" push --tls-verify=false "$(cat "$WORK/image-id")" "$HOST/public/podman:v1"
    "${PM[@]}" logout "$HOST"
}

anonymous_pull_of_public() {
    "${SK[@]}" inspect --tls-verify=false "docker://$HOST/public/podman:v1" >/dev/null
    curl -sf "http://$HOST/v2/public/podman/tags/list" | jq -e '.tags == ["v1"]'
}

robot_token_pushes_where_allowed() {
    local out secret
    out="$("$BIN" token create ci --repo 'public/ci*' --access pull,push)"
    secret="$(awk '/^password: /{print $2}' <<<"$out")"
    "${SK[@]}" copy --dest-tls-verify=false --dest-creds "robot\$ci:$secret" \
        "oci:$WORK/img:v1" "docker://$HOST/public/ci:v1"
    ! "${SK[@]}" copy --dest-tls-verify=false --dest-creds "robot\$ci:$secret" \
        "oci:$WORK/img:v1" "docker://$HOST/private/ci:v1"
    "$BIN" token revoke ci
    ! "${SK[@]}" copy --dest-tls-verify=false --dest-creds "robot\$ci:$secret" \
        "oci:$WORK/img:v1" "docker://$HOST/public/ci:v2"
}

check "auth: /v2/ answers 401 with a Bearer challenge" base_challenges
check "auth: skopeo --dest-creds pushes to a private repository" push_private_with_creds
check "auth: an anonymous push is refused" anonymous_push_refused
check "auth: a private repository is denied anonymously" private_denied_anonymously
check "auth: a private repository is served with credentials" private_served_with_creds
check "auth: a push without push rights is refused" push_denied_without_push_rights
check "auth: podman login (wrong, then right password) and push" podman_login_and_push
check "auth: anonymous pull of a public repository" anonymous_pull_of_public
check "auth: a robot token pushes where allowed, and not once revoked" robot_token_pushes_where_allowed
finish
