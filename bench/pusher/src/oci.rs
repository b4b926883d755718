//! The registry client side of the workload: random blobs with their digests, and the
//! OCI Distribution requests that push them (monolithic and chunked uploads, manifests).

use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::Res;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MIB: u64 = 1024 * 1024;

/// The Accept header docker and containerd send on a manifest GET: every manifest type
/// they can use. Servers negotiate against it, so the request rows send it too.
pub const CLIENT_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

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

pub fn sha256_digest(b: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(b))
}

/// Bytes to push and their digest, computed before any clock starts.
#[derive(Clone)]
pub struct Blob {
    pub data: Bytes,
    pub digest: String,
}

impl Blob {
    fn new(data: Vec<u8>) -> Self {
        let digest = sha256_digest(&data);
        Self {
            data: Bytes::from(data),
            digest,
        }
    }
}

/// `n` random blobs of `size` bytes, generated in parallel on all cores.
pub fn make_blobs(n: usize, size: usize, seed: u64) -> Vec<Blob> {
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
    let per = n.div_ceil(threads).max(1);
    let mut out: Vec<Option<Blob>> = (0..n).map(|_| None).collect();
    std::thread::scope(|s| {
        for (t, slots) in out.chunks_mut(per).enumerate() {
            s.spawn(move || {
                for (j, slot) in slots.iter_mut().enumerate() {
                    let idx = (t * per + j) as u64;
                    let seed = seed ^ (idx + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
                    *slot = Some(Blob::new(random_bytes(size, seed)));
                }
            });
        }
    });
    out.into_iter()
        .map(|b| b.expect("every slot is filled by its thread"))
        .collect()
}

/// A keep-alive client for loopback; reqwest follows up to 10 redirects by default.
pub fn client(timeout: Duration, idle_per_host: usize) -> Res<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .pool_max_idle_per_host(idle_per_host)
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

/// The response if its status is `want`, else an error with the start of its body.
pub async fn expect_status(
    resp: reqwest::Response,
    want: u16,
    what: &str,
) -> Res<reqwest::Response> {
    if resp.status().as_u16() == want {
        return Ok(resp);
    }
    let st = resp.status();
    let body: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(400)
        .collect();
    Err(format!("{what}: expected {want}, got {st}: {body}"))
}

async fn start_upload(c: &reqwest::Client, base: &str, repo: &str) -> Res<String> {
    let url = format!("{base}/v2/{repo}/blobs/uploads/");
    let r = c
        .post(&url)
        .header("Content-Length", "0")
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let r = expect_status(r, 202, "POST upload").await?;
    location(&r, base, "POST upload")
}

/// POST, then PUT ?digest= with the whole body.
pub async fn push_mono(c: &reqwest::Client, base: &str, repo: &str, b: &Blob) -> Res<()> {
    let loc = start_upload(c, base, repo).await?;
    let r = c
        .put(with_digest(&loc, &b.digest))
        .header("Content-Type", "application/octet-stream")
        .body(b.data.clone())
        .send()
        .await
        .map_err(|e| format!("PUT blob: {e}"))?;
    expect_status(r, 201, "PUT blob (monolithic)").await?;
    Ok(())
}

/// POST, PATCH chunks with Content-Range (following each Location), then PUT ?digest=
/// with no body.
pub async fn push_chunked(
    c: &reqwest::Client,
    base: &str,
    repo: &str,
    b: &Blob,
    chunk: usize,
) -> Res<()> {
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
    let r = c
        .put(with_digest(&loc, &b.digest))
        .header("Content-Length", "0")
        .send()
        .await
        .map_err(|e| format!("PUT close: {e}"))?;
    expect_status(r, 201, "PUT blob (chunked close)").await?;
    Ok(())
}

pub fn config_blob(label: &str) -> Blob {
    let cfg = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": { "bench": label } },
        "rootfs": { "type": "layers", "diff_ids": [] }
    });
    Blob::new(serde_json::to_vec(&cfg).expect("a json! value serializes"))
}

pub fn manifest_for(config: &Blob, layers: &[Blob]) -> Vec<u8> {
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
    serde_json::to_vec(&m).expect("a json! value serializes")
}

pub async fn put_manifest(
    c: &reqwest::Client,
    base: &str,
    repo: &str,
    reference: &str,
    body: &[u8],
) -> Res<()> {
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

/// A pushed one-layer image: what the request rows ask for.
#[derive(serde::Serialize)]
pub struct SmallImage {
    pub manifest_digest: String,
    pub layer_digest: String,
    #[serde(skip)]
    pub manifest: Vec<u8>,
    pub manifest_bytes: usize,
}

/// Pushes a config, one 1 MiB layer and an OCI image manifest (~400 bytes) under `tag`.
pub async fn push_small_image(
    c: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
    seed: u64,
) -> Res<SmallImage> {
    let layer = make_blobs(1, MIB as usize, seed).remove(0);
    let cfg = config_blob(repo);
    push_mono(c, base, repo, &layer).await?;
    push_mono(c, base, repo, &cfg).await?;
    let m = manifest_for(&cfg, std::slice::from_ref(&layer));
    put_manifest(c, base, repo, tag, &m).await?;
    Ok(SmallImage {
        manifest_digest: sha256_digest(&m),
        layer_digest: layer.digest,
        manifest_bytes: m.len(),
        manifest: m,
    })
}
