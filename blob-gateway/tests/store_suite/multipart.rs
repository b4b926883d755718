//! Multipart uploads, and a large object streamed both ways.

use blob_gateway::{ByteStream, CompletedPart, PutCondition, StoreError};
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest as _, Sha256};

use crate::util::*;

/// The size of every non-final part: what the backend demands, or something small.
fn part_len(store: &Store) -> usize {
    store.part_size().map_or(100_000, |s| {
        usize::try_from(s).expect("part size fits usize")
    })
}

async fn upload(
    store: &Store,
    key: &index_format::StorageKey,
    id: &blob_gateway::MultipartId,
    n: u32,
    bytes: &[u8],
) -> CompletedPart {
    let part = store
        .upload_part(
            key,
            id,
            n,
            chunked(bytes.to_vec(), 1 << 20),
            Some(bytes.len() as u64),
        )
        .await
        .unwrap_or_else(|e| panic!("upload part {n}: {e:#?}"));
    assert_eq!(part.number, n);
    assert_eq!(part.size, bytes.len() as u64);
    part
}

/// Assembled into a blob key, whose metadata (octet-stream, immutable) the completed
/// object must carry.
pub async fn multipart_assembles_parts_in_order(store: Store) {
    let len = part_len(&store);
    let parts = [pattern(10, len), pattern(11, len), pattern(12, 1234)];
    let whole = parts.concat();
    let key = blob_key(&whole);
    let id = store.create_multipart(&key).await.expect("create");
    assert_not_found(store.head(&key).await, "nothing is visible before complete");

    // Upload out of order and concurrently; complete lists them in order.
    let (p2, p1, p3) = tokio::join!(
        upload(&store, &key, &id, 2, &parts[1]),
        upload(&store, &key, &id, 1, &parts[0]),
        upload(&store, &key, &id, 3, &parts[2]),
    );
    let info = store
        .complete_multipart(&key, &id, &[p1, p2, p3])
        .await
        .expect("complete");
    assert_eq!(info.size, whole.len() as u64);
    let (got, read_info) = read(&store, &key).await;
    assert_eq!(got.len(), whole.len());
    assert!(got == whole, "parts are assembled in number order");
    assert_eq!(
        read_info.etag, info.etag,
        "complete returns the object's ETag"
    );
    assert_layout_meta(&read_info, &key, None, "a multipart object");
    let head = store.head(&key).await.expect("head");
    assert_layout_meta(&head, &key, None, "head of a multipart object");
}

pub async fn multipart_with_one_part(store: Store) {
    let key = upload_key();
    let id = store.create_multipart(&key).await.expect("create");
    let bytes = pattern(13, 777);
    let p1 = upload(&store, &key, &id, 1, &bytes).await;
    let info = store
        .complete_multipart(&key, &id, &[p1])
        .await
        .expect("complete");
    assert_eq!(info.size, 777);
    let (got, info) = read(&store, &key).await;
    assert!(got == bytes);
    assert_layout_meta(&info, &key, None, "a one-part multipart object");
}

pub async fn complete_with_a_wrong_etag_fails(store: Store) {
    let key = upload_key();
    let len = part_len(&store);
    let id = store.create_multipart(&key).await.expect("create");
    let p1 = upload(&store, &key, &id, 1, &pattern(14, len)).await;
    let p2 = upload(&store, &key, &id, 2, &pattern(15, 10)).await;
    let forged = CompletedPart {
        etag: "0123456789abcdef0123456789abcdef".into(),
        ..p2.clone()
    };
    let result = store
        .complete_multipart(&key, &id, &[p1.clone(), forged])
        .await;
    assert!(
        matches!(result, Err(StoreError::InvalidPart { .. })),
        "complete with a part ETag the store never gave: expected InvalidPart, got {result:?}"
    );
    let missing = CompletedPart {
        number: 3,
        ..p2.clone()
    };
    let result = store
        .complete_multipart(&key, &id, &[p1.clone(), p2.clone(), missing])
        .await;
    assert!(
        result.is_err(),
        "complete with a part never uploaded fails, got {result:?}"
    );
    assert_not_found(
        store.head(&key).await,
        "a failed complete publishes nothing",
    );
    // The upload survives a failed complete.
    store
        .complete_multipart(&key, &id, &[p1, p2])
        .await
        .expect("complete with the right ETags");
    assert_eq!(store.head(&key).await.expect("head").size, len as u64 + 10);
}

