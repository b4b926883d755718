//! Load generator for `bench/run.sh`.
//!
//! Subcommands (all print `key=value` lines on stdout, errors on stderr,
//! and exit non-zero on any failure):
//!
//! * `push`     – concurrent pushers, each pushing its own image (distinct
//!                random layers + config + manifest), monolithic or chunked;
//!                reports the wall-clock MB/s of layer bytes.
//! * `blob`     – push one random blob of a given size (monolithic), print
//!                its digest.
//! * `image`    – push a small image (config + 1 layer + manifest) under a
//!                tag, print the manifest and layer digests.
//! * `tags`     – push one small image and tag its manifest N times.
//! * `get-blob` – sequential full downloads of one blob, following redirects
//!                (307 to a presigned URL); reports MB/s and GB/s, and how
//!                many downloads were redirected.
//! * `latency`  – sequential GETs of one URL on a keep-alive connection;
//!                reports p50/p99 in ms (and the tag count for tags/list).
//! * `load`     – wrk-like closed-loop load (N keep-alive connections for a
//!                fixed time) for any method, HEAD included (wrk 4.1 cannot
//!                parse HEAD responses that carry a Content-Length).
//! * `sink`     – a null registry that accepts and discards uploads, used to
//!                measure the client's own push ceiling.
//!
//! Every loop is bounded by a request count and by `--timeout-s`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const MIB: u64 = 1024 * 1024;

type Res<T> = Result<T, String>;

struct Args(HashMap<String, String>);

impl Args {
    fn parse(v: &[String]) -> Res<Self> {
        let mut m = HashMap::new();
        let mut it = v.iter();
        while let Some(k) = it.next() {
            let Some(k) = k.strip_prefix("--") else {
                return Err(format!("unexpected argument `{k}`"));
            };
            let val = it.next().ok_or_else(|| format!("--{k} needs a value"))?;
            m.insert(k.to_owned(), val.clone());
        }
        Ok(Self(m))
    }
    fn str(&self, k: &str) -> Res<String> {
        self.0.get(k).cloned().ok_or_else(|| format!("missing --{k}"))
    }
    fn str_or(&self, k: &str, d: &str) -> String {
        self.0.get(k).cloned().unwrap_or_else(|| d.to_owned())
    }
    fn num(&self, k: &str, d: u64) -> Res<u64> {
        match self.0.get(k) {
            None => Ok(d),
            Some(s) => s.parse().map_err(|_| format!("--{k}: not a number: {s}")),
        }
    }
}

/// Fast deterministic pseudo-random bytes (xorshift64*), distinct per seed.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = vec![0u8; len];
    for chunk in out.chunks_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    out
}

fn sha256_digest(b: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(b))
}

#[derive(Clone)]
struct Blob {
    data: Bytes,
    digest: String,
}

impl Blob {
    fn new(data: Vec<u8>) -> Self {
        let digest = sha256_digest(&data);
        Self { data: Bytes::from(data), digest }
    }
}

/// Generate `n` random blobs of `size` bytes in parallel on all cores.
fn make_blobs(n: usize, size: usize, seed: u64) -> Vec<Blob> {
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
    let mut out: Vec<Option<Blob>> = (0..n).map(|_| None).collect();
    std::thread::scope(|s| {
        for (t, slots) in out.chunks_mut(n.div_ceil(threads).max(1)).enumerate() {
            let base = t * n.div_ceil(threads).max(1);
            s.spawn(move || {
                for (j, slot) in slots.iter_mut().enumerate() {
                    let idx = (base + j) as u64;
                    *slot = Some(Blob::new(random_bytes(size, seed ^ (idx + 1).wrapping_mul(0xD1B5_4A32_D192_ED03))));
                }
            });
        }
    });
    out.into_iter().map(|b| b.expect("blob generated")).collect()
}

fn client(timeout: Duration) -> Res<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("client: {e}"))
}

fn resolve(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        loc.to_owned()
    } else if loc.starts_with('/') {
        format!("{base}{loc}")
    } else {
        format!("{base}/{loc}")
    }
}

fn with_digest(url: &str, digest: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}digest={digest}")
}

