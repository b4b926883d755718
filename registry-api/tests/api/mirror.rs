//! The pull-through cache: a second `cargohold serve` is the upstream. Misses are fetched
//! once and cached, by path prefix and by `?ns=`; cached tags survive a failing upstream
//! and follow a moved tag after their TTL; mirrored repositories refuse pushes.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::auth::{as_user, auth_server};
use crate::util::*;

/// A mirror of `upstream` named `docker.io` (alias `registry-1.docker.io`), with extra
/// `[[mirror.upstream]]` lines; its config under `dir`.
async fn mirror_of(upstream: &TestServer, dir: &Path, extra: &str) -> TestServer {
    let config = dir.join("mirror.toml");
    std::fs::write(
        &config,
        format!(
            "[[mirror.upstream]]\nname = \"docker.io\"\naliases = [\"registry-1.docker.io\"]\n\
             url = \"{}\"\nrepositories = [\"library/*\", \"private/*\"]\n{extra}\n",
            upstream.base
        ),
    )
    .expect("config");
    TestServer::spawn_with(&["--config", &config.display().to_string()]).await
}

/// Pulls `reference` of `repo` (with `query`, e.g. `?ns=docker.io`) from `s` as a client
/// would: the manifest, then its config and layers, each checked against its digest.
/// Returns the manifest's digest.
async fn pull(s: &TestServer, repo: &str, reference: &str, query: &str) -> String {
    let r = s
        .get(&format!("/v2/{repo}/manifests/{reference}{query}"))
        .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "manifest {repo}:{reference}{query}"
    );
    let manifest_digest = header(&r, "docker-content-digest");
    let body = r.bytes().await.expect("manifest body");
    assert_eq!(digest(&body), manifest_digest);
    let m: serde_json::Value = serde_json::from_slice(&body).expect("manifest json");
    let layers = m["layers"].as_array().cloned().unwrap_or_default();
    for d in std::iter::once(&m["config"]).chain(&layers) {
        let d = d["digest"].as_str().expect("digest");
        let r = s.get(&format!("/v2/{repo}/blobs/{d}{query}")).await;
        assert_eq!(r.status(), StatusCode::OK, "blob {d}");
        assert_eq!(digest(&r.bytes().await.expect("blob")), d);
    }
    manifest_digest
}

#[tokio::test]
async fn misses_are_fetched_and_cached_by_prefix_and_by_ns() {
    let upstream = TestServer::spawn().await;
    let (_, d) = upstream
        .push_image("library/app", "v1", &bytes(300_000, 1))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mirror = mirror_of(&upstream, dir.path(), "").await;
    assert_eq!(pull(&mirror, "docker.io/library/app", "v1", "").await, d);
    // containerd's form: the repository as the image names it, the registry in `ns`.
    let r = mirror
        .get("/v2/library/app/manifests/v1?ns=registry-1.docker.io")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "oci-namespace"), "registry-1.docker.io");
    assert_eq!(pull(&mirror, "library/app", &d, "?ns=docker.io").await, d);
    // Cached: the index now holds it under the prefixed name, static hosts serve it.
    let listed = mirror.get_json("/v2/docker.io/library/app/tags/list").await;
    assert_eq!(listed["tags"], serde_json::json!(["v1"]));
    // Unknown upstream, repositories the upstream's list leaves out, another registry's ns.
    let r = mirror.get("/v2/docker.io/library/nope/manifests/v1").await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    let r = mirror.get("/v2/docker.io/other/app/manifests/v1").await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    let r = mirror.get("/v2/library/app/manifests/v1?ns=quay.io").await;
    assert!(header(&r, "oci-namespace").is_empty());
    assert_oci_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    // An upstream only `[[mirror.sync]]` fills: nothing is fetched on demand.
    let sync_dir = tempfile::tempdir().expect("tempdir");
    let sync_only = mirror_of(&upstream, sync_dir.path(), "pull_through = false").await;
    let r = sync_only
        .get("/v2/docker.io/library/app/manifests/v1")
        .await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
}

