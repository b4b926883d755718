//! OCI upload sessions, kept in the store so any process sharing it can continue one, and
//! a restart loses nothing: `uploads/<id>/state.json` holds the repository, the multipart
//! upload, its parts and the running hash state.
//!
//! Bytes are hashed as they stream into parts. Finishing ([`Uploads::finish`]) checks the
//! digest and publishes the blob under `blobs/` by a server-side copy (create-only, so a
//! concurrent push of the same blob is harmless); it returns a [`PublishedUpload`], which
//! the index links into the repository before it closes the session. Every step of that
//! is safe to repeat, so a closing `PUT` retried after a crash at any instant finishes the
//! upload (see `finish.rs`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use index_format::documents::to_bytes;
use index_format::{Digest, DigestAlgorithm, RepoName, StorageKey, UploadId};
use serde::{Deserialize, Serialize};

use crate::digest::{DigestWriter, HashState};
use crate::store::{
    ByteStream, CompletedPart, ETag, MultipartId, ObjectStore, PutCondition, StoreError, put_bytes,
};

mod copysum;
mod direct;
mod fault;
mod finish;
mod gc;
mod parts;

pub use copysum::CopyChecksums;
pub use direct::DirectUpload;
pub use fault::FaultPoint;
pub use finish::PublishedUpload;
pub use gc::GcReport;

const MAX_STATE_BYTES: u64 = 1 << 20;
/// S3 numbers parts from 1 to 10,000; the filesystem follows the same rule.
const MAX_PARTS: usize = 10_000;

/// The persisted state of one upload session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadState {
    /// The repository the session belongs to; other repositories do not see it.
    pub repo: RepoName,
    /// Created with the first non-empty chunk.
    pub multipart: Option<MultipartId>,
    /// The parts received, in order.
    pub parts: Vec<CompletedPart>,
    /// The running hash of every byte received.
    pub hash: HashState,
    /// Seconds since the epoch, for garbage collection of abandoned uploads.
    pub started: u64,
    /// Received bytes short of a whole part, kept in the store between requests when the
    /// store needs equal-sized parts.
    #[serde(default)]
    pub tail: Option<Tail>,
    /// Set once a closing `PUT` has delivered its bytes: the session's content is final,
    /// and a retried `PUT` only completes it (its body is not appended again).
    #[serde(default)]
    pub closing: bool,
    /// Set for a direct upload (the client writes to the store itself): what it promised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct: Option<DirectUpload>,
}

/// An upload's bytes that do not yet fill a part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tail {
    /// Names this generation of the tail object.
    pub id: UploadId,
    /// How many bytes it holds.
    pub size: u64,
}

impl UploadState {
    /// A session of `repo` that has received nothing, started now.
    pub(crate) fn fresh(repo: &RepoName) -> Self {
        Self {
            repo: repo.clone(),
            multipart: None,
            parts: Vec::new(),
            hash: DigestWriter::new(DigestAlgorithm::Sha256).save(),
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            tail: None,
            closing: false,
            direct: None,
        }
    }

    /// Bytes received so far.
    pub fn offset(&self) -> u64 {
        self.hash.size
    }
}

