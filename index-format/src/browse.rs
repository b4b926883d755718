//! The browse documents: the index written for people (the web UI in `registry-api/ui/`),
//! next to the documents written for clients. Like those, each is plain JSON a static host
//! serves unchanged (`/index/...`, see [`crate::layout`]); unlike those, none is an API
//! response, so their shape is ours, versioned by [`BROWSE_VERSION`].
//!
//! Lists that grow without bound (the catalog, the search index, a repository's tags) are
//! **paged lists**: a small [`Directory`] of [`PageRef`]s, each naming a [`Page`] that holds
//! the entries whose key sorts in `[from, next page's from)`. A page that grows past its
//! list's limit is split in two, so a page never grows with the list, and one view reads
//! the directory and one page. The directory grows by one short line per page (a few
//! hundred bytes per 1,000 repositories).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::Descriptor;
use crate::names::{Digest, RepoName, Tag};

/// The version of the browse documents' shape; a reader that finds another refuses.
pub const BROWSE_VERSION: u32 = 1;

/// One of the paged lists.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BrowseList {
    /// Every repository name.
    Catalog,
    /// Search terms: each name component (and the whole name), `"<term> <name>"`.
    Search,
    /// A repository's tags, as [`TagRecord`]s.
    Tags(RepoName),
}

impl BrowseList {
    /// The most entries a page holds before it is split: pages stay under ~40 KiB.
    pub fn page_limit(&self) -> usize {
        match self {
            Self::Catalog | Self::Search => 1000,
            Self::Tags(_) => 100,
        }
    }
}

/// The id of a page: 8 lowercase hex digits, random for pages made by a split.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PageId(String);

impl PageId {
    /// The id of every list's first page.
    pub fn first() -> Self {
        Self("00000000".to_owned())
    }

    /// Checks the shape, so an id from a URL or a key names nothing but a page.
    pub fn new(s: &str) -> Option<Self> {
        let ok = s.len() == 8 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Self(s.to_owned()))
    }

    /// The id of 32 random bits.
    pub fn from_u32(bits: u32) -> Self {
        Self(format!("{bits:08x}"))
    }

    /// The id as it appears in keys.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for PageId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid page id {s:?}")))
    }
}

/// A page of a paged list and the lowest key it may hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRef {
    /// The page.
    pub id: PageId,
    /// Keys `>= from` (and below the next page's `from`) live on this page.
    pub from: String,
}

/// A paged list's directory; for a repository's tags it is also the repository's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// [`BROWSE_VERSION`].
    pub version: u32,
    /// The pages, sorted by `from`; the first has `from: ""`.
    pub pages: Vec<PageRef>,
    /// For a tag list: the repository's summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<RepositorySummary>,
}

impl Default for Directory {
    fn default() -> Self {
        Self {
            version: BROWSE_VERSION,
            pages: vec![PageRef {
                id: PageId::first(),
                from: String::new(),
            }],
            repository: None,
        }
    }
}

impl Directory {
    /// The index of the page that holds `key`.
    pub fn page_of(&self, key: &str) -> usize {
        self.pages
            .partition_point(|p| p.from.as_str() <= key)
            .saturating_sub(1)
    }

    /// The keys page `i` may hold: `[from, until)`, `until` `None` for the last page.
    pub fn range(&self, i: usize) -> (&str, Option<&str>) {
        let from = self.pages.get(i).map_or("", |p| p.from.as_str());
        (from, self.pages.get(i + 1).map(|p| p.from.as_str()))
    }

    /// Adds a page starting at `from`, split off page `of` whose range was `until`;
    /// `false` (and nothing changed) if that page's range changed meanwhile.
    pub fn insert_page(&mut self, of: &PageId, until: Option<&str>, page: PageRef) -> bool {
        let i = self.page_of(&page.from);
        if self.pages[i].id != *of || self.range(i).1 != until || self.pages[i].from == page.from {
            return false;
        }
        self.pages.insert(i + 1, page);
        true
    }
}

/// The shortest prefix of `first` that sorts after `before` (`before < first`): where a
/// page starting at `first` begins, so directories hold short separators, not whole keys.
pub fn separator(before: &str, first: &str) -> String {
    let mut end = 0;
    for (i, c) in first.char_indices() {
        end = i + c.len_utf8();
        if &first[..end] > before {
            break;
        }
    }
    first[..end].to_owned()
}