#[tokio::test]
async fn index_check_with_the_mirror_config_expects_unfetched_references() {
    let upstream = TestServer::spawn().await;
    upstream
        .push_image("library/lazy", "v1", &bytes(10_000, 2))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mirror = mirror_of(&upstream, dir.path(), "").await;
    // The manifest alone: its config and layer are not fetched until a client asks.
    let r = mirror.get("/v2/docker.io/library/lazy/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::OK);
    let config = dir.path().join("mirror.toml").display().to_string();
    let (ok, out) = mirror.command_status(&["index", "check", "--config", &config]);
    assert!(ok, "{out}");
    assert!(out.contains("2 references of cached manifests"), "{out}");
    // Without the mirror's configuration they are what they would be anywhere else.
    let (ok, out) = mirror.command_status(&["index", "check"]);
    assert!(!ok && out.contains("docker.io/library/lazy"), "{out}");
    // A pull fills them in (and leaves the index clean for the check on drop).
    pull(&mirror, "docker.io/library/lazy", "v1", "").await;
}

#[tokio::test]
async fn concurrent_misses_fetch_each_blob_once_and_stream_it_to_everyone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("upstream-access.log");
    let upstream = TestServer::spawn_with(&["--access-log", &log.display().to_string()]).await;
    let layer = bytes(8 << 20, 2);
    let d = upstream.push_blob("library/big", &layer).await;
    let mirror = mirror_of(&upstream, dir.path(), "").await;
    let path = format!("/v2/docker.io/library/big/blobs/{d}");
    let clients = (0..20).map(|_| {
        let request = mirror.req(Method::GET, &path).send();
        async move {
            let r = request.await.expect("GET blob");
            assert_eq!(r.status(), StatusCode::OK);
            digest(&r.bytes().await.expect("blob body"))
        }
    });
    for got in futures::future::join_all(clients).await {
        assert_eq!(got, d);
    }
    // Access lines are written behind the requests: wait for them to settle.
    let blob_gets = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("GET") && l.contains(&format!("/blobs/{d}")))
            .count()
    };
    for _ in 0..20 {
        if blob_gets() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(blob_gets(), 1, "one upstream fetch for 20 clients");
    // Now linked: a HEAD answers from the index.
    let r = mirror.head(&path).await;
    assert_eq!(header(&r, "content-length"), layer.len().to_string());
}

#[tokio::test]
async fn cached_tags_outlive_a_failing_upstream_and_follow_a_moved_tag() {
    let mut upstream = TestServer::spawn().await;
    let (_, first) = upstream
        .push_image("library/app", "v1", &bytes(1000, 3))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mirror = mirror_of(&upstream, dir.path(), "tag_ttl = \"2s\"").await;
    let fetched = std::time::Instant::now();
    assert_eq!(
        pull(&mirror, "docker.io/library/app", "v1", "").await,
        first
    );
    let (_, second) = upstream
        .push_image("library/app", "v1", &bytes(1000, 4))
        .await;
    // Within the TTL the cached tag is served (checked only while surely within it: a
    // loaded machine may take longer than the TTL to get here); after it, the moved one.
    let r = mirror.get("/v2/docker.io/library/app/manifests/v1").await;
    if fetched.elapsed() < Duration::from_millis(1900) {
        assert_eq!(header(&r, "docker-content-digest"), first);
    }
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        pull(&mirror, "docker.io/library/app", "v1", "").await,
        second
    );
    // The upstream gone: the cached tag (past its TTL) and digests still pull.
    upstream.kill();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        pull(&mirror, "docker.io/library/app", "v1", "").await,
        second
    );
    assert_eq!(
        pull(&mirror, "docker.io/library/app", &first, "").await,
        first
    );
    // What was never cached cannot be answered: 502, in the spec's envelope.
    let r = mirror.get("/v2/docker.io/library/app/manifests/v2").await;
    assert_oci_error(r, StatusCode::BAD_GATEWAY, "MANIFEST_UNKNOWN").await;
}

#[tokio::test]
async fn a_token_auth_upstream_is_pulled_with_the_mirrors_credentials_only() {
    let up_dir = tempfile::tempdir().expect("tempdir");
    let mut upstream = auth_server(up_dir.path(), "", &[]).await;
    as_user(
        &mut upstream,
        "alice",
        &["repository:private/app:pull,push"],
    )
    .await;
    let (_, d) = upstream
        .push_image("private/app", "v1", &bytes(5000, 5))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let anonymous = mirror_of(&upstream, dir.path(), "").await;
    let r = anonymous
        .get("/v2/docker.io/private/app/manifests/v1")
        .await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_GATEWAY,
        "no credentials upstream"
    );
    assert!(header(&r, "www-authenticate").is_empty());
    drop(anonymous);
    let creds = "username = \"alice\"\npassword = \"pw-alice\"";
    let mirror = mirror_of(&upstream, dir.path(), creds).await;
    // The downstream client sends nothing and is asked for nothing.
    assert_eq!(pull(&mirror, "docker.io/private/app", "v1", "").await, d);
}

