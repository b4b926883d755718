# shellcheck shell=bash
# tests/static/nginx.sh, part 4: the same nginx with auth on (docs/auth.md). Sourced by
# nginx.sh once its open scenario is done (its helpers, WORK, NGX, the API and nginx).
# cargohold restarts with auth_setup's rules (tests/clients/lib.sh), `cargohold
# nginx-auth` writes the include again and nginx reloads; then:
#   - GET /v2/ answers the API's challenge from nginx; with a token, the API answers;
#   - oras (tests/clients/oras_auth.py) pushes and pulls through it as the rules say;
#   - public/* is served statically, no token checked, and with the API stopped too
#     (skopeo, podman and cargohold's client, which fetch an anonymous token first:
#     nginx's fallback);
#   - private/*, and public/secret (an exact rule inside public/*), only by the API:
#     401 with a challenge anonymously, pulled with a token, 503 with the API stopped;
#   - their browse documents too, and the catalog and search documents, which name them.

auth_setup
CH_BIN="${CARGOHOLD_BIN:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/cargohold}"

# The paths of a pull of test image REPO:v1 (manifest, config, layer), for curl.
image_paths() {
    echo "/v2/$1/manifests/v1" "/v2/$1/blobs/$IMG_CONFIG" "/v2/$1/blobs/$BIG_LAYER" "/v2/$1/tags/list" \
        "/v2/$1/referrers/$IMG_DIGEST"
}

# A token for USER's pull of REPO, from the token endpoint through nginx.
token_for() {
    curl -sf -u "$1:pw-$1" "http://$NGINX/token?service=cargohold&scope=repository:$2:pull" | jq -r .token
}

# shellcheck disable=SC2016 # nginx variables, not the shell's
auth_include() {
    cat "$NGX/cargohold-auth.conf"
    grep -q '^map $host $cargohold_auth { default 1; }' "$NGX/cargohold-auth.conf"
    # Most specific first: the exact name, then the longer prefix... as the API decides.
    assert_eq "map entries" '"public/secret" 1; "~^private/" 1; "~^public/" 0;' \
        "$(sed -n '/$cargohold_private {/,/^}/p' "$NGX/cargohold-auth.conf" | grep '^    "' | xargs -d '\n' echo | sed 's/  */ /g; s/^ //')"
}

auth_push() {
    push_as_alice "$NGINX"
    if "${SK[@]}" copy --retry-times 0 --dest-tls-verify=false "oci:$WORK/img:v1" "docker://$NGINX/public/anon:v1"; then
        echo "an anonymous push through nginx succeeded"
        return 1
    fi
}

# A copy within the registry through nginx mounts each blob with pull on the source
# (alice: POST answered 201, no byte sent); a robot that may push public/ci* but not read
# private/* gets no copy, and its own mount request opens a session instead (202).
auth_mount() {
    local secret layer token
    mark_logs
    "$CH_BIN" copy --quiet --no-direct --creds alice:pw-alice "$NGINX/private/app:v1" "$NGINX/public/mounted:v1"
    assert_eq "mounts (POST 201)" 3 \
        "$(to_api "$NGINX_MARK" | awk '$1 == "POST" && $7 == "/v2/public/mounted/blobs/uploads/" && $3 == 201' | wc -l)"
    secret="$("$CH_BIN" token create ngxmount --repo 'public/ci*' --access pull,push | awk '/^password: /{print $2}')"
    refused "$CH_BIN" copy --quiet --creds "robot\$ngxmount:$secret" "$NGINX/private/app:v1" "$NGINX/public/ci-copy:v1"
    layer="$(jq -r '.layers[1].digest' "$IMG_MANIFEST")"
    token="$(curl -sf -u "robot\$ngxmount:$secret" \
        "http://$NGINX/token?service=cargohold&scope=repository:public/ci-mount:pull,push&scope=repository:private/app:pull" |
        jq -r .token)"
    req POST "/v2/public/ci-mount/blobs/uploads/?mount=$layer&from=private/app" -H "Authorization: Bearer $token"
    expect 202
    "$CH_BIN" token revoke ngxmount
}

# tests/clients/oras_auth.py through nginx; its own ok/not ok lines go to the step log.
auth_oras() {
    oras_ready
    mkdir -p "$WORK/oras"
    "$ORAS_PYTHON" "$CLIENTS_DIR/oras_auth.py" "$NGINX" "$WORK/oras"
}

