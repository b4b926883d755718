//! Names, tags and references: invalid input gets the spec's error envelope.

use reqwest::{Method, StatusCode};

use crate::util::*;

#[tokio::test]
async fn invalid_repository_names_are_name_invalid() {
    let s = TestServer::spawn().await;
    let long = "a".repeat(256);
    for name in [
        "Upper",
        "a/.hidden/b",
        "a/b..c",
        "a//b",
        "a/",
        "-a",
        "a__-b",
        "a.",
        long.as_str(),
    ] {
        let r = s.get(&format!("/v2/{name}/tags/list")).await;
        assert_oci_error(r, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
        let r = s.post_upload(name, "").await;
        assert_oci_error(r, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
    }
}

#[tokio::test]
async fn deeply_nested_names_work() {
    let s = TestServer::spawn().await;
    s.push_image("a/b/c/d-e/f.g/h__i", "v1", b"x").await;
    let path = "/v2/a/b/c/d-e/f.g/h__i/manifests/v1";
    assert_eq!(s.get_status(path).await, StatusCode::OK);
}

#[tokio::test]
async fn invalid_tags_are_rejected() {
    let s = TestServer::spawn().await;
    let c = s.push_blob("r", b"{}").await;
    let m = image_manifest(&c, 2, &[], None);
    let long = "t".repeat(129);
    for tag in [".hidden", "-x", long.as_str()] {
        let r = s.put_manifest("r", tag, OCI_MANIFEST, &m).await;
        assert_oci_error(r, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    }
    assert_eq!(
        s.put_manifest("r", &"t".repeat(128), OCI_MANIFEST, &m)
            .await
            .status(),
        StatusCode::CREATED
    );
}

/// Reading, or deleting, under a reference that is no valid tag or digest finds nothing:
/// 404 `MANIFEST_UNKNOWN`, as upstream's conformance suite asks of `.INVALID_MANIFEST_NAME`
/// (pushing there is 400, above). Other methods stay 405.
#[tokio::test]
async fn invalid_references_are_unknown_to_reads() {
    let s = TestServer::spawn().await;
    s.push_image("r", "v1", b"x").await;
    for reference in [".INVALID_MANIFEST_NAME", "sha256:totallywrong", "-x", "a:b"] {
        let path = format!("/v2/r/manifests/{reference}");
        let r = s.get(&path).await;
        assert_oci_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
        let r = s.head(&path).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "HEAD {path}");
        let r = s.delete(&path).await;
        assert_oci_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
        let r = s.send(Method::PATCH, &path).await;
        assert_oci_error(r, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
    }
    // A bad repository name is still reported as such, whatever the reference.
    let r = s.get("/v2/Bad/manifests/.INVALID_MANIFEST_NAME").await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
    // Nothing was disturbed.
    assert_eq!(s.get_status("/v2/r/manifests/v1").await, StatusCode::OK);
}
