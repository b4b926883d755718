//! `cargohold mirror sync` from a real upstream (another `cargohold serve`) into the store
//! of a running server: the tags a filter selects land with the upstream's digests, a
//! second run transfers nothing, a moved tag is followed, a missing upstream repository
//! fails the job (docs/mirror-sync.md).

use std::collections::BTreeMap;
use std::io::Write as _;

use crate::util::*;

/// A configuration naming `upstream` as `up`, with `jobs` (`[[mirror.sync]]` entries).
fn config(upstream: &TestServer, jobs: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    write!(
        f,
        "[[mirror.upstream]]\nname = \"up\"\nurl = \"{}\"\n{jobs}",
        upstream.base
    )
    .expect("write config");
    f
}

fn sync(mirror: &TestServer, config: &tempfile::NamedTempFile) -> (bool, String) {
    let path = config.path().display().to_string();
    mirror.command_status(&["mirror", "sync", "--quiet", "--config", &path])
}

async fn mirrored_digest(mirror: &TestServer, repo: &str, tag: &str) -> String {
    let r = mirror
        .get_with(
            &format!("/v2/{repo}/manifests/{tag}"),
            "accept",
            OCI_MANIFEST,
        )
        .await;
    assert_eq!(r.status(), 200, "{repo}:{tag}");
    header(&r, "docker-content-digest")
}

#[tokio::test]
async fn sync_copies_the_selected_tags_and_a_second_run_transfers_nothing() {
    let up = TestServer::spawn().await;
    let mut digests = BTreeMap::new();
    for (i, tag) in ["1.0", "v1.1", "2.0", "latest"].into_iter().enumerate() {
        let (_, d) = up
            .push_image("lib/app", tag, &bytes(4096 + i, i as u8))
            .await;
        digests.insert(tag, d);
    }
    let mirror = TestServer::spawn().await;
    let cfg = config(
        &up,
        "[[mirror.sync]]\nupstream = \"up\"\nrepository = \"lib/app\"\nsemver = \">=1, <2\"\n",
    );
    let (ok, out) = sync(&mirror, &cfg);
    assert!(ok, "{out}");
    assert!(
        out.contains(
            "2 tags (2 copied, 0 unchanged, 0 failed), 2 manifests, 0 blobs linked, 3 blobs"
        ),
        "{out}"
    );
    let tags = mirror.get_json("/v2/up/lib/app/tags/list").await;
    let mut tags: Vec<&str> = tags["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, ["1.0", "v1.1"]);
    for tag in ["1.0", "v1.1"] {
        assert_eq!(
            mirrored_digest(&mirror, "up/lib/app", tag).await,
            digests[tag]
        );
    }
    let (ok, again) = sync(&mirror, &cfg);
    assert!(ok, "{again}");
    assert!(
        again.contains("2 tags (0 copied, 2 unchanged, 0 failed), 0 manifests, 0 blobs linked, 0 blobs, 0 bytes transferred"),
        "{again}"
    );
}

#[tokio::test]
async fn a_tag_moved_upstream_is_moved_in_the_mirror() {
    let up = TestServer::spawn().await;
    let (_, first) = up.push_image("app", "v1", b"first layer").await;
    let mirror = TestServer::spawn().await;
    let cfg = config(
        &up,
        "[[mirror.sync]]\nupstream = \"up\"\nrepository = \"app\"\ntags = '^v'\n",
    );
    assert!(sync(&mirror, &cfg).0);
    assert_eq!(mirrored_digest(&mirror, "up/app", "v1").await, first);
    let (_, second) = up.push_image("app", "v1", b"second layer").await;
    let (ok, out) = sync(&mirror, &cfg);
    assert!(ok && out.contains("1 copied"), "{out}");
    assert_eq!(mirrored_digest(&mirror, "up/app", "v1").await, second);
    // The earlier manifest stays by digest: nothing is deleted by a sync.
    let r = mirror
        .get_with(
            &format!("/v2/up/app/manifests/{first}"),
            "accept",
            OCI_MANIFEST,
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_missing_upstream_repository_fails_the_job() {
    let up = TestServer::spawn().await;
    let mirror = TestServer::spawn().await;
    let cfg = config(
        &up,
        "[[mirror.sync]]\nupstream = \"up\"\nrepository = \"nothing/here\"\n",
    );
    let (ok, out) = sync(&mirror, &cfg);
    assert!(!ok, "{out}");
    assert!(out.contains("has no repository nothing/here"), "{out}");
}
