//! Writes the browse documents of a large registry straight into a filesystem store, for
//! the scale figures of the browse UI (`bench/browse.sh`):
//!
//! ```text
//! cargo run --release -p registry-api --example browse_scale -- ROOT [REPOS] [TAGS]
//! ```
//!
//! ROOT gets a browse catalog and search terms of REPOS repositories (default 100,000:
//! `org-<n>/service-<m>` names), each listed but only `big/repo` given a repository page,
//! with TAGS tags (default 10,000) of two platforms each, and one manifest detail. Pages
//! are cut as the server cuts them (half a page's limit each), so the documents have the
//! shape and size the server's own would have. No manifests or blobs: pulls of these
//! repositories fail; only the browse UI is measured.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use index_format::browse::{
    BROWSE_VERSION, BrowseList, Directory, ManifestDetail, Page, PageId, PageRef, PlatformSummary,
    RepositorySummary, TagRecord, search_entries, separator,
};
use index_format::{Digest, RepoName, StorageKey, Tag};
use serde::Serialize;

fn write<T: Serialize>(root: &Path, key: &StorageKey, doc: &T) -> std::io::Result<()> {
    let path: PathBuf = root.join(key.key());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        path,
        serde_json::to_vec(doc).map_err(std::io::Error::other)?,
    )
}

/// Writes `entries` (sorted) as the paged list `list`.
fn write_list<T: Serialize + Clone>(
    root: &Path,
    list: &BrowseList,
    entries: &[T],
    key_of: impl Fn(&T) -> String,
    repository: Option<RepositorySummary>,
) -> std::io::Result<usize> {
    let per_page = list.page_limit() / 2;
    let mut pages = Vec::new();
    for (n, chunk) in entries.chunks(per_page).enumerate() {
        let id = PageId::from_u32(n as u32);
        let from = match n {
            0 => String::new(),
            _ => separator(&key_of(&entries[n * per_page - 1]), &key_of(&chunk[0])),
        };
        let page = Page {
            version: BROWSE_VERSION,
            entries: chunk.to_vec(),
        };
        write(
            root,
            &StorageKey::BrowsePage(list.clone(), id.clone()),
            &page,
        )?;
        pages.push(PageRef { id, from });
    }
    let dir = Directory {
        version: BROWSE_VERSION,
        pages,
        repository,
    };
    write(root, &StorageKey::BrowseDirectory(list.clone()), &dir)?;
    Ok(dir.pages.len())
}

fn digest(n: u64) -> Digest {
    Digest::new(&format!("sha256:{n:064x}")).expect("digest")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(
        args.next()
            .ok_or("usage: browse_scale ROOT [REPOS] [TAGS]")?,
    );
    let repos: usize = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let tags: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;

    let big = RepoName::new("big/repo")?;
    let mut names: Vec<RepoName> = (0..repos.saturating_sub(1))
        .map(|i| RepoName::new(&format!("org-{}/service-{i}", i % 997)))
        .collect::<Result<_, _>>()?;
    names.push(big.clone());
    names.sort();
    let catalog: Vec<String> = names.iter().map(|n| n.as_str().to_owned()).collect();
    let mut terms: Vec<String> = names.iter().flat_map(search_entries).collect();
    terms.sort();
    terms.dedup();
    let catalog_pages = write_list(&root, &BrowseList::Catalog, &catalog, Clone::clone, None)?;
    let search_pages = write_list(&root, &BrowseList::Search, &terms, Clone::clone, None)?;

    let platform = |n: u64, arch: &str, size: u64| PlatformSummary {
        platform: format!("linux/{arch}"),
        digest: digest(n),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size,
    };
    let mut records: Vec<TagRecord> = (0..tags as u64)
        .map(|i| {
            Ok(TagRecord {
                tag: Tag::new(&format!("1.{}.{}", i / 100, i % 100))?,
                digest: digest(i * 3),
                media_type: "application/vnd.oci.image.index.v1+json".into(),
                size: 60_000_000 + i,
                platforms: vec![
                    platform(i * 3 + 1, "amd64", 30_000_000 + i),
                    platform(i * 3 + 2, "arm64", 29_000_000 + i),
                ],
                created: Some("2026-11-20T10:00:00Z".into()),
                pushed: 1_790_000_000 + i,
                referrers: BTreeMap::from([(
                    "application/vnd.dev.cosign.artifact.sig.v1+json".into(),
                    1,
                )]),
            })
        })
        .collect::<Result<_, index_format::NameError>>()?;
    records.sort_by(|a, b| a.tag.cmp(&b.tag));
    let mut recent = records.clone();
    recent.sort_by_key(|r| std::cmp::Reverse(r.pushed));
    recent.truncate(index_format::browse::RECENT_TAGS);
    let summary = RepositorySummary {
        name: Some(big.clone()),
        tags: tags as u64,
        pushed: recent.first().map(|r| r.pushed),
        recent,
    };
    let list = BrowseList::Tags(big.clone());
    let tag_pages = write_list(
        &root,
        &list,
        &records,
        |r| r.tag.as_str().to_owned(),
        Some(summary),
    )?;
    let first = &records[0];
    let detail = ManifestDetail {
        version: BROWSE_VERSION,
        digest: first.digest.clone(),
        media_type: first.media_type.clone(),
        artifact_type: None,
        manifest_size: 500,
        created: first.created.clone(),
        size: first.size,
        annotations: BTreeMap::new(),
        subject: None,
        layers: Vec::new(),
        config: None,
        platforms: first.platforms.clone(),
        tags: vec![first.tag.clone()],
    };
    write(
        &root,
        &StorageKey::BrowseManifest(big, first.digest.clone()),
        &detail,
    )?;
    println!(
        "{repos} repositories ({catalog_pages} catalog pages, {} search terms on {search_pages} pages), big/repo: {tags} tags on {tag_pages} pages; first tag {}",
        terms.len(),
        first.tag
    );
    Ok(())
}
