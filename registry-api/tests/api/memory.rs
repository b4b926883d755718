//! Blob bytes stream: pushing and pulling a 1 GiB layer keeps the server's resident memory
//! under 64 MiB.

use futures::StreamExt;
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};

use crate::util::*;

const CHUNK: usize = 1 << 20;
const CHUNKS: usize = 1024;
const RSS_LIMIT_KIB: u64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_push_and_pull_stay_under_64_mib_resident() {
    let s = TestServer::spawn().await;
    let chunk = bytes(CHUNK, 42);
    let mut hasher = Sha256::new();
    for _ in 0..CHUNKS {
        hasher.update(&chunk);
    }
    let d = format!("sha256:{}", hex::encode(hasher.finalize()));

    // Docker's pattern: one streamed PATCH without Content-Length, then PUT ?digest=.
    let loc = s.start_upload("big").await;
    let c = bytes::Bytes::from(chunk);
    let body = futures::stream::iter((0..CHUNKS).map(move |_| Ok::<_, std::io::Error>(c.clone())));
    let r = s
        .patch_streamed(&loc, reqwest::Body::wrap_stream(body))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), format!("0-{}", CHUNK * CHUNKS - 1));
    let r = s.finish_upload(&header(&r, "location"), &d, b"").await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let r = s.get(&format!("/v2/big/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut stream = r.bytes_stream();
    let mut pulled = Sha256::new();
    let mut n = 0usize;
    while let Some(part) = stream.next().await {
        let part = part.expect("body");
        n += part.len();
        pulled.update(&part);
    }
    assert_eq!(n, CHUNK * CHUNKS);
    assert_eq!(format!("sha256:{}", hex::encode(pulled.finalize())), d);

    let peak = s.peak_rss_kib();
    eprintln!("server peak RSS after 1 GiB push and pull: {peak} KiB");
    assert!(
        peak < RSS_LIMIT_KIB,
        "server peak RSS {peak} KiB over {RSS_LIMIT_KIB} KiB"
    );
}
