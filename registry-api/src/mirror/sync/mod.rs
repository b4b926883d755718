//! Scheduled sync: `cargohold mirror sync` and the server's `[[mirror.sync]]` schedule copy
//! chosen tags of upstream repositories into the registry ahead of time, under
//! `<upstream-name>/<repository>` (the layout the pull-through cache uses).
//!
//! The upstream is read with the [client](crate::client) (token flow, the upstream's
//! credentials); everything is written straight into the store through the [`Index`] and
//! [`Uploads`], the same conditional writes a push makes, so a sync is safe beside running
//! servers and needs no API round-trip. What is already there is never fetched again:
//! a tag whose upstream digest (by `HEAD`) equals the mirrored one is left alone, a
//! manifest stored by digest has everything below it (the index only records a manifest
//! whose references are linked), and a linked or stored blob is not fetched. A blob is
//! published only once its digest checks, so an interrupted run leaves nothing half-written
//! visible, and the next run fetches only what is missing.
//!
//! - `filter.rs`: which tags (regex, semver range, newest N).
//! - `copy.rs`: one tag's manifests, blobs and referrers.
//! - `schedule.rs`: the server's interval task.

mod copy;
mod filter;
mod schedule;

use std::fmt;
use std::time::Duration;

use blob_gateway::{UploadError, Uploads};
use index_format::{NameError, RepoName, Tag};

use crate::client::{Client, ClientError, ImageRef, Options, Progress, ProgressMode, Repository};
use crate::index::{Index, IndexError};
use crate::mirror::settings::{MirrorSettings, SyncJob, Upstream};

pub use filter::version;
pub use schedule::spawn_schedule;

/// How a sync runs.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Blobs fetched at once.
    pub jobs: usize,
    /// Attempts per upstream request and per blob.
    pub retries: u32,
    /// Only report what would be copied.
    pub dry_run: bool,
    /// Bars, plain lines or nothing.
    pub progress: ProgressMode,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            jobs: 4,
            retries: 5,
            dry_run: false,
            progress: ProgressMode::Quiet,
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Tags selected by the job's filters.
    pub tags: usize,
    /// Tags written (new, moved, or given new referrers); in a dry run, to be written.
    pub copied: usize,
    /// Tags already mirrored at the upstream's digest.
    pub unchanged: usize,
    /// Tags that failed (each is logged; the others still run).
    pub failed: usize,
    /// Manifests written.
    pub manifests: usize,
    /// Blobs fetched from the upstream.
    pub blobs: usize,
    /// Bytes of the blobs fetched.
    pub bytes: u64,
    /// Blobs the store already held for another repository, linked without a transfer.
    pub linked: usize,
}

impl SyncReport {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Self) {
        self.tags += other.tags;
        self.copied += other.copied;
        self.unchanged += other.unchanged;
        self.failed += other.failed;
        self.manifests += other.manifests;
        self.blobs += other.blobs;
        self.bytes += other.bytes;
        self.linked += other.linked;
    }
}

impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} tags ({} copied, {} unchanged, {} failed), {} manifests, {} blobs linked, \
             {} blobs, {} bytes transferred",
            self.tags,
            self.copied,
            self.unchanged,
            self.failed,
            self.manifests,
            self.linked,
            self.blobs,
            self.bytes
        )
    }
}

