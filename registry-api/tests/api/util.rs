//! The shared harness: a real `cargohold serve` process on a loopback port, and helpers
//! that push blobs and manifests over HTTP.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Body, Method, Response, StatusCode};
use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Where a test server keeps its data: a temporary directory, or (with
/// `CARGOHOLD_TEST_BACKEND=s3` and the `CARGOHOLD_TEST_S3_*` variables that
/// `.ci/s3-servers.sh` writes) a fresh prefix in the test bucket.
pub enum Store {
    Fs(tempfile::TempDir),
    S3 { prefix: String },
}

impl Store {
    fn new() -> Self {
        if std::env::var("CARGOHOLD_TEST_BACKEND").as_deref() == Ok("s3") {
            Self::S3 {
                prefix: format!("t-{}", uuid_like()),
            }
        } else {
            Self::Fs(tempfile::tempdir().expect("tempdir"))
        }
    }

    /// The `serve`/`gc` flags that name this store.
    pub fn args(&self) -> Vec<String> {
        match self {
            Self::Fs(dir) => vec![
                "--root".into(),
                dir.path().join("data").display().to_string(),
            ],
            Self::S3 { prefix } => {
                let var = |n: &str| {
                    std::env::var(format!("CARGOHOLD_TEST_S3_{n}")).unwrap_or_else(|_| {
                        panic!("CARGOHOLD_TEST_S3_{n} is not set: run .ci/s3-servers.sh start")
                    })
                };
                vec![
                    "--storage".into(),
                    "s3".into(),
                    "--s3-endpoint".into(),
                    var("ENDPOINT"),
                    "--s3-region".into(),
                    var("REGION"),
                    "--s3-bucket".into(),
                    var("BUCKET"),
                    "--s3-access-key".into(),
                    var("ACCESS_KEY"),
                    "--s3-secret-key".into(),
                    var("SECRET_KEY"),
                    "--s3-path-style".into(),
                    "--s3-prefix".into(),
                    prefix.clone(),
                    // The generic tests read blob bytes from the API; redirects have their own.
                    "--blob-delivery".into(),
                    "proxy".into(),
                ]
            }
        }
    }

    /// The data directory, on the filesystem backend.
    pub fn fs_root(&self) -> Option<PathBuf> {
        match self {
            Self::Fs(dir) => Some(dir.path().join("data")),
            Self::S3 { .. } => None,
        }
    }
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{nanos:x}-{}-{n}", std::process::id())
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A `cargohold serve` child process on its own store.
pub struct TestServer {
    child: Option<Child>,
    pub base: String,
    pub store: Arc<Store>,
    pub client: reqwest::Client,
}

/// The harness's HTTP client: no redirects followed, and idle connections dropped well
/// before the shortest header timeout a test starts a server with (1 s), which closes
/// idle keep-alive connections too: a request sent on one as the server closes it fails
/// with `IncompleteMessage`, and reqwest does not retry a POST.
fn test_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_millis(500))
}

impl TestServer {
    /// Starts a server on a fresh store.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts a server on a fresh store with extra `serve` flags.
    pub async fn spawn_with(args: &[&str]) -> Self {
        Self::start(Arc::new(Store::new()), args).await
    }

    /// Starts a server on a fresh filesystem store whatever `CARGOHOLD_TEST_BACKEND` says:
    /// for a stand-in of another registry, whose store is not what a test is about.
    pub async fn spawn_on_disk() -> Self {
        Self::start(
            Arc::new(Store::Fs(tempfile::tempdir().expect("tempdir"))),
            &[],
        )
        .await
    }

    /// Starts another server on this one's store (a restart, or a second process).
    pub async fn sharing(&self, args: &[&str]) -> Self {
        Self::start(self.store.clone(), args).await
    }

    /// Starts a server on a fresh store that aborts right after `point` of closing an
    /// upload (`CARGOHOLD_TEST_CRASH_AFTER`), with extra `serve` flags.
    pub async fn crashing_after(point: &str, args: &[&str]) -> Self {
        Self::start_with(
            Arc::new(Store::new()),
            args,
            &[("CARGOHOLD_TEST_CRASH_AFTER", point)],
        )
        .await
    }

    /// The filesystem store's directory; `None` on S3.
    pub fn fs_root(&self) -> Option<PathBuf> {
        self.store.fs_root()
    }

    pub fn is_s3(&self) -> bool {
        matches!(*self.store, Store::S3 { .. })
    }

    async fn start(store: Arc<Store>, args: &[&str]) -> Self {
        Self::start_with(store, args, &[]).await
    }

    async fn start_with(store: Arc<Store>, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cargohold"))
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(store.args())
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cargohold");
        let stderr = child.stderr.take().expect("stderr");
        let addr = listen_address(stderr);
        Self {
            child: Some(child),
            base: format!("http://{addr}"),
            store,
            client: test_client().build().expect("client"),
        }
    }

