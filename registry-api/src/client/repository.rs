//! One repository on a registry: manifests, blob reads and referrers. Uploads are in
//! `upload.rs`.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use index_format::manifest::Descriptor;
use index_format::{Digest, RepoName};
use reqwest::{Method, StatusCode, header};
use sha2::{Digest as _, Sha256};

use super::ClientError;
use super::registry::{Registry, unexpected};
use blob_gateway::ByteStream;

/// Every manifest kind the client reads.
pub(super) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// A manifest's bytes, exactly as stored (its digest is over them), and its media type.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The bytes.
    pub bytes: Bytes,
    /// The media type (`Content-Type`).
    pub media_type: String,
    /// The SHA-256 of the bytes.
    pub digest: Digest,
}

impl Manifest {
    /// A manifest of `bytes` with `media_type`; the digest is computed.
    pub fn new(bytes: Bytes, media_type: String) -> Self {
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        Self {
            digest: Digest::sha256(&hash),
            bytes,
            media_type,
        }
    }

    /// Its descriptor.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            urls: None,
            annotations: None,
            artifact_type: None,
            platform: None,
        }
    }
}

/// A repository on a registry.
#[derive(Clone)]
pub struct Repository {
    pub(super) registry: Arc<Registry>,
    host: String,
    name: RepoName,
}

impl Repository {
    pub(super) fn new(registry: Arc<Registry>, host: String, name: RepoName) -> Self {
        Self {
            registry,
            host,
            name,
        }
    }

    /// The repository's name.
    pub fn name(&self) -> &RepoName {
        &self.name
    }

    /// The registry's `host[:port]`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The registry connection.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(super) fn path(&self, rest: &str) -> String {
        format!("/v2/{}/{rest}", self.name)
    }

    /// The manifest `reference` (tag or digest) names; `None` when there is none.
    pub async fn manifest(&self, reference: &str) -> Result<Option<Manifest>, ClientError> {
        let url = self.path(&format!("manifests/{reference}"));
        let response = self
            .registry
            .send_built(|| {
                self.registry
                    .request(Method::GET, &url)
                    .header(header::ACCEPT, ACCEPT)
            })
            .await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(unexpected(&format!("GET {url}"), response).await),
        }
        let media_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes().await.map_err(ClientError::Http)?;
        let manifest = Manifest::new(bytes, media_type);
        // A manifest fetched by digest must be that digest's bytes.
        if let Ok(d) = Digest::new(reference)
            && d != manifest.digest
        {
            return Err(ClientError::DigestMismatch {
                digest: d.to_string(),
                actual: manifest.digest.to_string(),
            });
        }
        Ok(Some(manifest))
    }

    /// Stores `manifest` under `reference` (a tag, or its digest).
    pub async fn put_manifest(
        &self,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<(), ClientError> {
        let url = self.path(&format!("manifests/{reference}"));
        let response = self
            .registry
            .send_built(|| {
                self.registry
                    .request(Method::PUT, &url)
                    .header(header::CONTENT_TYPE, &manifest.media_type)
                    .body(manifest.bytes.clone())
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(unexpected(&format!("PUT {url}"), response).await);
        }
        Ok(())
    }

    /// The blob's size when the repository has it.
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, ClientError> {
        let url = self.path(&format!("blobs/{digest}"));
        let response = self.registry.send_simple(Method::HEAD, &url).await?;
        match response.status() {
            StatusCode::OK => Ok(Some(
                response
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(unexpected(&format!("HEAD {url}"), response).await),
        }
    }

    /// Streams the blob from byte `offset`, `len` bytes (`None`: to the end).
    pub async fn open_blob(
        &self,
        digest: &Digest,
        offset: u64,
        len: Option<u64>,
    ) -> Result<ByteStream, ClientError> {
        let url = self.path(&format!("blobs/{digest}"));
        let range = match (offset, len) {
            (0, None) => None,
            (o, None) => Some(format!("bytes={o}-")),
            (o, Some(l)) => Some(format!("bytes={o}-{}", (o + l).saturating_sub(1))),
        };
        let response = self
            .registry
            .send_built(|| {
                let r = self.registry.request(Method::GET, &url);
                match &range {
                    Some(range) => r.header(header::RANGE, range),
                    None => r,
                }
            })
            .await?;
        let ok = match range {
            None => response.status() == StatusCode::OK,
            Some(_) => response.status() == StatusCode::PARTIAL_CONTENT,
        };
        if !ok {
            return Err(unexpected(&format!("GET {url}"), response).await);
        }
        Ok(Box::pin(
            response.bytes_stream().map_err(std::io::Error::other),
        ))
    }

    /// The manifests whose subject is `digest` (the referrers API); none when the
    /// registry does not offer it.
    pub async fn referrers(&self, digest: &Digest) -> Result<Vec<Descriptor>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Referrers {
            #[serde(default)]
            manifests: Vec<Descriptor>,
        }
        let url = self.path(&format!("referrers/{digest}"));
        let response = self.registry.send_simple(Method::GET, &url).await?;
        match response.status() {
            StatusCode::OK => Ok(response
                .json::<Referrers>()
                .await
                .map_err(ClientError::Http)?
                .manifests),
            StatusCode::NOT_FOUND => Ok(Vec::new()),
            _ => Err(unexpected(&format!("GET {url}"), response).await),
        }
    }
}
