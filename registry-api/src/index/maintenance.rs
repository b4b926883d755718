//! `cargohold index check | rebuild`: the derived documents (tag lists, referrers, the
//! catalog) recomputed from the source of truth (the manifests by digest and by tag, and
//! the blob links), compared with what is stored, and on `rebuild` repaired. Manifests
//! stored without the media type and digest static hosts read (format version 1, or put
//! in place by another tool) are found too, and `rebuild` records them: the migration to
//! format version 2 (docs/index-format.md).
//!
//! Repairs use the server's own conditional updates (insert or remove one entry at a
//! time, re-checked at write time), so a rebuild is idempotent and safe while servers run:
//! an entry is removed only when what it names is gone, and a concurrent push's own write
//! never conflicts with one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use blob_gateway::{ETag, ManifestMeta, ObjectInfo, PutCondition, one_chunk};
use index_format::documents::{Catalog, ReferrersIndex, TagList};
use index_format::manifest::{Descriptor, ParsedManifest, sniff_media_type};
use index_format::{Digest, KeyPrefix, ManifestMediaType, Reference, RepoName, StorageKey, Tag};

use index_format::browse::BrowseList;

use super::browse::BrowseCheck;
use super::manifests::{digest_of, referrer};
use super::{Index, IndexError, found};

const PAGE: usize = 1000;

/// One disagreement between the index and its source of truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A tag whose manifest is not stored by digest (repaired from the tag's own bytes).
    TagWithoutManifest {
        /// The repository.
        repo: RepoName,
        /// The tag.
        tag: Tag,
        /// The digest of the tag's manifest bytes.
        digest: Digest,
    },
    /// A manifest stored under a digest its bytes do not have (not repairable).
    DigestMismatch {
        /// The repository.
        repo: RepoName,
        /// The digest the manifest is stored under.
        digest: Digest,
    },
    /// A stored manifest that does not parse (not repairable).
    UnreadableManifest {
        /// The repository.
        repo: RepoName,
        /// The digest the manifest is stored under.
        digest: Digest,
        /// Why it does not parse.
        reason: String,
    },
    /// A manifest naming a blob the repository has no link to (repaired when the blob is
    /// stored), or a child manifest the repository lacks (not repairable).
    UnlinkedReference {
        /// The repository.
        repo: RepoName,
        /// The manifest that names the missing content.
        manifest: Digest,
        /// The blob or child manifest the repository cannot serve.
        missing: Digest,
    },
    /// A tag file the tag list does not name.
    TagNotListed {
        /// The repository.
        repo: RepoName,
        /// The tag missing from the list.
        tag: Tag,
    },
    /// A listed tag with no tag file.
    TagListedWithoutFile {
        /// The repository.
        repo: RepoName,
        /// The listed tag that does not exist.
        tag: Tag,
    },
    /// A manifest with a subject missing from that subject's referrers.
    ReferrerNotListed {
        /// The repository.
        repo: RepoName,
        /// The digest the manifest's `subject` names.
        subject: Digest,
        /// The manifest missing from the subject's referrers.
        referrer: Digest,
    },
    /// A referrers entry whose manifest is gone.
    ReferrerListedWithoutManifest {
        /// The repository.
        repo: RepoName,
        /// The subject whose referrers list the entry.
        subject: Digest,
        /// The listed manifest that is gone.
        referrer: Digest,
    },
    /// A repository with manifests that the catalog does not name.
    RepositoryNotInCatalog {
        /// The repository missing from the catalog.
        repo: RepoName,
    },
    /// A manifest stored without its media type or digest recorded beside it (format
    /// version 1, or placed by another tool): static hosts cannot serve it as they should
    /// (repaired by storing the same bytes again with both).
    ManifestNotRecorded {
        /// The repository.
        repo: RepoName,
        /// The tag or digest it is stored under.
        reference: Reference,
    },
    /// A derived document that does not parse (rewritten whole).
    CorruptDocument {
        /// The document's storage key.
        key: String,
    },
    /// Browse documents that disagree with the manifests and tags (rewritten whole).
    BrowseOutdated {
        /// The repository; `None` for the browse catalog and search terms.
        repo: Option<RepoName>,
        /// Which documents.
        what: &'static str,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TagWithoutManifest { repo, tag, digest } => {
                write!(
                    f,
                    "{repo}:{tag} names {digest}, which is not stored by digest"
                )
            }
            Self::DigestMismatch { repo, digest } => {
                write!(f, "{repo}@{digest}: the stored bytes have another digest")
            }
            Self::UnreadableManifest {
                repo,
                digest,
                reason,
            } => {
                write!(
                    f,
                    "{repo}@{digest}: stored manifest is unreadable: {reason}"
                )
            }
            Self::UnlinkedReference {
                repo,
                manifest,
                missing,
            } => {
                write!(
                    f,
                    "{repo}@{manifest} names {missing}, which {repo} cannot serve"
                )
            }
            Self::TagNotListed { repo, tag } => {
                write!(f, "{repo}:{tag} is missing from the tag list")
            }
            Self::TagListedWithoutFile { repo, tag } => {
                write!(f, "{repo}: the tag list names {tag}, which does not exist")
            }
            Self::ReferrerNotListed {
                repo,
                subject,
                referrer,
            } => {
                write!(f, "{repo}: referrers of {subject} miss {referrer}")
            }
            Self::ReferrerListedWithoutManifest {
                repo,
                subject,
                referrer,
            } => {
                write!(
                    f,
                    "{repo}: referrers of {subject} name {referrer}, which is gone"
                )
            }
            Self::RepositoryNotInCatalog { repo } => {
                write!(f, "{repo} is missing from the catalog")
            }
            Self::ManifestNotRecorded { repo, reference } => {
                write!(
                    f,
                    "{repo}/manifests/{reference}: no media type or digest recorded with it"
                )
            }
            Self::CorruptDocument { key } => write!(f, "{key} is not valid JSON"),
            Self::BrowseOutdated {
                repo: Some(repo),
                what,
            } => {
                write!(f, "{repo}: browse {what} are out of date")
            }
            Self::BrowseOutdated { repo: None, what } => write!(f, "browse {what} are out of date"),
        }
    }
}

