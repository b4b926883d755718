//! The direct-upload extension (`docs/direct-upload.md`): discovery on every store; the
//! presigned paths only on S3 (the filesystem store cannot presign, like `redirect.rs`).

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::auth::{as_user, auth_server};
use crate::util::*;

const MIB: usize = 1 << 20;

async fn s3_server(extra: &[&str]) -> Option<TestServer> {
    if !s3_backend() {
        eprintln!("skipped: direct uploads need CARGOHOLD_TEST_BACKEND=s3");
        return None;
    }
    Some(TestServer::spawn_with(extra).await)
}

async fn ext(s: &TestServer, repo: &str, module: &str, body: Value) -> reqwest::Response {
    s.req(
        reqwest::Method::POST,
        &format!("/v2/{repo}/_cargohold/direct/{module}"),
    )
    .json(&body)
    .send()
    .await
    .expect("POST extension")
}

async fn start(s: &TestServer, repo: &str, body: Value) -> Value {
    let r = ext(s, repo, "start", body).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    r.json().await.expect("start JSON")
}

/// Sends `data` with a presigned request as the server described it.
async fn send_signed(signed: &Value, data: &[u8]) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(signed["method"].as_str().unwrap_or("PUT").as_bytes())
        .expect("method");
    let mut r = reqwest::Client::new().request(method, signed["url"].as_str().expect("url"));
    for h in signed["headers"].as_array().expect("headers") {
        r = r.header(h[0].as_str().expect("name"), h[1].as_str().expect("value"));
    }
    r.body(data.to_vec())
        .send()
        .await
        .expect("presigned request")
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[tokio::test]
async fn discovery_lists_the_extension_only_where_it_works() {
    let s = TestServer::spawn().await;
    let v = s.get_json("/v2/_oci/ext/discover").await;
    let names: Vec<_> = v["extensions"]
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    let expected = if s.is_s3() {
        vec![json!("_cargohold")]
    } else {
        vec![]
    };
    assert_eq!(names, expected);
    assert_eq!(s.get_json("/v2/a/b/_oci/ext/discover").await, v);
    if !s.is_s3() {
        let r = ext(&s, "a", "start", json!({"digest": digest(b"x"), "size": 1})).await;
        assert_oci_error(r, StatusCode::NOT_FOUND, "UNSUPPORTED").await;
    }
}

#[tokio::test]
async fn a_disabled_extension_is_not_listed() {
    let Some(s) = s3_server(&["--direct-upload", "false"]).await else {
        return;
    };
    assert_eq!(
        s.get_json("/v2/_oci/ext/discover").await,
        json!({"extensions": []})
    );
}

/// Whether the store holds `digest` under `blobs/`: without access control, a direct
/// start in a fresh repository mounts any stored blob.
async fn stored(s: &TestServer, d: &str, size: usize) -> bool {
    let repo = format!("probe-{}", &d[7..19]);
    let r = ext(s, &repo, "start", json!({"digest": d, "size": size})).await;
    match r.status() {
        StatusCode::CREATED => true,
        StatusCode::ACCEPTED => false,
        other => panic!("start in {repo}: {other}"),
    }
}

#[tokio::test]
async fn single_object_upload_is_checked_by_the_store_then_published_and_linked() {
    let Some(s) = s3_server(&[]).await else {
        return;
    };
    let data = bytes(3 * MIB, 7);
    let d = digest(&data);
    let plan = start(&s, "r", json!({"digest": d, "size": data.len()})).await;
    let id = plan["id"].as_str().expect("id");
    // The PUT goes straight to the blob's key (the store enforces checksums).
    // The session is signed into the object's metadata: the client cannot leave it out.
    let url = plan["put"]["url"].as_str().expect("url");
    assert!(url.contains(&format!("/blobs/sha256/{}", &d[7..])), "{url}");
    assert!(url.contains("x-amz-meta-cargohold-upload"), "{url}");
    // Bytes that do not hash to the digest are refused by the store itself, and nothing
    // lands under blobs/.
    let wrong = bytes(3 * MIB, 8);
    assert!(
        send_signed(&plan["put"], &wrong)
            .await
            .status()
            .is_client_error()
    );
    assert!(!stored(&s, &d, data.len()).await);
    let r = complete_single(&s, "r", id).await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, "SIZE_INVALID").await;
    assert!(send_signed(&plan["put"], &data).await.status().is_success());
    let r = complete_single(&s, "r", id).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), d);
    assert_eq!(s.blob_bytes("r", &d).await, data);
    // Known to the repository: nothing to do; known elsewhere: mounted.
    let again = ext(&s, "r", "start", json!({"digest": d, "size": data.len()})).await;
    assert_eq!(again.status(), StatusCode::OK);
    let other = ext(&s, "o", "start", json!({"digest": d, "size": data.len()})).await;
    assert_eq!(other.status(), StatusCode::CREATED);
    assert_eq!(
        s.head(&format!("/v2/o/blobs/{d}")).await.status(),
        StatusCode::OK
    );
}

