//! Turning request bodies into multipart parts, hashing every byte on the way.
//!
//! Stores that take parts of any size (the filesystem) get one part per request, streamed.
//! Stores that need every non-final part to be exactly `part_size` bytes (S3 needs 5 MiB or
//! more, R2 equal sizes) get bodies cut into parts of that size; whatever is left over is
//! kept in the store as a *tail* object, prepended to the next request's bytes, and sent as
//! the final part when the upload closes. At most one part is held in memory at a time.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use index_format::{StorageKey, UploadId};

use super::{Tail, UploadError, UploadState, Uploads};
use crate::digest::DigestWriter;
use crate::store::{
    ByteStream, MultipartId, PutCondition, PutMeta, StoreError, get_bytes, put_bytes,
};

fn body_error(id: &UploadId) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        key: StorageKey::UploadData(id.clone()).key(),
        source,
    }
}

fn one(bytes: Bytes) -> ByteStream {
    Box::pin(futures::stream::once(async move { Ok(bytes) }))
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
        let m = self
            .store
            .create_multipart(&key, PutMeta::for_key(&key, None))
            .await?;
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
        let number = u32::try_from(state.parts.len() + 1).map_err(|_| UploadError::Conflict)?;
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
        let restored = DigestWriter::restore(&state.hash).ok_or(UploadError::Conflict)?;
        let hasher = Arc::new(Mutex::new(restored));
        let h = hasher.clone();
        let hashed: ByteStream = Box::pin(body.inspect_ok(move |chunk| {
            if let Ok(mut h) = h.lock() {
                h.update(chunk);
            }
        }));
        self.upload(id, state, hashed, size).await?;
        let writer = hasher.lock().map_err(|_| UploadError::Conflict)?.clone();
        state.hash = writer.save();
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
        let part_len = usize::try_from(n).map_err(|_| UploadError::Conflict)?;
        let mut hasher = DigestWriter::restore(&state.hash).ok_or(UploadError::Conflict)?;
        let mut buf = BytesMut::with_capacity(part_len);
        // The tail's bytes were hashed when they arrived; they only move into this part.
        let old_tail = state.tail.take();
        if let Some(t) = &old_tail {
            let key = StorageKey::UploadTail(id.clone(), t.id.clone());
            let (bytes, _) = get_bytes(self.store.as_ref(), &key, n).await?;
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
        if let Some(size) = size.filter(|&s| s != received) {
            // Nothing is committed: the state is only saved by the caller on success.
            return Err(StoreError::InvalidPart {
                key: StorageKey::UploadData(id.clone()).key(),
                message: format!("chunk announced {size} bytes but carried {received}"),
            }
            .into());
        }
        state.hash = hasher.save();
        if !buf.is_empty() {
            let tail = Tail {
                id: new_id()?,
                size: buf.len() as u64,
            };
            let key = StorageKey::UploadTail(id.clone(), tail.id.clone());
            let meta = PutMeta::for_key(&key, None);
            put_bytes(
                self.store.as_ref(),
                &key,
                buf.freeze(),
                meta,
                PutCondition::None,
            )
            .await?;
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
        let (bytes, _) = get_bytes(self.store.as_ref(), &key, tail.size).await?;
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

fn new_id() -> Result<UploadId, UploadError> {
    UploadId::new(&uuid::Uuid::new_v4().to_string()).ok_or(UploadError::Conflict)
}
