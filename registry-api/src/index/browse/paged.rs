//! Paged lists on the store ([`index_format::browse`]): every change goes to the page its
//! key belongs to through the index's conditional update, and a page past its limit is
//! split. Splitting never loses an entry written meanwhile:
//! 1. the new page is written with the upper half, before anything names it;
//! 2. the directory gains it only if the old page's range is still what was split
//!    (so two splits of one page cannot both happen);
//! 3. the old page then hands every entry outside its range to the page that owns it
//!    ("settling"), and forgets only what it handed over.
//!
//! A writer that changed a page while its range moved re-checks the directory after its
//! write, settles that page and repeats its change on the right one. Until then a reader
//! may find an entry on two pages: readers show a page's entries within its range only.

use index_format::StorageKey;
use index_format::browse::{BrowseList, Directory, Entry, Page, PageId, PageRef, separator};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::index::{Index, IndexError};

/// What a page entry must be to be stored.
pub trait Stored: Entry + Serialize + DeserializeOwned + Send + Sync {}
impl<T: Entry + Serialize + DeserializeOwned + Send + Sync> Stored for T {}

fn directory_key(list: &BrowseList) -> StorageKey {
    StorageKey::BrowseDirectory(list.clone())
}

fn page_key(list: &BrowseList, id: &PageId) -> StorageKey {
    StorageKey::BrowsePage(list.clone(), id.clone())
}

impl Index {
    /// The directory of `list` (a single empty page before the first write).
    pub(crate) async fn directory(&self, list: &BrowseList) -> Result<Directory, IndexError> {
        Ok(self.read(&directory_key(list)).await?.unwrap_or_default())
    }

    /// Adds or replaces `entry`; the entry it replaced, if any.
    pub(crate) async fn page_upsert<T: Stored>(
        &self,
        list: &BrowseList,
        entry: T,
    ) -> Result<Option<T>, IndexError> {
        let key = entry.key().to_owned();
        self.on_page(list, &key, |p: &mut Page<T>| p.upsert(entry.clone()))
            .await
    }

    /// Removes the entry under `key`; the entry removed, if any.
    pub(crate) async fn page_remove<T: Stored>(
        &self,
        list: &BrowseList,
        key: &str,
    ) -> Result<Option<T>, IndexError> {
        self.on_page(list, key, |p: &mut Page<T>| p.remove(key))
            .await
    }

    /// Changes the entry under `key` in place, if there is one.
    pub(crate) async fn page_modify<T: Stored>(
        &self,
        list: &BrowseList,
        key: &str,
        change: impl Fn(&mut T) -> bool + Send + Sync,
    ) -> Result<(), IndexError> {
        self.on_page(list, key, |p: &mut Page<T>| {
            let Ok(i) = p.entries.binary_search_by(|e| e.key().cmp(key)) else {
                return false;
            };
            change(&mut p.entries[i])
        })
        .await
        .map(|_| ())
    }

    /// Applies `change` to the page that holds `key`, until the page it changed is still
    /// the one holding `key` afterwards; the entry under `key` before the first change.
    async fn on_page<T: Stored>(
        &self,
        list: &BrowseList,
        key: &str,
        change: impl Fn(&mut Page<T>) -> bool + Send + Sync,
    ) -> Result<Option<T>, IndexError> {
        let mut before = None;
        let mut first = true;
        let mut dir = self.directory(list).await?;
        loop {
            let id = dir.pages[dir.page_of(key)].id.clone();
            let page = self
                .update(&page_key(list, &id), Page::default, |p: &mut Page<T>| {
                    if first {
                        before = p.get(key).cloned();
                    }
                    change(p)
                })
                .await?;
            first = false;
            if page.entries.len() > list.page_limit() {
                self.split::<T>(list, &id).await?;
            }
            dir = self.directory(list).await?;
            if dir.pages[dir.page_of(key)].id == id {
                return Ok(before);
            }
            // The key's range moved to another page while this one was changed.
            self.settle::<T>(list, &id).await?;
        }
    }

    /// The directory, the position in it of page `id` and the page; `None` if either the
    /// directory no longer names the page or the page is gone.
    async fn page_in_directory<T: Stored>(
        &self,
        list: &BrowseList,
        id: &PageId,
    ) -> Result<Option<(Directory, usize, Page<T>)>, IndexError> {
        let dir = self.directory(list).await?;
        let Some(i) = dir.pages.iter().position(|p| &p.id == id) else {
            return Ok(None);
        };
        let page = self.read::<Page<T>>(&page_key(list, id)).await?;
        Ok(page.map(|p| (dir, i, p)))
    }

