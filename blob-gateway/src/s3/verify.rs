//! Hashing an object by reading it inside the bucket's network: what proves a direct
//! multipart upload, whose stored checksum is a checksum of its parts' checksums.

use aws_sdk_s3::config::ResponseChecksumValidation;
use futures::StreamExt;
use index_format::StorageKey;
use sha2::{Digest as _, Sha256};

use super::S3Store;
use super::body::from_sdk;
use super::error::{body_error, store_error};
use crate::store::StoreError;

impl S3Store {
    /// The SHA-256 of the object's bytes, read in one `GetObject`. The SDK's own response
    /// validation is off for this request: it could only repeat work (a single object's
    /// SHA-256 is this very hash) or, on a multipart object, skip with a warning.
    pub(super) async fn hash_object(&self, key: &StorageKey) -> Result<[u8; 32], StoreError> {
        let k = key.key();
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(&k))
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
}
