//! Turning request bodies into multipart parts, hashing every byte on the way.
//!
//! Stores that take parts of any size (the filesystem) get one part per request, streamed.
//! Stores that need every non-final part to be exactly `part_size` bytes (S3 needs 5 MiB or
//! more, R2 equal sizes) get bodies cut into parts of that size; whatever is left over is
//! kept in the store as a *tail* object, prepended to the next request's bytes, and sent as
//! the final part when the upload closes. At most one part is held in memory at a time.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::BytesMut;
use futures::{StreamExt, TryStreamExt};
use index_format::{StorageKey, UploadId};

use super::{Tail, UploadError, UploadState, Uploads, new_id, next_part_number, one};
use crate::store::{ByteStream, MultipartId, PutCondition, StoreError, put_bytes};

fn body_error(id: &UploadId) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        key: StorageKey::UploadData(id.clone()).key(),
        source,
    }
}

impl Uploads {
    /// Appends `body` to the session's parts, updating `state` (not yet saved). Tails that
    /// the new state no longer names are pushed to `superseded`, to delete once saved.
    pub(super) async fn write_part(
        &self,
        id: &UploadId,
        state: &mut UploadState,
        body: ByteStream,
        size: Option<u64>,
        superseded: &mut Vec<Tail>,
    ) -> Result<(), UploadError> {
        if size == Some(0) {
            return Ok(());
        }
        match self.store.part_size() {
            None => self.write_streamed(id, state, body, size).await,
            Some(n) => self.write_sized(id, state, body, size, n, superseded).await,
        }
    }

    async fn multipart(
        &self,
        state: &mut UploadState,
        id: &UploadId,
    ) -> Result<MultipartId, StoreError> {
        if let Some(m) = &state.multipart {
            return Ok(m.clone());
        }
        let key = StorageKey::UploadData(id.clone());
        let m = self.store.create_multipart(&key).await?;
        state.multipart = Some(m.clone());
        Ok(m)
    }

    async fn upload(
        &self,
        id: &UploadId,
        state: &mut UploadState,
        body: ByteStream,
        size: Option<u64>,
    ) -> Result<(), UploadError> {
        let multipart = self.multipart(state, id).await?;
        let number = next_part_number(id, state)?;
        let key = StorageKey::UploadData(id.clone());
        let part = self
            .store
            .upload_part(&key, &multipart, number, body, size)
            .await?;
        if part.size > 0 {
            state.parts.push(part);
        }
        Ok(())
    }

    /// One streamed part per request; an empty body adds none.
    async fn write_streamed(
        &self,
        id: &UploadId,
        state: &mut UploadState,
        mut body: ByteStream,
        size: Option<u64>,
    ) -> Result<(), UploadError> {
        // Without a length, look at the first chunk: an empty body adds no part.
        let first = loop {
            match body.try_next().await.map_err(body_error(id))? {
                None => return Ok(()),
                Some(chunk) if chunk.is_empty() => continue,
                Some(chunk) => break chunk,
            }
        };
        let body: ByteStream = Box::pin(one(first).chain(body));
        let hasher = Arc::new(Mutex::new(Self::hasher(id, state)?));
        let h = hasher.clone();
        // The lock is never contended (the stream is polled by one task); a panic while it
        // was held cannot leave a half-updated hash, so poisoning is ignored.
        let hashed: ByteStream = Box::pin(body.inspect_ok(move |chunk| {
            locked(&h).update(chunk);
        }));
        self.upload(id, state, hashed, size).await?;
        state.hash = locked(&hasher).save();
        Ok(())
    }

    /// Cuts the tail plus `body` into parts of exactly `n` bytes; the rest becomes the tail.
    async fn write_sized(
        &self,
        id: &UploadId,
        state: &mut UploadState,
        mut body: ByteStream,
        size: Option<u64>,
        n: u64,
        superseded: &mut Vec<Tail>,
    ) -> Result<(), UploadError> {
        // Part sizes are configured in MiB: they fit in memory, or the store could not work.
        let part_len = usize::try_from(n).unwrap_or(usize::MAX);
        let mut hasher = Self::hasher(id, state)?;
        let mut buf = BytesMut::with_capacity(part_len);
        // The tail's bytes were hashed when they arrived; they only move into this part.
        let old_tail = state.tail.take();
        if let Some(t) = &old_tail {
            let key = StorageKey::UploadTail(id.clone(), t.id.clone());
            let (bytes, _) = self.store.read(&key, n).await?;
            buf.extend_from_slice(&bytes);
        }
        while let Some(mut chunk) = body.try_next().await.map_err(body_error(id))? {
            hasher.update(&chunk);
            while !chunk.is_empty() {
                let take = (part_len - buf.len()).min(chunk.len());
                buf.extend_from_slice(&chunk.split_to(take));
                if buf.len() == part_len {
                    let part = buf.split().freeze();
                    self.upload(id, state, one(part), Some(n)).await?;
                }
            }
        }
        let received = hasher.size() - state.offset();
        if let Some(announced) = size.filter(|&s| s != received) {
            // Nothing is committed: the state is only saved by the caller on success.
            return Err(UploadError::SizeMismatch {
                announced,
                received,
            });
        }
        state.hash = hasher.save();
        if !buf.is_empty() {
            let tail = Tail {
                id: new_id(),
                size: buf.len() as u64,
            };
            let key = StorageKey::UploadTail(id.clone(), tail.id.clone());
            put_bytes(self.store.as_ref(), &key, buf.freeze(), PutCondition::None).await?;
            state.tail = Some(tail);
        }
        superseded.extend(old_tail.filter(|t| Some(t) != state.tail.as_ref()));
        Ok(())
    }

    /// Sends the tail, if any, as the final part.
    pub(super) async fn flush_tail(
        &self,
        id: &UploadId,
        state: &mut UploadState,
        superseded: &mut Vec<Tail>,
    ) -> Result<(), UploadError> {
        let Some(tail) = state.tail.take() else {
            return Ok(());
        };
        let key = StorageKey::UploadTail(id.clone(), tail.id.clone());
        let (bytes, _) = self.store.read(&key, tail.size).await?;
        self.upload(id, state, one(bytes), Some(tail.size)).await?;
        superseded.push(tail);
        Ok(())
    }

    pub(super) async fn delete_tails(
        &self,
        id: &UploadId,
        tails: &[Tail],
    ) -> Result<(), UploadError> {
        for t in tails {
            self.store
                .delete(&StorageKey::UploadTail(id.clone(), t.id.clone()))
                .await?;
        }
        Ok(())
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
