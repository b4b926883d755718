//! The measured workloads other than request rates (those are in `load`): concurrent
//! pushes, tagging, sequential blob downloads and sequential-request latency. Each is
//! bounded by a count and by the caller's deadline, and returns its figures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::oci::{self, Blob, MIB};
use crate::Res;

/// Monolithic: `POST` + `PUT ?digest=` with the body; chunked: `POST`, `PATCH`es, `PUT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PushMode {
    Mono,
    Chunked,
}

impl PushMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Mono => "mono",
            Self::Chunked => "chunked",
        }
    }
}

/// `pushers` concurrent pushers, each pushing its own image into `<prefix>-<i>`.
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct PushSpec {
    #[arg(long, value_enum, default_value = "mono")]
    pub mode: PushMode,
    #[arg(long, default_value_t = 4)]
    pub pushers: usize,
    /// Layer bytes pushed by all pushers together.
    #[arg(long, default_value_t = 512)]
    pub total_mib: u64,
    #[arg(long, default_value_t = 32)]
    pub blob_mib: u64,
    #[arg(long, default_value_t = 8)]
    pub chunk_mib: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value = "bench/push")]
    pub repo_prefix: String,
}

#[derive(Debug, Serialize)]
pub struct PushResult {
    pub blobs: usize,
    pub bytes: u64,
    pub secs: f64,
    pub mb_per_s: f64,
}

