//! One tag: its manifest graph (every platform of an index, or the job's platforms), the
//! blobs the images need, and with `referrers` the manifests that refer to them.
//!
//! Writes go children first and the tag last, as a push does, so a run stopped at any
//! point leaves a consistent index, and the next run starts from what is there.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use blob_gateway::ClosingBody;
use futures::StreamExt;
use index_format::manifest::{Descriptor, ParsedManifest};
use index_format::{Digest, Reference, RepoName, Tag};

use super::{SyncError, SyncReport, Syncer, Target};
use crate::client::{BlobProgress, Manifest, Platform, Repository};
use crate::index::{MAX_MANIFEST_BYTES, PushedManifest};

/// What copying one graph or blob did.
#[derive(Default)]
struct Moved {
    manifests: usize,
    blobs: usize,
    bytes: u64,
    linked: usize,
}

impl Syncer {
    /// Brings `tag` up to date; returns the word for its progress line.
    pub(super) async fn sync_tag(
        &self,
        t: &Target<'_>,
        tag: &Tag,
        report: &mut SyncReport,
    ) -> Result<String, SyncError> {
        let upstream_err = |source| SyncError::Upstream {
            upstream: format!("{}:{tag}", t.dst),
            source,
        };
        let upstream_digest = t
            .src
            .manifest_digest(tag.as_str())
            .await
            .map_err(upstream_err)?
            .ok_or_else(|| SyncError::Manifest {
                digest: tag.as_str().to_owned(),
                reason: "the tag was removed upstream while the sync ran".into(),
            })?;
        let local = self
            .index
            .manifest(t.dst, &Reference::Tag(tag.clone()))
            .await?;
        let filtering = !t.job.platforms.is_empty();
        let same = |d: &Digest| local.as_ref().is_some_and(|m| &m.digest == d);
        if !filtering && same(&upstream_digest) && !t.job.referrers {
            report.unchanged += 1;
            return Ok(format!("{upstream_digest} unchanged"));
        }
        let root = match &local {
            // The mirrored bytes are the upstream's: no need to fetch them again.
            Some(m) if !filtering && m.digest == upstream_digest => Manifest {
                bytes: m.bytes.clone(),
                media_type: m.media_type.as_str().to_owned(),
                digest: m.digest.clone(),
            },
            _ => fetch(t.src, &upstream_digest).await?,
        };
        let root = if filtering {
            only_platforms(root, &t.job.platforms)?
        } else {
            root
        };
        let unchanged = same(&root.digest);
        if self.options.dry_run {
            return Ok(if unchanged {
                report.unchanged += 1;
                format!("{} unchanged", root.digest)
            } else {
                report.copied += 1;
                format!("{} would be copied", root.digest)
            });
        }
        let mut moved = Moved::default();
        // Referrers name the upstream's index (or, for one platform, its image).
        let parsed = parse(&root)?;
        let mut subjects = vec![upstream_digest];
        if parsed.media_type.is_index() {
            subjects.extend(parsed.references.iter().map(|d| d.digest.clone()));
        }
        let done = async {
            if !unchanged {
                self.copy_graph(t, root.clone(), Some(tag), &mut moved)
                    .await?;
            }
            if t.job.referrers {
                self.copy_referrers(t, subjects, &mut moved).await?;
            }
            Ok::<_, SyncError>(())
        }
        .await;
        // Counted even when the tag failed part-way: those bytes did travel.
        report.manifests += moved.manifests;
        report.blobs += moved.blobs;
        report.bytes += moved.bytes;
        report.linked += moved.linked;
        done?;
        if moved.manifests == 0 {
            report.unchanged += 1;
            return Ok(format!("{} unchanged", root.digest));
        }
        report.copied += 1;
        Ok(format!(
            "{} copied ({} manifests, {} blobs, {} bytes)",
            root.digest, moved.manifests, moved.blobs, moved.bytes
        ))
    }

    /// Whether the destination stores the manifest `digest` (and so all below it).
    async fn has_manifest(&self, dst: &RepoName, digest: &Digest) -> Result<bool, SyncError> {
        let reference = Reference::Digest(digest.clone());
        Ok(self.index.manifest(dst, &reference).await?.is_some())
    }

