//! Pushing, pulling and deleting manifests (end-3, end-7, end-9).

use reqwest::StatusCode;
use serde_json::json;

use crate::util::*;

#[tokio::test]
async fn push_by_tag_then_pull_by_tag_and_digest_byte_for_byte() {
    let s = TestServer::spawn().await;
    let (m, d) = s.push_image("lib/app", "v1", b"layer").await;
    for reference in ["v1", d.as_str()] {
        let r = s.get(&format!("/v2/lib/app/manifests/{reference}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&r, "docker-content-digest"), d);
        assert_eq!(r.bytes().await.expect("b").as_ref(), &m[..]);
        let r = s.head(&format!("/v2/lib/app/manifests/{reference}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-length"), m.len().to_string());
        assert_eq!(header(&r, "docker-content-digest"), d);
    }
}

#[tokio::test]
async fn push_by_digest_returns_location_and_digest() {
    let s = TestServer::spawn().await;
    let c = s.push_blob("r", b"{}").await;
    // Whitespace and key order are kept: the registry stores the exact bytes.
    let m = format!(
        "{{\n  \"schemaVersion\": 2, \"mediaType\": \"{OCI_MANIFEST}\",\n  \"config\": {{\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"{c}\", \"size\": 2}},\n  \"layers\": []\n}}\n"
    );
    let d = digest(m.as_bytes());
    let r = s.put_manifest("r", &d, OCI_MANIFEST, m.as_bytes()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/r/manifests/{d}"));
    assert_eq!(header(&r, "docker-content-digest"), d);
    let r = s.get(&format!("/v2/r/manifests/{d}")).await;
    assert_eq!(r.text().await.expect("t"), m);
}

#[tokio::test]
async fn missing_manifest_is_404_manifest_unknown() {
    let s = TestServer::spawn().await;
    let d = digest(b"x");
    for path in [
        "/v2/r/manifests/nope".to_owned(),
        format!("/v2/r/manifests/{d}"),
    ] {
        let r = s.get(&path).await;
        assert_oci_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    }
    assert_eq!(
        s.head("/v2/r/manifests/nope").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn manifest_referencing_unknown_blob_is_manifest_blob_unknown() {
    let s = TestServer::spawn().await;
    let c = s.push_blob("r", b"{}").await;
    let layer = s.push_blob("elsewhere", b"layer").await;
    let m = image_manifest(&c, 2, &[(&layer, 5)], None);
    assert_push_refused(&s, ("r", "v1"), OCI_MANIFEST, &m, "MANIFEST_BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn invalid_manifests_are_manifest_invalid() {
    let s = TestServer::spawn().await;
    let c = s.push_blob("r", b"{}").await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not json".to_vec(), OCI_MANIFEST),
        (b"{\"schemaVersion\":1}".to_vec(), OCI_MANIFEST),
        (
            b"{\"schemaVersion\":2,\"layers\":[]}".to_vec(),
            OCI_MANIFEST,
        ),
        // No mediaType field and a Content-Type that is no manifest type.
        (
            strip_media_type(image_manifest(&c, 2, &[], None)),
            "application/x-unknown",
        ),
        // The header contradicts the body's mediaType.
        (image_manifest(&c, 2, &[], None), OCI_INDEX),
    ];
    for (body, ct) in cases {
        assert_push_refused(&s, ("r", "bad"), ct, &body, "MANIFEST_INVALID").await;
    }
}

#[tokio::test]
async fn manifest_over_4_mib_is_413() {
    let s = TestServer::spawn().await;
    let big = vec![b' '; (4 << 20) + 1];
    let r = s.put_manifest("r", "big", OCI_MANIFEST, &big).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn manifest_of_exactly_4_mib_is_accepted() {
    let s = TestServer::spawn().await;
    let c = s.push_blob("r", b"{}").await;
    let mut m = image_manifest(&c, 2, &[], None);
    m.pop();
    let pad = (4 << 20) - m.len() - "\"annotations\":{\"p\":\"\"}}".len() - 1;
    m.extend_from_slice(format!(",\"annotations\":{{\"p\":\"{}\"}}}}", "x".repeat(pad)).as_bytes());
    assert_eq!(m.len(), 4 << 20);
    assert_eq!(
        s.put_manifest("r", "big", OCI_MANIFEST, &m).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn put_by_digest_that_does_not_match_is_digest_invalid() {
    let s = TestServer::spawn().await;
    let c = s.push_blob("r", b"{}").await;
    let m = image_manifest(&c, 2, &[], None);
    let wrong = digest(b"other");
    let r = s.put_manifest("r", &wrong, OCI_MANIFEST, &m).await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn docker_schema2_manifest_and_manifest_list() {
    let s = TestServer::spawn().await;
    let c = s.push_blob("d", b"{}").await;
    let l = s.push_blob("d", b"tar").await;
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": c, "size": 2},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": l, "size": 3}],
    })).expect("json");
    let md = digest(&m);
    assert_eq!(
        s.put_manifest("d", "amd64", DOCKER_MANIFEST, &m)
            .await
            .status(),
        StatusCode::CREATED
    );
    let list = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": DOCKER_LIST,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": md, "size": m.len(), "platform": {"architecture": "amd64", "os": "linux"}}],
    })).expect("json");
    assert_eq!(
        s.put_manifest("d", "latest", DOCKER_LIST, &list)
            .await
            .status(),
        StatusCode::CREATED
    );
    let accept = format!("{DOCKER_MANIFEST}, {DOCKER_LIST}");
    let r = s
        .get_with("/v2/d/manifests/latest", "accept", &accept)
        .await;
    assert_eq!(header(&r, "content-type"), DOCKER_LIST);
    let r = s.get("/v2/d/manifests/amd64").await;
    assert_eq!(header(&r, "content-type"), DOCKER_MANIFEST);
}

