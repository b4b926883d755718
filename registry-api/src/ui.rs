//! The browse UI: static files in `registry-api/ui/`, embedded in the binary and served at
//! `/` and `/ui/...`, next to the browse documents they read (`/index/...`) and the root
//! `config.json`. `cargohold serve` also publishes the files into the store
//! ([`FILES`], [`crate::index::Index::write_ui`]) so nginx and the Worker serve the same.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use index_format::layout::REVALIDATE;
use index_format::{StorageKey, UiFile};

use crate::auth::rules::Action;
use crate::auth::{self, Caller, Need};
use crate::error::{ApiError, OciCode};
use crate::index::{DocumentAbout, Index};
use crate::state::AppState;

/// Every file of the UI with its bytes.
pub const FILES: [(UiFile, &[u8]); 3] = [
    (UiFile::Html, include_bytes!("../ui/index.html")),
    (UiFile::Script, include_bytes!("../ui/app.js")),
    (UiFile::Style, include_bytes!("../ui/style.css")),
];

/// Lets pages on another origin read the browse documents (they are public anyway).
const ALLOW_ORIGIN: (header::HeaderName, HeaderValue) = (
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    HeaderValue::from_static("*"),
);

fn file(f: UiFile) -> Response {
    let bytes = FILES
        .iter()
        .find(|(g, _)| *g == f)
        .map_or(&[][..], |(_, b)| b);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(f.content_type()),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE)),
        ],
        bytes,
    )
        .into_response()
}

/// `GET /`: the UI's page.
pub async fn page() -> Response {
    file(UiFile::Html)
}

/// `GET /ui/<file>`: its script and style sheet.
pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    UiFile::ALL
        .into_iter()
        .find(|f| f.name() == name && *f != UiFile::Html)
        .map(file)
        .ok_or_else(not_found)
}

fn not_found() -> ApiError {
    ApiError::with_status(
        OciCode::NameUnknown,
        StatusCode::NOT_FOUND,
        "no such document",
    )
}

/// `GET /index/...` (browse documents) and `GET /config.json`, as a static host serves
/// them, with `ETag`/`If-None-Match` and CORS for any origin.
pub async fn document(
    State(app): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Response, ApiError> {
    let path = request.uri().path().trim_start_matches('/');
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| not_found())?;
    // Under access control, a repository's documents are for those who may pull it, and
    // the catalog and search documents, which name every repository, private ones too,
    // for those who may read the catalog. `config.json` stays public (it holds the token
    // realm and the public key clients need). Decided before the store is read, so the
    // answer does not tell whether a private document exists.
    let about = Index::document_about(&path).ok_or_else(not_found)?;
    let need = match &about {
        DocumentAbout::Registry => None,
        DocumentAbout::EveryRepository => Some(Need::Catalog),
        DocumentAbout::Repository(repo) => Some(Need::Repo(repo, Action::Pull)),
    };
    if let Some(need) = need {
        auth::caller::check(app.auth.as_ref(), &caller, need, request.headers())?;
    }
    let (bytes, etag) = app
        .index
        .public_document(&path)
        .await?
        .ok_or_else(not_found)?;
    let etag = if etag.starts_with('"') {
        etag
    } else {
        format!("\"{etag}\"")
    };
    let etag = HeaderValue::from_str(&etag).map_err(|_| not_found())?;
    let fresh = if_none_match(request.headers(), &etag);
    let content_type = StorageKey::Config
        .content_type()
        .unwrap_or("application/json");
    let head = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE)),
        (header::ETAG, etag),
        ALLOW_ORIGIN,
    ];
    Ok(if fresh {
        (StatusCode::NOT_MODIFIED, head).into_response()
    } else {
        (head, bytes).into_response()
    })
}

fn if_none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().as_bytes() == etag.as_bytes()))
}
