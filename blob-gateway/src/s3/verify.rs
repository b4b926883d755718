//! Hashing an object to prove a direct multipart upload, whose stored checksum is a
//! checksum of its parts' checksums: by the store itself (a checksummed copy, see
//! `copysum`), or by reading it inside the bucket's network.

use aws_sdk_s3::config::ResponseChecksumValidation;
use futures::StreamExt;
use index_format::StorageKey;
use sha2::{Digest as _, Sha256};

use super::S3Store;
use super::body::from_sdk;
use super::copysum::MAX_COPY;
use super::error::{body_error, invalid, store_error};
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

    /// The SHA-256 of `from` (as `src` describes it): computed by the store copying it
    /// to `scratch` when one is given and the object is small enough to copy, else read.
    async fn sha256_of(
        &self,
        from: &StorageKey,
        src: &ObjectInfo,
        scratch: Option<&StorageKey>,
    ) -> Result<[u8; 32], StoreError> {
        let hashed = async {
            if let Some(scratch) = scratch.filter(|_| src.size <= MAX_COPY) {
                if let Some(sha256) = self.copy_sha256(from, src, scratch).await? {
                    return Ok(sha256);
                }
                tracing::warn!(
                    key = %from.key(),
                    "a checksummed copy returned no SHA-256 of the whole object: reading it back"
                );
            }
            self.hash_object(from, Some(&src.etag.0)).await
        };
        hashed.await.map_err(|e| match e {
            // The object changed since the HEAD (both pin its ETag): not a condition on
            // any destination.
            StoreError::PreconditionFailed { key } => {
                invalid(&key, "the object changed while it was hashed".into())
            }
            e => e,
        })
    }

    /// Hashes `from` while copying it to `to` (a multipart copy), and completes the copy
    /// only if the hash is `sha256`: the two no longer run one after the other, and
    /// until the hash is proven the copy is parts of an incomplete upload, invisible
    /// under `to`. The hash is the store's (a checksummed copy to `scratch`) when
    /// `scratch` is given, else a read. Both pin the ETag one `HEAD` saw, so they see
    /// the same bytes. Where `to` already exists or `from` is empty it only hashes
    /// (publishing is then a no-op or one empty `PUT`). Returns the hash.
    pub(super) async fn hash_and_copy(
        &self,
        from: &StorageKey,
        to: &StorageKey,
        sha256: &[u8; 32],
        scratch: Option<&StorageKey>,
    ) -> Result<[u8; 32], StoreError> {
        let src = self.head(from).await?;
        let exists = match self.head(to).await {
            Ok(_) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => return Err(e),
        };
        if exists || src.size == 0 {
            return self.sha256_of(from, &src, scratch).await;
        }
        let (src_key, dst_key) = (from.key(), to.key());
        let (source, object) = (self.object_key(&src_key), self.object_key(&dst_key));
        let gate = self.sha256_of(from, &src, scratch);
        let condition = PutCondition::IfNoneMatch;
        let meta = PutMeta::new(to, None);
        match self
            .copy_multipart_if(
                &dst_key,
                &object,
                &source,
                &src,
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
