//! Where every object lives in the bucket (or under `--root` on the filesystem).
//!
//! ```text
//! <bucket>/[<prefix>/]
//! ├── config.json                          root config: format version, base URLs
//! ├── blobs/
//! │   └── <alg>/<hex>                      blob bytes, stored once per digest
//! ├── index/
//! │   ├── _catalog                         {"repositories": [...]}
//! │   ├── _browse/                         browse documents (crate::browse), for people
//! │   │   ├── catalog.json                 directory of the repository list's pages
//! │   │   ├── catalog/<page>.json          a page of repository names
//! │   │   ├── search.json                  directory of the search terms' pages
//! │   │   └── search/<page>.json           a page of "<term> <name>" entries
//! │   └── <name>/                          the repository name, '/' and all
//! │       ├── _manifests/<tag>             the manifest bytes the tag points to
//! │       ├── _manifests/<alg>:<hex>       a manifest by digest
//! │       ├── _tags/list                   {"name": ..., "tags": [...]}
//! │       ├── _referrers/<alg>:<hex>       image index of the manifests whose subject is <digest>
//! │       ├── _blobs/<alg>:<hex>           blob link: this repository may serve that blob
//! │       └── _browse/
//! │           ├── tags.json                the repository's summary and its tag pages
//! │           ├── tags/<page>.json         a page of tag records
//! │           └── manifests/<alg>:<hex>.json   a manifest's detail page
//! ├── ui/index.html, ui/app.js, ui/style.css   the browse UI, written by `cargohold serve`
//! └── uploads/<uuid>/
//!     ├── state.json                       upload session: repository, parts, hash state
//!     ├── data                             the object being assembled
//!     └── tail-<uuid>                      bytes short of a whole part (S3/R2 part sizes)
//! ```
//!
//! Repository components start with `[a-z0-9]`, so the `_`-prefixed folders can never clash
//! with a nested repository (`a/_tags` is not a valid name). Digests keep their colon so a
//! static host maps `/v2/<name>/manifests/<ref>` to `index/<name>/_manifests/<ref>` by a
//! single rewrite. Every index file but the browse documents is exactly the body of the API
//! response it stands for; browse documents are served at `/` + their key (`/index/...`),
//! the UI at `/` and `/ui/...`.

use std::fmt;

use crate::browse::{BrowseList, PageId};
use crate::names::{Digest, Reference, RepoName};

/// Cache-control of content addressed by digest: it can never change.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache-control of mutable index files (tags, lists): caches must revalidate by ETag.
pub const REVALIDATE: &str = "public, max-age=0, must-revalidate";
/// Cache-control of objects that are never served to clients.
pub const PRIVATE: &str = "private, no-store";

/// One object in the store. Store methods take this type, never a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StorageKey {
    /// The root `config.json`.
    Config,
    /// A blob's bytes, shared by every repository.
    Blob(Digest),
    /// The repository catalog.
    Catalog,
    /// A manifest under a tag or a digest.
    Manifest(RepoName, Reference),
    /// The tag list of a repository.
    TagList(RepoName),
    /// The referrers index of a subject digest.
    Referrers(RepoName, Digest),
    /// Marks that a repository may serve a blob; holds a [`crate::documents::BlobLink`].
    BlobLink(RepoName, Digest),
    /// The state of an upload session.
    UploadState(UploadId),
    /// The bytes of an upload session.
    UploadData(UploadId),
    /// Bytes of an upload not yet a whole part, on stores that need equal-sized parts;
    /// the second id names this generation of the tail.
    UploadTail(UploadId, UploadId),
    /// A browse list's directory (for a repository's tags, also its summary).
    BrowseDirectory(BrowseList),
    /// A page of a browse list.
    BrowsePage(BrowseList, PageId),
    /// A manifest's browse detail.
    BrowseManifest(RepoName, Digest),
    /// A file of the browse UI.
    Ui(UiFile),
}

/// The files of the browse UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UiFile {
    /// The page, served at `/`.
    Html,
    /// The script.
    Script,
    /// The style sheet.
    Style,
}

impl UiFile {
    /// Every file.
    pub const ALL: [Self; 3] = [Self::Html, Self::Script, Self::Style];