    /// Copies `root` and what it needs that the destination lacks, `root` under `tag`.
    async fn copy_graph(
        &self,
        t: &Target<'_>,
        root: Manifest,
        tag: Option<&Tag>,
        moved: &mut Moved,
    ) -> Result<(), SyncError> {
        let mut seen = HashSet::from([root.digest.clone()]);
        let mut blobs = BTreeMap::new();
        let mut graph = Vec::new();
        let mut queue = VecDeque::from([root]);
        while let Some(m) = queue.pop_front() {
            let parsed = parse(&m)?;
            if parsed.media_type.is_index() {
                for child in &parsed.references {
                    if seen.insert(child.digest.clone())
                        && !self.has_manifest(t.dst, &child.digest).await?
                    {
                        queue.push_back(fetch(t.src, &child.digest).await?);
                    }
                }
            } else {
                for r in parsed.references.iter().filter(|r| !r.is_foreign()) {
                    blobs.insert(r.digest.clone(), r.clone());
                }
            }
            graph.push((m, parsed));
        }
        self.copy_blobs(t, blobs.into_values().collect(), moved)
            .await?;
        // Children first, the root (and its tag) last.
        for (i, (m, parsed)) in graph.into_iter().enumerate().rev() {
            let push = PushedManifest {
                repo: t.dst.clone(),
                tag: if i == 0 { tag.cloned() } else { None },
                digest: m.digest,
                bytes: m.bytes,
                parsed,
            };
            self.index.push_manifest(&push).await?;
            moved.manifests += 1;
        }
        Ok(())
    }

    /// Copies every manifest upstream lists as referring to one of `subjects` (and, in
    /// turn, those referring to them) that the destination lacks.
    async fn copy_referrers(
        &self,
        t: &Target<'_>,
        mut subjects: Vec<Digest>,
        moved: &mut Moved,
    ) -> Result<(), SyncError> {
        let mut seen: HashSet<Digest> = subjects.iter().cloned().collect();
        while let Some(subject) = subjects.pop() {
            let listed = t
                .src
                .referrers(&subject)
                .await
                .map_err(|source| SyncError::Upstream {
                    upstream: format!("{}@{subject} referrers", t.dst),
                    source,
                })?;
            for d in listed {
                if !seen.insert(d.digest.clone()) {
                    continue;
                }
                subjects.push(d.digest.clone());
                if !self.has_manifest(t.dst, &d.digest).await? {
                    let m = fetch(t.src, &d.digest).await?;
                    self.copy_graph(t, m, None, moved).await?;
                }
            }
        }
        Ok(())
    }

    /// Makes every blob in `blobs` linked into the destination, `jobs` at a time.
    async fn copy_blobs(
        &self,
        t: &Target<'_>,
        blobs: Vec<Descriptor>,
        moved: &mut Moved,
    ) -> Result<(), SyncError> {
        let mut outcomes = futures::stream::iter(blobs)
            .map(|desc| async move { self.copy_blob(t.src, t.dst, &desc).await })
            .buffer_unordered(self.options.jobs.max(1));
        // Counted as each lands, so a failure still reports what travelled before it.
        while let Some(outcome) = outcomes.next().await {
            match outcome? {
                Blob::Present => {}
                Blob::Linked => moved.linked += 1,
                Blob::Fetched(n) => {
                    moved.blobs += 1;
                    moved.bytes += n;
                }
            }
        }
        Ok(())
    }

