//! The cost of the API's hot read paths inside the process (no sockets): `GET /v2/` (the
//! router's fixed cost) beside manifest GETs by tag and by digest on the filesystem store.
//! `cargo bench -p registry-api --bench hot_path`. The loopback comparison with other
//! registries is `bench/run.sh`; this one isolates what our own code adds per request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use blob_gateway::FsStore;
use registry_api::{App, AppState};

const WARMUP: usize = 20_000;
const ROUNDS: usize = 5;
const PER_ROUND: usize = 100_000;
const TIME_CAP: Duration = Duration::from_secs(20);

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(FsStore::open(dir.path())?);
    let app = App::new(AppState::new(store));
    let digest = push(&app).await?;
    let cases = [
        ("GET /v2/".to_owned(), "/v2/".to_owned()),
        (
            "manifest GET by tag".to_owned(),
            "/v2/bench/small/manifests/latest".to_owned(),
        ),
        (
            "manifest GET by digest".to_owned(),
            format!("/v2/bench/small/manifests/{digest}"),
        ),
    ];
    println!(
        "{:<28} {:>12} {:>14}",
        "request", "ns/request", "vs GET /v2/"
    );
    let mut base = None;
    for (name, path) in cases {
        let ns = measure(&app, &path).await?;
        let base_ns = *base.get_or_insert(ns);
        println!("{name:<28} {ns:>12.0} {:>13.2}x", ns / base_ns);
    }
    Ok(())
}

/// The best round's mean nanoseconds per request (the least disturbed by other work).
async fn measure(app: &App, path: &str) -> anyhow::Result<f64> {
    let started = Instant::now();
    for _ in 0..WARMUP {
        get(app, path).await?;
    }
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..PER_ROUND {
            get(app, path).await?;
        }
        best = best.min(t.elapsed().as_nanos() as f64 / PER_ROUND as f64);
        if started.elapsed() > TIME_CAP {
            break;
        }
    }
    Ok(best)
}

async fn get(app: &App, path: &str) -> anyhow::Result<()> {
    let req = Request::get(path)
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .body(Body::empty())?;
    let res = app.call(req).await;
    anyhow::ensure!(res.status() == StatusCode::OK, "{path}: {}", res.status());
    let body = axum::body::to_bytes(res.into_body(), 1 << 20).await?;
    std::hint::black_box(body);
    Ok(())
}

/// Pushes a one-layer image tagged `latest`; returns the manifest digest.
async fn push(app: &App) -> anyhow::Result<String> {
    let layer = vec![7u8; 1024];
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let mut descs = Vec::new();
    for (bytes, media_type) in [
        (&layer[..], "application/vnd.oci.image.layer.v1.tar"),
        (&config[..], "application/vnd.oci.image.config.v1+json"),
    ] {
        let digest = format!("sha256:{}", sha256_hex(bytes));
        let req = Request::post(format!("/v2/bench/small/blobs/uploads/?digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(Body::from(bytes.to_vec()))?;
        let res = app.call(req).await;
        anyhow::ensure!(
            res.status() == StatusCode::CREATED,
            "blob push: {}",
            res.status()
        );
        descs.push(
            serde_json::json!({"mediaType": media_type, "digest": digest, "size": bytes.len()}),
        );
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descs[1],
        "layers": [descs[0]],
    }))?;
    let req = Request::put("/v2/bench/small/manifests/latest")
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(Body::from(manifest.clone()))?;
    let res = app.call(req).await;
    anyhow::ensure!(
        res.status() == StatusCode::CREATED,
        "manifest push: {}",
        res.status()
    );
    Ok(format!("sha256:{}", sha256_hex(&manifest)))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
