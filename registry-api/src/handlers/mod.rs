//! The HTTP handlers. [`dispatch`] parses the path once into a [`Route`] and matches it with
//! the method exhaustively; each handler is a few calls into the index or `blob-gateway`.

mod blobs;
mod listing;
mod manifests;
mod uploads;

pub use blobs::{RangeRequest, parse_range};
pub(crate) use uploads::mount_source;
pub use uploads::parse_content_range;

use std::io;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use blob_gateway::ByteStream;
use futures::TryStreamExt;

use crate::auth::rules::Action;
use crate::auth::{self, Caller, Need, Permit};
use crate::error::{ApiError, ApiResult, BodyError, OciCode};
use crate::index::IndexError;
use crate::route::Route;
use crate::state::AppState;
use crate::upload_url::{Locator, Presented};

pub const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
pub const DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
pub const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
pub const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

/// Every query parameter any endpoint reads.
#[derive(Debug, Default)]
pub struct Params {
    pub digest: Option<String>,
    pub mount: Option<String>,
    pub from: Option<String>,
    pub n: Option<String>,
    pub last: Option<String>,
    pub artifact_type: Option<String>,
    /// The registry the client means (containerd's mirror requests): see `mirror/`.
    pub ns: Option<String>,
    /// An upload session's capability (`upload_url.rs`).
    pub cap: Option<String>,
}

impl Params {
    /// Parses a query string. A parameter given twice is refused, with the code of what it
    /// names: taking either value would let the client and the server disagree on which.
    pub fn parse(query: &str) -> ApiResult<Self> {
        let mut p = Self::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let (slot, code) = match &*key {
                "digest" => (&mut p.digest, OciCode::DigestInvalid),
                "mount" => (&mut p.mount, OciCode::DigestInvalid),
                "from" => (&mut p.from, OciCode::NameInvalid),
                "n" => (&mut p.n, OciCode::Unsupported),
                "last" => (&mut p.last, OciCode::Unsupported),
                "artifactType" => (&mut p.artifact_type, OciCode::Unsupported),
                "ns" => (&mut p.ns, OciCode::NameInvalid),
                crate::upload_url::PARAM => (&mut p.cap, OciCode::BlobUploadInvalid),
                _ => continue,
            };
            if slot.is_some() {
                return Err(ApiError::with_status(
                    code,
                    StatusCode::BAD_REQUEST,
                    format!("query parameter {key:?} given more than once"),
                ));
            }
            *slot = Some(value.into_owned());
        }
        Ok(p)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.uri.query().map_or(Ok(Self::default()), Self::parse)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Route {
    type Rejection = ApiError;

    /// Read from the URI itself (not axum's `Path`, which copies and deserializes it).
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let rest = parts
            .uri
            .path()
            .strip_prefix("/v2/")
            .ok_or_else(not_found)?;
        if !rest.contains('%') {
            return Route::parse(rest)?.ok_or_else(not_found);
        }
        Route::parse(&decode_path(rest))?.ok_or_else(not_found)
    }
}

/// Decodes each `/`-separated segment on its own, as any HTTP server would (a client may
/// send a digest's colon as `%3A`). A segment whose decoding holds a `/` (from `%2F`) or
/// is not UTF-8 is kept as sent: its `%` then fails the grammar of whatever the segment
/// is, so a tag, digest or upload id gets its own error rather than shifting the path's
/// shape into a 404.
pub fn decode_path(rest: &str) -> String {
    let segments: Vec<std::borrow::Cow<'_, str>> = rest
        .split('/')
        .map(
            |raw| match percent_encoding::percent_decode_str(raw).decode_utf8() {
                Ok(d) if !d.contains('/') => d,
                _ => raw.into(),
            },
        )
        .collect();
    segments.join("/")
}

fn not_found() -> ApiError {
    ApiError::with_status(
        OciCode::NameUnknown,
        StatusCode::NOT_FOUND,
        "no such endpoint",
    )
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Store(s) => ApiError::store(s, OciCode::NameUnknown),
            IndexError::MissingReferences { ref missing, .. } => {
                let detail = serde_json::json!({ "missing": missing });
                ApiError::new(OciCode::ManifestBlobUnknown, e.to_string()).detail(detail)
            }
            IndexError::WrongSize {
                ref digest,
                declared,
                stored,
            } => {
                let detail = serde_json::json!({
                    "digest": digest, "declared": declared, "stored": stored
                });
                ApiError::new(OciCode::ManifestInvalid, e.to_string()).detail(detail)
            }
            IndexError::Upload(u) => u.into(),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// `GET /v2/`: the registry speaks the distribution API (to an authenticated caller,
/// when auth is configured: docker sends credentials only after this answers 401).
pub async fn base(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    auth::caller::check(app.auth.as_ref(), &caller, Need::Login, &headers)?;
    Ok(base_response())
}

fn base_response() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{}",
    )
        .into_response()
}

