//! The direct-upload extension (`docs/direct-upload.md`): clients write blob bytes to the
//! bucket themselves through presigned requests; the API plans the upload, hands out the
//! requests, verifies the result and links it. Discovered at `GET /v2/_oci/ext/discover`.
//!
//! | endpoint                                   | body in                          |
//! |--------------------------------------------|----------------------------------|
//! | `POST /v2/<name>/_cargohold/direct/start`    | `{digest, size, part_size?}`     |
//! | `POST /v2/<name>/_cargohold/direct/parts`    | `{id, parts: [{number, sha256}]}`|
//! | `POST /v2/<name>/_cargohold/direct/complete` | `{id, parts: [{number, etag, sha256}]}` |
//! | `GET /v2/<name>/_cargohold/direct/uploads/<id>` | (none): the parts the bucket holds  |

mod plan;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use blob_gateway::{ChecksummedPart, CopyChecksums, DirectUpload, ObjectStore, PresignedRequest};
use index_format::{Digest, DigestAlgorithm, RepoName};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Permit;
use crate::error::{ApiError, ApiResult, OciCode};
use crate::handlers::{DOCKER_CONTENT_DIGEST, mount_source};
use crate::state::AppState;

pub use plan::{MAX_PART, part_size};

/// The extension's name in URLs and in discovery.
pub const EXTENSION: &str = "_cargohold";
/// Where the extension is documented (discovery's `url`).
pub const DOC_URL: &str = "https://example.invalid/cargohold/docs/direct-upload.md";
/// Most presigned part requests handed out per `parts` call.
pub const MAX_BATCH: usize = 1000;
const MAX_BODY: usize = 1 << 20;

/// `cargohold serve` flags for the extension.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct DirectArgs {
    /// Offer direct uploads to the bucket (S3 stores only) [default: true]
    #[arg(long, env = "CARGOHOLD_DIRECT_UPLOAD", num_args = 0..=1, default_missing_value = "true")]
    pub direct_upload: Option<bool>,
    /// Blobs up to this many bytes go in one presigned PutObject; larger ones in parts
    /// (at most 5 GiB) [default: 1 GiB]
    #[arg(long, env = "CARGOHOLD_DIRECT_SINGLE_MAX")]
    pub direct_single_max: Option<u64>,
    /// How long presigned upload requests stay valid [default: 15m]
    #[arg(long, env = "CARGOHOLD_DIRECT_EXPIRY", value_parser = humantime::parse_duration)]
    pub direct_expiry: Option<Duration>,
    /// Let the store compute a multipart blob's SHA-256 by a checksummed copy, where a
    /// probe proves it can; `false` reads every multipart blob back [default: true]
    #[arg(long, env = "CARGOHOLD_DIRECT_STORE_HASH", num_args = 0..=1, default_missing_value = "true")]
    pub direct_store_hash: Option<bool>,
}

/// The extension's settings on a running server.
#[derive(Debug)]
pub struct Direct {
    /// Largest single-object upload.
    pub single_max: u64,
    /// Lifetime of presigned requests.
    pub expiry: Duration,
    /// The store refuses bytes whose SHA-256 differs from the signed checksum, so a single
    /// object's stored checksum proves its digest without a read.
    pub store_checks: bool,
    /// Whether the store may hash a multipart blob (probed at the first completion).
    pub copy_checksums: CopyChecksums,
}

impl Direct {
    /// The settings for `store`, or `None` when the extension is off or the store cannot
    /// presign uploads. Probes whether the store enforces `x-amz-checksum-sha256`.
    pub async fn for_store(
        args: &DirectArgs,
        store: &Arc<dyn ObjectStore>,
    ) -> anyhow::Result<Option<Arc<Self>>> {
        if args.direct_upload == Some(false) {
            return Ok(None);
        }
        let Some(presigner) = store.presigner() else {
            return Ok(None);
        };
        let store_checks = presigner.enforces_checksums().await?;
        if !store_checks {
            tracing::warn!(
                "the store accepts writes whose x-amz-checksum-sha256 is wrong: direct uploads are verified by reading them back"
            );
        }
        Ok(Some(Arc::new(Self {
            single_max: args.direct_single_max.unwrap_or(1 << 30).min(MAX_PART),
            expiry: args.direct_expiry.unwrap_or(Duration::from_secs(15 * 60)),
            store_checks,
            copy_checksums: CopyChecksums::new(args.direct_store_hash != Some(false)),
        })))
    }
}