fn location(resp: &reqwest::Response, base: &str, what: &str) -> Res<String> {
    let loc = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .ok_or_else(|| format!("{what}: no Location header (status {})", resp.status()))?
        .to_str()
        .map_err(|_| format!("{what}: non-ASCII Location"))?;
    Ok(resolve(base, loc))
}

async fn expect_status(resp: reqwest::Response, want: u16, what: &str) -> Res<reqwest::Response> {
    if resp.status().as_u16() == want {
        Ok(resp)
    } else {
        let st = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(400).collect();
        Err(format!("{what}: expected {want}, got {st}: {body}"))
    }
}

async fn start_upload(c: &reqwest::Client, base: &str, repo: &str) -> Res<String> {
    let url = format!("{base}/v2/{repo}/blobs/uploads/");
    let r = c.post(&url).header("Content-Length", "0").send().await.map_err(|e| format!("POST {url}: {e}"))?;
    let r = expect_status(r, 202, "POST upload").await?;
    location(&r, base, "POST upload")
}

/// POST, then PUT ?digest= with the whole body.
async fn push_mono(c: &reqwest::Client, base: &str, repo: &str, b: &Blob) -> Res<()> {
    let loc = start_upload(c, base, repo).await?;
    let url = with_digest(&loc, &b.digest);
    let r = c
        .put(&url)
        .header("Content-Type", "application/octet-stream")
        .body(b.data.clone())
        .send()
        .await
        .map_err(|e| format!("PUT blob: {e}"))?;
    expect_status(r, 201, "PUT blob (monolithic)").await?;
    Ok(())
}

/// POST, PATCH chunks with Content-Range, then PUT ?digest= with no body.
async fn push_chunked(c: &reqwest::Client, base: &str, repo: &str, b: &Blob, chunk: usize) -> Res<()> {
    let mut loc = start_upload(c, base, repo).await?;
    let total = b.data.len();
    let mut off = 0usize;
    while off < total {
        let end = (off + chunk).min(total);
        let r = c
            .patch(&loc)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", format!("{}-{}", off, end - 1))
            .body(b.data.slice(off..end))
            .send()
            .await
            .map_err(|e| format!("PATCH: {e}"))?;
        let r = expect_status(r, 202, "PATCH chunk").await?;
        loc = location(&r, base, "PATCH chunk")?;
        off = end;
    }
    let url = with_digest(&loc, &b.digest);
    let r = c.put(&url).header("Content-Length", "0").send().await.map_err(|e| format!("PUT close: {e}"))?;
    expect_status(r, 201, "PUT blob (chunked close)").await?;
    Ok(())
}

fn config_blob(tag: &str) -> Blob {
    let cfg = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": { "bench": tag } },
        "rootfs": { "type": "layers", "diff_ids": [] }
    });
    Blob::new(serde_json::to_vec(&cfg).expect("json"))
}

fn manifest_for(config: &Blob, layers: &[Blob]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|l| serde_json::json!({"mediaType": OCI_LAYER, "digest": l.digest, "size": l.data.len()}))
        .collect();
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.data.len()},
        "layers": layers,
    });
    serde_json::to_vec(&m).expect("json")
}

async fn put_manifest(c: &reqwest::Client, base: &str, repo: &str, reference: &str, body: &[u8]) -> Res<()> {
    let url = format!("{base}/v2/{repo}/manifests/{reference}");
    let r = c
        .put(&url)
        .header("Content-Type", OCI_MANIFEST)
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| format!("PUT {url}: {e}"))?;
    expect_status(r, 201, "PUT manifest").await?;
    Ok(())
}

async fn with_deadline<T>(secs: u64, f: impl std::future::Future<Output = Res<T>>) -> Res<T> {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .map_err(|_| format!("timed out after {secs} s"))?
}

