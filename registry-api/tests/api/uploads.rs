//! Pushing blobs (end-4a, end-4b, end-5, end-6, end-11, end-13) and their error cases.

use reqwest::{Method, StatusCode};

use crate::util::*;

#[tokio::test]
async fn post_then_put_monolithic() {
    let s = TestServer::spawn().await;
    let loc = s.start_upload("r").await;
    assert!(loc.starts_with("/v2/r/blobs/uploads/"), "{loc}");
    let data = bytes(5000, 3);
    let d = digest(&data);
    let r = s.finish_upload(&loc, &d, &data).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/r/blobs/{d}"));
    assert_eq!(header(&r, "docker-content-digest"), d);
    assert_eq!(s.blob_bytes("r", &d).await, data);
}

#[tokio::test]
async fn single_post_monolithic_returns_201_with_location() {
    let s = TestServer::spawn().await;
    let d = digest(b"abc");
    let r = s.post_blob("r", &d, "abc").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/r/blobs/{d}"));
}

#[tokio::test]
async fn chunked_upload_with_status_and_close() {
    let s = TestServer::spawn().await;
    let data = bytes(300_000, 4);
    let d = digest(&data);
    let mut loc = s.start_upload("a/b").await;
    for (i, chunk) in data.chunks(100_000).enumerate() {
        let start = i * 100_000;
        let end = start + chunk.len() - 1;
        let r = s.patch(&loc, start, chunk).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&r, "range"), format!("0-{end}"));
        loc = header(&r, "location");
        let st = s.upload_status(&loc).await;
        assert_eq!(header(&st, "range"), format!("0-{end}"));
        assert!(!header(&st, "location").is_empty());
    }
    let r = s.finish_upload(&loc, &d, b"").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(s.blob_bytes("a/b", &d).await, data);
}