/// What a check or rebuild found, and how many findings a rebuild repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Repositories looked at.
    pub repositories: usize,
    /// Every disagreement found.
    pub findings: Vec<Finding>,
    /// How many of them were repaired (always 0 for a check).
    pub repaired: usize,
    /// References of cached manifests in pull-through repositories that no client has
    /// asked for yet: expected there (a later pull fetches them), so not findings.
    pub unfetched: usize,
}

/// What one repository's manifests and tags say the derived documents should hold.
#[derive(Default)]
struct Truth {
    tags: BTreeMap<Tag, Digest>,
    manifests: BTreeMap<Digest, (bytes::Bytes, Option<ManifestMediaType>)>,
    links: BTreeSet<Digest>,
    referrers_docs: BTreeSet<Digest>,
    has_tag_list: bool,
    unrecorded: Vec<Unrecorded>,
    browse_details: BTreeSet<Digest>,
}

/// One manifest's references, and whether its repository fills them lazily.
#[derive(Clone, Copy)]
struct References<'a> {
    manifest: &'a Digest,
    parsed: &'a ParsedManifest,
    lazy: bool,
}

/// A stored manifest whose metadata is missing or wrong, with what it should be.
struct Unrecorded {
    reference: Reference,
    /// The ETag of the bytes read: the repair replaces exactly them.
    etag: ETag,
    bytes: bytes::Bytes,
    meta: ManifestMeta,
}

impl Index {
    /// Compares the index with its source of truth (one repository, or all and the
    /// catalog); with `repair`, fixes what can be fixed. Repositories for which
    /// `pulled_through` says yes fill their references lazily (the mirror).
    pub async fn check(
        &self,
        repo: Option<&RepoName>,
        repair: bool,
        pulled_through: &dyn Fn(&RepoName) -> bool,
    ) -> Result<Report, IndexError> {
        let repos = self.repositories(repo).await?;
        let mut report = Report {
            repositories: repos.len(),
            ..Report::default()
        };
        for (name, keys) in &repos {
            let truth = self.truth(keys).await?;
            let lazy = pulled_through(name);
            self.check_repository(name, &truth, repair, lazy, &mut report)
                .await?;
        }
        if repo.is_none() {
            self.check_catalog(&repos, repair, &mut report).await?;
        }
        Ok(report)
    }