/// Layer bytes ÷ wall time from the first `POST` to the last manifest `PUT`; the blobs
/// and their digests are made before the clock starts.
pub async fn push_images(base: &str, spec: &PushSpec) -> Res<PushResult> {
    let pushers = spec.pushers.max(1);
    let blob_size = spec.blob_mib.max(1) * MIB;
    let nblobs = (spec.total_mib * MIB / blob_size).max(pushers as u64) as usize;
    let blobs = Arc::new(oci::make_blobs(nblobs, blob_size as usize, spec.seed));
    let bytes = blobs.iter().map(|b| b.data.len() as u64).sum();
    let c = oci::client(Duration::from_secs(600), 64)?;
    let chunk = (spec.chunk_mib.max(1) * MIB) as usize;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..pushers {
        let (c, base, blobs, mode) = (c.clone(), base.to_owned(), blobs.clone(), spec.mode);
        let repo = format!("{}-{p}", spec.repo_prefix);
        tasks.push(tokio::spawn(async move {
            let mine: Vec<Blob> = blobs.iter().skip(p).step_by(pushers).cloned().collect();
            for b in &mine {
                match mode {
                    PushMode::Mono => oci::push_mono(&c, &base, &repo, b).await?,
                    PushMode::Chunked => oci::push_chunked(&c, &base, &repo, b, chunk).await?,
                }
            }
            let cfg = oci::config_blob(&repo);
            oci::push_mono(&c, &base, &repo, &cfg).await?;
            oci::put_manifest(&c, &base, &repo, "latest", &oci::manifest_for(&cfg, &mine)).await
        }));
    }
    for t in tasks {
        t.await.map_err(|e| format!("pusher task: {e}"))??;
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok(PushResult {
        blobs: nblobs,
        bytes,
        secs,
        mb_per_s: bytes as f64 / secs / 1e6,
    })
}

/// Pushes one random blob of `size_mib` MiB monolithically; returns its digest.
pub async fn push_blob(base: &str, repo: &str, size_mib: u64, seed: u64) -> Res<String> {
    let b = oci::make_blobs(1, (size_mib * MIB) as usize, seed).remove(0);
    oci::push_mono(&oci::client(Duration::from_secs(600), 1)?, base, repo, &b).await?;
    Ok(b.digest)
}

/// One small image under `tag-0000`, then its manifest under `tag-0001` … with
/// `concurrency` manifest PUTs at a time; returns the seconds it took.
pub async fn push_tags(base: &str, repo: &str, count: usize, concurrency: usize) -> Res<f64> {
    let c = oci::client(Duration::from_secs(30), concurrency)?;
    let t0 = Instant::now();
    let m = Arc::new(
        oci::push_small_image(&c, base, repo, "tag-0000", 5)
            .await?
            .manifest,
    );
    let next = Arc::new(AtomicU64::new(1));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (c, base, repo, m, next) = (
            c.clone(),
            base.to_owned(),
            repo.to_owned(),
            m.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= count {
                    return Ok::<(), String>(());
                }
                oci::put_manifest(&c, &base, &repo, &format!("tag-{i:04}"), &m).await?;
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| format!("tag task: {e}"))??;
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// Whether a blob download must have been redirected (e.g. 307 to a presigned URL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectRedirect {
    Yes,
    No,
    Any,
}

#[derive(Debug, Serialize)]
pub struct PullResult {
    pub downloads: u64,
    pub redirected: u64,
    /// scheme://host:port/path of the last redirect target (a presigned query is long).
    pub redirected_to: Option<String>,
    pub bytes: u64,
    pub secs: f64,
    pub mb_per_s: f64,
    pub gb_per_s: f64,
}

/// `warmup` unmeasured, then up to `count` measured sequential downloads of one blob on
/// one keep-alive connection, redirects followed; no new measured download starts once
/// the measured ones have taken `max_secs` (at least one is measured). Bodies are
/// counted, checked against `Content-Length`, and dropped.
pub async fn get_blob(
    url: &str,
    count: u64,
    warmup: u64,
    max_secs: f64,
    expect: ExpectRedirect,
) -> Res<PullResult> {
    let c = oci::client(Duration::from_secs(600), 1)?;
    let mut r = PullResult {
        downloads: 0,
        redirected: 0,
        redirected_to: None,
        bytes: 0,
        secs: 0.0,
        mb_per_s: 0.0,
        gb_per_s: 0.0,
    };
    for i in 0..warmup + count {
        if i > warmup && r.secs >= max_secs {
            break;
        }
        let t0 = Instant::now();
        let resp = c
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET blob: {e}"))?;
        let mut resp = oci::expect_status(resp, 200, "GET blob").await?;
        let was_redirected = resp.url().as_str() != url;
        match (expect, was_redirected) {
            (ExpectRedirect::Yes, false) => {
                return Err(format!(
                    "GET blob: expected a redirect, got the bytes from {url}"
                ))
            }
            (ExpectRedirect::No, true) => {
                return Err(format!(
                    "GET blob: expected no redirect, was sent to {}",
                    resp.url()
                ))
            }
            _ => {}
        }
        if was_redirected {
            let mut u = resp.url().clone();
            u.set_query(None);
            r.redirected_to = Some(u.to_string());
        }
        let want = resp.content_length();
        let mut n = 0u64;
        while let Some(ch) = resp
            .chunk()
            .await
            .map_err(|e| format!("GET blob body: {e}"))?
        {
            n += ch.len() as u64;
        }
        let el = t0.elapsed().as_secs_f64();
        if want.is_some_and(|w| w != n) {
            return Err(format!(
                "GET blob: Content-Length {want:?} but got {n} bytes"
            ));
        }
        if i >= warmup {
            r.bytes += n;
            r.secs += el;
            r.downloads += 1;
            r.redirected += u64::from(was_redirected);
        }
    }
    if r.downloads == 0 {
        return Err("GET blob: no measured download".into());
    }
    r.mb_per_s = r.bytes as f64 / r.secs / 1e6;
    r.gb_per_s = r.bytes as f64 / r.secs / 1e9;
    Ok(r)
}

/// The value at percentile `p` of sorted values (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[derive(Debug, Serialize)]
pub struct LatencyResult {
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub body_bytes: usize,
    /// For a tags/list URL: how many tags the (unpaginated) answer held.
    pub tags_in_response: Option<usize>,
}

/// `warmup` unmeasured, then `count` measured sequential GETs of `url` on one
/// keep-alive connection.
pub async fn latency(url: &str, count: usize, warmup: usize, accept: &str) -> Res<LatencyResult> {
    let c = oci::client(Duration::from_secs(10), 1)?;
    let mut lat = Vec::with_capacity(count);
    let (mut body_bytes, mut tags_in_response) = (0, None);
    for i in 0..warmup + count {
        let t0 = Instant::now();
        let r = c
            .get(url)
            .header("Accept", accept)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let body = oci::expect_status(r, 200, "GET")
            .await?
            .bytes()
            .await
            .map_err(|e| format!("GET body: {e}"))?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        if i == 0 {
            body_bytes = body.len();
            tags_in_response = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("tags").and_then(|t| t.as_array()).map(Vec::len));
        }
        if i >= warmup {
            lat.push(ms);
        }
    }
    if lat.is_empty() {
        return Err("latency: no measured request".into());
    }
    let mean_ms = lat.iter().sum::<f64>() / lat.len() as f64;
    lat.sort_by(f64::total_cmp);
    Ok(LatencyResult {
        requests: lat.len(),
        p50_ms: percentile(&lat, 50.0),
        p99_ms: percentile(&lat, 99.0),
        mean_ms,
        body_bytes,
        tags_in_response,
    })
}
