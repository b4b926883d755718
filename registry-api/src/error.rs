//! The OCI error envelope: one closed [`OciCode`] enum and one [`ApiError`] that every
//! handler returns. 5xx bodies never carry internal details: the error rides along as a
//! response extension (`Arc<ApiError>`) and the logging layer writes it to the log.

use std::error::Error as StdError;
use std::io;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use blob_gateway::{StoreError, UploadError};
use index_format::NameError;
use serde_json::json;

/// The error codes of the distribution spec (code-1 .. code-14), plus the statuses we
/// answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OciCode {
    /// `BLOB_UNKNOWN`: the repository cannot serve this blob.
    BlobUnknown,
    /// `BLOB_UPLOAD_INVALID`: the upload or chunk is not acceptable.
    BlobUploadInvalid,
    /// `BLOB_UPLOAD_UNKNOWN`: no such upload session.
    BlobUploadUnknown,
    /// `DIGEST_INVALID`: a malformed digest, or content that does not match it.
    DigestInvalid,
    /// `MANIFEST_BLOB_UNKNOWN`: a manifest references blobs the repository lacks.
    ManifestBlobUnknown,
    /// `MANIFEST_INVALID`: the manifest cannot be accepted.
    ManifestInvalid,
    /// `MANIFEST_UNKNOWN`: no manifest under this reference.
    ManifestUnknown,
    /// `NAME_INVALID`: a malformed repository name.
    NameInvalid,
    /// `NAME_UNKNOWN`: no such repository (or endpoint).
    NameUnknown,
    /// `SIZE_INVALID`: a declared length that does not match the content.
    SizeInvalid,
    /// `UNAUTHORIZED`: authentication is required.
    Unauthorized,
    /// `DENIED`: the caller may not do this.
    Denied,
    /// `UNSUPPORTED`: the operation or parameter is not supported.
    Unsupported,
    /// `TOOMANYREQUESTS`: retry later.
    TooManyRequests,
}

impl OciCode {
    /// The code as the spec spells it in the error envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BlobUnknown => "BLOB_UNKNOWN",
            Self::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Self::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Self::DigestInvalid => "DIGEST_INVALID",
            Self::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Self::ManifestInvalid => "MANIFEST_INVALID",
            Self::ManifestUnknown => "MANIFEST_UNKNOWN",
            Self::NameInvalid => "NAME_INVALID",
            Self::NameUnknown => "NAME_UNKNOWN",
            Self::SizeInvalid => "SIZE_INVALID",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Denied => "DENIED",
            Self::Unsupported => "UNSUPPORTED",
            Self::TooManyRequests => "TOOMANYREQUESTS",
        }
    }

    /// The status a code is sent with unless the situation calls for another.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BlobUnknown
            | Self::BlobUploadUnknown
            | Self::ManifestUnknown
            | Self::NameUnknown => StatusCode::NOT_FOUND,
            Self::BlobUploadInvalid
            | Self::DigestInvalid
            | Self::ManifestBlobUnknown
            | Self::ManifestInvalid
            | Self::NameInvalid
            | Self::SizeInvalid => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Denied => StatusCode::FORBIDDEN,
            Self::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

