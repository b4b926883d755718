//! The browse documents ([`index_format::browse`]), written in the same write path as the
//! documents for clients and after them: a push records the manifest's detail, then its
//! subject's tags' referrer counts, the tag's record and the repository's summary, then the
//! repository in the browse catalog and search terms. A crash in between leaves browse
//! documents behind the API documents, never ahead of them, and `index rebuild` rewrites
//! them whole (`rebuild.rs`).

mod detail;
mod paged;
mod rebuild;

use std::time::{SystemTime, UNIX_EPOCH};

use index_format::browse::{
    BrowseList, ManifestDetail, RepositorySummary, TagRecord, count_referrers, search_entries,
};
use index_format::manifest::ParsedManifest;
use index_format::{Digest, RepoName, StorageKey, Tag, UiFile};

use bytes::Bytes;

use super::manifests::PushedManifest;

/// What a public document names, so access to it can be decided without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentAbout {
    /// `config.json`: the registry itself (token realm, public key), no repository.
    Registry,
    /// The catalog and search documents: every repository's name.
    EveryRepository,
    /// One repository's tags or manifests.
    Repository(RepoName),
}
use super::{Index, IndexError, found};

pub use rebuild::BrowseCheck;

/// How many times a push re-records a tag that other pushes keep moving.
const MAX_RETAGS: usize = 20;

/// Seconds since the Unix epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A tag's record as its repository page lists it.
fn tag_record(
    tag: &Tag,
    detail: &ManifestDetail,
    pushed: u64,
    referrers: &[index_format::manifest::Descriptor],
) -> TagRecord {
    TagRecord {
        tag: tag.clone(),
        digest: detail.digest.clone(),
        media_type: detail.media_type.clone(),
        size: detail.size,
        platforms: detail.platforms.clone(),
        created: detail.created.clone(),
        pushed,
        referrers: count_referrers(referrers),
    }
}

impl Index {
    /// Records a pushed manifest in the browse documents.
    pub(super) async fn browse_push(&self, push: &PushedManifest) -> Result<(), IndexError> {
        let repo = &push.repo;
        let detail = self
            .manifest_detail(repo, &push.digest, &push.bytes, &push.parsed)
            .await?;
        self.write_detail(repo, detail.clone()).await?;
        if let Some(subject) = &push.parsed.subject {
            self.browse_referrers_changed(repo, &subject.digest).await?;
        }
        if let Some(tag) = &push.tag {
            self.browse_tag(repo, tag, &detail, now()).await?;
        }
        self.browse_repository(repo).await
    }

    /// Stores a manifest's detail, keeping the tags already recorded as pointing at it.
    async fn write_detail(
        &self,
        repo: &RepoName,
        detail: ManifestDetail,
    ) -> Result<(), IndexError> {
        self.update_detail(repo, &detail.digest, |d| {
            let tags = d.as_ref().map(|d| d.tags.clone());
            let fresh = ManifestDetail {
                tags: tags.unwrap_or_default(),
                ..detail.clone()
            };
            let changed = d.as_ref().is_none_or(|d| *d != fresh);
            *d = Some(fresh);
            changed
        })
        .await
    }

    /// Changes a manifest's stored detail (`None` while it has none); `change` says
    /// whether it changed anything, and only then is the detail written.
    async fn update_detail(
        &self,
        repo: &RepoName,
        digest: &Digest,
        change: impl FnMut(&mut Option<ManifestDetail>) -> bool,
    ) -> Result<(), IndexError> {
        let key = StorageKey::BrowseManifest(repo.clone(), digest.clone());
        self.update(&key, || None, change).await.map(|_| ())
    }

