//! The two ends an image moves between: a repository on a registry, or a layout on disk.

use std::path::PathBuf;
use std::sync::Arc;

use blob_gateway::ByteStream;
use index_format::manifest::Descriptor;
use index_format::{Digest, RepoName};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::layout::Layout;
use super::progress::BlobProgress;
use super::repository::{Manifest, Repository};
use super::upload::BlobOutcome;
use super::{ClientError, Options};

/// Where a blob's bytes come from; opened afresh for each attempt.
#[derive(Clone)]
pub enum BlobSource {
    /// A file (a layout's blob).
    File(PathBuf),
    /// A blob on a registry.
    Registry(Repository, Digest),
}

impl BlobSource {
    /// The bytes from `offset`, `len` of them (`None`: to the end).
    pub async fn open(&self, offset: u64, len: Option<u64>) -> Result<ByteStream, ClientError> {
        match self {
            Self::File(path) => {
                let io = |e| ClientError::io(path.display(), e);
                let mut file = tokio::fs::File::open(path).await.map_err(io)?;
                file.seek(std::io::SeekFrom::Start(offset))
                    .await
                    .map_err(io)?;
                let reader = file.take(len.unwrap_or(u64::MAX));
                Ok(Box::pin(ReaderStream::with_capacity(reader, 256 << 10)))
            }
            Self::Registry(repo, digest) => repo.open_blob(digest, offset, len).await,
        }
    }
}

/// One end of a transfer.
#[derive(Clone)]
pub enum Endpoint {
    /// A repository on a registry.
    Registry(Repository),
    /// An OCI layout directory.
    Layout(Arc<Layout>),
}

impl Endpoint {
    /// The manifest `reference` names, if any.
    pub async fn manifest(&self, reference: &str) -> Result<Option<Manifest>, ClientError> {
        match self {
            Self::Registry(r) => r.manifest(reference).await,
            Self::Layout(l) => l.manifest(reference),
        }
    }

    /// Manifests whose subject is `digest` (a layout has no referrers API: none).
    pub async fn referrers(&self, digest: &Digest) -> Result<Vec<Descriptor>, ClientError> {
        match self {
            Self::Registry(r) => r.referrers(digest).await,
            Self::Layout(_) => Ok(Vec::new()),
        }
    }

    /// Where to read the blob `digest` from.
    pub fn blob_source(&self, digest: &Digest) -> BlobSource {
        match self {
            Self::Registry(r) => BlobSource::Registry(r.clone(), digest.clone()),
            Self::Layout(l) => BlobSource::File(l.blob_path(digest)),
        }
    }

    /// The repository to mount blobs from when copying from `self` to `to` on one registry.
    pub fn mount_source(&self, to: &Endpoint) -> Option<RepoName> {
        match (self, to) {
            (Self::Registry(a), Self::Registry(b))
                if a.host() == b.host() && a.name() != b.name() =>
            {
                Some(a.name().clone())
            }
            _ => None,
        }
    }

    /// Stores the blob `desc` from `source`.
    pub async fn put_blob(
        &self,
        desc: &Descriptor,
        source: &BlobSource,
        mount_from: Option<&RepoName>,
        options: &Options,
        progress: &Arc<BlobProgress>,
    ) -> Result<BlobOutcome, ClientError> {
        match self {
            Self::Registry(r) => match source {
                BlobSource::File(path) if options.direct && r.offers_direct().await? => {
                    r.push_direct(desc, path, options, progress).await
                }
                _ => {
                    r.push_blob(desc, source, mount_from, options, progress)
                        .await
                }
            },
            Self::Layout(l) => {
                if l.blob_size(&desc.digest) == Some(desc.size) {
                    return Ok(BlobOutcome::Existed);
                }
                l.write_blob(desc, source.open(0, None).await?, progress)
                    .await?;
                Ok(BlobOutcome::Uploaded)
            }
        }
    }

    /// Stores the image's root manifest under `tag` (by digest when `None`); a layout
    /// lists it in `index.json`.
    pub async fn put_root(
        &self,
        tag: Option<&str>,
        manifest: &Manifest,
    ) -> Result<(), ClientError> {
        match self {
            Self::Registry(_) => self.put_manifest(tag, manifest).await,
            Self::Layout(l) => l.add_to_index(manifest, tag),
        }
    }

    /// Stores a manifest under `tag`, or by digest when `None`.
    pub async fn put_manifest(
        &self,
        tag: Option<&str>,
        manifest: &Manifest,
    ) -> Result<(), ClientError> {
        match self {
            Self::Registry(r) => {
                let reference = tag.map_or_else(|| manifest.digest.to_string(), str::to_owned);
                r.put_manifest(&reference, manifest).await
            }
            Self::Layout(l) => match tag {
                Some(_) => l.add_to_index(manifest, tag),
                None => l.write_small(&manifest.digest, &manifest.bytes),
            },
        }
    }
}
