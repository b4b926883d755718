//! Blob downloads by redirect on S3: the API answers `307` to a presigned URL (or a CDN
//! URL), and the bytes, ranges included, come from the bucket.

use reqwest::StatusCode;

use crate::util::*;

/// The S3 flags of a fresh store, with redirects on (the generic suite proxies).
async fn s3_server(extra: &[&str]) -> Option<TestServer> {
    if !s3_backend() {
        eprintln!("skipped: redirects need CARGOHOLD_TEST_BACKEND=s3");
        return None;
    }
    let mut args = vec!["--blob-delivery", "redirect"];
    args.extend_from_slice(extra);
    Some(TestServer::spawn_with(&args).await)
}

#[tokio::test]
async fn blob_get_redirects_to_a_presigned_url_that_serves_ranges() {
    let Some(s) = s3_server(&[]).await else {
        return;
    };
    let data = bytes(100_000, 21);
    let d = s.push_blob("r", &data).await;
    let r = s.get(&format!("/v2/r/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = header(&r, "location");
    assert!(location.contains("X-Amz-Signature"), "{location}");
    let follow = reqwest::Client::new();
    let body = follow.get(&location).send().await.expect("GET presigned");
    assert_eq!(body.bytes().await.expect("b").as_ref(), &data[..]);
    let part = follow
        .get(&location)
        .header("range", "bytes=100-199")
        .send()
        .await
        .expect("GET");
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.expect("b").as_ref(), &data[100..200]);
    // HEAD is answered by the API itself, and other repositories still get 404.
    let h = s.head(&format!("/v2/r/blobs/{d}")).await;
    assert_eq!(h.status(), StatusCode::OK);
    assert_eq!(header(&h, "content-length"), "100000");
    let other = s.get(&format!("/v2/other/blobs/{d}")).await;
    assert_oci_error(other, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn cdn_mode_redirects_to_the_public_base_url() {
    let Some(s) = s3_server(&["--public-blob-url", "https://cdn.example.test/"]).await else {
        return;
    };
    let d = s.push_blob("r", b"cdn bytes").await;
    let r = s.get(&format!("/v2/r/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    let hex = d.trim_start_matches("sha256:");
    let location = header(&r, "location");
    assert!(
        location.starts_with("https://cdn.example.test/"),
        "{location}"
    );
    assert!(
        location.ends_with(&format!("/blobs/sha256/{hex}")),
        "{location}"
    );
}
