//! Manifests: stored byte for byte under their digest, copied under their tag, and
//! recorded in the tag list, the subject's referrers index and the catalog.

use std::collections::HashSet;

use blob_gateway::{DigestWriter, ManifestMeta, PutCondition, one_chunk};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use index_format::documents::{Catalog, ReferrersIndex, TagList};
use index_format::manifest::{Descriptor, ParsedManifest, sniff_media_type};
use index_format::{
    Digest, DigestAlgorithm, ManifestMediaType, Reference, RepoName, StorageKey, Tag,
};

use super::{Index, IndexError, MAX_MANIFEST_BYTES, found};

/// How many existence checks or tag reads run at once.
const PARALLEL_READS: usize = 16;

/// A manifest as read back from the index.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// The manifest exactly as pushed.
    pub bytes: Bytes,
    /// The type recorded at push or, for a manifest stored without one, sniffed from
    /// the bytes.
    pub media_type: ManifestMediaType,
    /// The manifest's digest: the one asked for, or for a tag, the SHA-256 of the bytes.
    pub digest: Digest,
    /// When the object read (the tag's, for a tag) was written, if the store says: how
    /// old a mirrored tag is.
    pub written: Option<std::time::SystemTime>,
}

/// A manifest accepted for a push.
#[derive(Debug, Clone)]
pub struct PushedManifest {
    /// The repository pushed to.
    pub repo: RepoName,
    /// The tag pushed to; `None` for a push by digest.
    pub tag: Option<Tag>,
    /// The digest of `bytes`, checked against the URL's digest on a push by digest.
    pub digest: Digest,
    /// The body as sent, stored byte for byte.
    pub bytes: Bytes,
    /// What the registry understood of `bytes`.
    pub parsed: ParsedManifest,
}

/// How a manifest with a subject is listed in its subject's referrers index.
pub(super) fn referrer(digest: &Digest, size: usize, parsed: &ParsedManifest) -> Descriptor {
    Descriptor {
        media_type: parsed.media_type.as_str().to_owned(),
        digest: digest.clone(),
        size: size as u64,
        urls: None,
        annotations: parsed.annotations.clone(),
        artifact_type: parsed.artifact_type.clone(),
        platform: None,
    }
}

/// The digest of `bytes` with `algorithm`.
pub fn digest_of(bytes: &[u8], algorithm: DigestAlgorithm) -> Digest {
    let mut w = DigestWriter::new(algorithm);
    w.update(bytes);
    w.digest()
}

impl Index {
    /// The manifest under a tag or digest, `None` if absent.
    pub async fn manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Option<StoredManifest>, IndexError> {
        let key = StorageKey::Manifest(repo.clone(), reference.clone());
        let max = MAX_MANIFEST_BYTES as u64;
        let Some((bytes, info)) = found(self.store.read(&key, max).await)? else {
            return Ok(None);
        };
        // A tag's digest: the hash the filesystem took while reading, else the one its
        // writer recorded with these bytes (S3 metadata), else the bytes hashed here. Only
        // parsed when needed: this runs on every pull.
        let digest = match (reference, info.sha256) {
            (Reference::Digest(d), _) => d.clone(),
            (Reference::Tag(_), Some(hash)) => Digest::sha256(&hash),
            (Reference::Tag(_), None) => info
                .digest
                .as_deref()
                .and_then(|d| Digest::new(d).ok())
                .filter(|d| d.algorithm() == DigestAlgorithm::Sha256)
                .unwrap_or_else(|| digest_of(&bytes, DigestAlgorithm::Sha256)),
        };
        // The type recorded at push; for objects placed without metadata, the body's own.
        let media_type = info
            .content_type
            .and_then(|t| ManifestMediaType::parse(&t).ok())
            .unwrap_or_else(|| sniff_media_type(&bytes));
        Ok(Some(StoredManifest {
            bytes,
            media_type,
            digest,
            written: info.last_modified,
        }))
    }

