//! Logs: request lines go where `--access-log` says, in batches, to a file that SIGHUP
//! reopens and that holds every line once the server has stopped; a 5xx is logged once,
//! with its request, even with request lines off.
//!
//! These servers keep their stderr (the shared harness only reads the address from it),
//! so they run their own child on a filesystem store whatever the test backend.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::util::*;

const REQUEST: &str = "cargohold::request";

struct Server {
    child: Option<Child>,
    base: String,
    /// Every stderr line, once the process has exited.
    stderr: Option<JoinHandle<Vec<String>>>,
    client: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Server {
    fn spawn(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_cargohold"))
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--root")
            .arg(dir.path().join("data"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cargohold");
        let pipe = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(addr) = serde_json::from_str::<Value>(&line)
                    .ok()
                    .and_then(|v| v["fields"]["listen"].as_str().map(str::to_owned))
                {
                    let _ = tx.send(addr);
                }
                lines.push(line);
            }
            lines
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server did not report its address");
        Self {
            child: Some(child),
            base: format!("http://{addr}"),
            stderr: Some(stderr),
            client: reqwest::Client::new(),
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn send(&self, method: Method, path: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", OCI_MANIFEST)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    async fn get(&self, path: &str) -> StatusCode {
        self.send(Method::GET, path, Vec::new()).await.status()
    }

    fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill -{name}");
    }

    /// SIGTERM; the exit status and every stderr line as JSON.
    fn terminate(&mut self) -> (ExitStatus, Vec<Value>) {
        self.signal("TERM");
        let status = self.child.take().expect("running").wait().expect("wait");
        let lines = self
            .stderr
            .take()
            .expect("stderr")
            .join()
            .expect("stderr reader");
        (status, lines.iter().map(|l| json(l)).collect())
    }

    /// Pushes an image `r:v1` and breaks its tag list document, so that reading it
    /// (a paginated tag list parses it) is an internal error.
    async fn push_and_corrupt(&self) {
        let config = digest(b"{}");
        let r = self
            .send(
                Method::POST,
                &format!("/v2/r/blobs/uploads/?digest={config}"),
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let m = image_manifest(&config, 2, &[], None);
        let r = self.send(Method::PUT, "/v2/r/manifests/v1", m).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let list = walk(&self.path("data"))
            .into_iter()
            .find(|p| p.ends_with("index/r/_tags/list"))
            .expect("tag list document");
        std::fs::write(list, "{not json").expect("corrupt");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"))
}

/// The request lines in a log file, as JSON.
fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(json)
        .collect()
}

fn paths(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l["target"] == REQUEST)
        .filter_map(|l| l["fields"]["path"].as_str())
        .collect()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        // Lines are batched for at most a second; allow for a loaded machine.
        assert!(t.elapsed() < Duration::from_secs(10), "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The ERROR lines for a 5xx at `path`.
fn errors_for<'a>(lines: &'a [Value], path: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["level"] == "ERROR" && l["fields"]["path"] == path)
        .collect()
}

#[tokio::test]
async fn access_lines_batched_into_a_file_reopened_on_sighup_and_flushed_on_exit() {
    let logs = tempfile::tempdir().expect("tempdir");
    let log = logs.path().join("access.log");
    let mut s = Server::spawn(&["--access-log", log.to_str().expect("utf-8 path")]);

    for p in ["/v2/", "/v2/a/tags/list", "/v2/b/manifests/x"] {
        s.get(p).await;
    }
    // Written within the second, without the server stopping.
    wait_for("first lines in the access log", || {
        paths(&read_lines(&log)).len() == 3
    })
    .await;
    assert_eq!(
        paths(&read_lines(&log)),
        ["/v2/", "/v2/a/tags/list", "/v2/b/manifests/x"]
    );
    let line = &read_lines(&log)[1];
    assert_eq!(line["fields"]["method"], "GET");
    assert_eq!(line["fields"]["status"], 404);
    assert!(line["fields"]["duration_ms"].is_number(), "{line}");

    // logrotate: rename, SIGHUP; the server starts a new file at the old path.
    let rotated = logs.path().join("access.log.1");
    std::fs::rename(&log, &rotated).expect("rename");
    s.signal("HUP");
    wait_for("the access log reopened", || log.exists()).await;
    assert_eq!(
        s.get("/v2/after-hup/tags/list").await,
        StatusCode::NOT_FOUND
    );
    // Straight to SIGTERM: this line is still in the buffer, and the exit writes it.
    let (status, stderr) = s.terminate();
    assert!(status.success(), "{status}");

    assert_eq!(paths(&read_lines(&log)), ["/v2/after-hup/tags/list"]);
    assert_eq!(paths(&read_lines(&rotated)).len(), 3);
    // Request lines are in the file only; the rest still goes to stderr.
    assert_eq!(paths(&stderr), Vec::<&str>::new());
    assert!(
        stderr
            .iter()
            .any(|l| l["fields"]["message"] == "shut down cleanly")
    );
}

#[tokio::test]
async fn with_access_lines_off_none_are_written_but_a_5xx_still_is() {
    let mut s = Server::spawn(&["--access-log", "off"]);
    s.push_and_corrupt().await;
    assert_eq!(s.get("/v2/").await, StatusCode::OK);
    assert_eq!(
        s.get("/v2/r/tags/list?n=10").await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let (status, stderr) = s.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(paths(&stderr), Vec::<&str>::new());
    assert_eq!(
        errors_for(&stderr, "/v2/r/tags/list").len(),
        1,
        "{stderr:#?}"
    );
    assert!(!s.path("off").exists());
}

#[tokio::test]
async fn a_5xx_is_logged_once_with_method_path_and_status_and_its_body_says_nothing() {
    let mut s = Server::spawn(&[]);
    s.push_and_corrupt().await;
    let r = s
        .send(Method::GET, "/v2/r/tags/list?n=10", Vec::new())
        .await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = r.text().await.expect("body");
    let envelope: Value = serde_json::from_str(&body).expect("JSON envelope");
    assert_eq!(envelope["errors"][0]["code"], "UNKNOWN");
    assert_eq!(envelope["errors"][0]["message"], "internal server error");
    assert!(
        !body.contains("not json") && !body.contains("_tags"),
        "{body}"
    );

    let (_, stderr) = s.terminate();
    let errors = errors_for(&stderr, "/v2/r/tags/list");
    assert_eq!(errors.len(), 1, "{stderr:#?}");
    let e = &errors[0]["fields"];
    assert_eq!(e["method"], "GET");
    assert_eq!(e["status"], 500);
    assert_eq!(e["message"], "internal error");
    // The cause is in the log (and only there).
    assert!(!e["error"].as_str().unwrap_or_default().is_empty(), "{e}");
    // And the request line as usual, at INFO, beside it.
    let requests: Vec<&Value> = stderr
        .iter()
        .filter(|l| l["target"] == REQUEST && l["fields"]["path"] == "/v2/r/tags/list")
        .collect();
    assert_eq!(requests.len(), 1, "{stderr:#?}");
    assert_eq!(requests[0]["level"], "INFO");
    assert_eq!(requests[0]["fields"]["status"], 500);
}

/// A client that drops the connection mid-upload, or sends a body hyper cannot frame, is
/// the client's fault: a request line with a 4xx, no ERROR line.
#[tokio::test]
async fn a_client_that_disconnects_mid_upload_is_logged_as_a_client_error() {
    let mut s = Server::spawn(&[]);
    let r = s
        .send(Method::POST, "/v2/r/blobs/uploads/", Vec::new())
        .await;
    let loc = header(&r, "location");
    let mut c = Raw::connect(&s.base).await;
    c.send(
        format!("PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123").as_bytes(),
    )
    .await;
    drop(c);
    let chunked = format!(
        "POST /v2/r/blobs/uploads/?digest={} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n",
        digest(b"x")
    );
    Raw::exchange(&s.base, chunked.as_bytes()).await;
    // The PATCH's line is written once the server has seen the connection go.
    let mut patched = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(u) = s
            .send(Method::GET, &loc, Vec::new())
            .await
            .headers()
            .get("range")
        {
            patched = u == "0-0";
            break;
        }
    }
    assert!(patched, "the session is intact");
    let (_, stderr) = s.terminate();
    let statuses: Vec<&Value> = stderr
        .iter()
        .filter(|l| l["target"] == REQUEST && l["fields"]["method"] != "GET")
        .map(|l| &l["fields"]["status"])
        .collect();
    assert_eq!(statuses, [202, 400, 400], "{stderr:#?}");
    assert!(stderr.iter().all(|l| l["level"] != "ERROR"), "{stderr:#?}");
}
