//! Pull and delete of blobs (end-2, end-10), and per-repository visibility.

use reqwest::{Method, StatusCode};

use crate::util::*;

#[tokio::test]
async fn base_endpoint_answers_200_with_api_version() {
    let s = TestServer::spawn().await;
    let r = s.get("/v2/").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(&r, "docker-distribution-api-version"),
        "registry/2.0"
    );
}

#[tokio::test]
async fn get_and_head_blob_return_bytes_digest_and_length() {
    let s = TestServer::spawn().await;
    let data = bytes(10_000, 1);
    let d = s.push_blob("r", &data).await;
    let r = s.head(&format!("/v2/r/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length"), "10000");
    assert_eq!(header(&r, "docker-content-digest"), d);
    let r = s.get(&format!("/v2/r/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "docker-content-digest"), d);
    assert_eq!(r.bytes().await.expect("body").as_ref(), &data[..]);
}

#[tokio::test]
async fn missing_blob_is_404_blob_unknown() {
    let s = TestServer::spawn().await;
    let d = digest(b"nothing");
    let r = s.get(&format!("/v2/r/blobs/{d}")).await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    assert_eq!(
        s.head(&format!("/v2/r/blobs/{d}")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn blob_pushed_to_one_repository_is_unknown_in_another() {
    let s = TestServer::spawn().await;
    let d = s.push_blob("a", b"private").await;
    let r = s.get(&format!("/v2/b/blobs/{d}")).await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    // Pushing the same bytes to b stores nothing new but makes it visible there.
    s.push_blob("b", b"private").await;
    assert_eq!(s.blob_bytes("b", &d).await, b"private");
    if let Some(root) = s.fs_root() {
        let files = walk(&root.join("blobs"));
        assert_eq!(files.len(), 1, "stored once: {files:?}");
    }
}

#[tokio::test]
async fn range_requests_return_206_and_416() {
    let s = TestServer::spawn().await;
    let data = bytes(1000, 2);
    let d = s.push_blob("r", &data).await;
    let path = format!("/v2/r/blobs/{d}");
    let r = s.get_with(&path, "range", "bytes=10-19").await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "content-range"), "bytes 10-19/1000");
    assert_eq!(r.bytes().await.expect("body").as_ref(), &data[10..20]);
    for (range, tail) in [("bytes=990-", 990), ("bytes=-5", 995)] {
        let r = s.get_with(&path, "range", range).await;
        assert_eq!(r.bytes().await.expect("body").as_ref(), &data[tail..]);
    }
    let r = s.get_with(&path, "range", "bytes=1000-").await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "content-range"), "bytes */1000");
}

#[tokio::test]
async fn delete_blob_answers_202_then_404() {
    let s = TestServer::spawn().await;
    let d = s.push_blob("r", b"gone soon").await;
    s.push_blob("other", b"gone soon").await;
    let path = format!("/v2/r/blobs/{d}");
    assert_eq!(s.delete(&path).await.status(), StatusCode::ACCEPTED);
    let r = s.get(&path).await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    let r = s.delete(&path).await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    // The other repository still serves the shared bytes.
    assert_eq!(s.blob_bytes("other", &d).await, b"gone soon");
}

#[tokio::test]
async fn unknown_endpoint_and_wrong_method() {
    let s = TestServer::spawn().await;
    assert_eq!(
        s.get_status("/v2/r/unknown/thing").await,
        StatusCode::NOT_FOUND
    );
    // Outside `/v2/` only the browse UI and its documents are served (browse.rs), and
    // nothing is mistaken for the base endpoint.
    for path in [
        "/v3/",
        "/v2x/r/tags/list",
        "/index/_catalog",
        "/ui/x.js",
        "/uploads/",
    ] {
        assert_eq!(s.get_status(path).await, StatusCode::NOT_FOUND, "{path}");
    }
    let r = s.send(Method::POST, "/v2/r/tags/list").await;
    assert_oci_error(r, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
}

#[tokio::test]
async fn the_index_root_config_names_the_format_version() {
    let s = TestServer::spawn().await;
    let Some(root) = s.fs_root() else { return };
    let text = std::fs::read_to_string(root.join("config.json")).expect("config.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["format_version"], 2);
}
