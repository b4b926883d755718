//! The filesystem backend: the embedded default, and what a static file server can serve.
//!
//! ```text
//! <root>/
//! ├── <key>                 object bytes, exactly at the object key (servable as-is)
//! ├── .meta/<key>.json      content type, cache-control, ETag and size of <key>
//! ├── .multipart/<id>/      parts of an unfinished multipart upload
//! ├── .locks/<0..63>        lock files, one stripe per key hash
//! └── .tmp/                 files being written; renamed into place when whole
//! ```
//!
//! Writes go to `.tmp/`, are fsynced, and renamed into place, so a crash leaves the old
//! object or the new one. The sidecar is renamed before the data: a crash between the two
//! leaves a sidecar whose size or ETag does not match, which readers detect and ignore,
//! and the next conditional write repairs. Conditions are checked under an exclusive
//! `flock` on the key's lock stripe, which serialises writers in this process and in every
//! other process sharing the directory.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::TryStreamExt;
use index_format::{KeyPrefix, StorageKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

use crate::store::{
    ByteRange, ByteStream, CompletedPart, ETag, ListPage, MultipartId, ObjectBody, ObjectInfo,
    ObjectStore, PutCondition, PutMeta, StoreError,
};

const LOCK_STRIPES: u64 = 64;
/// The metadata given to `create_multipart`, inside the upload's folder.
const MULTIPART_META: &str = "meta.json";
const WRITE_BUFFER: usize = 1 << 20;
const READ_CHUNK: usize = 256 << 10;
/// `read`s of at most this many bytes (manifests, index documents) skip the blocking pool.
const INLINE_READ_MAX: u64 = 4 << 20;
/// Temp files older than this are left over from a crash and removed at start-up.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// The sidecar stored beside each object.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sidecar {
    size: u64,
    etag: String,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    cache_control: Option<String>,
}

/// An object store in a local directory.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: Arc<PathBuf>,
    /// When set, parts must follow R2's rule (every part but the last exactly this size),
    /// so the filesystem can stand in for R2 in tests of the upload path.
    part_size: Option<u64>,
    /// Small objects by the identity of the file they were read from: see `ReadCache`.
    cache: Arc<ReadCache>,
}

/// Recently read small objects, keyed by key and validated on every use against the
/// identity (inode, size, change time) of the file now at the path. Files are only ever
/// replaced by rename, which gives a new inode, so a match means the same bytes: a hit
/// costs one `stat` instead of two opens and reads, and it is exact across processes.
#[derive(Debug, Default)]
struct ReadCache {
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

fn io_err(key: &str) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| {
        if source.kind() == io::ErrorKind::NotFound {
            StoreError::NotFound {
                key: key.to_owned(),
            }
        } else {
            StoreError::Io {
                key: key.to_owned(),
                source,
            }
        }
    }
}

