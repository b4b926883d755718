//! Garbage collection of abandoned upload sessions: a client that starts an upload and
//! never closes it leaves parts, tails and state in the store. Sessions older than the
//! configured age are discarded whole; objects of sessions whose state is already gone
//! (a crash during cleanup) are removed once they are as old.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use index_format::{KeyPrefix, StorageKey, UploadId};

use super::{UploadError, Uploads};

const PAGE: usize = 1000;

/// What a collection removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Sessions discarded because they were older than the limit.
    pub sessions: usize,
    /// Objects left by sessions whose state was already gone.
    pub orphans: usize,
    /// What crashed writers left: multipart uploads the backend still held, and on the
    /// filesystem temp files and empty session folders.
    pub leftovers: usize,
}

impl Uploads {
    /// Discards every upload session started more than `max_age` ago.
    pub async fn collect_garbage(&self, max_age: Duration) -> Result<GcReport, UploadError> {
        let now = SystemTime::now();
        let cutoff = now.checked_sub(max_age).unwrap_or(UNIX_EPOCH);
        let cutoff_secs = cutoff.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut report = GcReport::default();
        for (id, keys) in self.sessions().await? {
            let state_key = StorageKey::UploadState(id.clone());
            let has_state = keys.iter().any(|k| k == &state_key);
            if has_state {
                let state = match self.load(&id).await {
                    Ok((state, _)) => Some(state),
                    Err(UploadError::Unknown(_)) => continue,
                    Err(UploadError::CorruptState { .. }) => None,
                    Err(e) => return Err(e),
                };
                match state {
                    Some(s) if s.started > cutoff_secs => {}
                    Some(s) => {
                        self.discard(&id, &s).await?;
                        report.sessions += 1;
                    }
                    None => {
                        // Unreadable state: judge it by age like an orphan.
                        report.orphans += self.remove_if_old(&keys, cutoff).await?;
                    }
                }
            } else {
                report.orphans += self.remove_if_old(&keys, cutoff).await?;
            }
        }
        report.leftovers = self.store.remove_leftovers(cutoff).await?;
        Ok(report)
    }

    /// Every object under `uploads/`, grouped by session.
    async fn sessions(&self) -> Result<BTreeMap<UploadId, Vec<StorageKey>>, UploadError> {
        let mut sessions: BTreeMap<UploadId, Vec<StorageKey>> = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .list(&KeyPrefix::Uploads, after.as_deref(), PAGE)
                .await?;
            for key in &page.keys {
                let parsed = StorageKey::parse(key);
                let id = match &parsed {
                    Some(StorageKey::UploadState(id))
                    | Some(StorageKey::UploadData(id))
                    | Some(StorageKey::UploadTail(id, _)) => id.clone(),
                    _ => continue,
                };
                if let Some(k) = parsed {
                    sessions.entry(id).or_default().push(k);
                }
            }
            match (page.truncated, page.keys.last()) {
                (true, Some(last)) => after = Some(last.clone()),
                _ => break,
            }
        }
        Ok(sessions)
    }

    async fn remove_if_old(
        &self,
        keys: &[StorageKey],
        cutoff: SystemTime,
    ) -> Result<usize, UploadError> {
        let mut removed = 0;
        for key in keys {
            let info = match self.store.head(key).await {
                Ok(i) => i,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            if info.last_modified.is_some_and(|t| t < cutoff) {
                self.store.delete(key).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
