//! The browse documents: written by pushes, updated by deletes, served at `/index/...` with
//! the UI at `/`, split into pages as lists grow, and rebuilt by `cargohold index rebuild`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::util::*;

const CONFIG: &[u8] = br#"{"os":"linux","architecture":"arm64","created":"2026-11-01T00:00:00Z","config":{"Env":["PATH=/bin","TOKEN=secret"],"Cmd":["sh"]},"history":[{"created_by":"ADD rootfs /"}]}"#;

/// Pushes an image whose config is a real image config; its manifest and digest.
async fn push_with_config(
    s: &TestServer,
    repo: &str,
    tag: &str,
    layer: &[u8],
) -> (Vec<u8>, String) {
    let config = s.push_blob(repo, CONFIG).await;
    let layer_d = s.push_blob(repo, layer).await;
    let m = image_manifest(&config, CONFIG.len(), &[(&layer_d, layer.len())], None);
    let r = s.put_manifest(repo, tag, OCI_MANIFEST, &m).await;
    assert_status(r, StatusCode::CREATED, "push").await;
    let d = digest(&m);
    (m, d)
}

/// Every entry of a paged list, each page's within its range, as the UI reads them.
async fn list(s: &TestServer, directory: &str) -> (Value, Vec<Value>) {
    let dir = s.get_json(&format!("{directory}.json")).await;
    // Until a list's first page splits, its directory need not exist: one page, all keys.
    let first = serde_json::json!([{"id": "00000000", "from": ""}]);
    let pages = dir["pages"]
        .as_array()
        .unwrap_or(first.as_array().expect("array"))
        .clone();
    let mut all = Vec::new();
    for (i, p) in pages.iter().enumerate() {
        let page = s
            .get_json(&format!(
                "{directory}/{}.json",
                p["id"].as_str().unwrap_or("")
            ))
            .await;
        let from = p["from"].as_str().unwrap_or("");
        let until = pages.get(i + 1).and_then(|n| n["from"].as_str());
        for e in page["entries"].as_array().cloned().unwrap_or_default() {
            let key = e["tag"].as_str().or(e.as_str()).unwrap_or("").to_owned();
            if key.as_str() >= from && until.is_none_or(|u| key.as_str() < u) {
                all.push(e);
            }
        }
    }
    (dir, all)
}

