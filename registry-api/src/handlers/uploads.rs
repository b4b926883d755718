//! Blob uploads: `POST` (session, monolithic, mount), `PATCH`, `PUT`, `GET`, `DELETE` of
//! `/v2/<name>/blobs/uploads/...`.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use blob_gateway::{ClosingBody, UploadState};
use index_format::{Digest, RepoName, UploadId};

use super::{
    DOCKER_CONTENT_DIGEST, DOCKER_UPLOAD_UUID, Params, body_stream, content_length, hv, location,
};
use crate::auth::Permit;
use crate::auth::rules::Action;
use crate::error::{ApiError, ApiResult, OciCode};
use crate::route::Route;
use crate::state::AppState;

/// `202` (or `204`) with where to continue the session and what it holds.
fn session_response(
    status: StatusCode,
    repo: &RepoName,
    id: &UploadId,
    offset: u64,
) -> ApiResult<Response> {
    // As CNCF distribution does, an empty session reports `0-0`.
    let end = offset.saturating_sub(1);
    let route = Route::Upload(repo.clone(), id.clone());
    Ok((
        status,
        [
            (header::LOCATION, location(&route)?),
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
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
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
    session_response(StatusCode::ACCEPTED, &repo, &id, state.offset())
}

/// Most repositories an automatic mount (no `from`) looks in: each costs a read.
const MOUNT_LOOKUPS: usize = 64;

/// A repository the caller may pull that holds `digest`, for a mount without `from`.
/// There is no reverse index from blob to repositories: the repositories the caller's
/// token names for pull are tried first (clients ask for the source's scope), then the
/// catalog's that the caller may pull, up to [`MOUNT_LOOKUPS`] reads in all.
async fn mount_source(
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

/// Parses `Content-Range: <start>-<end>` (the spec's form; a `bytes ` prefix is tolerated).
fn content_range(headers: &HeaderMap) -> ApiResult<Option<(u64, u64)>> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::with_status(
            OciCode::BlobUploadInvalid,
            StatusCode::RANGE_NOT_SATISFIABLE,
            "malformed Content-Range",
        )
    };
    let s = value.to_str().map_err(|_| bad())?;
    let s = s
        .trim()
        .trim_start_matches("bytes ")
        .trim_start_matches("bytes=");
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if b < a {
        return Err(bad());
    }
    Ok(Some((a, b)))
}

/// The chunk's length: what `Content-Range` covers, which `Content-Length` must agree with.
fn chunk_size(range: Option<(u64, u64)>, length: Option<u64>) -> ApiResult<Option<u64>> {
    let Some((start, end)) = range else {
        return Ok(length);
    };
    let len = end - start + 1;
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
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let range = content_range(headers)?;
    let size = chunk_size(range, content_length(headers))?;
    let state = app
        .uploads
        .append(&repo, &id, range.map(|r| r.0), body_stream(body), size)
        .await?;
    session_response(StatusCode::ACCEPTED, &repo, &id, state.offset())
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
    let published = app.uploads.finish(&repo, &id, Some(last), &digest).await?;
    let blob = app.index.link_upload(published).await?;
    created(&repo, &blob.digest)
}

pub async fn status(app: AppState, repo: RepoName, id: UploadId) -> ApiResult<Response> {
    let (state, _): (UploadState, _) = app.uploads.status(&repo, &id).await?;
    session_response(StatusCode::NO_CONTENT, &repo, &id, state.offset())
}

pub async fn cancel(app: AppState, repo: RepoName, id: UploadId) -> ApiResult<Response> {
    app.uploads.cancel(&repo, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