    /// Records `tag` as pointing at `detail`'s manifest, pushed at `pushed`.
    async fn browse_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
        detail: &ManifestDetail,
        pushed: u64,
    ) -> Result<(), IndexError> {
        let mut detail = detail.clone();
        // Concurrent pushes to one tag may record their manifests in another order than
        // they wrote the tag file: each writer repeats until, after its write, the record
        // matches the file, so the last one to write leaves them agreeing.
        for _ in 0..MAX_RETAGS {
            self.record_tag(repo, tag, &detail, pushed).await?;
            let reference = index_format::Reference::Tag(tag.clone());
            let Some(now) = self.manifest(repo, &reference).await? else {
                return Ok(()); // deleted meanwhile: its deleter forgets the record
            };
            if now.digest == detail.digest {
                return Ok(());
            }
            let key = StorageKey::BrowseManifest(repo.clone(), now.digest);
            match self.read::<ManifestDetail>(&key).await? {
                Some(d) => detail = d,
                None => return Ok(()), // not recorded yet: its own push records the tag
            }
        }
        Ok(())
    }

    async fn record_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
        detail: &ManifestDetail,
        pushed: u64,
    ) -> Result<(), IndexError> {
        let referrers = self.referrers(repo, &detail.digest).await?;
        let record = tag_record(tag, detail, pushed, &referrers.manifests);
        let list = BrowseList::Tags(repo.clone());
        let before: Option<TagRecord> = self.page_upsert(&list, record.clone()).await?;
        self.update_summary(repo, |s| s.pushed(&record, before.is_none()))
            .await?;
        if let Some(old) = before.filter(|b| b.digest != record.digest) {
            self.detail_tags(repo, &old.digest, |t| t.retain(|x| x != tag))
                .await?;
        }
        self.detail_tags(repo, &record.digest, |t| {
            if !t.contains(tag) {
                t.push(tag.clone());
                t.sort();
            }
        })
        .await
    }

    async fn update_summary(
        &self,
        repo: &RepoName,
        change: impl Fn(&mut RepositorySummary),
    ) -> Result<(), IndexError> {
        let key = StorageKey::BrowseDirectory(BrowseList::Tags(repo.clone()));
        self.update(
            &key,
            Default::default,
            |d: &mut index_format::browse::Directory| {
                let summary = d.repository.get_or_insert_with(|| RepositorySummary {
                    name: Some(repo.clone()),
                    ..RepositorySummary::default()
                });
                change(summary);
                true
            },
        )
        .await
        .map(|_| ())
    }

    /// Changes the tags recorded on a manifest's detail, if it has one.
    async fn detail_tags(
        &self,
        repo: &RepoName,
        digest: &Digest,
        change: impl Fn(&mut Vec<Tag>),
    ) -> Result<(), IndexError> {
        // Absent stays absent (`None` is never written): the manifest was deleted.
        self.update_detail(repo, digest, |d| match d {
            Some(d) => {
                let before = d.tags.clone();
                change(&mut d.tags);
                before != d.tags
            }
            None => false,
        })
        .await
    }

    /// Recounts the referrers of `subject` on every tag pointing at it.
    async fn browse_referrers_changed(
        &self,
        repo: &RepoName,
        subject: &Digest,
    ) -> Result<(), IndexError> {
        let key = StorageKey::BrowseManifest(repo.clone(), subject.clone());
        let Some(detail) = self.read::<ManifestDetail>(&key).await? else {
            return Ok(());
        };
        let counts = count_referrers(&self.referrers(repo, subject).await?.manifests);
        let list = BrowseList::Tags(repo.clone());
        for tag in &detail.tags {
            self.page_modify(&list, tag.as_str(), |r: &mut TagRecord| {
                let changed = r.digest == *subject && r.referrers != counts;
                if changed {
                    r.referrers = counts.clone();
                }
                changed
            })
            .await?;
        }
        Ok(())
    }

    /// Adds a repository to the browse catalog and, the first time, its search terms.
    async fn browse_repository(&self, repo: &RepoName) -> Result<(), IndexError> {
        let known = self
            .page_upsert(&BrowseList::Catalog, repo.as_str().to_owned())
            .await?;
        if known.is_none() {
            for entry in search_entries(repo) {
                self.page_upsert(&BrowseList::Search, entry).await?;
            }
        }
        Ok(())
    }

    /// Forgets a deleted tag.
    pub(super) async fn browse_delete_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
    ) -> Result<(), IndexError> {
        let list = BrowseList::Tags(repo.clone());
        let Some(old) = self.page_remove::<TagRecord>(&list, tag.as_str()).await? else {
            return Ok(());
        };
        self.update_summary(repo, |s| s.removed(tag)).await?;
        self.detail_tags(repo, &old.digest, |t| t.retain(|x| x != tag))
            .await
    }

    /// Forgets a deleted manifest (its tags are gone already).
    pub(super) async fn browse_delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        parsed: Option<&ParsedManifest>,
    ) -> Result<(), IndexError> {
        self.store
            .delete(&StorageKey::BrowseManifest(repo.clone(), digest.clone()))
            .await?;
        if let Some(subject) = parsed.and_then(|p| p.subject.as_ref()) {
            self.browse_referrers_changed(repo, &subject.digest).await?;
        }
        Ok(())
    }

    /// What the document at `path` (as [`public_document`](Self::public_document) takes
    /// it) tells about, for access checks; `None` for no such document.
    pub fn document_about(path: &str) -> Option<DocumentAbout> {
        Some(match StorageKey::parse(path)? {
            StorageKey::Config => DocumentAbout::Registry,
            StorageKey::BrowseDirectory(l) | StorageKey::BrowsePage(l, _) => match l {
                BrowseList::Catalog | BrowseList::Search => DocumentAbout::EveryRepository,
                BrowseList::Tags(repo) => DocumentAbout::Repository(repo),
            },
            StorageKey::BrowseManifest(repo, _) => DocumentAbout::Repository(repo),
            _ => return None,
        })
    }

    /// A document served over HTTP at `/<key>` for the UI: a browse document or the root
    /// `config.json`, with its ETag; `None` for any other path or a missing document.
    pub async fn public_document(&self, path: &str) -> Result<Option<(Bytes, String)>, IndexError> {
        let key = match StorageKey::parse(path) {
            Some(
                k @ (StorageKey::Config
                | StorageKey::BrowseDirectory(_)
                | StorageKey::BrowsePage(..)
                | StorageKey::BrowseManifest(..)),
            ) => k,
            _ => return Ok(None),
        };
        Ok(found(
            self.store
                .read(&key, super::documents::MAX_DOCUMENT_BYTES)
                .await,
        )?
        .map(|(bytes, info)| (bytes, info.etag.0)))
    }

    /// Publishes the browse UI's files for static hosts, rewriting only what changed.
    pub async fn write_ui(&self, files: &[(UiFile, &'static [u8])]) -> Result<(), IndexError> {
        for (file, bytes) in files {
            let key = StorageKey::Ui(*file);
            let same = self
                .load(&key, super::documents::MAX_DOCUMENT_BYTES)
                .await?
                .is_some_and(|l| l.bytes.as_ref() == *bytes);
            if !same {
                blob_gateway::put_bytes(
                    self.store.as_ref(),
                    &key,
                    bytes::Bytes::from_static(bytes),
                    blob_gateway::PutCondition::None,
                )
                .await?;
            }
        }
        Ok(())
    }
}
