#!/usr/bin/env bash
# `cargohold mirror sync` and the server's [[mirror.sync]] schedule (docs/mirror-sync.md),
# offline: the upstreams are a second `cargohold serve` with token auth (repositories
# private/*, read with alice's credentials from the mirror's config) and Debian's
# docker-registry. Tags are pushed by skopeo, plus a two-platform index with a referrer.
# Checks: the schedule's start-up run; exactly the tags the filters select (semver range,
# regex, newest N); every platform or the configured ones; referrers; skopeo pulls back the
# upstream's digests; a sync killed mid-blob leaves nothing visible and its re-run fetches
# only what is missing; a second run transfers nothing (the upstreams' access logs count
# the blob GETs); --dry-run; a moved tag and a new referrer are followed; `cargohold index
# check` finds nothing.
# BIG_KIB sets the random layer of the two large images (default 48 MiB).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../clients/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../clients/lib.sh"

BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/cargohold"
BIG_KIB="${BIG_KIB:-49152}"
client_init mirror-sync
UP_PIDS=()
stop_upstreams() {
    local pid
    for pid in "${UP_PIDS[@]}"; do stop_pid "$pid"; done
}
cleanup() {
    local rc=$?
    set +e
    stop_upstreams
    (exit "$rc") # client_cleanup reads the exit status from $?
    client_cleanup
}
trap cleanup EXIT

# up_start NAME CMD...: starts an upstream on a free port (CMD gets --listen and --root);
# sets UP_HOST; its log is $WORK/NAME.log.
up_start() {
    local name="$1" port pid
    shift
    port="$(free_port)"
    "$@" --listen "127.0.0.1:$port" --root "$WORK/$name-root" >"$WORK/$name.log" 2>&1 &
    pid=$!
    UP_PIDS+=("$pid")
    wait_http "http://127.0.0.1:$port/v2/" "$pid" 30 '200|401'
    UP_HOST="127.0.0.1:$port"
}

# blob_gets LOG REPO: how many blob GETs the upstream's access log has for REPO (both
# cargohold's `method=GET path="/v2/...` and distribution's `"GET /v2/..."` lines).
blob_gets() {
    sleep 1 # both write their logs in batches
    grep -cE "(method=GET path=\"|http.request.method=GET .*http.request.uri=\")/v2/$2/blobs/sha256:" "$1" || true
}

# sync ARGS...: `cargohold mirror sync` into the mirror's store; output in $WORK/sync.out.
sync() {
    "$BIN" mirror sync --root "$WORK/registry-root" "$@" | tee "$WORK/sync.out"
}

# --- the upstreams and their content -------------------------------------------------
CA=(--dest-tls-verify=false)
auth_setup "basic = true"
up_start up "$BIN" serve
UP="$UP_HOST"
unset CARGOHOLD_CONFIG
up_start dr "$CLIENTS_DIR/docker-registry-serve.sh" serve
DR="$UP_HOST"

layout_init "$WORK/web"
for t in v1.0.0 v1.1.0 v2.0.0 latest; do
    layout_add_ref "$WORK/web" "$(make_image "$WORK/web" amd64 16)" "$t"
    "${SK[@]}" copy -q --preserve-digests "${CA[@]}" --dest-creds alice:pw-alice \
        "oci:$WORK/web:$t" "docker://$UP/private/web:$t"
done
layout_init "$WORK/tool"
for t in 1.2 1.9 1.10 2.0; do
    layout_add_ref "$WORK/tool" "$(make_image "$WORK/tool" arm64 16)" "$t"
    "${SK[@]}" copy -q --preserve-digests "${CA[@]}" "oci:$WORK/tool:$t" "docker://$DR/lib/tool:$t"
done
layout_init "$WORK/big"
for t in b1 b2; do
    layout_add_ref "$WORK/big" "$(make_image "$WORK/big" amd64 "$BIG_KIB")" "$t"
    "${SK[@]}" copy -q --preserve-digests "${CA[@]}" --dest-creds alice:pw-alice \
        "oci:$WORK/big:$t" "docker://$UP/private/big:$t"
done
make_index_layout "$WORK/idx" m1
"${SK[@]}" copy -q --all --preserve-digests "${CA[@]}" --dest-creds alice:pw-alice \
    "oci:$WORK/idx:m1" "docker://$UP/private/multi:m1"
IDX="$(layout_ref_digest "$WORK/idx" m1)"
SIG="$(push_referrer "alice:pw-alice@$UP" private/multi "$IDX" \
    "$(stat -c %s "$(layout_blob "$WORK/idx" "$IDX")")" "$OCI_INDEX")"