    /// Checks every reference of `parsed` against what `repo` stores: blobs must be linked
    /// and child manifests stored in the repository, each of the size its descriptor
    /// declares (a client trusting the size would otherwise read short or be told to read
    /// on). Foreign layers are not checked. Each distinct descriptor is checked once, so
    /// repeating one costs nothing.
    pub(super) async fn verify_references(
        &self,
        repo: &RepoName,
        parsed: &ParsedManifest,
    ) -> Result<(), IndexError> {
        let is_index = parsed.media_type.is_index();
        let mut seen = HashSet::new();
        let distinct: Vec<(Digest, u64)> = parsed
            .references
            .iter()
            .filter(|d| !d.is_foreign())
            .map(|d| (d.digest.clone(), d.size))
            .filter(|r| seen.insert(r.clone()))
            .collect();
        let index = self.clone();
        let repo2 = repo.clone();
        let stored: Vec<(Digest, u64, Option<u64>)> = stream::iter(distinct)
            .map(move |(digest, declared)| {
                let (index, repo) = (index.clone(), repo2.clone());
                async move {
                    let size = index.stored_size(&repo, &digest, is_index).await?;
                    Ok::<_, IndexError>((digest, declared, size))
                }
            })
            .buffered(PARALLEL_READS)
            .try_collect()
            .await?;
        let mut missing: Vec<Digest> = Vec::new();
        for (digest, _, size) in &stored {
            if size.is_none() && !missing.contains(digest) {
                missing.push(digest.clone());
            }
        }
        if !missing.is_empty() {
            return Err(IndexError::MissingReferences {
                repo: repo.clone(),
                missing,
            });
        }
        match stored.into_iter().find(|(_, d, s)| Some(*d) != *s) {
            Some((digest, declared, Some(stored))) => Err(IndexError::WrongSize {
                digest,
                declared,
                stored,
            }),
            _ => Ok(()),
        }
    }

    /// The size of a blob linked into `repo`, or of a manifest stored in it; `None` if absent.
    async fn stored_size(
        &self,
        repo: &RepoName,
        digest: &Digest,
        manifest: bool,
    ) -> Result<Option<u64>, IndexError> {
        if manifest {
            let key = StorageKey::Manifest(repo.clone(), Reference::Digest(digest.clone()));
            Ok(found(self.store.head(&key).await)?.map(|info| info.size))
        } else {
            Ok(self.blob(repo, digest).await?.map(|link| link.size))
        }
    }

    /// Records a pushed manifest once every reference it makes is linked into the
    /// repository: bytes by digest, then referrers, tag, tag list, catalog.
    pub async fn push_manifest(&self, push: &PushedManifest) -> Result<(), IndexError> {
        self.verify_references(&push.repo, &push.parsed).await?;
        self.record_manifest(push).await
    }

    /// Records a manifest a pull-through mirror fetched from its upstream (digest already
    /// verified), before what it references: a mirror fetches blobs and child manifests
    /// when a client first asks for them, so until then `index check` reports them as
    /// unlinked references of this repository, which the next pull fills in.
    pub async fn cache_manifest(&self, push: &PushedManifest) -> Result<(), IndexError> {
        self.record_manifest(push).await
    }

