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
//! other process sharing the directory. Readers take no lock (see `read`).
//!
//! The sidecar's `etag` of an object written whole (`put`) is the SHA-256 (hex) of its
//! bytes; static hosts (infra/nginx) rely on that to check a sidecar belongs to the bytes.
//! A manifest's sidecar also records its `digest`: a static host answers a tag with the
//! bytes of the by-digest file that digest names (immutable, stored before the tag), so
//! even between the two renames it never pairs a new digest with old bytes.

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

mod cache;
mod multipart;
mod read;
#[cfg(target_os = "linux")]
mod watch;

use crate::store::{
    ByteRange, ByteStream, CompletedPart, ListPage, ManifestMeta, MultipartId, ObjectBody,
    ObjectInfo, ObjectStore, PutCondition, PutMeta, StoreError,
};
use cache::ReadCache;
use read::stat;

const LOCK_STRIPES: u64 = 64;
/// The metadata given to `create_multipart`, inside the upload's folder.
const MULTIPART_META: &str = "meta.json";
const WRITE_BUFFER: usize = 1 << 20;
const READ_CHUNK: usize = 256 << 10;
/// `read`s of at most this many bytes (manifests, index documents) skip the blocking pool.
const INLINE_READ_MAX: u64 = 4 << 20;
/// Temp files are locked while written; an unlocked one older than this was left by a
/// killed writer (the age covers the instant between creating a file and locking it).
const STALE_TEMP: Duration = Duration::from_secs(60);

/// The sidecar stored beside each object.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sidecar {
    size: u64,
    etag: String,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    cache_control: Option<String>,
    /// A manifest's digest ([`crate::ManifestMeta`]): static hosts serve a tag from the
    /// by-digest file it names, so the digest they announce always matches the bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
}

/// An object store in a local directory.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: Arc<PathBuf>,
    /// When set, parts must follow R2's rule (every part but the last exactly this size),
    /// so the filesystem can stand in for R2 in tests of the upload path.
    part_size: Option<u64>,
    /// Small objects, served from memory while they are current: see `ReadCache`.
    cache: Arc<ReadCache>,
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
        remove_stale_temps(&root)?;
        let root = Arc::new(root);
        Ok(Self {
            cache: Arc::new(ReadCache::new(root.clone())),
            root,
            part_size: None,
        })
    }

    /// Enforces R2's multipart rule: every part but the last is exactly `size` bytes.
    pub fn with_part_size(mut self, size: u64) -> Self {
        self.part_size = Some(size).filter(|&s| s > 0);
        self
    }

    /// The directory the store lives in.
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
        let file = create_locked(&path).await.map_err(io_err(key))?;
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
        manifest: Option<ManifestMeta>,
        condition: PutCondition,
    ) -> Result<ObjectInfo, StoreError> {
        let meta = PutMeta::new(key, manifest.as_ref());
        let k = key.key();
        let (temp, size, hash) = self.write_temp(&k, body, true).await?;
        let sidecar = Sidecar {
            size,
            etag: hash.unwrap_or_default(),
            content_type: meta.content_type,
            cache_control: meta.cache_control,
            digest: meta.digest,
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
        if let StorageKey::UploadState(id) = key {
            // The state is a session's last object: its folders go with it (they fail,
            // harmlessly, if anything is still inside).
            let dir = StorageKey::UploadState(id.clone()).key();
            if let Some((folder, _)) = dir.rsplit_once('/') {
                let _ = tokio::fs::remove_dir(self.data_path(folder)).await;
                let _ = tokio::fs::remove_dir(self.root.join(".meta").join(folder)).await;
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
        condition: PutCondition,
    ) -> Result<ObjectInfo, StoreError> {
        let meta = PutMeta::new(to, None);
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
            digest: meta.digest,
        };
        self.publish(&dst_key, temp, sidecar, &condition).await
    }

    async fn read(&self, key: &StorageKey, max: u64) -> Result<(Bytes, ObjectInfo), StoreError> {
        self.read_small(key, max).await
    }

    async fn remove_leftovers(&self, before: SystemTime) -> Result<usize, StoreError> {
        self.mp_remove_leftovers(before).await
    }

    async fn create_multipart(&self, key: &StorageKey) -> Result<MultipartId, StoreError> {
        self.mp_create(key, PutMeta::new(key, None)).await
    }

    async fn upload_part(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        number: u32,
        body: ByteStream,
        size: Option<u64>,
    ) -> Result<CompletedPart, StoreError> {
        self.mp_upload_part(key, upload, number, body, size).await
    }

    async fn complete_multipart(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        parts: &[CompletedPart],
    ) -> Result<ObjectInfo, StoreError> {
        self.mp_complete(key, upload, parts).await
    }

    async fn abort_multipart(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
    ) -> Result<(), StoreError> {
        self.mp_abort(key, upload).await
    }
}

/// Creates a temp file and locks it, so clean-up can tell it from one a killed writer left.
/// The lock goes when the file is closed, after it was renamed into place.
async fn create_locked(path: &Path) -> io::Result<tokio::fs::File> {
    let path = path.to_owned();
    let file = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::create(path)?;
        file.try_lock().map_err(io::Error::other)?;
        Ok::<_, io::Error>(file)
    })
    .await
    .map_err(io::Error::other)??;
    Ok(tokio::fs::File::from_std(file))
}

/// Removes what killed writers left in `.tmp/`: files no writer holds a lock on, older than
/// [`STALE_TEMP`]. Returns how many went.
fn remove_stale_temps(root: &Path) -> io::Result<usize> {
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in std::fs::read_dir(root.join(".tmp"))?.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TEMP);
        let Ok(file) = std::fs::File::open(entry.path()) else {
            continue;
        };
        // A live writer holds its temp file locked until the file is renamed into place.
        if old && file.try_lock().is_ok() && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes the folders under `dir` that hold nothing (left by sessions whose last object
/// was deleted while another process still wrote beside it). Returns how many went.
fn remove_empty_dirs(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            removed += remove_empty_dirs(&path);
            if std::fs::remove_dir(&path).is_ok() {
                removed += 1;
            }
        }
    }
    removed
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
