# shellcheck shell=bash
# tests/cloudflare/run.sh, part 6: the worker with auth on (docs/auth.md). Sourced by
# run.sh after its open scenario (its helpers, WORK, the image layouts). A fresh cargohold
# with auth_setup's rules (tests/clients/lib.sh: public/* anyone; private/* and
# public/secret, an exact rule inside public/*, alice and bob) is pushed to directly; worker W3 serves a copy of its store, config.json
# (the public key and the patterns) included. Every W3 check runs with the API stopped:
# the worker verifies tokens itself (WebCrypto) and reads private repositories from R2.

AUTH_DIR="$WORK/auth"
auth_setup

# sign_token KEY_PEM CLAIMS_JSON: an EdDSA JWT signed with KEY_PEM (kid $KID), as
# cargohold signs them; node reads cargohold's key file as it is (PKCS#8 v1).
sign_token() {
    # shellcheck disable=SC2016 # JavaScript, not the shell's
    node -e '
const { createPrivateKey, sign } = require("node:crypto");
const [pem, claims, kid] = process.argv.slice(1);
const b = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const input = `${b({ alg: "EdDSA", typ: "JWT", kid })}.${b(JSON.parse(claims))}`;
const key = createPrivateKey(require("node:fs").readFileSync(pem, "utf8"));
console.log(`${input}.${sign(null, Buffer.from(input), key).toString("base64url")}`);' "$1" "$2" "$KID"
}
# claims SECONDS_LEFT [AUD]: bob's claims, pull on private/app, expiring in SECONDS_LEFT.
claims() {
    jq -cn --argjson now "$(date +%s)" --argjson left "$1" --arg aud "${2:-cargohold}" '{
        iss: "cargohold", sub: "bob", aud: $aud, exp: ($now + $left), nbf: ($now - 1),
        iat: $now, jti: "t", access: [{type: "repository", name: "private/app", actions: ["pull"]}]}'
}
b64url() { base64 -w0 | tr '+/' '-_' | tr -d =; }

auth_pushes() {
    push_as_alice "$HOST"
    curl -sf -u bob:pw-bob "http://$HOST/token?service=cargohold&scope=repository:private/app:pull" |
        jq -r .token >"$WORK/bob-token"
    jq -e '.auth.keys[0].crv == "Ed25519" and .auth.private == ["public/secret", "private/*"]' \
        "$WORK/registry-root/config.json"
}

w3_base() {
    expect_error 401 UNAUTHORIZED "$W3_URL/v2/"
    assert_eq WWW-Authenticate "Bearer realm=\"$W3_URL/token\",service=\"cargohold\"" "$(hdr WWW-Authenticate)"
    expect 200 -H "Authorization: Bearer $TOKEN" "$W3_URL/v2/"
}

w3_public() {
    pull_image_matches "$W3H/public/app:v1" "$SRC_DIGEST" "$SRC_MANIFEST" "$WORK/w3-public"
    expect 200 -H "Authorization: Bearer forged" "$W3_URL/v2/public/app/manifests/v1"
    assert_eq Cache-Control "public, max-age=0, must-revalidate" "$(hdr Cache-Control)"
    expect 200 "$W3_URL/token?service=cargohold"
    assert_eq token anonymous "$(jq -r .token "$WORK/b")"
}

w3_private_anonymous() {
    local repo p
    for repo in private/app public/secret; do
        for p in manifests/v1 "blobs/$BIG_LAYER" tags/list "referrers/$SRC_DIGEST"; do
            expect_error 401 UNAUTHORIZED "$W3_URL/v2/$repo/$p"
            [[ "$(hdr WWW-Authenticate)" == *",scope=\"repository:$repo:pull\"" ]] ||
                { echo "challenge: $(hdr WWW-Authenticate)"; return 1; }
        done
    done
    ! "${SK[@]}" inspect --tls-verify=false "docker://$W3H/private/app:v1"
}