/// Every failure a handler can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A client error with its spec code, status and message.
    #[error("{code:?}: {message}")]
    Oci {
        /// The spec's error code.
        code: OciCode,
        /// The HTTP status answered.
        status: StatusCode,
        /// A message naming the bad input.
        message: String,
        /// Structured detail for the envelope's `detail` field.
        detail: Option<serde_json::Value>,
    },
    /// The chunk does not continue the upload: 416 with the current range.
    #[error("chunk out of order: upload has {offset} bytes")]
    RangeNotSatisfiable {
        /// The session's size: where the next chunk must start.
        offset: u64,
    },
    /// A refusal that tells the client what to do next in a header: `401` with its
    /// `WWW-Authenticate` challenge, or `429` with `Retry-After`.
    #[error("{code:?}: {message}")]
    Challenge {
        /// `UNAUTHORIZED` or `TOOMANYREQUESTS` (the status is the code's).
        code: OciCode,
        /// What went wrong.
        message: String,
        /// The header to send.
        header: HeaderName,
        /// Its value.
        value: String,
    },
    /// Storage could not answer: 503, retry later.
    #[error("storage unavailable")]
    Unavailable(#[source] StoreError),
    /// Anything else: 500, details to the log only.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// An error with the code's usual status.
    pub fn new(code: OciCode, message: impl Into<String>) -> Self {
        Self::Oci {
            code,
            status: code.status(),
            message: message.into(),
            detail: None,
        }
    }

    /// An error with a status other than the code's usual one.
    pub fn with_status(code: OciCode, status: StatusCode, message: impl Into<String>) -> Self {
        Self::Oci {
            code,
            status,
            message: message.into(),
            detail: None,
        }
    }

    /// Adds the envelope's `detail`.
    pub fn detail(mut self, value: serde_json::Value) -> Self {
        if let Self::Oci { detail, .. } = &mut self {
            *detail = Some(value);
        }
        self
    }

    /// A refusal of access (`UNAUTHORIZED`, `DENIED`) saying `why` instead; any other
    /// error as it is.
    pub fn with_message(mut self, why: String) -> Self {
        match &mut self {
            Self::Oci { code, message, .. } | Self::Challenge { code, message, .. }
                if matches!(code, OciCode::Unauthorized | OciCode::Denied) =>
            {
                *message = why;
            }
            _ => {}
        }
        self
    }

    /// A store error where a missing object means `not_found`.
    pub fn store(err: StoreError, not_found: OciCode) -> Self {
        match err {
            StoreError::NotFound { .. } => Self::new(not_found, not_found_message(not_found)),
            StoreError::Unavailable { .. } => Self::Unavailable(err),
            other => Self::Internal(other.into()),
        }
    }
}

fn not_found_message(code: OciCode) -> &'static str {
    match code {
        OciCode::BlobUnknown => "blob unknown to registry",
        OciCode::ManifestUnknown => "manifest unknown to registry",
        OciCode::NameUnknown => "repository name not known to registry",
        OciCode::BlobUploadUnknown => "blob upload unknown to registry",
        _ => "not found",
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        let code = match e {
            NameError::Name(_) => OciCode::NameInvalid,
            NameError::Tag(_) => OciCode::ManifestInvalid,
            NameError::Digest(_) | NameError::UnsupportedAlgorithm(_) => OciCode::DigestInvalid,
        };
        Self::new(code, e.to_string())
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        let message = e.to_string();
        match e {
            UploadError::Unknown(_) => Self::new(OciCode::BlobUploadUnknown, message),
            UploadError::OutOfOrder { expected, .. } => {
                Self::RangeNotSatisfiable { offset: expected }
            }
            UploadError::SizeMismatch { .. } => Self::new(OciCode::SizeInvalid, message),
            UploadError::DigestMismatch { .. } => Self::new(OciCode::DigestInvalid, message),
            UploadError::Closing(_) | UploadError::TooManyParts { .. } => {
                Self::new(OciCode::BlobUploadInvalid, message)
            }
            // Another request changed the session meanwhile: retrying is safe.
            UploadError::Conflict(_) => {
                Self::with_status(OciCode::BlobUploadInvalid, StatusCode::CONFLICT, message)
            }
            UploadError::CorruptState { .. } => Self::Internal(e.into()),
            // A part whose body does not match its declared size: the request lied.
            UploadError::Store(StoreError::InvalidPart { .. }) => {
                Self::new(OciCode::BlobUploadInvalid, message)
            }
            UploadError::Store(StoreError::NoSuchUpload { .. }) => {
                Self::new(OciCode::BlobUploadUnknown, message)
            }
            UploadError::Store(s) => Self::store(s, OciCode::BlobUploadUnknown),
        }
    }
}

fn envelope(code: OciCode, message: &str, detail: Option<serde_json::Value>) -> String {
    let mut err = json!({ "code": code.as_str(), "message": message });
    if let Some(d) = detail {
        err["detail"] = d;
    }
    json!({ "errors": [err] }).to_string()
}

