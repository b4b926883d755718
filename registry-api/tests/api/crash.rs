//! SIGKILL at any point keeps completed pushes, shows no partial blob or index file, and
//! leaves an interrupted chunked upload resumable after a restart. SIGTERM drains.

use reqwest::StatusCode;

use crate::util::*;

#[tokio::test]
async fn chunked_upload_resumes_after_kill_and_restart() {
    let mut s = TestServer::spawn().await;
    let (_, done) = s.push_image("r", "v1", b"kept").await;
    let data = bytes(200_000, 9);
    let d = digest(&data);
    let (head, tail) = data.split_at(100_000);
    let loc = s.start_upload("r").await;
    let r = s.patch(&loc, 0, head).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    s.kill();

    let s2 = s.sharing(&[]).await;
    assert_eq!(
        s2.get_status(&format!("/v2/r/manifests/{done}")).await,
        StatusCode::OK,
        "completed push kept"
    );
    let st = s2.upload_status(&loc).await;
    assert_eq!(header(&st, "range"), "0-99999");
    let r = s2.finish_upload_from(&loc, &d, head.len(), tail).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(s2.blob_bytes("r", &d).await, data);
}

#[tokio::test]
async fn kill_during_streamed_upload_leaves_no_partial_blob() {
    let mut s = TestServer::spawn().await;
    let data = bytes(8 << 20, 7);
    let d = digest(&data);
    let url = s.url(&format!("/v2/r/blobs/uploads/?digest={d}"));
    // Send half the body, then kill the server mid-request.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let client = s.client.clone();
    let req = tokio::spawn(async move {
        client
            .post(url)
            .header("content-length", (8 << 20).to_string())
            .body(body)
            .send()
            .await
    });
    for chunk in data[..4 << 20].chunks(1 << 20) {
        tx.send(Ok(chunk.to_vec())).await.expect("send");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.kill();
    drop(tx);
    let _ = req.await;

    let s2 = s.sharing(&[]).await;
    assert_eq!(
        s2.head(&format!("/v2/r/blobs/{d}")).await.status(),
        StatusCode::NOT_FOUND
    );
    if let Some(root) = s.fs_root() {
        assert!(walk(&root.join("blobs")).is_empty(), "no blob file visible");
    }
}

#[tokio::test]
async fn sigterm_exits_cleanly() {
    let mut s = TestServer::spawn().await;
    s.push_image("r", "v1", b"x").await;
    let status = s.terminate();
    assert!(status.success(), "exit status {status:?}");
}