impl FsStore {
    /// Opens (creating if needed) a store rooted at `root`, and clears stale temp files.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        for dir in [".meta", ".multipart", ".locks", ".tmp"] {
            std::fs::create_dir_all(root.join(dir))?;
        }
        for i in 0..LOCK_STRIPES {
            let path = root.join(".locks").join(i.to_string());
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
        }
        let now = SystemTime::now();
        for entry in std::fs::read_dir(root.join(".tmp"))?.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TEMP);
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Self {
            root: Arc::new(root),
            part_size: None,
            cache: Arc::default(),
        })
    }

    /// Enforces R2's multipart rule: every part but the last is exactly `size` bytes.
    pub fn with_part_size(mut self, size: u64) -> Self {
        self.part_size = Some(size).filter(|&s| s > 0);
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn data_path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        self.root.join(".meta").join(format!("{key}.json"))
    }

    fn temp_path(&self) -> PathBuf {
        self.root
            .join(".tmp")
            .join(uuid::Uuid::new_v4().to_string())
    }

    fn multipart_dir(&self, upload: &MultipartId) -> Result<PathBuf, StoreError> {
        // The id comes back from callers; only accept the UUIDs this backend hands out.
        uuid::Uuid::parse_str(&upload.0).map_err(|_| StoreError::NoSuchUpload {
            key: String::new(),
            upload: upload.0.clone(),
        })?;
        Ok(self.root.join(".multipart").join(&upload.0))
    }

    /// Takes the lock of `key`'s stripe on a blocking thread: exclusive for writers; shared
    /// for readers, so that the bytes they open and the sidecar they read come from the
    /// same write (a writer renames the sidecar, then the data, under the exclusive lock).
    async fn lock(&self, key: &str, exclusive: bool) -> Result<std::fs::File, StoreError> {
        let stripe = u64::from_le_bytes(
            Sha256::digest(key.as_bytes())[..8]
                .try_into()
                .unwrap_or([0; 8]),
        ) % LOCK_STRIPES;
        let path = self.root.join(".locks").join(stripe.to_string());
        let k = key.to_owned();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            if exclusive {
                file.lock()?;
            } else {
                file.lock_shared()?;
            }
            Ok::<_, io::Error>(file)
        })
        .await
        .map_err(|e| StoreError::Io {
            key: k.clone(),
            source: io::Error::other(e),
        })?
        .map_err(io_err(&k))
    }

    /// The object's info, or `NotFound`.
    async fn info(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        let (data, meta) = (self.data_path(key), self.meta_path(key));
        let k = key.to_owned();
        tokio::task::spawn_blocking(move || {
            let md = std::fs::metadata(&data)?;
            stat(&md, &meta)
        })
        .await
        .map_err(|e| StoreError::Io {
            key: k.clone(),
            source: io::Error::other(e),
        })?
        .map_err(io_err(&k))
    }

    /// Streams `body` into a new temp file, returning its path, size and SHA-256 (for
    /// whole objects, which are also fsynced; parts are synced when completed, and a part
    /// lost to a power cut fails the upload's digest check instead of storing bad bytes).
    async fn write_temp(
        &self,
        key: &str,
        mut body: ByteStream,
        whole_object: bool,
    ) -> Result<(PathBuf, u64, Option<String>), StoreError> {
        let hash = whole_object;
        let path = self.temp_path();
        let file = tokio::fs::File::create(&path).await.map_err(io_err(key))?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut hasher = hash.then(Sha256::new);
        let mut size = 0u64;
        let result: Result<(), io::Error> = async {
            while let Some(chunk) = body.try_next().await? {
                if let Some(h) = hasher.as_mut() {
                    h.update(&chunk);
                }
                size += chunk.len() as u64;
                out.write_all(&chunk).await?;
            }
            out.flush().await?;
            if whole_object {
                out.get_mut().sync_all().await?;
            }
            Ok(())
        }
        .await;
        if let Err(source) = result {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(StoreError::Io {
                key: key.to_owned(),
                source,
            });
        }
        Ok((path, size, hasher.map(|h| hex::encode(h.finalize()))))
    }

    /// Moves a finished temp file to `key` under the key's lock, if `condition` holds.
    async fn publish(
        &self,
        key: &str,
        temp: PathBuf,
        sidecar: Sidecar,
        condition: &PutCondition,
    ) -> Result<ObjectInfo, StoreError> {
        let lock = self.lock(key, true).await?;
        let result = match self.publish_locked(key, &temp, &sidecar, condition).await {
            // Read back under the lock: after it, the info may be a later writer's.
            Ok(()) => self.info(key).await,
            Err(e) => Err(e),
        };
        drop(lock);
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result
    }

    async fn publish_locked(
        &self,
        key: &str,
        temp: &Path,
        sidecar: &Sidecar,
        condition: &PutCondition,
    ) -> Result<(), StoreError> {
        let current = match self.info(key).await {
            Ok(i) => Some(i),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let holds = condition.holds(current.as_ref());
        if !holds {
            return Err(StoreError::PreconditionFailed {
                key: key.to_owned(),
            });
        }
        let data = self.data_path(key);
        let meta = self.meta_path(key);
        let meta_bytes = serde_json::to_vec(sidecar).map_err(|e| StoreError::Io {
            key: key.to_owned(),
            source: io::Error::other(e),
        })?;
        let meta_temp = self.temp_path();
        let k = key.to_owned();
        let temp = temp.to_owned();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            let mut f = std::fs::File::create(&meta_temp)?;
            f.write_all(&meta_bytes)?;
            f.sync_all()?;
            for p in [&data, &meta] {
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent)?;
                }
            }
            std::fs::rename(&meta_temp, &meta)?;
            std::fs::rename(&temp, &data)?;
            if let Some(parent) = data.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Io {
            key: k.clone(),
            source: io::Error::other(e),
        })?
        .map_err(io_err(&k))
    }
}