pub async fn abort_is_idempotent_and_ends_the_upload(store: Store) {
    let key = upload_key();
    let id = store.create_multipart(&key).await.expect("create");
    let p1 = upload(&store, &key, &id, 1, b"some bytes").await;
    store.abort_multipart(&key, &id).await.expect("abort");
    store.abort_multipart(&key, &id).await.expect("abort twice");
    let result = store
        .upload_part(&key, &id, 2, once(&b"late"[..]), Some(4))
        .await;
    assert!(
        matches!(result, Err(StoreError::NoSuchUpload { .. })),
        "upload_part after abort: expected NoSuchUpload, got {result:?}"
    );
    let result = store.complete_multipart(&key, &id, &[p1]).await;
    assert!(
        matches!(result, Err(StoreError::NoSuchUpload { .. })),
        "complete after abort: expected NoSuchUpload, got {result:?}"
    );
    assert_not_found(
        store.head(&key).await,
        "an aborted upload publishes nothing",
    );

    // Aborting an upload that completed is Ok too, and leaves the object alone.
    let key = upload_key();
    let id = store.create_multipart(&key).await.expect("create");
    let p1 = upload(&store, &key, &id, 1, b"kept").await;
    store
        .complete_multipart(&key, &id, &[p1])
        .await
        .expect("complete");
    store
        .abort_multipart(&key, &id)
        .await
        .expect("abort after complete");
    assert_eq!(read(&store, &key).await.0, b"kept");
}

/// Uploads nobody completed are aborted by age: younger ones are left alone. (In a fresh
/// store nothing else is left over, so the count is the uploads'.)
pub async fn remove_leftovers_ends_only_older_uploads(store: Store) {
    use std::time::{Duration, SystemTime};
    let key = upload_key();
    let id = store.create_multipart(&key).await.expect("create");
    let p1 = upload(&store, &key, &id, 1, b"orphan").await;
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let removed = store
        .remove_leftovers(hour_ago)
        .await
        .expect("remove leftovers");
    assert_eq!(removed, 0, "an upload younger than the cutoff is kept");
    // S3 records start times to the second.
    let soon = SystemTime::now() + Duration::from_secs(2);
    let removed = store
        .remove_leftovers(soon)
        .await
        .expect("remove leftovers");
    assert_eq!(
        removed, 1,
        "the upload started before the cutoff is aborted"
    );
    let result = store.complete_multipart(&key, &id, &[p1]).await;
    assert!(
        result.is_err(),
        "an aborted upload cannot complete, got {result:?}"
    );
    assert_not_found(store.head(&key).await, "nothing was published");
}

const LARGE: u64 = 64 << 20;
const CHUNK: usize = 1 << 20;

/// 64 MiB generated on the fly (never held whole in memory), in odd-sized chunks.
fn large_body() -> ByteStream {
    let chunks = (0..LARGE / CHUNK as u64).map(|i| {
        let mut bytes = pattern(1000 + i, CHUNK);
        // Odd chunk boundaries: split each MiB in two uneven pieces.
        let tail = bytes.split_off(CHUNK / 3 + 17);
        futures::stream::iter([Ok(Bytes::from(bytes)), Ok(Bytes::from(tail))])
    });
    Box::pin(futures::stream::iter(chunks).flatten())
}

fn large_sha256() -> String {
    let mut h = Sha256::new();
    for i in 0..LARGE / CHUNK as u64 {
        h.update(pattern(1000 + i, CHUNK));
    }
    hex::encode(h.finalize())
}

pub async fn large_object_streams_both_ways(store: Store) {
    let key = upload_key();
    let want = tokio::task::spawn_blocking(large_sha256);
    let info = store
        .put(&key, large_body(), None, PutCondition::IfNoneMatch)
        .await
        .expect("put 64 MiB");
    assert_eq!(info.size, LARGE);
    let body = store.get(&key, None).await.expect("get");
    assert_eq!(body.info.size, LARGE);
    let mut stream = body.stream;
    let mut h = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("read chunk");
        size += chunk.len() as u64;
        h.update(&chunk);
    }
    assert_eq!(size, LARGE);
    assert_eq!(
        hex::encode(h.finalize()),
        want.await.expect("hash task"),
        "sha256 round trip"
    );

    // A range deep inside the object.
    let start = LARGE - CHUNK as u64 - 5;
    let range = blob_gateway::ByteRange {
        start,
        end: Some(start + 9),
    };
    let body = store.get(&key, Some(range)).await.expect("ranged get");
    let expected = &pattern(1000 + LARGE / CHUNK as u64 - 2, CHUNK)[CHUNK - 5..];
    let got = collect(body.stream).await;
    assert_eq!(got[..5], expected[..5]);
    assert_eq!(got[5..], pattern(1000 + LARGE / CHUNK as u64 - 1, 5)[..]);
}
