//! Every request that creates an object: `PutObject`, multipart uploads (of buffered parts,
//! and of `UploadPartCopy` ranges), and the deletes and aborts that undo them.

use std::time::SystemTime;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::upload_part_copy::UploadPartCopyError;
use aws_sdk_s3::primitives::ByteStream as SdkStream;
use aws_sdk_s3::types::builders::CompletedPartBuilder;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart as SdkPart};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::S3Store;
use super::body::PartReader;
use super::error::{
    Failure, body_error, classify, invalid, source_changed, store_error, upload_error,
};
use super::wire::{
    as_i64, condition_headers, copy_source, part_number, quote, system_time, unquote,
    user_metadata, write_error, written,
};
use crate::store::{CompletedPart, MultipartId, ObjectInfo, PutCondition, PutMeta, StoreError};

/// S3 numbers parts from 1 to 10,000.
pub(super) const MAX_PARTS: u64 = 10_000;
/// `UploadPartCopy` requests in flight during a multipart copy.
const COPY_CONCURRENCY: usize = 4;

/// A part as `CompleteMultipartUpload` lists it, to which a checksum may be added.
pub(super) fn sdk_part(number: u32, etag: &str) -> CompletedPartBuilder {
    SdkPart::builder()
        .part_number(part_number(number))
        .e_tag(quote(etag))
}

impl S3Store {
    /// One `PutObject` of an in-memory body (retried by the SDK).
    pub(super) async fn put_single(
        &self,
        key: &str,
        object: &str,
        bytes: Bytes,
        meta: PutMeta,
        condition: &PutCondition,
    ) -> Result<ObjectInfo, StoreError> {
        let size = bytes.len() as u64;
        let (if_match, if_none_match) = condition_headers(condition);
        let out = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(object)
            .content_length(as_i64(size))
            .body(SdkStream::from(bytes))
            .set_content_type(meta.content_type.clone())
            .set_cache_control(meta.cache_control.clone())
            .set_metadata(user_metadata(&meta))
            .set_if_match(if_match)
            .set_if_none_match(if_none_match)
            .send()
            .await
            .map_err(|e| write_error(store_error(key, e), condition))?;
        Ok(written(size, out.e_tag, meta))
    }

    /// A multipart upload of `first` and the rest of `reader`, published under `condition`;
    /// aborted on any failure.
    pub(super) async fn put_multipart(
        &self,
        key: &str,
        object: &str,
        first: [Bytes; 2],
        mut reader: PartReader,
        meta: PutMeta,
        condition: &PutCondition,
    ) -> Result<ObjectInfo, StoreError> {
        let upload = self.create(key, object, &meta, None).await?;
        let result = async {
            let mut parts = Vec::new();
            let mut size = 0;
            let mut first = first.into_iter();
            loop {
                let bytes = match first.next() {
                    Some(b) => b,
                    None => match reader.next_part(self.part_len()).await {
                        Ok(Some(b)) => b,
                        Ok(None) => break,
                        Err(e) => return Err(body_error(key, e)),
                    },
                };
                let number = u32::try_from(parts.len() + 1).unwrap_or(u32::MAX);
                let len = bytes.len() as u64;
                size += len;
                let etag = self
                    .upload_bytes(key, object, &upload, number, bytes, None)
                    .await?;
                parts.push(CompletedPart {
                    number,
                    etag,
                    size: len,
                });
            }
            let etag = self
                .complete(key, object, &upload, &parts, condition)
                .await?;
            Ok(written(size, Some(etag), meta))
        }
        .await;
        if result.is_err() {
            self.abort_quietly(key, object, &upload).await;
        }
        result
    }

