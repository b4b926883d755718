//! S3 failures as [`StoreError`]s: the status and error code decide the variant; the SDK
//! error stays attached as the source.

use std::io;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::store::{MultipartId, StoreError};

/// What an S3 failure means to the store contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    NotFound,
    PreconditionFailed,
    InvalidRange,
    NoSuchUpload,
    InvalidPart(String),
    /// The server does not have this operation (s3s-fs: `ListMultipartUploads`).
    NotImplemented,
    /// Timeouts, connection failures, 5xx and throttling (already retried by the SDK).
    Unavailable,
    /// Anything else (403, a missing bucket, a malformed request), as an I/O error kind.
    Other(io::ErrorKind),
}

pub(super) fn classify<E: ProvideErrorMetadata>(err: &SdkError<E>) -> Failure {
    match err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or_default();
            match (status, code) {
                (_, "NoSuchUpload") => Failure::NoSuchUpload,
                (_, "NoSuchBucket") => Failure::Other(io::ErrorKind::NotFound),
                (404, _) | (_, "NoSuchKey" | "NotFound") => Failure::NotFound,
                // 409 ConditionalRequestConflict: a concurrent conditional write won.
                (412, _) | (_, "PreconditionFailed" | "ConditionalRequestConflict") => {
                    Failure::PreconditionFailed
                }
                (416, _) | (_, "InvalidRange") => Failure::InvalidRange,
                (_, "InvalidPart" | "InvalidPartOrder" | "EntityTooSmall") => Failure::InvalidPart(
                    ctx.err()
                        .message()
                        .map_or_else(|| code.to_owned(), |m| format!("{code}: {m}")),
                ),
                (501, _) | (_, "NotImplemented") => Failure::NotImplemented,
                (429 | 500..=599, _)
                | (_, "SlowDown" | "RequestTimeout" | "ServiceUnavailable" | "InternalError") => {
                    Failure::Unavailable
                }
                (401 | 403, _) => Failure::Other(io::ErrorKind::PermissionDenied),
                _ => Failure::Other(io::ErrorKind::Other),
            }
        }
        SdkError::ConstructionFailure(_) => Failure::Other(io::ErrorKind::InvalidInput),
        // TimeoutError, DispatchFailure, ResponseError, and whatever a later SDK adds.
        _ => Failure::Unavailable,
    }
}

/// Maps a failed request on `key` to the store's error.
pub(super) fn store_error<E>(key: &str, err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let key = key.to_owned();
    match classify(&err) {
        Failure::NotFound => StoreError::NotFound { key },
        Failure::PreconditionFailed => StoreError::PreconditionFailed { key },
        Failure::NoSuchUpload => StoreError::NoSuchUpload {
            key,
            upload: String::new(),
        },
        Failure::InvalidPart(message) => StoreError::InvalidPart { key, message },
        Failure::NotImplemented => StoreError::Io {
            key,
            source: io::Error::new(io::ErrorKind::Unsupported, err),
        },
        Failure::Unavailable => StoreError::Unavailable {
            key,
            source: Box::new(err),
        },
        // The caller knows the range and the size; it maps 416 itself.
        Failure::InvalidRange => StoreError::Io {
            key,
            source: io::Error::new(io::ErrorKind::InvalidInput, err),
        },
        Failure::Other(kind) => StoreError::Io {
            key,
            source: io::Error::new(kind, err),
        },
    }
}

/// [`store_error`] for requests that name a multipart upload.
pub(super) fn upload_error<E>(key: &str, upload: &MultipartId, err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match store_error(key, err) {
        StoreError::NoSuchUpload { key, .. } => StoreError::NoSuchUpload {
            key,
            upload: upload.0.clone(),
        },
        e => e,
    }
}

/// `e`, unless it is the failed `If-Match` of a copy or read pinned to the source's ETag:
/// then the source (`key`) changed meanwhile, which is no condition on any destination.
pub(super) fn source_changed(e: StoreError, key: &str) -> StoreError {
    match e {
        StoreError::PreconditionFailed { .. } => invalid(
            key,
            "the source changed while it was copied or hashed".into(),
        ),
        e => e,
    }
}

/// A failure of our own input (a missing size, a body that ended early).
pub(super) fn invalid(key: &str, message: String) -> StoreError {
    StoreError::InvalidPart {
        key: key.to_owned(),
        message,
    }
}

pub(super) fn body_error(key: &str, source: io::Error) -> StoreError {
    StoreError::Io {
        key: key.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::config::http::HttpResponse;
    use aws_sdk_s3::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_s3::operation::put_object::PutObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    use super::*;

    fn service(status: u16, code: &str) -> SdkError<PutObjectError> {
        let meta = ErrorMetadata::builder().code(code).message("m").build();
        let status = status.try_into().expect("a valid status");
        SdkError::service_error(
            PutObjectError::generic(meta),
            HttpResponse::new(status, SdkBody::empty()),
        )
    }

    /// What each S3 answer means to the contract (codes as AWS, LocalStack and s3s send them).
    #[test]
    fn status_and_code_decide_the_failure() {
        use io::ErrorKind::{NotFound, Other, PermissionDenied};
        let table = [
            (404, "NoSuchKey", Failure::NotFound),
            (404, "NotFound", Failure::NotFound),
            (404, "NoSuchUpload", Failure::NoSuchUpload),
            (404, "NoSuchBucket", Failure::Other(NotFound)),
            (412, "PreconditionFailed", Failure::PreconditionFailed),
            (
                409,
                "ConditionalRequestConflict",
                Failure::PreconditionFailed,
            ),
            (416, "InvalidRange", Failure::InvalidRange),
            (
                400,
                "InvalidPart",
                Failure::InvalidPart("InvalidPart: m".into()),
            ),
            (
                400,
                "EntityTooSmall",
                Failure::InvalidPart("EntityTooSmall: m".into()),
            ),
            (500, "InternalError", Failure::Unavailable),
            (503, "SlowDown", Failure::Unavailable),
            (501, "NotImplemented", Failure::NotImplemented),
            (429, "TooManyRequests", Failure::Unavailable),
            (403, "AccessDenied", Failure::Other(PermissionDenied)),
            (400, "InvalidArgument", Failure::Other(Other)),
        ];
        for (status, code, want) in table {
            assert_eq!(classify(&service(status, code)), want, "{status} {code}");
        }
    }

    #[test]
    fn timeouts_and_dispatch_failures_are_unavailable() {
        let timeout: SdkError<PutObjectError> = SdkError::timeout_error("slow");
        assert_eq!(classify(&timeout), Failure::Unavailable);
        let refused: SdkError<PutObjectError> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        assert_eq!(classify(&refused), Failure::Unavailable);
        assert!(matches!(
            store_error("k", refused),
            StoreError::Unavailable { ref key, .. } if key == "k"
        ));
    }
}
