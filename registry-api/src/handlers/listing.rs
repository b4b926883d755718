//! `GET` of `/v2/<name>/tags/list`, `/v2/_catalog` and `/v2/<name>/referrers/<digest>`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use index_format::documents::{Catalog, TagList, to_bytes};
use index_format::{Digest, ManifestMediaType, RepoName};

use super::{OCI_FILTERS_APPLIED, Params, hv, location};
use crate::error::{ApiError, ApiResult, OciCode};
use crate::route::Route;
use crate::state::AppState;

/// `n` as a count: absent means "all", anything but a non-negative integer is an error.
fn page_size(params: &Params) -> ApiResult<Option<usize>> {
    params
        .n
        .as_deref()
        .map(|n| {
            n.parse::<usize>().map_err(|_| {
                ApiError::with_status(
                    OciCode::Unsupported,
                    StatusCode::BAD_REQUEST,
                    format!("n={n:?} is not a count"),
                )
            })
        })
        .transpose()
}

/// Takes the page after `last` of `n` items from a sorted list; `Some(last item)` when
/// more follow, for the `Link` header.
fn page<T: Clone + Ord>(items: &[T], last: Option<&T>, n: Option<usize>) -> (Vec<T>, Option<T>) {
    let start = last.map_or(0, |l| items.partition_point(|x| x <= l));
    let rest = &items[start..];
    let take = n.unwrap_or(rest.len()).min(rest.len());
    let page = rest[..take].to_vec();
    let more = (take < rest.len() && take > 0).then(|| rest[take - 1].clone());
    (page, more)
}

fn unknown_repo(repo: &RepoName) -> ApiError {
    ApiError::new(
        OciCode::NameUnknown,
        format!("repository {repo} not known to registry"),
    )
}

/// A document serialized for a response body.
fn json<T: serde::Serialize>(doc: &T) -> ApiResult<Vec<u8>> {
    to_bytes(doc).map_err(|e| ApiError::Internal(e.into()))
}

/// The `Link` header to the next page: `route`'s path with `n` and `last`.
fn next_link(route: &Route, n: Option<usize>, last: &str) -> ApiResult<String> {
    let path = location(route)?;
    let path = path.to_str().map_err(|e| ApiError::Internal(e.into()))?;
    Ok(format!(
        "<{path}?n={}&last={last}>; rel=\"next\"",
        n.unwrap_or(0)
    ))
}

fn json_response(body: impl Into<axum::body::Body>, link: Option<String>) -> ApiResult<Response> {
    let body: axum::body::Body = body.into();
    let mut r = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            // As a static host serves the same lists: keep, but revalidate every time.
            (header::CACHE_CONTROL, index_format::layout::REVALIDATE),
        ],
        body,
    )
        .into_response();
    if let Some(link) = link {
        r.headers_mut().insert(header::LINK, hv(link)?);
    }
    Ok(r)
}

pub async fn tags(app: AppState, repo: RepoName, params: Params) -> ApiResult<Response> {
    let n = page_size(&params)?;
    if n.is_none() && params.last.is_none() {
        // The whole list: the stored file is the response, byte for byte.
        let body = app
            .index
            .tags_document(&repo)
            .await?
            .ok_or_else(|| unknown_repo(&repo))?;
        return json_response(body, None);
    }
    let list = app
        .index
        .tags(&repo)
        .await?
        .ok_or_else(|| unknown_repo(&repo))?;
    let last = params
        .last
        .as_deref()
        .map(index_format::Tag::new)
        .transpose()?;
    let (tags, more) = page(&list.tags, last.as_ref(), n);
    let route = Route::Tags(repo.clone());
    let link = more.map(|t| next_link(&route, n, t.as_str())).transpose()?;
    json_response(json(&TagList { name: repo, tags })?, link)
}

pub async fn catalog(app: AppState, params: Params) -> ApiResult<Response> {
    let n = page_size(&params)?;
    let catalog = app.index.catalog().await?;
    let last = params.last.as_deref().map(RepoName::new).transpose()?;
    let (repositories, more) = page(&catalog.repositories, last.as_ref(), n);
    let link = more
        .map(|r| next_link(&Route::Catalog, n, r.as_str()))
        .transpose()?;
    json_response(json(&Catalog { repositories })?, link)
}

pub async fn referrers(
    app: AppState,
    repo: RepoName,
    subject: Digest,
    params: Params,
) -> ApiResult<Response> {
    let index = app.index.referrers(&repo, &subject).await?;
    let (index, filtered) = match params.artifact_type.as_deref() {
        Some(t) if !t.is_empty() => (index.filtered(t), true),
        _ => (index, false),
    };
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, ManifestMediaType::OciIndex.as_str())],
        json(&index)?,
    )
        .into_response();
    if filtered {
        r.headers_mut()
            .insert(OCI_FILTERS_APPLIED, hv("artifactType")?);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging() {
        let items = [1, 2, 3, 4, 5];
        assert_eq!(page(&items, None, None), (vec![1, 2, 3, 4, 5], None));
        assert_eq!(page(&items, None, Some(2)), (vec![1, 2], Some(2)));
        assert_eq!(page(&items, Some(&2), Some(2)), (vec![3, 4], Some(4)));
        assert_eq!(page(&items, Some(&4), Some(2)), (vec![5], None));
        assert_eq!(page(&items, None, Some(0)), (vec![], None));
        assert_eq!(page(&items, Some(&9), None), (vec![], None));
        assert_eq!(page(&items, None, Some(5)), (vec![1, 2, 3, 4, 5], None));
    }
}