#[tokio::test]
async fn a_push_writes_browse_documents_and_a_delete_updates_them() {
    let s = TestServer::spawn().await;
    let (m, d) = push_with_config(&s, "team/app", "v1", b"layer bytes").await;
    let (dir, tags) = list(&s, "/index/team/app/_browse/tags").await;
    assert_eq!(dir["repository"]["tags"], 1);
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0]["digest"], d.as_str());
    let total = m.len() + CONFIG.len() + b"layer bytes".len();
    assert_eq!(tags[0]["size"], total);
    assert_eq!(tags[0]["created"], "2026-11-01T00:00:00Z");

    let detail = s
        .get_json(&format!("/index/team/app/_browse/manifests/{d}.json"))
        .await;
    assert_eq!(detail["config"]["platform"], "linux/arm64");
    assert_eq!(
        detail["config"]["env"],
        serde_json::json!(["PATH", "TOKEN"])
    );
    assert_eq!(detail["layers"][0]["size"], 11);
    assert_eq!(detail["tags"], serde_json::json!(["v1"]));

    // A signature (any manifest with a subject) is counted on the tag it signs.
    let config = s.push_blob("team/app", b"{}").await;
    let sig = image_manifest(&config, 2, &[], Some((&d, m.len())));
    let r = s
        .put_manifest("team/app", &digest(&sig), OCI_MANIFEST, &sig)
        .await;
    assert_status(r, StatusCode::CREATED, "referrer").await;
    let (_, tags) = list(&s, "/index/team/app/_browse/tags").await;
    assert_eq!(
        tags[0]["referrers"]["application/vnd.oci.image.config.v1+json"],
        1
    );

    let (_, names) = list(&s, "/index/_browse/catalog").await;
    assert_eq!(names, [Value::from("team/app")]);
    let (_, terms) = list(&s, "/index/_browse/search").await;
    assert!(terms.contains(&Value::from("app team/app")), "{terms:?}");

    let r = s.delete("/v2/team/app/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let (dir, tags) = list(&s, "/index/team/app/_browse/tags").await;
    assert_eq!(dir["repository"]["tags"], 0);
    assert!(tags.is_empty());
    let r = s
        .delete(&format!("/v2/team/app/manifests/{}", digest(&sig)))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = s.delete(&format!("/v2/team/app/manifests/{d}")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let path = format!("/index/team/app/_browse/manifests/{d}.json");
    assert_eq!(s.get_status(&path).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_ui_and_documents_are_served_with_cache_rules_and_cors() {
    let s = TestServer::spawn().await;
    s.push_image("r", "latest", b"x").await;
    let page = s.get("/").await;
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert!(page.text().await.unwrap_or_default().contains("/ui/app.js"));
    assert_eq!(s.get_status("/ui/app.js").await, StatusCode::OK);
    let doc = s.get("/index/r/_browse/tags.json").await;
    assert_eq!(header(&doc, "access-control-allow-origin"), "*");
    assert_eq!(
        header(&doc, "cache-control"),
        "public, max-age=0, must-revalidate"
    );
    let etag = header(&doc, "etag");
    let again = s
        .get_with("/index/r/_browse/tags.json", "if-none-match", &etag)
        .await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(s.get_status("/config.json").await, StatusCode::OK);
    // Only browse documents: never a blob link, a manifest file or an upload.
    for path in [
        "/index/r/_tags/list",
        "/index/r/_manifests/latest",
        "/index/_catalog",
    ] {
        assert_eq!(s.get_status(path).await, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn tag_pages_split_as_a_repository_grows() {
    let s = TestServer::spawn().await;
    let (m, _) = s.push_image("many", "t000", b"l").await;
    for i in 1..250 {
        let r = s
            .put_manifest("many", &format!("t{i:03}"), OCI_MANIFEST, &m)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let (dir, tags) = list(&s, "/index/many/_browse/tags").await;
    assert!(dir["pages"].as_array().map_or(0, Vec::len) >= 3, "{dir}");
    assert_eq!(dir["repository"]["tags"], 250);
    let names: Vec<&str> = tags.iter().filter_map(|t| t["tag"].as_str()).collect();
    let want: Vec<String> = (0..250).map(|i| format!("t{i:03}")).collect();
    assert_eq!(names, want);
}

#[tokio::test]
async fn index_rebuild_rewrites_lost_browse_documents() {
    let s = TestServer::spawn().await;
    let Some(root) = s.fs_root() else {
        return; // documents are removed directly on the filesystem store
    };
    let (_, d) = push_with_config(&s, "a/b", "v1", b"one").await;
    s.push_image("c", "latest", b"two").await;
    for f in ["index/a/b/_browse", "index/_browse"] {
        std::fs::remove_dir_all(root.join(f)).expect("remove");
    }
    let (ok, out) = s.command_status(&["index", "check"]);
    assert!(
        !ok && out.contains("a/b: browse tag pages are out of date"),
        "{out}"
    );
    assert!(
        out.contains("browse catalog pages are out of date"),
        "{out}"
    );
    let (ok, out) = s.command_status(&["index", "rebuild"]);
    assert!(ok, "{out}");
    let (_, tags) = list(&s, "/index/a/b/_browse/tags").await;
    assert_eq!(tags[0]["digest"], d.as_str());
    let (_, names) = list(&s, "/index/_browse/catalog").await;
    assert_eq!(names, [Value::from("a/b"), Value::from("c")]);
    let again = s.command(&["index", "rebuild"]);
    assert!(again.contains(" 0 findings"), "{again}");
}