    /// The index keys of each repository (just `only`'s, when given).
    async fn repositories(
        &self,
        only: Option<&RepoName>,
    ) -> Result<BTreeMap<RepoName, Vec<StorageKey>>, IndexError> {
        let prefix = only.map_or(KeyPrefix::Index, |r| KeyPrefix::Repository(r.clone()));
        let mut repos: BTreeMap<RepoName, Vec<StorageKey>> = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list(&prefix, after.as_deref(), PAGE).await?;
            for key in page.keys.iter().filter_map(|k| StorageKey::parse(k)) {
                let name = match &key {
                    StorageKey::Manifest(n, _)
                    | StorageKey::TagList(n)
                    | StorageKey::Referrers(n, _)
                    | StorageKey::BlobLink(n, _)
                    | StorageKey::BrowseManifest(n, _)
                    | StorageKey::BrowseDirectory(BrowseList::Tags(n))
                    | StorageKey::BrowsePage(BrowseList::Tags(n), _) => n.clone(),
                    _ => continue,
                };
                if only.is_none_or(|o| o == &name) {
                    repos.entry(name).or_default().push(key);
                }
            }
            match (page.truncated, page.keys.last()) {
                (true, Some(last)) => after = Some(last.clone()),
                _ => break,
            }
        }
        Ok(repos)
    }

    async fn truth(&self, keys: &[StorageKey]) -> Result<Truth, IndexError> {
        let mut truth = Truth::default();
        for key in keys {
            match key {
                StorageKey::Manifest(_, reference) => {
                    let Some((bytes, info)) = self.read_object(key).await? else {
                        continue;
                    };
                    let media_type = info
                        .content_type
                        .as_deref()
                        .and_then(|t| ManifestMediaType::parse(t).ok());
                    let digest = match reference {
                        Reference::Tag(t) => {
                            let digest = digest_of(&bytes, index_format::DigestAlgorithm::Sha256);
                            truth.tags.insert(t.clone(), digest.clone());
                            let entry = (bytes.clone(), media_type);
                            truth.manifests.entry(digest.clone()).or_insert(entry);
                            digest
                        }
                        Reference::Digest(d) => {
                            truth
                                .manifests
                                .insert(d.clone(), (bytes.clone(), media_type));
                            d.clone()
                        }
                    };
                    if media_type.is_none() || info.digest.as_deref() != Some(digest.as_str()) {
                        let media_type = media_type.unwrap_or_else(|| sniff_media_type(&bytes));
                        truth.unrecorded.push(Unrecorded {
                            reference: reference.clone(),
                            etag: info.etag,
                            bytes,
                            meta: ManifestMeta { media_type, digest },
                        });
                    }
                }
                StorageKey::BlobLink(_, d) => {
                    truth.links.insert(d.clone());
                }
                StorageKey::Referrers(_, d) => {
                    truth.referrers_docs.insert(d.clone());
                }
                StorageKey::TagList(_) => truth.has_tag_list = true,
                StorageKey::BrowseManifest(_, d) => {
                    truth.browse_details.insert(d.clone());
                }
                _ => {}
            }
        }
        Ok(truth)
    }

    /// A stored manifest's bytes and info, `None` if it vanished meanwhile.
    async fn read_object(
        &self,
        key: &StorageKey,
    ) -> Result<Option<(bytes::Bytes, ObjectInfo)>, IndexError> {
        let read = self.store.read(key, super::MAX_MANIFEST_BYTES as u64).await;
        found(read)
    }

    async fn check_repository(
        &self,
        repo: &RepoName,
        truth: &Truth,
        repair: bool,
        lazy: bool,
        report: &mut Report,
    ) -> Result<(), IndexError> {
        let mut referrers: BTreeMap<Digest, Vec<Descriptor>> = BTreeMap::new();
        for (digest, (bytes, media_type)) in &truth.manifests {
            if !self
                .check_stored(repo, digest, bytes, *media_type, truth, repair, report)
                .await?
            {
                continue;
            }
            let media_type = media_type.unwrap_or_else(|| sniff_media_type(bytes));
            let parsed = match ParsedManifest::parse(bytes, Some(media_type.as_str())) {
                Ok(p) => p,
                Err(e) => {
                    report.findings.push(Finding::UnreadableManifest {
                        repo: repo.clone(),
                        digest: digest.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let refs = References {
                manifest: digest,
                parsed: &parsed,
                lazy,
            };
            self.check_references(repo, &refs, truth, repair, report)
                .await?;
            if let Some(subject) = &parsed.subject {
                referrers
                    .entry(subject.digest.clone())
                    .or_default()
                    .push(referrer(digest, bytes.len(), &parsed));
            }
        }
        self.check_recorded(repo, truth, repair, report).await?;
        self.check_tag_list(repo, truth, repair, report).await?;
        self.check_referrers(repo, truth, &referrers, repair, report)
            .await?;
        let browse = BrowseCheck {
            tags: &truth.tags,
            manifests: &truth.manifests,
            details: &truth.browse_details,
        };
        let wrong = self.check_browse(repo, &browse, repair).await?;
        browse_findings(report, Some(repo), wrong, repair);
        Ok(())
    }

    /// Manifests stored without their media type and digest: stored again with both,
    /// only if still the same bytes (a push meanwhile recorded its own).
    async fn check_recorded(
        &self,
        repo: &RepoName,
        truth: &Truth,
        repair: bool,
        report: &mut Report,
    ) -> Result<(), IndexError> {
        for u in &truth.unrecorded {
            // Bytes under a digest they do not have are DigestMismatch: nothing to record.
            if let Reference::Digest(d) = &u.reference
                && &digest_of(&u.bytes, d.algorithm()) != d
            {
                continue;
            }
            let finding = Finding::ManifestNotRecorded {
                repo: repo.clone(),
                reference: u.reference.clone(),
            };
            let key = StorageKey::Manifest(repo.clone(), u.reference.clone());
            let fix = async {
                let body = one_chunk(u.bytes.clone());
                let condition = PutCondition::IfMatch(u.etag.clone());
                match self
                    .store
                    .put(&key, body, Some(u.meta.clone()), condition)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(e) if e.is_precondition_failed() || e.is_not_found() => Ok(false),
                    Err(e) => Err(e.into()),
                }
            };
            record(report, finding, repair, fix).await?;
        }
        Ok(())
    }

    /// Checks that the manifest is stored by digest, under the digest of its bytes;
    /// `false` when its bytes cannot be trusted, so nothing is derived from them.
    #[allow(clippy::too_many_arguments)]
    async fn check_stored(
        &self,
        repo: &RepoName,
        digest: &Digest,
        bytes: &bytes::Bytes,
        media_type: Option<ManifestMediaType>,
        truth: &Truth,
        repair: bool,
        report: &mut Report,
    ) -> Result<bool, IndexError> {
        let key = StorageKey::Manifest(repo.clone(), Reference::Digest(digest.clone()));
        if self.exists(&key).await? {
            if &digest_of(bytes, digest.algorithm()) == digest {
                return Ok(true);
            }
            report.findings.push(Finding::DigestMismatch {
                repo: repo.clone(),
                digest: digest.clone(),
            });
            return Ok(false);
        }
        // Only a tag has these bytes (hashed to find `digest`): store them under it again.
        let tag = truth
            .tags
            .iter()
            .find(|(_, d)| *d == digest)
            .map(|(t, _)| t);
        if let Some(tag) = tag {
            let finding = Finding::TagWithoutManifest {
                repo: repo.clone(),
                tag: tag.clone(),
                digest: digest.clone(),
            };
            let fix = self.restore_manifest(repo, digest, bytes, media_type);
            record(report, finding, repair, fix).await?;
        }
        Ok(true)
    }

    async fn restore_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        bytes: &bytes::Bytes,
        media_type: Option<ManifestMediaType>,
    ) -> Result<bool, IndexError> {
        let key = StorageKey::Manifest(repo.clone(), Reference::Digest(digest.clone()));
        let body = one_chunk(bytes.clone());
        let meta = ManifestMeta {
            media_type: media_type.unwrap_or_else(|| sniff_media_type(bytes)),
            digest: digest.clone(),
        };
        match self
            .store
            .put(&key, body, Some(meta), PutCondition::IfNoneMatch)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_precondition_failed() => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    async fn check_references(
        &self,
        repo: &RepoName,
        refs: &References<'_>,
        truth: &Truth,
        repair: bool,
        report: &mut Report,
    ) -> Result<(), IndexError> {
        let References {
            manifest,
            parsed,
            lazy,
        } = *refs;
        let is_index = parsed.media_type.is_index();
        for d in parsed.references.iter().filter(|d| !d.is_foreign()) {
            let present = if is_index {
                truth.manifests.contains_key(&d.digest)
            } else {
                truth.links.contains(&d.digest)
            };
            if present {
                continue;
            }
            if lazy {
                report.unfetched += 1;
                continue;
            }
            let finding = Finding::UnlinkedReference {
                repo: repo.clone(),
                manifest: manifest.clone(),
                missing: d.digest.clone(),
            };
            record(
                report,
                finding,
                repair && !is_index,
                self.relink(repo, &d.digest),
            )
            .await?;
        }
        Ok(())
    }

    /// Links a stored blob into `repo` again; `false` if the blob itself is gone.
    async fn relink(&self, repo: &RepoName, digest: &Digest) -> Result<bool, IndexError> {
        match found(self.store.head(&StorageKey::Blob(digest.clone())).await)? {
            Some(info) => self.link_blob(repo, digest, info.size).await.map(|()| true),
            None => Ok(false),
        }
    }

    async fn check_tag_list(
        &self,
        repo: &RepoName,
        truth: &Truth,
        repair: bool,
        report: &mut Report,
    ) -> Result<(), IndexError> {
        let key = StorageKey::TagList(repo.clone());
        let listed = match self.tags(repo).await {
            Ok(list) => list.map(|l| l.tags).unwrap_or_default(),
            Err(IndexError::Corrupt { .. }) => {
                let finding = Finding::CorruptDocument { key: key.key() };
                record(report, finding, repair, self.remove_document(&key)).await?;
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let listed: BTreeSet<&Tag> = listed.iter().collect();
        for tag in truth.tags.keys().filter(|t| !listed.contains(t)) {
            let finding = Finding::TagNotListed {
                repo: repo.clone(),
                tag: tag.clone(),
            };
            let fix = self.update(
                &key,
                || TagList::new(repo.clone()),
                |l| l.insert(tag.clone()),
            );
            record(report, finding, repair, async { fix.await.map(|_| true) }).await?;
        }
        for tag in listed.into_iter().filter(|t| !truth.tags.contains_key(*t)) {
            let finding = Finding::TagListedWithoutFile {
                repo: repo.clone(),
                tag: tag.clone(),
            };
            let fix = self.unlist_tag(repo, tag);
            record(report, finding, repair, fix).await?;
        }
        Ok(())
    }

    /// Removes `tag` from the list, if its file is (still) gone.
    async fn unlist_tag(&self, repo: &RepoName, tag: &Tag) -> Result<bool, IndexError> {
        let file = StorageKey::Manifest(repo.clone(), Reference::Tag(tag.clone()));
        if self.exists(&file).await? {
            return Ok(true);
        }
        let key = StorageKey::TagList(repo.clone());
        self.update(&key, || TagList::new(repo.clone()), |l| l.remove(tag))
            .await
            .map(|_| true)
    }

    async fn check_referrers(
        &self,
        repo: &RepoName,
        truth: &Truth,
        expected: &BTreeMap<Digest, Vec<Descriptor>>,
        repair: bool,
        report: &mut Report,
    ) -> Result<(), IndexError> {
        let subjects: BTreeSet<&Digest> = expected.keys().chain(&truth.referrers_docs).collect();
        for subject in subjects {
            let key = StorageKey::Referrers(repo.clone(), subject.clone());
            let stored = match self.read::<ReferrersIndex>(&key).await {
                Ok(r) => r.unwrap_or_default(),
                Err(IndexError::Corrupt { .. }) => {
                    let finding = Finding::CorruptDocument { key: key.key() };
                    record(report, finding, repair, self.remove_document(&key)).await?;
                    ReferrersIndex::default()
                }
                Err(e) => return Err(e),
            };
            let want = expected.get(subject).map(Vec::as_slice).unwrap_or_default();
            for d in want.iter().filter(|d| !stored.manifests.contains(d)) {
                let finding = Finding::ReferrerNotListed {
                    repo: repo.clone(),
                    subject: subject.clone(),
                    referrer: d.digest.clone(),
                };
                let fix = self.update(&key, ReferrersIndex::default, |r| r.upsert(d.clone()));
                record(report, finding, repair, async { fix.await.map(|_| true) }).await?;
            }
            let gone = stored
                .manifests
                .iter()
                .filter(|s| !truth.manifests.contains_key(&s.digest));
            for d in gone {
                let finding = Finding::ReferrerListedWithoutManifest {
                    repo: repo.clone(),
                    subject: subject.clone(),
                    referrer: d.digest.clone(),
                };
                let fix = self.unlist_referrer(repo, subject, &d.digest);
                record(report, finding, repair, fix).await?;
            }
        }
        Ok(())
    }

    /// Removes `referrer` from `subject`'s referrers, if its manifest is (still) gone.
    async fn unlist_referrer(
        &self,
        repo: &RepoName,
        subject: &Digest,
        referrer: &Digest,
    ) -> Result<bool, IndexError> {
        let manifest = StorageKey::Manifest(repo.clone(), Reference::Digest(referrer.clone()));
        if self.exists(&manifest).await? {
            return Ok(true);
        }
        let key = StorageKey::Referrers(repo.clone(), subject.clone());
        self.update(&key, ReferrersIndex::default, |r| r.remove(referrer))
            .await
            .map(|_| true)
    }

    async fn check_catalog(
        &self,
        repos: &BTreeMap<RepoName, Vec<StorageKey>>,
        repair: bool,
        report: &mut Report,
    ) -> Result<(), IndexError> {
        let catalog = match self.catalog().await {
            Ok(c) => c,
            Err(IndexError::Corrupt { .. }) => {
                let key = StorageKey::Catalog;
                let finding = Finding::CorruptDocument { key: key.key() };
                record(report, finding, repair, self.remove_document(&key)).await?;
                Catalog::default()
            }
            Err(e) => return Err(e),
        };
        let with_manifests: Vec<&RepoName> = repos
            .iter()
            .filter(|(_, keys)| keys.iter().any(|k| matches!(k, StorageKey::Manifest(..))))
            .map(|(r, _)| r)
            .collect();
        let wrong = self.check_browse_catalog(&with_manifests, repair).await?;
        browse_findings(report, None, wrong, repair);
        for repo in with_manifests {
            if catalog.repositories.binary_search(repo).is_ok() {
                continue;
            }
            let finding = Finding::RepositoryNotInCatalog { repo: repo.clone() };
            let fix = self.update(&StorageKey::Catalog, Catalog::default, |c| {
                c.insert(repo.clone())
            });
            record(report, finding, repair, async { fix.await.map(|_| true) }).await?;
        }
        Ok(())
    }

    /// Deletes a corrupt derived document, so the repairs after it write it afresh.
    async fn remove_document(&self, key: &StorageKey) -> Result<bool, IndexError> {
        self.store.delete(key).await?;
        Ok(true)
    }

    async fn exists(&self, key: &StorageKey) -> Result<bool, IndexError> {
        Ok(found(self.store.head(key).await)?.is_some())
    }
}

/// Adds a finding per outdated kind of browse document (rewritten already on repair).
fn browse_findings(
    report: &mut Report,
    repo: Option<&RepoName>,
    wrong: Vec<&'static str>,
    repair: bool,
) {
    for what in wrong {
        report.findings.push(Finding::BrowseOutdated {
            repo: repo.cloned(),
            what,
        });
        report.repaired += usize::from(repair);
    }
}

/// Adds `finding` to the report and, when repairing, runs `fix` (which says whether it
/// repaired it). A check never runs the fix.
async fn record(
    report: &mut Report,
    finding: Finding,
    repair: bool,
    fix: impl Future<Output = Result<bool, IndexError>>,
) -> Result<(), IndexError> {
    report.findings.push(finding);
    if repair && fix.await? {
        report.repaired += 1;
    }
    Ok(())
}
