//! Keys, bodies and assertions shared by the clauses.

use std::sync::Arc;

use blob_gateway::{ByteStream, ManifestMeta, ObjectInfo, ObjectStore, PutCondition, StoreError};
use bytes::Bytes;
use futures::TryStreamExt;
use index_format::{
    Digest, KeyPrefix, ManifestMediaType, Reference, RepoName, StorageKey, Tag, UploadId,
};
use sha2::{Digest as _, Sha256};

pub type Store = Arc<dyn ObjectStore>;

pub fn repo(name: &str) -> RepoName {
    RepoName::new(name).expect("test repository name is valid")
}

/// `index/<repo>/_manifests/<tag>`: the key most tests write.
pub fn tag_key(repo_name: &str, tag: &str) -> StorageKey {
    let tag = Tag::new(tag).expect("test tag is valid");
    StorageKey::Manifest(repo(repo_name), Reference::Tag(tag))
}

pub fn repo_prefix(repo_name: &str) -> KeyPrefix {
    KeyPrefix::Repository(repo(repo_name))
}

/// A fresh `uploads/<uuid>/data` key.
pub fn upload_key() -> StorageKey {
    let id = UploadId::new(&uuid::Uuid::new_v4().to_string()).expect("a v4 UUID is an upload id");
    StorageKey::UploadData(id)
}

/// `sha256:<hex of bytes>`.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    Digest::new(&format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
        .expect("a sha256 digest is valid")
}

/// `blobs/sha256/<hex of bytes>`.
pub fn blob_key(bytes: &[u8]) -> StorageKey {
    StorageKey::Blob(sha256_digest(bytes))
}

/// A fresh `uploads/<uuid>/state` key: JSON, private.
pub fn upload_state_key() -> StorageKey {
    let id = UploadId::new(&uuid::Uuid::new_v4().to_string()).expect("a v4 UUID is an upload id");
    StorageKey::UploadState(id)
}

/// `index/<repo>/_manifests/<digest of bytes>`: a manifest by digest (immutable).
pub fn digest_key(repo_name: &str, bytes: &[u8]) -> StorageKey {
    let StorageKey::Blob(digest) = blob_key(bytes) else {
        unreachable!("blob_key makes a blob key")
    };
    StorageKey::Manifest(repo(repo_name), Reference::Digest(digest))
}

/// A manifest's metadata as its writer gives it to `put`: `media_type`, and the digest
/// of `bytes`.
pub fn manifest_meta(media_type: ManifestMediaType, bytes: &[u8]) -> Option<ManifestMeta> {
    Some(ManifestMeta {
        media_type,
        digest: sha256_digest(bytes),
    })
}

/// The content type and cache-control the layout gives `key` (the contract's metadata
/// clause): a manifest's content type is its media type, as given to `put`.
pub fn layout_meta(
    key: &StorageKey,
    manifest: Option<&ManifestMeta>,
) -> (Option<String>, Option<String>) {
    let content_type = manifest
        .map(|m| m.media_type.as_str())
        .or(key.content_type())
        .map(str::to_owned);
    (content_type, Some(key.cache_control().to_owned()))
}

/// Asserts that `info` carries the metadata the layout gives `key`.
#[track_caller]
pub fn assert_layout_meta(
    info: &ObjectInfo,
    key: &StorageKey,
    manifest: Option<&ManifestMeta>,
    what: &str,
) {
    let (content_type, cache_control) = layout_meta(key, manifest);
    let digest = manifest.map(|m| m.digest.to_string());
    assert_eq!(
        info.digest, digest,
        "{what}: the digest recorded with {key}"
    );
    assert!(
        content_type.is_some(),
        "{what}: {key} has a content type (a manifest needs a media type)"
    );
    assert_eq!(
        info.content_type, content_type,
        "{what}: the content type of {key}"
    );
    assert_eq!(
        info.cache_control, cache_control,
        "{what}: the cache-control of {key}"
    );
}

/// `len` pseudo-random bytes determined by `seed` (xorshift64*), so that a misplaced or
/// repeated chunk never compares equal.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn once(bytes: impl Into<Bytes>) -> ByteStream {
    blob_gateway::one_chunk(bytes.into())
}

/// `bytes` in chunks of `chunk` bytes, as a network body arrives.
pub fn chunked(bytes: Vec<u8>, chunk: usize) -> ByteStream {
    let bytes = Bytes::from(bytes);
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..bytes.len())
        .step_by(chunk)
        .map(|i| Ok(bytes.slice(i..(i + chunk).min(bytes.len()))))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

pub async fn put(
    store: &Store,
    key: &StorageKey,
    bytes: impl Into<Bytes>,
    condition: PutCondition,
) -> Result<ObjectInfo, StoreError> {
    blob_gateway::put_bytes(store.as_ref(), key, bytes.into(), condition).await
}

/// Reads the whole object; panics on any error.
pub async fn read(store: &Store, key: &StorageKey) -> (Vec<u8>, ObjectInfo) {
    let body = store
        .get(key, None)
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e:#?}"));
    assert_eq!(
        body.range, None,
        "a get without a range returns the whole object"
    );
    (collect(body.stream).await, body.info)
}

/// Reads a small object the way index and session code does (`ObjectStore::read`) when
/// `whole` is set, else by a streamed `get`: concurrency clauses
/// use both, as bytes and ETag must come from one write on either path.
pub async fn read_either(store: &Store, key: &StorageKey, whole: bool) -> (Vec<u8>, ObjectInfo) {
    if !whole {
        return read(store, key).await;
    }
    let (bytes, info) = store
        .read(key, 1 << 20)
        .await
        .unwrap_or_else(|e| panic!("read {key}: {e:#?}"));
    (bytes.to_vec(), info)
}

pub async fn collect(stream: ByteStream) -> Vec<u8> {
    stream
        .try_fold(Vec::new(), |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await
        .expect("body stream reads to the end")
}

#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_precondition_failed<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::PreconditionFailed { .. }) => {}
        other => panic!("{what}: expected PreconditionFailed, got {other:?}"),
    }
}