/// What a repository's page shows above its tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositorySummary {
    /// The repository.
    pub name: Option<RepoName>,
    /// How many tags it has.
    pub tags: u64,
    /// When a tag was last pushed (seconds since the Unix epoch).
    pub pushed: Option<u64>,
    /// The most recently pushed tags, newest first (at most [`RECENT_TAGS`]).
    pub recent: Vec<TagRecord>,
}

/// How many recent pushes a repository's summary keeps.
pub const RECENT_TAGS: usize = 10;

impl RepositorySummary {
    /// Records a pushed tag; `new_tag` when the repository did not have it.
    pub fn pushed(&mut self, record: &TagRecord, new_tag: bool) {
        self.tags += u64::from(new_tag);
        self.pushed = self.pushed.max(Some(record.pushed));
        self.recent.retain(|r| r.tag != record.tag);
        self.recent.insert(0, record.clone());
        self.recent.sort_by_key(|r| std::cmp::Reverse(r.pushed));
        self.recent.truncate(RECENT_TAGS);
    }

    /// Forgets a deleted tag.
    pub fn removed(&mut self, tag: &Tag) {
        self.tags = self.tags.saturating_sub(1);
        self.recent.retain(|r| &r.tag != tag);
    }
}

/// An entry of a paged list, sorted by its key.
pub trait Entry: Clone + PartialEq {
    /// The sort key.
    fn key(&self) -> &str;
}

impl Entry for String {
    fn key(&self) -> &str {
        self
    }
}

impl Entry for TagRecord {
    fn key(&self) -> &str {
        self.tag.as_str()
    }
}

/// One page of a paged list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// [`BROWSE_VERSION`].
    pub version: u32,
    /// The entries, sorted by key, one per key.
    pub entries: Vec<T>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self {
            version: BROWSE_VERSION,
            entries: Vec::new(),
        }
    }
}

impl<T: Entry> Page<T> {
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| e.key().cmp(key))
    }

    /// The entry under `key`.
    pub fn get(&self, key: &str) -> Option<&T> {
        self.find(key).ok().map(|i| &self.entries[i])
    }

    /// Adds or replaces the entry under its key; `false` if it was already exactly there.
    pub fn upsert(&mut self, entry: T) -> bool {
        match self.find(entry.key()) {
            Ok(i) if self.entries[i] == entry => false,
            Ok(i) => {
                self.entries[i] = entry;
                true
            }
            Err(i) => {
                self.entries.insert(i, entry);
                true
            }
        }
    }

    /// Adds every entry whose key is not there yet; `false` if none was added.
    pub fn merge(&mut self, entries: &[T]) -> bool {
        let mut changed = false;
        for e in entries {
            if let Err(i) = self.find(e.key()) {
                self.entries.insert(i, e.clone());
                changed = true;
            }
        }
        changed
    }

    /// Removes the entry under `key`; `false` if there was none.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.find(key) {
            Ok(i) => {
                self.entries.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// The entries outside `[from, until)`: left behind by a split still in progress.
    pub fn outside(&self, from: &str, until: Option<&str>) -> Vec<T> {
        let inside = |k: &str| k >= from && until.is_none_or(|u| k < u);
        self.entries
            .iter()
            .filter(|e| !inside(e.key()))
            .cloned()
            .collect()
    }

    /// Where to split a full page: the shortest separator before its middle entry.
    pub fn middle(&self) -> Option<String> {
        let i = self.entries.len() / 2;
        let first = self.entries.get(i)?.key();
        Some(match i.checked_sub(1).and_then(|j| self.entries.get(j)) {
            Some(before) => separator(before.key(), first),
            None => first.to_owned(),
        })
    }
}

/// The search terms of a repository: each name component and the whole name, each as the
/// entry `"<term> <name>"` (a space sorts before every character of a name).
pub fn search_entries(name: &RepoName) -> Vec<String> {
    let mut terms: Vec<&str> = name
        .as_str()
        .split(['/', '.', '_', '-'])
        .filter(|t| !t.is_empty())
        .collect();
    terms.push(name.as_str());
    terms.sort_unstable();
    terms.dedup();
    terms.into_iter().map(|t| format!("{t} {name}")).collect()
}

/// A tag as a repository's page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagRecord {
    /// The tag.
    pub tag: Tag,
    /// The manifest it points at.
    pub digest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// Total compressed size: the manifest, its config and layers (for an index, every
    /// platform's).
    pub size: u64,
    /// For an index: each platform's manifest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformSummary>,
    /// The image config's `created`, as written there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// When the tag was pushed (seconds since the Unix epoch).
    pub pushed: u64,
    /// How many manifests refer to this one, by `artifactType`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub referrers: BTreeMap<String, u64>,
}

