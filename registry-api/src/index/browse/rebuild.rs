//! `cargohold index check | rebuild` for the browse documents: compared with what the
//! manifests and tags say, and on `rebuild` rewritten whole from them (as crates.io
//! rebuilds an index file), keeping the push times already recorded.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use index_format::browse::{
    BrowseList, Page, RECENT_TAGS, RepositorySummary, TagRecord, search_entries,
};
use index_format::manifest::{ParsedManifest, sniff_media_type};
use index_format::{Digest, ManifestMediaType, RepoName, StorageKey, Tag};

use super::paged::Stored;
use super::{now, tag_record};
use crate::index::{Index, IndexError};

/// A repository's manifests (bytes, recorded type) and tags, as `index check` read them.
pub struct BrowseCheck<'a> {
    /// Each tag and the digest of its bytes.
    pub tags: &'a BTreeMap<Tag, Digest>,
    /// Each manifest by digest.
    pub manifests: &'a BTreeMap<Digest, (Bytes, Option<ManifestMediaType>)>,
    /// The browse detail documents stored for the repository.
    pub details: &'a BTreeSet<Digest>,
}

impl Index {
    /// Every entry of `list`, each page's within its range.
    async fn read_list<T: Stored>(&self, list: &BrowseList) -> Result<Vec<T>, IndexError> {
        let dir = self.directory(list).await?;
        let mut all = Vec::new();
        for (i, p) in dir.pages.iter().enumerate() {
            let (from, until) = dir.range(i);
            let key = StorageKey::BrowsePage(list.clone(), p.id.clone());
            let page: Page<T> = self.read(&key).await?.unwrap_or_default();
            all.extend(
                page.entries
                    .into_iter()
                    .filter(|e| e.key() >= from && until.is_none_or(|u| e.key() < u)),
            );
        }
        Ok(all)
    }

    /// What is wrong with a repository's browse documents (empty: nothing), and with
    /// `repair`, rewrites them.
    pub(crate) async fn check_browse(
        &self,
        repo: &RepoName,
        truth: &BrowseCheck<'_>,
        repair: bool,
    ) -> Result<Vec<&'static str>, IndexError> {
        let mut wrong = Vec::new();
        let wanted: BTreeSet<&Digest> = truth.manifests.keys().collect();
        if truth.details.iter().collect::<BTreeSet<_>>() != wanted {
            wrong.push("manifest details");
        }
        let list = BrowseList::Tags(repo.clone());
        let stored: Vec<TagRecord> = self.read_list(&list).await.unwrap_or_default();
        let stored_tags: BTreeMap<&Tag, &Digest> =
            stored.iter().map(|r| (&r.tag, &r.digest)).collect();
        if stored_tags != truth.tags.iter().collect() {
            wrong.push("tag pages");
        }
        if repair && !wrong.is_empty() {
            self.rewrite_browse(repo, truth, &stored).await?;
        }
        Ok(wrong)
    }

    async fn rewrite_browse(
        &self,
        repo: &RepoName,
        truth: &BrowseCheck<'_>,
        stored: &[TagRecord],
    ) -> Result<(), IndexError> {
        let mut parsed: Vec<(&Digest, &Bytes, ParsedManifest)> = truth
            .manifests
            .iter()
            .filter_map(|(d, (bytes, media_type))| {
                let media_type = media_type.unwrap_or_else(|| sniff_media_type(bytes));
                let p = ParsedManifest::parse(bytes, Some(media_type.as_str())).ok()?;
                Some((d, bytes, p))
            })
            .collect();
        // Images before indexes: an index's platform sizes come from their details.
        parsed.sort_by_key(|(_, _, p)| p.media_type.is_index());
        let mut details = BTreeMap::new();
        for (digest, bytes, p) in &parsed {
            let mut detail = self.manifest_detail(repo, digest, bytes, p).await?;
            detail.tags = truth
                .tags
                .iter()
                .filter(|(_, d)| d == digest)
                .map(|(t, _)| t.clone())
                .collect();
            let key = StorageKey::BrowseManifest(repo.clone(), (*digest).clone());
            self.put_document(&key, &detail).await?;
            details.insert((*digest).clone(), detail);
        }
        for gone in truth.details.iter().filter(|d| !details.contains_key(*d)) {
            let key = StorageKey::BrowseManifest(repo.clone(), gone.clone());
            self.store.delete(&key).await?;
        }
        let mut records = Vec::new();
        for (tag, digest) in truth.tags {
            let Some(detail) = details.get(digest) else {
                continue;
            };
            let pushed = stored
                .iter()
                .find(|r| &r.tag == tag)
                .map_or_else(now, |r| r.pushed);
            let referrers = self.referrers(repo, digest).await?;
            records.push(tag_record(tag, detail, pushed, &referrers.manifests));
        }
        let mut recent = records.clone();
        recent.sort_by_key(|r| std::cmp::Reverse(r.pushed));
        recent.truncate(RECENT_TAGS);
        let summary = RepositorySummary {
            name: Some(repo.clone()),
            tags: records.len() as u64,
            pushed: recent.first().map(|r| r.pushed),
            recent,
        };
        self.write_list(&BrowseList::Tags(repo.clone()), records, Some(summary))
            .await
    }

    /// Compares the browse catalog and search terms with the repositories that have
    /// manifests; with `repair`, rewrites both.
    pub(crate) async fn check_browse_catalog(
        &self,
        repos: &[&RepoName],
        repair: bool,
    ) -> Result<Vec<&'static str>, IndexError> {
        let names: Vec<String> = repos.iter().map(|r| r.as_str().to_owned()).collect();
        let mut terms: Vec<String> = repos.iter().flat_map(|r| search_entries(r)).collect();
        terms.sort();
        terms.dedup();
        // Like `_catalog`, a repository whose manifests were all deleted may stay listed
        // (its page says it has no tags) until a rebuild; a missing one is wrong.
        let covers = |stored: Vec<String>, wanted: &[String]| {
            let stored: BTreeSet<String> = stored.into_iter().collect();
            wanted.iter().all(|w| stored.contains(w))
        };
        let mut wrong = Vec::new();
        let catalog: Vec<String> = self
            .read_list(&BrowseList::Catalog)
            .await
            .unwrap_or_default();
        if !covers(catalog, &names) {
            wrong.push("catalog pages");
        }
        let search: Vec<String> = self
            .read_list(&BrowseList::Search)
            .await
            .unwrap_or_default();
        if !covers(search, &terms) {
            wrong.push("search pages");
        }
        if repair && !wrong.is_empty() {
            self.write_list(&BrowseList::Catalog, names, None).await?;
            self.write_list(&BrowseList::Search, terms, None).await?;
        }
        Ok(wrong)
    }
}
