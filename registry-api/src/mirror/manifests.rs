//! Manifests through the mirror: a miss is fetched upstream (digest verified) and cached
//! through the index owner; a cached tag is served as is until its upstream's `tag_ttl`,
//! then revalidated by `HEAD`. A failing, rate-limiting or forgetful upstream never fails
//! a pull the cache can answer: the cached tag is served and the failure logged.

use std::time::{Duration, Instant};

use index_format::manifest::ParsedManifest;
use index_format::{Digest, Reference, RepoName, Tag};

use super::{FetchError, Mirror, Mirrored};
use crate::index::{Index, PushedManifest, StoredManifest};

/// How many tag checks are remembered before old ones are dropped, and how old is old.
const MAX_CHECKED: usize = 100_000;
const FORGET_CHECKED: Duration = Duration::from_secs(24 * 3600);

/// The longest a revalidation may hold a pull up before the cached tag is served.
const REVALIDATE_TIMEOUT: Duration = Duration::from_secs(5);

impl Mirror {
    /// The manifest `reference` names in the mirrored `repo`: the cached one, fetched on a
    /// miss, revalidated when a tag's TTL has passed. `cached` is what the index holds.
    pub async fn manifest(
        &self,
        index: &Index,
        repo: &RepoName,
        reference: &Reference,
        cached: Option<StoredManifest>,
    ) -> Result<Option<StoredManifest>, FetchError> {
        let Some(mirrored) = self.mirrored(repo) else {
            return Ok(cached);
        };
        let tag = match (reference, &cached) {
            (Reference::Digest(_), Some(_)) => return Ok(cached),
            (Reference::Tag(t), Some(c)) if self.fresh(repo, t, c, &mirrored) => return Ok(cached),
            (Reference::Tag(t), _) => Some(t.clone()),
            (Reference::Digest(_), None) => None,
        };
        let key = (repo.clone(), reference.as_str().to_owned());
        let job = Job {
            index: index.clone(),
            repo: repo.clone(),
            upstream: mirrored.conn.settings.name.clone(),
            remote: mirrored.conn.repository(mirrored.upstream_repo.clone()),
            reference: reference.clone(),
            cached: cached.clone(),
        };
        let result = self.manifests.run(key, || job.run()).await;
        let result =
            result.unwrap_or_else(|| Err(FetchError::Store("the fetch task failed".into())));
        if let Some(t) = tag {
            match &result {
                Ok(Some(_)) => self.mark_checked(repo, &t),
                // The upstream failed: serve the cached tag, ask again after the TTL.
                Err(e) if cached.is_some() => {
                    tracing::warn!(%repo, tag = %t, error = %e, "upstream failed; serving the cached tag");
                    self.mark_checked(repo, &t);
                    return Ok(cached);
                }
                _ => {}
            }
        }
        result
    }

    /// Whether a cached tag is within its TTL: written (fetched, or found current) that
    /// recently, which static hosts judge by the same file's age, or found unanswerable
    /// upstream that recently by this process.
    fn fresh(
        &self,
        repo: &RepoName,
        tag: &Tag,
        cached: &StoredManifest,
        mirrored: &Mirrored<'_>,
    ) -> bool {
        let ttl = mirrored.conn.settings.tag_ttl;
        let written = cached.written.and_then(|w| w.elapsed().ok());
        if written.is_some_and(|age| age < ttl) {
            return true;
        }
        let checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        checked
            .get(&(repo.clone(), tag.clone()))
            .is_some_and(|at| at.elapsed() < ttl)
    }

    fn mark_checked(&self, repo: &RepoName, tag: &Tag) {
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: entries past every TTL say nothing any more.
        if checked.len() >= MAX_CHECKED {
            checked.retain(|_, at| at.elapsed() < FORGET_CHECKED);
        }
        checked.insert((repo.clone(), tag.clone()), Instant::now());
    }
}