    /// The file's name under `ui/`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Html => "index.html",
            Self::Script => "app.js",
            Self::Style => "style.css",
        }
    }

    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Html => "text/html; charset=utf-8",
            Self::Script => "text/javascript; charset=utf-8",
            Self::Style => "text/css; charset=utf-8",
        }
    }
}

/// Where a browse list's documents live: the shared folder, or the repository's.
fn browse_folder(list: &BrowseList) -> (String, &'static str) {
    match list {
        BrowseList::Catalog => ("index/_browse".to_owned(), "catalog"),
        BrowseList::Search => ("index/_browse".to_owned(), "search"),
        BrowseList::Tags(n) => (format!("index/{n}/_browse"), "tags"),
    }
}

/// A prefix to list objects under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPrefix {
    /// Every upload session.
    Uploads,
    /// Every object of one upload session.
    Upload(UploadId),
    /// Every index object of one repository (and of repositories nested below it).
    Repository(RepoName),
    /// Every index object of every repository, and the catalog.
    Index,
    /// Every blob.
    Blobs,
}

impl StorageKey {
    /// The object key, relative to the store's root or prefix.
    pub fn key(&self) -> String {
        match self {
            Self::Config => "config.json".to_owned(),
            Self::Blob(d) => format!("blobs/{}/{}", d.algorithm().as_str(), d.hex()),
            Self::Catalog => "index/_catalog".to_owned(),
            Self::Manifest(n, r) => format!("index/{n}/_manifests/{}", r.as_str()),
            Self::TagList(n) => format!("index/{n}/_tags/list"),
            Self::Referrers(n, d) => format!("index/{n}/_referrers/{d}"),
            Self::BlobLink(n, d) => format!("index/{n}/_blobs/{d}"),
            Self::UploadState(u) => format!("uploads/{u}/state.json"),
            Self::UploadData(u) => format!("uploads/{u}/data"),
            Self::UploadTail(u, t) => format!("uploads/{u}/tail-{t}"),
            Self::BrowseDirectory(l) => {
                let (folder, list) = browse_folder(l);
                format!("{folder}/{list}.json")
            }
            Self::BrowsePage(l, p) => {
                let (folder, list) = browse_folder(l);
                format!("{folder}/{list}/{}.json", p.as_str())
            }
            Self::BrowseManifest(n, d) => format!("index/{n}/_browse/manifests/{d}.json"),
            Self::Ui(f) => format!("ui/{}", f.name()),
        }
    }

    /// The registry URL path a static host answers with this object, if it is served.
    pub fn url_path(&self) -> Option<String> {
        match self {
            Self::Config => Some("/config.json".to_owned()),
            Self::Blob(_) => Some(format!("/{}", self.key())),
            Self::Catalog => Some("/v2/_catalog".to_owned()),
            Self::Manifest(n, r) => Some(format!("/v2/{n}/manifests/{}", r.as_str())),
            Self::TagList(n) => Some(format!("/v2/{n}/tags/list")),
            Self::Referrers(n, d) => Some(format!("/v2/{n}/referrers/{d}")),
            Self::BrowseDirectory(_) | Self::BrowsePage(..) | Self::BrowseManifest(..) => {
                Some(format!("/{}", self.key()))
            }
            Self::Ui(UiFile::Html) => Some("/".to_owned()),
            Self::Ui(_) => Some(format!("/{}", self.key())),
            // A link is not served itself: it gates `/v2/<name>/blobs/<digest>`.
            Self::BlobLink(..)
            | Self::UploadState(_)
            | Self::UploadData(_)
            | Self::UploadTail(..) => None,
        }
    }

