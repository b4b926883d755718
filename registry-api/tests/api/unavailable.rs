//! When the bucket cannot be reached, requests answer `503` with `Retry-After` and the
//! spec's error envelope, and nothing is left half-written once it is back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::util::*;

/// A TCP proxy in front of the S3 server that the test can cut and restore.
struct Cuttable {
    addr: SocketAddr,
    upstream: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Cuttable {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let p = Self {
            addr,
            upstream,
            tasks: Arc::default(),
        };
        p.serve(listener);
        p
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, tasks) = (self.upstream.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                if let Ok(mut t) = tasks.lock() {
                    t.push(conn);
                }
            }
        });
        if let Ok(mut t) = self.tasks.lock() {
            t.push(accept);
        }
    }

    /// Stops accepting and drops every open connection.
    fn cut(&self) {
        if let Ok(mut t) = self.tasks.lock() {
            for task in t.drain(..) {
                task.abort();
            }
        }
    }

    async fn restore(&self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind");
        self.serve(listener);
    }
}

// Multi-threaded: the harness waits for the server synchronously while the proxy runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_bucket_is_503_with_retry_after_and_nothing_half_written() {
    if !s3_backend() {
        eprintln!("skipped: needs CARGOHOLD_TEST_BACKEND=s3");
        return;
    }
    let endpoint = std::env::var("CARGOHOLD_TEST_S3_ENDPOINT").expect("endpoint");
    let upstream = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = Cuttable::start(upstream).await;
    let via = format!("http://{}", proxy.addr);
    let s = TestServer::spawn_with(&["--s3-endpoint", &via]).await;
    let (m1, _) = s.push_image("r", "v1", b"before").await;
    let config = s.push_blob("r", b"{}").await;
    let m2 = image_manifest(&config, 2, &[], None);

    proxy.cut();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for r in [
        s.get("/v2/r/manifests/v1").await,
        s.put_manifest("r", "v2", OCI_MANIFEST, &m2).await,
    ] {
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!header(&r, "retry-after").is_empty(), "Retry-After");
        let body: Value = r.json().await.expect("JSON envelope");
        assert!(body["errors"][0]["code"].is_string(), "{body}");
    }

    proxy.restore().await;
    let r = s.get("/v2/r/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.expect("b").as_ref(), &m1[..]);
    // The tag list is whole.
    let tags: Value = s.get_json("/v2/r/tags/list").await;
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
    // The failed push left either nothing under v2 or the whole manifest.
    let r = s.get("/v2/r/manifests/v2").await;
    assert!(r.status() == StatusCode::NOT_FOUND || r.bytes().await.expect("b").as_ref() == &m2[..]);
    // And the same push now succeeds.
    assert_eq!(
        s.put_manifest("r", "v2", OCI_MANIFEST, &m2).await.status(),
        StatusCode::CREATED
    );
}
