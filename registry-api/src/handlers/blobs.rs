//! `GET`, `HEAD` and `DELETE` of `/v2/<name>/blobs/<digest>`.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use blob_gateway::{Blobs, ByteRange, Download, StoreError, Via};
use index_format::documents::BlobLink;
use index_format::{Digest, RepoName};

use super::{DOCKER_CONTENT_DIGEST, hv};
use crate::config::BlobDelivery;
use crate::error::{ApiError, ApiResult, OciCode};
use crate::state::AppState;

/// The repository's link to the blob, or `BLOB_UNKNOWN`: a blob pushed to another
/// repository is not served here until pushed or mounted.
async fn linked(app: &AppState, repo: &RepoName, digest: &Digest) -> ApiResult<BlobLink> {
    app.index
        .blob(repo, digest)
        .await?
        .ok_or_else(|| blob_unknown(repo, digest))
}

fn blob_unknown(repo: &RepoName, digest: &Digest) -> ApiError {
    ApiError::new(
        OciCode::BlobUnknown,
        format!("blob {digest} unknown to {repo}"),
    )
}

pub async fn head(app: AppState, repo: RepoName, digest: Digest) -> ApiResult<Response> {
    let link = linked(&app, &repo, &digest).await?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_LENGTH, hv(link.size.to_string())?),
            (header::CONTENT_TYPE, hv("application/octet-stream")?),
            (DOCKER_CONTENT_DIGEST, hv(digest.as_str())?),
            (header::ETAG, hv(format!("\"{digest}\""))?),
            (header::ACCEPT_RANGES, hv("bytes")?),
        ],
    )
        .into_response())
}

pub async fn get(
    app: AppState,
    repo: RepoName,
    digest: Digest,
    headers: &HeaderMap,
    public: bool,
) -> ApiResult<Response> {
    let link = linked(&app, &repo, &digest).await?;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(spec) => match parse_range(spec, link.size) {
            Some(r) => Some(r),
            None => return unsatisfiable(link.size),
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

fn unsatisfiable(size: u64) -> ApiResult<Response> {
    Ok((
        StatusCode::RANGE_NOT_SATISFIABLE,
        [(header::CONTENT_RANGE, hv(format!("bytes */{size}"))?)],
    )
        .into_response())
}

/// Parses a single `bytes=` range (RFC 9110 §14.1.2) against `size`. Multiple ranges are
/// answered with the first, which the RFC allows.
pub fn parse_range(spec: &str, size: u64) -> Option<ByteRange> {
    let ranges = spec.trim().strip_prefix("bytes=")?;
    let first = ranges.split(',').next()?.trim();
    let (start, end) = first.split_once('-')?;
    if start.is_empty() {
        // Suffix range: the last N bytes.
        let n: u64 = end.parse().ok()?;
        if n == 0 || size == 0 {
            return None;
        }
        return Some(ByteRange {
            start: size.saturating_sub(n),
            end: Some(size - 1),
        });
    }
    let start: u64 = start.parse().ok()?;
    let end = if end.is_empty() {
        None
    } else {
        Some(end.parse::<u64>().ok()?)
    };
    if start >= size || end.is_some_and(|e| e < start) {
        return None;
    }
    Some(ByteRange { start, end })
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
        let r = |s: &str| parse_range(s, 100).map(|r| (r.start, r.end));
        assert_eq!(r("bytes=0-9"), Some((0, Some(9))));
        assert_eq!(r("bytes=90-"), Some((90, None)));
        assert_eq!(r("bytes=-10"), Some((90, Some(99))));
        assert_eq!(r("bytes=95-200"), Some((95, Some(200))));
        assert_eq!(r("bytes=100-"), None);
        assert_eq!(r("bytes=5-1"), None);
        assert_eq!(r("items=0-1"), None);
        assert_eq!(r("bytes=0-1,5-6"), Some((0, Some(1))));
    }
}
