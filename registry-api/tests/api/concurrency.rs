//! Concurrent writers never lose a tag or leave a tag on a manifest nobody pushed.

use std::collections::HashSet;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;

use crate::util::*;

/// One round of 16 writers at once, writer `w` on `servers[w % len]`: each pushes a layer
/// of its own (seed `seed + w`) and a manifest on it under `tag(w)`. Asserts that every
/// write succeeds; returns the (tag, manifest digest) pairs written.
async fn sixteen_writers(
    servers: &[Arc<TestServer>],
    repo: &'static str,
    config: &str,
    seed: u8,
    tag: fn(u8) -> String,
) -> Vec<(String, String)> {
    let mut tasks = Vec::new();
    for w in 0..16u8 {
        let s = servers[usize::from(w) % servers.len()].clone();
        let config = config.to_owned();
        tasks.push(tokio::spawn(async move {
            let layer = bytes(64, seed + w);
            let l = s.push_blob(repo, &layer).await;
            let m = image_manifest(&config, 2, &[(&l, layer.len())], None);
            let tag = tag(w);
            let r = s.put_manifest(repo, &tag, OCI_MANIFEST, &m).await;
            (r.status(), tag, digest(&m))
        }));
    }
    let mut written = Vec::new();
    for t in tasks {
        let (status, tag, d) = t.await.expect("task");
        assert_eq!(status, StatusCode::CREATED, "every write succeeds");
        written.push((tag, d));
    }
    written
}

/// Puts manifest `m` under 32 tags at once (`{prefix}00` to `{prefix}31`), round-robin
/// over `servers`; asserts that every push is `201`.
async fn thirty_two_tags_at_once(
    servers: &[Arc<TestServer>],
    repo: &'static str,
    prefix: &'static str,
    m: &[u8],
) {
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (s, m) = (servers[i % servers.len()].clone(), m.to_vec());
        tasks.push(tokio::spawn(async move {
            s.put_manifest(repo, &format!("{prefix}{i:02}"), OCI_MANIFEST, &m)
                .await
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), StatusCode::CREATED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_on_one_tag_over_several_rounds() {
    let servers = [Arc::new(TestServer::spawn().await)];
    let s = &servers[0];
    let config = s.push_blob("race", b"{}").await;
    let mut pushed = HashSet::new();
    for round in 0..4u8 {
        let written = sixteen_writers(&servers, "race", &config, round * 16, |_| "hot".into());
        pushed.extend(written.await.into_iter().map(|(_, d)| d));
        let r = s.head("/v2/race/manifests/hot").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            pushed.contains(&header(&r, "docker-content-digest")),
            "tag on a pushed manifest"
        );
        let tags: Value = s.get_json("/v2/race/tags/list").await;
        assert_eq!(tags["tags"], serde_json::json!(["hot"]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_of_distinct_tags_all_land_in_the_list() {
    let servers = [Arc::new(TestServer::spawn().await)];
    let s = &servers[0];
    let (m, _) = s.push_image("many", "seed", b"l").await;
    thirty_two_tags_at_once(&servers, "many", "t", &m).await;
    let tags: Value = s.get_json("/v2/many/tags/list").await;
    assert_eq!(tags["tags"].as_array().map(Vec::len), Some(33));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_directory_lose_no_tag() {
    let a = TestServer::spawn().await;
    let b = a.sharing(&[]).await;
    let (m, _) = a.push_image("shared", "seed", b"l").await;
    let servers = [Arc::new(a), Arc::new(b)];
    thirty_two_tags_at_once(&servers, "shared", "p", &m).await;
    let tags: Value = servers[1].get_json("/v2/shared/tags/list").await;
    assert_eq!(tags["tags"].as_array().map(Vec::len), Some(33));
    drop(servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_on_one_tag_split_across_two_processes() {
    let a = TestServer::spawn().await;
    let b = a.sharing(&[]).await;
    let config = a.push_blob("split", b"{}").await;
    let servers = [Arc::new(a), Arc::new(b)];
    let mut pushed = HashSet::new();
    for round in 0..3u8 {
        let tag = |w: u8| format!("t{}", w % 4);
        pushed.extend(sixteen_writers(&servers, "split", &config, 100 + round * 16, tag).await);
        for server in &servers {
            let tags: Value = server.get_json("/v2/split/tags/list").await;
            assert_eq!(
                tags["tags"],
                serde_json::json!(["t0", "t1", "t2", "t3"]),
                "no tag lost"
            );
            for t in 0..4 {
                let tag = format!("t{t}");
                let r = server.head(&format!("/v2/split/manifests/{tag}")).await;
                let d = header(&r, "docker-content-digest");
                assert!(pushed.contains(&(tag, d)), "tag on a manifest pushed to it");
            }
        }
    }
}
