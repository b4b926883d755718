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
    let a = TestServer::spawn().await;
    let b = a.sharing(&[]).await;
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_on_one_tag_split_across_two_processes() {
    let a = TestServer::spawn().await;
    let b = a.sharing(&[]).await;
    let config = a.push_blob("split", b"{}").await;
    let servers = [std::sync::Arc::new(a), std::sync::Arc::new(b)];
    let mut pushed = HashSet::new();
    for round in 0..3u8 {
        let mut tasks = Vec::new();
        for w in 0..16u8 {
            let s = servers[usize::from(w % 2)].clone();
            let config = config.clone();
            tasks.push(tokio::spawn(async move {
                let layer = bytes(64, 100 + round * 16 + w);
                let l = s.push_blob("split", &layer).await;
                let m = image_manifest(&config, 2, &[(&l, layer.len())], None);
                let tag = format!("t{}", w % 4);
                let r = s.put_manifest("split", &tag, OCI_MANIFEST, &m).await;
                (r.status(), tag, digest(&m))
            }));
        }
        for t in tasks {
            let (status, tag, d) = t.await.expect("task");
            assert_eq!(status, StatusCode::CREATED, "every write succeeds");
            pushed.insert((tag, d));
        }
        for server in &servers {
            let tags: Value = server
                .get("/v2/split/tags/list")
                .await
                .json()
                .await
                .expect("json");
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
