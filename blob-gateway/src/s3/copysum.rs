//! Hashing an object inside the store while publishing it: an `UploadPartCopy` of the
//! whole object into a multipart upload created with `ChecksumAlgorithm=SHA256` returns
//! that part's SHA-256, which is the SHA-256 of the whole object, even from a multipart
//! object (whose own checksum is a checksum of its parts' checksums). The upload is
//! completed, under `If-None-Match`, only if that hash is the digest, and aborted
//! otherwise: one copy both hashes and publishes, and nothing unproven is ever visible.
//! The store reads the bytes; the API reads none. Trusted only where
//! [`S3Store::probe_copy_checksums`] proved it.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::upload_part_copy::UploadPartCopyError;
use aws_sdk_s3::types::ChecksumAlgorithm;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use index_format::StorageKey;
use sha2::{Digest as _, Sha256};

use super::S3Store;
use super::error::{Failure, classify, source_changed, upload_error};
use super::wire::copy_source;
use super::write::sdk_part;
use crate::store::{ObjectInfo, PutCondition, PutMeta, StoreError};

/// `UploadPartCopy` copies at most 5 GiB; larger objects are hashed by a read.
const MAX_COPY: u64 = 5 << 30;
/// The smallest part S3 accepts but the last: the probe's first part.
const PROBE_PART: usize = 5 << 20;

/// A checksum a copy returned, if it is a whole-object SHA-256: not absent, not a
/// composite `<base64>-<parts>`, and 32 bytes.
pub(super) fn full_sha256(returned: Option<&str>) -> Option<[u8; 32]> {
    let bytes = STANDARD.decode(returned?).ok()?;
    <[u8; 32]>::try_from(bytes).ok()
}

/// Whether the store may hash an object of `size` bytes in one part copy (where the probe
/// proved it can): an empty object has no byte to copy, and one part holds at most 5 GiB.
pub(super) fn copy_can_hash(size: u64) -> bool {
    (1..=MAX_COPY).contains(&size)
}

/// Where a hashing copy ended: completed at the blob's key, or left to be aborted (with
/// the hash, where the store returned one).
enum HashedCopy {
    Published([u8; 32]),
    Withheld(Option<[u8; 32]>),
}

/// The probe's decision: the copy returned exactly the known bytes' whole SHA-256.
fn proves(returned: Option<&str>, expected: &[u8; 32]) -> bool {
    full_sha256(returned).as_ref() == Some(expected)
}

impl S3Store {
    /// The SHA-256 the store computes copying `from` (as `src` describes it; the copy is
    /// pinned to its ETag) as the single part of a checksummed multipart upload at `to`,
    /// completed only if the hash is `sha256` (a `to` that already exists stays as it
    /// is: the same bytes were published first). `None` when the copy returned no
    /// whole-object SHA-256; the upload is then aborted and nothing is published.
    pub(super) async fn copy_hashed(
        &self,
        from: &StorageKey,
        src: &ObjectInfo,
        to: &StorageKey,
        sha256: &[u8; 32],
    ) -> Result<Option<[u8; 32]>, StoreError> {
        let (key, object) = (to.key(), self.object_key(&to.key()));
        let meta = PutMeta::new(to, None);
        let upload = self
            .create(&key, &object, &meta, Some(ChecksumAlgorithm::Sha256))
            .await?;
        let source = copy_source(&self.bucket, &self.object_key(&from.key()));
        let result = async {
            let (etag, returned) = self
                .copy_part(&object, &upload, 1, &source, None, Some(&src.etag.0))
                .await
                .map_err(|e| source_changed(upload_error(&key, &upload, e), &from.key()))?;
            let Some(hash) = full_sha256(returned.as_deref()) else {
                return Ok(HashedCopy::Withheld(None));
            };
            if hash != *sha256 {
                return Ok(HashedCopy::Withheld(Some(hash)));
            }
            let part = sdk_part(1, &etag).set_checksum_sha256(returned).build();
            let condition = PutCondition::IfNoneMatch;
            match self
                .send_complete(&key, &object, &upload, vec![part], &condition)
                .await
            {
                Ok(_) => Ok(HashedCopy::Published(hash)),
                // Someone published the same bytes first.
                Err(e) if e.is_precondition_failed() => Ok(HashedCopy::Withheld(Some(hash))),
                Err(e) => Err(e),
            }
        }
        .await;
        match result {
            Ok(HashedCopy::Published(hash)) => Ok(Some(hash)),
            Ok(HashedCopy::Withheld(hash)) => {
                self.abort(&key, &object, &upload).await?;
                Ok(hash)
            }
            Err(e) => {
                self.abort_quietly(&key, &object, &upload).await;
                Err(e)
            }
        }
    }

