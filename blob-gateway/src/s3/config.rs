//! What an [`S3Store`](super::S3Store) connects to, checked once in [`S3Config::validate`].

use std::fmt;

const MIN_PART_SIZE: u64 = S3Config::MIN_PART_SIZE;
const MAX_PART_SIZE: u64 = S3Config::MAX_PART_SIZE;

/// Where and how to reach an S3-compatible bucket.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `http(s)://host:port` of an S3-compatible server; `None` for AWS itself.
    pub endpoint: Option<String>,
    /// The signing region; servers that ignore it still need one (e.g. `us-east-1`).
    pub region: String,
    /// The bucket's name.
    pub bucket: String,
    /// Objects live under `<prefix>/` in the bucket; `None` for the bucket's root.
    pub prefix: Option<String>,
    /// `http://host/bucket/key` rather than `http://bucket.host/key`; most self-hosted
    /// servers (MinIO, Garage, LocalStack, s3s) need it.
    pub path_style: bool,
    /// Static keys; when both are `None` the standard AWS chain is used (environment,
    /// profile, web identity, ECS and instance metadata).
    pub access_key: Option<String>,
    /// The secret paired with `access_key`; never printed by `Debug`.
    pub secret_key: Option<String>,
    /// The size of every non-final part, in `[5 MiB, 5 GiB]`: what [`put`] buffers before
    /// switching to a multipart upload, and what callers of `upload_part` must send.
    ///
    /// [`put`]: crate::ObjectStore::put
    pub part_size: u64,
    /// CDN mode: `public_url` answers `<public_base_url>/<object key in the bucket>`
    /// (prefix included) instead of a presigned URL. The CDN must serve the bucket's root.
    pub public_base_url: Option<String>,
    /// Objects larger than this are copied part by part (`UploadPartCopy`); at most, and by
    /// default, 5 GiB, `CopyObject`'s limit. Tests lower it to exercise that path.
    pub multipart_copy_threshold: u64,
}

impl S3Config {
    /// S3's smallest non-final part.
    pub const MIN_PART_SIZE: u64 = 5 << 20;
    /// S3's largest part, and the largest object `CopyObject` copies in one request.
    pub const MAX_PART_SIZE: u64 = 5 << 30;
    /// The default part size: S3's minimum rounded up, small enough to buffer per upload.
    pub const DEFAULT_PART_SIZE: u64 = 8 << 20;

    /// A config for `bucket` in `region` with every default: AWS endpoint, no prefix,
    /// virtual-hosted style, the standard credential chain, 8 MiB parts.
    pub fn new(bucket: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            endpoint: None,
            region: region.into(),
            bucket: bucket.into(),
            prefix: None,
            path_style: false,
            access_key: None,
            secret_key: None,
            part_size: Self::DEFAULT_PART_SIZE,
            public_base_url: None,
            multipart_copy_threshold: MAX_PART_SIZE,
        }
    }

    /// Checks every field; the store is only built from a config that passed.
    pub fn validate(&self) -> Result<(), S3ConfigError> {
        if self.bucket.is_empty() {
            return Err(S3ConfigError::EmptyBucket);
        }
        if self.region.is_empty() {
            return Err(S3ConfigError::EmptyRegion);
        }
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(S3ConfigError::PartSize(self.part_size));
        }
        if self.multipart_copy_threshold > MAX_PART_SIZE {
            return Err(S3ConfigError::CopyThreshold(self.multipart_copy_threshold));
        }
        if self.access_key.is_some() != self.secret_key.is_some() {
            return Err(S3ConfigError::HalfKeyPair);
        }
        if let Some(p) = &self.prefix {
            let trimmed = p.trim_matches('/');
            if trimmed.is_empty()
                || trimmed
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(S3ConfigError::Prefix(p.clone()));
            }
        }
        for url in [&self.endpoint, &self.public_base_url]
            .into_iter()
            .flatten()
        {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(S3ConfigError::Url(url.clone()));
            }
        }
        Ok(())
    }

    /// The key prefix with exactly one trailing `/`, or empty.
    pub(super) fn key_prefix(&self) -> String {
        self.prefix
            .as_deref()
            .map(|p| format!("{}/", p.trim_matches('/')))
            .unwrap_or_default()
    }
}