    /// Splits page `id` in two if it is still over its limit.
    async fn split<T: Stored>(&self, list: &BrowseList, id: &PageId) -> Result<(), IndexError> {
        let Some((dir, i, page)) = self.page_in_directory::<T>(list, id).await? else {
            return Ok(());
        };
        let (from, until) = dir.range(i);
        let middle = match page.middle() {
            Some(m) if page.entries.len() > list.page_limit() && m.as_str() > from => m,
            _ => return Ok(()),
        };
        let upper: Vec<T> = page
            .entries
            .iter()
            .filter(|e| e.key() >= middle.as_str() && until.is_none_or(|u| e.key() < u))
            .cloned()
            .collect();
        let new = PageId::from_u32(uuid::Uuid::new_v4().as_u128() as u32);
        self.update(&page_key(list, &new), Page::default, |p| p.merge(&upper))
            .await?;
        let until = until.map(str::to_owned);
        let mut added = false;
        let reference = PageRef {
            id: new.clone(),
            from: middle,
        };
        self.update(&directory_key(list), Directory::default, |d| {
            added = d.insert_page(id, until.as_deref(), reference.clone());
            added
        })
        .await?;
        if !added {
            // Another writer split it first: this page was never named.
            self.store.delete(&page_key(list, &new)).await?;
            return Ok(());
        }
        self.settle::<T>(list, id).await
    }

    /// Hands the entries of page `id` outside its range to the pages that own them.
    pub(crate) async fn settle<T: Stored>(
        &self,
        list: &BrowseList,
        id: &PageId,
    ) -> Result<(), IndexError> {
        let Some((dir, i, page)) = self.page_in_directory::<T>(list, id).await? else {
            return Ok(());
        };
        let (from, until) = dir.range(i);
        let strays = page.outside(from, until);
        let mut at = 0;
        while at < strays.len() {
            let target = dir.page_of(strays[at].key());
            let (_, target_until) = dir.range(target);
            let n = strays[at..]
                .iter()
                .take_while(|e| target_until.is_none_or(|u| e.key() < u))
                .count()
                .max(1);
            let group = &strays[at..at + n];
            let target_key = page_key(list, &dir.pages[target].id);
            self.update(&target_key, Page::default, |p| p.merge(group))
                .await?;
            at += n;
        }
        let (from, until) = (from.to_owned(), until.map(str::to_owned));
        self.update(&page_key(list, id), Page::default, |p: &mut Page<T>| {
            let before = p.entries.len();
            p.entries.retain(|e| {
                let outside =
                    e.key() < from.as_str() || until.as_deref().is_some_and(|u| e.key() >= u);
                !(outside && strays.iter().any(|s| s.key() == e.key()))
            });
            before != p.entries.len()
        })
        .await
        .map(|_| ())
    }

    /// Writes `list` whole from `entries` (sorted by key): for `index rebuild`. Pages
    /// no longer named are deleted after the directory stops naming them.
    pub(crate) async fn write_list<T: Stored>(
        &self,
        list: &BrowseList,
        entries: Vec<T>,
        summary: Option<index_format::browse::RepositorySummary>,
    ) -> Result<(), IndexError> {
        let old = self.directory(list).await?;
        let mut dir = Directory {
            repository: summary,
            pages: Vec::new(),
            ..Directory::default()
        };
        let per_page = list.page_limit() / 2;
        let chunks: Vec<&[T]> = if entries.is_empty() {
            vec![&[]]
        } else {
            entries.chunks(per_page.max(1)).collect()
        };
        let mut last = String::new();
        for (n, chunk) in chunks.into_iter().enumerate() {
            let id = if n == 0 {
                PageId::first()
            } else {
                PageId::from_u32(uuid::Uuid::new_v4().as_u128() as u32)
            };
            let from = match n {
                0 => String::new(),
                _ => separator(&last, chunk[0].key()),
            };
            last = chunk
                .last()
                .map_or_else(String::new, |e| e.key().to_owned());
            let page = Page {
                entries: chunk.to_vec(),
                ..Page::default()
            };
            self.put_document(&page_key(list, &id), &page).await?;
            dir.pages.push(PageRef { id, from });
        }
        self.put_document(&directory_key(list), &dir).await?;
        for stale in old
            .pages
            .iter()
            .filter(|p| !dir.pages.iter().any(|q| q.id == p.id))
        {
            self.store.delete(&page_key(list, &stale.id)).await?;
        }
        Ok(())
    }
}
