//! The client side of cargohold's direct-upload extension (`docs/direct-upload.md`): blob
//! bytes go straight to the registry's bucket through presigned requests; the registry
//! only plans, verifies and links. Taken when the destination's discovery lists
//! `_cargohold` and the bytes are in a local file (parts are hashed before upload).

use std::path::Path;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use index_format::manifest::Descriptor;
use reqwest::{Method, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::endpoint::BlobSource;
use super::progress::BlobProgress;
use super::registry::unexpected;
use super::repository::Repository;
use super::upload::BlobOutcome;
use super::{ClientError, Options};

/// The extension's name in discovery and URLs.
const EXTENSION: &str = "_cargohold";
/// Part requests asked for per call (the server's limit is 1000).
const BATCH: usize = 500;

#[derive(Deserialize)]
struct Signed {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct Start {
    status: String,
    id: Option<String>,
    part_size: Option<u64>,
    put: Option<Signed>,
}

#[derive(Deserialize)]
struct SignedPart {
    number: u32,
    #[serde(flatten)]
    request: Signed,
}

#[derive(Deserialize)]
struct Parts {
    parts: Vec<SignedPart>,
}

#[derive(Serialize, Clone)]
struct Part {
    number: u32,
    sha256: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    etag: String,
}

impl Repository {
    /// Whether the registry offers direct uploads (asked once per registry).
    pub async fn offers_direct(&self) -> Result<bool, ClientError> {
        self.registry
            .direct
            .get_or_try_init(|| async {
                let response = self
                    .registry
                    .send_simple(Method::GET, "/v2/_oci/ext/discover")
                    .await?;
                if response.status() != StatusCode::OK {
                    return Ok(false);
                }
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                Ok(body["extensions"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|x| x["name"] == EXTENSION)))
            })
            .await
            .copied()
    }

    async fn post_json(
        &self,
        module: &str,
        body: serde_json::Value,
    ) -> Result<reqwest::Response, ClientError> {
        let url = self.path(&format!("{EXTENSION}/direct/{module}"));
        self.registry
            .send_built(|| self.registry.request(Method::POST, &url).json(&body))
            .await
    }

    /// Pushes the blob in `file` through the extension.
    pub async fn push_direct(
        &self,
        desc: &Descriptor,
        file: &Path,
        options: &Options,
        progress: &Arc<BlobProgress>,
    ) -> Result<BlobOutcome, ClientError> {
        let mut start = json!({"digest": desc.digest, "size": desc.size});
        if let Some(p) = options.direct_part_size {
            start["part_size"] = json!(p);
        }
        let response = self.post_json("start", start).await?;
        let status = response.status();
        if !matches!(
            status,
            StatusCode::OK | StatusCode::CREATED | StatusCode::ACCEPTED
        ) {
            return Err(unexpected("direct upload start", response).await);
        }
        let plan: Start = response.json().await.map_err(ClientError::Http)?;
        match plan.status.as_str() {
            "exists" => return Ok(BlobOutcome::Existed),
            "mounted" => return Ok(BlobOutcome::Mounted),
            _ => {}
        }
        let id = plan.id.unwrap_or_default();
        let parts = match (plan.put, plan.part_size) {
            (Some(put), _) => {
                self.send_signed(&put, file, 0, desc.size, options, progress)
                    .await?;
                Vec::new()
            }
            (None, Some(part)) => {
                self.upload_parts(desc, file, &id, part, options, progress)
                    .await?
            }
            (None, None) => {
                return Err(ClientError::Input(
                    "direct upload: the server gave no plan".into(),
                ));
            }
        };
        let response = self
            .post_json("complete", json!({"id": id, "parts": parts}))
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(unexpected("direct upload complete", response).await);
        }
        Ok(BlobOutcome::Uploaded)
    }

    async fn upload_parts(
        &self,
        desc: &Descriptor,
        file: &Path,
        id: &str,
        part: u64,
        options: &Options,
        progress: &Arc<BlobProgress>,
    ) -> Result<Vec<Part>, ClientError> {
        let count = desc.size.div_ceil(part).max(1);
        let mut done = Vec::new();
        let numbers: Vec<u32> = (1..=u32::try_from(count).unwrap_or(u32::MAX)).collect();
        for batch in numbers.chunks(BATCH) {
            let mut parts = Vec::with_capacity(batch.len());
            for &n in batch {
                let (offset, len) = range(n, part, desc.size);
                parts.push(Part {
                    number: n,
                    sha256: hash_range(file, offset, len).await?,
                    etag: String::new(),
                });
            }
            let response = self
                .post_json("parts", json!({"id": id, "parts": parts}))
                .await?;
            if response.status() != StatusCode::OK {
                return Err(unexpected("direct upload parts", response).await);
            }
            let signed: Parts = response.json().await.map_err(ClientError::Http)?;
            let uploaded: Vec<(u32, String)> = futures::stream::iter(signed.parts)
                .map(|p| async move {
                    let (offset, len) = range(p.number, part, desc.size);
                    let etag = self
                        .send_signed(&p.request, file, offset, len, options, progress)
                        .await?;
                    Ok::<_, ClientError>((p.number, etag))
                })
                .buffer_unordered(options.jobs.max(1))
                .try_collect()
                .await?;
            for (n, etag) in uploaded {
                if let Some(p) = parts.iter_mut().find(|p| p.number == n) {
                    p.etag = etag;
                }
            }
            done.extend(parts);
        }
        done.sort_by_key(|p| p.number);
        Ok(done)
    }

    /// Sends `len` bytes of `file` from `offset` with a presigned request, retrying network
    /// errors and 5xx; returns the ETag. Never sends the registry's credentials.
    async fn send_signed(
        &self,
        signed: &Signed,
        file: &Path,
        offset: u64,
        len: u64,
        options: &Options,
        progress: &Arc<BlobProgress>,
    ) -> Result<String, ClientError> {
        let method = Method::from_bytes(signed.method.as_bytes())
            .map_err(|_| ClientError::Input(format!("presigned method {:?}", signed.method)))?;
        let source = BlobSource::File(file.to_owned());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let before = progress.position();
            let body = progress.count(source.open(offset, Some(len)).await?);
            let mut request = self
                .registry
                .http()
                .request(method.clone(), &signed.url)
                .body(reqwest::Body::wrap_stream(body));
            for (k, v) in &signed.headers {
                request = request.header(k, v);
            }
            let result = match request.send().await {
                Ok(r) if r.status().is_success() => {
                    return Ok(r
                        .headers()
                        .get(header::ETAG)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .trim_matches('"')
                        .to_owned());
                }
                Ok(r) => Err(unexpected("presigned upload", r).await),
                Err(e) => Err(ClientError::Http(e)),
            };
            match result {
                Err(e) if e.is_retryable() && attempt < options.retries => {
                    progress.restart_at(before);
                    tokio::time::sleep(options.backoff * 2u32.saturating_pow(attempt - 1)).await;
                }
                Err(e) => return Err(e),
                Ok(()) => unreachable!("success returned above"),
            }
        }
    }
}

/// Part `n`'s offset and length.
fn range(n: u32, part: u64, size: u64) -> (u64, u64) {
    let offset = part * u64::from(n - 1);
    (offset, part.min(size - offset))
}

async fn hash_range(file: &Path, offset: u64, len: u64) -> Result<String, ClientError> {
    let io = |e| ClientError::io(file.display(), e);
    let mut f = tokio::fs::File::open(file).await.map_err(io)?;
    f.seek(std::io::SeekFrom::Start(offset)).await.map_err(io)?;
    let mut reader = f.take(len);
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hex::encode(hash.finalize()))
}