/// `GET /v2/_oci/ext/discover` (and per repository): the extensions this server offers.
pub fn discover(app: &AppState) -> Response {
    let extensions: Vec<_> = app
        .direct
        .iter()
        .map(|_| {
            json!({
                "name": EXTENSION,
                "description": "direct uploads of blob bytes to object storage through presigned requests",
                "url": DOC_URL,
                "endpoints": [
                    format!("{EXTENSION}/direct/start"),
                    format!("{EXTENSION}/direct/parts"),
                    format!("{EXTENSION}/direct/complete"),
                    format!("{EXTENSION}/direct/uploads"),
                ],
            })
        })
        .collect();
    Json(json!({ "extensions": extensions })).into_response()
}

/// A repository-level extension request: `path` is what follows `/v2/<name>/`.
pub async fn dispatch(
    app: AppState,
    repo: RepoName,
    path: &str,
    method: &Method,
    permit: &Permit<'_>,
    body: Body,
) -> ApiResult<Response> {
    if path == "_oci/ext/discover" && method == Method::GET {
        return Ok(discover(&app));
    }
    let Some(direct) = app.direct.clone() else {
        return Err(unknown_extension(path));
    };
    let Some(endpoint) = path
        .strip_prefix(EXTENSION)
        .and_then(|p| p.strip_prefix("/direct/"))
    else {
        return Err(unknown_extension(path));
    };
    let wrong_method = || {
        ApiError::new(
            OciCode::Unsupported,
            format!("{method} is not supported here"),
        )
    };
    if let Some(id) = endpoint.strip_prefix("uploads/") {
        return match *method == Method::GET {
            true => status(&app, repo, id).await,
            false => Err(wrong_method()),
        };
    }
    if method != Method::POST {
        return Err(wrong_method());
    }
    match endpoint {
        "start" => start(&app, &direct, repo, permit, json_body(body).await?).await,
        "parts" => parts(&app, &direct, repo, json_body(body).await?).await,
        "complete" => complete(&app, &direct, repo, json_body(body).await?).await,
        _ => Err(unknown_extension(path)),
    }
}

/// `404 EXTENSION_UNKNOWN`-like: the spec's envelope with `UNSUPPORTED`, as `_oci` says.
fn unknown_extension(path: &str) -> ApiError {
    ApiError::with_status(
        OciCode::Unsupported,
        StatusCode::NOT_FOUND,
        format!("extension endpoint {path:?} is unknown here"),
    )
}

