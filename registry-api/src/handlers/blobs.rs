//! `GET`, `HEAD` and `DELETE` of `/v2/<name>/blobs/<digest>`.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use blob_gateway::{Blobs, ByteRange, ByteStream, Download, StoreError, Via};
use index_format::{Digest, RepoName};

use super::{DOCKER_CONTENT_DIGEST, hv};
use crate::config::BlobDelivery;
use crate::error::{ApiError, ApiResult, OciCode};
use crate::mirror::BlobMiss;
use crate::state::AppState;

/// The repository's link to the blob; for a mirrored repository without one, the
/// mirror's download of it (joined or started).
async fn lookup(app: &AppState, repo: &RepoName, digest: &Digest) -> ApiResult<BlobMiss> {
    if let Some(link) = app.index.blob(repo, digest).await? {
        return Ok(BlobMiss::Linked(link));
    }
    let Some(mirror) = &app.mirror else {
        return Err(blob_unknown(repo, digest));
    };
    mirror
        .blob(app, repo, digest)
        .await
        .map_err(|e| e.into_api(OciCode::BlobUnknown, &format!("{repo}@{digest}")))?
        .ok_or_else(|| blob_unknown(repo, digest))
}

fn blob_unknown(repo: &RepoName, digest: &Digest) -> ApiError {
    ApiError::new(
        OciCode::BlobUnknown,
        format!("blob {digest} unknown to {repo}"),
    )
}

pub async fn head(app: AppState, repo: RepoName, digest: Digest) -> ApiResult<Response> {
    // A mirror's miss starts the download the GET that follows will join.
    let size = match lookup(&app, &repo, &digest).await? {
        BlobMiss::Linked(link) => Some(link.size),
        BlobMiss::Streaming(size, _) => size,
    };
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, hv("application/octet-stream")?),
            (DOCKER_CONTENT_DIGEST, hv(digest.as_str())?),
            (header::ETAG, hv(format!("\"{digest}\""))?),
            (header::ACCEPT_RANGES, hv("bytes")?),
        ],
    )
        .into_response();
    if let Some(size) = size {
        let length = hv(size.to_string())?;
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, length);
    }
    Ok(response)
}

pub async fn get(
    app: AppState,
    repo: RepoName,
    digest: Digest,
    headers: &HeaderMap,
    public: bool,
) -> ApiResult<Response> {
    let link = match lookup(&app, &repo, &digest).await? {
        BlobMiss::Linked(link) => link,
        // A range of a blob still arriving is answered whole, as RFC 9110 allows.
        BlobMiss::Streaming(size, stream) => return streaming(&digest, size, stream),
    };
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(spec) => match parse_range(spec, link.size) {
            RangeRequest::Whole => None,
            RangeRequest::Part(r) => Some(r),
            RangeRequest::Unsatisfiable => return unsatisfiable(link.size),
        },
        None => None,
    };
    // Where the backend can hand out a URL, the bytes never pass through this process.
    // The CDN's unsigned URL only for a repository anyone may pull: a private one's
    // blobs get a URL signed for this caller that expires soon.
    let via = match (app.blob_delivery, public) {
        (BlobDelivery::Redirect, true) => Via::Public(app.presign_expiry),
        (BlobDelivery::Redirect, false) => Via::Presigned(app.presign_expiry),
        (BlobDelivery::Proxy, _) => Via::Stream,
    };
    let body = match app.blobs.download(&digest, range, via).await {
        Ok(Download::Stream(body)) => body,
        Ok(Download::Redirect(url)) => {
            return Ok((
                StatusCode::TEMPORARY_REDIRECT,
                [
                    (header::LOCATION, hv(url)?),
                    (DOCKER_CONTENT_DIGEST, hv(digest.as_str())?),
                ],
            )
                .into_response());
        }
        Err(StoreError::InvalidRange { size, .. }) => return unsatisfiable(size),
        Err(e) => return Err(ApiError::store(e, OciCode::BlobUnknown)),
    };
    let size = body.info.size;
    let mut response = Response::new(Body::from_stream(body.stream));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, hv("application/octet-stream")?);
    h.insert(DOCKER_CONTENT_DIGEST, hv(digest.as_str())?);
    h.insert(header::ETAG, hv(format!("\"{digest}\""))?);
    h.insert(header::ACCEPT_RANGES, hv("bytes")?);
    h.insert(header::CACHE_CONTROL, hv(Blobs::cache_control())?);
    let length = match body.range {
        Some((start, end)) => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let range = hv(format!("bytes {start}-{end}/{size}"))?;
            response.headers_mut().insert(header::CONTENT_RANGE, range);
            end - start + 1
        }
        None => size,
    };
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, hv(length.to_string())?);
    Ok(response)
}

