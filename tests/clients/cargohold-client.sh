#!/usr/bin/env bash
# `cargohold push | pull | copy` against cargohold on the S3 test bucket (LocalStack): a
# multi-layer image with one large layer by the direct path (one object, then parallel
# parts), a push -> pull round trip comparing every digest, skopeo pulling what the client
# pushed, a chunked push and a direct multipart push each killed mid-layer and resumed
# without re-sending what the registry or bucket already had, and a copy of a two-platform
# index with a referrer from cargohold to Debian's docker-registry (CNCF distribution).
# Needs `source .ci/.s3/env`. BIG_KIB sets the large layer (default 200 MiB).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
: "${CARGOHOLD_TEST_S3_ENDPOINT:?source .ci/.s3/env first (.ci/s3-servers.sh start)}"

BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/cargohold"
REGISTRY_CMD="$CLIENTS_DIR/cargohold-s3-serve.sh"
BIG_KIB="${BIG_KIB:-204800}"
client_init cargohold-client
start_registry
CH=("$BIN") # every subcommand below gets --quiet (no bars in CI logs) unless its output is read

make_image_layout "$WORK/big" v1 amd64 "$BIG_KIB"
BIG_DIGEST="$(layout_ref_digest "$WORK/big" v1)"
BIG_MANIFEST="$(layout_blob "$WORK/big" "$BIG_DIGEST")"

# requests PATTERN: how many access-log lines of the registry match PATTERN. The server
# writes its access log in batches: `settle` first where a count must be complete.
requests() { grep -c -- "$1" "$SERVER_LOG" || true; }
settle() { sleep 1; }

direct_single() {
    assert_eq "output with --quiet" "" "$("${CH[@]}" push --quiet "$WORK/big" "$HOST/big/single:v1")"
    settle
    [[ $(requests '_cargohold/direct/complete') -ge 1 ]]
    [[ $(requests 'big/single/blobs/uploads') -eq 0 ]] # no byte through the standard flow
    inspect_matches "$HOST/big/single:v1" "$BIG_DIGEST" "$BIG_MANIFEST"
}

direct_parts() {
    # Another repository would mount the layer: push a different large layer instead.
    make_image_layout "$WORK/parts" v1 amd64 $((BIG_KIB / 2))
    # Not quiet, and stdout is no terminal: one plain line per blob and a summary.
    local out d
    out="$("${CH[@]}" push --part-size $((16 << 20)) --jobs 4 "$WORK/parts" "$HOST/big/parts:v1")"
    echo "$out"
    settle
    [[ $(requests '_cargohold/direct/parts') -ge 1 ]]
    d="$(layout_ref_digest "$WORK/parts" v1)"
    assert_eq "blob lines" 3 "$(grep -cE '^[0-9a-f]{12} (uploaded|mounted|exists) [0-9.]+ [KM]iB in ' <<<"$out")"
    grep -qE "^pushed $HOST/big/parts:v1@$d: [0-9.]+ MiB transferred in .*/s\)$" <<<"$out"
    inspect_matches "$HOST/big/parts:v1" "$d" "$(layout_blob "$WORK/parts" "$d")"
}

# pull_matches REF LAYOUT DEST: `cargohold pull REF` into DEST gives LAYOUT's image under
# REF's tag: the same manifest digest, every blob byte for byte.
pull_matches() {
    local tag="${1##*:}" digest d
    digest="$(layout_ref_digest "$2" "$tag")"
    "${CH[@]}" pull --quiet "$1" "$3"
    assert_eq "manifest digest" "$digest" "$(layout_ref_digest "$3" "$tag")"
    for d in $(jq -r '.config.digest, .layers[].digest' "$(layout_blob "$2" "$digest")"); do
        cmp "$(layout_blob "$2" "$d")" "$(layout_blob "$3" "$d")"
    done
    layout_intact "$3"
}

round_trip() { pull_matches "$HOST/big/single:v1" "$WORK/big" "$WORK/pulled"; }

skopeo_pulls() {
    pull_image_matches "$HOST/big/single:v1" "$BIG_DIGEST" "$BIG_MANIFEST" "$WORK/skopeo-out"
}

# killed_when PREDICATE ARGS...: runs `cargohold ARGS` in the background (its output in
# $WORK/killed.out) and kills it (SIGKILL, no chance to clean up) once PREDICATE holds, or
# after 60 s.
killed_when() {
    local predicate="$1" pid i
    shift
    "${CH[@]}" "$@" >"$WORK/killed.out" &
    pid=$!
    for i in $(seq 1 600); do
        "$predicate" && break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    settle
}

