//! Conditional writes: `IfNoneMatch`, `IfMatch`, concurrent writers, and `copy`.

use std::collections::HashSet;
use std::time::Duration;

use blob_gateway::{ETag, PutCondition, StoreError};

use index_format::StorageKey;

use crate::util::*;

pub async fn if_none_match_creates_once_and_keeps_the_old_content(store: Store) {
    let key = tag_key("suite/cond", "create-only");
    let first = put(&store, &key, &b"first"[..], PutCondition::IfNoneMatch)
        .await
        .expect("create-only write of a new key");
    assert_precondition_failed(
        put(&store, &key, &b"second"[..], PutCondition::IfNoneMatch).await,
        "create-only write of an existing key",
    );
    let (got, info) = read(&store, &key).await;
    assert_eq!(got, b"first", "the old content is intact");
    assert_eq!(info.etag, first.etag, "the old ETag is intact");
}

pub async fn if_match_replaces_only_the_current_etag(store: Store) {
    let key = tag_key("suite/cond", "if-match");
    let v1 = put(&store, &key, &b"v1"[..], PutCondition::None)
        .await
        .expect("v1");
    let v2 = put(
        &store,
        &key,
        &b"v2"[..],
        PutCondition::IfMatch(v1.etag.clone()),
    )
    .await
    .expect("IfMatch with the current ETag replaces");
    assert_ne!(v2.etag, v1.etag);
    assert_precondition_failed(
        put(
            &store,
            &key,
            &b"v3"[..],
            PutCondition::IfMatch(v1.etag.clone()),
        )
        .await,
        "IfMatch with a stale ETag",
    );
    assert_precondition_failed(
        put(
            &store,
            &key,
            &b"v3"[..],
            PutCondition::IfMatch(ETag("0123456789abcdef".into())),
        )
        .await,
        "IfMatch with an ETag the object never had",
    );
    let (got, info) = read(&store, &key).await;
    assert_eq!(got, b"v2", "failed IfMatch writes change nothing");
    assert_eq!(info.etag, v2.etag);
    put(&store, &key, &b"v3"[..], PutCondition::IfMatch(info.etag))
        .await
        .expect("v3");
    assert_eq!(read(&store, &key).await.0, b"v3");
}

pub async fn if_match_on_a_missing_key_fails(store: Store) {
    let key = tag_key("suite/cond", "if-match-missing");
    let etag = put(
        &store,
        &tag_key("suite/cond", "other"),
        &b"x"[..],
        PutCondition::None,
    )
    .await
    .expect("put another key")
    .etag;
    assert_precondition_failed(
        put(&store, &key, &b"x"[..], PutCondition::IfMatch(etag)).await,
        "IfMatch on a missing key",
    );
    assert_not_found(store.head(&key).await, "nothing was created");
}

const WRITERS: usize = 16;
const ROUNDS: usize = 3;
const SLOT: usize = 4;

