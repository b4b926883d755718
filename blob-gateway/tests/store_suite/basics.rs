//! `head`, `get`, `put`, ranges and `delete`.

use blob_gateway::{ByteRange, ByteStream, ManifestMeta, PutCondition, StoreError};
use bytes::Bytes;
use index_format::{ManifestMediaType, StorageKey};

use crate::util::*;

pub async fn missing_key_is_not_found(store: Store) {
    let key = tag_key("suite/basics", "missing");
    assert_not_found(store.head(&key).await, "head of a missing key");
    assert_not_found(
        store.get(&key, None).await.map(|b| b.info),
        "get of a missing key",
    );
    let range = ByteRange {
        start: 0,
        end: Some(9),
    };
    assert_not_found(
        store.get(&key, Some(range)).await.map(|b| b.info),
        "ranged get of a missing key",
    );
}

pub async fn put_then_get_round_trips_bytes_and_metadata(store: Store) {
    let key = tag_key("suite/basics", "round-trip");
    let bytes = pattern(1, 10_000);
    let media = manifest_meta(ManifestMediaType::OciManifest, &bytes);
    let put = store
        .put(
            &key,
            chunked(bytes.clone(), 3000),
            media.clone(),
            PutCondition::None,
        )
        .await
        .expect("put");
    assert_eq!(put.size, 10_000);
    assert!(!put.etag.0.is_empty(), "put returns an ETag");
    assert!(
        !put.etag.0.contains('"'),
        "ETags are stored without quotes: {}",
        put.etag
    );

    let head = store.head(&key).await.expect("head");
    assert_eq!(head.size, 10_000);
    assert_eq!(head.etag, put.etag, "head and put agree on the ETag");
    assert_layout_meta(&head, &key, media.as_ref(), "head of a manifest put");

    let (got, info) = read(&store, &key).await;
    assert!(got == bytes, "get returns the bytes put");
    assert_eq!(info.etag, put.etag);
    assert_layout_meta(&info, &key, media.as_ref(), "get of a manifest put");

    // An unconditional put replaces the object, metadata and all.
    let media2 = manifest_meta(ManifestMediaType::OciIndex, b"{}");
    let second = store
        .put(&key, once(&b"{}"[..]), media2.clone(), PutCondition::None)
        .await
        .expect("overwrite");
    assert_ne!(second.etag, put.etag, "new content, new ETag");
    let (got, info) = read(&store, &key).await;
    assert_eq!(got, b"{}");
    assert_eq!(info.size, 2);
    assert_layout_meta(&info, &key, media2.as_ref(), "get after an overwrite");

    // Every key gets the metadata the layout gives it, whatever the writer.
    let digest_manifest = digest_key("suite/basics", b"{}");
    let keys: [(StorageKey, Option<ManifestMeta>); 5] = [
        (StorageKey::Catalog, None),
        (upload_state_key(), None),
        (upload_key(), None),
        (blob_key(b"{}"), None),
        (
            digest_manifest,
            manifest_meta(ManifestMediaType::DockerManifest, b"{}"),
        ),
    ];
    for (key, media) in keys {
        let put = store
            .put(&key, once(&b"{}"[..]), media.clone(), PutCondition::None)
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:#?}"));
        let head = store.head(&key).await.expect("head");
        assert_eq!(head.etag, put.etag);
        assert_layout_meta(&head, &key, media.as_ref(), "head");
        let (_, info) = read(&store, &key).await;
        assert_layout_meta(&info, &key, media.as_ref(), "get");
    }
}

/// `read` returns a whole object up to `max` bytes and refuses a bigger one with
/// `TooLarge`, whether or not the object was read whole before (a manifest, which a
/// backend may cache, and an upload's state, which it may not).
pub async fn read_returns_whole_small_objects_and_refuses_larger(store: Store) {
    let bytes = pattern(6, 1000);
    for key in [tag_key("suite/basics", "read"), upload_state_key()] {
        assert_not_found(store.read(&key, 1 << 20).await, "read of a missing key");
        let put = put(&store, &key, bytes.clone(), PutCondition::None)
            .await
            .expect("put");
        assert_too_large(&store, &key, "before any whole read").await;
        for max in [1 << 20, 1000] {
            let (got, info) = store
                .read(&key, max)
                .await
                .unwrap_or_else(|e| panic!("read {key} with max {max}: {e:#?}"));
            assert!(got == bytes, "read returns the whole object");
            assert_eq!(info.size, 1000);
            assert_eq!(info.etag, put.etag, "read returns the object's ETag");
        }
        assert_too_large(&store, &key, "after a whole read").await;
    }
}

/// A `read` of the 1000-byte object at `key` with a smaller `max` is `TooLarge`.
async fn assert_too_large(store: &Store, key: &StorageKey, when: &str) {
    for max in [999, 0] {
        match store.read(key, max).await {
            Err(StoreError::TooLarge {
                size, max: limit, ..
            }) if limit == max && size > max => {}
            other => panic!(
                "read of 1000 bytes of {key} with max {max}, {when}: expected TooLarge, got {:?}",
                other.map(|(b, i)| (b.len(), i.etag))
            ),
        }
    }
}

