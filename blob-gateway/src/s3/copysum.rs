//! Hashing an object inside the store: a `CopyObject` with `ChecksumAlgorithm=SHA256`
//! writes a single-part copy whose checksum is the SHA-256 of the whole object, even from
//! a multipart object (whose own checksum is a checksum of its parts' checksums). The
//! store reads the bytes; the API reads none. Trusted only where
//! [`S3Store::probe_copy_checksums`] proved it.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::copy_object::CopyObjectError;
use aws_sdk_s3::types::ChecksumAlgorithm;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use index_format::StorageKey;
use sha2::{Digest as _, Sha256};

use super::S3Store;
use super::error::{Failure, classify, store_error};
use super::wire::{copy_source, quote};
use super::write::sdk_part;
use crate::store::{ObjectInfo, PutCondition, PutMeta, StoreError};

/// `CopyObject` copies at most 5 GiB; larger objects are hashed by a read.
pub(super) const MAX_COPY: u64 = 5 << 30;
/// The smallest part S3 accepts but the last: the probe's first part.
const PROBE_PART: usize = 5 << 20;

/// A checksum a copy returned, if it is a whole-object SHA-256: not absent, not a
/// composite `<base64>-<parts>`, and 32 bytes.
pub(super) fn full_sha256(returned: Option<&str>) -> Option<[u8; 32]> {
    let bytes = STANDARD.decode(returned?).ok()?;
    <[u8; 32]>::try_from(bytes).ok()
}

/// The probe's decision: the copy returned exactly the known bytes' whole SHA-256.
fn proves(returned: Option<&str>, expected: &[u8; 32]) -> bool {
    full_sha256(returned).as_ref() == Some(expected)
}

impl S3Store {
    /// The SHA-256 the store computes copying `from` (as `src` describes it; the copy is
    /// pinned to its ETag) to `scratch`, which is deleted afterwards. `None` when the copy
    /// returned no whole-object SHA-256.
    pub(super) async fn copy_sha256(
        &self,
        from: &StorageKey,
        src: &ObjectInfo,
        scratch: &StorageKey,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        let (k, to) = (scratch.key(), self.object_key(&scratch.key()));
        let source = copy_source(&self.bucket, &self.object_key(&from.key()));
        let copied = self
            .copy_checksummed(&to, &source, Some(&src.etag.0))
            .await
            .map(|returned| full_sha256(returned.as_deref()))
            .map_err(|e| store_error(&k, e));
        let removed = self.delete_object(&k, &to).await;
        let sha256 = copied?;
        removed?;
        Ok(sha256)
    }

    /// `CopyObject` of `source` to `to` asking for a SHA-256; the checksum it returned.
    async fn copy_checksummed(
        &self,
        to: &str,
        source: &str,
        etag: Option<&str>,
    ) -> Result<Option<String>, SdkError<CopyObjectError, HttpResponse>> {
        let out = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(source)
            .set_copy_source_if_match(etag.map(quote))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await?;
        Ok(out.copy_object_result.and_then(|r| r.checksum_sha256))
    }

    /// Whether a checksummed copy of a two-part multipart object (5 MiB and 5 bytes of
    /// known content) returns the SHA-256 of the whole object. Written under
    /// `<prefix>/_probe/<uuid>` (outside the layout) and removed. A copy the server refuses
    /// is `false`; other errors are returned.
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
        let result = async {
            self.put_checksummed_parts(&key, &object, parts).await?;
            let source = copy_source(&self.bucket, &object);
            match self.copy_checksummed(&copied, &source, None).await {
                Ok(returned) => Ok(proves(returned.as_deref(), &expected)),
                Err(e) if refused(&e) => {
                    tracing::debug!(error = %e, "a checksummed copy was refused");
                    Ok(false)
                }
                Err(e) => Err(store_error(&copy, e)),
            }
        }
        .await;
        let cleanup = (
            self.delete_object(&copy, &copied).await,
            self.delete_object(&key, &object).await,
        );
        let found = result?;
        cleanup.0?;
        cleanup.1?;
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
fn refused(e: &SdkError<CopyObjectError, HttpResponse>) -> bool {
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