# --- the mirror ------------------------------------------------------------------------
export CARGOHOLD_CONFIG="$WORK/mirror.toml"
cat >"$CARGOHOLD_CONFIG" <<TOML
[[mirror.upstream]]
name = "up"
url = "http://$UP"
username = "alice"
password = "pw-alice"

# The same registry again: its sync keeps one platform only.
[[mirror.upstream]]
name = "up2"
url = "http://$UP"
username = "alice"
password = "pw-alice"

[[mirror.upstream]]
name = "dr"
url = "http://$DR"

[[mirror.sync]]
upstream = "up"
repository = "private/web"
semver = ">=1.0, <2"

[[mirror.sync]]
upstream = "up"
repository = "private/multi"
tags = '^m'
referrers = true

[[mirror.sync]]
upstream = "up2"
repository = "private/multi"
platforms = ["linux/arm64"]

[[mirror.sync]]
upstream = "up"
repository = "private/big"

[[mirror.sync]]
upstream = "dr"
repository = "lib/tool"
tags = '^1\.'
newest = 2
every = "1h"
TOML
start_registry
MIRROR="$HOST"

tags_of() { curl -sf "http://$MIRROR/v2/$1/tags/list" | jq -c '.tags | sort'; }
tags_are() { [[ "$(tags_of "$1" 2>/dev/null)" == "$2" ]]; }

schedule_runs_at_start_up() {
    # lib/tool's newest two 1.x tags, by natural order: 1.9 and 1.10, not 1.2 or 2.0.
    wait_until "$REG_PID" 60 tags_are dr/lib/tool '["1.10","1.9"]' || {
        echo "tags: $(tags_of dr/lib/tool)"
        return 1
    }
    # Logged once the run is over (the log is written in batches).
    wait_until "$REG_PID" 10 grep -q 'mirror sync done.*2 tags (2 copied' "$SERVER_LOG"
}

filters_select_exactly() {
    sync --job up/private/web --job up/private/multi --job up2/private/multi
    grep -q '^synced: 3 jobs, 4 tags (4 copied, 0 unchanged, 0 failed)' "$WORK/sync.out"
    assert_eq "semver tags" '["v1.0.0","v1.1.0"]' "$(tags_of up/private/web)"
    assert_eq "regex tags" '["m1"]' "$(tags_of up/private/multi)"
}

every_platform_and_referrers() {
    # Byte for byte: the index (same digest as upstream), each platform, every blob.
    pull_index_matches "$MIRROR/up/private/multi:m1" "$WORK/idx" "$WORK/multi-out"
    curl -sf "http://$MIRROR/v2/up/private/multi/referrers/$IDX" |
        jq -e --arg s "$SIG" '[.manifests[].digest] == [$s]'
    curl -sf -o /dev/null -H "Accept: $OCI_MANIFEST" "http://$MIRROR/v2/up/private/multi/manifests/$SIG"
}

configured_platforms_only() {
    local kept
    kept="$(curl -sf -H "Accept: $OCI_INDEX" "http://$MIRROR/v2/up2/private/multi/manifests/m1")"
    assert_eq platforms linux/arm64 "$(jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | join(" ")' <<<"$kept")"
    assert_eq architecture arm64 "$("${SK[@]}" inspect --tls-verify=false --override-arch arm64 \
        "docker://$MIRROR/up2/private/multi:m1" | jq -r .Architecture)"
    # No referrers asked for here.
    curl -sf "http://$MIRROR/v2/up2/private/multi/referrers/$IDX" | jq -e '.manifests == []'
}

pulled_digests_equal_upstream() {
    local t d
    for t in v1.0.0 v1.1.0; do
        d="$(layout_ref_digest "$WORK/web" "$t")"
        pull_image_matches "$MIRROR/up/private/web:$t" "$d" "$(layout_blob "$WORK/web" "$d")" "$WORK/web-out"
    done
    d="$(layout_ref_digest "$WORK/tool" 1.10)"
    inspect_matches "$MIRROR/dr/lib/tool:1.10" "$d" "$(layout_blob "$WORK/tool" "$d")" arm64
}