/// A request body that could not be read to its end: a framing error (a bad chunk size, an
/// over-long chunk extension), a connection closed early, or the idle timeout between
/// body bytes. Always the client's doing, so never answered as a server error.
#[derive(Debug, thiserror::Error)]
#[error("the request body could not be read: {source}")]
pub struct BodyError {
    /// The body went silent for longer than the body timeout.
    pub timed_out: bool,
    /// Hyper's error, or the timeout.
    #[source]
    pub source: axum::Error,
}

impl BodyError {
    /// Classifies an error from the request body.
    pub fn new(source: axum::Error) -> Self {
        let mut next: Option<&(dyn StdError + 'static)> = Some(&source);
        let mut timed_out = false;
        while let Some(e) = next {
            timed_out |= e.is::<tower_http::timeout::TimeoutError>();
            next = e.source();
        }
        Self { timed_out, source }
    }

    /// The error to answer with, under `code`: `408` for a timeout, else `400`.
    pub fn to_api_error(&self, code: OciCode) -> ApiError {
        let status = if self.timed_out {
            StatusCode::REQUEST_TIMEOUT
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::with_status(code, status, self.to_string())
    }

    /// The body error somewhere in `err`'s chain of causes, looking inside `io::Error`s
    /// too (whose `source` skips the error they wrap).
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Self> {
        let mut e = err;
        loop {
            if let Some(b) = e.downcast_ref::<Self>() {
                return Some(b);
            }
            let wrapped = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref());
            e = match wrapped {
                Some(inner) => inner,
                None => e.source()?,
            };
        }
    }
}

impl ApiError {
    /// A server-side error caused by the request body failing is the client's error.
    fn blame_body(self) -> Self {
        let found = match &self {
            Self::Internal(e) => BodyError::find(e.as_ref()),
            Self::Unavailable(e) => BodyError::find(e),
            _ => None,
        };
        match found {
            Some(b) => b.to_api_error(OciCode::BlobUploadInvalid),
            None => self,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let this = self.blame_body();
        let (status, body) = match &this {
            Self::Oci {
                code,
                status,
                message,
                detail,
            } => (*status, envelope(*code, message, detail.clone())),
            Self::RangeNotSatisfiable { offset } => {
                let mut r = (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_TYPE, "application/json")],
                    envelope(
                        OciCode::BlobUploadInvalid,
                        &this.to_string(),
                        Some(json!({ "offset": offset })),
                    ),
                )
                    .into_response();
                let range = format!("0-{}", offset.saturating_sub(1));
                if let Ok(v) = HeaderValue::from_str(&range) {
                    r.headers_mut().insert(header::RANGE, v);
                }
                return r;
            }
            Self::Challenge {
                code,
                message,
                header,
                value,
            } => {
                let mut r = (
                    code.status(),
                    [(header::CONTENT_TYPE, "application/json")],
                    envelope(*code, message, None),
                )
                    .into_response();
                if let Ok(v) = HeaderValue::from_str(value) {
                    r.headers_mut().insert(header.clone(), v);
                }
                return r;
            }
            Self::Unavailable(_) => {
                let mut r = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::CONTENT_TYPE, "application/json")],
                    envelope(
                        OciCode::TooManyRequests,
                        "storage temporarily unavailable",
                        None,
                    ),
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return with_error(r, this);
            }
            Self::Internal(_) => {
                let r = (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "application/json")],
                    json!({ "errors": [{ "code": "UNKNOWN", "message": "internal server error" }] })
                        .to_string(),
                )
                    .into_response();
                return with_error(r, this);
            }
        };
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

/// Hands a 5xx's cause to the logging layer, which logs it once together with the request
/// it failed (see `logging.rs`); the body itself stays free of internal detail.
fn with_error(mut response: Response, error: ApiError) -> Response {
    response.extensions_mut().insert(Arc::new(error));
    response
}

/// `Result` for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