#[tokio::test]
async fn streamed_patch_without_content_range_then_put_with_final_chunk() {
    let s = TestServer::spawn().await;
    let data = bytes(70_000, 5);
    let d = digest(&data);
    let (head, tail) = data.split_at(50_000);
    let loc = s.start_upload("r").await;
    let r = s.patch_streamed(&loc, head.to_vec()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = header(&r, "location");
    let r = s.finish_upload_from(&loc, &d, head.len(), tail).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(s.blob_bytes("r", &d).await, data);
}

#[tokio::test]
async fn out_of_order_chunk_is_416_and_upload_survives() {
    let s = TestServer::spawn().await;
    let loc = s.start_upload("r").await;
    assert_eq!(
        s.patch(&loc, 0, b"abc").await.status(),
        StatusCode::ACCEPTED
    );
    let r = s.patch(&loc, 5, b"xyz").await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "range"), "0-2");
    assert_eq!(
        s.patch(&loc, 3, b"def").await.status(),
        StatusCode::ACCEPTED
    );
    let r = s.finish_upload(&loc, &digest(b"abcdef"), b"").await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn wrong_digest_is_digest_invalid_and_stores_nothing() {
    let s = TestServer::spawn().await;
    let wrong = digest(b"something else");
    let r = s.post_blob("r", &wrong, "actual").await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    for d in [wrong.clone(), digest(b"actual")] {
        let r = s.head(&format!("/v2/r/blobs/{d}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    assert!(
        s.fs_root()
            .is_none_or(|root| walk(&root.join("blobs")).is_empty()),
        "nothing stored"
    );
    let loc = s.start_upload("r").await;
    let r = s.finish_upload(&loc, &wrong, b"actual").await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn bad_digests_are_rejected() {
    let s = TestServer::spawn().await;
    for bad in [
        "sha256:xyz",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "nocolon",
    ] {
        let r = s.post_blob("r", bad, "x").await;
        assert_oci_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
        let r = s.get(&format!("/v2/r/blobs/{bad}")).await;
        assert_oci_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    }
    // A closing PUT without `?digest=`.
    let loc = s.start_upload("r").await;
    let r = s
        .req(Method::PUT, &loc)
        .body("x")
        .send()
        .await
        .expect("PUT");
    assert_oci_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn unknown_upload_is_blob_upload_unknown() {
    let s = TestServer::spawn().await;
    let path = "/v2/r/blobs/uploads/0f0e0d0c-0b0a-4908-8706-050403020100";
    let r = s.get(path).await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let r = s.patch_streamed(path, "x").await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let r = s.get("/v2/r/blobs/uploads/not-a-uuid").await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    // A session belongs to its repository.
    let loc = s.start_upload("r").await;
    let r = s.get(&loc.replace("/v2/r/", "/v2/q/")).await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn cancel_upload_then_it_is_unknown() {
    let s = TestServer::spawn().await;
    let loc = s.start_upload("r").await;
    s.patch_streamed(&loc, "abc").await;
    assert_eq!(s.delete(&loc).await.status(), StatusCode::NO_CONTENT);
    let r = s.get(&loc).await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn mount_from_another_repository() {
    let s = TestServer::spawn().await;
    let d = s.push_blob("src", b"shared layer").await;
    let r = s.post_upload("dst", &format!("?mount={d}&from=src")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/dst/blobs/{d}"));
    assert_eq!(header(&r, "docker-content-digest"), d);
    assert_eq!(
        s.get_status(&format!("/v2/dst/blobs/{d}")).await,
        StatusCode::OK
    );
    // Not mountable (unknown source): a session starts instead.
    let other = digest(b"not anywhere");
    let r = s
        .post_upload("dst", &format!("?mount={other}&from=src"))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(header(&r, "location").contains("/blobs/uploads/"));
    let r = s.post_upload("dst2", &format!("?mount={d}")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn content_length_mismatch_with_content_range_is_rejected() {
    let s = TestServer::spawn().await;
    let loc = s.start_upload("r").await;
    let r = s
        .req(Method::PATCH, &loc)
        .header("content-range", "0-9")
        .body("abc")
        .send()
        .await
        .expect("PATCH");
    assert!(r.status().is_client_error());
    let st = s.upload_status(&loc).await;
    assert_eq!(header(&st, "range"), "0-0", "nothing appended");
}

#[tokio::test]
async fn empty_blob_can_be_pushed() {
    let s = TestServer::spawn().await;
    let d = digest(b"");
    let loc = s.start_upload("r").await;
    let r = s.finish_upload(&loc, &d, b"").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(s.blob_bytes("r", &d).await.len(), 0);
}

/// With R2's rule (every part but the last exactly the part size), chunks of any size are
/// cut into equal parts, the remainder kept in the store between requests.
#[tokio::test]
async fn chunks_of_any_size_become_equal_parts() {
    let s = TestServer::spawn_with(small_parts(s3_backend())).await;
    let data = bytes(10_000, 11);
    let d = digest(&data);
    let mut loc = s.start_upload("r").await;
    let mut at = 0;
    for len in [300, 1500, 10, 3000, 1024, 2048, 0, 2000] {
        let end = (at + len).min(data.len());
        let r = s.patch_streamed(&loc, data[at..end].to_vec()).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        if end > 0 {
            assert_eq!(header(&r, "range"), format!("0-{}", end - 1));
        }
        loc = header(&r, "location");
        at = end;
    }
    let r = s.finish_upload(&loc, &d, &data[at..]).await;
    assert_status(r, StatusCode::CREATED, "closing PUT").await;
    assert_eq!(s.blob_bytes("r", &d).await, data);
    // A monolithic push smaller than a part, and one of several parts.
    s.push_blob("r", &bytes(100, 12)).await;
    s.push_blob("r", &bytes(5000, 13)).await;
    // No tail or part is left behind.
    let left = s
        .fs_root()
        .map(|root| walk(&root.join("uploads")))
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// An upload started on one process is continued and finished on another sharing the store.
#[tokio::test]
async fn upload_moves_between_processes() {
    let a = TestServer::spawn_with(small_parts(s3_backend())).await;
    let b = a.sharing(small_parts(a.is_s3())).await;
    let data = bytes(5000, 14);
    let d = digest(&data);
    let loc = a.start_upload("r").await;
    let r = a.patch_streamed(&loc, data[..1500].to_vec()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = b.patch(&loc, 1500, &data[1500..4000]).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = a.finish_upload(&loc, &d, &data[4000..]).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(b.blob_bytes("r", &d).await, data);
}

/// `cargohold gc uploads` discards sessions older than the limit and leaves newer ones.
#[tokio::test]
async fn gc_discards_abandoned_uploads() {
    let s = TestServer::spawn_with(small_parts(s3_backend())).await;
    let old = s.start_upload("r").await;
    let r = s.patch_streamed(&old, bytes(3000, 15)).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let gc = |age: &str| s.command(&["gc", "uploads", "--upload-max-age", age]);
    assert!(gc("1h").starts_with("removed 0 abandoned upload sessions"));
    s.upload_status(&old).await;
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(gc("1s").starts_with("removed 1 abandoned upload sessions"));
    let r = s.get(&old).await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    if let Some(root) = s.fs_root() {
        assert!(walk(&root.join("uploads")).is_empty());
        assert!(walk(&root.join(".multipart")).is_empty());
    }
}