/// 16 tasks each increment their own counter `ROUNDS` times by read-modify-write with
/// `IfMatch`, retrying on `PreconditionFailed`. The value has a fixed size, so a backend
/// that pairs new metadata with old bytes (or the reverse) cannot hide behind a size check.
pub async fn concurrent_if_match_writers_lose_no_update(store: Store) {
    let key = tag_key("suite/cond", "counter");
    put(
        &store,
        &key,
        "0".repeat(WRITERS * SLOT),
        PutCondition::IfNoneMatch,
    )
    .await
    .expect("seed");
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u32;
            for _ in 0..ROUNDS {
                loop {
                    let (bytes, info) = read_either(&store, &key, writer % 2 == 0).await;
                    let next = increment(&bytes, writer);
                    match put(&store, &key, next, PutCondition::IfMatch(info.etag)).await {
                        Ok(_) => break,
                        Err(StoreError::PreconditionFailed { .. }) => {
                            conflicts += 1;
                            let jitter = (writer as u64 * 7 + u64::from(conflicts) * 13) % 20;
                            tokio::time::sleep(Duration::from_millis(jitter)).await;
                        }
                        Err(e) => panic!("writer {writer}: {e:#?}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.expect("writer task");
    }
    let (bytes, _) = read(&store, &key).await;
    let want = format!("{ROUNDS:0SLOT$}").repeat(WRITERS);
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        want,
        "every writer's {ROUNDS} increments survive ({conflicts} conflicts retried)"
    );
}

fn increment(value: &[u8], slot: usize) -> Vec<u8> {
    let text = std::str::from_utf8(value).expect("counter is ASCII");
    let field = &text[slot * SLOT..(slot + 1) * SLOT];
    let n: usize = field.parse().expect("counter field is a number");
    let mut out = text.to_owned();
    out.replace_range(slot * SLOT..(slot + 1) * SLOT, &format!("{:0SLOT$}", n + 1));
    out.into_bytes()
}

/// 16 tasks race to create one key: exactly one wins, and its bytes are what is stored.
pub async fn concurrent_creators_have_exactly_one_winner(store: Store) {
    let key = tag_key("suite/cond", "race");
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let body = format!("writer {writer:02}");
            match put(&store, &key, body, PutCondition::IfNoneMatch).await {
                Ok(info) => Some((writer, info.etag)),
                Err(StoreError::PreconditionFailed { .. }) => None,
                Err(e) => panic!("writer {writer}: {e:#?}"),
            }
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        winners.extend(t.await.expect("creator task"));
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one create-only write wins: {winners:?}"
    );
    let (writer, etag) = &winners[0];
    let (got, info) = read(&store, &key).await;
    assert_eq!(String::from_utf8_lossy(&got), format!("writer {writer:02}"));
    assert_eq!(&info.etag, etag);
}

/// The source is an upload's state (JSON, private) and the destination a blob
/// (octet-stream, immutable): the copy must carry the destination's metadata, not the
/// source's.
pub async fn copy_is_server_side_and_conditional(store: Store) {
    let src = upload_state_key();
    let bytes = pattern(5, 70_000);
    let dst = blob_key(&bytes);
    assert_ne!(layout_meta(&src, None).0, layout_meta(&dst, None).0);
    assert_ne!(layout_meta(&src, None).1, layout_meta(&dst, None).1);
    let src_info = store
        .put(
            &src,
            chunked(bytes.clone(), 16_384),
            None,
            PutCondition::None,
        )
        .await
        .expect("put source");

    let copied = store
        .copy(&src, &dst, PutCondition::IfNoneMatch)
        .await
        .expect("create-only copy to a new key");
    assert_eq!(copied.size, 70_000);
    let (got, info) = read(&store, &dst).await;
    assert!(got == bytes, "the copy has the source's bytes");
    assert_eq!(
        info.etag, copied.etag,
        "copy returns the destination's ETag"
    );
    assert_layout_meta(&info, &dst, None, "copy stores the destination's metadata");
    let head = store.head(&dst).await.expect("head of the copy");
    assert_layout_meta(&head, &dst, None, "head of the copy");

    let (got, info) = read(&store, &src).await;
    assert!(got == bytes, "the source is unchanged");
    assert_eq!(info.etag, src_info.etag);
    assert_layout_meta(&info, &src, None, "the source keeps its metadata");

    // Create-only onto an existing key fails and leaves the destination alone.
    let other = StorageKey::Catalog;
    let other_info = put(&store, &other, &b"other bytes"[..], PutCondition::None)
        .await
        .expect("put other");
    assert_precondition_failed(
        store.copy(&other, &dst, PutCondition::IfNoneMatch).await,
        "create-only copy onto an existing key",
    );
    assert_precondition_failed(
        store
            .copy(&other, &dst, PutCondition::IfMatch(other_info.etag))
            .await,
        "IfMatch copy with an ETag the destination does not have",
    );
    let (got, info) = read(&store, &dst).await;
    assert!(got == bytes, "failed conditional copies change nothing");
    assert_eq!(info.etag, copied.etag);

    // IfMatch with the destination's current ETag replaces it.
    let replaced = store
        .copy(&other, &dst, PutCondition::IfMatch(copied.etag.clone()))
        .await
        .expect("IfMatch copy with the current ETag");
    let (got, info) = read(&store, &dst).await;
    assert_eq!(got, b"other bytes");
    assert_eq!(info.etag, replaced.etag);
    assert_layout_meta(
        &info,
        &dst,
        None,
        "a replacing copy stores the destination's metadata",
    );

    // An unconditional copy overwrites; a missing source is NotFound.
    store
        .copy(&src, &dst, PutCondition::None)
        .await
        .expect("overwrite");
    assert!(read(&store, &dst).await.0 == bytes);
    assert_not_found(
        store
            .copy(
                &upload_key(),
                &tag_key("suite/cond", "nowhere"),
                PutCondition::None,
            )
            .await,
        "copy from a missing source",
    );
    assert_not_found(
        store.head(&tag_key("suite/cond", "nowhere")).await,
        "nothing was created",
    );
    let seen: HashSet<_> = [&copied.etag, &replaced.etag].into_iter().collect();
    assert_eq!(seen.len(), 2, "different content, different ETags");
}
