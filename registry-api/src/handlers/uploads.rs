//! Blob uploads: `POST` (session, monolithic, mount), `PATCH`, `PUT`, `GET`, `DELETE` of
//! `/v2/<name>/blobs/uploads/...`.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use blob_gateway::{ClosingBody, UploadState};
use index_format::{Digest, RepoName, UploadId};

use super::{
    DOCKER_CONTENT_DIGEST, DOCKER_UPLOAD_UUID, Params, body_stream, content_length, hv, location,
};
use crate::auth::Permit;
use crate::auth::caller::peer_ip;
use crate::auth::rules::Action;
use crate::error::{ApiError, ApiResult, OciCode};
use crate::route::Route;
use crate::state::AppState;
use crate::upload_url::Locator;

/// `202` (or `204`) with where to continue the session and what it holds.
fn session_response(
    status: StatusCode,
    locator: &Locator,
    repo: &RepoName,
    id: &UploadId,
    offset: u64,
) -> ApiResult<Response> {
    // As CNCF distribution does, an empty session reports `0-0`.
    let end = offset.saturating_sub(1);
    Ok((
        status,
        [
            (header::LOCATION, locator.session(repo, id)?),
            (header::RANGE, hv(format!("0-{end}"))?),
            (DOCKER_UPLOAD_UUID, hv(id.as_str())?),
            (header::CONTENT_LENGTH, hv("0")?),
        ],
    )
        .into_response())
}

/// `201` for a blob now in the repository.
fn created(repo: &RepoName, digest: &Digest) -> ApiResult<Response> {
    let route = Route::Blob(repo.clone(), digest.clone());
    Ok((
        StatusCode::CREATED,
        [
            (header::LOCATION, location(&route)?),
            (DOCKER_CONTENT_DIGEST, hv(digest.as_str())?),
            (header::CONTENT_LENGTH, hv("0")?),
        ],
    )
        .into_response())
}

fn digest_param(params: &Params) -> ApiResult<Digest> {
    let raw = params.digest.as_deref().ok_or_else(|| {
        ApiError::new(
            OciCode::DigestInvalid,
            "the digest query parameter is required",
        )
    })?;
    Ok(Digest::new(raw)?)
}

pub async fn start(
    app: AppState,
    repo: RepoName,
    params: Params,
    permit: &Permit<'_>,
    locator: &Locator,
    request: &Parts,
    body: Body,
) -> ApiResult<Response> {
    let headers = &request.headers;
    if let Some(mount) = &params.mount {
        let digest = Digest::new(mount)?;
        let from = match params.from.as_deref() {
            Some(f) => RepoName::new(f).ok(),
            None => mount_source(&app, permit, &digest).await?,
        };
        // A source the caller may not pull is treated as one without the blob: a plain
        // session, so no one learns of blobs they cannot read.
        let from = from.filter(|f| permit.actions(f).has(Action::Pull));
        if let Some(response) = try_mount(&app, &repo, &digest, from.as_ref()).await? {
            return Ok(response);
        }
    }
    // Held for the request; a session that outlives it keeps it until closed.
    let slot = app.sessions.reserve(peer_ip(request))?;
    if params.digest.is_some() {
        // Monolithic: the whole blob in this request.
        let digest = digest_param(&params)?;
        let (id, _) = app.uploads.start(&repo).await?;
        let last = ClosingBody {
            body: body_stream(body),
            size: content_length(headers),
            start: None,
        };
        let published = app.uploads.finish(&repo, &id, Some(last), &digest).await?;
        let blob = app.index.link_upload(published).await?;
        return created(&repo, &blob.digest);
    }
    let (id, state) = app.uploads.start(&repo).await?;
    slot.opened(&id);
    session_response(StatusCode::ACCEPTED, locator, &repo, &id, state.offset())
}

/// Most repositories an automatic mount (no `from`) looks in: each costs a read.
const MOUNT_LOOKUPS: usize = 64;

/// A repository the caller may pull that holds `digest`, for a mount without `from`.
/// There is no reverse index from blob to repositories: the repositories the caller's
/// token names for pull are tried first (clients ask for the source's scope), then the
/// catalog's that the caller may pull, up to [`MOUNT_LOOKUPS`] reads in all.
pub(crate) async fn mount_source(
    app: &AppState,
    permit: &Permit<'_>,
    digest: &Digest,
) -> ApiResult<Option<RepoName>> {
    let named = permit.token_repositories();
    let catalog = app.index.catalog().await?.repositories;
    let candidates = named
        .iter()
        .filter_map(|n| RepoName::new(n).ok())
        .chain(catalog)
        .filter(|r| permit.actions(r).has(Action::Pull))
        .take(MOUNT_LOOKUPS);
    for repo in candidates {
        if app.index.blob(&repo, digest).await?.is_some() {
            return Ok(Some(repo));
        }
    }
    Ok(None)
}

/// Gives the session's slot back once it has ended, or turned out to be gone.
fn ended<T>(app: &AppState, id: &UploadId, result: ApiResult<T>) -> ApiResult<T> {
    let gone = matches!(
        &result,
        Err(ApiError::Oci {
            code: OciCode::BlobUploadUnknown,
            ..
        })
    );
    if result.is_ok() || gone {
        app.sessions.close(id);
    }
    result
}