#[tokio::test]
async fn mirrored_repositories_refuse_pushes_unless_allowed() {
    let upstream = TestServer::spawn().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mirror = mirror_of(&upstream, dir.path(), "").await;
    for (path, query) in [
        ("/v2/docker.io/library/app/blobs/uploads/", ""),
        ("/v2/library/app/blobs/uploads/", "?ns=docker.io"),
    ] {
        let r = mirror.send(Method::POST, &format!("{path}{query}")).await;
        assert_oci_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    }
    let m = image_manifest(&digest(b"{}"), 2, &[], None);
    let r = mirror
        .put_manifest("docker.io/library/app", "v1", OCI_MANIFEST, &m)
        .await;
    assert_oci_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    // Outside the mirrored namespace, and with `push = true`, pushes work.
    mirror.push_image("mine/app", "v1", b"layer").await;
    let dir2 = tempfile::tempdir().expect("tempdir");
    let writable = mirror_of(&upstream, dir2.path(), "push = true").await;
    writable
        .push_image("docker.io/library/app", "v1", b"layer")
        .await;
}

#[tokio::test]
async fn mirrored_reads_follow_the_pull_rules_by_their_stored_name() {
    let upstream = TestServer::spawn().await;
    upstream
        .push_image("library/app", "v1", &bytes(100, 6))
        .await;
    upstream
        .push_image("private/app", "v1", &bytes(100, 7))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = format!(
        "[auth]\ndir = {:?}\n[[auth.rules]]\nrepository = \"docker.io/library/*\"\npull = [\"*\"]\n",
        dir.path().join("auth").display()
    );
    let mirror = mirror_of(&upstream, dir.path(), &auth).await;
    for query in ["", "?ns=docker.io"] {
        let prefix = if query.is_empty() { "docker.io/" } else { "" };
        let path = |repo: &str| format!("/v2/{prefix}{repo}/manifests/v1{query}");
        assert_eq!(
            mirror.get_status(&path("library/app")).await,
            StatusCode::OK
        );
        let r = mirror.get(&path("private/app")).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{query}");
        assert!(
            header(&r, "www-authenticate").contains("repository:docker.io/private/app:pull"),
            "{}",
            header(&r, "www-authenticate")
        );
    }
    // What was fetched for the public pull is pulled whole, so the index stays complete.
    pull(&mirror, "docker.io/library/app", "v1", "").await;
}

/// A 256 MiB blob fetched through the mirror for three clients at once keeps the mirror
/// under the 64 MiB resident of `memory.rs`: the download streams through the spool file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_miss_streams_to_several_clients_in_bounded_memory() {
    use futures::StreamExt;
    use sha2::{Digest as _, Sha256};
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 256;
    // The upstream on disk: LocalStack drops a GetObject whose reader stalls for about a
    // second, which an upstream on S3 proxying to a mirror that writes to S3 as slowly
    // as it reads does now and then (the mirror's own store is still the suite's).
    let upstream = TestServer::spawn_on_disk().await;
    let chunk = bytes::Bytes::from(bytes(CHUNK, 8));
    let mut hasher = Sha256::new();
    for _ in 0..CHUNKS {
        hasher.update(&chunk);
    }
    let d = format!("sha256:{}", hex::encode(hasher.finalize()));
    let loc = upstream.start_upload("library/huge").await;
    let body =
        futures::stream::iter((0..CHUNKS).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let r = upstream
        .patch_streamed(&loc, reqwest::Body::wrap_stream(body))
        .await;
    let r = upstream
        .finish_upload(&header(&r, "location"), &d, b"")
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let dir = tempfile::tempdir().expect("tempdir");
    let mirror = mirror_of(&upstream, dir.path(), "").await;
    let path = format!("/v2/docker.io/library/huge/blobs/{d}");
    let clients = (0..3).map(|_| {
        let request = mirror.req(Method::GET, &path).send();
        async move {
            let mut stream = request.await.expect("GET").bytes_stream();
            let mut pulled = Sha256::new();
            while let Some(part) = stream.next().await {
                pulled.update(part.expect("body"));
            }
            format!("sha256:{}", hex::encode(pulled.finalize()))
        }
    });
    for got in futures::future::join_all(clients).await {
        assert_eq!(got, d);
    }
    let peak = mirror.peak_rss_kib();
    eprintln!("mirror peak RSS after a 256 MiB miss for 3 clients: {peak} KiB");
    assert!(peak < 64 * 1024, "mirror peak RSS {peak} KiB");
}
