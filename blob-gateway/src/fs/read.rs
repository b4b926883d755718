//! Small whole-object reads (index documents, manifests): the hot path of every pull.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use bytes::Bytes;
use index_format::StorageKey;
use sha2::{Digest as _, Sha256};

use super::{FsStore, INLINE_READ_MAX, Sidecar, io_err};
use crate::store::{ETag, ObjectInfo, StoreError};

/// Recently read small objects, keyed by key and validated on every use against the
/// identity (inode, size, change time) of the file now at the path. Files are only ever
/// replaced by rename, which gives a new inode, so a match means the same bytes: a hit
/// costs one `stat` instead of two opens and reads, and it is exact across processes.
#[derive(Debug, Default)]
pub(super) struct ReadCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (FileIdent, Bytes, ObjectInfo)>>,
}

/// What identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdent {
    ino: u64,
    size: u64,
    ctime_ns: i128,
}

/// Objects up to this size are cached, and this many of them at most (a few MiB in all).
const CACHE_OBJECT_MAX: u64 = 64 << 10;
const CACHE_ENTRIES: usize = 4096;

impl FileIdent {
    #[cfg(unix)]
    fn of(md: &std::fs::Metadata) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        Some(Self {
            ino: md.ino(),
            size: md.size(),
            ctime_ns: i128::from(md.ctime()) * 1_000_000_000 + i128::from(md.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    fn of(_: &std::fs::Metadata) -> Option<Self> {
        None
    }
}

impl ReadCache {
    fn get(&self, key: &str, ident: FileIdent) -> Option<(Bytes, ObjectInfo)> {
        let entries = self.entries.lock().ok()?;
        let (cached, bytes, info) = entries.get(key)?;
        (*cached == ident).then(|| (bytes.clone(), info.clone()))
    }

    fn put(&self, key: &str, ident: FileIdent, bytes: &Bytes, info: &ObjectInfo) {
        if ident.size > CACHE_OBJECT_MAX {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            // Bounded without bookkeeping: start over when full.
            if entries.len() >= CACHE_ENTRIES {
                entries.clear();
            }
            entries.insert(key.to_owned(), (ident, bytes.clone(), info.clone()));
        }
    }
}

impl FsStore {
    pub(super) async fn read_small(
        &self,
        key: &StorageKey,
        max: u64,
    ) -> Result<(Bytes, ObjectInfo), StoreError> {
        let k = key.key();
        let (data, meta) = (self.data_path(&k), self.meta_path(&k));
        // No lock: a pull must never wait behind a push. A read that lands between the
        // sidecar's rename and the data's is detected by hashing the bytes (put's ETag is
        // their SHA-256), and answered with the ETag of the bytes actually returned.
        // Small objects are read on the calling thread: they are page-cache hits, and a hop
        // to the blocking pool costs more than the read (it halved manifest GETs/s).
        if let Some(hit) = std::fs::metadata(&data)
            .ok()
            .and_then(|md| FileIdent::of(&md))
            .and_then(|ident| self.cache.get(&k, ident))
        {
            return Ok(hit);
        }
        let opened = std::fs::File::open(&data)
            .and_then(|f| f.metadata().map(|md| (f, md)))
            .map_err(io_err(&k))?;
        let (file, md) = opened;
        if md.len() > max {
            return Err(crate::store::too_large(key, md.len(), max));
        }
        let small = md.len() <= INLINE_READ_MAX;
        // The identity of the file actually opened, so a cached entry always matches its bytes.
        let ident = FileIdent::of(&md);
        let (cache, cache_key) = (self.cache.clone(), k.clone());
        let finish = move || {
            let (bytes, info) = read_whole(file, &md, &meta, max)?;
            if let Some(ident) = ident {
                cache.put(&cache_key, ident, &bytes, &info);
            }
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
    let hash = hex::encode(Sha256::digest(&buf));
    let content_hash_etag =
        info.etag.0.len() == 64 && info.etag.0.bytes().all(|b| b.is_ascii_hexdigit());
    if content_hash_etag && info.etag.0 != hash || info.size != buf.len() as u64 {
        info = ObjectInfo {
            size: buf.len() as u64,
            etag: ETag(hash),
            content_type: None,
            cache_control: None,
            last_modified: info.last_modified,
        };
    }
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
    let (etag, content_type, cache_control) = match sidecar {
        Some(s) => (s.etag, s.content_type, s.cache_control),
        None => {
            let nanos = modified
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            (format!("W-{nanos:x}-{:x}", md.len()), None, None)
        }
    };
    Ok(ObjectInfo {
        size: md.len(),
        etag: ETag(etag),
        content_type,
        cache_control,
        last_modified: modified,
    })
}

#[cfg(test)]
mod cache_tests {
    use super::*;
    use crate::store::{ObjectStore, PutCondition, PutMeta, get_bytes, put_bytes};

    /// A replaced object is never served from the cache, even at the same size.
    #[tokio::test]
    async fn cached_reads_follow_replacements() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|source| StoreError::Io {
            key: "tmp".into(),
            source,
        })?;
        let store = FsStore::open(dir.path()).map_err(|source| StoreError::Io {
            key: "open".into(),
            source,
        })?;
        let key = StorageKey::Catalog;
        for body in ["aaaa", "bbbb", "cccc"] {
            let meta = PutMeta::for_key(&key, None);
            put_bytes(&store, &key, Bytes::from(body), meta, PutCondition::None).await?;
            for _ in 0..2 {
                let (bytes, info) = get_bytes(&store, &key, 1024).await?;
                assert_eq!(bytes.as_ref(), body.as_bytes());
                assert_eq!(info.etag.0, hex::encode(Sha256::digest(body.as_bytes())));
            }
        }
        store.delete(&key).await?;
        assert!(
            get_bytes(&store, &key, 1024)
                .await
                .is_err_and(|e| e.is_not_found())
        );
        Ok(())
    }
}
