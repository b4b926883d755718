//! Hashing an object to prove a direct multipart upload, whose stored checksum is a
//! checksum of its parts' checksums, while publishing it: by the store itself (a
//! checksummed part copy, see `copysum`), or by reading it inside the bucket's network.

use aws_sdk_s3::config::ResponseChecksumValidation;
use futures::StreamExt;
use index_format::StorageKey;
use sha2::{Digest as _, Sha256};

use super::S3Store;
use super::body::from_sdk;
use super::copysum::copy_can_hash;
use super::error::{body_error, source_changed, store_error};
use super::wire::quote;
use crate::store::{ObjectInfo, ObjectStore as _, PutCondition, PutMeta, StoreError};

impl S3Store {
    /// The SHA-256 of the object's bytes, read in one `GetObject` (pinned to `etag` when
    /// given). The SDK's own response validation is off for this request: it could only
    /// repeat work (a single object's SHA-256 is this very hash) or, on a multipart
    /// object, skip with a warning.
    pub(super) async fn hash_object(
        &self,
        key: &StorageKey,
        etag: Option<&str>,
    ) -> Result<[u8; 32], StoreError> {
        let k = key.key();
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(&k))
            .set_if_match(etag.map(quote))
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default()
                    .response_checksum_validation(ResponseChecksumValidation::WhenRequired),
            )
            .send()
            .await
            .map_err(|e| store_error(&k, e))?;
        // Hashed as it arrives, in this task: a reader task ahead of the hash overlaps the
        // two but drains the socket in smaller reads, which cost more CPU than they save.
        let mut body = from_sdk(out.body);
        let mut hash = Sha256::new();
        while let Some(chunk) = body.next().await {
            hash.update(chunk.map_err(|e| body_error(&k, e))?);
        }
        Ok(hash.finalize().into())
    }

    /// The SHA-256 of `from` (as `src` describes it), read; the read pins the ETag the
    /// `HEAD` saw.
    async fn read_pinned(
        &self,
        from: &StorageKey,
        src: &ObjectInfo,
    ) -> Result<[u8; 32], StoreError> {
        self.hash_object(from, Some(&src.etag.0))
            .await
            .map_err(|e| source_changed(e, &from.key()))
    }

    /// Hashes `from` and publishes it at `to` only if the hash is `sha256`; returns the
    /// hash. With `by_store` (only where the probe proved it) and an object the store can
    /// copy in one part, one checksummed part copy does both (see `copysum`). Otherwise
    /// the object is read while a multipart copy to `to` runs, completed only for the
    /// digest: the two overlap instead of following each other, and until the hash is
    /// proven the copy is parts of an incomplete upload, invisible under `to`. Both pin
    /// `src`'s ETag (what the caller's `HEAD` of `from` saw), so they see the same bytes. Where `to` already exists or
    /// `from` is empty the read only hashes (publishing is then a no-op or one empty
    /// `PUT`).
    pub(super) async fn hash_and_copy(
        &self,
        from: &StorageKey,
        src: &ObjectInfo,
        to: &StorageKey,
        sha256: &[u8; 32],
        by_store: bool,
    ) -> Result<[u8; 32], StoreError> {
        if by_store && copy_can_hash(src.size) {
            if let Some(hash) = self.copy_hashed(from, src, to, sha256).await? {
                return Ok(hash);
            }
            tracing::warn!(
                key = %from.key(),
                "a checksummed part copy returned no SHA-256 of the whole object: reading it back"
            );
        }
        let exists = match self.head(to).await {
            Ok(_) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => return Err(e),
        };
        if exists || src.size == 0 {
            return self.read_pinned(from, src).await;
        }
        let (src_key, dst_key) = (from.key(), to.key());
        let (source, object) = (self.object_key(&src_key), self.object_key(&dst_key));
        let gate = self.read_pinned(from, src);
        let condition = PutCondition::IfNoneMatch;
        let meta = PutMeta::new(to, None);
        match self
            .copy_multipart_if(
                &dst_key,
                &object,
                &source,
                src,
                meta,
                &condition,
                gate,
                |h| h == sha256,
            )
            .await
        {
            Ok((_, hash)) => Ok(hash),
            // Only completing has a condition, and only an accepted hash completes: someone
            // published the same bytes first.
            Err(e) if e.is_precondition_failed() => Ok(*sha256),
            Err(e) => Err(e),
        }
    }
}
