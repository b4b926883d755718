//! The mirror: a pull-through cache of upstream registries and scheduled sync, both
//! written into the index through its owner so static hosts serve what was mirrored.
//!
//! The pull-through cache ([`Mirror`]) answers for repositories under an upstream's name
//! (`docker.io/library/alpine`), reached by that path prefix or by containerd's `?ns=`
//! (`upstream.rs`). What the index lacks is fetched once however many clients ask
//! (`flight.rs`): manifests by `manifests.rs`, blobs by `blobs.rs`, which streams the one
//! upstream download into the store and to every waiting client at once.

mod blobs;
mod flight;
mod manifests;
pub mod nginx;
pub mod settings;
pub mod sync;
mod upstream;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use index_format::{Digest, RepoName, Tag};

pub use blobs::{BlobMiss, default_spool};
use flight::SingleFlight;
use settings::MirrorSettings;
use upstream::UpstreamConn;
pub use upstream::{Mirrored, OCI_NAMESPACE};

use axum::http::StatusCode;

use crate::error::{ApiError, OciCode};
use crate::index::StoredManifest;

/// The pull-through cache: one connection per upstream, and what is being fetched.
pub struct Mirror {
    upstreams: Vec<UpstreamConn>,
    /// Manifest fetches and tag revalidations in progress, by repository and reference.
    manifests: SingleFlight<(RepoName, String), Result<Option<StoredManifest>, FetchError>>,
    /// Blob downloads in progress (`blobs.rs`).
    blobs: Mutex<HashMap<(RepoName, Digest), Arc<blobs::Flight>>>,
    /// When each cached tag was last found current upstream (or the upstream failed to
    /// say): it is served without asking again until its upstream's `tag_ttl` has passed.
    checked: Mutex<HashMap<(RepoName, Tag), Instant>>,
    /// Where blob downloads are spooled for the clients waiting on them.
    spool: PathBuf,
}

/// Why something could not be fetched upstream; cloned to every waiter.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The upstream has no such manifest or blob.
    #[error("not found upstream")]
    NotFound,
    /// The upstream failed or answered something unexpected.
    #[error("upstream {upstream}: {message}")]
    Upstream {
        /// The upstream's name.
        upstream: String,
        /// What went wrong.
        message: String,
    },
    /// The bytes could not be stored (or did not match their digest).
    #[error("storing the upstream's answer: {0}")]
    Store(String),
}

impl FetchError {
    /// The answer to a client whose pull needed this fetch: `code` (`MANIFEST_UNKNOWN`,
    /// `BLOB_UNKNOWN`) with 404 when the upstream has nothing, 502 when it failed.
    pub fn into_api(self, code: OciCode, what: &str) -> ApiError {
        match self {
            Self::NotFound => ApiError::new(code, format!("{what} unknown here and upstream")),
            Self::Upstream { .. } => ApiError::with_status(
                code,
                StatusCode::BAD_GATEWAY,
                format!("{what} is not cached and {self}"),
            ),
            Self::Store(_) => ApiError::Internal(anyhow::Error::new(self)),
        }
    }
}

/// An error with its causes, one line (`ClientError` is not `Clone`; waiters share this).
fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    message
}

impl Mirror {
    /// The cache for `settings`' upstreams, spooling downloads under `spool`.
    pub fn new(settings: &MirrorSettings, spool: PathBuf) -> anyhow::Result<Self> {
        let client = upstream::client()?;
        Ok(Self {
            upstreams: settings
                .upstreams
                .iter()
                .map(|u| UpstreamConn::new(&client, u.clone()))
                .collect(),
            manifests: SingleFlight::default(),
            blobs: Mutex::default(),
            checked: Mutex::default(),
            spool,
        })
    }
}