/// The secret key is never printed.
impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("path_style", &self.path_style)
            .field("access_key", &self.access_key)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("part_size", &self.part_size)
            .field("public_base_url", &self.public_base_url)
            .field("multipart_copy_threshold", &self.multipart_copy_threshold)
            .finish()
    }
}

/// Why an [`S3Config`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3ConfigError {
    /// `bucket` is empty.
    #[error("the S3 bucket name is empty")]
    EmptyBucket,
    /// `region` is empty.
    #[error("the S3 region is empty (use e.g. us-east-1 for servers that ignore it)")]
    EmptyRegion,
    /// `part_size` is outside `[5 MiB, 5 GiB]`; holds the refused size in bytes.
    #[error("S3 part size {0} is outside [5 MiB, 5 GiB] ({MIN_PART_SIZE}..={MAX_PART_SIZE} bytes)")]
    PartSize(u64),
    /// `multipart_copy_threshold` exceeds `CopyObject`'s 5 GiB limit; holds it in bytes.
    #[error(
        "multipart copy threshold {0} exceeds CopyObject's limit of 5 GiB ({MAX_PART_SIZE} bytes)"
    )]
    CopyThreshold(u64),
    /// Only one of `access_key` and `secret_key` is set.
    #[error(
        "give both the S3 access key and the secret key, or neither (for the AWS credential chain)"
    )]
    HalfKeyPair,
    /// `prefix` is empty or has an empty, `.` or `..` component; holds the refused prefix.
    #[error("invalid S3 key prefix {0:?}: '/'-separated components, none empty, '.' or '..'")]
    Prefix(String),
    /// `endpoint` or `public_base_url` is not `http://` or `https://`; holds the refused URL.
    #[error("invalid URL {0:?}: expected http:// or https://")]
    Url(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_bad_field() {
        let ok = S3Config::new("b", "us-east-1");
        assert_eq!(ok.validate(), Ok(()));
        let cases: Vec<(S3Config, S3ConfigError)> = vec![
            (
                S3Config {
                    bucket: String::new(),
                    ..ok.clone()
                },
                S3ConfigError::EmptyBucket,
            ),
            (
                S3Config {
                    part_size: MIN_PART_SIZE - 1,
                    ..ok.clone()
                },
                S3ConfigError::PartSize(MIN_PART_SIZE - 1),
            ),
            (
                S3Config {
                    part_size: MAX_PART_SIZE + 1,
                    ..ok.clone()
                },
                S3ConfigError::PartSize(MAX_PART_SIZE + 1),
            ),
            (
                S3Config {
                    access_key: Some("k".into()),
                    ..ok.clone()
                },
                S3ConfigError::HalfKeyPair,
            ),
            (
                S3Config {
                    prefix: Some("a//b".into()),
                    ..ok.clone()
                },
                S3ConfigError::Prefix("a//b".into()),
            ),
            (
                S3Config {
                    prefix: Some("../x".into()),
                    ..ok.clone()
                },
                S3ConfigError::Prefix("../x".into()),
            ),
            (
                S3Config {
                    endpoint: Some("localhost:9000".into()),
                    ..ok.clone()
                },
                S3ConfigError::Url("localhost:9000".into()),
            ),
        ];
        for (config, want) in cases {
            assert_eq!(config.validate(), Err(want), "{config:?}");
        }
    }

    #[test]
    fn prefix_is_normalised() {
        let mut c = S3Config::new("b", "r");
        assert_eq!(c.key_prefix(), "");
        c.prefix = Some("/reg/one/".into());
        assert_eq!(c.key_prefix(), "reg/one/");
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = S3Config {
            secret_key: Some("hunter2".into()),
            access_key: Some("k".into()),
            ..S3Config::new("b", "r")
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