/// One fetch or revalidation, run as its own task.
struct Job {
    index: Index,
    repo: RepoName,
    upstream: String,
    remote: crate::client::Repository,
    reference: Reference,
    cached: Option<StoredManifest>,
}

impl Job {
    async fn run(self) -> Result<Option<StoredManifest>, FetchError> {
        let upstream_error = |message: String| FetchError::Upstream {
            upstream: self.upstream.clone(),
            message,
        };
        if let Some(cached) = &self.cached {
            // A cached tag past its TTL: `HEAD`, and a `GET` only when it moved.
            let head = tokio::time::timeout(
                REVALIDATE_TIMEOUT,
                self.remote.manifest_digest(self.reference.as_str()),
            )
            .await
            .map_err(|_| upstream_error("no answer to HEAD in time".into()))?;
            match head {
                Ok(Some(d)) if d == cached.digest => {
                    self.rewrite(cached).await?;
                    return Ok(Some(cached.clone()));
                }
                Ok(Some(d)) => return self.fetch(Some(&d)).await,
                Ok(None) => {
                    return Err(upstream_error("the tag is gone upstream".into()));
                }
                Err(e) => return Err(upstream_error(super::chain(&e))),
            }
        }
        self.fetch(None).await
    }

    /// Writes a tag found current again: its age starts over, for static hosts too.
    async fn rewrite(&self, cached: &StoredManifest) -> Result<(), FetchError> {
        let parsed = ParsedManifest::parse(&cached.bytes, Some(cached.media_type.as_str()))
            .map_err(|e| FetchError::Store(format!("the cached manifest does not parse: {e}")))?;
        self.record(cached.digest.clone(), cached.bytes.clone(), parsed)
            .await
            .map(|_| ())
    }

    /// Caches the manifest under the repository and the reference asked for.
    async fn record(
        &self,
        digest: Digest,
        bytes: bytes::Bytes,
        parsed: ParsedManifest,
    ) -> Result<StoredManifest, FetchError> {
        let tag = match &self.reference {
            Reference::Tag(t) => Some(t.clone()),
            Reference::Digest(_) => None,
        };
        let push = PushedManifest {
            repo: self.repo.clone(),
            tag,
            digest,
            bytes,
            parsed,
        };
        self.index
            .cache_manifest(&push)
            .await
            .map_err(|e| FetchError::Store(super::chain(&e)))?;
        Ok(StoredManifest {
            media_type: push.parsed.media_type,
            digest: push.digest,
            bytes: push.bytes,
            written: None,
        })
    }

    /// Fetches the manifest (by `digest` when a revalidation learnt it) and caches it
    /// under the reference asked for.
    async fn fetch(&self, digest: Option<&Digest>) -> Result<Option<StoredManifest>, FetchError> {
        let asked = match digest {
            Some(d) => d.to_string(),
            None => self.reference.as_str().to_owned(),
        };
        // The client checks a manifest fetched by digest against it.
        let fetched = self
            .remote
            .manifest(&asked)
            .await
            .map_err(|e| FetchError::Upstream {
                upstream: self.upstream.clone(),
                message: super::chain(&e),
            })?;
        let Some(m) = fetched else {
            return match self.cached {
                Some(_) => Err(FetchError::Upstream {
                    upstream: self.upstream.clone(),
                    message: format!("{asked} is gone upstream"),
                }),
                None => Ok(None),
            };
        };
        let parsed = ParsedManifest::parse(&m.bytes, Some(&m.media_type)).map_err(|e| {
            FetchError::Upstream {
                upstream: self.upstream.clone(),
                message: format!("its manifest {asked} does not parse: {e}"),
            }
        })?;
        let stored = self.record(m.digest, m.bytes, parsed).await?;
        tracing::info!(repo = %self.repo, reference = %self.reference.as_str(), digest = %stored.digest, "mirrored manifest");
        Ok(Some(stored))
    }
}