    /// Runs `cargohold ARGS` on this server's store, e.g. `gc uploads`; returns stdout.
    pub fn command(&self, args: &[&str]) -> String {
        let (ok, stdout) = self.command_status(args);
        assert!(ok, "cargohold {args:?} failed: {stdout}");
        stdout
    }

    /// As [`command`](Self::command), also when it fails: (success, stdout and stderr).
    pub fn command_status(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_cargohold"))
            .args(args)
            .args(self.store.args())
            .output()
            .expect("run cargohold");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Sends `authorization` (e.g. `Bearer <token>`) with every request from now on;
    /// `None` for none.
    pub fn authorize(&mut self, authorization: Option<&str>) {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert("authorization", value.parse().expect("header value"));
        }
        self.client = test_client()
            .default_headers(headers)
            .build()
            .expect("client");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        c.wait().expect("wait")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid().unwrap_or(0)))
            .expect("server /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Sends a request without a body.
    pub async fn send(&self, method: Method, path: &str) -> Response {
        let what = format!("{method} {path}");
        self.req(method, path).send().await.expect(&what)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path).await
    }

    pub async fn head(&self, path: &str) -> Response {
        self.send(Method::HEAD, path).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.send(Method::DELETE, path).await
    }

    /// A GET with one request header (`range`, `accept`, `if-none-match`, ...).
    pub async fn get_with(&self, path: &str, name: &str, value: &str) -> Response {
        self.req(Method::GET, path)
            .header(name, value)
            .send()
            .await
            .expect("GET")
    }

    /// The status a GET of `path` answers.
    pub async fn get_status(&self, path: &str) -> StatusCode {
        self.get(path).await.status()
    }

    /// A GET of `path`, its body parsed as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path).await.json().await.expect("json")
    }

    /// A blob's bytes, pulled through the API (asserts `200`).
    pub async fn blob_bytes(&self, repo: &str, digest: &str) -> Vec<u8> {
        let r = self.get(&format!("/v2/{repo}/blobs/{digest}")).await;
        assert_eq!(r.status(), StatusCode::OK, "GET blob {digest}");
        r.bytes().await.expect("blob body").to_vec()
    }

    /// `POST /v2/<repo>/blobs/uploads/<query>` without a body: starts a session, or
    /// mounts with `?mount=...&from=...`.
    pub async fn post_upload(&self, repo: &str, query: &str) -> Response {
        self.send(Method::POST, &format!("/v2/{repo}/blobs/uploads/{query}"))
            .await
    }

    /// A monolithic push (`POST ?digest=`) of `body` under `digest`, right or wrong.
    pub async fn post_blob(&self, repo: &str, digest: &str, body: impl Into<Body>) -> Response {
        self.req(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
        )
        .body(body)
        .send()
        .await
        .expect("POST blob")
    }

    /// Pushes a blob monolithically (`POST ?digest=`); returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = digest(data);
        let r = self.post_blob(repo, &d, data.to_vec()).await;
        assert_status(r, StatusCode::CREATED, "push blob").await;
        d
    }

    /// Starts an upload session; returns its Location.
    pub async fn start_upload(&self, repo: &str) -> String {
        let r = self.post_upload(repo, "").await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        header(&r, "location")
    }

    /// A chunk of an upload: `PATCH` with `Content-Range` from `range_start`.
    pub async fn patch(&self, loc: &str, range_start: usize, data: &[u8]) -> Response {
        self.req(Method::PATCH, loc)
            .header("content-type", "application/octet-stream")
            .header("content-range", chunk_range(range_start, data))
            .body(data.to_vec())
            .send()
            .await
            .expect("PATCH")
    }

    /// A streamed chunk of an upload: `PATCH` without `Content-Range`.
    pub async fn patch_streamed(&self, loc: &str, body: impl Into<Body>) -> Response {
        self.req(Method::PATCH, loc)
            .body(body)
            .send()
            .await
            .expect("PATCH")
    }

    /// The closing `PUT ?digest=` of an upload, with `body` as its last chunk (no
    /// `Content-Range`; empty for none).
    pub async fn finish_upload(&self, loc: &str, digest: &str, body: &[u8]) -> Response {
        self.req(Method::PUT, &format!("{loc}?digest={digest}"))
            .body(body.to_vec())
            .send()
            .await
            .expect("PUT")
    }

    /// The closing `PUT ?digest=` with a last chunk that names its `Content-Range`.
    pub async fn finish_upload_from(
        &self,
        loc: &str,
        digest: &str,
        range_start: usize,
        data: &[u8],
    ) -> Response {
        self.req(Method::PUT, &format!("{loc}?digest={digest}"))
            .header("content-range", chunk_range(range_start, data))
            .body(data.to_vec())
            .send()
            .await
            .expect("PUT")
    }

    /// An upload session's status (asserts `204`), for its `Range` and `Location`.
    pub async fn upload_status(&self, loc: &str) -> Response {
        let r = self.get(loc).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "upload status {loc}");
        r
    }

    /// Pushes a manifest; returns the response.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Response {
        self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .expect("PUT manifest")
    }

    /// Pushes config and one layer, then an OCI manifest under `tag`; returns the
    /// manifest's bytes and digest.
    pub async fn push_image(&self, repo: &str, tag: &str, layer: &[u8]) -> (Vec<u8>, String) {
        let config = self.push_blob(repo, b"{}").await;
        let layer_d = self.push_blob(repo, layer).await;
        let m = image_manifest(&config, 2, &[(&layer_d, layer.len())], None);
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &m).await;
        assert_status(r, StatusCode::CREATED, "push manifest").await;
        let d = digest(&m);
        (m, d)
    }
}