killed_and_resumed() {
    # Ten chunks for the large layer.
    local chunk=$((BIG_KIB * 1024 / 10))
    local args=(push --quiet --no-direct --chunk-size "$chunk" --jobs 1 --state-dir "$WORK/state")
    # Killed once a few chunks of the large layer are in.
    # shellcheck disable=SC2317 # called by killed_when
    three_chunks() { [[ $(requests 'method=PATCH path="/v2/big/resume/blobs/uploads') -ge 3 ]]; }
    killed_when three_chunks "${args[@]}" "$WORK/big" "$HOST/big/resume:v1"
    local killed_at
    killed_at=$(requests 'method=PATCH path="/v2/big/resume/blobs/uploads.* status=202')
    echo "killed after $killed_at chunks; recorded sessions: $(ls "$WORK/state")"
    [[ -n "$(ls "$WORK/state")" ]]
    "${CH[@]}" "${args[@]}" "$WORK/big" "$HOST/big/resume:v1"
    settle
    # The resumed run asked where the session stood (GET on it) and sent only the rest:
    # fewer chunks in all than the killed run's plus a whole new upload.
    [[ $(requests 'method=GET path="/v2/big/resume/blobs/uploads/.* status=204') -ge 1 ]]
    local big total
    big=$(jq '[.layers[].size] | max' "$BIG_MANIFEST")
    total=$(requests 'method=PATCH path="/v2/big/resume/blobs/uploads.* status=202')
    echo "chunks received in all: $total"
    [[ $total -lt $((killed_at + (big + chunk - 1) / chunk)) ]]
    inspect_matches "$HOST/big/resume:v1" "$BIG_DIGEST" "$BIG_MANIFEST"
}

# bucket_parts: how many UploadPart requests LocalStack has answered 200, or nothing when
# its log is not at hand (an S3 server this checkout did not start).
bucket_parts() {
    local log="$REPO_ROOT/.ci/.s3/localstack.log"
    [[ -f $log ]] && grep -q "Running on https\?://${CARGOHOLD_TEST_S3_ENDPOINT#*://} " "$log" || return 0
    grep -c 'AWS s3.UploadPart => 200' "$log" || true
}