/// One platform of an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformSummary {
    /// `os/architecture[/variant]`, or `unknown` for an entry without a platform.
    pub platform: String,
    /// The platform's manifest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its total compressed size (manifest, config, layers).
    pub size: u64,
}

/// `index/<name>/_browse/manifests/<digest>.json`: what a manifest's page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestDetail {
    /// [`BROWSE_VERSION`].
    pub version: u32,
    /// The manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// `artifactType`, or an image's config media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifest's own length.
    pub manifest_size: u64,
    /// The image config's `created` (for an index, its first platform's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Total compressed size, as in [`TagRecord::size`].
    pub size: u64,
    /// The manifest's annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The manifest it refers to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Digest>,
    /// An image's layers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Descriptor>,
    /// An image's config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigSummary>,
    /// An index's platforms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformSummary>,
    /// The tags pointing at it (kept up to date, so a referrer's push can update them).
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// The parts of an image config a person looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigSummary {
    /// The config blob's media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its length.
    pub size: u64,
    /// `os/architecture[/variant]`, when the config says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// `created`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `config.Entrypoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `config.Cmd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// The names (never the values) of `config.Env`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `config.Labels`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `history`, each `created_by` cut to [`MAX_HISTORY_TEXT`] characters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
}

/// Longest `created_by` or `comment` kept in a history entry.
pub const MAX_HISTORY_TEXT: usize = 500;

/// One step of an image's history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// A comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The step made no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawConfig {
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
    created: Option<String>,
    config: RawRunConfig,
    history: Vec<HistoryEntry>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct RawRunConfig {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    labels: Option<BTreeMap<String, String>>,
}

/// `os/architecture[/variant]`.
pub fn platform_name(os: Option<&str>, arch: Option<&str>, variant: Option<&str>) -> String {
    match (os, arch) {
        (Some(o), Some(a)) => match variant {
            Some(v) => format!("{o}/{a}/{v}"),
            None => format!("{o}/{a}"),
        },
        _ => "unknown".to_owned(),
    }
}

impl ConfigSummary {
    /// Summarizes an image config blob; `None` when it is not an image config (an
    /// artifact's config, or not JSON), which only means there is less to show.
    pub fn parse(descriptor: &Descriptor, bytes: &[u8]) -> Option<Self> {
        let raw: RawConfig = serde_json::from_slice(bytes).ok()?;
        let cut = |s: Option<String>| {
            s.map(|s| match s.char_indices().nth(MAX_HISTORY_TEXT) {
                Some((i, _)) => format!("{}…", &s[..i]),
                None => s,
            })
        };
        let history = raw
            .history
            .into_iter()
            .map(|h| HistoryEntry {
                created_by: cut(h.created_by),
                comment: cut(h.comment),
                ..h
            })
            .collect();
        let env = raw.config.env.unwrap_or_default();
        Some(Self {
            media_type: descriptor.media_type.clone(),
            digest: descriptor.digest.clone(),
            size: descriptor.size,
            platform: raw.os.is_some().then(|| {
                platform_name(
                    raw.os.as_deref(),
                    raw.architecture.as_deref(),
                    raw.variant.as_deref(),
                )
            }),
            created: raw.created,
            entrypoint: raw.config.entrypoint,
            cmd: raw.config.cmd,
            env: env
                .iter()
                .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_owned())
                .collect(),
            labels: raw.config.labels.unwrap_or_default(),
            history,
        })
    }
}

