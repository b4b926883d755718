//! `GET`, `HEAD`, `PUT` and `DELETE` of `/v2/<name>/manifests/<reference>`.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use index_format::layout;
use index_format::manifest::ParsedManifest;
use index_format::{DigestAlgorithm, ManifestMediaType, Reference, RepoName};
use serde_json::json;

use super::{DOCKER_CONTENT_DIGEST, OCI_SUBJECT, content_length, hv, hv_owned, location};
use crate::error::{ApiError, ApiResult, BodyError, OciCode};
use crate::index::{MAX_MANIFEST_BYTES, PushedManifest, digest_of};
use crate::route::Route;
use crate::state::AppState;

fn unknown(repo: &RepoName, reference: &Reference) -> ApiError {
    ApiError::new(
        OciCode::ManifestUnknown,
        format!("manifest {reference} unknown to {repo}"),
    )
}

/// A request to a manifest path whose reference is no valid tag or digest: pushing there
/// is invalid; anything else finds nothing (distribution's router, which never matches such
/// a path, answers 404 too).
pub fn invalid_reference(method: &Method, repo: &RepoName, why: &str) -> ApiError {
    if method == Method::PUT {
        ApiError::new(
            OciCode::ManifestInvalid,
            format!("invalid reference: {why}"),
        )
    } else if method == Method::GET || method == Method::HEAD || method == Method::DELETE {
        ApiError::new(
            OciCode::ManifestUnknown,
            format!("no manifest in {repo} can have this reference: {why}"),
        )
    } else {
        super::method_not_allowed(method)
    }
}

/// Whether a client's `Accept` allows `media_type`. No header, wildcards, or a header naming
/// no manifest type at all accept anything; otherwise the type must be listed, so an old
/// client that only knows Docker manifests is not handed an OCI index it cannot read.
fn accepts(headers: &HeaderMap, media_type: ManifestMediaType) -> bool {
    let listed = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or("").trim());
    let mut names_manifests = false;
    for t in listed {
        if t.eq_ignore_ascii_case(media_type.as_str()) || t == "*/*" || t == "application/*" {
            return true;
        }
        names_manifests |= ManifestMediaType::parse(t).is_ok();
    }
    !names_manifests
}

/// The header values of every stored media type and reference kind, checked at compile
/// time: `from_static` outside a const context checks its bytes on every request.
fn content_type(t: ManifestMediaType) -> HeaderValue {
    const fn hv(t: ManifestMediaType) -> HeaderValue {
        HeaderValue::from_static(t.as_str())
    }
    const OCI_MANIFEST: HeaderValue = hv(ManifestMediaType::OciManifest);
    const OCI_INDEX: HeaderValue = hv(ManifestMediaType::OciIndex);
    const DOCKER_MANIFEST: HeaderValue = hv(ManifestMediaType::DockerManifest);
    const DOCKER_LIST: HeaderValue = hv(ManifestMediaType::DockerManifestList);
    match t {
        ManifestMediaType::OciManifest => OCI_MANIFEST,
        ManifestMediaType::OciIndex => OCI_INDEX,
        ManifestMediaType::DockerManifest => DOCKER_MANIFEST,
        ManifestMediaType::DockerManifestList => DOCKER_LIST,
    }
}

fn cache_control(reference: &Reference) -> HeaderValue {
    const BY_DIGEST: HeaderValue = HeaderValue::from_static(layout::IMMUTABLE);
    const BY_TAG: HeaderValue = HeaderValue::from_static(layout::REVALIDATE);
    match reference {
        Reference::Digest(_) => BY_DIGEST,
        Reference::Tag(_) => BY_TAG,
    }
}