killed_and_resumed() {
    local pid i
    # The binary itself in the background, so the kill reaches it.
    "$BIN" mirror sync --root "$WORK/registry-root" --job up/private/big --jobs 1 \
        >"$WORK/sync.out" 2>&1 &
    pid=$!
    # Killed once b1 is mirrored and a blob of b2 is on its way in (an upload session).
    for i in $(seq 1 3000); do
        if [[ -f "$WORK/registry-root/index/up/private/big/_manifests/b1" ]] &&
            [[ -n "$(ls -A "$WORK/registry-root/uploads" 2>/dev/null)" ]]; then
            break
        fi
        sleep 0.01
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "killed at step $i: $(cat "$WORK/sync.out")"
    grep -q 'b1 sha256:.* copied' "$WORK/sync.out"
    assert_eq "b2 lines before the kill" 0 "$(grep -c 'b2 sha256:' "$WORK/sync.out" || true)"
    # Nothing of b2 is visible: no tag, and the index is consistent.
    assert_eq "b2 before the re-run" 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://$MIRROR/v2/up/private/big/manifests/b2")"
    "$BIN" index check --root "$WORK/registry-root"
    local before after
    before="$(blob_gets "$WORK/up.log" private/big)"
    sync --job up/private/big
    grep -q 'b1 sha256:.* unchanged' "$WORK/sync.out"
    grep -q 'b2 sha256:.* copied' "$WORK/sync.out"
    after="$(blob_gets "$WORK/up.log" private/big)"
    # b2's three blobs at most (its base layer is b1's, so linked, not fetched).
    echo "upstream blob GETs: $before before the re-run, $after after"
    [[ $((after - before)) -le 3 ]]
    local d
    d="$(layout_ref_digest "$WORK/big" b2)"
    inspect_matches "$MIRROR/up/private/big:b2" "$d" "$(layout_blob "$WORK/big" "$d")"
}

second_run_transfers_nothing() {
    local up_before dr_before
    up_before="$(blob_gets "$WORK/up.log" 'private/[a-z]+')"
    dr_before="$(blob_gets "$WORK/dr.log" lib/tool)"
    echo "blob GETs so far: $up_before on the cargohold upstream, $dr_before on docker-registry"
    [[ $up_before -gt 0 && $dr_before -gt 0 ]] # the logs are read right
    sync --quiet
    grep -q '^synced: 5 jobs, 8 tags (0 copied, 8 unchanged, 0 failed), 0 manifests, 0 blobs linked, 0 blobs, 0 bytes transferred$' "$WORK/sync.out"
    assert_eq "upstream blob GETs" "$up_before" "$(blob_gets "$WORK/up.log" 'private/[a-z]+')"
    assert_eq "docker-registry blob GETs" "$dr_before" "$(blob_gets "$WORK/dr.log" lib/tool)"
}

dry_run_writes_nothing() {
    "${SK[@]}" copy -q --preserve-digests "${CA[@]}" --dest-creds alice:pw-alice \
        "oci:$WORK/web:v1.0.0" "docker://$UP/private/web:v1.5.0"
    sync --dry-run --job up/private/web
    grep -q 'v1.5.0 sha256:.* would be copied' "$WORK/sync.out"
    assert_eq "tags after a dry run" '["v1.0.0","v1.1.0"]' "$(tags_of up/private/web)"
}

follows_upstream_changes() {
    # v1.1.0 moved upstream (to v2.0.0's image), and m1 gained a second referrer.
    local moved sbom
    moved="$(layout_ref_digest "$WORK/web" v2.0.0)"
    "${SK[@]}" copy -q --preserve-digests "${CA[@]}" --dest-creds alice:pw-alice \
        "oci:$WORK/web:v2.0.0" "docker://$UP/private/web:v1.1.0"
    sbom="$(push_referrer "alice:pw-alice@$UP" private/multi "$IDX" \
        "$(stat -c %s "$(layout_blob "$WORK/idx" "$IDX")")" "$OCI_INDEX" application/vnd.example.sbom)"
    sync --job up/private/web --job up/private/multi
    grep -q "v1.1.0 $moved copied" "$WORK/sync.out"
    grep -q "m1 $IDX copied (1 manifests, 0 blobs, 0 bytes)" "$WORK/sync.out"
    inspect_matches "$MIRROR/up/private/web:v1.1.0" "$moved" "$(layout_blob "$WORK/web" "$moved")"
    curl -sf "http://$MIRROR/v2/up/private/multi/referrers/$IDX" |
        jq -e --arg a "$SIG" --arg b "$sbom" '[.manifests[].digest] | sort == ([$a, $b] | sort)'
}

check "the server's schedule syncs at start-up (newest 2 of ^1\\. from docker-registry)" \
    schedule_runs_at_start_up
check "mirror sync copies exactly the tags a semver range and a regex select" filters_select_exactly
check "every platform of an index, and its referrer when asked" every_platform_and_referrers
check "platforms = [linux/arm64] keeps that platform only" configured_platforms_only
check "skopeo pulls the upstream's digests from the mirror" pulled_digests_equal_upstream
check "a sync killed mid-blob leaves nothing visible; the re-run fetches only what is missing" \
    killed_and_resumed
check "a second run transfers nothing (upstream access logs: no blob GET)" \
    second_run_transfers_nothing
check "--dry-run reports a new tag and writes nothing" dry_run_writes_nothing
check "a tag moved upstream is followed, a referrer added later is copied" follows_upstream_changes
finish || true
echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
