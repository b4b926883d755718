//! OCI upload sessions, kept in the store so any process sharing it can continue one, and
//! a restart loses nothing: `uploads/<id>/state.json` holds the repository, the multipart
//! upload, its parts and the running hash state.
//!
//! Bytes are hashed as they stream into parts; finishing checks the digest, publishes the
//! blob by a server-side copy (create-only, so a concurrent push of the same blob is
//! harmless), then links it into the repository.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::TryStreamExt;
use index_format::documents::{BlobLink, to_bytes};
use index_format::{Digest, DigestAlgorithm, RepoName, StorageKey, UploadId};
use serde::{Deserialize, Serialize};

use crate::digest::{DigestWriter, HashState};
use crate::store::{
    ByteStream, CompletedPart, ETag, MultipartId, ObjectStore, PutCondition, PutMeta, StoreError,
    get_bytes, put_bytes,
};

mod gc;
mod parts;

pub use gc::GcReport;

const MAX_STATE_BYTES: u64 = 1 << 20;

/// The persisted state of one upload session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadState {
    pub repo: RepoName,
    /// Created with the first non-empty chunk.
    pub multipart: Option<MultipartId>,
    pub parts: Vec<CompletedPart>,
    pub hash: HashState,
    /// Seconds since the epoch, for garbage collection of abandoned uploads.
    pub started: u64,
    /// Received bytes short of a whole part, kept in the store between requests when the
    /// store needs equal-sized parts.
    #[serde(default)]
    pub tail: Option<Tail>,
}

/// An upload's bytes that do not yet fill a part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tail {
    pub id: UploadId,
    pub size: u64,
}

impl UploadState {
    /// Bytes received so far.
    pub fn offset(&self) -> u64 {
        self.hash.size
    }
}

/// Why an upload operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("upload {0} is unknown")]
    Unknown(UploadId),
    #[error("chunk starts at {got} but the upload has {expected} bytes")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("digest {expected} does not match the uploaded content ({computed})")]
    DigestMismatch { expected: Digest, computed: Digest },
    #[error("the upload changed while this request ran; retry")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Upload sessions on a store.
#[derive(Clone)]
pub struct Uploads {
    store: Arc<dyn ObjectStore>,
}

/// A blob now stored and linked into a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub digest: Digest,
    pub size: u64,
}

impl Uploads {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Starts a session for `repo`.
    pub async fn start(&self, repo: &RepoName) -> Result<(UploadId, UploadState), UploadError> {
        let id = UploadId::new(&uuid::Uuid::new_v4().to_string())
            .ok_or_else(|| UploadError::Conflict)?;
        let state = UploadState {
            repo: repo.clone(),
            multipart: None,
            parts: Vec::new(),
            hash: DigestWriter::new(DigestAlgorithm::Sha256).save(),
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            tail: None,
        };
        self.save(&id, &state, PutCondition::IfNoneMatch).await?;
        Ok((id, state))
    }

    /// The state of a session of `repo`; a session of another repository is unknown here.
    pub async fn status(
        &self,
        repo: &RepoName,
        id: &UploadId,
    ) -> Result<(UploadState, ETag), UploadError> {
        let key = StorageKey::UploadState(id.clone());
        let (bytes, info) = match get_bytes(self.store.as_ref(), &key, MAX_STATE_BYTES).await {
            Ok(x) => x,
            Err(e) if e.is_not_found() => return Err(UploadError::Unknown(id.clone())),
            Err(e) => return Err(e.into()),
        };
        let state: UploadState =
            serde_json::from_slice(&bytes).map_err(|_| UploadError::Unknown(id.clone()))?;
        if &state.repo != repo {
            return Err(UploadError::Unknown(id.clone()));
        }
        Ok((state, info.etag))
    }

