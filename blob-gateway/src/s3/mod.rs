//! The S3 backend: [`S3Store`] keeps the [`ObjectStore`] contract on any S3-compatible
//! server that honours conditional writes (check with
//! [`S3Store::probe_conditional_writes`] at start-up).
//!
//! | contract             | S3 requests                                                      |
//! |----------------------|------------------------------------------------------------------|
//! | `put` ≤ part size    | `PutObject` with `If-None-Match: *` / `If-Match: "<etag>"`       |
//! | `put` > part size    | a multipart upload of buffered parts; the condition on `Complete`|
//! | `get` with a range   | `GetObject` + `Range: bytes=a-b`; a 416 → `InvalidRange`         |
//! | `list`               | `ListObjectsV2` from `StartAfter` = `after`, paged up to `limit` |
//! | `copy`               | `CopyObject`, metadata replaced                                  |
//! | `copy`, conditional  | a multipart upload of `UploadPartCopy` ranges, each pinned to    |
//! | or over 5 GiB        | the source's ETag; the condition on `CompleteMultipartUpload`    |
//! | multipart            | `Create…`, `UploadPart` (streamed; the size is required),        |
//! |                      | `Complete…`, `AbortMultipartUpload` (an unknown upload is `Ok`)  |
//! | `presign_get`        | a presigned `GetObject` URL (`public_url`: `<public_base_url>/<key>`) |
//! | `presign_put`/`_part`| presigned `PutObject`/`UploadPart`, `x-amz-checksum-sha256` signed|
//! |                      | (`PutObject` also `x-amz-meta-cargohold-upload`: the writer)     |
//! | `stored_checksum`    | `HeadObject` in checksum mode, with the writer's metadata        |
//! | `list_checksummed`   | `ListParts`, paged by `PartNumberMarker`, sorted by number       |
//! | `read_sha256`        | `GetObject` without the SDK's response checksum validation       |
//! | `…_publishing`, hash | one `UploadPartCopy` of the whole object (`CopySourceIfMatch`)   |
//! | by the store         | into a `ChecksumAlgorithm=SHA256` upload at the blob's key: the  |
//! |                      | part's checksum is the object's; `Complete…` (`If-None-Match`) |
//! |                      | only for the digest, else `Abort…`                               |
//! | `remove_leftovers`   | `ListMultipartUploads` under the prefix, paged; `Abort…` each    |
//!
//! Keys are `[<prefix>/]<StorageKey::key()>`. Notes, each measured by the store suite:
//! - `If-Match` on a missing key is a 404 on S3 and LocalStack: to the contract, a failed
//!   precondition.
//! - `CopyObject`'s own `If-None-Match`/`If-Match` are ignored by LocalStack 4.13 and s3s-fs
//!   0.14, so a conditional copy goes through `CompleteMultipartUpload`, which honours them
//!   wherever conditional puts work: one request more.
//! - Requests whose body is in memory are retried by the SDK's standard mode, with backoff;
//!   streamed part uploads cannot be replayed and are not. Timeouts, connection failures,
//!   5xx and throttling that outlast the retries are `StoreError::Unavailable`.
//! - Request checksums are only sent where an operation requires them: Garage and other
//!   S3-compatible servers reject the SDK's default `aws-chunked` uploads.
//! - `ListParts` only lists a direct upload's parts for a client that resumes; paged by
//!   marker and sorted here (s3s-fs returns parts unordered, ignores `MaxParts` and lists
//!   neither ETags nor checksums).

mod body;
mod config;
mod copysum;
mod error;
mod presign;
mod probe;
mod verify;
mod wire;
mod write;

use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::types::MetadataDirective;
use bytes::Bytes;
use index_format::{KeyPrefix, StorageKey};

use crate::store::{
    ByteRange, ByteStream, CompletedPart, ETag, ListPage, ManifestMeta, MultipartId, ObjectBody,
    ObjectInfo, ObjectStore, Presign, PutCondition, PutMeta, StoreError,
};
use body::{PartReader, StreamedBody};
pub use config::{S3Config, S3ConfigError};
use error::{Failure, body_error, classify, invalid, store_error, upload_error};
pub use probe::ConditionalWrites;
use wire::{
    as_i64, as_u64, content_range, copy_source, part_number, range_header, recorded_digest,
    system_time, unquote, written,
};

/// Attempts per request, the first included, for requests whose body can be replayed.
const MAX_ATTEMPTS: u32 = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `ListObjectsV2` returns at most this many keys per request.
const MAX_KEYS: usize = 1000;
/// Presigned URLs are valid for at most a week.
const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);