    /// The `Content-Type` stored with the object. Manifests carry their own media type,
    /// which the writer supplies; `None` here means "given at write time".
    pub fn content_type(&self) -> Option<&'static str> {
        match self {
            Self::Manifest(..) => None,
            Self::Referrers(..) => Some("application/vnd.oci.image.index.v1+json"),
            Self::Blob(_) | Self::UploadData(_) | Self::UploadTail(..) => {
                Some("application/octet-stream")
            }
            Self::Ui(f) => Some(f.content_type()),
            Self::Config
            | Self::Catalog
            | Self::TagList(_)
            | Self::BlobLink(..)
            | Self::UploadState(_)
            | Self::BrowseDirectory(_)
            | Self::BrowsePage(..)
            | Self::BrowseManifest(..) => Some("application/json"),
        }
    }

    /// The `Cache-Control` stored with the object, and sent by any host serving it.
    pub fn cache_control(&self) -> &'static str {
        match self {
            Self::Manifest(_, r) => manifest_cache_control(r),
            Self::Blob(_) => IMMUTABLE,
            Self::Config
            | Self::Catalog
            | Self::TagList(_)
            | Self::Referrers(..)
            | Self::BrowseDirectory(_)
            | Self::BrowsePage(..)
            | Self::BrowseManifest(..)
            | Self::Ui(_) => REVALIDATE,
            Self::BlobLink(..)
            | Self::UploadState(_)
            | Self::UploadData(_)
            | Self::UploadTail(..) => PRIVATE,
        }
    }
}

/// The `Cache-Control` of a manifest: content by digest never changes, a tag may move.
pub fn manifest_cache_control(reference: &Reference) -> &'static str {
    match reference {
        Reference::Digest(_) => IMMUTABLE,
        Reference::Tag(_) => REVALIDATE,
    }
}

impl fmt::Display for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl KeyPrefix {
    /// The key prefix, always ending in `/`.
    pub fn key(&self) -> String {
        match self {
            Self::Uploads => "uploads/".to_owned(),
            Self::Upload(u) => format!("uploads/{u}/"),
            Self::Repository(n) => format!("index/{n}/"),
            Self::Index => "index/".to_owned(),
            Self::Blobs => "blobs/".to_owned(),
        }
    }
}

/// The id of an upload session: a lowercase hyphenated UUID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(String);

impl UploadId {
    /// Checks the 8-4-4-4-12 lowercase-hex shape, so an id from a URL can never name
    /// anything but an upload folder.
    pub fn new(s: &str) -> Option<Self> {
        let groups: Vec<&str> = s.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        let ok = groups.len() == lens.len()
            && groups.iter().zip(lens).all(|(g, n)| {
                g.len() == n
                    && g.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            });
        ok.then(|| Self(s.to_owned()))
    }

