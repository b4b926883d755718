//! A store wrapper for S3-compatible servers that ignore conditional writes (Garage 2.5
//! overwrites on `If-None-Match`/`If-Match`). It checks each condition itself, under one
//! in-process lock, then writes unconditionally.
//!
//! This is only safe when this process is the **only writer** to the bucket: a second
//! process has its own lock and can interleave, losing tags. cargohold refuses such a
//! store at start-up unless the operator opts in to single-writer mode.

use std::time::SystemTime;

use bytes::Bytes;
use index_format::{KeyPrefix, StorageKey};
use tokio::sync::Mutex;

use crate::store::{
    ByteRange, ByteStream, CompletedPart, ListPage, ManifestMeta, MultipartId, ObjectBody,
    ObjectInfo, ObjectStore, Presign, PutCondition, StoreError,
};

/// Serialises conditional writes of the wrapped store in this process.
pub struct SingleWriter<S> {
    inner: S,
    lock: Mutex<()>,
}

impl<S: ObjectStore> SingleWriter<S> {
    /// Wraps `inner`; only sound when this process is the bucket's only writer.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            lock: Mutex::new(()),
        }
    }

    /// Checks `condition` against the current object; the caller holds the lock.
    async fn check(&self, key: &StorageKey, condition: &PutCondition) -> Result<(), StoreError> {
        let current = match self.inner.head(key).await {
            Ok(i) => Some(i),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let holds = condition.holds(current.as_ref());
        if holds {
            Ok(())
        } else {
            Err(StoreError::PreconditionFailed { key: key.key() })
        }
    }
}

#[async_trait::async_trait]
impl<S: ObjectStore> ObjectStore for SingleWriter<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn head(&self, key: &StorageKey) -> Result<ObjectInfo, StoreError> {
        self.inner.head(key).await
    }

    async fn get(
        &self,
        key: &StorageKey,
        range: Option<ByteRange>,
    ) -> Result<ObjectBody, StoreError> {
        self.inner.get(key, range).await
    }

    async fn read(&self, key: &StorageKey, max: u64) -> Result<(Bytes, ObjectInfo), StoreError> {
        self.inner.read(key, max).await
    }

    async fn put(
        &self,
        key: &StorageKey,
        body: ByteStream,
        manifest: Option<ManifestMeta>,
        condition: PutCondition,
    ) -> Result<ObjectInfo, StoreError> {
        if condition == PutCondition::None {
            return self.inner.put(key, body, manifest, condition).await;
        }
        let _held = self.lock.lock().await;
        self.check(key, &condition).await?;
        self.inner
            .put(key, body, manifest, PutCondition::None)
            .await
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        let _held = self.lock.lock().await;
        self.inner.delete(key).await
    }

    async fn list(
        &self,
        prefix: &KeyPrefix,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        self.inner.list(prefix, after, limit).await
    }

    async fn copy(
        &self,
        from: &StorageKey,
        to: &StorageKey,
        condition: PutCondition,
    ) -> Result<ObjectInfo, StoreError> {
        if condition == PutCondition::None {
            return self.inner.copy(from, to, condition).await;
        }
        let _held = self.lock.lock().await;
        self.check(to, &condition).await?;
        self.inner.copy(from, to, PutCondition::None).await
    }

    async fn create_multipart(&self, key: &StorageKey) -> Result<MultipartId, StoreError> {
        self.inner.create_multipart(key).await
    }

    async fn upload_part(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        number: u32,
        body: ByteStream,
        size: Option<u64>,
    ) -> Result<CompletedPart, StoreError> {
        self.inner
            .upload_part(key, upload, number, body, size)
            .await
    }

    fn part_size(&self) -> Option<u64> {
        self.inner.part_size()
    }

    async fn complete_multipart(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        parts: &[CompletedPart],
    ) -> Result<ObjectInfo, StoreError> {
        self.inner.complete_multipart(key, upload, parts).await
    }

    async fn abort_multipart(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
    ) -> Result<(), StoreError> {
        self.inner.abort_multipart(key, upload).await
    }

    fn presigner(&self) -> Option<&dyn Presign> {
        self.inner.presigner()
    }

    async fn remove_leftovers(&self, before: SystemTime) -> Result<usize, StoreError> {
        self.inner.remove_leftovers(before).await
    }
}
