//! `list`: lexical order, prefixes, `after`, `limit` and `truncated`.

use blob_gateway::PutCondition;
use index_format::{KeyPrefix, StorageKey};

use crate::util::*;

async fn put_all(store: &Store, keys: &[StorageKey]) {
    let writes = keys
        .iter()
        .map(|k| put(store, k, k.key(), PutCondition::None));
    for result in futures::future::join_all(writes).await {
        result.expect("put");
    }
}

fn sorted(keys: &[StorageKey]) -> Vec<String> {
    let mut out: Vec<String> = keys.iter().map(StorageKey::key).collect();
    out.sort();
    out
}

pub async fn list_returns_keys_under_the_prefix_in_lexical_order(store: Store) {
    // `a` and `a/b` share the `index/suite/list/a/` prefix by design (a nested repository
    // is listed with its parent); `ab` and `b` must never leak into `a`'s listing.
    let a: Vec<StorageKey> = ["v2", "v10", "latest", "V1", "_x"]
        .iter()
        .map(|t| tag_key("suite/list/a", t))
        .chain([StorageKey::TagList(repo("suite/list/a"))])
        .collect();
    let nested = vec![tag_key("suite/list/a/b", "x")];
    let ab = vec![tag_key("suite/list/ab", "y")];
    let b = vec![tag_key("suite/list/b", "z")];
    let blob = vec![blob_key(b"blob")];
    let upload = vec![upload_key()];
    for group in [&a, &nested, &ab, &b, &blob, &upload] {
        put_all(&store, group).await;
    }

    let page = store
        .list(&repo_prefix("suite/list/a"), None, 1000)
        .await
        .expect("list a");
    let want = sorted(&[a.clone(), nested.clone()].concat());
    assert_eq!(
        page.keys, want,
        "a's keys and its nested repository's, in byte order"
    );
    assert!(!page.truncated);

    let page = store
        .list(&repo_prefix("suite/list/a/b"), None, 1000)
        .await
        .expect("list a/b");
    assert_eq!(
        page.keys,
        sorted(&nested),
        "a nested prefix lists only its own keys"
    );
    let page = store
        .list(&repo_prefix("suite/list/ab"), None, 1000)
        .await
        .expect("list ab");
    assert_eq!(
        page.keys,
        sorted(&ab),
        "`ab` is not under `a`, nor `a` under `ab`"
    );
    let page = store
        .list(&KeyPrefix::Blobs, None, 1000)
        .await
        .expect("list blobs");
    assert_eq!(page.keys, sorted(&blob), "the blob prefix holds blobs only");
    let page = store
        .list(&KeyPrefix::Uploads, None, 1000)
        .await
        .expect("list uploads");
    assert_eq!(
        page.keys,
        sorted(&upload),
        "the upload prefix holds uploads only"
    );

    let page = store
        .list(&repo_prefix("suite/list/none"), None, 10)
        .await
        .expect("list empty");
    assert!(
        page.keys.is_empty() && !page.truncated,
        "an empty prefix: {page:?}"
    );
}

pub async fn list_pages_with_after_and_limit(store: Store) {
    let keys: Vec<StorageKey> = (0..25)
        .map(|i| tag_key("suite/page", &format!("t{i:02}")))
        .collect();
    put_all(&store, &keys).await;
    let all = sorted(&keys);
    let prefix = repo_prefix("suite/page");

    // Paging by 10 visits every key once, in order.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let page = store
            .list(&prefix, after.as_deref(), 10)
            .await
            .expect("list page");
        assert!(page.keys.len() <= 10, "at most `limit` keys");
        pages.push((page.keys.len(), page.truncated));
        seen.extend(page.keys.iter().cloned());
        if !page.truncated {
            break;
        }
        after = page.keys.last().cloned();
        assert!(pages.len() < 10, "paging ends");
    }
    assert_eq!(seen, all, "paging returns every key once, in order");
    assert_eq!(pages, [(10, true), (10, true), (5, false)]);

    // `truncated` is exact at the boundary.
    let page = store.list(&prefix, None, 25).await.expect("limit = count");
    assert_eq!((page.keys.len(), page.truncated), (25, false));
    let page = store
        .list(&prefix, None, 24)
        .await
        .expect("limit = count - 1");
    assert_eq!((page.keys.len(), page.truncated), (24, true));

    // `after` is strict and need not be an existing key.
    let page = store
        .list(&prefix, Some(&all[5]), 3)
        .await
        .expect("after an existing key");
    assert_eq!(page.keys, all[6..9]);
    assert!(page.truncated);
    let between = format!("{}~", all[5]);
    let page = store
        .list(&prefix, Some(&between), 100)
        .await
        .expect("after a non-key");
    assert_eq!(page.keys, all[6..]);
    assert!(!page.truncated);
    let page = store
        .list(&prefix, Some("index/"), 100)
        .await
        .expect("after, before the prefix");
    assert_eq!(page.keys, all);
    let page = store
        .list(&prefix, Some(&all[24]), 100)
        .await
        .expect("after the last key");
    assert!(page.keys.is_empty() && !page.truncated, "{page:?}");
}
