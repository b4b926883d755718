//! Presigned requests: downloads (`GetObject`), and direct uploads whose bytes never pass
//! through the API (`PutObject`, `UploadPart`), each signed with the bytes' SHA-256 so the
//! store refuses anything else.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use index_format::StorageKey;
use sha2::{Digest as _, Sha256};

use super::MAX_PRESIGN;
use super::S3Store;
use super::error::{Failure, classify, store_error, upload_error};
use super::wire::{as_i64, as_u64, part_number, percent_encode, unquote};
use super::write::{MAX_PARTS, sdk_part};
use crate::store::{
    ChecksummedPart, MultipartId, ObjectInfo, Presign, PresignedRequest, PutCondition, PutMeta,
    StoreError, StoredChecksum, UploadedPart,
};

/// The user metadata naming the upload session that wrote an object by a presigned PUT.
const WRITER_META: &str = "cargohold-upload";

fn config(key: &str, expires: Duration) -> Result<PresigningConfig, StoreError> {
    PresigningConfig::expires_in(expires.min(MAX_PRESIGN)).map_err(|e| StoreError::Io {
        key: key.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
    })
}

fn request(p: &aws_sdk_s3::presigning::PresignedRequest) -> PresignedRequest {
    PresignedRequest {
        method: p.method().to_owned(),
        url: p.uri().to_owned(),
        headers: p
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    }
}

#[async_trait::async_trait]
impl Presign for S3Store {
    /// A presigned `GetObject` URL, or the CDN URL when a public base URL is configured.
    async fn presign_get(&self, key: &StorageKey, expires: Duration) -> Result<String, StoreError> {
        let k = key.key();
        let object = self.object_key(&k);
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(object)
            .presigned(config(&k, expires)?)
            .await
            .map_err(|e| store_error(&k, e))?;
        Ok(request.uri().to_owned())
    }

    /// `<public_base_url>/<object key>` when a CDN serves the bucket.
    fn public_url(&self, key: &StorageKey) -> Option<String> {
        let base = self.public_base_url.as_ref()?;
        Some(format!(
            "{base}/{}",
            percent_encode(&self.object_key(&key.key()))
        ))
    }

    async fn presign_put(
        &self,
        key: &StorageKey,
        size: u64,
        sha256: &[u8; 32],
        writer: &str,
        expires: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        let k = key.key();
        let meta = PutMeta::new(key, None);
        let p = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(&k))
            .content_length(as_i64(size))
            .checksum_sha256(STANDARD.encode(sha256))
            .set_content_type(meta.content_type)
            .set_cache_control(meta.cache_control)
            .metadata(WRITER_META, writer)
            .presigned(config(&k, expires)?)
            .await
            .map_err(|e| store_error(&k, e))?;
        Ok(request(&p))
    }

    async fn presign_part(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        part: &ChecksummedPart,
        size: u64,
        expires: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        let k = key.key();
        let p = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(self.object_key(&k))
            .upload_id(&upload.0)
            .part_number(part_number(part.number))
            .content_length(as_i64(size))
            .checksum_sha256(STANDARD.encode(part.sha256))
            .presigned(config(&k, expires)?)
            .await
            .map_err(|e| store_error(&k, e))?;
        Ok(request(&p))
    }

    async fn create_checksummed_multipart(
        &self,
        key: &StorageKey,
    ) -> Result<MultipartId, StoreError> {
        let k = key.key();
        let meta = PutMeta::new(key, None);
        let checksum = Some(ChecksumAlgorithm::Sha256);
        self.create(&k, &self.object_key(&k), &meta, checksum).await
    }

    async fn complete_checksummed(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        parts: &[ChecksummedPart],
    ) -> Result<(), StoreError> {
        let k = key.key();
        let sdk_parts = parts
            .iter()
            .map(|p| {
                sdk_part(p.number, &p.etag)
                    .checksum_sha256(STANDARD.encode(p.sha256))
                    .build()
            })
            .collect();
        self.send_complete(
            &k,
            &self.object_key(&k),
            upload,
            sdk_parts,
            &PutCondition::None,
        )
        .await
        .map(|_| ())
    }

    async fn list_checksummed(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
    ) -> Result<Vec<UploadedPart>, StoreError> {
        let k = key.key();
        let object = self.object_key(&k);
        let mut found = BTreeMap::new();
        let mut marker: Option<String> = None;
        // At most 10,000 parts: a server that keeps answering "truncated" without moving
        // its marker on is not followed for ever.
        for _ in 0..=MAX_PARTS / 1000 {
            let out = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(&object)
                .upload_id(&upload.0)
                .set_part_number_marker(marker.clone())
                .send()
                .await
                .map_err(|e| upload_error(&k, upload, e))?;
            for p in out.parts() {
                let Some(number) = p.part_number().and_then(|n| u32::try_from(n).ok()) else {
                    continue;
                };
                let part = UploadedPart {
                    number,
                    etag: unquote(p.e_tag().map(str::to_owned)),
                    size: p.size().map_or(0, as_u64),
                    sha256: p
                        .checksum_sha256()
                        .and_then(|c| STANDARD.decode(c).ok())
                        .and_then(|b| <[u8; 32]>::try_from(b).ok()),
                };
                found.insert(number, part);
            }
            let next = out.next_part_number_marker().map(str::to_owned);
            if !out.is_truncated().unwrap_or(false) || next.is_none() || next == marker {
                break;
            }
            marker = next;
        }
        Ok(found.into_values().collect())
    }

    async fn stored_checksum(&self, key: &StorageKey) -> Result<StoredChecksum, StoreError> {
        let k = key.key();
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(&k))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| store_error(&k, e))?;
        Ok(StoredChecksum {
            size: out.content_length.map_or(0, as_u64),
            etag: unquote(out.e_tag),
            // A multipart object's is `<base64>-<parts>`: a checksum of checksums, not ours.
            sha256: out
                .checksum_sha256
                .and_then(|c| STANDARD.decode(c).ok())
                .and_then(|b| <[u8; 32]>::try_from(b).ok()),
            writer: out.metadata.and_then(|mut m| m.remove(WRITER_META)),
        })
    }

    async fn read_sha256(&self, key: &StorageKey) -> Result<[u8; 32], StoreError> {
        self.hash_object(key, None).await
    }

    async fn read_sha256_publishing(
        &self,
        key: &StorageKey,
        object: &ObjectInfo,
        blob: &StorageKey,
        sha256: &[u8; 32],
        by_store: bool,
    ) -> Result<[u8; 32], StoreError> {
        self.hash_and_copy(key, object, blob, sha256, by_store)
            .await
    }

    async fn copies_checksums(&self) -> Result<bool, StoreError> {
        self.probe_copy_checksums().await
    }

    async fn enforces_checksums(&self) -> Result<bool, StoreError> {
        let key = format!("_probe/{}", uuid::Uuid::new_v4());
        let object = self.object_key(&key);
        let wrong: [u8; 32] = Sha256::digest(b"not these bytes").into();
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&object)
            .body(Bytes::from_static(b"probe").into())
            .checksum_sha256(STANDARD.encode(wrong))
            .send()
            .await;
        let enforced = match result {
            Ok(_) => false,
            Err(e) if matches!(classify(&e), Failure::Other(_) | Failure::InvalidPart(_)) => true,
            Err(e) => return Err(store_error(&key, e)),
        };
        self.delete_object(&key, &object).await?;
        Ok(enforced)
    }
}
