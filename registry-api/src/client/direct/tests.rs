//! Presigned uploads against stand-ins: a bucket that fails on purpose, and a registry
//! that reports the single-object race.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;
use crate::client::{Client, Credentials, ImageRef};

/// How the stand-in bucket answers one connection.
#[derive(Clone, Copy)]
enum Answer {
    /// Closes the connection once the request's head is read.
    Drop,
    Status(u16),
}

/// A bucket stand-in on loopback answering its connections with `answers` in turn;
/// its task returns how many connections came and the last body read in full.
async fn flaky_bucket(answers: Vec<Answer>) -> (String, tokio::task::JoinHandle<(usize, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!(
        "http://{}/bucket/key?partNumber=1",
        listener.local_addr().expect("addr")
    );
    let task = tokio::spawn(async move {
        let mut body = Vec::new();
        for (n, answer) in answers.iter().enumerate() {
            let (socket, _) = listener.accept().await.expect("accept");
            let mut reader = BufReader::new(socket);
            let mut len = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).await.expect("head");
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                let line = line.to_ascii_lowercase();
                if let Some(v) = line.strip_prefix("content-length:") {
                    len = v.trim().parse().expect("length");
                }
            }
            let status = match answer {
                Answer::Drop => continue,
                Answer::Status(s) => *s,
            };
            body = vec![0; len];
            reader.read_exact(&mut body).await.expect("body");
            let head = format!(
                "HTTP/1.1 {status} X\r\netag: \"e{n}\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            reader
                .get_mut()
                .write_all(head.as_bytes())
                .await
                .expect("answer");
            if status == 200 {
                return (n + 1, body);
            }
        }
        (answers.len(), body)
    });
    (url, task)
}

async fn send(
    url: String,
    backoff: Duration,
) -> (Result<String, ClientError>, Arc<BlobProgress>, Vec<u8>) {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("blob");
    std::fs::write(&file, &data).expect("write");
    let options = Options {
        creds: Some(Credentials::parse("u:p").expect("creds")),
        retries: 3,
        backoff,
        state_dir: None,
        ..Options::default()
    };
    let client = Client::new(options.clone()).expect("client");
    let image = ImageRef::parse("127.0.0.1:1/r").expect("ref");
    let repo = client.repository(&image).expect("repository");
    let progress = Arc::new(client.progress().blob("sha256:0", 200_000));
    let signed = Signed {
        method: "PUT".into(),
        url,
        // As signed: the exact length, so the body is not sent chunked.
        headers: vec![
            ("content-length".into(), "200000".into()),
            ("x-amz-checksum-sha256".into(), "c2lnbmVk".into()),
        ],
    };
    let result = repo
        .send_signed(&signed, &file, 1000, 200_000, &options, &progress)
        .await;
    (result, progress, data[1000..201_000].to_vec())
}

#[tokio::test]
async fn a_part_is_retried_with_backoff_after_a_5xx_and_a_dropped_connection() {
    use Answer::*;
    let (url, bucket) = flaky_bucket(vec![Status(503), Drop, Status(200)]).await;
    let started = Instant::now();
    let (result, progress, part) = send(url, Duration::from_millis(20)).await;
    assert_eq!(result.expect("the third attempt"), "e2");
    // Waits of 20 ms, then 40 ms.
    assert!(started.elapsed() >= Duration::from_millis(60));
    let (connections, body) = bucket.await.expect("bucket");
    assert_eq!((connections, body == part), (3, true));
    // The failed attempts' bytes are taken back: the part counts once.
    assert_eq!(progress.position(), 200_000);
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_5xx_only_as_often_as_allowed() {
    use Answer::*;
    let (url, bucket) = flaky_bucket(vec![Status(403)]).await;
    let (result, _, _) = send(url, Duration::from_millis(1)).await;
    assert!(matches!(
        result,
        Err(ClientError::Status { status: 403, .. })
    ));
    assert_eq!(bucket.await.expect("bucket").0, 1);
    let (url, bucket) = flaky_bucket(vec![Status(500); 4]).await;
    let (result, _, _) = send(url, Duration::from_millis(1)).await;
    assert!(matches!(
        result,
        Err(ClientError::Status { status: 500, .. })
    ));
    // Three attempts; the fourth connection never comes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!bucket.is_finished());
    bucket.abort();
}

/// What the stand-in registry saw: the bucket's PUT bodies and the `complete` calls.
#[derive(Default)]
struct Seen {
    puts: Vec<Vec<u8>>,
    completes: usize,
}

/// Another session's PUT of the same blob overwrote this one's object between its PUT
/// and its `complete`: the registry refuses with `SIZE_INVALID` (see the server's
/// two-session race test), and the client sends its PUT once more, then completes.
#[tokio::test]
async fn a_single_object_overwritten_by_a_racing_session_is_put_again() {
    use axum::routing::{post, put};
    use std::sync::Mutex;

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let bucket = format!("http://{addr}/bucket/blob");
    let app = axum::Router::new()
        .route(
            "/v2/r/_cargohold/direct/start",
            post(move || async move {
                axum::Json(json!({"status": "upload", "id": "s1",
                    "put": {"method": "PUT", "url": bucket, "headers": []}}))
            }),
        )
        .route(
            "/bucket/blob",
            put({
                let seen = seen.clone();
                move |body: axum::body::Bytes| async move {
                    seen.lock().expect("seen").puts.push(body.to_vec());
                    [(header::ETAG, "\"e\"")]
                }
            }),
        )
        .route(
            "/v2/r/_cargohold/direct/complete",
            post({
                let seen = seen.clone();
                move || async move {
                    let mut seen = seen.lock().expect("seen");
                    seen.completes += 1;
                    if seen.completes == 1 {
                        let body = json!({"errors": [{"code": "SIZE_INVALID",
                            "message": "the object at the blob's key is another session's"}]});
                        (StatusCode::BAD_REQUEST, axum::Json(body))
                    } else {
                        (StatusCode::CREATED, axum::Json(json!({})))
                    }
                }
            }),
        );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("blob");
    std::fs::write(&file, &data).expect("write");
    let options = Options::default();
    let client = Client::new(options.clone()).expect("client");
    let repo = client
        .repository(&ImageRef::parse(&format!("{addr}/r")).expect("ref"))
        .expect("repository");
    let desc: Descriptor = serde_json::from_value(json!({
        "mediaType": "application/octet-stream",
        "digest": format!("sha256:{}", hex::encode(Sha256::digest(&data))),
        "size": data.len(),
    }))
    .expect("descriptor");
    let progress = Arc::new(client.progress().blob("blob", desc.size));
    let outcome = repo
        .push_direct(&desc, &file, &options, &progress)
        .await
        .expect("pushed after the second PUT");
    assert!(matches!(outcome, BlobOutcome::Uploaded));
    let seen = seen.lock().expect("seen");
    assert_eq!(seen.completes, 2);
    assert_eq!(seen.puts, vec![data.clone(), data]);
    server.abort();
}
