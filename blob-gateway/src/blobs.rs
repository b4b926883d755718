//! Content-addressed blobs under `blobs/`: how a download is answered. Which repository
//! may serve a blob is the index's business (its blob links); this only reaches the bytes.

use std::sync::Arc;
use std::time::Duration;

use index_format::{Digest, StorageKey};

use crate::store::{ByteRange, ObjectBody, ObjectStore, StoreError};

/// The blobs on a store.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
}

/// How a blob download is answered.
pub enum Download {
    /// A URL the client fetches the bytes from directly (presigned, or on a CDN).
    Redirect(String),
    /// The bytes (of the range asked for), streamed through the API.
    Stream(ObjectBody),
}

impl Blobs {
    /// The blobs on `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// A redirect when `presign_for` is given and the backend can sign URLs (valid that
    /// long); otherwise the bytes of `range` (or all of them).
    pub async fn download(
        &self,
        digest: &Digest,
        range: Option<ByteRange>,
        presign_for: Option<Duration>,
    ) -> Result<Download, StoreError> {
        let key = StorageKey::Blob(digest.clone());
        if let (Some(expires), Some(presigner)) = (presign_for, self.store.presigner()) {
            return Ok(Download::Redirect(
                presigner.presign_get(&key, expires).await?,
            ));
        }
        Ok(Download::Stream(self.store.get(&key, range).await?))
    }

    /// The `Cache-Control` of a blob: content by digest never changes.
    pub fn cache_control() -> &'static str {
        index_format::layout::IMMUTABLE
    }
}
