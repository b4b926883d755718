//! `cargohold index check` finds each damage done to an index on purpose, and
//! `cargohold index rebuild` repairs it, idempotently, from the manifests and tags.

use reqwest::StatusCode;

use crate::util::*;

/// Pushes two tags, a referrer and a second repository; returns the server, the image's
/// manifest digest and a layer digest.
async fn populated() -> (TestServer, String, String) {
    let s = TestServer::spawn().await;
    let (m, d) = s.push_image("team/app", "v1", b"layer one").await;
    let r = s.put_manifest("team/app", "v2", OCI_MANIFEST, &m).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let config = s.push_blob("team/app", b"{}").await;
    let sig = image_manifest(&config, 2, &[], Some((&d, m.len())));
    let r = s
        .put_manifest("team/app", &digest(&sig), OCI_MANIFEST, &sig)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    s.push_image("other", "latest", b"layer two").await;
    let layer = digest(b"layer one");
    (s, d, layer)
}

fn check(s: &TestServer) -> (bool, String) {
    s.command_status(&["index", "check"])
}

/// Damage, then: check reports `expect` (and fails), rebuild repairs it, check is clean,
/// a second rebuild changes nothing.
fn assert_found_and_repaired(s: &TestServer, what: &str, expect: &str) {
    let (ok, out) = check(s);
    assert!(!ok, "{what}: check passed: {out}");
    assert!(out.contains(expect), "{what}: check says {out}");
    let (ok, out) = s.command_status(&["index", "rebuild"]);
    assert!(ok, "{what}: rebuild failed: {out}");
    let (ok, out) = check(s);
    assert!(ok, "{what}: still inconsistent after rebuild: {out}");
    let again = s.command(&["index", "rebuild"]);
    assert!(
        again.contains(" 0 findings"),
        "{what}: second rebuild: {again}"
    );
}

#[tokio::test]
async fn an_intact_index_checks_clean() {
    let (s, _, _) = populated().await;
    let (ok, out) = check(&s);
    assert!(ok, "{out}");
    assert!(out.contains("2 repositories, 0 findings"), "{out}");
}

#[tokio::test]
async fn an_unlinked_layer_is_found_and_relinked() {
    let (s, _, layer) = populated().await;
    let r = s.delete(&format!("/v2/team/app/blobs/{layer}")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_found_and_repaired(&s, "unlinked layer", &format!("names {layer}"));
    assert_eq!(s.blob_bytes("team/app", &layer).await, b"layer one");
}

#[tokio::test]
async fn damaged_files_are_found_and_rebuilt() {
    let (s, d, _) = populated().await;
    let Some(root) = s.fs_root() else {
        return; // files are damaged directly on the filesystem store
    };
    let repo = root.join("index/team/app");
    let damages: [Damage; 6] = [
        (
            "tag list deleted",
            Box::new(|| remove(&repo.join("_tags/list"))),
            "team/app:v1 is missing from the tag list".into(),
        ),
        (
            "tag list not JSON",
            Box::new(|| write(&repo.join("_tags/list"), b"{not json")),
            "_tags/list is not valid JSON".into(),
        ),
        (
            "ghost tag listed",
            Box::new(|| {
                let list = br#"{"name":"team/app","tags":["ghost","v1","v2"]}"#;
                write(&repo.join("_tags/list"), list)
            }),
            "names ghost, which does not exist".into(),
        ),
        (
            "manifest by digest deleted",
            Box::new(|| remove(&repo.join(format!("_manifests/{d}")))),
            format!("names {d}, which is not stored by digest"),
        ),
        (
            "referrers deleted",
            Box::new(|| remove(&repo.join(format!("_referrers/{d}")))),
            format!("referrers of {d} miss"),
        ),
        (
            "catalog emptied",
            Box::new(|| write(&root.join("index/_catalog"), br#"{"repositories":[]}"#)),
            "team/app is missing from the catalog".into(),
        ),
    ];
    for (what, damage, expect) in &damages {
        damage();
        assert_found_and_repaired(&s, what, expect);
    }
    // What the API serves is whole again.
    let tags = s.get_json("/v2/team/app/tags/list").await;
    assert_eq!(tags["tags"], serde_json::json!(["v1", "v2"]));
    let referrers = s.get_json(&format!("/v2/team/app/referrers/{d}")).await;
    assert_eq!(referrers["manifests"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        s.get_status(&format!("/v2/team/app/manifests/{d}")).await,
        StatusCode::OK
    );
}

/// Pushes record each manifest's digest and media type in its sidecar (what static hosts
/// serve from); a format 1 store lacks the digest: check finds each such manifest, and
/// rebuild records it (the migration to format 2, docs/index-format.md).
#[tokio::test]
async fn manifests_without_a_recorded_digest_are_found_and_recorded() {
    let (s, d, _) = populated().await;
    let Some(root) = s.fs_root() else {
        return; // the sidecars are the filesystem store's
    };
    let meta = root.join(".meta/index/team/app/_manifests");
    let path = |name: &str| meta.join(format!("{name}.json"));
    let sidecar = |name: &str| -> serde_json::Value {
        let bytes = std::fs::read(path(name)).expect("sidecar");
        serde_json::from_slice(&bytes).expect("sidecar JSON")
    };
    for name in ["v1", "v2", d.as_str()] {
        assert_eq!(sidecar(name)["digest"], d.as_str(), "{name}");
        assert_eq!(sidecar(name)["content_type"], OCI_MANIFEST, "{name}");
        let mut format1 = sidecar(name);
        format1.as_object_mut().map(|o| o.remove("digest"));
        write(&path(name), &serde_json::to_vec(&format1).expect("JSON"));
    }
    let expect = "team/app/manifests/v1: no media type or digest recorded with it";
    assert_found_and_repaired(&s, "sidecars without a digest", expect);
    for name in ["v1", "v2", d.as_str()] {
        assert_eq!(sidecar(name)["digest"], d.as_str(), "{name} after rebuild");
    }
}

/// What is damaged, how, and what `index check` then says.
type Damage<'a> = (&'static str, Box<dyn Fn() + 'a>, String);

fn remove(path: &std::path::Path) {
    std::fs::remove_file(path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
}

fn write(path: &std::path::Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
