//! The OCI registry client behind `cargohold push | pull | copy`, and the upstream fetcher
//! a mirror can reuse: no server code here.
//!
//! - [`Client`]: options, credentials and one [`Registry`] connection per host (token
//!   flow, retries with backoff).
//! - [`Repository`]: one repository's manifests, blobs and referrers, and blob uploads:
//!   `HEAD` first, a cross-repository mount when the caller names a source, then a
//!   monolithic `PUT` or `PATCH` chunks that a later run resumes (`upload.rs`), or the
//!   direct path to the bucket, whose parts a later run resumes too (`direct.rs`).
//! - [`Layout`]: an OCI image layout directory; [`unpack_archive`] turns a `docker save`,
//!   `podman save` or `oci-archive` tarball into one.
//! - [`Endpoint`] and [`copy_image`]: one walk of an image graph (indexes, every or one
//!   platform, referrers) from a layout or registry to a layout or registry, blobs in
//!   parallel; push, pull and copy are that walk with different ends.
//! - [`Progress`]: bars per blob and overall, or plain lines when not on a terminal.

mod archive;
mod auth;
mod direct;
mod endpoint;
mod layout;
mod progress;
mod reference;
mod registry;
mod repository;
mod state;
mod tags;
mod transfer;
mod upload;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use archive::unpack_archive;
pub use auth::{Challenge, Credentials};
pub use endpoint::{BlobSource, Endpoint};
pub use layout::Layout;
pub use progress::{BlobProgress, Progress, ProgressMode};
pub use reference::{ImageRef, is_loopback};
pub use registry::Registry;
pub use repository::{Manifest, Repository};
pub use transfer::{Platform, Transferred, copy_image};
pub use upload::BlobOutcome;

/// What can go wrong talking to a registry or reading an image.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Bad input from the user: a reference, a flag, a layout or archive.
    #[error("{0}")]
    Input(String),
    /// The request could not be sent or its answer read.
    #[error("HTTP request failed")]
    Http(#[source] reqwest::Error),
    /// The registry answered something other than what the protocol step expects.
    #[error("{what}: the registry answered {status}: {message}")]
    Status {
        /// What was being done.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error code and message, or the start of its body.
        message: String,
    },
    /// Authentication failed or is needed.
    #[error("authentication: {0}")]
    Auth(String),
    /// Bytes did not hash to the digest they were fetched by.
    #[error("{digest}: received bytes hash to {actual}")]
    DigestMismatch {
        /// The digest asked for.
        digest: String,
        /// What the bytes hashed to.
        actual: String,
    },
    /// A local file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file or directory concerned.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    fn http(e: reqwest::Error) -> Self {
        Self::Http(e)
    }

    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_string(),
            source,
        }
    }

    /// Worth trying again: the network failed, or the registry had a passing (5xx) fault.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Http(e) => !e.is_builder() && !e.is_redirect() && !e.is_decode(),
            Self::Status { status, .. } => *status >= 500 && *status != 501,
            _ => false,
        }
    }
}

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Credentials for every registry (`--creds`); else the auth files are read.
    pub creds: Option<Credentials>,
    /// Plain HTTP to every registry, not only loopback ones.
    pub insecure: bool,
    /// Blobs transferred at once.
    pub jobs: usize,
    /// Attempts per request and per blob, the first included.
    pub retries: u32,
    /// The first wait before a retry; doubled each time.
    pub backoff: Duration,
    /// Upload in `PATCH` chunks of this size (resumable); `None`: one `PUT` per blob.
    pub chunk_size: Option<u64>,
    /// Where chunked uploads record their session URLs, and direct multipart uploads
    /// their sessions and finished parts, so a later run resumes them (`state.rs`).
    pub state_dir: Option<PathBuf>,
    /// Bars, plain lines, or nothing.
    pub progress: ProgressMode,
    /// Use cargohold's direct uploads where the destination offers them.
    pub direct: bool,
    /// Ask direct uploads for parts of this size (parallel parts); `None`: the server's
    /// choice (one object up to its limit).
    pub direct_part_size: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            creds: None,
            insecure: false,
            jobs: 4,
            retries: 5,
            backoff: Duration::from_millis(250),
            chunk_size: None,
            state_dir: default_state_dir(),
            progress: ProgressMode::Quiet,
            direct: true,
            direct_part_size: None,
        }
    }
}

/// `$XDG_STATE_HOME/cargohold/uploads`, else `~/.local/state/cargohold/uploads`.
pub fn default_state_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("XDG_STATE_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".local/state")))
        .map(|d| d.join("cargohold/uploads"))
}

/// The client: options, progress display and one connection per registry host.
pub struct Client {
    http: reqwest::Client,
    options: Options,
    progress: Progress,
    registries: Mutex<HashMap<String, Arc<Registry>>>,
}

impl Client {
    /// A client with `options`.
    pub fn new(options: Options) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("cargohold/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(ClientError::http)?;
        Ok(Self {
            http,
            progress: Progress::new(options.progress),
            options,
            registries: Mutex::default(),
        })
    }

    /// The options the client was made with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The progress display.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The repository `image` names, on a connection shared by every repository of its
    /// registry (so a token covers them all).
    pub fn repository(&self, image: &ImageRef) -> Result<Repository, ClientError> {
        let host = image.api_host().to_owned();
        let mut map = self
            .registries
            .lock()
            .map_err(|_| ClientError::Input("client state poisoned".into()))?;
        let registry = match map.get(&host) {
            Some(r) => r.clone(),
            None => {
                let creds = match &self.options.creds {
                    Some(c) => Some(c.clone()),
                    None => Credentials::from_auth_files(&image.registry)?,
                };
                let r = Arc::new(Registry::new(
                    self.http.clone(),
                    &host,
                    creds,
                    &self.options,
                ));
                map.insert(host.clone(), r.clone());
                r
            }
        };
        Ok(Repository::new(registry, host, image.repository.clone()))
    }
}