/// An object store in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    /// Empty, or the configured prefix with one trailing `/`.
    prefix: String,
    part_size: u64,
    public_base_url: Option<String>,
    copy_threshold: u64,
}

impl S3Store {
    /// Checks `config` and builds the client; credentials come from the config, else from
    /// the standard AWS chain. No request is sent.
    pub async fn connect(config: S3Config) -> Result<Self, S3ConfigError> {
        config.validate()?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .build(),
            );
        if let (Some(access), Some(secret)) = (&config.access_key, &config.secret_key) {
            let creds = Credentials::new(access, secret, None, None, "cargohold-config");
            loader = loader.credentials_provider(creds);
        }
        let shared = loader.load().await;
        let mut s3 = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            s3 = s3.endpoint_url(endpoint);
        }
        Ok(Self {
            client: Client::from_conf(s3.build()),
            prefix: config.key_prefix(),
            bucket: config.bucket,
            part_size: config.part_size,
            public_base_url: config
                .public_base_url
                .map(|u| u.trim_end_matches('/').to_owned()),
            copy_threshold: config.multipart_copy_threshold,
        })
    }

    /// The object's key in the bucket.
    fn object_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn part_len(&self) -> usize {
        usize::try_from(self.part_size).unwrap_or(usize::MAX)
    }
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    fn backend(&self) -> &'static str {
        "s3"
    }

    async fn head(&self, key: &StorageKey) -> Result<ObjectInfo, StoreError> {
        let k = key.key();
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(&k))
            .send()
            .await
            .map_err(|e| store_error(&k, e))?;
        Ok(ObjectInfo {
            size: out.content_length.map_or(0, as_u64),
            etag: ETag(unquote(out.e_tag)),
            content_type: out.content_type,
            cache_control: out.cache_control,
            last_modified: out.last_modified.and_then(system_time),
            sha256: None,
            digest: recorded_digest(out.metadata.as_ref()),
        })
    }

    async fn get(
        &self,
        key: &StorageKey,
        range: Option<ByteRange>,
    ) -> Result<ObjectBody, StoreError> {
        let k = key.key();
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(&k));
        let out = match request
            .set_range(range.map(|r| range_header(r.start, r.end)))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if classify(&e) == Failure::InvalidRange => {
                let size = self.head(key).await?.size;
                let start = range.map_or(0, |r| r.start);
                return Err(StoreError::InvalidRange {
                    key: k,
                    start,
                    size,
                });
            }
            Err(e) => return Err(store_error(&k, e)),
        };
        let length = out.content_length.map_or(0, as_u64);
        let (size, returned) = match (range, out.content_range.as_deref().and_then(content_range)) {
            (None, _) => (length, None),
            (Some(_), Some((start, end, size))) => (size, Some((start, end))),
            // A 200 to a ranged request is only right when the range starts past the end.
            (Some(r), None) if r.start >= length => {
                return Err(StoreError::InvalidRange {
                    key: k,
                    start: r.start,
                    size: length,
                });
            }
            (Some(_), None) => {
                return Err(StoreError::Backend {
                    key: k,
                    message: "the server ignored the Range header".into(),
                });
            }
        };
        Ok(ObjectBody {
            info: ObjectInfo {
                size,
                etag: ETag(unquote(out.e_tag)),
                content_type: out.content_type,
                cache_control: out.cache_control,
                last_modified: out.last_modified.and_then(system_time),
                sha256: None,
                digest: recorded_digest(out.metadata.as_ref()),
            },
            range: returned,
            stream: body::from_sdk(out.body),
        })
    }

    async fn put(
        &self,
        key: &StorageKey,
        body: ByteStream,
        manifest: Option<ManifestMeta>,
        condition: PutCondition,
    ) -> Result<ObjectInfo, StoreError> {
        let meta = PutMeta::new(key, manifest.as_ref());
        let k = key.key();
        let object = self.object_key(&k);
        // Up to one part goes in one PutObject; anything longer is a multipart upload.
        let mut reader = PartReader::new(body);
        let part = self.part_len();
        let read_err = |e| body_error(&k, e);
        let first = reader
            .next_part(part)
            .await
            .map_err(read_err)?
            .unwrap_or_default();
        let second = match first.len() == part {
            true => reader.next_part(part).await.map_err(read_err)?,
            false => None,
        };
        match second {
            None => self.put_single(&k, &object, first, meta, &condition).await,
            Some(second) => {
                let first = [first, second];
                self.put_multipart(&k, &object, first, reader, meta, &condition)
                    .await
            }
        }
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        let k = key.key();
        self.delete_object(&k, &self.object_key(&k)).await
    }

    async fn list(
        &self,
        prefix: &KeyPrefix,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let p = prefix.key();
        let mut page = ListPage::default();
        let mut token: Option<String> = None;
        loop {
            // One more than wanted tells whether more follow, whatever the server's paging.
            let want = (limit.saturating_add(1) - page.keys.len()).min(MAX_KEYS);
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(self.object_key(&p))
                .set_start_after(after.map(|a| self.object_key(a)))
                .set_continuation_token(token.take())
                .max_keys(i32::try_from(want).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(|e| store_error(&p, e))?;
            let objects = out.contents.unwrap_or_default();
            for key in objects
                .iter()
                .filter_map(|o| o.key()?.strip_prefix(&self.prefix))
            {
                if page.keys.len() == limit {
                    page.truncated = true;
                    return Ok(page);
                }
                page.keys.push(key.to_owned());
            }
            token = out
                .next_continuation_token
                .filter(|_| out.is_truncated == Some(true));
            if token.is_none() {
                return Ok(page);
            }
        }
    }

    async fn copy(
        &self,
        from: &StorageKey,
        to: &StorageKey,
        condition: PutCondition,
    ) -> Result<ObjectInfo, StoreError> {
        let meta = PutMeta::new(to, None);
        let (src_key, dst_key) = (from.key(), to.key());
        let (source, object) = (self.object_key(&src_key), self.object_key(&dst_key));
        let src = self.head(from).await?;
        if src.size == 0 {
            return self
                .put_single(&dst_key, &object, Bytes::new(), meta, &condition)
                .await;
        }
        if condition != PutCondition::None || src.size > self.copy_threshold {
            return self
                .copy_multipart(&dst_key, &object, &source, &src, meta, &condition)
                .await;
        }
        let out = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(&object)
            .copy_source(copy_source(&self.bucket, &source))
            .metadata_directive(MetadataDirective::Replace)
            .set_content_type(meta.content_type.clone())
            .set_cache_control(meta.cache_control.clone())
            .send()
            .await
            .map_err(|e| store_error(&dst_key, e))?;
        Ok(written(
            src.size,
            out.copy_object_result.and_then(|r| r.e_tag),
            meta,
        ))
    }

    async fn create_multipart(&self, key: &StorageKey) -> Result<MultipartId, StoreError> {
        let k = key.key();
        let meta = PutMeta::new(key, None);
        self.create(&k, &self.object_key(&k), &meta, None).await
    }

    async fn upload_part(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        number: u32,
        body: ByteStream,
        size: Option<u64>,
    ) -> Result<CompletedPart, StoreError> {
        let k = key.key();
        let Some(size) = size else {
            let message = format!("part {number}: S3 needs a part's size before its bytes");
            return Err(invalid(&k, message));
        };
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(self.object_key(&k))
            .upload_id(&upload.0)
            .part_number(part_number(number))
            .content_length(as_i64(size))
            .body(StreamedBody::sdk_stream(body, size))
            .send()
            .await
            .map_err(|e| upload_error(&k, upload, e))?;
        Ok(CompletedPart {
            number,
            etag: unquote(out.e_tag),
            size,
        })
    }

    fn part_size(&self) -> Option<u64> {
        Some(self.part_size)
    }

    async fn complete_multipart(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        parts: &[CompletedPart],
    ) -> Result<ObjectInfo, StoreError> {
        let k = key.key();
        let object = self.object_key(&k);
        let etag = self
            .complete(&k, &object, upload, parts, &PutCondition::None)
            .await?;
        // The metadata was given at create: read it back, unless a later write already won.
        let info = self.head(key).await?;
        if info.etag.0 == etag {
            return Ok(info);
        }
        let size = parts.iter().map(|p| p.size).sum();
        Ok(written(size, Some(etag), PutMeta::default()))
    }

    async fn abort_multipart(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
    ) -> Result<(), StoreError> {
        let k = key.key();
        self.abort(&k, &self.object_key(&k), upload).await
    }

    async fn remove_leftovers(&self, before: SystemTime) -> Result<usize, StoreError> {
        self.abort_started_before(before).await
    }

    fn presigner(&self) -> Option<&dyn Presign> {
        Some(self)
    }
}