async fn cmd_push(a: &Args) -> Res<()> {
    let base = a.str("url")?;
    let mode = a.str_or("mode", "mono");
    let chunked = match mode.as_str() {
        "mono" => false,
        "chunked" => true,
        m => return Err(format!("--mode must be mono or chunked, not {m}")),
    };
    let pushers = a.num("pushers", 4)? as usize;
    let total = a.num("total-mib", 512)? * MIB;
    let blob_size = a.num("blob-mib", 32)? * MIB;
    let chunk = (a.num("chunk-mib", 8)? * MIB) as usize;
    let seed = a.num("seed", 1)?;
    let secs = a.num("timeout-s", 300)?;
    let prefix = a.str_or("repo-prefix", &format!("bench/push-{mode}"));
    let nblobs = (total / blob_size).max(pushers as u64) as usize;

    let t_gen = Instant::now();
    let blobs = make_blobs(nblobs, blob_size as usize, seed);
    eprintln!("generated {nblobs} x {} MiB blobs in {:.2}s", blob_size / MIB, t_gen.elapsed().as_secs_f64());
    let layer_bytes: u64 = blobs.iter().map(|b| b.data.len() as u64).sum();

    let c = client(Duration::from_secs(secs))?;
    let blobs = Arc::new(blobs);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..pushers {
        let c = c.clone();
        let base = base.clone();
        let blobs = blobs.clone();
        let repo = format!("{prefix}-{p}");
        tasks.push(tokio::spawn(async move {
            let mine: Vec<Blob> = blobs.iter().skip(p).step_by(pushers).cloned().collect();
            for b in &mine {
                if chunked {
                    push_chunked(&c, &base, &repo, b, chunk).await?;
                } else {
                    push_mono(&c, &base, &repo, b).await?;
                }
            }
            let cfg = config_blob(&repo);
            push_mono(&c, &base, &repo, &cfg).await?;
            put_manifest(&c, &base, &repo, "latest", &manifest_for(&cfg, &mine)).await?;
            Ok::<(), String>(())
        }));
    }
    with_deadline(secs, async {
        for t in tasks {
            t.await.map_err(|e| format!("task: {e}"))??;
        }
        Ok(())
    })
    .await?;
    let dt = t0.elapsed().as_secs_f64();
    println!("mode={mode}");
    println!("pushers={pushers}");
    println!("blobs={nblobs}");
    println!("blob_mib={}", blob_size / MIB);
    println!("chunk_mib={}", if chunked { chunk as u64 / MIB } else { 0 });
    println!("bytes={layer_bytes}");
    println!("secs={dt:.4}");
    println!("mb_per_s={:.1}", layer_bytes as f64 / dt / 1e6);
    Ok(())
}

async fn cmd_blob(a: &Args) -> Res<()> {
    let base = a.str("url")?;
    let repo = a.str("repo")?;
    let size = a.num("size-mib", 256)? * MIB;
    let seed = a.num("seed", 7)?;
    let secs = a.num("timeout-s", 120)?;
    let b = make_blobs(1, size as usize, seed).remove(0);
    let c = client(Duration::from_secs(secs))?;
    with_deadline(secs, push_mono(&c, &base, &repo, &b)).await?;
    println!("digest={}", b.digest);
    println!("bytes={}", b.data.len());
    Ok(())
}

async fn push_small_image(c: &reqwest::Client, base: &str, repo: &str, tag: &str, seed: u64) -> Res<(String, Blob, Vec<u8>)> {
    let layer = make_blobs(1, MIB as usize, seed).remove(0);
    let cfg = config_blob(repo);
    push_mono(c, base, repo, &layer).await?;
    push_mono(c, base, repo, &cfg).await?;
    let m = manifest_for(&cfg, std::slice::from_ref(&layer));
    put_manifest(c, base, repo, tag, &m).await?;
    Ok((sha256_digest(&m), layer, m))
}

async fn cmd_image(a: &Args) -> Res<()> {
    let base = a.str("url")?;
    let repo = a.str("repo")?;
    let tag = a.str_or("tag", "latest");
    let secs = a.num("timeout-s", 60)?;
    let c = client(Duration::from_secs(secs))?;
    let (md, layer, m) = with_deadline(secs, push_small_image(&c, &base, &repo, &tag, a.num("seed", 3)?)).await?;
    println!("manifest_digest={md}");
    println!("manifest_bytes={}", m.len());
    println!("layer_digest={}", layer.digest);
    Ok(())
}