/// What `route` needs of the caller for `method`: the one table of access rules.
fn need<'a>(route: &'a Route, method: &Method) -> Need<'a> {
    use Route as R;
    let read = method == Method::GET || method == Method::HEAD;
    match route {
        R::Base => Need::Login,
        R::Catalog => Need::Catalog,
        R::Tags(repo) | R::Referrers(repo, _) => Need::Repo(repo, Action::Pull),
        R::Manifest(repo, _) | R::Blob(repo, _) if method == Method::DELETE => {
            Need::Repo(repo, Action::Delete)
        }
        R::Manifest(repo, _) | R::Blob(repo, _) | R::InvalidReference(repo, _) if read => {
            Need::Repo(repo, Action::Pull)
        }
        R::Manifest(repo, _)
        | R::Blob(repo, _)
        | R::InvalidReference(repo, _)
        | R::UploadStart(repo)
        | R::Upload(repo, _)
        | R::Extension(Some(repo), _) => Need::Repo(repo, Action::Push),
        R::Extension(None, _) => Need::Login,
    }
}

/// Every `/v2/<rest>` request. Pulls (manifest and blob reads) are awaited in place; the
/// other handlers' futures are boxed, so the future every pull moves around stays small.
pub async fn dispatch(
    State(app): State<AppState>,
    route: Route,
    caller: Result<Caller, ApiError>,
    params: Params,
    request: Request,
) -> ApiResult<Response> {
    use Route as R;
    // Taken apart rather than extracted: the `HeaderMap` extractor clones every header.
    let (parts, body) = request.into_parts();
    let (method, headers) = (&parts.method, &parts.headers);
    // `?ns=` naming an upstream: the request is about the mirrored repository, for the
    // access rules too.
    let (route, namespace) = match &app.mirror {
        Some(m) => m.route_ns(route, params.ns.as_deref())?,
        None => (route, None),
    };
    let presented = app.upload_url.as_deref().map_or(Presented::Absent, |u| {
        u.presented(app.auth.as_deref(), &route, params.cap.as_deref())
    });
    let caller = match (&presented, caller) {
        // The session's URL is its credential: whatever else came along is not looked at.
        (Presented::Valid(_), caller) => caller.unwrap_or(Caller::Anonymous),
        (_, caller) => {
            let caller = caller?;
            let need = need(&route, method);
            auth::caller::check(app.auth.as_ref(), &caller, need, headers).map_err(|e| {
                match &presented {
                    Presented::Invalid(why) => e.with_message(why.to_string()),
                    Presented::Absent | Presented::Valid(_) => e,
                }
            })?;
            caller
        }
    };
    let locator = Locator::new(app.upload_url.clone(), &presented, &caller);
    if let Some(m) = &app.mirror {
        m.check_write(&route, method)?;
    }
    let permit = Permit::new(app.auth.as_ref(), &caller);
    // A repository anonymous callers may not pull: no shared cache may keep its answers.
    let private = route.repo().is_some_and(|r| !permit.is_public(r));
    let response = match route {
        R::Manifest(repo, r) if method == Method::GET => {
            manifests::get(app, repo, r, headers, true).await
        }
        R::Manifest(repo, r) if method == Method::HEAD => {
            manifests::get(app, repo, r, headers, false).await
        }
        R::Blob(repo, d) if method == Method::GET => {
            let public = permit.is_public(&repo);
            blobs::get(app, repo, d, headers, public).await
        }
        R::Blob(repo, d) if method == Method::HEAD => blobs::head(app, repo, d).await,
        R::Base if method == Method::GET || method == Method::HEAD => Ok(base_response()),
        R::Catalog if method == Method::GET => Box::pin(listing::catalog(app, params)).await,
        R::Tags(repo) if method == Method::GET => Box::pin(listing::tags(app, repo, params)).await,
        R::Referrers(repo, d) if method == Method::GET => {
            Box::pin(listing::referrers(app, repo, d, params)).await
        }
        R::Manifest(repo, r) if method == Method::PUT => {
            Box::pin(manifests::put(app, repo, r, headers, body)).await
        }
        R::Manifest(repo, r) if method == Method::DELETE => {
            Box::pin(manifests::delete(app, repo, r)).await
        }
        R::InvalidReference(repo, why) => Err(manifests::invalid_reference(method, &repo, &why)),
        R::Blob(repo, d) if method == Method::DELETE => Box::pin(blobs::delete(app, repo, d)).await,
        R::UploadStart(repo) if method == Method::POST => {
            let start = uploads::start(app, repo, params, &permit, &locator, &parts, body);
            Box::pin(start).await
        }
        R::Upload(repo, id) if method == Method::PATCH => {
            Box::pin(uploads::patch(app, repo, id, &locator, headers, body)).await
        }
        R::Upload(repo, id) if method == Method::PUT => {
            Box::pin(uploads::put(app, repo, id, params, headers, body)).await
        }
        R::Upload(repo, id) if method == Method::GET => {
            Box::pin(uploads::status(app, repo, id, &locator)).await
        }
        R::Upload(repo, id) if method == Method::DELETE => {
            Box::pin(uploads::cancel(app, repo, id)).await
        }
        R::Extension(None, p) if p == "_oci/ext/discover" && method == Method::GET => {
            Ok(crate::direct::discover(&app))
        }
        R::Extension(Some(repo), p) => {
            Box::pin(crate::direct::dispatch(
                app, repo, &p, method, &permit, body,
            ))
            .await
        }
        R::Base
        | R::Catalog
        | R::Tags(_)
        | R::Referrers(..)
        | R::Manifest(..)
        | R::Blob(..)
        | R::UploadStart(_)
        | R::Upload(..) => Err(method_not_allowed(method)),
        R::Extension(None, _) => Err(not_found()),
    };
    let response = match namespace {
        Some(ns) => response.and_then(|mut r| {
            r.headers_mut()
                .insert(crate::mirror::OCI_NAMESPACE, hv_owned(ns)?);
            Ok(r)
        }),
        None => response,
    };
    if private {
        response.map(private_cache)
    } else {
        response
    }
}