/// Why an upload operation failed. Each variant says what a client can do about it.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// No such session in this repository (never started, finished, cancelled or expired).
    #[error("upload {0} is unknown")]
    Unknown(UploadId),
    /// A chunk that does not start where the session's bytes end.
    #[error("chunk starts at {got} but the upload has {expected} bytes")]
    OutOfOrder {
        /// The session's offset: where the next chunk must start.
        expected: u64,
        /// Where the chunk said it starts.
        got: u64,
    },
    /// A chunk whose body is not as long as its `Content-Length` or `Content-Range` said.
    #[error("chunk announced {announced} bytes but carried {received}")]
    SizeMismatch {
        /// The length the request declared.
        announced: u64,
        /// The bytes that arrived.
        received: u64,
    },
    /// The closing digest is not the digest of the bytes received.
    #[error("digest {expected} does not match the uploaded content ({computed})")]
    DigestMismatch {
        /// The digest the client gave.
        expected: Digest,
        /// The digest of the session's bytes.
        computed: Digest,
    },
    /// A chunk after a closing `PUT` delivered the session's last bytes.
    #[error("upload {0} is being completed; repeat the closing PUT")]
    Closing(UploadId),
    /// Another request changed the session while this one ran: retrying is safe.
    #[error("upload {0} changed while this request ran; retry")]
    Conflict(UploadId),
    /// More chunks than the store can hold parts.
    #[error("upload {id} has reached the limit of {MAX_PARTS} chunks")]
    TooManyParts {
        /// The session.
        id: UploadId,
    },
    /// The stored session cannot be read back: a damaged store, not the client's doing.
    #[error("upload {id}: stored state is unusable: {reason}")]
    CorruptState {
        /// The session.
        id: UploadId,
        /// What is wrong with it.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Upload sessions on a store.
#[derive(Clone)]
pub struct Uploads {
    store: Arc<dyn ObjectStore>,
    fault: Option<FaultPoint>,
}

/// A blob now stored under `blobs/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// Its digest, verified against its bytes.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// A closing request's bytes: the body, and the length it declared (if it did).
pub struct ClosingBody {
    /// The request body.
    pub body: ByteStream,
    /// `Content-Length` (or the length a `Content-Range` gives), when sent.
    pub size: Option<u64>,
    /// Where the client said the body starts (`Content-Range`), when sent.
    pub start: Option<u64>,
}

impl Uploads {
    /// Sessions on `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store, fault: None }
    }

    /// Stops the process at `point` (crash tests only; see [`FaultPoint`]).
    pub fn with_fault(mut self, point: Option<FaultPoint>) -> Self {
        self.fault = point;
        self
    }

    /// Starts a session for `repo`.
    pub async fn start(&self, repo: &RepoName) -> Result<(UploadId, UploadState), UploadError> {
        let id = new_id();
        let state = UploadState::fresh(repo);
        self.save(&id, &state, PutCondition::IfNoneMatch).await?;
        Ok((id, state))
    }

    /// The state of a session of `repo`; a session of another repository is unknown here.
    pub async fn status(
        &self,
        repo: &RepoName,
        id: &UploadId,
    ) -> Result<(UploadState, ETag), UploadError> {
        let (state, etag) = self.load(id).await?;
        if &state.repo != repo {
            return Err(UploadError::Unknown(id.clone()));
        }
        Ok((state, etag))
    }

    async fn load(&self, id: &UploadId) -> Result<(UploadState, ETag), UploadError> {
        let key = StorageKey::UploadState(id.clone());
        let (bytes, info) = match self.store.read(&key, MAX_STATE_BYTES).await {
            Ok(x) => x,
            Err(e) if e.is_not_found() => return Err(UploadError::Unknown(id.clone())),
            Err(e) => return Err(e.into()),
        };
        let state = serde_json::from_slice(&bytes).map_err(|e| UploadError::CorruptState {
            id: id.clone(),
            reason: e.to_string(),
        })?;
        Ok((state, info.etag))
    }

    async fn save(
        &self,
        id: &UploadId,
        state: &UploadState,
        condition: PutCondition,
    ) -> Result<ETag, UploadError> {
        let key = StorageKey::UploadState(id.clone());
        let bytes = to_bytes(state).map_err(|e| UploadError::CorruptState {
            id: id.clone(),
            reason: e.to_string(),
        })?;
        match put_bytes(self.store.as_ref(), &key, Bytes::from(bytes), condition).await {
            Ok(info) => Ok(info.etag),
            Err(e) if e.is_precondition_failed() => Err(UploadError::Conflict(id.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// Appends a chunk. `start`, when the client sent `Content-Range`, must equal the
    /// current offset. Returns the new state.
    pub async fn append(
        &self,
        repo: &RepoName,
        id: &UploadId,
        start: Option<u64>,
        body: ByteStream,
        size: Option<u64>,
    ) -> Result<UploadState, UploadError> {
        let (mut state, etag) = self.status(repo, id).await?;
        if state.closing {
            return Err(UploadError::Closing(id.clone()));
        }
        standard_only(id, &state)?;
        check_start(&state, start)?;
        let mut superseded = Vec::new();
        self.write_part(id, &mut state, body, size, &mut superseded)
            .await?;
        self.save(id, &state, PutCondition::IfMatch(etag)).await?;
        self.delete_tails(id, &superseded).await?;
        Ok(state)
    }

    /// Cancels a session of `repo`, dropping its bytes.
    pub async fn cancel(&self, repo: &RepoName, id: &UploadId) -> Result<(), UploadError> {
        let (state, _) = self.status(repo, id).await?;
        self.discard(id, &state).await
    }

    /// Removes every object of the session; the state goes last, so that while it exists
    /// garbage collection can find the rest.
    async fn discard(&self, id: &UploadId, state: &UploadState) -> Result<(), UploadError> {
        let data = StorageKey::UploadData(id.clone());
        if let Some(m) = &state.multipart {
            // Idempotent: an upload already completed or aborted is fine.
            self.store.abort_multipart(&data, m).await?;
        }
        if let Some(t) = &state.tail {
            self.store
                .delete(&StorageKey::UploadTail(id.clone(), t.id.clone()))
                .await?;
        }
        self.store.delete(&data).await?;
        self.store
            .delete(&StorageKey::UploadState(id.clone()))
            .await?;
        Ok(())
    }

    /// The session's running hash, or why it cannot be restored.
    fn hasher(id: &UploadId, state: &UploadState) -> Result<DigestWriter, UploadError> {
        DigestWriter::restore(&state.hash).ok_or_else(|| UploadError::CorruptState {
            id: id.clone(),
            reason: "the saved hash state cannot be restored".into(),
        })
    }
}

/// `OutOfOrder` unless `start` (when given) is the session's offset.
fn check_start(state: &UploadState, start: Option<u64>) -> Result<(), UploadError> {
    match start.filter(|&s| s != state.offset()) {
        Some(got) => Err(UploadError::OutOfOrder {
            expected: state.offset(),
            got,
        }),
        None => Ok(()),
    }
}

/// A fresh random id for a session or a tail.
/// A direct session takes no bytes through the API.
fn standard_only(id: &UploadId, state: &UploadState) -> Result<(), UploadError> {
    match state.direct {
        Some(_) => Err(UploadError::Unknown(id.clone())),
        None => Ok(()),
    }
}

fn new_id() -> UploadId {
    UploadId::from_u128(uuid::Uuid::new_v4().as_u128())
}

/// Part numbers run from 1 to [`MAX_PARTS`].
fn next_part_number(id: &UploadId, state: &UploadState) -> Result<u32, UploadError> {
    let n = state.parts.len() + 1;
    if n > MAX_PARTS {
        return Err(UploadError::TooManyParts { id: id.clone() });
    }
    u32::try_from(n).map_err(|_| UploadError::TooManyParts { id: id.clone() })
}

/// One in-memory chunk as a body.
fn one(bytes: Bytes) -> ByteStream {
    crate::store::one_chunk(bytes)
}
