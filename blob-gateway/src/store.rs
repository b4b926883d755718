//! The object-store contract every backend implements, shaped after S3 so that the
//! filesystem and S3 backends are interchangeable behind `Arc<dyn ObjectStore>`.
//!
//! Contract, per method (the shared test suite in `tests/store_suite/` checks each):
//! - `head`/`get`: `NotFound` when the key does not exist. `get` with a range returns exactly
//!   those bytes; a range starting at or past the end is `InvalidRange`.
//! - `put`: atomic: readers see the old object or the whole new one, never a part, even
//!   when the writer crashes. `PutCondition::IfNoneMatch` fails with `PreconditionFailed` if
//!   the key exists; `IfMatch(etag)` fails unless the current ETag equals `etag`. Conditions
//!   hold against concurrent writers in other tasks and other processes.
//! - `delete`: idempotent; deleting a missing key is `Ok`.
//! - `list`: keys under a prefix in lexical order, at most `limit`, strictly after `after`.
//! - `copy`: server-side; the destination appears atomically, under the same conditions as
//!   `put`. The source is unchanged.
//! - metadata: every write stores the content type and cache-control the layout gives its
//!   key ([`StorageKey::content_type`], [`StorageKey::cache_control`]); only a manifest's
//!   media type and digest ([`ManifestMeta`]) are the writer's to give, and `head`, `get`
//!   and `read` return them ([`ObjectInfo::content_type`], [`ObjectInfo::digest`]).
//! - multipart: parts are numbered from 1; `complete` assembles the given parts in order
//!   and publishes the object atomically; `abort` is idempotent.

use std::fmt;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::Stream;
use index_format::{Digest, KeyPrefix, ManifestMediaType, StorageKey};

/// A stream of body bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// An entity tag: opaque, compared for equality only. Stored without quotes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(pub String);

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the store knows about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The whole object's length in bytes (not just a requested range).
    pub size: u64,
    /// The object's current ETag, for `PutCondition::IfMatch`.
    pub etag: ETag,
    /// The stored `Content-Type`; `None` when none was stored.
    pub content_type: Option<String>,
    /// The stored `Cache-Control`; `None` when none was stored.
    pub cache_control: Option<String>,
    /// When the object was last written; `None` when the backend did not say.
    pub last_modified: Option<SystemTime>,
    /// The SHA-256 of the bytes, when the backend hashed exactly the bytes it returned
    /// (the filesystem store's whole-object reads): spares the caller a second hash.
    pub sha256: Option<[u8; 32]>,
    /// The manifest digest its writer recorded ([`ManifestMeta::digest`]); `None` when
    /// none was. Stored with the bytes, so it describes the bytes it came with.
    pub digest: Option<String>,
}

/// What the writer of a manifest records with its bytes, so that a reader (the API, a
/// static host) serves it without parsing or hashing it: its media type (the object's
/// `Content-Type`) and its digest (`x-amz-meta-digest` on S3, R2's `digest` custom
/// metadata, `digest` in the filesystem sidecar). docs/index-format.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestMeta {
    /// The manifest's media type.
    pub media_type: ManifestMediaType,
    /// The digest of the bytes: the one in a by-digest key, the SHA-256 for a tag.
    pub digest: Digest,
}

/// An object's bytes, streamed, with what is known about it.
pub struct ObjectBody {
    /// What is known about the whole object.
    pub info: ObjectInfo,
    /// The byte range returned, inclusive; `None` for the whole object.
    pub range: Option<(u64, u64)>,
    /// The bytes of `range`, or of the whole object.
    pub stream: ByteStream,
}

/// A byte range request: `start..=end`, or `start..` when `end` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// Offset of the first byte wanted.
    pub start: u64,
    /// Offset of the last byte wanted (inclusive); `None` to read to the end.
    pub end: Option<u64>,
}

/// A precondition on a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutCondition {
    /// Write unconditionally.
    None,
    /// Create only: fail if the key exists (`If-None-Match: *`).
    IfNoneMatch,
    /// Replace only if the current object has this ETag (`If-Match`).
    IfMatch(ETag),
}

impl PutCondition {
    /// Whether a write under this condition may replace `current` (`None`: no object).
    pub fn holds(&self, current: Option<&ObjectInfo>) -> bool {
        match (self, current) {
            (Self::None, _) => true,
            (Self::IfNoneMatch, cur) => cur.is_none(),
            (Self::IfMatch(want), Some(cur)) => &cur.etag == want,
            (Self::IfMatch(_), None) => false,
        }
    }
}

/// Metadata stored with an object. Backends derive it from the key (and, for a manifest,
/// its media type), so no caller can store an object with the wrong type or cache rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct PutMeta {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub digest: Option<String>,
}