direct_killed_and_resumed() {
    # A layer of its own (another repository's would be mounted), in 5 MiB parts.
    local part=$((5 << 20)) ref="$HOST/big/dresume:v1" state="$WORK/dstate"
    make_image_layout "$WORK/dres" v1 amd64 "$BIG_KIB"
    local args=(--part-size "$part" --jobs 2 --state-dir "$state" "$WORK/dres" "$ref")
    local parts_before
    parts_before="$(bucket_parts)"
    # Killed once the record shows ten parts acknowledged by the bucket.
    # shellcheck disable=SC2317 # called by killed_when
    ten_parts() { [[ $(cat "$state"/* 2>/dev/null | grep -c '^[0-9]') -ge 10 ]]; }
    killed_when ten_parts push "${args[@]}"
    # The big layer's record: the file with the most lines (small blobs finished).
    local record recorded id held
    record="$(wc -l "$state"/* | grep -v ' total$' | sort -n | tail -n 1 | awk '{print $2}')"
    recorded=$(grep -c '^[0-9]' "$record")
    id="$(head -n 1 "$record" | jq -r .id)"
    # What the bucket holds (ListParts through the registry): at least what was recorded.
    held="$(curl -fsS "http://$HOST/v2/big/dresume/_cargohold/direct/uploads/$id" | jq '.parts | length')"
    echo "killed with $recorded parts recorded, $held held by the bucket"
    [[ $held -ge $recorded && $recorded -ge 10 ]]
    # Not quiet: plain lines (stdout is no terminal) say what was resumed and sent.
    local out
    out="$("${CH[@]}" push "${args[@]}")"
    echo "$out"
    local size resumed sent_kib
    size=$(jq '[.layers[].size] | max' "$(layout_blob "$WORK/dres" "$(layout_ref_digest "$WORK/dres" v1)")")
    resumed="$(sed -nE 's/.* resuming: ([0-9]+) of [0-9]+ parts uploaded$/\1/p' <<<"$out")"
    assert_eq "parts resumed" "$held" "$resumed"
    sent_kib="$(sed -nE 's/.*: ([0-9.]+) (MiB|KiB) transferred in .*/\1 \2/p' <<<"$out" |
        awk '{printf "%d", $2 == "MiB" ? $1 * 1024 : $1}')"
    echo "sent ${sent_kib} KiB; the layer is $((size / 1024)) KiB, $((held * part / 1024)) KiB were in the bucket"
    # Everything but the held parts, give or take the small blobs and rounding.
    [[ $sent_kib -le $(((size - held * part) / 1024 + 64)) ]]
    [[ -z "$(ls "$state")" ]] # records are removed once their blob is complete
    settle
    local parts_after expected uploaded
    parts_after="$(bucket_parts)"
    if [[ -n $parts_before && -n $parts_after ]]; then
        # Every part of every blob either run uploaded (not mounted: the base layer is in
        # other repositories) reached the bucket exactly once over both runs.
        uploaded="$(cat "$WORK/killed.out" - <<<"$out" | sed -nE 's/^([0-9a-f]{12}) uploaded .*/\1/p' |
            jq -R . | jq -s .)"
        expected=$(jq --argjson p "$part" --argjson up "$uploaded" '[.config, .layers[]] |
            map(select(.digest[7:19] as $l | $up | index($l)) | (.size + $p - 1) / $p | floor) | add' \
            "$(layout_blob "$WORK/dres" "$(layout_ref_digest "$WORK/dres" v1)")")
        assert_eq "UploadPart requests the bucket accepted" "$expected" $((parts_after - parts_before))
    else
        echo "# LocalStack's log is not at hand: bucket-side count skipped"
    fi
    pull_matches "$ref" "$WORK/dres" "$WORK/dres-pulled"
}

copy_index_with_referrer() {
    make_index_layout "$WORK/idx" multi
    "${CH[@]}" push --quiet "$WORK/idx" "$HOST/multi/app:m1"
    local idx sig
    idx="$(layout_ref_digest "$WORK/idx" multi)"
    # A signature-like artifact whose subject is the index, pushed by digest.
    sig="$(push_referrer "$HOST" multi/app "$idx" \
        "$(stat -c %s "$(layout_blob "$WORK/idx" "$idx")")" "$OCI_INDEX")"
    # The second registry: CNCF distribution.
    local dr_port dr_pid
    dr_port="$(free_port)"
    mkdir -p "$WORK/dr"
    "$CLIENTS_DIR/docker-registry-serve.sh" serve --listen "127.0.0.1:$dr_port" --root "$WORK/dr" \
        >"$WORK/dr.log" 2>&1 &
    dr_pid=$!
    wait_http "http://127.0.0.1:$dr_port/v2/" "$dr_pid" 30 200
    local rc=0
    (
        "${CH[@]}" copy --quiet --referrers "$HOST/multi/app:m1" "127.0.0.1:$dr_port/copied/app:m1"
        pull_index_matches "127.0.0.1:$dr_port/copied/app:m1" "$WORK/idx" "$WORK/dr-out"
        assert_eq "referrer copied" 200 "$(curl -s -o /dev/null -w '%{http_code}' \
            -H "Accept: $OCI_MANIFEST" "http://127.0.0.1:$dr_port/v2/copied/app/manifests/$sig")"
        # One platform only, back into cargohold.
        "${CH[@]}" copy --quiet --platform linux/arm64 "127.0.0.1:$dr_port/copied/app:m1" "$HOST/back/arm:a"
        assert_eq architecture arm64 \
            "$("${SK[@]}" inspect --tls-verify=false "docker://$HOST/back/arm:a" | jq -r .Architecture)"
    ) || rc=$?
    stop_pid "$dr_pid"
    return "$rc"
}

check "cargohold push: ${BIG_KIB} KiB layer by the direct single-object path" direct_single
check "cargohold push --part-size: large layer in parallel presigned parts" direct_parts
check "cargohold pull: round trip keeps every digest" round_trip
check "skopeo pulls what cargohold pushed" skopeo_pulls
check "chunked push killed mid-layer resumes without resending" killed_and_resumed
check "direct multipart push killed mid-layer resumes only the parts the bucket lacks" \
    direct_killed_and_resumed
check "cargohold copy --referrers: two-platform index to docker-registry, --platform back" \
    copy_index_with_referrer
finish || true
echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
