//! Closing a session: receive the last bytes, verify the digest, publish the blob.
//!
//! Each step leaves the session in a state the next attempt can finish from, so a closing
//! `PUT` retried after a crash at any instant completes the upload:
//!
//! | crashed after                   | what the store holds          | a retry                     |
//! |---------------------------------|-------------------------------|-----------------------------|
//! | receiving (state `closing`)     | every part, the state         | skips the body, completes   |
//! | joining the parts               | `data`; the multipart is gone | finds `data` and publishes  |
//! | publishing                      | `blobs/<digest>`              | sees the blob and links it  |
//! | linking (the index's step)      | blob and link                 | links again (idempotent)    |
//! | discarding                      | part of the session           | finishes the discard        |

use futures::TryStreamExt;
use index_format::{Digest, DigestAlgorithm, RepoName, StorageKey, UploadId};

use super::{
    ClosingBody, FaultPoint, StoredBlob, Tail, UploadError, UploadState, Uploads, check_start,
};
use crate::digest::DigestWriter;
use crate::store::{PutCondition, StoreError, put_bytes};

/// A verified blob now under `blobs/`, whose session is still open: the index links the
/// blob into the repository, then [`close`](Self::close)s the session. Until then a retried
/// closing request finds the session and finishes the same way.
#[must_use = "link the blob, then close the session"]
pub struct PublishedUpload {
    uploads: Uploads,
    id: UploadId,
    state: UploadState,
    /// The blob, stored and verified.
    pub blob: StoredBlob,
}

impl PublishedUpload {
    pub(super) fn new(
        uploads: Uploads,
        id: UploadId,
        state: UploadState,
        blob: StoredBlob,
    ) -> Self {
        Self {
            uploads,
            id,
            state,
            blob,
        }
    }

    /// The repository the session belongs to.
    pub fn repo(&self) -> &RepoName {
        &self.state.repo
    }

    /// Discards the session's objects, now that the blob is linked.
    pub async fn close(self) -> Result<StoredBlob, UploadError> {
        self.uploads.fault(FaultPoint::Linked);
        self.uploads.discard(&self.id, &self.state).await?;
        Ok(self.blob)
    }
}

impl Uploads {
    /// Closes a session of `repo`: takes the last bytes (unless an earlier attempt already
    /// did), checks `expected`, and publishes the blob. On a digest mismatch nothing is
    /// stored and the session is discarded.
    pub async fn finish(
        &self,
        repo: &RepoName,
        id: &UploadId,
        last: Option<ClosingBody>,
        expected: &Digest,
    ) -> Result<PublishedUpload, UploadError> {
        let (mut state, etag) = self.status(repo, id).await?;
        super::standard_only(id, &state)?;
        if !state.closing {
            let superseded = self.receive_last(id, &mut state, last).await?;
            // Claims the session: a concurrent PUT or PATCH now fails its own save.
            self.save(id, &state, PutCondition::IfMatch(etag)).await?;
            self.delete_tails(id, &superseded).await?;
        }
        self.fault(FaultPoint::Received);
        let data = StorageKey::UploadData(id.clone());
        let (computed, assembled) = self.verify(id, &data, &state, expected).await?;
        if &computed != expected {
            self.discard(id, &state).await?;
            return Err(UploadError::DigestMismatch {
                expected: expected.clone(),
                computed,
            });
        }
        self.publish(id, &data, &state, assembled, expected).await?;
        self.fault(FaultPoint::Published);
        Ok(PublishedUpload {
            uploads: self.clone(),
            id: id.clone(),
            blob: StoredBlob {
                digest: expected.clone(),
                size: state.offset(),
            },
            state,
        })
    }

    /// Appends the closing body (if any) and sends the tail as the final part; marks the
    /// session `closing`. The caller saves the state, then deletes the tails returned.
    async fn receive_last(
        &self,
        id: &UploadId,
        state: &mut UploadState,
        last: Option<ClosingBody>,
    ) -> Result<Vec<Tail>, UploadError> {
        let mut superseded = Vec::new();
        if let Some(last) = last {
            check_start(state, last.start)?;
            self.write_part(id, state, last.body, last.size, &mut superseded)
                .await?;
        }
        self.flush_tail(id, state, &mut superseded).await?;
        state.closing = true;
        Ok(superseded)
    }

    /// The digest of the session's bytes in `expected`'s algorithm, and whether the parts
    /// had to be joined to compute it.
    async fn verify(
        &self,
        id: &UploadId,
        data: &StorageKey,
        state: &UploadState,
        expected: &Digest,
    ) -> Result<(Digest, bool), UploadError> {
        let writer = Self::hasher(id, state)?;
        if writer.algorithm() == expected.algorithm() {
            return Ok((writer.digest(), false));
        }
        // Sessions hash with sha256; a client that closes with another algorithm gets the
        // one extra read that verifying it needs.
        let assembled = self.assemble(id, data, state).await?;
        let digest = self.rehash(data, assembled, expected.algorithm()).await?;
        Ok((digest, assembled))
    }

    /// Completes the multipart upload into the data object; `false` if there were no
    /// bytes. An upload an earlier attempt already completed is found as its data object.
    async fn assemble(
        &self,
        id: &UploadId,
        data: &StorageKey,
        state: &UploadState,
    ) -> Result<bool, UploadError> {
        let Some(multipart) = &state.multipart else {
            return Ok(false);
        };
        let err = match self
            .store
            .complete_multipart(data, multipart, &state.parts)
            .await
        {
            Ok(_) => {
                self.fault(FaultPoint::Assembled);
                return Ok(true);
            }
            Err(e) => e,
        };
        if !matches!(err, StoreError::NoSuchUpload { .. }) {
            return Err(err.into());
        }
        match self.store.head(data).await {
            Ok(info) if info.size == state.offset() => Ok(true),
            Ok(info) => Err(UploadError::CorruptState {
                id: id.clone(),
                reason: format!(
                    "joined data has {} bytes, the session received {}",
                    info.size,
                    state.offset()
                ),
            }),
            Err(e) if e.is_not_found() => Err(UploadError::CorruptState {
                id: id.clone(),
                reason: "its multipart upload and joined data are both gone".into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes `blobs/<digest>` exist, from the session's data unless it already does.
    pub(super) async fn publish(
        &self,
        id: &UploadId,
        data: &StorageKey,
        state: &UploadState,
        assembled: bool,
        digest: &Digest,
    ) -> Result<(), UploadError> {
        let blob = StorageKey::Blob(digest.clone());
        match self.store.head(&blob).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        let has_data = assembled || self.assemble(id, data, state).await?;
        let result = if has_data {
            self.store
                .copy(data, &blob, PutCondition::IfNoneMatch)
                .await
        } else {
            put_bytes(
                self.store.as_ref(),
                &blob,
                bytes::Bytes::new(),
                PutCondition::IfNoneMatch,
            )
            .await
        };
        match result {
            Ok(_) => Ok(()),
            // Someone published the same bytes first: same digest, same content.
            Err(e) if e.is_precondition_failed() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn rehash(
        &self,
        data: &StorageKey,
        assembled: bool,
        algorithm: DigestAlgorithm,
    ) -> Result<Digest, UploadError> {
        let mut writer = DigestWriter::new(algorithm);
        if assembled {
            let mut stream = self.store.get(data, None).await?.stream;
            while let Some(chunk) = stream.try_next().await.map_err(|source| StoreError::Io {
                key: data.key(),
                source,
            })? {
                writer.update(&chunk);
            }
        }
        Ok(writer.digest())
    }
}