w3_private_token() {
    "${SK[@]}" copy --preserve-digests --src-tls-verify=false --src-registry-token "$TOKEN" \
        "docker://$W3H/private/app:v1" "oci:$WORK/w3-private:v1"
    assert_eq "pulled digest" "$SRC_DIGEST" "$(layout_ref_digest "$WORK/w3-private" v1)"
    layout_intact "$WORK/w3-private"
    expect 200 -H "Authorization: Bearer $TOKEN" "$W3_URL/v2/private/app/blobs/$BIG_LAYER"
    assert_eq "body digest" "$BIG_LAYER" "$(sha256_of "$WORK/b")"
    assert_eq Cache-Control "private, max-age=31536000, immutable" "$(hdr Cache-Control)"
    # bob may read public/secret, but this token does not say so: he must ask for another.
    expect_error 401 UNAUTHORIZED -H "Authorization: Bearer $TOKEN" "$W3_URL/v2/public/secret/manifests/v1"
    [[ "$(hdr WWW-Authenticate)" == *'error="insufficient_scope"' ]]
}

# Each differs from an accepted token by one thing.
w3_bad_tokens() {
    local what t key="$AUTH_DIR/signing-key.pem"
    while IFS='|' read -r what t; do
        echo "$what"
        expect_error 401 UNAUTHORIZED -H "Authorization: Bearer $t" "$W3_URL/v2/private/app/manifests/v1"
        [[ "$(hdr WWW-Authenticate)" == *'error="invalid_token"' ]]
    done <<TOKENS
signed with another key|$(sign_token "$WORK/forged.pem" "$(claims 300)")
expired|$(sign_token "$key" "$(claims -5)")
for another service|$(sign_token "$key" "$(claims 300 elsewhere)")
a refresh token|$(sign_token "$key" "$(claims 300 'cargohold#refresh')")
alg none|$(jq -cn '{alg: "none"}' | b64url).$(claims 300 | b64url).
the static hosts' placeholder|anonymous
TOKENS
    expect 200 -H "Authorization: Bearer $(sign_token "$key" "$(claims 300)")" \
        "$W3_URL/v2/private/app/manifests/v1"
}

# Browse documents: a public repository's from R2, anyone's; a private one's with a token
# for it; the catalog and search (which name private repositories) only from the API.
w3_browse() {
    local p page=_browse/tags/00000000.json
    expect 200 "$W3_URL/index/public/app/$page"
    jq -e '.entries[0].tag == "v1"' "$WORK/b"
    for p in private/app public/secret; do
        expect_error 401 UNAUTHORIZED "$W3_URL/index/$p/$page"
        [[ "$(hdr WWW-Authenticate)" == *",scope=\"repository:$p:pull\"" ]]
    done
    expect 200 -H "Authorization: Bearer $TOKEN" "$W3_URL/index/private/app/$page"
    jq -e '.entries[0].tag == "v1"' "$WORK/b"
    for p in catalog search; do
        expect_error 502 UNKNOWN "$W3_URL/index/_browse/$p/00000000.json"
        expect_error 502 UNKNOWN -H "Authorization: Bearer $TOKEN" "$W3_URL/index/_browse/$p/00000000.json"
    done
}

w3_api_only() {
    expect_error 502 UNKNOWN -H "Authorization: Bearer $TOKEN" "$W3_URL/v2/_catalog"
    expect_error 502 UNKNOWN -u bob:pw-bob "$W3_URL/token?service=cargohold"
    expect_error 502 UNKNOWN -u bob:pw-bob "$W3_URL/v2/private/app/manifests/v1"
}

W3_OK=""
if start_registry; then
    check "auth: cargohold with rules: pushes with credentials, bob's token, config.json" auth_pushes &&
        start_worker W3 "$WORK/registry-root" && W3_OK=1
fi
stop_registry
if [[ -n "$W3_OK" ]]; then
    W3H="$(host_of "$W3_URL")"
    KID="$(jq -r '.auth.keys[0].kid' "$WORK/registry-root/config.json")"
    TOKEN="$(cat "$WORK/bob-token")"
    node -e 'const { generateKeyPairSync } = require("node:crypto");
process.stdout.write(generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }));' \
        >"$WORK/forged.pem"
    check "W3 (auth, API down): GET /v2/ challenges; 200 with a token" w3_base
    check "W3: public/app pulled anonymously (skopeo, placeholder token); tokens not looked at" w3_public
    check "W3: private/app and public/secret denied anonymously: 401 with scope" w3_private_anonymous
    check "W3: private/app pulled with bob's token, verified and served by the worker" w3_private_token
    check "W3: forged, expired, other-service, refresh, alg none tokens refused (invalid_token)" w3_bad_tokens
    check "W3: catalog, logins and Basic credentials need the API (502 while it is down)" w3_api_only
    check "W3: browse documents: public/app's anyone's, private ones with a token, catalog and search the API's" w3_browse
fi