    async fn save(
        &self,
        id: &UploadId,
        state: &UploadState,
        condition: PutCondition,
    ) -> Result<ETag, UploadError> {
        let key = StorageKey::UploadState(id.clone());
        let meta = PutMeta::for_key(&key, None);
        match put_bytes(
            self.store.as_ref(),
            &key,
            Bytes::from(to_bytes(state)),
            meta,
            condition,
        )
        .await
        {
            Ok(info) => Ok(info.etag),
            Err(e) if e.is_precondition_failed() => Err(UploadError::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    /// Appends a chunk. `start`, when the client sent `Content-Range`, must equal the
    /// current offset. Returns the new offset.
    pub async fn append(
        &self,
        repo: &RepoName,
        id: &UploadId,
        start: Option<u64>,
        body: ByteStream,
        size: Option<u64>,
    ) -> Result<UploadState, UploadError> {
        let (mut state, etag) = self.status(repo, id).await?;
        if let Some(got) = start.filter(|&s| s != state.offset()) {
            return Err(UploadError::OutOfOrder {
                expected: state.offset(),
                got,
            });
        }
        let mut superseded = Vec::new();
        self.write_part(id, &mut state, body, size, &mut superseded)
            .await?;
        self.save(id, &state, PutCondition::IfMatch(etag)).await?;
        self.delete_tails(id, &superseded).await?;
        Ok(state)
    }

    /// Closes a session: appends `body` (if any), checks `expected`, publishes the blob and
    /// links it into the session's repository. On a digest mismatch nothing is stored and
    /// the session is discarded.
    pub async fn finish(
        &self,
        repo: &RepoName,
        id: &UploadId,
        body: Option<(ByteStream, Option<u64>)>,
        expected: &Digest,
    ) -> Result<StoredBlob, UploadError> {
        let (mut state, etag) = self.status(repo, id).await?;
        let body_given = body.is_some();
        let mut superseded = Vec::new();
        if let Some((body, size)) = body {
            self.write_part(id, &mut state, body, size, &mut superseded)
                .await?;
        }
        self.flush_tail(id, &mut state, &mut superseded).await?;
        if body_given || !superseded.is_empty() {
            // Claim the session so a concurrent PUT or PATCH cannot also finish it.
            self.save(id, &state, PutCondition::IfMatch(etag)).await?;
            self.delete_tails(id, &superseded).await?;
        }
        let writer = DigestWriter::restore(&state.hash).ok_or(UploadError::Conflict)?;
        let data = StorageKey::UploadData(id.clone());
        let mut assembled = false;
        let computed = if writer.algorithm() == expected.algorithm() {
            writer.digest()
        } else {
            // Sessions hash with sha256; a client that closes with another algorithm gets
            // the one extra read that verifying it needs.
            assembled = self.assemble(&data, &state).await?;
            self.rehash(&data, assembled, expected.algorithm()).await?
        };
        if &computed != expected {
            self.cancel(repo, id).await?;
            return Err(UploadError::DigestMismatch {
                expected: expected.clone(),
                computed,
            });
        }
        let size = state.offset();
        self.publish(&data, &state, assembled, expected).await?;
        self.link(repo, expected, size).await?;
        self.discard(id, &state, assembled).await?;
        Ok(StoredBlob {
            digest: expected.clone(),
            size,
        })
    }

    /// Completes the multipart upload into the data object; `false` if there were no bytes.
    async fn assemble(&self, data: &StorageKey, state: &UploadState) -> Result<bool, UploadError> {
        match &state.multipart {
            Some(m) => {
                self.store.complete_multipart(data, m, &state.parts).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Makes `blobs/<digest>` exist, from the session's data unless it already does.
    async fn publish(
        &self,
        data: &StorageKey,
        state: &UploadState,
        assembled: bool,
        digest: &Digest,
    ) -> Result<(), UploadError> {
        let blob = StorageKey::Blob(digest.clone());
        match self.store.head(&blob).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        let meta = PutMeta::for_key(&blob, None);
        let has_data = assembled || self.assemble(data, state).await?;
        let result = if has_data {
            self.store
                .copy(data, &blob, meta, PutCondition::IfNoneMatch)
                .await
        } else {
            put_bytes(
                self.store.as_ref(),
                &blob,
                Bytes::new(),
                meta,
                PutCondition::IfNoneMatch,
            )
            .await
        };
        match result {
            Ok(_) => Ok(()),
            // Someone published the same bytes first: same digest, same content.
            Err(e) if e.is_precondition_failed() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn rehash(
        &self,
        data: &StorageKey,
        assembled: bool,
        algorithm: DigestAlgorithm,
    ) -> Result<Digest, UploadError> {
        let mut writer = DigestWriter::new(algorithm);
        if assembled {
            let mut stream = self.store.get(data, None).await?.stream;
            while let Some(chunk) = stream.try_next().await.map_err(|source| StoreError::Io {
                key: data.key(),
                source,
            })? {
                writer.update(&chunk);
            }
        }
        Ok(writer.digest())
    }

    /// Records that `repo` may serve `digest`.
    pub async fn link(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError> {
        let key = StorageKey::BlobLink(repo.clone(), digest.clone());
        let link = BlobLink {
            digest: digest.clone(),
            size,
        };
        let meta = PutMeta::for_key(&key, None);
        put_bytes(
            self.store.as_ref(),
            &key,
            Bytes::from(to_bytes(&link)),
            meta,
            PutCondition::None,
        )
        .await
        .map(drop)
    }

    /// Cancels a session of `repo`, dropping its bytes.
    pub async fn cancel(&self, repo: &RepoName, id: &UploadId) -> Result<(), UploadError> {
        let (state, _) = self.status(repo, id).await?;
        self.discard(id, &state, false).await
    }

    async fn discard(
        &self,
        id: &UploadId,
        state: &UploadState,
        assembled: bool,
    ) -> Result<(), UploadError> {
        let data = StorageKey::UploadData(id.clone());
        if let (Some(m), false) = (&state.multipart, assembled) {
            self.store.abort_multipart(&data, m).await?;
        }
        if let Some(t) = &state.tail {
            self.store
                .delete(&StorageKey::UploadTail(id.clone(), t.id.clone()))
                .await?;
        }
        self.store.delete(&data).await?;
        // The state goes last: while it exists, garbage collection can find the rest.
        self.store
            .delete(&StorageKey::UploadState(id.clone()))
            .await?;
        Ok(())
    }
}
