//! Concurrent writers never lose a tag or leave a tag on a manifest nobody pushed.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_on_one_tag_over_several_rounds() {
    let s = std::sync::Arc::new(TestServer::spawn().await);
    let config = s.push_blob("race", b"{}").await;
    let mut pushed = HashSet::new();
    for round in 0..4u8 {
        let mut tasks = Vec::new();
        for w in 0..16u8 {
            let s = s.clone();
            let config = config.clone();
            tasks.push(tokio::spawn(async move {
                let layer = bytes(64, round * 16 + w);
                let l = s.push_blob("race", &layer).await;
                let m = image_manifest(&config, 2, &[(&l, layer.len())], None);
                let r = s.put_manifest("race", "hot", OCI_MANIFEST, &m).await;
                (r.status(), digest(&m))
            }));
        }
        for t in tasks {
            let (status, d) = t.await.expect("task");
            assert_eq!(status, StatusCode::CREATED, "every write succeeds");
            pushed.insert(d);
        }
        let r = s.head("/v2/race/manifests/hot").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            pushed.contains(&header(&r, "docker-content-digest")),
            "tag on a pushed manifest"
        );
        let tags: Value = s
            .get("/v2/race/tags/list")
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(tags["tags"], serde_json::json!(["hot"]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_of_distinct_tags_all_land_in_the_list() {
    let s = std::sync::Arc::new(TestServer::spawn().await);
    let (m, _) = s.push_image("many", "seed", b"l").await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (s, m) = (s.clone(), m.clone());
        tasks.push(tokio::spawn(async move {
            s.put_manifest("many", &format!("t{i:02}"), OCI_MANIFEST, &m)
                .await
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), StatusCode::CREATED);
    }
    let tags: Value = s
        .get("/v2/many/tags/list")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(tags["tags"].as_array().map(Vec::len), Some(33));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_directory_lose_no_tag() {
    let mut a = TestServer::spawn().await;
    let dir = a.keep_dir().expect("dir");
    let b = TestServer::spawn_on(&a.root).await;
    let (m, _) = a.push_image("shared", "seed", b"l").await;
    let mut tasks = Vec::new();
    let servers = [std::sync::Arc::new(a), std::sync::Arc::new(b)];
    for i in 0..32 {
        let (s, m) = (servers[i % 2].clone(), m.clone());
        tasks.push(tokio::spawn(async move {
            s.put_manifest("shared", &format!("p{i:02}"), OCI_MANIFEST, &m)
                .await
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), StatusCode::CREATED);
    }
    let tags: Value = servers[1]
        .get("/v2/shared/tags/list")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(tags["tags"].as_array().map(Vec::len), Some(33));
    drop(servers);
    drop(dir);
}
