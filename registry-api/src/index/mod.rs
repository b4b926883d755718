//! The one owner of the sparse index: every read and write of an index document (manifests
//! by digest and by tag, tag lists, referrers, blob links, the catalog, `config.json`) goes
//! through [`Index`], and nothing else in the server builds a key for one.
//!
//! It lives in `registry-api`, not `blob-gateway`, because it is the registry's meaning of
//! the store: which repository may serve which blob, what a tag points at. `blob-gateway`
//! moves bytes and keeps upload sessions; it hands the index a verified, published blob
//! ([`PublishedUpload`]) and never writes an index document itself, so the dependency runs
//! one way (`registry-api` → `blob-gateway` → `index-format`).
//!
//! Write order makes every crash leave a readable index:
//! - a manifest's bytes are stored under its digest before any tag or referrers list names
//!   it, and its references are checked to be linked first;
//! - a blob is published before it is linked, and linked before its session is discarded;
//! - a tag leaves its tag list before its file is deleted, so a list never names a ghost.
//!
//! Read-modify-write documents (tag lists, referrers, the catalog) are updated by one loop
//! (`documents.rs`): read with the ETag, change, write back only if unchanged (or, for a
//! new document, only if still absent), and retry on conflict, so concurrent pushes across
//! tasks and processes never lose a tag. Derived documents can be rebuilt whole from the
//! manifests and tags (`maintenance.rs`: `cargohold index check | rebuild`).
//!
//! The browse documents for people (`browse/`) are written last in each write path, from
//! the same facts, and rebuilt by the same commands.

mod blobs;
mod browse;
mod documents;
mod maintenance;
mod manifests;

use std::sync::Arc;

use blob_gateway::{ObjectStore, PublishedUpload, StoreError, UploadError};
use index_format::{Digest, RepoName};

pub use browse::DocumentAbout;
pub use maintenance::{Finding, Report};
pub use manifests::{PushedManifest, StoredManifest, digest_of};

/// Largest manifest accepted, as the spec asks registries to support (4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// The sparse index on a store.
#[derive(Clone)]
pub struct Index {
    store: Arc<dyn ObjectStore>,
}

/// Why an index operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored document does not parse: a damaged index (`cargohold index rebuild`).
    #[error("{key}: stored document is not valid JSON")]
    Corrupt {
        /// The document's key.
        key: String,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// A document could not be serialized (never expected: the documents are plain).
    #[error("{key}: document could not be serialized")]
    Serialize {
        /// The document's key.
        key: String,
        /// What the serializer said.
        #[source]
        source: serde_json::Error,
    },
    /// Other writers kept changing a document.
    #[error("{key}: still changing after {attempts} attempts")]
    Contended {
        /// The document's key.
        key: String,
        /// How many times the update was tried.
        attempts: u32,
    },
    /// A pushed manifest names blobs or manifests the repository cannot serve.
    #[error("{} referenced by the manifest is unknown to {repo}", missing.first().map_or("", Digest::as_str))]
    MissingReferences {
        /// The repository pushed to.
        repo: RepoName,
        /// What is missing, in the manifest's order.
        missing: Vec<Digest>,
    },
    /// A pushed manifest declares a size for a blob or manifest other than its stored one.
    #[error("{digest} is {stored} bytes, not the {declared} the manifest declares")]
    WrongSize {
        /// The blob or manifest.
        digest: Digest,
        /// The size in the manifest's descriptor.
        declared: u64,
        /// The size stored.
        stored: u64,
    },
    /// Closing the upload session failed after the blob was linked.
    #[error(transparent)]
    Upload(#[from] UploadError),
}

/// A store result with "not found" as `None`: most index reads ask whether a thing exists.
fn found<T>(result: Result<T, StoreError>) -> Result<Option<T>, IndexError> {
    match result {
        Ok(x) => Ok(Some(x)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl Index {
    /// The index on `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Links a finished upload's blob into its repository, then closes the session: the
    /// order that lets a retried closing request finish after a crash between the two.
    pub async fn link_upload(
        &self,
        upload: PublishedUpload,
    ) -> Result<blob_gateway::StoredBlob, IndexError> {
        self.link_blob(upload.repo(), &upload.blob.digest, upload.blob.size)
            .await?;
        Ok(upload.close().await?)
    }
}