impl PutMeta {
    /// The content type and cache-control the layout assigns to `key`; `manifest`
    /// supplies what the layout leaves to the writer (a manifest's media type and digest).
    pub(crate) fn new(key: &StorageKey, manifest: Option<&ManifestMeta>) -> Self {
        Self {
            content_type: manifest
                .map(|m| m.media_type.as_str())
                .or(key.content_type())
                .map(str::to_owned),
            cache_control: Some(key.cache_control().to_owned()),
            digest: manifest.map(|m| m.digest.to_string()),
        }
    }
}

/// A multipart upload in progress, as the backend names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MultipartId(pub String);

/// A finished part: its number and the ETag the backend gave it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompletedPart {
    /// The part's number, from 1.
    pub number: u32,
    /// The ETag the backend gave the part, as `complete_multipart` needs it back.
    pub etag: String,
    /// The part's length in bytes.
    pub size: u64,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    /// Keys relative to the store root, in lexical order.
    pub keys: Vec<String>,
    /// Set when more keys follow; pass the last key as `after` to continue.
    pub truncated: bool,
}

/// A store failure. Every variant names the key it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("{key}: not found")]
    NotFound {
        /// The key of the object that was not found.
        key: String,
    },
    /// A write's `PutCondition` did not hold.
    #[error("{key}: precondition failed (the object changed or already exists)")]
    PreconditionFailed {
        /// The key of the object whose condition failed.
        key: String,
    },
    /// A ranged read started at or past the end of the object.
    #[error("{key}: range {start}- is not satisfiable for size {size}")]
    InvalidRange {
        /// The key of the object read.
        key: String,
        /// The requested first byte.
        start: u64,
        /// The object's size in bytes.
        size: u64,
    },
    /// The multipart upload does not exist (never started, completed or aborted).
    #[error("{key}: multipart upload {upload} is unknown")]
    NoSuchUpload {
        /// The key the upload was for.
        key: String,
        /// The upload's id; empty when the backend did not say.
        upload: String,
    },
    /// A multipart upload's parts do not fit together (sizes, ETags, order), or a part's
    /// body does not match its announced size.
    #[error("{key}: {message}")]
    InvalidPart {
        /// The key the upload is for.
        key: String,
        /// What does not fit.
        message: String,
    },
    /// An object is bigger than the reader allows (a corrupt or hostile index document).
    #[error("{key}: object of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The key of the object read.
        key: String,
        /// The object's size in bytes (or as much of it as was read before giving up).
        size: u64,
        /// The reader's limit in bytes.
        max: u64,
    },
    /// The backend answered in a way the contract does not allow (a ranged read answered
    /// whole, a missing upload id): a broken or incompatible server, not the client's fault.
    #[error("{key}: the storage backend misbehaved: {message}")]
    Backend {
        /// The key of the request the backend mishandled.
        key: String,
        /// What the backend did wrong.
        message: String,
    },
    /// Any other failure: a filesystem error, or a request the backend refused (denied
    /// access, a missing bucket, an unsupported operation).
    #[error("{key}: I/O error")]
    Io {
        /// The key of the object the operation concerned.
        key: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The backend could not be reached or is overloaded (timeouts, connection failures,
    /// 5xx, throttling), after the client's own retries: worth retrying later.
    #[error("{key}: storage backend unavailable")]
    Unavailable {
        /// The key of the object the operation concerned.
        key: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// Whether this is `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// Whether this is `PreconditionFailed`.
    pub fn is_precondition_failed(&self) -> bool {
        matches!(self, Self::PreconditionFailed { .. })
    }
}

/// The object store. See the module doc for the contract of each method.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// A short name for logs: `filesystem` or `s3`.
    fn backend(&self) -> &'static str;

    /// The object's metadata, without its bytes.
    async fn head(&self, key: &StorageKey) -> Result<ObjectInfo, StoreError>;

    /// Streams the object, or only `range` of it.
    async fn get(
        &self,
        key: &StorageKey,
        range: Option<ByteRange>,
    ) -> Result<ObjectBody, StoreError>;

    /// Stores `body` under `key` with the metadata the layout gives the key; a manifest's
    /// media type is stored as its content type, and its digest beside it.
    async fn put(
        &self,
        key: &StorageKey,
        body: ByteStream,
        manifest: Option<ManifestMeta>,
        condition: PutCondition,
    ) -> Result<ObjectInfo, StoreError>;

    /// Removes the object; a missing key is not an error.
    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError>;

    /// Up to `limit` keys under `prefix` that sort strictly after `after`.
    async fn list(
        &self,
        prefix: &KeyPrefix,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError>;

    /// Copies `from` to `to`, server-side; `to` gets the metadata the layout gives it.
    async fn copy(
        &self,
        from: &StorageKey,
        to: &StorageKey,
        condition: PutCondition,
    ) -> Result<ObjectInfo, StoreError>;

    /// Starts a multipart upload whose object gets the metadata the layout gives `key`.
    async fn create_multipart(&self, key: &StorageKey) -> Result<MultipartId, StoreError>;

    /// Uploads part `number` (from 1). `size`, when given, is the exact byte count of
    /// `body`; backends that need it up front (S3) are only called with it.
    async fn upload_part(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        number: u32,
        body: ByteStream,
        size: Option<u64>,
    ) -> Result<CompletedPart, StoreError>;

    /// The exact size every non-final part must have (S3 and R2 need equal parts of at
    /// least 5 MiB), or `None` when parts may be any size.
    fn part_size(&self) -> Option<u64> {
        None
    }

    /// Assembles `parts`, in order, into the object and publishes it atomically.
    async fn complete_multipart(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        parts: &[CompletedPart],
    ) -> Result<ObjectInfo, StoreError>;

    /// Abandons the upload and drops its parts; idempotent.
    async fn abort_multipart(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
    ) -> Result<(), StoreError>;

    /// The backend's presigner, when it can hand out URLs for direct downloads; the
    /// filesystem has none, and the API streams instead.
    fn presigner(&self) -> Option<&dyn Presign> {
        None
    }

    /// Reads a whole small object (an index document, a manifest) into memory, refusing
    /// anything over `max` bytes with `TooLarge`. The one way to read a small object;
    /// backends override it when one call can do it all.
    async fn read(&self, key: &StorageKey, max: u64) -> Result<(Bytes, ObjectInfo), StoreError> {
        read_streamed(self, key, max).await
    }

    /// Removes what crashed writers left: multipart uploads started before `before` that
    /// nobody completed (a crash between `create_multipart` and saving the upload state
    /// leaves one behind), and on the filesystem abandoned temp files and empty session
    /// folders. Returns how many things went.
    async fn remove_leftovers(&self, before: SystemTime) -> Result<usize, StoreError> {
        let _ = before;
        Ok(0)
    }
}

/// Backends that can sign URLs for direct downloads (S3 and R2; a CDN base URL counts)
/// and for direct uploads that never pass through the API.
#[async_trait::async_trait]
pub trait Presign: Send + Sync {
    /// A signed URL a client can GET the object from directly, valid for `expires`.
    async fn presign_get(&self, key: &StorageKey, expires: Duration) -> Result<String, StoreError>;

    /// The object's unsigned URL on a public CDN, if one is configured. Only for objects
    /// anyone may read: the caller decides that (private repositories get `presign_get`).
    fn public_url(&self, key: &StorageKey) -> Option<String> {
        let _ = key;
        None
    }
    /// A `PutObject` a client sends itself: exactly `size` bytes whose SHA-256 is
    /// `sha256`, both in the signed headers, so the store refuses other bytes (where it
    /// checks checksums: see [`enforces_checksums`](Self::enforces_checksums)). `writer`
    /// (an upload session) is stored with the object, also signed, so the session can
    /// tell its own write from an object that was there before.
    async fn presign_put(
        &self,
        key: &StorageKey,
        size: u64,
        sha256: &[u8; 32],
        writer: &str,
        expires: Duration,
    ) -> Result<PresignedRequest, StoreError>;

    /// An `UploadPart` of a [`create_checksummed_multipart`](Self::create_checksummed_multipart)
    /// upload, signed like [`presign_put`](Self::presign_put).
    async fn presign_part(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        part: &ChecksummedPart,
        size: u64,
        expires: Duration,
    ) -> Result<PresignedRequest, StoreError>;

    /// Starts a multipart upload whose parts carry SHA-256 checksums.
    async fn create_checksummed_multipart(
        &self,
        key: &StorageKey,
    ) -> Result<MultipartId, StoreError>;

    /// Completes such an upload from its parts' numbers, ETags and checksums.
    async fn complete_checksummed(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        parts: &[ChecksummedPart],
    ) -> Result<(), StoreError>;

    /// The parts of such an upload the store holds, by number: what a client that lost
    /// track of its uploaded parts needs to resume. Paged and sorted here, since some
    /// servers (s3s-fs) return parts unordered and ignore `MaxParts`.
    async fn list_checksummed(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
    ) -> Result<Vec<UploadedPart>, StoreError>;

    /// What one `HEAD` says of an object a presigned request wrote: size, ETag, the
    /// SHA-256 the store recorded and the writer [`presign_put`](Self::presign_put) signed.
    async fn stored_checksum(&self, key: &StorageKey) -> Result<StoredChecksum, StoreError>;

    /// The SHA-256 of the object's bytes, by one streaming read: what proves a direct
    /// upload the store's recorded checksum cannot (a multipart object's).
    async fn read_sha256(&self, key: &StorageKey) -> Result<[u8; 32], StoreError>;

    /// The SHA-256 of the object at `key` (as `object`, a `HEAD` of it, describes it: the
    /// hash is of that version), while copying it to `blob`; the copy becomes
    /// visible there only if the hash is `sha256` (so the publishing copy overlaps the
    /// hashing instead of following it). With `by_store` (only where
    /// [`copies_checksums`](Self::copies_checksums) proved it), the store computes the
    /// hash in the publishing copy itself (up to 5 GiB, one copy's limit); otherwise, or
    /// for a larger object, it is [`read_sha256`](Self::read_sha256). Returns the hash.
    async fn read_sha256_publishing(
        &self,
        key: &StorageKey,
        object: &ObjectInfo,
        blob: &StorageKey,
        sha256: &[u8; 32],
        by_store: bool,
    ) -> Result<[u8; 32], StoreError>;

    /// Whether the store refuses a write whose `x-amz-checksum-sha256` does not match its
    /// bytes: a probe that writes (and removes) one small object outside the layout.
    async fn enforces_checksums(&self) -> Result<bool, StoreError>;

    /// Whether a copy that asks for a SHA-256 returns the SHA-256 of the whole object,
    /// also from a multipart object: a probe that writes (and removes) a two-part object
    /// of known bytes, outside the layout, and copies it without completing the copy.
    async fn copies_checksums(&self) -> Result<bool, StoreError>;
}

/// A request a client sends to the store itself: method, URL and the headers it must
/// send exactly (they are signed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PresignedRequest {
    /// The HTTP method.
    pub method: String,
    /// The presigned URL.
    pub url: String,
    /// Headers to send with it, as `(name, value)`.
    pub headers: Vec<(String, String)>,
}

/// A part of a checksummed multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChecksummedPart {
    /// The part's number, from 1.
    pub number: u32,
    /// The ETag the store gave the part (empty before it is uploaded).
    #[serde(default)]
    pub etag: String,
    /// The SHA-256 of the part's bytes.
    #[serde(with = "hex::serde")]
    pub sha256: [u8; 32],
}