/// `200` with a blob the mirror is fetching, streamed as it arrives.
fn streaming(digest: &Digest, size: Option<u64>, stream: ByteStream) -> ApiResult<Response> {
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, hv("application/octet-stream")?);
    h.insert(DOCKER_CONTENT_DIGEST, hv(digest.as_str())?);
    h.insert(header::ETAG, hv(format!("\"{digest}\""))?);
    h.insert(header::CACHE_CONTROL, hv(Blobs::cache_control())?);
    if let Some(size) = size {
        h.insert(header::CONTENT_LENGTH, hv(size.to_string())?);
    }
    Ok(response)
}

fn unsatisfiable(size: u64) -> ApiResult<Response> {
    Ok((
        StatusCode::RANGE_NOT_SATISFIABLE,
        [(header::CONTENT_RANGE, hv(format!("bytes */{size}"))?)],
    )
        .into_response())
}

/// What a `Range` header asks of a blob (RFC 9110 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// The whole blob (`200`): the header is ignored, as the RFC requires for a unit
    /// other than `bytes` and allows otherwise (a malformed range, several ranges).
    Whole,
    /// One range (`206`), its end clamped to the blob's last byte.
    Part(ByteRange),
    /// No byte of the blob is in the range (`416`).
    Unsatisfiable,
}

/// Parses a `Range` header against a blob of `size` bytes. Several ranges are answered
/// with the whole blob, which the RFC allows, rather than a `multipart/byteranges` body
/// no registry client asks for.
pub fn parse_range(spec: &str, size: u64) -> RangeRequest {
    let Some((unit, ranges)) = spec.trim().split_once('=') else {
        return RangeRequest::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || ranges.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = ranges.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (position(first), position(last));
    let (start, end) = match (first, last) {
        // The last `n` bytes; a suffix longer than the blob is the whole blob.
        (None, Some(Ok(n))) => (size.saturating_sub(n), u64::MAX),
        (Some(Ok(a)), Some(Ok(b))) if a <= b => (a, b),
        (Some(Ok(a)), None) => (a, u64::MAX),
        _ => return RangeRequest::Whole,
    };
    if start >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part(ByteRange {
        start,
        end: Some(end.min(size - 1)),
    })
}

/// A byte position: `None` when empty, `Err` when not `1*DIGIT`; digits past `u64` clamp
/// to `u64::MAX` (RFC 9110 lets a last position exceed the representation's length).
fn position(s: &str) -> Option<Result<u64, ()>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Err(()));
    }
    Some(Ok(s.parse().unwrap_or(u64::MAX)))
}

pub async fn delete(app: AppState, repo: RepoName, digest: Digest) -> ApiResult<Response> {
    // Only the repository's link goes: other repositories may share the bytes.
    if !app.index.unlink_blob(&repo, &digest).await? {
        return Err(blob_unknown(&repo, &digest));
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::{Unsatisfiable, Whole};
        let r = |s: &str| match parse_range(s, 100) {
            RangeRequest::Part(r) => Ok((r.start, r.end)),
            other => Err(other),
        };
        assert_eq!(r("bytes=0-9"), Ok((0, Some(9))));
        assert_eq!(r("bytes=90-"), Ok((90, Some(99))));
        assert_eq!(r("bytes=-10"), Ok((90, Some(99))));
        assert_eq!(r("bytes=-1000"), Ok((0, Some(99))));
        assert_eq!(r("bytes=95-200"), Ok((95, Some(99))));
        assert_eq!(r("bytes=0-99999999999999999999"), Ok((0, Some(99))));
        assert_eq!(r("Bytes = 1-2"), Ok((1, Some(2))));
        assert_eq!(r("bytes=100-"), Err(Unsatisfiable));
        assert_eq!(r("bytes=99999999999999999999-"), Err(Unsatisfiable));
        assert_eq!(r("bytes=-0"), Err(Unsatisfiable));
        for ignored in [
            "bytes=5-1",
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=+1-2",
            "bytes=-",
            "bytes=a-b",
            "bytes 0-1",
        ] {
            assert_eq!(r(ignored), Err(Whole), "{ignored}");
        }
        assert_eq!(parse_range("bytes=-5", 0), Unsatisfiable);
    }

    proptest::proptest! {
        /// Whatever the header, a range served lies within the blob.
        #[test]
        fn served_ranges_lie_within_the_blob(spec in "\\PC{0,40}", size in 0u64..1 << 40) {
            if let RangeRequest::Part(r) = parse_range(&spec, size) {
                let end = r.end.expect("always bounded");
                proptest::prop_assert!(r.start <= end && end < size);
            }
        }

        /// Well-formed single ranges are served as the RFC says.
        #[test]
        fn well_formed_ranges(a in 0u64..2000, len in 0u64..2000, size in 1u64..1000) {
            let spec = format!("bytes={a}-{}", a + len);
            match parse_range(&spec, size) {
                RangeRequest::Part(r) => {
                    proptest::prop_assert_eq!(r.start, a);
                    proptest::prop_assert_eq!(r.end, Some((a + len).min(size - 1)));
                }
                RangeRequest::Unsatisfiable => proptest::prop_assert!(a >= size),
                RangeRequest::Whole => proptest::prop_assert!(false, "{spec} ignored"),
            }
        }
    }
}