/// Starts a multipart upload of `data` under `claimed` and uploads its parts; returns
/// the session id and the parts for `complete`.
async fn upload_parts(s: &TestServer, data: &[u8], claimed: &str) -> (String, Vec<Value>) {
    let plan = start(
        s,
        "m",
        json!({"digest": claimed, "size": data.len(), "part_size": 5 * MIB}),
    )
    .await;
    let part = plan["part_size"].as_u64().expect("part_size") as usize;
    assert_eq!(part, 5 * MIB);
    let id = plan["id"].as_str().expect("id").to_owned();
    let chunks: Vec<&[u8]> = data.chunks(part).collect();
    let mut parts: Vec<Value> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"number": i + 1, "sha256": sha256_hex(c)}))
        .collect();
    let r = ext(s, "m", "parts", json!({"id": id, "parts": parts})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let signed: Value = r.json().await.expect("parts JSON");
    for (i, c) in chunks.iter().enumerate() {
        let r = send_signed(&signed["parts"][i], c).await;
        assert!(r.status().is_success(), "part {}: {}", i + 1, r.status());
        parts[i]["etag"] = json!(header(&r, "etag").trim_matches('"'));
    }
    (id, parts)
}

/// How a multipart blob is hashed: by the store (a checksummed copy, where the probe
/// proves it; LocalStack's does), or by a read where the store is not let hash.
const HASHED_BY: [&[&str]; 2] = [&[], &["--direct-store-hash", "false"]];

#[tokio::test]
async fn multipart_upload_is_verified_by_the_store_or_a_read_before_publishing() {
    for args in HASHED_BY {
        let Some(s) = s3_server(args).await else {
            return;
        };
        let data = bytes(12 * MIB, 3);
        let d = digest(&data);
        let (id, parts) = upload_parts(&s, &data, &d).await;
        let r = ext(&s, "m", "complete", json!({"id": id, "parts": parts})).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{args:?}");
        assert_eq!(s.blob_bytes("m", &d).await, data, "{args:?}");
        // Nothing is left: no session, no object, no unfinished copy.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let report = s.command(&["gc", "uploads", "--upload-max-age", "1s"]);
        assert!(
            report.contains("removed 0 abandoned upload sessions, 0 orphaned objects, 0 leftovers"),
            "{args:?}: {report}"
        );
    }
}

/// `GET` on a direct session: its plan and the parts the bucket holds.
/// `complete` of a single-object session (no parts).
async fn complete_single(s: &TestServer, repo: &str, id: &str) -> reqwest::Response {
    ext(s, repo, "complete", json!({"id": id, "parts": []})).await
}

async fn status(s: &TestServer, repo: &str, id: &str) -> reqwest::Response {
    s.get(&format!("/v2/{repo}/_cargohold/direct/uploads/{id}"))
        .await
}