pub async fn empty_object_round_trips(store: Store) {
    let key = tag_key("suite/basics", "empty");
    let info = put(&store, &key, Bytes::new(), PutCondition::None)
        .await
        .expect("put");
    assert_eq!(info.size, 0);
    let (got, info) = read(&store, &key).await;
    assert!(got.is_empty());
    assert_eq!(info.size, 0);
    match store
        .get(
            &key,
            Some(ByteRange {
                start: 0,
                end: None,
            }),
        )
        .await
        .map(|b| b.info)
    {
        Err(StoreError::InvalidRange {
            start: 0, size: 0, ..
        }) => {}
        other => panic!("a range of an empty object is not satisfiable, got {other:?}"),
    }
}

pub async fn ranges_return_exactly_the_requested_bytes(store: Store) {
    let key = tag_key("suite/basics", "ranges");
    let bytes = pattern(2, 1000);
    put(&store, &key, bytes.clone(), PutCondition::None)
        .await
        .expect("put");

    let cases: [(u64, Option<u64>, (u64, u64)); 5] = [
        (10, Some(19), (10, 19)),      // start-end, inclusive
        (0, Some(0), (0, 0)),          // one byte
        (990, None, (990, 999)),       // open end
        (990, Some(5000), (990, 999)), // end past the object: clamped
        (999, Some(999), (999, 999)),  // the last byte
    ];
    for (start, end, (want_start, want_end)) in cases {
        let body = store
            .get(&key, Some(ByteRange { start, end }))
            .await
            .unwrap_or_else(|e| panic!("get {start}-{end:?}: {e:#?}"));
        assert_eq!(
            body.range,
            Some((want_start, want_end)),
            "range {start}-{end:?}"
        );
        assert_eq!(body.info.size, 1000, "info.size is the whole object's size");
        let got = collect(body.stream).await;
        let (s, e) = (want_start as usize, want_end as usize);
        assert!(
            got == bytes[s..=e],
            "range {start}-{end:?} returns bytes {s}..={e}"
        );
    }

    for start in [1000, 1001, 50_000] {
        match store
            .get(&key, Some(ByteRange { start, end: None }))
            .await
            .map(|b| b.info)
        {
            Err(StoreError::InvalidRange {
                start: s,
                size: 1000,
                ..
            }) if s == start => {}
            other => {
                panic!("range {start}- of a 1000-byte object: expected InvalidRange, got {other:?}")
            }
        }
    }
}

pub async fn delete_is_idempotent(store: Store) {
    let key = tag_key("suite/basics", "delete");
    store
        .delete(&key)
        .await
        .expect("deleting a missing key is Ok");
    put(&store, &key, &b"x"[..], PutCondition::None)
        .await
        .expect("put");
    store.delete(&key).await.expect("delete");
    assert_not_found(store.head(&key).await, "head after delete");
    assert_not_found(
        store.get(&key, None).await.map(|b| b.info),
        "get after delete",
    );
    store.delete(&key).await.expect("deleting twice is Ok");
    // The key can be created again, create-only, after a delete.
    put(&store, &key, &b"y"[..], PutCondition::IfNoneMatch)
        .await
        .expect("re-create");
    assert_eq!(read(&store, &key).await.0, b"y");
}

/// A body that fails half-way must leave the old object whole: the write is atomic even
/// when the writer dies.
pub async fn failed_put_leaves_the_old_object(store: Store) {
    let key = tag_key("suite/basics", "atomic");
    let old = pattern(3, 4096);
    let media = manifest_meta(ManifestMediaType::OciManifest, &old);
    let before = store
        .put(&key, once(old.clone()), media.clone(), PutCondition::None)
        .await
        .expect("put");
    let broken: ByteStream = Box::pin(futures::stream::iter(vec![
        Ok(Bytes::from(pattern(4, 4096))),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ]));
    let result = store
        .put(
            &key,
            broken,
            manifest_meta(ManifestMediaType::OciIndex, b"{}"),
            PutCondition::None,
        )
        .await;
    assert!(
        result.is_err(),
        "a failing body fails the put, got {result:?}"
    );
    let (got, info) = read(&store, &key).await;
    assert!(got == old, "the old object is intact");
    assert_eq!(info.etag, before.etag);
    assert_layout_meta(
        &info,
        &key,
        media.as_ref(),
        "the old object's metadata is intact",
    );

    // And a failed create-only write leaves nothing behind.
    let fresh = tag_key("suite/basics", "atomic-new");
    let broken: ByteStream = Box::pin(futures::stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(std::io::Error::other("boom")),
    ]));
    let result = store
        .put(&fresh, broken, None, PutCondition::IfNoneMatch)
        .await;
    assert!(result.is_err());
    assert_not_found(store.head(&fresh).await, "head after a failed create");
}
