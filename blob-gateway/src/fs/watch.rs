//! Which cached files may have changed, told by the kernel (inotify) instead of a `stat`
//! per read.
//!
//! Exactness rests on one guarantee: the kernel queues the event for a rename, unlink or
//! write in a watched directory before that system call returns. So once a writer in
//! any process has finished `rename`, a reader that then drains the queue sees the event,
//! and a cached copy is never served after the write that replaced it completed.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::path::Path;

use rustix::fd::OwnedFd;
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

/// Everything that changes what a path names, and nothing a reader causes (no access or
/// open events, so our own reads never wake the queue).
const CHANGES: WatchFlags = WatchFlags::CLOSE_WRITE
    .union(WatchFlags::MODIFY)
    .union(WatchFlags::ATTRIB)
    .union(WatchFlags::CREATE)
    .union(WatchFlags::DELETE)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::DELETE_SELF)
    .union(WatchFlags::MOVE_SELF)
    .union(WatchFlags::ONLYDIR);

/// Filesystems whose changes, from any process on this host, reach inotify. Network and
/// FUSE filesystems can change underneath without an event, so they keep `stat` checks.
const LOCAL_FILESYSTEMS: [u32; 7] = [
    0x0000_EF53, // ext2/3/4
    0x5846_5342, // xfs
    0x9123_683E, // btrfs
    0x0102_1994, // tmpfs
    0x794C_7630, // overlayfs
    0x2FC1_2FC1, // zfs
    0xF2F5_2010, // f2fs
];

/// A change the cache must apply before it answers from memory.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Change {
    /// The file `name` in the directory watched for `dir` changed or went away.
    File { dir: String, name: String },
    /// The directory itself went away or moved: everything cached under it is stale.
    Dir(String),
    /// Events were lost (queue overflow): nothing cached can be trusted.
    All,
}

/// An inotify instance watching the directories of cached files, keyed by their path
/// relative to the store root ("" is the root itself).
pub(super) struct DirWatch {
    fd: OwnedFd,
    dirs: HashMap<i32, String>,
    by_dir: HashMap<String, i32>,
}

impl std::fmt::Debug for DirWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirWatch")
            .field("dirs", &self.dirs.len())
            .finish_non_exhaustive()
    }
}

impl DirWatch {
    /// A watcher for a store under `root`, if its filesystem reports every change to
    /// inotify and an instance is available (they are limited per user).
    pub(super) fn new(root: &Path) -> Option<Self> {
        let local = rustix::fs::statfs(root)
            .ok()
            // The magic is 32 bits, in a word whose width and sign vary by platform.
            .and_then(|s| u32::try_from(i128::from(s.f_type) & 0xFFFF_FFFF).ok())
            .is_some_and(|magic| LOCAL_FILESYSTEMS.contains(&magic));
        if !local {
            return None;
        }
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).ok()?;
        Some(Self {
            fd,
            dirs: HashMap::new(),
            by_dir: HashMap::new(),
        })
    }

    pub(super) fn watched_dirs(&self) -> usize {
        self.dirs.len()
    }

    /// Whether `dir` is watched, and with it every directory above it (`watch` adds them
    /// first, `forget` drops a directory with everything below it).
    pub(super) fn is_watched(&self, dir: &str) -> bool {
        self.by_dir.contains_key(dir)
    }

    /// Makes sure `dir` (relative to `root`) and every directory above it are watched.
    /// Called before a file in `dir` is read, so a change after the read is always
    /// queued: to the file itself, or to any directory on its path (a rename or removal
    /// of an ancestor shows up in its parent, and of the root in the root itself).
    pub(super) fn watch(&mut self, root: &Path, dir: &str) -> rustix::io::Result<()> {
        if self.by_dir.contains_key(dir) {
            return Ok(());
        }
        let ancestors = std::iter::once("")
            .chain(dir.match_indices('/').map(|(i, _)| &dir[..i]))
            .chain((!dir.is_empty()).then_some(dir));
        for d in ancestors {
            if self.by_dir.contains_key(d) {
                continue;
            }
            let wd = inotify::add_watch(&self.fd, root.join(d), CHANGES)?;
            // Two paths naming one directory would share a descriptor; ours are canonical.
            if let Some(old) = self.dirs.insert(wd, d.to_owned()) {
                self.by_dir.remove(&old);
            }
            self.by_dir.insert(d.to_owned(), wd);
        }
        Ok(())
    }

    /// Stops watching `dir` and everything below it: it is gone, or no longer at the
    /// path its key names.
    fn forget(&mut self, dir: &str) {
        let stale: Vec<(String, i32)> = self
            .by_dir
            .iter()
            .filter(|(d, _)| is_under(d, dir))
            .map(|(d, wd)| (d.clone(), *wd))
            .collect();
        for (d, wd) in stale {
            // Fails harmlessly for a directory already removed (its watch went with it).
            let _ = inotify::remove_watch(&self.fd, wd);
            self.dirs.remove(&wd);
            self.by_dir.remove(&d);
        }
    }

    /// Whether events are queued, without consuming them (so it needs no exclusive
    /// access). A failed check says yes: draining then finds out what is wrong.
    pub(super) fn has_events(&self) -> bool {
        rustix::io::ioctl_fionread(&self.fd).map_or(true, |queued| queued > 0)
    }

    /// Reads every queued event (one non-blocking `read` when there are none) and hands
    /// each resulting change to `apply`, in order.
    pub(super) fn drain(&mut self, mut apply: impl FnMut(Change)) {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut changes = Vec::new();
        {
            let mut reader = inotify::Reader::new(&self.fd, &mut buf);
            loop {
                let event = match reader.next() {
                    Ok(event) => event,
                    Err(rustix::io::Errno::AGAIN) => break,
                    Err(rustix::io::Errno::INTR) => continue,
                    // The queue can no longer be read: treat it as lost events.
                    Err(_) => {
                        changes.push(Change::All);
                        break;
                    }
                };
                let flags = event.events();
                if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                    changes.push(Change::All);
                    continue;
                }
                let Some(dir) = self.dirs.get(&event.wd()) else {
                    // A descriptor already forgotten.
                    continue;
                };
                let name = event.file_name().map(|n| n.to_string_lossy());
                let gone = ReadFlags::IGNORED | ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF;
                changes.push(match name {
                    _ if flags.intersects(gone) => Change::Dir(dir.clone()),
                    Some(name) if flags.contains(ReadFlags::ISDIR) => Change::Dir(join(dir, &name)),
                    Some(name) => Change::File {
                        dir: dir.clone(),
                        name: name.into_owned(),
                    },
                    // The directory's own attributes: its contents are unchanged.
                    None => continue,
                });
            }
        }
        for change in changes {
            if let Change::Dir(dir) = &change {
                self.forget(dir);
            }
            apply(change);
        }
    }
}

/// `dir/name`, or `name` at the root.
pub(super) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether `path` is `dir` or below it ("" is the root, above everything).
pub(super) fn is_under(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}