    /// Starts a multipart upload; `checksum` makes every part carry one of that algorithm.
    pub(super) async fn create(
        &self,
        key: &str,
        object: &str,
        meta: &PutMeta,
        checksum: Option<ChecksumAlgorithm>,
    ) -> Result<MultipartId, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(object)
            .set_checksum_algorithm(checksum)
            .set_content_type(meta.content_type.clone())
            .set_cache_control(meta.cache_control.clone())
            .set_metadata(user_metadata(meta))
            .send()
            .await
            .map_err(|e| store_error(key, e))?;
        let id = out.upload_id.ok_or_else(|| StoreError::Backend {
            key: key.to_owned(),
            message: "CreateMultipartUpload returned no upload id".into(),
        })?;
        Ok(MultipartId(id))
    }

    /// Uploads part `number`, with its SHA-256 (base64) for the store to check if given.
    pub(super) async fn upload_bytes(
        &self,
        key: &str,
        object: &str,
        upload: &MultipartId,
        number: u32,
        bytes: Bytes,
        sha256: Option<String>,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(object)
            .upload_id(&upload.0)
            .part_number(part_number(number))
            .content_length(as_i64(bytes.len() as u64))
            .set_checksum_sha256(sha256)
            .body(SdkStream::from(bytes))
            .send()
            .await
            .map_err(|e| upload_error(key, upload, e))?;
        Ok(unquote(out.e_tag))
    }

    /// Completes `upload` under `condition`; returns the object's ETag.
    pub(super) async fn complete(
        &self,
        key: &str,
        object: &str,
        upload: &MultipartId,
        parts: &[CompletedPart],
        condition: &PutCondition,
    ) -> Result<String, StoreError> {
        if parts.is_empty() {
            return Err(invalid(
                key,
                "a multipart upload needs at least one part".into(),
            ));
        }
        let sdk_parts = parts
            .iter()
            .map(|p| sdk_part(p.number, &p.etag).build())
            .collect();
        self.send_complete(key, object, upload, sdk_parts, condition)
            .await
    }

    /// `CompleteMultipartUpload` of `parts` under `condition`; returns the object's ETag.
    pub(super) async fn send_complete(
        &self,
        key: &str,
        object: &str,
        upload: &MultipartId,
        parts: Vec<SdkPart>,
        condition: &PutCondition,
    ) -> Result<String, StoreError> {
        let (if_match, if_none_match) = condition_headers(condition);
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(object)
            .upload_id(&upload.0)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .set_if_match(if_match)
            .set_if_none_match(if_none_match)
            .send()
            .await
            .map_err(|e| write_error(upload_error(key, upload, e), condition))?;
        Ok(unquote(out.e_tag))
    }

    /// Aborts after a failure; a failed abort leaves parts for the bucket's lifecycle rule.
    pub(super) async fn abort_quietly(&self, key: &str, object: &str, upload: &MultipartId) {
        if let Err(e) = self.abort(key, object, upload).await {
            tracing::warn!(key, upload = %upload.0, error = %e, "aborting a failed multipart upload");
        }
    }

    /// Aborts `upload`; an upload that is already gone is `Ok`.
    pub(super) async fn abort(
        &self,
        key: &str,
        object: &str,
        upload: &MultipartId,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(object)
            .upload_id(&upload.0)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if matches!(classify(&e), Failure::NoSuchUpload | Failure::NotFound) => Ok(()),
            Err(e) => Err(upload_error(key, upload, e)),
        }
    }

    /// Aborts the multipart uploads under the prefix that were started before `before`.
    /// A server without `ListMultipartUploads` (s3s-fs) aborts none: a bucket lifecycle rule
    /// (`AbortIncompleteMultipartUpload`) is the better tool there anyway.
    pub(super) async fn abort_started_before(
        &self,
        before: SystemTime,
    ) -> Result<usize, StoreError> {
        let mut aborted = 0;
        let (mut key_marker, mut id_marker) = (None, None);
        loop {
            let result = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await;
            let out = match result {
                Ok(out) => out,
                Err(e) if classify(&e) == Failure::NotImplemented => {
                    tracing::warn!(
                        bucket = %self.bucket,
                        "the S3 server cannot list multipart uploads: stale ones stay until a lifecycle rule aborts them"
                    );
                    return Ok(aborted);
                }
                Err(e) => return Err(store_error(&self.prefix, e)),
            };
            for upload in out.uploads.unwrap_or_default() {
                let (Some(object), Some(id)) = (upload.key, upload.upload_id) else {
                    continue;
                };
                let started = upload.initiated.and_then(system_time);
                if started.is_none_or(|t| t >= before) {
                    continue;
                }
                let key = object
                    .strip_prefix(&self.prefix)
                    .unwrap_or(&object)
                    .to_owned();
                self.abort(&key, &object, &MultipartId(id)).await?;
                aborted += 1;
            }
            if out.is_truncated != Some(true) {
                return Ok(aborted);
            }
            key_marker = out.next_key_marker;
            id_marker = out.next_upload_id_marker;
            if key_marker.is_none() && id_marker.is_none() {
                return Ok(aborted);
            }
        }
    }

    pub(super) async fn delete_object(&self, key: &str, object: &str) -> Result<(), StoreError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(object)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if classify(&e) == Failure::NotFound => Ok(()),
            Err(e) => Err(store_error(key, e)),
        }
    }

    /// `UploadPartCopy` of `source` (the bytes `range` spans, both ends included; all of
    /// it without one) as part `number` of `upload`, pinned to the source's `etag` when
    /// given: the part's ETag and the SHA-256 the store returned for it (an upload created
    /// with that checksum algorithm gets one).
    pub(super) async fn copy_part(
        &self,
        object: &str,
        upload: &MultipartId,
        number: u32,
        source: &str,
        range: Option<(u64, u64)>,
        etag: Option<&str>,
    ) -> Result<(String, Option<String>), SdkError<UploadPartCopyError, HttpResponse>> {
        let out = self
            .client
            .upload_part_copy()
            .bucket(&self.bucket)
            .key(object)
            .upload_id(&upload.0)
            .part_number(part_number(number))
            .copy_source(source)
            .set_copy_source_range(range.map(|(start, end)| format!("bytes={start}-{end}")))
            .set_copy_source_if_match(etag.map(quote))
            .send()
            .await?;
        let result = out.copy_part_result;
        let checksum = result.as_ref().and_then(|r| r.checksum_sha256.clone());
        Ok((unquote(result.and_then(|r| r.e_tag)), checksum))
    }

    /// Copies `source` (described by `src`) by `UploadPartCopy` ranges, each pinned to the
    /// source's ETag, and completes under `condition`.
    pub(super) async fn copy_multipart(
        &self,
        key: &str,
        object: &str,
        source: &str,
        src: &ObjectInfo,
        meta: PutMeta,
        condition: &PutCondition,
    ) -> Result<ObjectInfo, StoreError> {
        let gate = async { Ok::<_, StoreError>(()) };
        let (copied, ()) = self
            .copy_multipart_if(key, object, source, src, meta, condition, gate, |_| true)
            .await?;
        copied.ok_or_else(|| invalid(key, "the copy was withheld".into()))
    }

    /// [`copy_multipart`](Self::copy_multipart) while `gate` runs, completed only if
    /// `accept` takes what `gate` gave: until then the copy is parts of an incomplete
    /// upload, invisible under `object`, and a refused one is aborted (`None`).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn copy_multipart_if<T>(
        &self,
        key: &str,
        object: &str,
        source: &str,
        src: &ObjectInfo,
        meta: PutMeta,
        condition: &PutCondition,
        gate: impl Future<Output = Result<T, StoreError>>,
        accept: impl FnOnce(&T) -> bool,
    ) -> Result<(Option<ObjectInfo>, T), StoreError> {
        let upload = self.create(key, object, &meta, None).await?;
        let part = self.part_size.max(src.size.div_ceil(MAX_PARTS));
        let ranges = (0..src.size.div_ceil(part)).map(|i| {
            let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
            (number, i * part, ((i + 1) * part).min(src.size) - 1)
        });
        let copy_source = copy_source(&self.bucket, source);
        let (upload_ref, copy_source) = (&upload, &copy_source);
        let result = async {
            let copy = futures::stream::iter(ranges)
                .map(|(number, start, end)| async move {
                    let range = Some((start, end));
                    let (etag, _) = self
                        .copy_part(
                            object,
                            upload_ref,
                            number,
                            copy_source,
                            range,
                            Some(&src.etag.0),
                        )
                        .await
                        .map_err(|e| source_changed(upload_error(key, upload_ref, e), key))?;
                    Ok::<_, StoreError>(CompletedPart {
                        number,
                        etag,
                        size: end - start + 1,
                    })
                })
                .buffered(COPY_CONCURRENCY)
                .try_collect::<Vec<CompletedPart>>();
            let (parts, gated) = futures::try_join!(copy, gate)?;
            if !accept(&gated) {
                return Ok((None, gated));
            }
            let etag = self
                .complete(key, object, &upload, &parts, condition)
                .await?;
            Ok((Some(written(src.size, Some(etag), meta)), gated))
        }
        .await;
        if !matches!(result, Ok((Some(_), _))) {
            self.abort_quietly(key, object, &upload).await;
        }
        result
    }
}
