//! Blob links: `index/<name>/_blobs/<digest>` says that a repository may serve a blob, and
//! holds its size, so `HEAD` is answered without touching the blob.

use blob_gateway::{PutCondition, put_bytes};
use index_format::documents::BlobLink;
use index_format::{Digest, RepoName, StorageKey};

use super::documents::serialize;
use super::{Index, IndexError};

impl Index {
    /// The link that lets `repo` serve `digest`, if it has one.
    pub async fn blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<BlobLink>, IndexError> {
        self.read(&StorageKey::BlobLink(repo.clone(), digest.clone()))
            .await
    }

    /// Records that `repo` may serve `digest` (idempotent).
    pub(super) async fn link_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
    ) -> Result<(), IndexError> {
        let key = StorageKey::BlobLink(repo.clone(), digest.clone());
        let link = BlobLink {
            digest: digest.clone(),
            size,
        };
        let bytes = serialize(&key, &link)?;
        put_bytes(self.store.as_ref(), &key, bytes, PutCondition::None).await?;
        Ok(())
    }

    /// Links a blob `from` can serve into `to` (a cross-repository mount); `None` when
    /// `from` cannot serve it.
    pub async fn mount(
        &self,
        from: &RepoName,
        to: &RepoName,
        digest: &Digest,
    ) -> Result<Option<BlobLink>, IndexError> {
        let Some(link) = self.blob(from, digest).await? else {
            return Ok(None);
        };
        self.link_blob(to, digest, link.size).await?;
        Ok(Some(link))
    }

    /// Links a blob stored under `blobs/` for any repository into `repo`; `None` when no
    /// such blob is stored.
    pub async fn link_stored_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<u64>, IndexError> {
        let Some(info) = super::found(self.store.head(&StorageKey::Blob(digest.clone())).await)?
        else {
            return Ok(None);
        };
        self.link_blob(repo, digest, info.size).await?;
        Ok(Some(info.size))
    }

    /// Whether a blob is stored under `blobs/` for any repository, and its size.
    pub async fn stored_blob_size(&self, digest: &Digest) -> Result<Option<u64>, IndexError> {
        let key = StorageKey::Blob(digest.clone());
        Ok(super::found(self.store.head(&key).await)?.map(|info| info.size))
    }

    /// Removes `repo`'s link to `digest` (other repositories may share the bytes, which
    /// stay). `false` if there was none.
    pub async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool, IndexError> {
        if self.blob(repo, digest).await?.is_none() {
            return Ok(false);
        }
        self.store
            .delete(&StorageKey::BlobLink(repo.clone(), digest.clone()))
            .await?;
        Ok(true)
    }
}
