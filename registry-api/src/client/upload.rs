//! Blob uploads through the standard OCI flow: `HEAD` first (a finished blob is never sent
//! twice), a cross-repository mount when a source repository is named, then one `PUT` or
//! `PATCH` chunks. A chunked upload records its session URL in the state directory, so a
//! run killed mid-blob resumes where the registry says the session stands (`GET` on it).

use std::sync::Arc;

use index_format::manifest::Descriptor;
use index_format::{Digest, RepoName};
use reqwest::{Method, Response, StatusCode, header};

use super::endpoint::BlobSource;
use super::progress::BlobProgress;
use super::registry::{unexpected, with_query};
use super::repository::Repository;
use super::state::SessionFile;
use super::{ClientError, Options};

/// What pushing a blob took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// The destination had it.
    Existed,
    /// Mounted from another repository of the destination.
    Mounted,
    /// Its bytes were sent.
    Uploaded,
}

impl BlobOutcome {
    /// A word for progress lines.
    pub fn word(self) -> &'static str {
        match self {
            Self::Existed => "exists",
            Self::Mounted => "mounted",
            Self::Uploaded => "uploaded",
        }
    }
}

const OCTET_STREAM: &str = "application/octet-stream";

impl Repository {
    /// Pushes the blob `desc` from `source`, retrying the whole blob (from where its
    /// session stands) on network errors and 5xx answers.
    pub async fn push_blob(
        &self,
        desc: &Descriptor,
        source: &BlobSource,
        mount_from: Option<&RepoName>,
        options: &Options,
        progress: &Arc<BlobProgress>,
    ) -> Result<BlobOutcome, ClientError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .try_push_blob(desc, source, mount_from, options, progress)
                .await
            {
                Err(e) if e.is_retryable() && attempt < options.retries => {
                    tracing::debug!(digest = %desc.digest, attempt, error = %e, "blob retry");
                    tokio::time::sleep(options.backoff * 2u32.saturating_pow(attempt - 1)).await;
                }
                other => return other,
            }
        }
    }

    async fn try_push_blob(
        &self,
        desc: &Descriptor,
        source: &BlobSource,
        mount_from: Option<&RepoName>,
        options: &Options,
        progress: &Arc<BlobProgress>,
    ) -> Result<BlobOutcome, ClientError> {
        if self.blob_size(&desc.digest).await?.is_some() {
            return Ok(BlobOutcome::Existed);
        }
        let saved = match (options.chunk_size, &options.state_dir) {
            (Some(_), Some(dir)) => Some(SessionFile::new(dir, self, &desc.digest, "")),
            _ => None,
        };
        let resumed = match saved.as_ref().and_then(SessionFile::load) {
            Some(location) => self.session_offset(&location).await?.map(|o| (location, o)),
            None => None,
        };
        let (location, offset) = match resumed {
            Some(found) => found,
            None => match self.start_upload(&desc.digest, mount_from).await? {
                None => return Ok(BlobOutcome::Mounted),
                Some(location) => (location, 0),
            },
        };
        progress.restart_at(offset);
        let location = match options.chunk_size {
            Some(chunk) => {
                self.patch_chunks(
                    desc,
                    source,
                    location,
                    offset,
                    chunk,
                    saved.as_ref(),
                    progress,
                )
                .await?
            }
            None => location,
        };
        let url = with_query(&location, "digest", desc.digest.as_str());
        let monolithic = options.chunk_size.is_none();
        let response = self
            .registry
            .send(|| async {
                let r = self
                    .registry
                    .request(Method::PUT, &url)
                    .header(header::CONTENT_TYPE, OCTET_STREAM);
                Ok(match monolithic {
                    true => {
                        progress.restart_at(0);
                        let body = progress.count(source.open(0, None).await?);
                        r.header(header::CONTENT_LENGTH, desc.size)
                            .body(reqwest::Body::wrap_stream(body))
                    }
                    false => r.header(header::CONTENT_LENGTH, 0),
                })
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(unexpected(&format!("PUT blob {}", desc.digest), response).await);
        }
        if let Some(s) = &saved {
            s.clear();
        }
        Ok(BlobOutcome::Uploaded)
    }

    /// Opens an upload session, or mounts the blob from `mount_from` (`None` returned).
    async fn start_upload(
        &self,
        digest: &Digest,
        mount_from: Option<&RepoName>,
    ) -> Result<Option<String>, ClientError> {
        let mut url = self.path("blobs/uploads/");
        if let Some(from) = mount_from {
            url = with_query(
                &with_query(&url, "mount", digest.as_str()),
                "from",
                from.as_str(),
            );
        }
        let response = self.registry.send_simple(Method::POST, &url).await?;
        match response.status() {
            StatusCode::CREATED if mount_from.is_some() => Ok(None),
            StatusCode::ACCEPTED => Ok(Some(self.location(&response)?)),
            _ => Err(unexpected(&format!("POST {url}"), response).await),
        }
    }

    /// Where a session stands: the next offset, or `None` if the registry forgot it.
    async fn session_offset(&self, location: &str) -> Result<Option<u64>, ClientError> {
        let response = self.registry.send_simple(Method::GET, location).await?;
        match response.status() {
            StatusCode::NO_CONTENT => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(unexpected("GET upload session", response).await),
        }
        let end = response
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| r.rsplit_once('-'))
            .and_then(|(_, end)| end.parse::<u64>().ok());
        Ok(Some(end.map_or(0, |e| e + 1)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn patch_chunks(
        &self,
        desc: &Descriptor,
        source: &BlobSource,
        mut location: String,
        mut offset: u64,
        chunk: u64,
        saved: Option<&SessionFile>,
        progress: &Arc<BlobProgress>,
    ) -> Result<String, ClientError> {
        if let Some(s) = saved {
            s.save(location.as_bytes());
        }
        while offset < desc.size {
            let len = chunk.min(desc.size - offset);
            let url = location.clone();
            let response = self
                .registry
                .send(|| async {
                    progress.restart_at(offset);
                    let body = progress.count(source.open(offset, Some(len)).await?);
                    Ok(self
                        .registry
                        .request(Method::PATCH, &url)
                        .header(header::CONTENT_TYPE, OCTET_STREAM)
                        .header(header::CONTENT_LENGTH, len)
                        .header(
                            header::CONTENT_RANGE,
                            format!("{offset}-{}", offset + len - 1),
                        )
                        .body(reqwest::Body::wrap_stream(body)))
                })
                .await?;
            if response.status() != StatusCode::ACCEPTED {
                return Err(unexpected(&format!("PATCH blob {}", desc.digest), response).await);
            }
            location = self.location(&response)?;
            if let Some(s) = saved {
                s.save(location.as_bytes());
            }
            offset += len;
        }
        Ok(location)
    }

    fn location(&self, response: &Response) -> Result<String, ClientError> {
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::Status {
                what: "upload".into(),
                status: response.status().as_u16(),
                message: "no Location header".into(),
            })?;
        Ok(self.registry.url(location))
    }
}
