//! Recently read small objects (manifests, index documents), answered from memory only
//! while they are known to be the bytes now at their path, even when another process
//! writes to the same directory.
//!
//! How "known" is decided, per store, at its first read:
//! - **watched** (Linux, local filesystem): the kernel tells which files changed
//!   (`watch.rs`); a hit costs one `ioctl` asking whether the event queue is empty.
//! - **stat** (anywhere else): a hit costs one `stat`, whose (inode, size, change time)
//!   must match the cached file's. Files are only ever replaced by rename, which gives a
//!   new inode, so a match means the same bytes.

use std::collections::HashMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

#[cfg(target_os = "linux")]
use super::watch::{Change, DirWatch, is_under, join};
use crate::store::ObjectInfo;

/// Objects up to this size are cached, and this many of them (a few MiB in all), from
/// at most as many watched directories.
const CACHE_OBJECT_MAX: u64 = 64 << 10;
const CACHE_ENTRIES: usize = 4096;

/// Hits share the lock, so concurrent pulls never wait for each other; only draining
/// the event queue, watching a directory or keeping a read takes it exclusively.
/// Exactness of the shared path: events are only ever consumed under the exclusive lock
/// and applied before it is released, so a reader holding the shared lock who finds the
/// queue empty knows that every change queued before that moment is already applied.
#[derive(Debug)]
pub(super) struct ReadCache {
    root: Arc<PathBuf>,
    inner: RwLock<Inner>,
}

#[derive(Debug)]
struct Inner {
    entries: HashMap<String, Entry>,
    freshness: Freshness,
    /// Bumped by every change applied, so that a fill which raced one is not kept.
    generation: u64,
}

#[derive(Debug)]
enum Freshness {
    /// Chosen at the first read, so a store that never reads holds no inotify instance.
    Undecided,
    #[cfg(target_os = "linux")]
    Watched(DirWatch),
    Stat,
}

#[derive(Debug)]
struct Entry {
    /// Checked on every hit in the stat mode; unused when watched.
    ident: Option<FileIdent>,
    bytes: Bytes,
    info: ObjectInfo,
}

/// What identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdent {
    ino: u64,
    size: u64,
    ctime_ns: i128,
}