/// Why a sync job (or one of its tags) failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The job names an upstream that is not configured.
    #[error("no [[mirror.upstream]] is named {0}")]
    UnknownUpstream(String),
    /// The upstream has no such repository.
    #[error(
        "upstream {upstream} has no repository {repository} (or hides it from these credentials)"
    )]
    NoRepository {
        /// The upstream's name.
        upstream: String,
        /// The repository asked for.
        repository: String,
    },
    /// A repository or tag name that is not valid here.
    #[error("{0:?} is not a valid name")]
    Name(String, #[source] NameError),
    /// The upstream failed or answered something unusable.
    #[error("upstream {upstream}")]
    Upstream {
        /// `<upstream-name>/<repository>[:tag]`.
        upstream: String,
        /// What the client said.
        #[source]
        source: ClientError,
    },
    /// The upstream's manifest cannot be mirrored.
    #[error("{digest}: {reason}")]
    Manifest {
        /// The manifest.
        digest: String,
        /// Why not.
        reason: String,
    },
    /// Writing into the index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// Storing a blob failed.
    #[error(transparent)]
    Upload(#[from] UploadError),
}

/// Copies sync jobs' tags from their upstreams into one store.
pub struct Syncer {
    index: Index,
    uploads: Uploads,
    upstreams: Vec<(Upstream, Client)>,
    options: SyncOptions,
    progress: Progress,
}

impl Syncer {
    /// A syncer writing through `index` and `uploads`, reading the upstreams `settings`
    /// configures with their own credentials. Fails for an upstream a job reads whose URL
    /// has a path (the client reaches registries at the host's `/v2/`).
    pub fn new(
        index: Index,
        uploads: Uploads,
        settings: &MirrorSettings,
        options: SyncOptions,
    ) -> Result<Self, ClientError> {
        let upstreams = settings
            .upstreams
            .iter()
            .map(|u| {
                let synced = settings.syncs.iter().any(|j| j.upstream == u.name);
                let rest = u.url.split_once("://").map_or("", |(_, r)| r);
                if synced && rest.contains('/') {
                    return Err(ClientError::Input(format!(
                        "[[mirror.upstream]] {}: url {} has a path; sync reaches a registry \
                         at its host's /v2/",
                        u.name, u.url
                    )));
                }
                Ok((u.clone(), upstream_client(u, &options)?))
            })
            .collect::<Result<_, ClientError>>()?;
        Ok(Self {
            index,
            uploads,
            upstreams,
            progress: Progress::new(options.progress),
            options,
        })
    }

    /// The progress display, for a summary line.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Runs one job: lists the upstream's tags, selects, and copies each selected tag.
    /// A tag that fails is counted and logged, and the others still run; `Err` only when
    /// the job cannot start (unknown upstream, bad name, tag list unreadable).
    pub async fn run(&self, job: &SyncJob) -> Result<SyncReport, SyncError> {
        let (upstream, client) = self
            .upstreams
            .iter()
            .find(|(u, _)| u.name == job.upstream)
            .ok_or_else(|| SyncError::UnknownUpstream(job.upstream.clone()))?;
        let name = |s: String| RepoName::new(&s).map_err(|e| SyncError::Name(s, e));
        let what = format!("{}/{}", upstream.name, job.repository);
        let dst = name(what.clone())?;
        let image = ImageRef {
            registry: host_of(&upstream.url).to_owned(),
            repository: name(job.repository.clone())?,
            tag: None,
            digest: None,
        };
        let upstream_err = |source| SyncError::Upstream {
            upstream: what.clone(),
            source,
        };
        let src = client.repository(&image).map_err(upstream_err)?;
        let listed =
            src.tags()
                .await
                .map_err(upstream_err)?
                .ok_or_else(|| SyncError::NoRepository {
                    upstream: upstream.name.clone(),
                    repository: job.repository.clone(),
                })?;
        let selected = job.select(listed);
        let mut report = SyncReport {
            tags: selected.len(),
            ..SyncReport::default()
        };
        let target = Target {
            job,
            src: &src,
            dst: &dst,
        };
        for tag in selected {
            let line = match Tag::new(&tag) {
                Ok(t) => self.sync_tag(&target, &t, &mut report).await,
                Err(e) => Err(SyncError::Name(tag.clone(), e)),
            };
            match line {
                Ok(text) => self.progress.line(&format!("{dst}:{tag} {text}")),
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(repository = %dst, %tag, error = %format!("{e:#}"), "sync of a tag failed");
                    self.progress
                        .line(&format!("{dst}:{tag} failed: {:#}", anyhow::Error::from(e)));
                }
            }
        }
        Ok(report)
    }
}

/// One job's ends.
struct Target<'a> {
    job: &'a SyncJob,
    src: &'a Repository,
    dst: &'a RepoName,
}

/// A client for `upstream`: its credentials only, plain HTTP when its URL says so.
fn upstream_client(upstream: &Upstream, options: &SyncOptions) -> Result<Client, ClientError> {
    Client::new(Options {
        creds: upstream.credentials.clone(),
        insecure: upstream.url.starts_with("http://"),
        jobs: options.jobs.max(1),
        retries: options.retries.max(1),
        backoff: Duration::from_millis(250),
        chunk_size: None,
        state_dir: None,
        progress: ProgressMode::Quiet,
        direct: false,
        direct_part_size: None,
    })
}

/// `host[:port]` of a base URL.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_of_a_base_url() {
        assert_eq!(
            host_of("https://registry-1.docker.io"),
            "registry-1.docker.io"
        );
        assert_eq!(host_of("http://127.0.0.1:5000/"), "127.0.0.1:5000");
    }
}
