//! Reading and read-modify-writing the index's JSON documents, and the small ones read
//! straight off the store: tag lists, the catalog, referrers, `config.json`.

use std::time::Duration;

use blob_gateway::{PutCondition, put_bytes};
use bytes::Bytes;
use index_format::StorageKey;
use index_format::documents::{Catalog, IndexConfig, ReferrersIndex, TagList, to_bytes};
use index_format::{Digest, RepoName};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Index, IndexError, found};

/// Documents are small; anything bigger is corrupt or hostile.
pub(super) const MAX_DOCUMENT_BYTES: u64 = 64 << 20;
const MAX_ATTEMPTS: u32 = 100;

/// A document's bytes with the condition that replaces exactly them.
pub(super) struct Loaded {
    pub(super) bytes: Bytes,
    pub(super) condition: PutCondition,
}

impl Index {
    /// The stored bytes at `key`, `None` if absent. The one way the index reads.
    pub(super) async fn load(
        &self,
        key: &StorageKey,
        max: u64,
    ) -> Result<Option<Loaded>, IndexError> {
        Ok(
            found(self.store.read(key, max).await)?.map(|(bytes, info)| Loaded {
                bytes,
                condition: PutCondition::IfMatch(info.etag),
            }),
        )
    }

    /// A document parsed, `None` if absent.
    pub(super) async fn read<T: DeserializeOwned>(
        &self,
        key: &StorageKey,
    ) -> Result<Option<T>, IndexError> {
        match self.load(key, MAX_DOCUMENT_BYTES).await? {
            Some(doc) => parse(key, &doc.bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Applies `change` to the document at `key` (or to `init()` if absent) and writes it
    /// back if `change` returned `true`, retrying when another writer got there first.
    pub(super) async fn update<T, I, F>(
        &self,
        key: &StorageKey,
        init: I,
        mut change: F,
    ) -> Result<T, IndexError>
    where
        T: Serialize + DeserializeOwned,
        I: Fn() -> T,
        F: FnMut(&mut T) -> bool,
    {
        for attempt in 0..MAX_ATTEMPTS {
            let (mut doc, condition) = match self.load(key, MAX_DOCUMENT_BYTES).await? {
                Some(d) => (parse(key, &d.bytes)?, d.condition),
                None => (init(), PutCondition::IfNoneMatch),
            };
            if !change(&mut doc) {
                return Ok(doc);
            }
            match put_bytes(self.store.as_ref(), key, serialize(key, &doc)?, condition).await {
                Ok(_) => return Ok(doc),
                Err(e) if e.is_precondition_failed() => backoff(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(IndexError::Contended {
            key: key.key(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Writes a whole document unconditionally (rebuilds: the result replaces anything).
    pub(super) async fn put_document<T: Serialize>(
        &self,
        key: &StorageKey,
        doc: &T,
    ) -> Result<(), IndexError> {
        put_bytes(
            self.store.as_ref(),
            key,
            serialize(key, doc)?,
            PutCondition::None,
        )
        .await?;
        Ok(())
    }

    /// Writes the root `config.json` unless it already says exactly this.
    pub async fn write_config(&self, config: IndexConfig) -> Result<(), IndexError> {
        let key = StorageKey::Config;
        if self.read::<IndexConfig>(&key).await?.as_ref() == Some(&config) {
            return Ok(());
        }
        // Whole, unconditionally: the configuration of the server starting now wins.
        let bytes = serialize(&key, &config)?;
        put_bytes(self.store.as_ref(), &key, bytes, PutCondition::None).await?;
        Ok(())
    }

    /// The tag list of `repo`, `None` if it has none.
    pub async fn tags(&self, repo: &RepoName) -> Result<Option<TagList>, IndexError> {
        self.read(&StorageKey::TagList(repo.clone())).await
    }

    /// The tag list's stored bytes: exactly the `tags/list` response for all tags.
    pub async fn tags_document(&self, repo: &RepoName) -> Result<Option<Bytes>, IndexError> {
        let key = StorageKey::TagList(repo.clone());
        Ok(self.load(&key, MAX_DOCUMENT_BYTES).await?.map(|d| d.bytes))
    }

    /// Every repository with a pushed manifest.
    pub async fn catalog(&self) -> Result<Catalog, IndexError> {
        Ok(self.read(&StorageKey::Catalog).await?.unwrap_or_default())
    }

    /// The manifests of `repo` whose subject is `subject`.
    pub async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
    ) -> Result<ReferrersIndex, IndexError> {
        let key = StorageKey::Referrers(repo.clone(), subject.clone());
        Ok(self.read(&key).await?.unwrap_or_default())
    }
}

pub(super) fn parse<T: DeserializeOwned>(key: &StorageKey, bytes: &[u8]) -> Result<T, IndexError> {
    serde_json::from_slice(bytes).map_err(|source| IndexError::Corrupt {
        key: key.key(),
        source,
    })
}

pub(super) fn serialize<T: Serialize>(key: &StorageKey, doc: &T) -> Result<Bytes, IndexError> {
    to_bytes(doc)
        .map(Bytes::from)
        .map_err(|source| IndexError::Serialize {
            key: key.key(),
            source,
        })
}

/// Jittered, growing pause between attempts, so contending writers spread out.
async fn backoff(attempt: u32) {
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 8;
    let ms = (u64::from(attempt.min(10)) * 2 + jitter).max(1);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