    async fn copy_blob(
        &self,
        src: &Repository,
        dst: &RepoName,
        desc: &Descriptor,
    ) -> Result<Blob, SyncError> {
        if self.index.blob(dst, &desc.digest).await?.is_some() {
            return Ok(Blob::Present);
        }
        if self
            .index
            .link_stored_blob(dst, &desc.digest)
            .await?
            .is_some()
        {
            return Ok(Blob::Linked);
        }
        let progress = Arc::new(self.progress.blob(desc.digest.as_str(), desc.size));
        let mut attempt = 0;
        loop {
            attempt += 1;
            progress.restart_at(0);
            match self.fetch_blob(src, dst, desc, &progress).await {
                Ok(()) => {
                    progress.done("fetched");
                    return Ok(Blob::Fetched(desc.size));
                }
                Err(e) if attempt < self.options.retries => {
                    tracing::warn!(digest = %desc.digest, attempt, error = %format!("{:#}", anyhow::Error::from(e)), "blob fetch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(250) * 2u32.pow(attempt.min(5))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Streams the blob from the upstream into an upload session, which publishes it
    /// only if it hashes to its digest, then links it.
    async fn fetch_blob(
        &self,
        src: &Repository,
        dst: &RepoName,
        desc: &Descriptor,
        progress: &Arc<BlobProgress>,
    ) -> Result<(), SyncError> {
        let body = src
            .open_blob(&desc.digest, 0, None)
            .await
            .map_err(|source| SyncError::Upstream {
                upstream: format!("{src_name}@{}", desc.digest, src_name = src.name()),
                source,
            })?;
        let (id, _) = self.uploads.start(dst).await?;
        let last = ClosingBody {
            body: progress.count(body),
            size: Some(desc.size),
            start: None,
        };
        match self
            .uploads
            .finish(dst, &id, Some(last), &desc.digest)
            .await
        {
            Ok(published) => {
                self.index.link_upload(published).await?;
                Ok(())
            }
            Err(e) => {
                // Nothing was published; the session's parts go now rather than at GC.
                let _ = self.uploads.cancel(dst, &id).await;
                Err(e.into())
            }
        }
    }
}

enum Blob {
    Present,
    Linked,
    Fetched(u64),
}

fn parse(m: &Manifest) -> Result<ParsedManifest, SyncError> {
    let content_type = Some(m.media_type.as_str()).filter(|t| !t.is_empty());
    ParsedManifest::parse(&m.bytes, content_type).map_err(|e| SyncError::Manifest {
        digest: m.digest.to_string(),
        reason: e.to_string(),
    })
}

async fn fetch(src: &Repository, digest: &Digest) -> Result<Manifest, SyncError> {
    let m = src
        .manifest(digest.as_str())
        .await
        .map_err(|source| SyncError::Upstream {
            upstream: format!("{}@{digest}", src.name()),
            source,
        })?
        .ok_or_else(|| SyncError::Manifest {
            digest: digest.to_string(),
            reason: "not found upstream".into(),
        })?;
    // What the registry accepts from a push, it accepts from an upstream.
    if m.bytes.len() > MAX_MANIFEST_BYTES {
        return Err(SyncError::Manifest {
            digest: digest.to_string(),
            reason: format!(
                "{} bytes, over the {MAX_MANIFEST_BYTES}-byte limit",
                m.bytes.len()
            ),
        });
    }
    Ok(m)
}

/// `root` with only the entries for `platforms` when it is an index: a new index (its
/// digest differs from the upstream's) unless every entry is kept.
fn only_platforms(root: Manifest, platforms: &[Platform]) -> Result<Manifest, SyncError> {
    if !parse(&root)?.media_type.is_index() {
        return Ok(root);
    }
    let bad = |reason: String| SyncError::Manifest {
        digest: root.digest.to_string(),
        reason,
    };
    let mut doc: serde_json::Value =
        serde_json::from_slice(&root.bytes).map_err(|e| bad(e.to_string()))?;
    let Some(entries) = doc.get_mut("manifests").and_then(|m| m.as_array_mut()) else {
        return Err(bad("an index without manifests".into()));
    };
    let before = entries.len();
    entries.retain(|e| platforms.iter().any(|p| p.matches(e.get("platform"))));
    if entries.is_empty() {
        return Err(bad("no entry for the configured platforms".into()));
    }
    if entries.len() == before {
        return Ok(root);
    }
    let bytes = serde_json::to_vec(&doc).map_err(|e| bad(e.to_string()))?;
    Ok(Manifest::new(bytes.into(), root.media_type))
}