/// Reads the listen address from the server's start-up line on `stderr`, and keeps
/// draining the pipe (echoing it with `CARGOHOLD_TEST_LOG` set) in a thread of its own.
fn listen_address(stderr: ChildStderr) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let addr = serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v["fields"]["listen"].as_str().map(str::to_owned));
            if let (Some(t), Some(addr)) = (tx.as_ref(), addr) {
                let _ = t.send(addr);
                tx = None;
            }
            if std::env::var_os("CARGOHOLD_TEST_LOG").is_some() {
                eprintln!("{line}");
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("server did not report its address")
}

/// The `Content-Range` of `data` sent from `start`: `start-end`, both inclusive.
fn chunk_range(start: usize, data: &[u8]) -> String {
    assert!(!data.is_empty(), "a Content-Range names at least one byte");
    format!("{start}-{}", start + data.len() - 1)
}

impl Drop for TestServer {
    /// Stops the server, then checks that whatever the test did left the index consistent
    /// (`cargohold index check`); tests that damage it on purpose repair it before.
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let (ok, out) = self.command_status(&["index", "check"]);
            assert!(ok, "the test left the index inconsistent: {out}");
        }
    }
}

pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// An OCI image manifest with the given config and layers, and an optional subject.
pub fn image_manifest(
    config: &str,
    config_size: usize,
    layers: &[(&str, usize)],
    subject: Option<(&str, usize)>,
) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, s)| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}))
        .collect();
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": layers,
    });
    if let Some((d, s)) = subject {
        m["subject"] = serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d, "size": s});
    }
    serde_json::to_vec(&m).expect("json")
}

/// Asserts the response's status, with its body in the message when it is another.
pub async fn assert_status(r: Response, status: StatusCode, what: &str) {
    let got = r.status();
    if got != status {
        let body = r.text().await.unwrap_or_default();
        panic!("{what}: expected {status}, got {got}: {body}");
    }
}

/// Asserts the response is the spec's error envelope with `code` and `status`.
pub async fn assert_oci_error(r: Response, status: StatusCode, code: &str) {
    assert_eq!(r.status(), status, "expected {status} {code}");
    let body: serde_json::Value =
        serde_json::from_slice(&r.bytes().await.expect("body")).expect("JSON error body");
    let codes: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors array")
        .iter()
        .filter_map(|e| e["code"].as_str())
        .collect();
    assert!(codes.contains(&code), "expected {code}, got {codes:?}");
}

/// Deterministic pseudo-random bytes (no RNG crate needed).
pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Every file below `dir`.
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// `--part-size` flags that make the filesystem enforce R2's equal-part rule with small
/// parts; S3 stores keep their own (8 MiB) part size.
pub fn small_parts(s3: bool) -> &'static [&'static str] {
    if s3 { &[] } else { &["--part-size", "1024"] }
}

pub fn s3_backend() -> bool {
    std::env::var("CARGOHOLD_TEST_BACKEND").as_deref() == Ok("s3")
}

/// Raw HTTP over TCP, for requests reqwest will not send (bad framing, no `Host`, dot
/// segments, a lying `Content-Length`).
pub struct Raw(tokio::net::TcpStream);

impl Raw {
    /// Connects to the server at `base` (`http://host:port`).
    pub async fn connect(base: &str) -> Self {
        let addr = base.trim_start_matches("http://");
        Self(tokio::net::TcpStream::connect(addr).await.expect("connect"))
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.0.write_all(bytes).await.expect("write");
    }

    /// Closes the sending half: the server sees the request end there.
    pub async fn finish_sending(&mut self) {
        use tokio::io::AsyncWriteExt;
        self.0.shutdown().await.expect("shutdown");
    }

    /// What the server sends until it closes the connection or `wait` passes without a
    /// byte; `None` if the connection was closed (or reset) without a byte.
    pub async fn read_for(&mut self, wait: Duration) -> Option<String> {
        use tokio::io::AsyncReadExt;
        let mut out = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        while let Ok(Ok(n)) = tokio::time::timeout(wait, self.0.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
    }

    /// Sends `request` on a fresh connection and returns the answer (the server closes
    /// it after, as `Connection: close` or bad framing ask).
    pub async fn exchange(base: &str, request: &[u8]) -> String {
        let mut c = Self::connect(base).await;
        c.send(request).await;
        c.read_for(Duration::from_secs(10))
            .await
            .unwrap_or_default()
    }
}

/// The status code of a raw response, 0 if there is none.
pub fn raw_status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