impl FileIdent {
    #[cfg(unix)]
    fn of(md: &Metadata) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        Some(Self {
            ino: md.ino(),
            size: md.size(),
            ctime_ns: i128::from(md.ctime()) * 1_000_000_000 + i128::from(md.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    fn of(_: &Metadata) -> Option<Self> {
        None
    }
}

pub(super) enum Lookup {
    Hit(Bytes, ObjectInfo),
    /// Read the file, then hand the result to `ReadCache::fill` with this.
    Miss(Fill),
}

/// How a read that missed may be kept.
pub(super) enum Fill {
    Skip,
    Stat,
    /// Only if no change arrived since `generation`: the bytes may predate it.
    Watched {
        generation: u64,
    },
}

impl ReadCache {
    pub(super) fn new(root: Arc<PathBuf>) -> Self {
        Self {
            root,
            inner: RwLock::new(Inner {
                entries: HashMap::new(),
                freshness: Freshness::Undecided,
                generation: 0,
            }),
        }
    }

    /// The cached copy of `key` (whose file is `path()`, only asked for in the stat mode),
    /// if it is current.
    pub(super) fn lookup(&self, key: &str, path: impl FnOnce() -> PathBuf) -> Lookup {
        {
            let Ok(inner) = self.inner.read() else {
                return Lookup::Miss(Fill::Skip);
            };
            match &inner.freshness {
                #[cfg(target_os = "linux")]
                Freshness::Watched(watch) => {
                    if !watch.has_events() {
                        if let Some(e) = inner.entries.get(key) {
                            return Lookup::Hit(e.bytes.clone(), e.info.clone());
                        }
                        // A miss in a watched directory (a tag not pushed yet, say) needs
                        // nothing exclusive either: the fill checks the generation.
                        if watch.is_watched(parent(key)) {
                            return Lookup::Miss(Fill::Watched {
                                generation: inner.generation,
                            });
                        }
                    }
                }
                Freshness::Stat => {
                    drop(inner);
                    return self.lookup_stat(key, path);
                }
                Freshness::Undecided => {}
            }
        }
        // Changes to apply, a miss, or the first read.
        let Ok(mut inner) = self.inner.write() else {
            return Lookup::Miss(Fill::Skip);
        };
        if matches!(inner.freshness, Freshness::Undecided) {
            inner.freshness = Freshness::choose(&self.root);
        }
        match inner.freshness {
            #[cfg(target_os = "linux")]
            Freshness::Watched(_) => inner.lookup_watched(&self.root, key),
            Freshness::Undecided | Freshness::Stat => {
                drop(inner);
                self.lookup_stat(key, path)
            }
        }
    }

    /// The stat mode's lookup; the `stat` is made without the lock.
    fn lookup_stat(&self, key: &str, path: impl FnOnce() -> PathBuf) -> Lookup {
        let Some(ident) = std::fs::metadata(path())
            .ok()
            .and_then(|md| FileIdent::of(&md))
        else {
            return Lookup::Miss(Fill::Stat);
        };
        let Ok(inner) = self.inner.read() else {
            return Lookup::Miss(Fill::Skip);
        };
        match inner.entries.get(key) {
            Some(e) if e.ident == Some(ident) => Lookup::Hit(e.bytes.clone(), e.info.clone()),
            _ => Lookup::Miss(Fill::Stat),
        }
    }

    /// Keeps what a missed lookup read, if it may be kept. `opened` is the metadata of the
    /// file the bytes came from.
    pub(super) fn fill(
        &self,
        key: &str,
        fill: Fill,
        opened: &Metadata,
        bytes: &Bytes,
        info: &ObjectInfo,
    ) {
        if opened.len() > CACHE_OBJECT_MAX {
            return;
        }
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        let ident = match fill {
            Fill::Skip => return,
            Fill::Stat => match FileIdent::of(opened) {
                Some(ident) => Some(ident),
                None => return,
            },
            Fill::Watched { generation } => {
                inner.drain();
                if inner.generation != generation {
                    return;
                }
                None
            }
        };
        if inner.entries.len() >= CACHE_ENTRIES {
            inner.reset(&self.root);
            // A fresh watcher has not seen this file's directory: do not keep it.
            if ident.is_none() {
                return;
            }
        }
        inner.entries.insert(
            key.to_owned(),
            Entry {
                ident,
                bytes: bytes.clone(),
                info: info.clone(),
            },
        );
    }
}

impl Freshness {
    #[cfg(target_os = "linux")]
    fn choose(root: &Path) -> Self {
        DirWatch::new(root).map_or(Self::Stat, Self::Watched)
    }

    #[cfg(not(target_os = "linux"))]
    fn choose(_: &Path) -> Self {
        Self::Stat
    }
}

/// The directory of a key ("" at the root).
#[cfg(target_os = "linux")]
fn parent(key: &str) -> &str {
    key.rsplit_once('/').map_or("", |(dir, _)| dir)
}

impl Inner {
    #[cfg(target_os = "linux")]
    fn lookup_watched(&mut self, root: &Path, key: &str) -> Lookup {
        self.drain();
        if let Some(e) = self.entries.get(key) {
            return Lookup::Hit(e.bytes.clone(), e.info.clone());
        }
        let Freshness::Watched(watch) = &mut self.freshness else {
            return Lookup::Miss(Fill::Skip);
        };
        if watch.watched_dirs() >= CACHE_ENTRIES {
            self.reset(root);
            return Lookup::Miss(Fill::Skip);
        }
        match watch.watch(root, parent(key)) {
            Ok(()) => Lookup::Miss(Fill::Watched {
                generation: self.generation,
            }),
            // The user's watches are used up: check by `stat` from now on.
            Err(rustix::io::Errno::NOSPC) => {
                self.entries.clear();
                self.generation += 1;
                self.freshness = Freshness::Stat;
                Lookup::Miss(Fill::Stat)
            }
            // No such directory: the read will say so.
            Err(_) => Lookup::Miss(Fill::Skip),
        }
    }

    /// Applies every queued change (watched mode).
    fn drain(&mut self) {
        #[cfg(target_os = "linux")]
        if let Freshness::Watched(watch) = &mut self.freshness {
            let (entries, generation) = (&mut self.entries, &mut self.generation);
            watch.drain(|change| {
                *generation += 1;
                match change {
                    Change::File { dir, name } => {
                        entries.remove(&join(&dir, &name));
                    }
                    Change::Dir(dir) => entries.retain(|key, _| !is_under(key, &dir)),
                    Change::All => entries.clear(),
                }
            });
        }
    }

    /// Starts over (full, or too many directories watched): bounded without bookkeeping.
    fn reset(&mut self, root: &Path) {
        self.entries.clear();
        self.generation += 1;
        #[cfg(target_os = "linux")]
        if let Freshness::Watched(_) = self.freshness {
            // Closing the old instance drops all its watches at once.
            self.freshness = Freshness::choose(root);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = root;
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use index_format::{Reference, RepoName, StorageKey};
    use sha2::{Digest as _, Sha256};

    use super::Freshness;
    use crate::fs::FsStore;
    use crate::store::{ObjectStore, PutCondition, StoreError, put_bytes};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Two stores on one directory, as two processes would have: each has its own cache.
    /// `stat` forces the stat mode; otherwise the mode is chosen as in production.
    fn two_stores(dir: &std::path::Path, stat: bool) -> std::io::Result<(FsStore, FsStore)> {
        let (a, b) = (FsStore::open(dir)?, FsStore::open(dir)?);
        if stat {
            for store in [&a, &b] {
                if let Ok(mut inner) = store.cache.inner.write() {
                    inner.freshness = Freshness::Stat;
                }
            }
        }
        Ok((a, b))
    }

    fn manifest(repo: &str, tag: &str) -> Result<StorageKey, Box<dyn std::error::Error>> {
        Ok(StorageKey::Manifest(
            RepoName::new(repo)?,
            Reference::new(tag)?,
        ))
    }

    async fn put(store: &FsStore, key: &StorageKey, body: &str) -> Result<(), StoreError> {
        put_bytes(store, key, Bytes::from(body.to_owned()), PutCondition::None)
            .await
            .map(drop)
    }

    async fn read(store: &FsStore, key: &StorageKey) -> Result<Option<Bytes>, StoreError> {
        match ObjectStore::read(store, key, 1024).await {
            Ok((bytes, _)) => Ok(Some(bytes)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A replaced object is never served from the cache, even at the same size, and its
    /// ETag is always that of the bytes returned.
    #[tokio::test]
    async fn cached_reads_follow_replacements() -> TestResult {
        for stat in [false, true] {
            let dir = tempfile::tempdir()?;
            let (store, _) = two_stores(dir.path(), stat)?;
            let key = StorageKey::Catalog;
            for body in ["aaaa", "bbbb", "cccc"] {
                put(&store, &key, body).await?;
                for _ in 0..2 {
                    let (bytes, info) = ObjectStore::read(&store, &key, 1024).await?;
                    assert_eq!(bytes.as_ref(), body.as_bytes());
                    let hash: [u8; 32] = Sha256::digest(body.as_bytes()).into();
                    assert_eq!(info.etag.0, hex::encode(hash));
                    assert_eq!(info.sha256, Some(hash));
                }
            }
            store.delete(&key).await?;
            assert_eq!(read(&store, &key).await?, None);
        }
        Ok(())
    }

    /// Read-your-writes across processes: once another store's put or delete returned,
    /// this store's next read sees it, however recently it cached the old bytes.
    #[tokio::test]
    async fn reads_follow_another_stores_writes_at_once() -> TestResult {
        for stat in [false, true] {
            let dir = tempfile::tempdir()?;
            let (reader, writer) = two_stores(dir.path(), stat)?;
            let key = manifest("team/app", "latest")?;
            for round in 0..200 {
                // Same size every round, so only the file's identity tells them apart.
                let body = format!("{round:08}");
                put(&writer, &key, &body).await?;
                for _ in 0..2 {
                    let got = read(&reader, &key).await?;
                    assert_eq!(got.as_deref(), Some(body.as_bytes()), "round {round}");
                }
            }
            writer.delete(&key).await?;
            assert_eq!(read(&reader, &key).await?, None);
        }
        Ok(())
    }

    /// Every directory is watched before a file in it is kept, also when the cache has
    /// long been running: a file first read in a new directory, then replaced by another
    /// store, is read anew. Misses (a tag not there yet) are not kept.
    #[tokio::test]
    async fn files_in_new_directories_follow_other_stores() -> TestResult {
        for stat in [false, true] {
            let dir = tempfile::tempdir()?;
            let (reader, writer) = two_stores(dir.path(), stat)?;
            let repos = ["a", "b/c", "b/d", "e/f/g"];
            // Written before the reader starts, so no event announces their directories.
            for repo in repos {
                put(&writer, &manifest(repo, "v1")?, "old!").await?;
            }
            // The mode is decided, and the root watched, by the first read.
            put(&writer, &StorageKey::Catalog, "catalog").await?;
            read(&reader, &StorageKey::Catalog).await?;
            for repo in repos {
                assert_eq!(read(&reader, &manifest(repo, "v2")?).await?, None, "{repo}");
                let key = manifest(repo, "v1")?;
                assert_eq!(read(&reader, &key).await?.as_deref(), Some(&b"old!"[..]));
                assert_eq!(read(&reader, &key).await?.as_deref(), Some(&b"old!"[..]));
                put(&writer, &key, "new!").await?;
                assert_eq!(
                    read(&reader, &key).await?.as_deref(),
                    Some(&b"new!"[..]),
                    "{repo}"
                );
            }
        }
        Ok(())
    }

    /// Hits share the lock: readers on several threads, racing a writer in another
    /// store, never see a version older than the last put that returned before their
    /// read began.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_readers_never_go_back_in_time() -> TestResult {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

        for stat in [false, true] {
            let dir = tempfile::tempdir()?;
            let (reader, writer) = two_stores(dir.path(), stat)?;
            let reader = Arc::new(reader);
            let key = manifest("team/app", "latest")?;
            put(&writer, &key, &format!("{:08}", 0)).await?;
            let (written, done) = (
                Arc::new(AtomicU64::new(0)),
                Arc::new(AtomicBool::new(false)),
            );
            let readers: Vec<_> = (0..3)
                .map(|_| {
                    let (reader, key) = (reader.clone(), key.clone());
                    let (written, done) = (written.clone(), done.clone());
                    tokio::spawn(async move {
                        let mut reads = 0u64;
                        while !done.load(Ordering::SeqCst) {
                            let floor = written.load(Ordering::SeqCst);
                            let bytes = read(&reader, &key).await?.ok_or("tag vanished")?;
                            let seen: u64 = std::str::from_utf8(&bytes)?.parse()?;
                            if seen < floor {
                                return Err(format!("read {seen} after {floor} was written").into());
                            }
                            reads += 1;
                            tokio::task::yield_now().await;
                        }
                        Ok::<u64, Box<dyn std::error::Error + Send + Sync>>(reads)
                    })
                })
                .collect();
            for round in 1..=300u64 {
                put(&writer, &key, &format!("{round:08}")).await?;
                written.store(round, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
            done.store(true, Ordering::SeqCst);
            for r in readers {
                let reads = r.await?.map_err(|e| e.to_string())?;
                assert!(reads > 0, "a reader never ran");
            }
        }
        Ok(())
    }

    /// Directories moved or removed under the cache (by an operator, or another process)
    /// never leave their old files answering at the old path.
    #[tokio::test]
    async fn moved_and_removed_directories_are_not_served() -> TestResult {
        for stat in [false, true] {
            let dir = tempfile::tempdir()?;
            let (reader, writer) = two_stores(dir.path(), stat)?;
            let (old, new) = (manifest("team/app", "v1")?, manifest("team/moved", "v1")?);
            put(&writer, &old, "first").await?;
            assert_eq!(read(&reader, &old).await?.as_deref(), Some(&b"first"[..]));

            // The repository's folder renamed: the old path is gone, the new one serves.
            let index = dir.path().join("index/team");
            std::fs::rename(index.join("app"), index.join("moved"))?;
            assert_eq!(read(&reader, &old).await?, None);
            assert_eq!(read(&reader, &new).await?.as_deref(), Some(&b"first"[..]));

            // Removed and written again at the same path.
            std::fs::remove_dir_all(index.join("moved"))?;
            assert_eq!(read(&reader, &new).await?, None);
            put(&writer, &new, "again").await?;
            assert_eq!(read(&reader, &new).await?.as_deref(), Some(&b"again"[..]));

            // An ancestor far above the file replaced by a different tree.
            std::fs::rename(dir.path().join("index"), dir.path().join("index.old"))?;
            assert_eq!(read(&reader, &new).await?, None);
            put(&writer, &new, "third").await?;
            assert_eq!(read(&reader, &new).await?.as_deref(), Some(&b"third"[..]));
        }
        Ok(())
    }

    /// On a local Linux filesystem the first read switches the cache to kernel
    /// notifications, so the tests above exercise that mode and not only `stat`.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn local_filesystems_use_notifications() -> TestResult {
        let dir = tempfile::tempdir()?;
        let magic = rustix::fs::statfs(dir.path())?.f_type;
        let (store, _) = two_stores(dir.path(), false)?;
        let key = StorageKey::Catalog;
        put(&store, &key, "x").await?;
        read(&store, &key).await?;
        let watched = store
            .cache
            .inner
            .read()
            .is_ok_and(|inner| matches!(inner.freshness, Freshness::Watched(_)));
        // The temp folder of a test machine is ext4 or tmpfs; say which if not.
        assert!(watched, "filesystem magic {magic:#x} is not watched");
        Ok(())
    }
}