# nginx's challenge is the API's, byte for byte (the API asked with nginx's Host).
auth_base_challenge() {
    local api
    api="$(curl -s -o /dev/null -D - -H "Host: $NGINX" "http://127.0.0.1:$API_PORT/v2/" |
        tr -d '\r' | sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: //p')"
    [[ "$api" == 'Bearer realm="http://'"$NGINX"'/token",service="cargohold"' ]] || { echo "API: $api"; return 1; }
    mark_logs
    req GET /v2/
    expect_error 401 UNAUTHORIZED
    expect 401 WWW-Authenticate "$api"
    req HEAD /v2/
    expect 401 WWW-Authenticate "$api"
    assert_eq "/v2/ challenges nginx passed to the API" 0 "$(to_api "$NGINX_MARK" | wc -l)"
    # With a token (docker login checks /v2/ with it), the API answers.
    req GET /v2/ -H "Authorization: Bearer $(token_for bob private/app)"
    expect 200
    req GET /v2/ -H "Authorization: Bearer forged"
    expect_error 401 UNAUTHORIZED
}

auth_private_denied() {
    local repo p
    mark_logs
    for repo in private/app public/secret; do
        for p in $(image_paths "$repo"); do
            req GET "$p"
            expect_error 401 UNAUTHORIZED
            [[ "$(hdr WWW-Authenticate)" == *"scope=\"repository:$repo:pull\""* ]] ||
                { echo "challenge: $(hdr WWW-Authenticate)"; return 1; }
        done
    done
    # Every one of them answered by the API, none from the store.
    assert_eq "requests passed to the API" 10 "$(to_api "$NGINX_MARK" | wc -l)"
    if "${SK[@]}" inspect --tls-verify=false "docker://$NGINX/private/app:v1"; then
        echo "private/app inspected anonymously"
        return 1
    fi
}

auth_private_with_token() {
    local t
    mark_logs
    "${SK[@]}" copy --preserve-digests --src-tls-verify=false --src-creds bob:pw-bob \
        "docker://$NGINX/private/app:v1" "oci:$WORK/private-back:v1"
    assert_eq "pulled digest" "$IMG_DIGEST" "$(layout_ref_digest "$WORK/private-back" v1)"
    layout_intact "$WORK/private-back"
    # The pull's manifest and blobs went to the API, which checked the token.
    to_api "$NGINX_MARK" | awk '$2 ~ /^\/v2\/private\/app\/(manifests|blobs)\//' | grep -q .
    # cargohold's own client, the same way.
    "$CH_BIN" pull --quiet --creds bob:pw-bob "$NGINX/private/app:v1" "$WORK/ch-private"
    assert_eq "cargohold pull digest" "$IMG_DIGEST" "$(layout_ref_digest "$WORK/ch-private" v1)"
    t="$(token_for bob public/secret)"
    req GET /v2/public/secret/manifests/v1 -H "Authorization: Bearer $t"
    expect 200 Docker-Content-Digest "$IMG_DIGEST"
}

# With the API running, an anonymous pull of a public repository costs the API the token
# request only; a token, even a forged one, is not looked at.
auth_public_static() {
    mark_logs
    pull_image_matches "$NGINX/public/app:v1" "$IMG_DIGEST" "$IMG_MANIFEST" "$WORK/public-back"
    to_api "$NGINX_MARK"
    if to_api "$NGINX_MARK" | awk '$7 != "/token"' | grep .; then
        echo "requests other than /token reached the API"
        return 1
    fi
    req GET /v2/public/app/manifests/v1 -H "Authorization: Bearer forged"
    expect 200 Docker-Content-Digest "$IMG_DIGEST"
    req GET /v2/public/app/tags/list
    expect 200
    assert_eq tags '["v1"]' "$(jq -c .tags "$WORK/b")"
    # With auth on the catalog is for administrators: the API's answer.
    req GET /v2/_catalog
    expect_error 401 UNAUTHORIZED
}

# The browse documents: a public repository's from the store, anyone's; a private one's
# and the catalog and search (which name private repositories too) only from the API,
# which wants pull on the repository, or an administrator.
BROWSE_PRIVATE="/index/private/app/_browse/tags/00000000.json /index/public/secret/_browse/tags/00000000.json
    /index/_browse/catalog/00000000.json /index/_browse/search/00000000.json"