async fn json_body<T: serde::de::DeserializeOwned>(body: Body) -> ApiResult<T> {
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|e| invalid(format!("request body: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(format!("request body: {e}")))
}

fn invalid(message: String) -> ApiError {
    ApiError::with_status(OciCode::BlobUploadInvalid, StatusCode::BAD_REQUEST, message)
}

#[derive(Deserialize)]
struct StartRequest {
    digest: Digest,
    size: u64,
    /// Ask for parts of this size (a client uploading in parallel).
    #[serde(default)]
    part_size: Option<u64>,
}

#[derive(Serialize)]
struct StartResponse {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    part_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<u64>,
    /// The single object's presigned `PutObject`.
    #[serde(skip_serializing_if = "Option::is_none")]
    put: Option<PresignedRequest>,
}

impl StartResponse {
    fn done(status: &'static str) -> Self {
        Self {
            status,
            id: None,
            part_size: None,
            parts: None,
            expires_in: None,
            put: None,
        }
    }
}

async fn start(
    app: &AppState,
    direct: &Direct,
    repo: RepoName,
    permit: &Permit<'_>,
    req: StartRequest,
) -> ApiResult<Response> {
    if req.digest.algorithm() != DigestAlgorithm::Sha256 {
        return Err(ApiError::new(
            OciCode::DigestInvalid,
            "direct uploads take sha256 digests",
        ));
    }
    if app.index.blob(&repo, &req.digest).await?.is_some() {
        return Ok((StatusCode::OK, Json(StartResponse::done("exists"))).into_response());
    }
    if mount(app, &repo, permit, &req.digest).await? {
        return Ok((StatusCode::CREATED, Json(StartResponse::done("mounted"))).into_response());
    }
    let part = part_size(req.size, req.part_size, direct.single_max)
        .map_err(|e| ApiError::new(OciCode::SizeInvalid, e.to_string()))?;
    let plan = DirectUpload {
        digest: req.digest,
        size: req.size,
        part_size: part,
        // Where only the digest's bytes can be written, they go straight to the blob.
        in_place: part.is_none() && direct.store_checks,
    };
    let parts = plan.parts();
    let id = app.uploads.start_direct(&repo, plan).await?;
    let put = match part {
        None => app
            .uploads
            .presign_direct(&repo, &id, &[], direct.expiry)
            .await?
            .pop(),
        Some(_) => None,
    };
    let body = StartResponse {
        status: "upload",
        id: Some(id.to_string()),
        part_size: part,
        parts: part.map(|_| parts),
        expires_in: Some(direct.expiry.as_secs()),
        put,
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// Links a blob stored for another repository into `repo`, if the caller may read one
/// that holds it. Without access control every repository's blobs are readable, so any
/// stored blob will do. Under it, only a repository the caller may pull, found as for a
/// standard mount without `from` (so no one learns of blobs they cannot read); otherwise
/// the upload goes ahead (publishing is create-only).
async fn mount(
    app: &AppState,
    repo: &RepoName,
    permit: &Permit<'_>,
    digest: &Digest,
) -> ApiResult<bool> {
    if app.auth.is_none() {
        return Ok(app.index.link_stored_blob(repo, digest).await?.is_some());
    }
    let Some(from) = mount_source(app, permit, digest).await? else {
        return Ok(false);
    };
    Ok(app.index.mount(&from, repo, digest).await?.is_some())
}

#[derive(Deserialize)]
struct PartsRequest {
    id: String,
    parts: Vec<ChecksummedPart>,
}

fn session(id: &str) -> ApiResult<index_format::UploadId> {
    index_format::UploadId::new(id).ok_or_else(|| {
        ApiError::new(
            OciCode::BlobUploadUnknown,
            format!("upload {id:?} is unknown"),
        )
    })
}

async fn parts(
    app: &AppState,
    direct: &Direct,
    repo: RepoName,
    req: PartsRequest,
) -> ApiResult<Response> {
    if req.parts.len() > MAX_BATCH {
        return Err(invalid(format!("at most {MAX_BATCH} parts per request")));
    }
    let id = session(&req.id)?;
    let signed = app
        .uploads
        .presign_direct(&repo, &id, &req.parts, direct.expiry)
        .await?;
    let parts: Vec<_> = req
        .parts
        .iter()
        .zip(signed)
        .map(|(p, r)| json!({"number": p.number, "method": r.method, "url": r.url, "headers": r.headers}))
        .collect();
    Ok(Json(json!({ "parts": parts, "expires_in": direct.expiry.as_secs() })).into_response())
}

/// A direct session's plan and the parts the bucket holds (`ListParts`), for a client
/// that resumes an interrupted upload.
async fn status(app: &AppState, repo: RepoName, id: &str) -> ApiResult<Response> {
    let id = session(id)?;
    let (plan, uploaded) = app.uploads.direct_status(&repo, &id).await?;
    let parts: Vec<_> = uploaded
        .iter()
        .map(|p| {
            let mut part = json!({"number": p.number, "etag": p.etag, "size": p.size});
            if let Some(sha) = p.sha256 {
                part["sha256"] = json!(hex::encode(sha));
            }
            part
        })
        .collect();
    let body = json!({
        "id": id.to_string(),
        "digest": plan.digest,
        "size": plan.size,
        "part_size": plan.part_size,
        "parts": parts,
    });
    Ok(Json(body).into_response())
}

async fn complete(
    app: &AppState,
    direct: &Direct,
    repo: RepoName,
    req: PartsRequest,
) -> ApiResult<Response> {
    let id = session(&req.id)?;
    let published = app
        .uploads
        .finish_direct(
            &repo,
            &id,
            &req.parts,
            direct.store_checks,
            &direct.copy_checksums,
        )
        .await?;
    let blob = app.index.link_upload(published).await?;
    let location = format!("/v2/{repo}/blobs/{}", blob.digest);
    Ok((
        StatusCode::CREATED,
        [
            (DOCKER_CONTENT_DIGEST, blob.digest.to_string()),
            (header::LOCATION, location),
        ],
        Json(json!({"digest": blob.digest, "size": blob.size})),
    )
        .into_response())
}
