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

/// How a blob may be handed out, decided by the caller from who may read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Always streamed through the API.
    Stream,
    /// A presigned URL valid this long, where the backend can sign one.
    Presigned(Duration),
    /// The public CDN URL where there is one (anyone may read the blob), else as
    /// `Presigned`.
    Public(Duration),
}

impl Blobs {
    /// The blobs on `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// A redirect when `via` asks for one and the backend can give a URL; otherwise the
    /// bytes of `range` (or all of them).
    pub async fn download(
        &self,
        digest: &Digest,
        range: Option<ByteRange>,
        via: Via,
    ) -> Result<Download, StoreError> {
        let key = StorageKey::Blob(digest.clone());
        if let (Via::Presigned(expires) | Via::Public(expires), Some(presigner)) =
            (via, self.store.presigner())
        {
            let public = match via {
                Via::Public(_) => presigner.public_url(&key),
                _ => None,
            };
            let url = match public {
                Some(url) => url,
                None => presigner.presign_get(&key, expires).await?,
            };
            return Ok(Download::Redirect(url));
        }
        Ok(Download::Stream(self.store.get(&key, range).await?))
    }

    /// The `Cache-Control` of a blob: content by digest never changes.
    pub fn cache_control() -> &'static str {
        index_format::layout::IMMUTABLE
    }
}