#[tokio::test]
async fn an_interrupted_multipart_upload_lists_the_parts_the_bucket_holds_and_resumes() {
    let Some(s) = s3_server(&[]).await else {
        return;
    };
    let data = bytes(12 * MIB, 12);
    let d = digest(&data);
    let plan = start(
        &s,
        "res",
        json!({"digest": d, "size": data.len(), "part_size": 5 * MIB}),
    )
    .await;
    let id = plan["id"].as_str().expect("id").to_owned();
    let chunks: Vec<&[u8]> = data.chunks(5 * MIB).collect();
    let claimed: Vec<Value> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"number": i + 1, "sha256": sha256_hex(c)}))
        .collect();
    let r = ext(&s, "res", "parts", json!({"id": id, "parts": claimed})).await;
    let signed: Value = r.json().await.expect("parts JSON");
    // Parts 3 and 1 reach the bucket; the client dies before part 2.
    for i in [2, 0] {
        assert!(
            send_signed(&signed["parts"][i], chunks[i])
                .await
                .status()
                .is_success()
        );
    }
    let r = status(&s, "res", &id).await;
    assert_eq!(r.status(), StatusCode::OK);
    let held: Value = r.json().await.expect("status JSON");
    assert_eq!(
        (&held["digest"], &held["size"], &held["part_size"]),
        (&json!(d), &json!(data.len()), &json!(5 * MIB))
    );
    let listed: Vec<_> = held["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .map(|p| (p["number"].clone(), p["size"].clone(), p["sha256"].clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (json!(1), json!(5 * MIB), claimed[0]["sha256"].clone()),
            (json!(3), json!(2 * MIB), claimed[2]["sha256"].clone()),
        ]
    );
    // Another repository does not see the session.
    assert_oci_error(
        status(&s, "other", &id).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    // The resumed client asks for part 2 alone, then completes with the listed ETags.
    let r = ext(&s, "res", "parts", json!({"id": id, "parts": [claimed[1]]})).await;
    let again: Value = r.json().await.expect("parts JSON");
    let r = send_signed(&again["parts"][0], chunks[1]).await;
    assert!(r.status().is_success());
    let mut parts = claimed.clone();
    for p in held["parts"].as_array().expect("parts") {
        let n = p["number"].as_u64().expect("number") as usize;
        parts[n - 1]["etag"] = p["etag"].clone();
    }
    parts[1]["etag"] = json!(header(&r, "etag").trim_matches('"'));
    let r = ext(&s, "res", "complete", json!({"id": id, "parts": parts})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(s.blob_bytes("res", &d).await, data);
    // A finished session is gone.
    assert_oci_error(
        status(&s, "res", &id).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn a_single_object_session_lists_its_object_once_written() {
    let Some(s) = s3_server(&[]).await else {
        return;
    };
    let data = bytes(4000, 13);
    let plan = start(
        &s,
        "one",
        json!({"digest": digest(&data), "size": data.len()}),
    )
    .await;
    let id = plan["id"].as_str().expect("id");
    let held: Value = status(&s, "one", id).await.json().await.expect("JSON");
    assert_eq!(
        (&held["part_size"], &held["parts"]),
        (&Value::Null, &json!([]))
    );
    assert!(send_signed(&plan["put"], &data).await.status().is_success());
    let held: Value = status(&s, "one", id).await.json().await.expect("JSON");
    assert_eq!(held["parts"][0]["number"], 1);
    assert_eq!(held["parts"][0]["size"], data.len());
    assert_eq!(held["parts"][0]["sha256"], sha256_hex(&data));
}

#[tokio::test]
async fn a_lying_digest_is_digest_invalid_and_stores_nothing() {
    let Some(s) = s3_server(&[]).await else {
        return;
    };
    let data = bytes(6 * MIB, 4);
    let lie = digest(b"something else");
    let (id, parts) = upload_parts(&s, &data, &lie).await;
    let r = ext(&s, "m", "complete", json!({"id": id, "parts": parts})).await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    // The session went with its object: nothing is left for the GC either.
    let r = status(&s, "m", &id).await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let report = s.command(&["gc", "uploads", "--upload-max-age", "1s"]);
    assert!(
        report.contains("removed 0 abandoned upload sessions, 0 orphaned objects, 0 leftovers"),
        "{report}"
    );
    assert_eq!(
        s.head(&format!("/v2/m/blobs/{lie}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.head(&format!("/v2/m/blobs/{}", digest(&data)))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

/// The publishing copy runs while the object is hashed (by the store or by a read), in
/// parts of the server's part size, or the store hashes it in its own one-part copy: a
/// lie leaves neither a blob nor an unfinished copy (the GC would abort it as a
/// leftover); the truth, of a size no part size divides, arrives whole.
#[tokio::test]
async fn a_multipart_copy_overlapping_the_hashing_is_completed_only_for_the_true_digest() {
    let part_size = (5 * MIB).to_string();
    for hashed_by in HASHED_BY {
        let args = [&["--part-size", part_size.as_str()], hashed_by].concat();
        let Some(s) = s3_server(&args).await else {
            return;
        };
        copy_completed_only_for_the_true_digest(&s).await;
    }
}

async fn copy_completed_only_for_the_true_digest(s: &TestServer) {
    let data = bytes(13 * MIB + 7, 5);
    let d = digest(&data);
    let lie = digest(b"not these bytes");
    let (id, parts) = upload_parts(s, &data, &lie).await;
    let r = ext(s, "m", "complete", json!({"id": id, "parts": parts})).await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let report = s.command(&["gc", "uploads", "--upload-max-age", "1s"]);
    assert!(
        report.contains("removed 0 abandoned upload sessions, 0 orphaned objects, 0 leftovers"),
        "{report}"
    );
    for blob in [&lie, &d] {
        let r = s.head(&format!("/v2/m/blobs/{blob}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{blob}");
    }
    // Not under blobs/ either, linked or not: a stored blob would be mounted here.
    start(s, "o", json!({"digest": lie, "size": data.len()})).await;
    let (id, parts) = upload_parts(s, &data, &d).await;
    let r = ext(s, "m", "complete", json!({"id": id, "parts": parts})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(s.blob_bytes("m", &d).await, data);
}

#[tokio::test]
async fn a_part_with_the_wrong_checksum_is_refused_by_the_store() {
    let Some(s) = s3_server(&[]).await else {
        return;
    };
    let data = bytes(6 * MIB, 5);
    let plan = start(
        &s,
        "w",
        json!({"digest": digest(&data), "size": data.len(), "part_size": 5 * MIB}),
    )
    .await;
    let id = plan["id"].as_str().expect("id");
    let claimed = json!([{"number": 1, "sha256": sha256_hex(&data[..5 * MIB])}]);
    let r = ext(&s, "w", "parts", json!({"id": id, "parts": claimed})).await;
    let signed: Value = r.json().await.expect("parts JSON");
    let r = send_signed(&signed["parts"][0], &bytes(5 * MIB, 6)).await;
    assert!(r.status().is_client_error(), "{}", r.status());
}

#[tokio::test]
async fn presigned_requests_expire() {
    let Some(s) = s3_server(&["--direct-expiry", "1s"]).await else {
        return;
    };
    let data = bytes(1000, 9);
    let plan = start(
        &s,
        "e",
        json!({"digest": digest(&data), "size": data.len()}),
    )
    .await;
    // A part request expires alike.
    let multi = start(
        &s,
        "e",
        json!({"digest": digest(&data), "size": data.len(), "part_size": 5 * MIB}),
    )
    .await;
    let part = json!([{"number": 1, "sha256": sha256_hex(&data)}]);
    let r = ext(&s, "e", "parts", json!({"id": multi["id"], "parts": part})).await;
    let signed: Value = r.json().await.expect("parts JSON");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        send_signed(&plan["put"], &data).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send_signed(&signed["parts"][0], &data).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn abandoned_direct_uploads_are_collected_multipart_aborted_and_staged_objects_removed() {
    let Some(s) = s3_server(&[]).await else {
        return;
    };
    // A single object written by the client but never completed.
    let one = bytes(2000, 10);
    let plan = start(&s, "g", json!({"digest": digest(&one), "size": one.len()})).await;
    assert!(send_signed(&plan["put"], &one).await.status().is_success());
    let single = plan["id"].as_str().expect("id").to_owned();
    // A multipart upload with one of its two parts written.
    let data = bytes(6 * MIB, 11);
    let plan = start(
        &s,
        "g",
        json!({"digest": digest(&data), "size": data.len(), "part_size": 5 * MIB}),
    )
    .await;
    let multi = plan["id"].as_str().expect("id").to_owned();
    let (first, second) = data.split_at(5 * MIB);
    let parts = json!([
        {"number": 1, "sha256": sha256_hex(first)},
        {"number": 2, "sha256": sha256_hex(second)},
    ]);
    let r = ext(&s, "g", "parts", json!({"id": multi, "parts": parts})).await;
    let signed: Value = r.json().await.expect("parts JSON");
    assert!(
        send_signed(&signed["parts"][0], first)
            .await
            .status()
            .is_success()
    );

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let report = s.command(&["gc", "uploads", "--upload-max-age", "1s"]);
    assert!(
        report.contains("removed 2 abandoned upload sessions"),
        "{report}"
    );
    // The multipart upload is gone from the bucket: its remaining part has nowhere to go.
    let r = send_signed(&signed["parts"][1], second).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "part 2 after the abort");
    for id in [&single, &multi] {
        let r = complete_single(&s, "g", id).await;
        assert_oci_error(r, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    }
    // Nothing is left under uploads/: no object (it would be an orphan by now) and no
    // multipart upload (a leftover).
    let again = s.command(&["gc", "uploads", "--upload-max-age", "1s"]);
    assert!(
        again.contains("removed 0 abandoned upload sessions, 0 orphaned objects, 0 leftovers"),
        "{again}"
    );
    // The single object went straight to blobs/: it stays there, complete and verified
    // by the store, but linked nowhere (no blob GC removes unlinked blobs), until an
    // upload or mount of the same digest links it.
    let one = digest(&one);
    assert_eq!(
        s.head(&format!("/v2/g/blobs/{one}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(stored(&s, &one, 2000).await);
}

#[tokio::test]
async fn under_auth_direct_uploads_need_push_and_mount_only_blobs_the_caller_may_pull() {
    if !s3_backend() {
        eprintln!("skipped: direct uploads need CARGOHOLD_TEST_BACKEND=s3");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = auth_server(dir.path(), "", &[]).await;
    let (hidden, shared) = (bytes(3000, 20), bytes(3000, 21));
    // Images, so the catalog lists both repositories (automatic mounts look there).
    as_user(&mut s, "carol", &["repository:carol/x:pull,push"]).await;
    s.push_image("carol/x", "v1", &hidden).await;
    let hidden = digest(&hidden);
    as_user(&mut s, "alice", &["repository:public/base:pull,push"]).await;
    s.push_image("public/base", "v1", &shared).await;
    let shared = digest(&shared);
    let start_of = |d: &str| json!({"digest": d, "size": 3000});

    s.authorize(None);
    let r = ext(&s, "private/app", "start", start_of(&shared)).await;
    assert_oci_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let r = status(&s, "private/app", "any").await;
    assert_oci_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // bob may pull private/app, not push to it: not even a session's parts.
    as_user(&mut s, "bob", &["repository:private/app:pull,push"]).await;
    let r = ext(&s, "private/app", "start", start_of(&shared)).await;
    assert_oci_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    let r = status(&s, "private/app", "any").await;
    assert_oci_error(r, StatusCode::FORBIDDEN, "DENIED").await;

    as_user(&mut s, "alice", &["repository:private/app:pull,push"]).await;
    // carol's blob: alice may not read carol/x, so she uploads it like any other. Its
    // PUT goes to the key carol's blob is stored under, yet the session neither lists
    // that object nor links it: only an object this session wrote counts.
    let r = ext(&s, "private/app", "start", start_of(&hidden)).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let plan: Value = r.json().await.expect("start JSON");
    let id = plan["id"].as_str().expect("id");
    let held: Value = status(&s, "private/app", id)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(held["parts"], json!([]));
    let r = complete_single(&s, "private/app", id).await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, "SIZE_INVALID").await;
    let blob = format!("/v2/private/app/blobs/{hidden}");
    assert_eq!(s.head(&blob).await.status(), StatusCode::NOT_FOUND);
    // With the bytes she has it: the PUT overwrites carol's blob with the same bytes,
    // unconditionally (a 412 would tell her the blob exists).
    let r = send_signed(&plan["put"], &bytes(3000, 20)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = complete_single(&s, "private/app", id).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(s.blob_bytes("private/app", &hidden).await, bytes(3000, 20));
    as_user(&mut s, "carol", &["repository:carol/x:pull"]).await;
    assert_eq!(s.blob_bytes("carol/x", &hidden).await, bytes(3000, 20));
    as_user(&mut s, "alice", &["repository:private/app:pull,push"]).await;
    // A public repository's blob: mounted.
    let r = ext(&s, "private/app", "start", start_of(&shared)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let blob = format!("/v2/private/app/blobs/{shared}");
    assert_eq!(s.head(&blob).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn two_sessions_writing_the_same_blob_in_place_each_link_it_after_their_own_put() {
    let Some(s) = s3_server(&[]).await else {
        return;
    };
    let data = bytes(5000, 30);
    let d = digest(&data);
    let a = start(&s, "ra", json!({"digest": d, "size": data.len()})).await;
    let b = start(&s, "rb", json!({"digest": d, "size": data.len()})).await;
    assert!(send_signed(&a["put"], &data).await.status().is_success());
    assert!(send_signed(&b["put"], &data).await.status().is_success());
    // The object at the blob's key is b's write now: a's PUT must be sent again.
    let complete = |repo: &'static str, plan: &Value| {
        let body = json!({"id": plan["id"], "parts": []});
        let s = &s;
        async move { ext(s, repo, "complete", body).await }
    };
    let r = complete("ra", &a).await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, "SIZE_INVALID").await;
    assert_eq!(complete("rb", &b).await.status(), StatusCode::CREATED);
    assert!(send_signed(&a["put"], &data).await.status().is_success());
    assert_eq!(complete("ra", &a).await.status(), StatusCode::CREATED);
    for repo in ["ra", "rb"] {
        assert_eq!(s.blob_bytes(repo, &d).await, data);
    }
}