/// An object as [`Presign::stored_checksum`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChecksum {
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag.
    pub etag: String,
    /// The whole-object SHA-256 the store recorded; `None` when it has none (an object
    /// written without one, or a multipart object's checksum of checksums).
    pub sha256: Option<[u8; 32]>,
    /// The upload session that wrote it through [`Presign::presign_put`], if one did.
    pub writer: Option<String>,
}

/// A part a multipart upload holds, as the store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    /// The part's number, from 1.
    pub number: u32,
    /// The ETag the store gave it.
    pub etag: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, when the store recorded one.
    pub sha256: Option<[u8; 32]>,
}

/// The default `read`: a streamed `get` collected into memory.
async fn read_streamed(
    store: &(impl ObjectStore + ?Sized),
    key: &StorageKey,
    max: u64,
) -> Result<(Bytes, ObjectInfo), StoreError> {
    use futures::TryStreamExt;
    let body = store.get(key, None).await?;
    if body.info.size > max {
        return Err(too_large(key, body.info.size, max));
    }
    let mut buf = Vec::with_capacity(usize::try_from(body.info.size).unwrap_or(0));
    let mut stream = body.stream;
    while let Some(chunk) = stream.try_next().await.map_err(|source| StoreError::Io {
        key: key.key(),
        source,
    })? {
        if buf.len() as u64 + chunk.len() as u64 > max {
            return Err(too_large(key, buf.len() as u64 + chunk.len() as u64, max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((Bytes::from(buf), body.info))
}

/// The error for an object bigger than a reader allows.
pub(crate) fn too_large(key: &StorageKey, size: u64, max: u64) -> StoreError {
    StoreError::TooLarge {
        key: key.key(),
        size,
        max,
    }
}

/// Writes small in-memory bytes with the metadata the layout gives `key`.
pub async fn put_bytes(
    store: &dyn ObjectStore,
    key: &StorageKey,
    bytes: Bytes,
    condition: PutCondition,
) -> Result<ObjectInfo, StoreError> {
    store.put(key, one_chunk(bytes), None, condition).await
}

/// A body of one in-memory chunk.
pub fn one_chunk(bytes: Bytes) -> ByteStream {
    Box::pin(futures::stream::once(async move { Ok(bytes) }))
}