auth_browse() {
    local p
    mark_logs
    # curl, not req: documents are not registry API answers (no API version header).
    assert_eq status 200 "$(curl -s -o "$WORK/b" -w '%{http_code}' \
        "http://$NGINX/index/public/app/_browse/tags/00000000.json")"
    jq -e '.entries[0].tag == "v1"' "$WORK/b"
    assert_eq "public document requests passed to the API" 0 "$(to_api "$NGINX_MARK" | wc -l)"
    for p in $BROWSE_PRIVATE; do
        req GET "$p"
        expect_error 401 UNAUTHORIZED
    done
    assert_eq "private document requests passed to the API" 4 "$(to_api "$NGINX_MARK" | wc -l)"
    assert_eq status 200 "$(curl -s -o "$WORK/b" -w '%{http_code}' -H "Authorization: Bearer $(token_for bob private/app)" \
        "http://$NGINX/index/private/app/_browse/tags/00000000.json")"
    jq -e '.entries[0].tag == "v1"' "$WORK/b"
}

auth_api_down() {
    local p
    pull_image_matches "$NGINX/public/app:v1" "$IMG_DIGEST" "$IMG_MANIFEST" "$WORK/public-static"
    "${PM[@]}" pull --tls-verify=false "$NGINX/public/app:v1"
    "${PM[@]}" rmi -a -f
    "$CH_BIN" pull --quiet "$NGINX/public/app:v1" "$WORK/ch-public-static"
    assert_eq "cargohold pull digest" "$IMG_DIGEST" "$(layout_ref_digest "$WORK/ch-public-static" v1)"
    layout_intact "$WORK/ch-public-static"
    req GET /v2/
    expect_error 401 UNAUTHORIZED
    # The anonymous token nginx hands out itself; a login needs the API.
    req GET "/token?service=cargohold&scope=repository:public/app:pull"
    expect 200 Cache-Control no-store
    assert_eq token anonymous "$(jq -r .token "$WORK/b")"
    req GET "/token?service=cargohold" -u bob:pw-bob
    expect_error 503 TOOMANYREQUESTS
    req POST /token --data 'grant_type=password&username=bob&password=pw-bob&service=cargohold'
    expect_error 503 TOOMANYREQUESTS
    # Private repositories are never served from the store, token or not.
    for p in $(image_paths private/app) $(image_paths public/secret) /v2/_catalog $BROWSE_PRIVATE; do
        req GET "$p" -H "Authorization: Bearer anonymous"
        expect_error 503 TOOMANYREQUESTS
    done
}

stop_registry
if ! start_api >"$STEP_LOG" 2>&1 || ! reload_nginx 401 >>"$STEP_LOG" 2>&1; then
    echo "not ok - auth: cargohold restarted with rules, nginx reloaded with its include"
    sed 's/^/#   /' "$STEP_LOG"
    FAILED=$((FAILED + 1))
else
    echo "ok - auth: cargohold restarted with rules, nginx reloaded with its include"
    PASSED=$((PASSED + 1))
    check "auth: cargohold nginx-auth: auth on, the rules most specific first" auth_include
    check "auth: pushes with credentials through nginx; an anonymous one refused" auth_push
    check "auth: oras (Python SDK) through nginx: pushes, public and private pulls, refusals" auth_oras
    check "auth: cargohold copy through nginx mounts with pull on the source; without it, no mount" auth_mount
    check "auth: GET/HEAD /v2/ answer the API's challenge from nginx; with a token the API's 200" auth_base_challenge
    check "auth: private/* and public/secret denied anonymously (401, scope), by the API" auth_private_denied
    check "auth: private/app pulled with credentials (skopeo), through the API" auth_private_with_token
    check "auth: public/app pulled anonymously: only /token reaches the API; tokens not checked" auth_public_static
    check "auth: browse documents: public/app's from the store; private ones, catalog, search only by the API" auth_browse
    stop_registry
    check "auth: API stopped by PID; its port is closed" api_port_closed
    check "auth, API down: skopeo and podman pull public/app; /v2/ challenges; private: 503" auth_api_down
fi