    /// Whether a part copy into a multipart upload created with a SHA-256 checksum
    /// returns the SHA-256 of the whole source, also from a multipart object: a probe
    /// that writes (and removes) a two-part object of known bytes under
    /// `<prefix>/_probe/<uuid>` (outside the layout), copies it as one part and aborts the
    /// copy. A copy the server refuses is `false`; other errors are returned.
    pub async fn probe_copy_checksums(&self) -> Result<bool, StoreError> {
        let key = format!("_probe/{}", uuid::Uuid::new_v4());
        let copy = format!("{key}-copy");
        let (object, copied) = (self.object_key(&key), self.object_key(&copy));
        let parts = [
            Bytes::from(vec![b'p'; PROBE_PART]),
            Bytes::from_static(b"probe"),
        ];
        let mut whole = Sha256::new();
        parts.iter().for_each(|p| whole.update(p));
        let expected: [u8; 32] = whole.finalize().into();
        self.put_checksummed_parts(&key, &object, parts).await?;
        let result = async {
            let meta = PutMeta::default();
            let upload = self
                .create(&copy, &copied, &meta, Some(ChecksumAlgorithm::Sha256))
                .await?;
            let source = copy_source(&self.bucket, &object);
            let found = match self
                .copy_part(&copied, &upload, 1, &source, None, None)
                .await
            {
                Ok((_, returned)) => Ok(proves(returned.as_deref(), &expected)),
                Err(e) if refused(&e) => {
                    tracing::debug!(error = %e, "a checksummed part copy was refused");
                    Ok(false)
                }
                Err(e) => Err(upload_error(&copy, &upload, e)),
            };
            self.abort(&copy, &copied, &upload).await?;
            found
        }
        .await;
        let removed = self.delete_object(&key, &object).await;
        let found = result?;
        removed?;
        Ok(found)
    }

    /// A multipart upload of `parts`, each with its SHA-256 (a composite-checksum object).
    async fn put_checksummed_parts(
        &self,
        key: &str,
        object: &str,
        parts: [Bytes; 2],
    ) -> Result<(), StoreError> {
        let meta = PutMeta::default();
        let upload = self
            .create(key, object, &meta, Some(ChecksumAlgorithm::Sha256))
            .await?;
        let result = async {
            let mut completed = Vec::new();
            for (i, bytes) in parts.into_iter().enumerate() {
                let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
                let sha256 = STANDARD.encode(Sha256::digest(&bytes));
                let etag = self
                    .upload_bytes(key, object, &upload, number, bytes, Some(sha256.clone()))
                    .await?;
                completed.push(sdk_part(number, &etag).checksum_sha256(sha256).build());
            }
            self.send_complete(key, object, &upload, completed, &PutCondition::None)
                .await
        }
        .await;
        if result.is_err() {
            self.abort(key, object, &upload).await.ok();
        }
        result.map(|_| ())
    }
}

/// A request the server refused (rather than could not answer): for a probe, a "no".
fn refused(e: &SdkError<UploadPartCopyError, HttpResponse>) -> bool {
    matches!(
        classify(e),
        Failure::Other(_) | Failure::InvalidPart(_) | Failure::NotImplemented
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_object_sha256_counts() {
        let sha: [u8; 32] = Sha256::digest(b"x").into();
        let b64 = STANDARD.encode(sha);
        assert_eq!(full_sha256(Some(&b64)), Some(sha));
        assert_eq!(full_sha256(None), None);
        assert_eq!(full_sha256(Some(&format!("{b64}-2"))), None);
        assert_eq!(full_sha256(Some(&STANDARD.encode([1u8; 20]))), None);
        assert_eq!(full_sha256(Some("not base64!")), None);
    }

    #[test]
    fn only_objects_of_one_to_five_gib_are_hashed_by_a_part_copy() {
        assert!(!copy_can_hash(0));
        assert!(copy_can_hash(1));
        assert!(copy_can_hash(5 << 30));
        assert!(!copy_can_hash((5 << 30) + 1));
    }

    #[test]
    fn the_probe_proves_nothing_by_a_wrong_absent_or_composite_checksum() {
        let known: [u8; 32] = Sha256::digest(b"known").into();
        let b64 = STANDARD.encode(known);
        assert!(proves(Some(&b64), &known));
        let other = STANDARD.encode(Sha256::digest(b"other"));
        for returned in [None, Some(other.as_str()), Some(&format!("{b64}-2"))] {
            assert!(!proves(returned, &known), "{returned:?}");
        }
    }
}