    /// The id of 128 random bits, in the 8-4-4-4-12 shape; cannot fail.
    pub fn from_u128(bits: u128) -> Self {
        let h = format!("{bits:032x}");
        Self(format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        ))
    }

    /// The id as it appears in keys and URLs.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for UploadId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for UploadId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        Self::new(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid upload id {s:?}")))
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StorageKey {
    /// Parses an object key back into a `StorageKey` (for listing, GC and rebuilds).
    pub fn parse(key: &str) -> Option<Self> {
        if key == "config.json" {
            return Some(Self::Config);
        }
        if key == "index/_catalog" {
            return Some(Self::Catalog);
        }
        if let Some(rest) = key.strip_prefix("blobs/") {
            let (alg, hex) = rest.split_once('/')?;
            return Digest::new(&format!("{alg}:{hex}")).ok().map(Self::Blob);
        }
        if let Some(rest) = key.strip_prefix("uploads/") {
            let (id, file) = rest.split_once('/')?;
            let id = UploadId::new(id)?;
            return match file {
                "state.json" => Some(Self::UploadState(id)),
                "data" => Some(Self::UploadData(id)),
                tail => UploadId::new(tail.strip_prefix("tail-")?).map(|t| Self::UploadTail(id, t)),
            };
        }
        if let Some(f) = UiFile::ALL
            .into_iter()
            .find(|f| key.strip_prefix("ui/") == Some(f.name()))
        {
            return Some(Self::Ui(f));
        }
        let rest = key.strip_prefix("index/")?;
        if let Some(doc) = rest.strip_prefix("_browse/") {
            return match doc.split_once('/') {
                None => browse_list(doc.strip_suffix(".json")?).map(Self::BrowseDirectory),
                Some((list, page)) => {
                    let list = browse_list(list)?;
                    PageId::new(page.strip_suffix(".json")?).map(|p| Self::BrowsePage(list, p))
                }
            };
        }
        // Names never contain '/_', so the first one splits name from the index folder.
        let (name, tail) = rest.split_once("/_")?;
        let name = RepoName::new(name).ok()?;
        let (folder, leaf) = tail.split_once('/')?;
        match folder {
            "manifests" => Reference::new(leaf).ok().map(|r| Self::Manifest(name, r)),
            "tags" if leaf == "list" => Some(Self::TagList(name)),
            "referrers" => Digest::new(leaf).ok().map(|d| Self::Referrers(name, d)),
            "blobs" => Digest::new(leaf).ok().map(|d| Self::BlobLink(name, d)),
            "browse" => match leaf.split_once('/') {
                None if leaf == "tags.json" => Some(Self::BrowseDirectory(BrowseList::Tags(name))),
                Some(("tags", page)) => PageId::new(page.strip_suffix(".json")?)
                    .map(|p| Self::BrowsePage(BrowseList::Tags(name), p)),
                Some(("manifests", d)) => Digest::new(d.strip_suffix(".json")?)
                    .ok()
                    .map(|d| Self::BrowseManifest(name, d)),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The shared browse list called `list` (`catalog`, `search`).
fn browse_list(list: &str) -> Option<BrowseList> {
    match list {
        "catalog" => Some(BrowseList::Catalog),
        "search" => Some(BrowseList::Search),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Tag;

    /// key, object key, URL path, content type, cache-control.
    type Row = (
        StorageKey,
        String,
        Option<String>,
        Option<&'static str>,
        &'static str,
    );

    fn hex() -> String {
        "0123456789abcdef".repeat(4)
    }

    /// Pins every key, URL path, content type and cache-control string.
    #[test]
    fn every_key_and_path() {
        let n = RepoName::new("library/alpine").expect("name");
        let d = Digest::new(&format!("sha256:{}", hex())).expect("digest");
        let u = UploadId::new("0f0e0d0c-0b0a-4908-8706-050403020100").expect("id");
        let tag = Reference::Tag(Tag::new("v1").expect("tag"));
        let h = hex();
        let table: Vec<Row> = vec![
            (
                StorageKey::Config,
                "config.json".into(),
                Some("/config.json".into()),
                Some("application/json"),
                REVALIDATE,
            ),
            (
                StorageKey::Blob(d.clone()),
                format!("blobs/sha256/{h}"),
                Some(format!("/blobs/sha256/{h}")),
                Some("application/octet-stream"),
                IMMUTABLE,
            ),
            (
                StorageKey::Catalog,
                "index/_catalog".into(),
                Some("/v2/_catalog".into()),
                Some("application/json"),
                REVALIDATE,
            ),
            (
                StorageKey::Manifest(n.clone(), tag),
                "index/library/alpine/_manifests/v1".into(),
                Some("/v2/library/alpine/manifests/v1".into()),
                None,
                REVALIDATE,
            ),
            (
                StorageKey::Manifest(n.clone(), Reference::Digest(d.clone())),
                format!("index/library/alpine/_manifests/sha256:{h}"),
                Some(format!("/v2/library/alpine/manifests/sha256:{h}")),
                None,
                IMMUTABLE,
            ),
            (
                StorageKey::TagList(n.clone()),
                "index/library/alpine/_tags/list".into(),
                Some("/v2/library/alpine/tags/list".into()),
                Some("application/json"),
                REVALIDATE,
            ),
            (
                StorageKey::Referrers(n.clone(), d.clone()),
                format!("index/library/alpine/_referrers/sha256:{h}"),
                Some(format!("/v2/library/alpine/referrers/sha256:{h}")),
                Some("application/vnd.oci.image.index.v1+json"),
                REVALIDATE,
            ),
            (
                StorageKey::BlobLink(n.clone(), d.clone()),
                format!("index/library/alpine/_blobs/sha256:{h}"),
                None,
                Some("application/json"),
                PRIVATE,
            ),
            (
                StorageKey::UploadTail(u.clone(), u.clone()),
                "uploads/0f0e0d0c-0b0a-4908-8706-050403020100/tail-0f0e0d0c-0b0a-4908-8706-050403020100".into(),
                None,
                Some("application/octet-stream"),
                PRIVATE,
            ),
            (
                StorageKey::UploadState(u.clone()),
                "uploads/0f0e0d0c-0b0a-4908-8706-050403020100/state.json".into(),
                None,
                Some("application/json"),
                PRIVATE,
            ),
            (
                StorageKey::BrowseDirectory(BrowseList::Catalog),
                "index/_browse/catalog.json".into(),
                Some("/index/_browse/catalog.json".into()),
                Some("application/json"),
                REVALIDATE,
            ),
            (
                StorageKey::BrowsePage(BrowseList::Search, PageId::from_u32(0xab)),
                "index/_browse/search/000000ab.json".into(),
                Some("/index/_browse/search/000000ab.json".into()),
                Some("application/json"),
                REVALIDATE,
            ),
            (
                StorageKey::BrowseDirectory(BrowseList::Tags(n.clone())),
                "index/library/alpine/_browse/tags.json".into(),
                Some("/index/library/alpine/_browse/tags.json".into()),
                Some("application/json"),
                REVALIDATE,
            ),
            (
                StorageKey::BrowsePage(BrowseList::Tags(n.clone()), PageId::first()),
                "index/library/alpine/_browse/tags/00000000.json".into(),
                Some("/index/library/alpine/_browse/tags/00000000.json".into()),
                Some("application/json"),
                REVALIDATE,
            ),
            (
                StorageKey::BrowseManifest(n.clone(), d.clone()),
                format!("index/library/alpine/_browse/manifests/sha256:{h}.json"),
                Some(format!("/index/library/alpine/_browse/manifests/sha256:{h}.json")),
                Some("application/json"),
                REVALIDATE,
            ),
            (
                StorageKey::Ui(UiFile::Html),
                "ui/index.html".into(),
                Some("/".into()),
                Some("text/html; charset=utf-8"),
                REVALIDATE,
            ),
            (
                StorageKey::Ui(UiFile::Script),
                "ui/app.js".into(),
                Some("/ui/app.js".into()),
                Some("text/javascript; charset=utf-8"),
                REVALIDATE,
            ),
            (
                StorageKey::UploadData(u),
                "uploads/0f0e0d0c-0b0a-4908-8706-050403020100/data".into(),
                None,
                Some("application/octet-stream"),
                PRIVATE,
            ),
        ];
        for (key, k, url, ct, cc) in table {
            assert_eq!(key.key(), k);
            assert_eq!(key.url_path(), url, "{k}");
            assert_eq!(key.content_type(), ct, "{k}");
            assert_eq!(key.cache_control(), cc, "{k}");
            assert_eq!(StorageKey::parse(&k), Some(key), "parse {k}");
        }
    }

    #[test]
    fn prefixes() {
        let n = RepoName::new("a/b").expect("name");
        assert_eq!(KeyPrefix::Repository(n).key(), "index/a/b/");
        assert_eq!(KeyPrefix::Uploads.key(), "uploads/");
        let u = UploadId::new("0f0e0d0c-0b0a-4908-8706-050403020100").expect("id");
        assert_eq!(
            KeyPrefix::Upload(u).key(),
            "uploads/0f0e0d0c-0b0a-4908-8706-050403020100/"
        );
        assert_eq!(KeyPrefix::Blobs.key(), "blobs/");
    }

    #[test]
    fn upload_ids() {
        assert!(UploadId::new("0f0e0d0c-0b0a-4908-8706-050403020100").is_some());
        let made = UploadId::from_u128(0x0f0e0d0c_0b0a_4908_8706_050403020100);
        assert_eq!(made.as_str(), "0f0e0d0c-0b0a-4908-8706-050403020100");
        assert_eq!(UploadId::new(made.as_str()), Some(made));
        for bad in [
            "",
            "../etc",
            "0F0E0D0C-0B0A-4908-8706-050403020100",
            "0f0e0d0c0b0a490887060504030201000000",
        ] {
            assert!(UploadId::new(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn parse_rejects_foreign_keys() {
        for k in [
            "index/a/_other/x",
            "blobs/md5/abc",
            "uploads/x/data",
            "index/_x/_tags/list",
            "index/_browse/other.json",
            "index/_browse/catalog/xyz.json",
            "index/a/_browse/tags/00000000",
            "ui/other.js",
            "random",
        ] {
            assert_eq!(StorageKey::parse(k), None, "{k}");
        }
    }
}
