//! Read-modify-write of the index's JSON documents.

use std::time::Duration;

use blob_gateway::{PutCondition, PutMeta, StoreError, get_bytes, put_bytes};
use bytes::Bytes;
use index_format::StorageKey;
use index_format::documents::{BlobLink, Catalog, IndexConfig, ReferrersIndex, TagList, to_bytes};
use index_format::{Digest, RepoName};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Index;

/// Documents are small; anything bigger is corrupt or hostile.
const MAX_DOCUMENT_BYTES: u64 = 64 << 20;
const MAX_ATTEMPTS: u32 = 100;

/// Why a document could not be read or updated.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key}: stored document is not valid JSON")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{key}: still changing after {MAX_ATTEMPTS} attempts")]
    Contended { key: String },
}

impl Index {
    /// Reads a document, `None` if absent.
    pub async fn read<T: DeserializeOwned>(
        &self,
        key: &StorageKey,
    ) -> Result<Option<T>, DocumentError> {
        match get_bytes(self.store.as_ref(), key, MAX_DOCUMENT_BYTES).await {
            Ok((bytes, _)) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| DocumentError::Corrupt {
                        key: key.key(),
                        source,
                    })
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies `change` to the document at `key` (or to `init()` if absent) and writes it
    /// back if `change` returned `true`, retrying when another writer got there first.
    pub async fn update<T, I, F>(
        &self,
        key: &StorageKey,
        init: I,
        mut change: F,
    ) -> Result<T, DocumentError>
    where
        T: Serialize + DeserializeOwned,
        I: Fn() -> T,
        F: FnMut(&mut T) -> bool,
    {
        for attempt in 0..MAX_ATTEMPTS {
            let (mut doc, condition) = match get_bytes(self.store.as_ref(), key, MAX_DOCUMENT_BYTES)
                .await
            {
                Ok((bytes, info)) => (
                    serde_json::from_slice(&bytes).map_err(|source| DocumentError::Corrupt {
                        key: key.key(),
                        source,
                    })?,
                    PutCondition::IfMatch(info.etag),
                ),
                Err(e) if e.is_not_found() => (init(), PutCondition::IfNoneMatch),
                Err(e) => return Err(e.into()),
            };
            if !change(&mut doc) {
                return Ok(doc);
            }
            let bytes = Bytes::from(to_bytes(&doc));
            let meta = PutMeta::for_key(key, None);
            match put_bytes(self.store.as_ref(), key, bytes, meta, condition).await {
                Ok(_) => return Ok(doc),
                Err(e) if e.is_precondition_failed() => backoff(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DocumentError::Contended { key: key.key() })
    }

    /// Writes the root `config.json` unless it already says exactly this.
    pub async fn write_config(&self, config: IndexConfig) -> Result<(), DocumentError> {
        let key = StorageKey::Config;
        if self.read::<IndexConfig>(&key).await?.as_ref() == Some(&config) {
            return Ok(());
        }
        let meta = PutMeta::for_key(&key, None);
        let bytes = Bytes::from(to_bytes(&config));
        put_bytes(self.store.as_ref(), &key, bytes, meta, PutCondition::None).await?;
        Ok(())
    }

    /// A document's stored bytes, exactly the API response body it stands for.
    pub async fn read_raw(&self, key: &StorageKey) -> Result<Option<Bytes>, DocumentError> {
        match get_bytes(self.store.as_ref(), key, MAX_DOCUMENT_BYTES).await {
            Ok((bytes, _)) => Ok(Some(bytes)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn tag_list(&self, repo: &RepoName) -> Result<Option<TagList>, DocumentError> {
        self.read(&StorageKey::TagList(repo.clone())).await
    }

    pub async fn catalog(&self) -> Result<Catalog, DocumentError> {
        Ok(self.read(&StorageKey::Catalog).await?.unwrap_or_default())
    }

    pub async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
    ) -> Result<ReferrersIndex, DocumentError> {
        let key = StorageKey::Referrers(repo.clone(), subject.clone());
        Ok(self.read(&key).await?.unwrap_or_default())
    }

    /// The link that lets `repo` serve `digest`, if it has one.
    pub async fn blob_link(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<BlobLink>, DocumentError> {
        self.read(&StorageKey::BlobLink(repo.clone(), digest.clone()))
            .await
    }
}

/// Jittered, growing pause between attempts, so contending writers spread out.
async fn backoff(attempt: u32) {
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 8;
    let ms = (u64::from(attempt.min(10)) * 2 + jitter).max(1);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