/// Turns `Cache-Control: public, …` into `private, …` (RFC 9111 lets shared caches store
/// a `public` answer to an authorised request).
fn private_cache(mut response: Response) -> Response {
    let Some(value) = response.headers().get(header::CACHE_CONTROL) else {
        return response;
    };
    let rest = value.to_str().ok().and_then(|v| v.strip_prefix("public"));
    if let Some(Ok(private)) = rest.map(|r| HeaderValue::from_str(&format!("private{r}"))) {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, private);
    }
    response
}

/// `405 UNSUPPORTED`: the path exists, the method does not.
fn method_not_allowed(method: &Method) -> ApiError {
    ApiError::new(
        OciCode::Unsupported,
        format!("{method} is not supported here"),
    )
}

/// A request body as a byte stream. Its errors carry a [`BodyError`], so however deep the
/// store buries them, the answer blames the client (see [`ApiError`]'s `IntoResponse`).
pub fn body_stream(body: Body) -> ByteStream {
    Box::pin(
        body.into_data_stream()
            .map_err(|e| io::Error::other(BodyError::new(e))),
    )
}

/// The request's `Content-Length`, if it sent a valid one.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A header value from a string we built. Ours are digests, ids, paths of validated names
/// and URLs, which are always valid; one that is not is a bug, answered 500 with the value
/// in the log rather than sent as an empty header.
pub fn hv(s: impl AsRef<str>) -> Result<HeaderValue, ApiError> {
    let s = s.as_ref();
    HeaderValue::from_str(s).map_err(|_| invalid_header(s))
}

/// As [`hv`], taking ownership of a string built for the header (no copy). Checked here
/// with `http`'s rule first, so the error can quote the value without a copy made for it.
pub fn hv_owned(s: String) -> Result<HeaderValue, ApiError> {
    // A fold rather than `any`: no early exit, so it vectorizes (this runs on every pull).
    let invalid = s.bytes().fold(false, |bad, b| {
        bad | ((b < b' ' && b != b'\t') | (b == 0x7f))
    });
    if invalid {
        return Err(invalid_header(&s));
    }
    HeaderValue::from_maybe_shared(bytes::Bytes::from(s)).map_err(|_| invalid_header("?"))
}

fn invalid_header(s: &str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("header value {s:?} is not valid"))
}

/// The path of `route` for a `Location` or `Link` header.
pub fn location(route: &Route) -> Result<HeaderValue, ApiError> {
    let path = route
        .path()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no path for {route:?}")))?;
    hv_owned(path)
}