#[async_trait::async_trait]
impl ObjectStore for FsStore {
    fn backend(&self) -> &'static str {
        "filesystem"
    }

    fn part_size(&self) -> Option<u64> {
        self.part_size
    }

    /// One blocking call does it all: small reads are the hot path of every pull.
    async fn read(&self, key: &StorageKey, max: u64) -> Result<(Bytes, ObjectInfo), StoreError> {
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

    async fn abort_stale_multipart(&self, before: SystemTime) -> Result<usize, StoreError> {
        let dir = self.root.join(".multipart");
        tokio::task::spawn_blocking(move || -> io::Result<usize> {
            let mut aborted = 0;
            for entry in std::fs::read_dir(&dir)?.flatten() {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < before);
                if old && std::fs::remove_dir_all(entry.path()).is_ok() {
                    aborted += 1;
                }
            }
            Ok(aborted)
        })
        .await
        .map_err(|e| StoreError::Io {
            key: ".multipart".into(),
            source: io::Error::other(e),
        })?
        .map_err(|source| StoreError::Io {
            key: ".multipart".into(),
            source,
        })
    }

    async fn head(&self, key: &StorageKey) -> Result<ObjectInfo, StoreError> {
        let k = key.key();
        let _lock = self.lock(&k, false).await?;
        self.info(&k).await
    }

    async fn get(
        &self,
        key: &StorageKey,
        range: Option<ByteRange>,
    ) -> Result<ObjectBody, StoreError> {
        let k = key.key();
        let lock = self.lock(&k, false).await?;
        let mut file = tokio::fs::File::open(self.data_path(&k))
            .await
            .map_err(io_err(&k))?;
        let info = self.info(&k).await?;
        drop(lock);
        let Some(r) = range else {
            let stream = tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK);
            return Ok(ObjectBody {
                info,
                range: None,
                stream: Box::pin(stream),
            });
        };
        if r.start >= info.size {
            return Err(StoreError::InvalidRange {
                key: k,
                start: r.start,
                size: info.size,
            });
        }
        let end = r.end.map_or(info.size - 1, |e| e.min(info.size - 1));
        file.seek(io::SeekFrom::Start(r.start))
            .await
            .map_err(io_err(&k))?;
        let limited = file.take(end - r.start + 1);
        let stream = tokio_util::io::ReaderStream::with_capacity(limited, READ_CHUNK);
        Ok(ObjectBody {
            info,
            range: Some((r.start, end)),
            stream: Box::pin(stream),
        })
    }

    async fn put(
        &self,
        key: &StorageKey,
        body: ByteStream,
        meta: PutMeta,
        condition: PutCondition,
    ) -> Result<ObjectInfo, StoreError> {
        let k = key.key();
        let (temp, size, hash) = self.write_temp(&k, body, true).await?;
        let sidecar = Sidecar {
            size,
            etag: hash.unwrap_or_default(),
            content_type: meta.content_type,
            cache_control: meta.cache_control,
        };
        self.publish(&k, temp, sidecar, &condition).await
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        let k = key.key();
        let _lock = self.lock(&k, true).await?;
        for path in [self.data_path(&k), self.meta_path(&k)] {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(StoreError::Io {
                        key: k.clone(),
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }

    async fn list(
        &self,
        prefix: &KeyPrefix,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let p = prefix.key();
        let root = self.root.clone();
        let after = after.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            walk(&root, &root.join(&p), &mut keys)?;
            keys.retain(|k| after.as_ref().is_none_or(|a| k > a));
            keys.sort_unstable();
            let truncated = keys.len() > limit;
            keys.truncate(limit);
            Ok(ListPage { keys, truncated })
        })
        .await
        .map_err(|e| StoreError::Io {
            key: prefix.key(),
            source: io::Error::other(e),
        })?
        .map_err(|source| StoreError::Io {
            key: prefix.key(),
            source,
        })
    }

    async fn copy(
        &self,
        from: &StorageKey,
        to: &StorageKey,
        meta: PutMeta,
        condition: PutCondition,
    ) -> Result<ObjectInfo, StoreError> {
        let (src_key, dst_key) = (from.key(), to.key());
        // The source's info and the linked bytes must come from the same write. The lock is
        // released before publishing: both keys may share a stripe.
        let src_lock = self.lock(&src_key, false).await?;
        let src_info = self.info(&src_key).await?;
        let temp = self.temp_path();
        let src = self.data_path(&src_key);
        let t = temp.clone();
        // A hard link shares the bytes (uploads are never modified once complete); fall
        // back to a kernel-side copy where links are not allowed.
        tokio::task::spawn_blocking(move || {
            std::fs::hard_link(&src, &t).or_else(|_| std::fs::copy(&src, &t).map(drop))
        })
        .await
        .map_err(|e| StoreError::Io {
            key: src_key.clone(),
            source: io::Error::other(e),
        })?
        .map_err(io_err(&src_key))?;
        drop(src_lock);
        let sidecar = Sidecar {
            size: src_info.size,
            etag: src_info.etag.0,
            content_type: meta.content_type,
            cache_control: meta.cache_control,
        };
        self.publish(&dst_key, temp, sidecar, &condition).await
    }

    async fn create_multipart(
        &self,
        key: &StorageKey,
        meta: PutMeta,
    ) -> Result<MultipartId, StoreError> {
        let k = key.key();
        let id = MultipartId(uuid::Uuid::new_v4().to_string());
        let dir = self.multipart_dir(&id)?;
        tokio::fs::create_dir_all(&dir).await.map_err(io_err(&k))?;
        // The completed object carries the metadata given here, as on S3.
        let meta = Sidecar {
            size: 0,
            etag: String::new(),
            content_type: meta.content_type,
            cache_control: meta.cache_control,
        };
        let bytes = serde_json::to_vec(&meta).map_err(|e| StoreError::Io {
            key: k.clone(),
            source: io::Error::other(e),
        })?;
        tokio::fs::write(dir.join(MULTIPART_META), bytes)
            .await
            .map_err(io_err(&k))?;
        Ok(id)
    }

    async fn upload_part(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        number: u32,
        body: ByteStream,
        size: Option<u64>,
    ) -> Result<CompletedPart, StoreError> {
        let k = key.key();
        let dir = self.multipart_dir(upload)?;
        if number == 0 || !tokio::fs::try_exists(&dir).await.unwrap_or(false) {
            return Err(StoreError::NoSuchUpload {
                key: k,
                upload: upload.0.clone(),
            });
        }
        let (temp, written, _) = self.write_temp(&k, body, false).await?;
        if let Some(size) = size.filter(|&s| s != written) {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(StoreError::InvalidPart {
                key: k,
                message: format!("part {number}: expected {size} bytes, got {written}"),
            });
        }
        tokio::fs::rename(&temp, dir.join(number.to_string()))
            .await
            .map_err(io_err(&k))?;
        // Parts are never hashed twice: the ETag only has to name this write.
        let etag = format!("{number}-{written}-{}", uuid::Uuid::new_v4().simple());
        tokio::fs::write(dir.join(format!("{number}.etag")), &etag)
            .await
            .map_err(io_err(&k))?;
        Ok(CompletedPart {
            number,
            etag,
            size: written,
        })
    }

    async fn complete_multipart(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        parts: &[CompletedPart],
    ) -> Result<ObjectInfo, StoreError> {
        let k = key.key();
        let dir = self.multipart_dir(upload)?;
        if !tokio::fs::try_exists(&dir).await.unwrap_or(false) {
            return Err(StoreError::NoSuchUpload {
                key: k,
                upload: upload.0.clone(),
            });
        }
        let uneven = self.part_size.and_then(|n| {
            let last = parts.len().saturating_sub(1);
            parts[..last].iter().find(|p| p.size != n).map(|p| (p, n))
        });
        if let Some((p, n)) = uneven {
            return Err(StoreError::InvalidPart {
                key: k,
                message: format!(
                    "part {} has {} bytes; every part but the last must have {n}",
                    p.number, p.size
                ),
            });
        }
        for p in parts {
            let stored = tokio::fs::read_to_string(dir.join(format!("{}.etag", p.number)))
                .await
                .unwrap_or_default();
            if stored != p.etag {
                return Err(StoreError::InvalidPart {
                    key: k,
                    message: format!("part {} is missing or its ETag differs", p.number),
                });
            }
        }
        let temp = self.temp_path();
        let (t, d) = (temp.clone(), dir.clone());
        let numbers: Vec<u32> = parts.iter().map(|p| p.number).collect();
        let size = tokio::task::spawn_blocking(move || -> io::Result<u64> {
            if let [only] = numbers[..] {
                std::fs::rename(d.join(only.to_string()), &t)?;
                let file = std::fs::File::open(&t)?;
                file.sync_all()?;
                return Ok(file.metadata()?.len());
            }
            let mut out = std::fs::File::create(&t)?;
            let mut size = 0;
            for n in numbers {
                // std::io::copy between files uses copy_file_range: no bytes through us.
                size += io::copy(&mut std::fs::File::open(d.join(n.to_string()))?, &mut out)?;
            }
            out.sync_all()?;
            Ok(size)
        })
        .await
        .map_err(|e| StoreError::Io {
            key: k.clone(),
            source: io::Error::other(e),
        })?
        .map_err(io_err(&k))?;
        let mut etag_hash = Sha256::new();
        for p in parts {
            etag_hash.update(p.etag.as_bytes());
        }
        // Uploads created before the metadata was kept get the layout's defaults.
        let meta = tokio::fs::read(dir.join(MULTIPART_META))
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<Sidecar>(&b).ok())
            .map_or_else(
                || {
                    (
                        key.content_type().map(str::to_owned),
                        Some(key.cache_control().to_owned()),
                    )
                },
                |m| (m.content_type, m.cache_control),
            );
        let sidecar = Sidecar {
            size,
            etag: format!(
                "{}-{}",
                hex::encode(&etag_hash.finalize()[..16]),
                parts.len()
            ),
            content_type: meta.0,
            cache_control: meta.1,
        };
        let info = self.publish(&k, temp, sidecar, &PutCondition::None).await?;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        Ok(info)
    }

    async fn abort_multipart(
        &self,
        _key: &StorageKey,
        upload: &MultipartId,
    ) -> Result<(), StoreError> {
        let dir = self.multipart_dir(upload)?;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io {
                key: upload.0.clone(),
                source,
            }),
        }
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
fn stat(md: &std::fs::Metadata, meta: &Path) -> io::Result<ObjectInfo> {
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

/// Collects the keys of all files below `dir`, relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else if let Some(s) = path.strip_prefix(root).ok().and_then(|r| r.to_str()) {
            out.push(s.to_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod cache_tests {
    use super::*;
    use crate::store::{get_bytes, put_bytes};

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