#[tokio::test]
async fn image_index_needs_its_children_and_accept_negotiates() {
    let s = TestServer::spawn().await;
    let (m, d) = s.push_image("i", "child", b"l").await;
    let missing = digest(b"missing manifest");
    let index = |ds: &[(&str, usize)]| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": ds.iter().map(|(d, n)| json!({"mediaType": OCI_MANIFEST, "digest": d, "size": n, "platform": {"architecture": "arm64", "os": "linux"}})).collect::<Vec<_>>(),
        })).expect("json")
    };
    let bad = index(&[(&d, m.len()), (&missing, 10)]);
    assert_push_refused(&s, ("i", "multi"), OCI_INDEX, &bad, "MANIFEST_BLOB_UNKNOWN").await;
    let good = index(&[(&d, m.len())]);
    assert_eq!(
        s.put_manifest("i", "multi", OCI_INDEX, &good)
            .await
            .status(),
        StatusCode::CREATED
    );
    let r = s
        .get_with("/v2/i/manifests/multi", "accept", OCI_INDEX)
        .await;
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    // A client that lists only single-image types is not handed an index.
    let r = s
        .get_with("/v2/i/manifests/multi", "accept", OCI_MANIFEST)
        .await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
}

#[tokio::test]
async fn delete_by_tag_keeps_manifest_and_delete_by_digest_removes_tags() {
    let s = TestServer::spawn().await;
    let (m, d) = s.push_image("r", "v1", b"l").await;
    let by_digest = format!("/v2/r/manifests/{d}");
    let r = s.put_manifest("r", "v2", OCI_MANIFEST, &m).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s.delete("/v2/r/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        s.get_status("/v2/r/manifests/v1").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.get_status(&by_digest).await, StatusCode::OK);
    assert_eq!(s.get_json("/v2/r/tags/list").await["tags"], json!(["v2"]));
    assert_eq!(s.delete(&by_digest).await.status(), StatusCode::ACCEPTED);
    assert_eq!(s.get_status(&by_digest).await, StatusCode::NOT_FOUND);
    assert_eq!(
        s.get_status("/v2/r/manifests/v2").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.get_json("/v2/r/tags/list").await["tags"], json!([]));
    for path in [by_digest.as_str(), "/v2/r/manifests/never"] {
        let r = s.delete(path).await;
        assert_oci_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    }
}

#[tokio::test]
async fn retagging_moves_the_tag() {
    let s = TestServer::spawn().await;
    let (_, d1) = s.push_image("r", "latest", b"one").await;
    let (_, d2) = s.push_image("r", "latest", b"two").await;
    assert_ne!(d1, d2);
    assert_eq!(
        header(
            &s.head("/v2/r/manifests/latest").await,
            "docker-content-digest"
        ),
        d2
    );
    assert_eq!(
        s.get_status(&format!("/v2/r/manifests/{d1}")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn conditional_get_by_etag_is_304() {
    let s = TestServer::spawn().await;
    let (_, d) = s.push_image("r", "v1", b"l").await;
    let etag = format!("\"{d}\"");
    let r = s
        .get_with("/v2/r/manifests/v1", "if-none-match", &etag)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
}

/// Pushes `body` under `repo:tag`, asserts that it is refused (`400` with `code`), and
/// that the tag still names nothing.
async fn assert_push_refused(
    s: &TestServer,
    (repo, tag): (&str, &str),
    media_type: &str,
    body: &[u8],
    code: &str,
) {
    let r = s.put_manifest(repo, tag, media_type, body).await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, code).await;
    let r = s.get(&format!("/v2/{repo}/manifests/{tag}")).await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
}

fn strip_media_type(m: Vec<u8>) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&m).expect("json");
    v.as_object_mut().expect("object").remove("mediaType");
    serde_json::to_vec(&v).expect("json")
}