async fn cmd_tags(a: &Args) -> Res<()> {
    let base = a.str("url")?;
    let repo = a.str("repo")?;
    let count = a.num("count", 1000)? as usize;
    let conc = a.num("concurrency", 8)? as usize;
    let secs = a.num("timeout-s", 180)?;
    let c = client(Duration::from_secs(30))?;
    let t0 = Instant::now();
    with_deadline(secs, async {
        let (_, _, m) = push_small_image(&c, &base, &repo, "tag-0000", a.num("seed", 5)?).await?;
        let m = Arc::new(m);
        let next = Arc::new(AtomicU64::new(1));
        let mut tasks = Vec::new();
        for _ in 0..conc {
            let (c, base, repo, m, next) = (c.clone(), base.clone(), repo.clone(), m.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= count {
                        return Ok::<(), String>(());
                    }
                    put_manifest(&c, &base, &repo, &format!("tag-{i:04}"), &m).await?;
                }
            }));
        }
        for t in tasks {
            t.await.map_err(|e| format!("task: {e}"))??;
        }
        Ok(())
    })
    .await?;
    println!("tags={count}");
    println!("secs={:.3}", t0.elapsed().as_secs_f64());
    Ok(())
}

async fn cmd_get_blob(a: &Args) -> Res<()> {
    let base = a.str("url")?;
    let repo = a.str("repo")?;
    let digest = a.str("digest")?;
    let count = a.num("count", 5)?;
    let warmup = a.num("warmup", 1)?;
    let secs = a.num("timeout-s", 120)?;
    // Stop starting new measured downloads once they have taken this long in all
    // (at least one is always measured); the default is the whole --timeout-s.
    let budget = a.num("max-secs", secs)? as f64;
    // yes: every download must have been redirected (e.g. 307 to a presigned URL);
    // no: none may have been; any: no check. Redirects are always followed.
    let expect_redirect = a.str_or("expect-redirect", "any");
    if !matches!(expect_redirect.as_str(), "yes" | "no" | "any") {
        return Err(format!("--expect-redirect must be yes, no or any, not {expect_redirect}"));
    }
    let url = format!("{base}/v2/{repo}/blobs/{digest}");
    // reqwest's default policy follows up to 10 redirects (307 keeps the method).
    let c = client(Duration::from_secs(secs))?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut total = 0u64;
    let mut dt = 0f64;
    let mut done = 0u64;
    let mut redirected = 0u64;
    let mut final_url = String::new();
    for i in 0..warmup + count {
        if Instant::now() > deadline || (i > warmup && dt >= budget) {
            break;
        }
        let t0 = Instant::now();
        let mut r = with_deadline(secs, async {
            let r = c.get(&url).send().await.map_err(|e| format!("GET blob: {e}"))?;
            expect_status(r, 200, "GET blob").await
        })
        .await?;
        let was_redirected = r.url().as_str() != url;
        match (expect_redirect.as_str(), was_redirected) {
            ("yes", false) => return Err(format!("GET blob: expected a redirect, got the bytes from {url}")),
            ("no", true) => return Err(format!("GET blob: expected no redirect, was sent to {}", r.url())),
            _ => {}
        }
        if was_redirected {
            // Keep scheme://host:port/path only: the query of a presigned URL is long.
            let mut u = r.url().clone();
            u.set_query(None);
            final_url = u.to_string();
        }
        let want = r.content_length();
        let mut n = 0u64;
        while let Some(ch) = r.chunk().await.map_err(|e| format!("GET blob body: {e}"))? {
            n += ch.len() as u64;
        }
        let el = t0.elapsed().as_secs_f64();
        if let Some(w) = want {
            if w != n {
                return Err(format!("GET blob: Content-Length {w} but got {n} bytes"));
            }
        }
        if i >= warmup {
            total += n;
            dt += el;
            done += 1;
            redirected += u64::from(was_redirected);
        }
    }
    if done == 0 {
        return Err("GET blob: no measured download finished in time".into());
    }
    println!("downloads={done}");
    println!("redirected={redirected}");
    if !final_url.is_empty() {
        println!("redirected_to={final_url}");
    }
    println!("bytes={total}");
    println!("secs={dt:.4}");
    println!("mb_per_s={:.1}", total as f64 / dt / 1e6);
    println!("gb_per_s={:.3}", total as f64 / dt / 1e9);
    Ok(())
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn cmd_latency(a: &Args) -> Res<()> {
    let url = a.str("full-url")?;
    let count = a.num("count", 200)?;
    let warmup = a.num("warmup", 20)?;
    let secs = a.num("timeout-s", 60)?;
    let accept = a.str_or("accept", "application/json");
    let c = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("client: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut lat = Vec::with_capacity(count as usize);
    let mut tags_seen = None;
    for i in 0..warmup + count {
        if Instant::now() > deadline {
            break;
        }
        let t0 = Instant::now();
        let r = c.get(&url).header("Accept", &accept).send().await.map_err(|e| format!("GET {url}: {e}"))?;
        let r = expect_status(r, 200, "GET").await?;
        let body = r.bytes().await.map_err(|e| format!("GET body: {e}"))?;
        let el = t0.elapsed().as_secs_f64() * 1e3;
        if i == 0 {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                tags_seen = v.get("tags").and_then(|t| t.as_array()).map(Vec::len);
            }
            println!("body_bytes={}", body.len());
        }
        if i >= warmup {
            lat.push(el);
        }
    }
    if lat.is_empty() {
        return Err("latency: no measured request finished in time".into());
    }
    let n = lat.len();
    let mean = lat.iter().sum::<f64>() / n as f64;
    lat.sort_by(|x, y| x.partial_cmp(y).expect("finite"));
    println!("requests={n}");
    println!("p50_ms={:.3}", pct(&lat, 50.0));
    println!("p99_ms={:.3}", pct(&lat, 99.0));
    println!("mean_ms={mean:.3}");
    if let Some(t) = tags_seen {
        println!("tags_in_response={t}");
    }
    Ok(())
}

/// Closed-loop HTTP/1.1 load like wrk: `--conns` keep-alive connections spread
/// over `--threads` runtime threads, each sending the next request as soon as
/// the previous response is fully read, for `--secs` seconds.
fn cmd_load(a: &Args) -> Res<()> {
    let url = a.str("full-url")?;
    let method = a.str_or("method", "GET");
    let conns = a.num("conns", 64)? as usize;
    let threads = a.num("threads", 2)? as usize;
    let secs = a.num("secs", 10)?;
    let accept = a.str_or("accept", "*/*");
    let rest = url.strip_prefix("http://").ok_or("load: only http:// URLs")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    };
    let method: hyper::Method = method.parse().map_err(|_| format!("bad method {method}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let (lat, errors_status, errors_socket, elapsed) = rt.block_on(async move {
        let start = Instant::now();
        let end = start + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (authority, path, method, accept) = (authority.clone(), path.clone(), method.clone(), accept.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat: Vec<u32> = Vec::with_capacity(1 << 14);
                let (mut bad_status, mut socket_err) = (0u64, 0u64);
                'outer: while Instant::now() < end {
                    let Ok(stream) = tokio::net::TcpStream::connect(&authority).await else {
                        socket_err += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let Ok((mut tx, conn)) =
                        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await
                    else {
                        socket_err += 1;
                        continue;
                    };
                    let driver = tokio::spawn(conn);
                    while Instant::now() < end {
                        let req = hyper::Request::builder()
                            .method(method.clone())
                            .uri(path.as_str())
                            .header("Host", authority.as_str())
                            .header("Accept", accept.as_str())
                            .body(http_body_util::Empty::<Bytes>::new())
                            .expect("request");
                        let t0 = Instant::now();
                        let r = tokio::time::timeout(Duration::from_secs(5), async {
                            let resp = tx.send_request(req).await?;
                            let st = resp.status();
                            let mut body = resp.into_body();
                            use http_body_util::BodyExt;
                            while let Some(f) = body.frame().await {
                                f?;
                            }
                            Ok::<_, hyper::Error>(st)
                        })
                        .await;
                        match r {
                            Ok(Ok(st)) => {
                                lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                                if st.as_u16() > 399 {
                                    bad_status += 1;
                                }
                            }
                            _ => {
                                socket_err += 1;
                                driver.abort();
                                continue 'outer;
                            }
                        }
                    }
                    driver.abort();
                }
                (lat, bad_status, socket_err)
            }));
        }
        let mut all = Vec::new();
        let (mut es, mut ek) = (0, 0);
        for t in tasks {
            if let Ok((l, s, k)) = t.await {
                all.extend(l);
                es += s;
                ek += k;
            }
        }
        (all, es, ek, start.elapsed().as_secs_f64())
    });
    if lat.is_empty() {
        return Err(format!("load: no request completed ({errors_socket} socket errors)"));
    }
    let mut ms: Vec<f64> = lat.iter().map(|&u| f64::from(u) / 1e3).collect();
    ms.sort_by(|x, y| x.partial_cmp(y).expect("finite"));
    println!("requests={}", ms.len());
    println!("secs={elapsed:.3}");
    println!("rps={:.1}", ms.len() as f64 / elapsed);
    println!("p50_ms={:.3}", pct(&ms, 50.0));
    println!("p99_ms={:.3}", pct(&ms, 99.0));
    println!("errors_status={errors_status}");
    println!("errors_socket={errors_socket}");
    Ok(())
}

