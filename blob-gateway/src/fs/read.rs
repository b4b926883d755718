//! Small whole-object reads (index documents, manifests): the hot path of every pull.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use bytes::Bytes;
use index_format::StorageKey;
use sha2::{Digest as _, Sha256};

use super::cache::{Fill, Lookup};
use super::{FsStore, INLINE_READ_MAX, Sidecar, io_err};
use crate::store::{ETag, ObjectInfo, StoreError};

impl FsStore {
    pub(super) async fn read_small(
        &self,
        key: &StorageKey,
        max: u64,
    ) -> Result<(Bytes, ObjectInfo), StoreError> {
        let k = key.key();
        // No lock: a pull must never wait behind a push. A read that lands between the
        // sidecar's rename and the data's is detected by hashing the bytes (put's ETag is
        // their SHA-256), and answered with the ETag of the bytes actually returned.
        // Small objects are read on the calling thread: they are page-cache hits, and a hop
        // to the blocking pool costs more than the read (it halved manifest GETs/s).
        let fill = if cached(key) {
            match self.cache.lookup(&k, || self.data_path(&k)) {
                Lookup::Hit(_, info) if info.size > max => {
                    return Err(crate::store::too_large(key, info.size, max));
                }
                Lookup::Hit(bytes, info) => return Ok((bytes, info)),
                Lookup::Miss(fill) => fill,
            }
        } else {
            Fill::Skip
        };
        let (data, meta) = (self.data_path(&k), self.meta_path(&k));
        let opened = std::fs::File::open(&data)
            .and_then(|f| f.metadata().map(|md| (f, md)))
            .map_err(io_err(&k))?;
        let (file, md) = opened;
        if md.len() > max {
            return Err(crate::store::too_large(key, md.len(), max));
        }
        let small = md.len() <= INLINE_READ_MAX;
        let (cache, cache_key) = (self.cache.clone(), k.clone());
        let finish = move || {
            let (bytes, info) = read_whole(file, &md, &meta, max)?;
            cache.fill(&cache_key, fill, &md, &bytes, &info);
            Ok((bytes, info))
        };
        let result = if small {
            finish()
        } else {
            tokio::task::spawn_blocking(finish)
                .await
                .map_err(|e| StoreError::Io {
                    key: k.clone(),
                    source: io::Error::other(e),
                })?
        };
        result.map_err(io_err(&k))
    }
}

/// Whether reads of `key` go through the cache: the index documents every pull reads,
/// not upload state, which changes with every chunk and is read by one client.
fn cached(key: &StorageKey) -> bool {
    match key {
        StorageKey::Config
        | StorageKey::Catalog
        | StorageKey::Manifest(..)
        | StorageKey::TagList(_)
        | StorageKey::Referrers(..)
        | StorageKey::BlobLink(..)
        | StorageKey::BrowseDirectory(_)
        | StorageKey::BrowsePage(..)
        | StorageKey::BrowseManifest(..) => true,
        StorageKey::Blob(_)
        | StorageKey::Ui(_)
        | StorageKey::UploadState(_)
        | StorageKey::UploadData(_)
        | StorageKey::UploadTail(..) => false,
    }
}

/// Reads an opened object to the end (at most `max` bytes) with its info. The ETag is
/// that of the bytes returned: see `read`.
fn read_whole(
    mut file: std::fs::File,
    md: &std::fs::Metadata,
    meta: &Path,
    max: u64,
) -> io::Result<(Bytes, ObjectInfo)> {
    let mut buf = Vec::with_capacity(usize::try_from(md.len()).unwrap_or(0));
    io::Read::read_to_end(&mut io::Read::take(&mut file, max + 1), &mut buf)?;
    let mut info = stat(md, meta)?;
    let raw: [u8; 32] = Sha256::digest(&buf).into();
    let hash = hex::encode(raw);
    let content_hash_etag =
        info.etag.0.len() == 64 && info.etag.0.bytes().all(|b| b.is_ascii_hexdigit());
    if content_hash_etag && info.etag.0 != hash || info.size != buf.len() as u64 {
        info = ObjectInfo {
            size: buf.len() as u64,
            etag: ETag(hash),
            content_type: None,
            cache_control: None,
            last_modified: info.last_modified,
            sha256: None,
            digest: None,
        };
    }
    info.sha256 = Some(raw);
    Ok((Bytes::from(buf), info))
}

/// An object's info from its file metadata and sidecar. A missing or stale sidecar (a
/// crash between the two renames) yields a weak ETag and no stored headers.
pub(super) fn stat(md: &std::fs::Metadata, meta: &Path) -> io::Result<ObjectInfo> {
    if !md.is_file() {
        return Err(io::ErrorKind::NotFound.into());
    }
    let sidecar = std::fs::read(meta)
        .ok()
        .and_then(|b| serde_json::from_slice::<Sidecar>(&b).ok())
        .filter(|s| s.size == md.len());
    let modified = md.modified().ok();
    let (etag, content_type, cache_control, digest) = match sidecar {
        Some(s) => (s.etag, s.content_type, s.cache_control, s.digest),
        None => {
            let nanos = modified
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            (format!("W-{nanos:x}-{:x}", md.len()), None, None, None)
        }
    };
    Ok(ObjectInfo {
        size: md.len(),
        etag: ETag(etag),
        content_type,
        cache_control,
        last_modified: modified,
        sha256: None,
        digest,
    })
}
