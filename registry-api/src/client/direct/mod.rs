//! The client side of cargohold's direct-upload extension (`docs/direct-upload.md`): blob
//! bytes go straight to the registry's bucket through presigned requests; the registry
//! only plans, verifies and links. Taken when the destination's discovery lists
//! `_cargohold` and the bytes are in a local file (parts are hashed before upload).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{StreamExt, TryStreamExt};
use index_format::manifest::Descriptor;
use reqwest::{Method, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use std::io::{Read as _, Seek as _};

use super::endpoint::BlobSource;
use super::progress::BlobProgress;
use super::registry::unexpected;
use super::repository::Repository;
use super::state::{DirectRecord, DirectSession, SessionFile};
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

/// `GET …/direct/uploads/<id>`: the session's plan and the parts the bucket holds.
#[derive(Deserialize)]
struct Status {
    digest: String,
    size: u64,
    part_size: Option<u64>,
    parts: Vec<HeldPart>,
}

#[derive(Deserialize)]
struct HeldPart {
    number: u32,
    etag: String,
    size: u64,
    sha256: Option<String>,
}

/// What every part upload of one blob shares.
struct PartsCtx<'a> {
    desc: &'a Descriptor,
    file: &'a Path,
    options: &'a Options,
    progress: &'a Arc<BlobProgress>,
    record: Option<&'a SessionFile>,
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

    /// Pushes the blob in `file` through the extension. A multipart upload is recorded in
    /// the state directory part by part, so a run killed mid-blob resumes it: the
    /// registry lists the parts the bucket holds and only the others are sent.
    pub async fn push_direct(
        &self,
        desc: &Descriptor,
        file: &Path,
        options: &Options,
        progress: &Arc<BlobProgress>,
    ) -> Result<BlobOutcome, ClientError> {
        let record = options
            .state_dir
            .as_ref()
            .map(|d| SessionFile::new(d, self, &desc.digest, "direct "));
        if let Some(r) = &record
            && let Some((session, done)) = self.resumable(desc, file, r).await?
        {
            let count = desc.size.div_ceil(session.part_size).max(1);
            progress.note(&format!(
                "resuming: {} of {count} parts uploaded",
                done.len()
            ));
            let ctx = PartsCtx {
                desc,
                file,
                options,
                progress,
                record: Some(r),
            };
            let parts = self.upload_parts(&ctx, &session, done).await?;
            return self.complete(&session.id, parts, record.as_ref()).await;
        }
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
                match self.complete(&id, Vec::new(), None).await {
                    // Written in place, then overwritten by another session's PUT of the
                    // same blob: the server links only its own session's write.
                    Err(ClientError::Status {
                        status: 400,
                        message,
                        ..
                    }) if message.starts_with("SIZE_INVALID") => {
                        self.send_signed(&put, file, 0, desc.size, options, progress)
                            .await?;
                    }
                    done => return done,
                }
                Vec::new()
            }
            (None, Some(part_size)) => {
                let session = DirectSession {
                    id: id.clone(),
                    part_size,
                };
                if let Some(r) = &record {
                    r.save(DirectRecord::header(&session).as_bytes());
                }
                let ctx = PartsCtx {
                    desc,
                    file,
                    options,
                    progress,
                    record: record.as_ref(),
                };
                self.upload_parts(&ctx, &session, BTreeMap::new()).await?
            }
            (None, None) => {
                return Err(ClientError::Input(
                    "direct upload: the server gave no plan".into(),
                ));
            }
        };
        self.complete(&id, parts, record.as_ref()).await
    }

    async fn complete(
        &self,
        id: &str,
        parts: Vec<Part>,
        record: Option<&SessionFile>,
    ) -> Result<BlobOutcome, ClientError> {
        let response = self
            .post_json("complete", json!({"id": id, "parts": parts}))
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(unexpected("direct upload complete", response).await);
        }
        if let Some(r) = record {
            r.clear();
        }
        Ok(BlobOutcome::Uploaded)
    }

    /// The recorded session of `desc`, if the registry still has it, with the parts the
    /// bucket holds that are this file's bytes (by the recorded checksum, else by hashing
    /// the local range). A session the registry forgot is dropped: a fresh start.
    async fn resumable(
        &self,
        desc: &Descriptor,
        file: &Path,
        record: &SessionFile,
    ) -> Result<Option<(DirectSession, BTreeMap<u32, Part>)>, ClientError> {
        let Some(saved) = record.load().as_deref().and_then(DirectRecord::parse) else {
            return Ok(None);
        };
        let url = self.path(&format!("{EXTENSION}/direct/uploads/{}", saved.session.id));
        let response = self.registry.send_simple(Method::GET, &url).await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                record.clear();
                return Ok(None);
            }
            _ => return Err(unexpected("direct upload status", response).await),
        }
        let status: Status = response.json().await.map_err(ClientError::Http)?;
        let part = saved.session.part_size;
        if status.digest != desc.digest.as_str()
            || status.size != desc.size
            || status.part_size != Some(part)
            || part == 0
        {
            record.clear();
            return Ok(None);
        }
        let count = desc.size.div_ceil(part);
        let mut done = BTreeMap::new();
        for p in status.parts {
            // Parts listed without a checksum (some stores record none) are sent again.
            let planned = p.number >= 1 && u64::from(p.number) <= count;
            let Some(sha) = p.sha256.filter(|_| planned) else {
                continue;
            };
            let (offset, len) = range(p.number, part, desc.size);
            if p.size != len {
                continue;
            }
            let recorded = saved.parts.get(&p.number).is_some_and(|(s, _)| *s == sha);
            if recorded || hash_range(file, offset, len).await? == sha {
                let part = Part {
                    number: p.number,
                    sha256: sha,
                    etag: p.etag,
                };
                done.insert(p.number, part);
            }
        }
        Ok(Some((saved.session, done)))
    }

    /// Uploads the parts of `session` not in `done`, recording each one the bucket
    /// acknowledges; returns every part, in order. Parts are hashed `jobs` at a time just
    /// ahead of their uploads, and whatever is hashed is signed in one call (up to
    /// `BATCH`): the first part leaves as soon as it is hashed, not after the last.
    async fn upload_parts(
        &self,
        ctx: &PartsCtx<'_>,
        session: &DirectSession,
        mut done: BTreeMap<u32, Part>,
    ) -> Result<Vec<Part>, ClientError> {
        let (desc, part) = (ctx.desc, session.part_size);
        let jobs = ctx.options.jobs.max(1);
        let count = u32::try_from(desc.size.div_ceil(part).max(1)).unwrap_or(u32::MAX);
        let missing: Vec<u32> = (1..=count).filter(|n| !done.contains_key(n)).collect();
        let uploads = futures::stream::iter(missing)
            .map(|n| async move {
                let (offset, len) = range(n, part, desc.size);
                let sha256 = hash_range(ctx.file, offset, len).await?;
                Ok::<_, ClientError>(Part {
                    number: n,
                    sha256,
                    etag: String::new(),
                })
            })
            .buffered(jobs)
            .ready_chunks(BATCH)
            .then(|hashed| async move {
                let hashed = hashed.into_iter().collect::<Result<Vec<Part>, _>>()?;
                let signed = self.sign_parts(session, &hashed).await?;
                let mut asked: BTreeMap<u32, Part> =
                    hashed.into_iter().map(|p| (p.number, p)).collect();
                // A part the server signed that was not asked for is ignored.
                let pairs: Vec<_> = signed
                    .into_iter()
                    .filter_map(|s| Some((asked.remove(&s.number)?, s.request)))
                    .collect();
                Ok::<_, ClientError>(futures::stream::iter(pairs).map(Ok))
            })
            .try_flatten()
            .map_ok(|(p, signed)| async move {
                let (offset, len) = range(p.number, part, desc.size);
                let etag = self
                    .send_signed(&signed, ctx.file, offset, len, ctx.options, ctx.progress)
                    .await?;
                Ok::<_, ClientError>(Part { etag, ..p })
            })
            .try_buffer_unordered(jobs);
        let mut uploads = std::pin::pin!(uploads);
        while let Some(p) = uploads.try_next().await? {
            if let Some(r) = ctx.record {
                r.append(&DirectRecord::part_line(p.number, &p.sha256, &p.etag));
            }
            done.insert(p.number, p);
        }
        Ok(done.into_values().collect())
    }

    /// Presigned requests for `parts` (their numbers and SHA-256s).
    async fn sign_parts(
        &self,
        session: &DirectSession,
        parts: &[Part],
    ) -> Result<Vec<SignedPart>, ClientError> {
        let response = self
            .post_json("parts", json!({"id": session.id, "parts": parts}))
            .await?;
        if response.status() != StatusCode::OK {
            return Err(unexpected("direct upload parts", response).await);
        }
        let signed: Parts = response.json().await.map_err(ClientError::Http)?;
        Ok(signed.parts)
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
            // This attempt's bytes, taken back if it fails: other parts go on meanwhile.
            let sent = Arc::new(AtomicU64::new(0));
            let counter = sent.clone();
            let body = progress
                .count(source.open(offset, Some(len)).await?)
                .inspect_ok(move |c| {
                    counter.fetch_add(c.len() as u64, Ordering::Relaxed);
                });
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
                    progress.take_back(sent.load(Ordering::Relaxed));
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

/// The SHA-256 (hex) of `len` bytes of `file` from `offset`, read and hashed on a
/// blocking thread: parts hash in parallel, off the runtime's workers.
async fn hash_range(file: &Path, offset: u64, len: u64) -> Result<String, ClientError> {
    let path = file.to_owned();
    let hashed = tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(&path)?;
        f.seek(std::io::SeekFrom::Start(offset))?;
        let mut reader = f.take(len);
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                return Ok(hex::encode(hash.finalize()));
            }
            hash.update(&buf[..n]);
        }
    })
    .await
    .map_err(|e| ClientError::io(file.display(), std::io::Error::other(e)))?;
    hashed.map_err(|e| ClientError::io(file.display(), e))
}

#[cfg(test)]
mod tests;