pub async fn get(
    app: AppState,
    repo: RepoName,
    reference: Reference,
    headers: &HeaderMap,
    with_body: bool,
) -> ApiResult<Response> {
    let cached = app.index.manifest(&repo, &reference).await?;
    let manifest = match &app.mirror {
        Some(m) => m
            .manifest(&app.index, &repo, &reference, cached)
            .await
            .map_err(|e| e.into_api(OciCode::ManifestUnknown, &format!("{repo}:{reference}")))?,
        None => cached,
    }
    .ok_or_else(|| unknown(&repo, &reference))?;
    if !accepts(headers, manifest.media_type) {
        return Err(unknown(&repo, &reference).detail(json!({
            "reason": format!(
                "stored as {}, which the Accept header does not list",
                manifest.media_type.as_str()
            )
        })));
    }
    // Built by hand: `format!` costs a formatting pass on every pull.
    let digest = manifest.digest.as_str();
    let mut etag = String::with_capacity(digest.len() + 2);
    for piece in ["\"", digest, "\""] {
        etag.push_str(piece);
    }
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let status = if not_modified {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let head = [
        (header::CONTENT_TYPE, content_type(manifest.media_type)),
        (
            header::CONTENT_LENGTH,
            HeaderValue::from(manifest.bytes.len()),
        ),
        (DOCKER_CONTENT_DIGEST, hv_owned(digest.to_owned())?),
        (header::ETAG, hv_owned(etag)?),
        (header::CACHE_CONTROL, cache_control(&reference)),
    ];
    if with_body && !not_modified {
        Ok((status, head, Body::from(manifest.bytes)).into_response())
    } else {
        Ok((status, head).into_response())
    }
}

pub async fn put(
    app: AppState,
    repo: RepoName,
    reference: Reference,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let bytes = read_manifest(headers, body).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let (tag, digest) = match &reference {
        Reference::Digest(d) => {
            let computed = digest_of(&bytes, d.algorithm());
            if &computed != d {
                return Err(ApiError::new(
                    OciCode::DigestInvalid,
                    format!("manifest digest is {computed}, not {d}"),
                ));
            }
            (None, computed)
        }
        Reference::Tag(t) => (Some(t.clone()), digest_of(&bytes, DigestAlgorithm::Sha256)),
    };
    let parsed = ParsedManifest::parse(&bytes, content_type)
        .map_err(|e| ApiError::new(OciCode::ManifestInvalid, e.to_string()))?;
    let push = PushedManifest {
        repo,
        tag,
        digest: digest.clone(),
        bytes,
        parsed,
    };
    app.index.push_manifest(&push).await?;
    let route = Route::Manifest(push.repo.clone(), Reference::Digest(digest.clone()));
    let mut response = (
        StatusCode::CREATED,
        [
            (header::LOCATION, location(&route)?),
            (DOCKER_CONTENT_DIGEST, hv(digest.as_str())?),
            (header::CONTENT_LENGTH, hv("0")?),
        ],
    )
        .into_response();
    if let Some(subject) = &push.parsed.subject {
        response
            .headers_mut()
            .insert(OCI_SUBJECT, hv(subject.digest.as_str())?);
    }
    Ok(response)
}

/// How far over the limit a declared manifest body is still read (and dropped) before the
/// `413`.
const DRAIN_BYTES: u64 = 4 * MAX_MANIFEST_BYTES as u64;

/// The manifest body, refused with `413` before a byte is read when its `Content-Length`
/// is over the limit, and once past the limit when it does not say.
async fn read_manifest(headers: &HeaderMap, body: Body) -> ApiResult<bytes::Bytes> {
    let too_large = || {
        ApiError::with_status(
            OciCode::ManifestInvalid,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("manifest exceeds the {MAX_MANIFEST_BYTES}-byte limit"),
        )
    };
    if let Some(n) = content_length(headers).filter(|&n| n > MAX_MANIFEST_BYTES as u64) {
        // A body a little over the limit is read and dropped, so that a client that sends
        // it whole before reading the answer sees the 413 rather than a reset; one far over
        // is refused at once, and its connection closed.
        if n <= DRAIN_BYTES {
            let mut stream = body.into_data_stream();
            while let Some(Ok(_)) = stream.next().await {}
        }
        return Err(too_large());
    }
    axum::body::to_bytes(body, MAX_MANIFEST_BYTES)
        .await
        .map_err(|e| {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over {
                too_large()
            } else {
                BodyError::new(e).to_api_error(OciCode::ManifestInvalid)
            }
        })
}

pub async fn delete(app: AppState, repo: RepoName, reference: Reference) -> ApiResult<Response> {
    let found = match &reference {
        Reference::Digest(d) => app.index.delete_manifest(&repo, d).await?,
        Reference::Tag(t) => app.index.delete_tag(&repo, t).await?,
    };
    if !found {
        return Err(unknown(&repo, &reference));
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, hv(v).expect("valid"));
        h
    }

    #[test]
    fn accept_negotiation() {
        let oci_index = ManifestMediaType::OciIndex;
        assert!(accepts(&HeaderMap::new(), oci_index));
        assert!(accepts(&with_accept("*/*"), oci_index));
        assert!(accepts(&with_accept("application/json"), oci_index));
        let docker_only = "application/vnd.docker.distribution.manifest.v2+json";
        assert!(!accepts(&with_accept(docker_only), oci_index));
        assert!(accepts(
            &with_accept(&format!("{docker_only}, {}", oci_index.as_str())),
            oci_index
        ));
        assert!(accepts(
            &with_accept(&format!("{docker_only};q=0.5, */*")),
            oci_index
        ));
    }
}
