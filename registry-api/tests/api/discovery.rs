//! Content discovery: tags (end-8a/b), catalog, referrers (end-12a/b).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::*;

async fn tag_all(s: &TestServer, repo: &str, tags: &[&str]) {
    let (m, _) = s.push_image(repo, tags[0], b"l").await;
    for t in &tags[1..] {
        assert_eq!(
            s.put_manifest(repo, t, OCI_MANIFEST, &m).await.status(),
            StatusCode::CREATED
        );
    }
}

#[tokio::test]
async fn tags_are_listed_in_lexical_order() {
    let s = TestServer::spawn().await;
    tag_all(&s, "r", &["b", "a", "c10", "c2", "Z"]).await;
    let v: Value = s.get_json("/v2/r/tags/list").await;
    assert_eq!(
        v,
        json!({"name": "r", "tags": ["Z", "a", "b", "c10", "c2"]})
    );
}

#[tokio::test]
async fn tags_paginate_with_n_last_and_link() {
    let s = TestServer::spawn().await;
    tag_all(&s, "r", &["t1", "t2", "t3", "t4", "t5"]).await;
    let r = s.get("/v2/r/tags/list?n=2").await;
    assert_eq!(
        header(&r, "link"),
        "</v2/r/tags/list?n=2&last=t2>; rel=\"next\""
    );
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["tags"], json!(["t1", "t2"]));
    let v: Value = s.get_json("/v2/r/tags/list?n=2&last=t2").await;
    assert_eq!(v["tags"], json!(["t3", "t4"]));
    let r = s.get("/v2/r/tags/list?n=2&last=t4").await;
    assert_eq!(header(&r, "link"), "");
    assert_eq!(
        r.json::<Value>().await.expect("json")["tags"],
        json!(["t5"])
    );
    let v: Value = s.get_json("/v2/r/tags/list?last=t3").await;
    assert_eq!(v["tags"], json!(["t4", "t5"]));
    let r = s.get("/v2/r/tags/list?n=0").await;
    assert_eq!(header(&r, "link"), "");
    assert_eq!(r.json::<Value>().await.expect("json")["tags"], json!([]));
    let r = s.get("/v2/r/tags/list?n=5").await;
    assert_eq!(header(&r, "link"), "");
    assert_eq!(
        r.json::<Value>().await.expect("json")["tags"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
}

#[tokio::test]
async fn tags_of_unknown_repository_is_404_name_unknown() {
    let s = TestServer::spawn().await;
    let r = s.get("/v2/nothing/tags/list").await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;
    let r = s.get("/v2/r/tags/list?n=abc").await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, "UNSUPPORTED").await;
}

#[tokio::test]
async fn catalog_lists_and_paginates_repositories() {
    let s = TestServer::spawn().await;
    for r in ["b", "a/x", "c"] {
        s.push_image(r, "v1", b"l").await;
    }
    let v: Value = s.get_json("/v2/_catalog").await;
    assert_eq!(v, json!({"repositories": ["a/x", "b", "c"]}));
    let r = s.get("/v2/_catalog?n=1").await;
    assert_eq!(
        header(&r, "link"),
        "</v2/_catalog?n=1&last=a/x>; rel=\"next\""
    );
    let v: Value = s.get_json("/v2/_catalog?n=5&last=a/x").await;
    assert_eq!(v["repositories"], json!(["b", "c"]));
}

/// Pushes an artifact manifest with `subject`; returns (digest, size).
async fn push_referrer(
    s: &TestServer,
    repo: &str,
    subject: (&str, usize),
    artifact_type: &str,
    annotation: &str,
) -> (String, usize, String) {
    let empty = s.push_blob(repo, b"{}").await;
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.0, "size": subject.1},
        "annotations": {"note": annotation},
    }))
    .expect("json");
    let d = digest(&body);
    let r = s.put_manifest(repo, &d, OCI_MANIFEST, &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let oci_subject = header(&r, "oci-subject");
    (d, body.len(), oci_subject)
}

#[tokio::test]
async fn referrers_are_listed_filtered_and_removed() {
    let s = TestServer::spawn().await;
    let (m, subject) = s.push_image("r", "v1", b"l").await;
    let (sig, sig_len, oci_subject) =
        push_referrer(&s, "r", (&subject, m.len()), "application/x-sig", "s").await;
    assert_eq!(
        oci_subject, subject,
        "OCI-Subject names the processed subject"
    );
    let (sbom, _, _) = push_referrer(&s, "r", (&subject, m.len()), "application/x-sbom", "b").await;

    let r = s.get(&format!("/v2/r/referrers/{subject}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    let entries = v["manifests"].as_array().expect("manifests");
    assert_eq!(entries.len(), 2);
    let e = entries
        .iter()
        .find(|e| e["digest"] == sig.as_str())
        .expect("sig listed");
    assert_eq!(e["artifactType"], "application/x-sig");
    assert_eq!(e["size"], sig_len);
    assert_eq!(e["mediaType"], OCI_MANIFEST);
    assert_eq!(e["annotations"], json!({"note": "s"}));

    let r = s
        .get(&format!(
            "/v2/r/referrers/{subject}?artifactType=application/x-sbom"
        ))
        .await;
    assert_eq!(header(&r, "oci-filters-applied"), "artifactType");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["manifests"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["manifests"][0]["digest"], sbom.as_str());

    let r = s.delete(&format!("/v2/r/manifests/{sig}")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v: Value = s.get_json(&format!("/v2/r/referrers/{subject}")).await;
    assert_eq!(v["manifests"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn referrers_of_a_subject_that_does_not_exist_yet() {
    let s = TestServer::spawn().await;
    let ghost = digest(b"pushed later");
    push_referrer(&s, "r", (&ghost, 100), "application/x-sig", "early").await;
    let v: Value = s.get_json(&format!("/v2/r/referrers/{ghost}")).await;
    assert_eq!(v["manifests"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn referrers_without_any_is_an_empty_index_and_bad_digest_is_400() {
    let s = TestServer::spawn().await;
    let r = s.get(&format!("/v2/r/referrers/{}", digest(b"none"))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["manifests"], json!([]));
    let r = s.get("/v2/r/referrers/sha256:bad").await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn index_artifact_type_is_omitted_when_missing() {
    let s = TestServer::spawn().await;
    let (m, subject) = s.push_image("r", "v1", b"l").await;
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": m.len()},
    }))
    .expect("json");
    let r = s.put_manifest("r", &digest(&body), OCI_INDEX, &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = s.get_json(&format!("/v2/r/referrers/{subject}")).await;
    assert_eq!(v["manifests"][0]["mediaType"], OCI_INDEX);
    assert!(v["manifests"][0].get("artifactType").is_none());
}