    /// Writes a manifest whose references have been dealt with: bytes by digest, then
    /// referrers, tag, tag list, catalog.
    async fn record_manifest(&self, push: &PushedManifest) -> Result<(), IndexError> {
        let by_digest =
            StorageKey::Manifest(push.repo.clone(), Reference::Digest(push.digest.clone()));
        self.put_manifest_bytes(&by_digest, push).await?;
        if let Some(subject) = &push.parsed.subject {
            let key = StorageKey::Referrers(push.repo.clone(), subject.digest.clone());
            let descriptor = referrer(&push.digest, push.bytes.len(), &push.parsed);
            self.update(&key, ReferrersIndex::default, |r| {
                r.upsert(descriptor.clone())
            })
            .await?;
        }
        if let Some(tag) = &push.tag {
            let by_tag = StorageKey::Manifest(push.repo.clone(), Reference::Tag(tag.clone()));
            self.put_manifest_bytes(&by_tag, push).await?;
            let key = StorageKey::TagList(push.repo.clone());
            let repo = push.repo.clone();
            self.update(
                &key,
                || TagList::new(repo.clone()),
                |l| l.insert(tag.clone()),
            )
            .await?;
        }
        let repo = push.repo.clone();
        self.update(&StorageKey::Catalog, Catalog::default, |c| {
            c.insert(repo.clone())
        })
        .await?;
        self.browse_push(push).await
    }

    /// Stores the manifest under `key` (its digest or a tag) with its media type and
    /// digest recorded beside it: what static hosts serve a pull from without reading it.
    async fn put_manifest_bytes(
        &self,
        key: &StorageKey,
        push: &PushedManifest,
    ) -> Result<(), IndexError> {
        let body = one_chunk(push.bytes.clone());
        let meta = ManifestMeta {
            media_type: push.parsed.media_type,
            digest: push.digest.clone(),
        };
        self.store
            .put(key, body, Some(meta), PutCondition::None)
            .await?;
        Ok(())
    }

    /// Deletes a manifest by digest, with every tag that points at it and its entry in
    /// its subject's referrers. `false` if the repository has no such manifest.
    pub async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<bool, IndexError> {
        let reference = Reference::Digest(digest.clone());
        let Some(stored) = self.manifest(repo, &reference).await? else {
            return Ok(false);
        };
        for tag in self.tags_pointing_at(repo, digest).await? {
            self.delete_tag(repo, &tag).await?;
        }
        let parsed = ParsedManifest::parse(&stored.bytes, Some(stored.media_type.as_str())).ok();
        if let Some(subject) = parsed.as_ref().and_then(|p| p.subject.clone()) {
            let key = StorageKey::Referrers(repo.clone(), subject.digest);
            self.update(&key, ReferrersIndex::default, |r| r.remove(digest))
                .await?;
        }
        self.store
            .delete(&StorageKey::Manifest(repo.clone(), reference))
            .await?;
        self.browse_delete_manifest(repo, digest, parsed.as_ref())
            .await?;
        Ok(true)
    }

    async fn tags_pointing_at(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Vec<Tag>, IndexError> {
        let Some(list) = self.tags(repo).await? else {
            return Ok(Vec::new());
        };
        let index = self.clone();
        let (repo, digest) = (repo.clone(), digest.clone());
        let tags: Vec<Option<Tag>> = stream::iter(list.tags)
            .map(move |tag| {
                let (index, repo, digest) = (index.clone(), repo.clone(), digest.clone());
                async move {
                    let found = index.manifest(&repo, &Reference::Tag(tag.clone())).await?;
                    let points =
                        found.is_some_and(|m| digest_of(&m.bytes, digest.algorithm()) == digest);
                    Ok::<_, IndexError>(points.then_some(tag))
                }
            })
            .buffered(PARALLEL_READS)
            .try_collect()
            .await?;
        Ok(tags.into_iter().flatten().collect())
    }

    /// Deletes a tag (not the manifest it points at). `false` if there was no such tag.
    pub async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<bool, IndexError> {
        let key = StorageKey::Manifest(repo.clone(), Reference::Tag(tag.clone()));
        let existed = found(self.store.head(&key).await)?.is_some();
        // The list first: a crash in between leaves an unlisted tag, never a listed ghost.
        let list_key = StorageKey::TagList(repo.clone());
        let repo2 = repo.clone();
        self.update(&list_key, || TagList::new(repo2.clone()), |l| l.remove(tag))
            .await?;
        self.store.delete(&key).await?;
        self.browse_delete_tag(repo, tag).await?;
        Ok(existed)
    }
}