/// How a referrers index is counted on a tag: manifests per `artifactType`.
pub fn count_referrers(referrers: &[Descriptor]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for r in referrers {
        let kind = r.artifact_type.clone().unwrap_or_else(|| "unknown".into());
        *counts.entry(kind).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(keys: &[&str]) -> Page<String> {
        let mut p = Page::default();
        for k in keys {
            p.upsert((*k).to_owned());
        }
        p
    }

    #[test]
    fn directory_finds_pages_and_splits_only_unchanged_ranges() {
        let mut d = Directory::default();
        assert_eq!(d.page_of("anything"), 0);
        let b = PageId::from_u32(0xb);
        let first = PageId::first();
        assert!(d.insert_page(
            &first,
            None,
            PageRef {
                id: b.clone(),
                from: "m".into()
            }
        ));
        assert_eq!(d.page_of("l"), 0);
        assert_eq!(d.page_of("m"), 1);
        assert_eq!(d.page_of("z"), 1);
        assert_eq!(d.range(0), ("", Some("m")));
        // A second split of the first page planned before the first one: refused.
        let c = PageRef {
            id: PageId::from_u32(0xc),
            from: "p".into(),
        };
        assert!(!d.insert_page(&first, None, c.clone()));
        assert!(!d.insert_page(
            &b,
            None,
            PageRef {
                id: PageId::from_u32(1),
                from: "m".into()
            }
        ));
        assert!(d.insert_page(&b, None, c));
        assert_eq!(d.page_of("q"), 2);
    }

    #[test]
    fn pages_upsert_merge_remove_and_find_strays() {
        let mut p = page(&["b", "a", "c"]);
        assert!(!p.upsert("a".into()));
        assert_eq!(p.entries, ["a", "b", "c"]);
        assert!(p.merge(&["d".into(), "a".into()]));
        assert!(!p.merge(&["d".into()]));
        assert_eq!(p.middle().as_deref(), Some("c"));
        assert_eq!(separator("org-1/a", "org-1/b"), "org-1/b");
        assert_eq!(separator("alpine x", "base y"), "b");
        assert_eq!(separator("ab", "abc"), "abc");
        assert_eq!(p.outside("b", Some("d")), ["a", "d"]);
        assert!(p.remove("a"));
        assert!(!p.remove("a"));
        assert_eq!(
            String::from_utf8(crate::documents::to_bytes(&p).expect("json")).expect("utf8"),
            r#"{"version":1,"entries":["b","c","d"]}"#
        );
    }

    #[test]
    fn search_terms_of_a_name() {
        let n = RepoName::new("library/alpine-base").expect("name");
        assert_eq!(
            search_entries(&n),
            [
                "alpine library/alpine-base",
                "base library/alpine-base",
                "library library/alpine-base",
                "library/alpine-base library/alpine-base",
            ]
        );
    }

    #[test]
    fn config_summary_keeps_env_names_only() {
        let d = Descriptor {
            media_type: "application/vnd.oci.image.config.v1+json".into(),
            digest: Digest::new(&format!("sha256:{}", "a".repeat(64))).expect("digest"),
            size: 10,
            urls: None,
            annotations: None,
            artifact_type: None,
            platform: None,
        };
        let long = "x".repeat(MAX_HISTORY_TEXT + 5);
        let body = format!(
            r#"{{"os":"linux","architecture":"arm64","variant":"v8","created":"2026-01-01T00:00:00Z","config":{{"Env":["PATH=/bin","SECRET=hunter2"],"Cmd":["sh"],"Labels":{{"a":"b"}}}},"history":[{{"created_by":"{long}","empty_layer":true}}]}}"#
        );
        let s = ConfigSummary::parse(&d, body.as_bytes()).expect("config");
        assert_eq!(s.platform.as_deref(), Some("linux/arm64/v8"));
        assert_eq!(s.env, ["PATH", "SECRET"]);
        assert_eq!(s.cmd, Some(vec!["sh".to_owned()]));
        assert_eq!(s.labels.get("a").map(String::as_str), Some("b"));
        assert!(s.history[0].empty_layer);
        assert_eq!(
            s.history[0].created_by.as_ref().map(|c| c.chars().count()),
            Some(MAX_HISTORY_TEXT + 1)
        );
        assert!(ConfigSummary::parse(&d, b"not json").is_none());
    }

    #[test]
    fn summary_keeps_newest_recent_tags() {
        let mut s = RepositorySummary::default();
        let rec = |t: &str, pushed| TagRecord {
            tag: Tag::new(t).expect("tag"),
            digest: Digest::new(&format!("sha256:{}", "a".repeat(64))).expect("digest"),
            media_type: "m".into(),
            size: 1,
            platforms: vec![],
            created: None,
            pushed,
            referrers: BTreeMap::new(),
        };
        for i in 0..15u64 {
            s.pushed(&rec(&format!("v{i}"), i), true);
        }
        s.pushed(&rec("v3", 100), false);
        assert_eq!(s.tags, 15);
        assert_eq!(s.recent.len(), RECENT_TAGS);
        assert_eq!(s.recent[0].tag.as_str(), "v3");
        assert_eq!(s.pushed, Some(100));
        s.removed(&Tag::new("v3").expect("tag"));
        assert_eq!(s.tags, 14);
        assert_eq!(s.recent[0].tag.as_str(), "v14");
    }
}
