//! One walk of an image graph from one [`Endpoint`] to another: push, pull and copy are
//! this walk with different ends. Manifests are read first (they are small), blobs then
//! move in parallel, and manifests are written children first, the root last, referrers
//! after their subjects, so the destination never holds a manifest naming what it lacks.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use index_format::Digest;
use index_format::manifest::{Descriptor, ParsedManifest};

use super::endpoint::Endpoint;
use super::repository::Manifest;
use super::upload::BlobOutcome;
use super::{Client, ClientError};

/// A platform to pick from an index: `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `os`, e.g. `linux`.
    pub os: String,
    /// `architecture`, e.g. `amd64`.
    pub architecture: String,
    /// `variant`, e.g. `v8`, when given.
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Self, ClientError> {
        let mut parts = s.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(os), Some(arch), variant, None) if !os.is_empty() && !arch.is_empty() => {
                Ok(Self {
                    os: os.to_owned(),
                    architecture: arch.to_owned(),
                    variant: variant.map(str::to_owned),
                })
            }
            _ => Err(ClientError::Input(format!(
                "platform {s:?}: want os/arch[/variant]"
            ))),
        }
    }

    /// Whether an index entry's `platform` object is this platform.
    pub fn matches(&self, platform: Option<&serde_json::Value>) -> bool {
        let field = |k: &str| platform.and_then(|p| p.get(k)).and_then(|v| v.as_str());
        field("os") == Some(&self.os)
            && field("architecture") == Some(&self.architecture)
            && self
                .variant
                .as_deref()
                .is_none_or(|v| field("variant") == Some(v))
    }
}

/// What a transfer did.
#[derive(Debug)]
pub struct Transferred {
    /// The manifest written under the destination's tag.
    pub root: Manifest,
    /// Manifests written (indexes, images, referrers).
    pub manifests: usize,
    /// Blobs the image needs, and how each got there.
    pub blobs: Vec<(Digest, BlobOutcome)>,
}

/// Copies the image `reference` names from `src` to `dst`, under `tag` there (by digest
/// when `None`): an index with every platform, or only `platform`'s image; with
/// `referrers`, every manifest whose subject is copied, transitively.
pub async fn copy_image(
    client: &Client,
    src: &Endpoint,
    reference: &str,
    dst: &Endpoint,
    tag: Option<&str>,
    platform: Option<&Platform>,
    referrers: bool,
) -> Result<Transferred, ClientError> {
    let mut root = src.manifest(reference).await?.ok_or_else(|| {
        ClientError::Input(format!("{reference}: no such manifest in the source"))
    })?;
    if let Some(p) = platform {
        let parsed = parse(&root)?;
        if parsed.media_type.is_index() {
            let child = parsed
                .references
                .iter()
                .find(|d| p.matches(d.platform.as_ref()))
                .ok_or_else(|| {
                    ClientError::Input(format!(
                        "{reference}: no image for {}/{}",
                        p.os, p.architecture
                    ))
                })?;
            root = fetch(src, &child.digest).await?;
        }
    }
    let mut seen = HashSet::new();
    let mut blobs = BTreeMap::new();
    let graph = walk(src, root.clone(), &mut seen, &mut blobs).await?;
    let mut attached = Vec::new();
    if referrers {
        let mut subjects: Vec<Digest> = graph.iter().map(|m| m.digest.clone()).collect();
        while let Some(subject) = subjects.pop() {
            for d in src.referrers(&subject).await? {
                if seen.contains(&d.digest) {
                    continue;
                }
                let found = walk(src, fetch(src, &d.digest).await?, &mut seen, &mut blobs).await?;
                subjects.extend(found.iter().map(|m| m.digest.clone()));
                attached.extend(found);
            }
        }
    }
    let blobs = copy_blobs(client, src, dst, blobs.into_values().collect()).await?;
    let manifests = graph.len() + attached.len();
    for m in &graph[..graph.len() - 1] {
        dst.put_manifest(None, m).await?;
    }
    dst.put_root(tag, &root).await?;
    for m in &attached {
        dst.put_manifest(None, m).await?;
    }
    Ok(Transferred {
        root,
        manifests,
        blobs,
    })
}

fn parse(m: &Manifest) -> Result<ParsedManifest, ClientError> {
    let content_type = Some(m.media_type.as_str()).filter(|t| !t.is_empty());
    ParsedManifest::parse(&m.bytes, content_type)
        .map_err(|e| ClientError::Input(format!("manifest {}: {e}", m.digest)))
}

async fn fetch(src: &Endpoint, digest: &Digest) -> Result<Manifest, ClientError> {
    src.manifest(digest.as_str())
        .await?
        .ok_or_else(|| ClientError::Input(format!("{digest}: no such manifest in the source")))
}

/// The manifests reachable from `start` through indexes, children first (`start` last);
/// the blobs their images need are added to `blobs`.
async fn walk(
    src: &Endpoint,
    start: Manifest,
    seen: &mut HashSet<Digest>,
    blobs: &mut BTreeMap<Digest, Descriptor>,
) -> Result<Vec<Manifest>, ClientError> {
    let mut queue = VecDeque::from([start]);
    let mut found = Vec::new();
    while let Some(m) = queue.pop_front() {
        if !seen.insert(m.digest.clone()) {
            continue;
        }
        let parsed = parse(&m)?;
        if parsed.media_type.is_index() {
            for child in &parsed.references {
                queue.push_back(fetch(src, &child.digest).await?);
            }
        } else {
            for r in parsed.references.into_iter().filter(|r| !r.is_foreign()) {
                blobs.insert(r.digest.clone(), r);
            }
        }
        found.push(m);
    }
    found.reverse();
    Ok(found)
}

async fn copy_blobs(
    client: &Client,
    src: &Endpoint,
    dst: &Endpoint,
    blobs: Vec<Descriptor>,
) -> Result<Vec<(Digest, BlobOutcome)>, ClientError> {
    let mount = src.mount_source(dst);
    let options = client.options();
    futures::stream::iter(blobs)
        .map(|desc| {
            let mount = mount.clone();
            async move {
                let progress = Arc::new(client.progress().blob(desc.digest.as_str(), desc.size));
                let source = src.blob_source(&desc.digest);
                let outcome = dst
                    .put_blob(&desc, &source, mount.as_ref(), options, &progress)
                    .await?;
                progress.done(outcome.word());
                Ok::<_, ClientError>((desc.digest, outcome))
            }
        })
        .buffer_unordered(options.jobs.max(1))
        .try_collect()
        .await
}