/// Links a blob from `from` into `repo`; `None` (start a session instead) when `from`
/// cannot serve it.
async fn try_mount(
    app: &AppState,
    repo: &RepoName,
    digest: &Digest,
    from: Option<&RepoName>,
) -> ApiResult<Option<Response>> {
    let Some(from) = from else {
        return Ok(None);
    };
    match app.index.mount(from, repo, digest).await? {
        Some(_) => created(repo, digest).map(Some),
        None => Ok(None),
    }
}

/// The request's `Content-Range`, if it sent one.
fn content_range(headers: &HeaderMap) -> ApiResult<Option<(u64, u64)>> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(parse_content_range)
        .map(Some)
        .ok_or_else(|| {
            ApiError::with_status(
                OciCode::BlobUploadInvalid,
                StatusCode::RANGE_NOT_SATISFIABLE,
                "malformed Content-Range",
            )
        })
}

/// Parses a `Content-Range` value, `<start>-<end>` (the spec's form; a `bytes ` prefix
/// and a `/<size>` suffix are tolerated): both inclusive, `start <= end`.
pub fn parse_content_range(s: &str) -> Option<(u64, u64)> {
    let s = s
        .trim()
        .trim_start_matches("bytes ")
        .trim_start_matches("bytes=");
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-')?;
    let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b).then_some((a, b))
}

/// The chunk's length: what `Content-Range` covers, which `Content-Length` must agree with.
fn chunk_size(range: Option<(u64, u64)>, length: Option<u64>) -> ApiResult<Option<u64>> {
    let Some((start, end)) = range else {
        return Ok(length);
    };
    // `0-18446744073709551615` covers one byte more than a u64 counts.
    let len = (end - start).checked_add(1).ok_or_else(|| {
        ApiError::with_status(
            OciCode::BlobUploadInvalid,
            StatusCode::RANGE_NOT_SATISFIABLE,
            "Content-Range covers more bytes than can be stored",
        )
    })?;
    match length {
        Some(l) if l != len => Err(ApiError::new(
            OciCode::SizeInvalid,
            format!("Content-Range covers {len} bytes but Content-Length is {l}"),
        )),
        _ => Ok(Some(len)),
    }
}

pub async fn patch(
    app: AppState,
    repo: RepoName,
    id: UploadId,
    locator: &Locator,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let range = content_range(headers)?;
    let size = chunk_size(range, content_length(headers))?;
    let state = app
        .uploads
        .append(&repo, &id, range.map(|r| r.0), body_stream(body), size)
        .await?;
    session_response(StatusCode::ACCEPTED, locator, &repo, &id, state.offset())
}

pub async fn put(
    app: AppState,
    repo: RepoName,
    id: UploadId,
    params: Params,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let digest = digest_param(&params)?;
    let range = content_range(headers)?;
    let last = ClosingBody {
        body: body_stream(body),
        size: chunk_size(range, content_length(headers))?,
        start: range.map(|r| r.0),
    };
    let published = app.uploads.finish(&repo, &id, Some(last), &digest).await;
    let published = ended(&app, &id, published.map_err(ApiError::from))?;
    let blob = app.index.link_upload(published).await?;
    created(&repo, &blob.digest)
}

pub async fn status(
    app: AppState,
    repo: RepoName,
    id: UploadId,
    locator: &Locator,
) -> ApiResult<Response> {
    let (state, _): (UploadState, _) = app.uploads.status(&repo, &id).await?;
    session_response(StatusCode::NO_CONTENT, locator, &repo, &id, state.offset())
}

pub async fn cancel(app: AppState, repo: RepoName, id: UploadId) -> ApiResult<Response> {
    let cancelled = app.uploads.cancel(&repo, &id).await;
    ended(&app, &id, cancelled.map_err(ApiError::from))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    use super::*;

    fn with_range(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(header::CONTENT_RANGE, v);
        }
        h
    }

    #[test]
    fn content_ranges() {
        let r = |s: &str| content_range(&with_range(s)).ok().flatten();
        assert_eq!(r("0-9"), Some((0, 9)));
        assert_eq!(r("bytes 10-19/100"), Some((10, 19)));
        assert_eq!(r("5-4"), None);
        assert_eq!(r("-4"), None);
        assert_eq!(r("1-99999999999999999999"), None);
        let whole = Some((0, u64::MAX));
        assert!(chunk_size(whole, None).is_err(), "one byte past u64");
    }

    proptest! {
        /// Any header either fails or gives a range whose length the chunk can be checked
        /// against, without panicking.
        #[test]
        fn content_range_never_panics(s in "\\PC{0,48}", length in proptest::option::of(any::<u64>())) {
            if let Ok(Some((a, b))) = content_range(&with_range(&s)) {
                prop_assert!(a <= b);
                if let Ok(Some(n)) = chunk_size(Some((a, b)), length) {
                    prop_assert_eq!(n - 1, b - a);
                }
            }
        }

        #[test]
        fn content_range_round_trips(a in any::<u64>(), len in 0u64..1 << 40) {
            let b = a.saturating_add(len);
            prop_assert_eq!(content_range(&with_range(&format!("{a}-{b}"))).ok().flatten(), Some((a, b)));
        }
    }
}