/// A registry-shaped null sink: accepts uploads, discards the bytes.
async fn cmd_sink(a: &Args) -> Res<()> {
    use axum::body::Body;
    use axum::http::{Method, Request, Response, StatusCode};
    use futures::StreamExt;
    let listen = a.str("listen")?;
    let secs = a.num("timeout-s", 600)?;
    let ctr = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let ctr = ctr.clone();
        async move {
            let method = req.method().clone();
            let path = req.uri().path().to_owned();
            let mut stream = req.into_body().into_data_stream();
            let mut n = 0usize;
            while let Some(Ok(ch)) = stream.next().await {
                n += ch.len();
            }
            let id = ctr.fetch_add(1, Ordering::Relaxed);
            let loc = format!("/v2/sink/blobs/uploads/{id}");
            let (st, loc) = match method {
                Method::POST => (StatusCode::ACCEPTED, loc),
                Method::PATCH => (StatusCode::ACCEPTED, path.clone()),
                Method::PUT => (StatusCode::CREATED, path.clone()),
                _ => (StatusCode::OK, path.clone()),
            };
            let _ = n;
            Response::builder().status(st).header("Location", loc).body(Body::empty()).expect("response")
        }
    });
    let l = tokio::net::TcpListener::bind(&listen).await.map_err(|e| format!("bind {listen}: {e}"))?;
    eprintln!("sink listening on {listen}");
    let _ = tokio::time::timeout(Duration::from_secs(secs), axum::serve(l, app)).await;
    Ok(())
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("load") {
        if let Err(e) = Args::parse(&argv[1..]).and_then(|a| cmd_load(&a)) {
            eprintln!("pusher load: error: {e}");
            std::process::exit(1);
        }
        return;
    }
    async_main(argv);
}

#[tokio::main]
async fn async_main(argv: Vec<String>) {
    let Some((cmd, rest)) = argv.split_first() else {
        eprintln!("usage: pusher push|blob|image|tags|get-blob|latency|sink --key value ...");
        std::process::exit(2);
    };
    let res = match Args::parse(rest) {
        Err(e) => Err(e),
        Ok(a) => match cmd.as_str() {
            "push" => cmd_push(&a).await,
            "blob" => cmd_blob(&a).await,
            "image" => cmd_image(&a).await,
            "tags" => cmd_tags(&a).await,
            "get-blob" => cmd_get_blob(&a).await,
            "latency" => cmd_latency(&a).await,
            "sink" => cmd_sink(&a).await,
            c => Err(format!("unknown subcommand {c}")),
        },
    };
    if let Err(e) = res {
        eprintln!("pusher {cmd}: error: {e}");
        std::process::exit(1);
    }
}
