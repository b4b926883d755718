//! `upload_url`: the upload `POST` answers with a `Location` on another host, and under
//! auth that URL is the session's credential (containerd sends none to another host).
//! The "other host" is `localhost` on the server's own port: another name, as a DNS-only
//! record naming the same origin would be.

use reqwest::{Client, Method, StatusCode};

use crate::auth::{as_user, auth_server, cargohold};
use crate::util::*;

/// A port free a moment ago, for a server whose `upload_url` must name it up front.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `serve` flags: listen on `port`, sessions continue at `http://localhost:<port>`.
fn flags(port: u16) -> [String; 4] {
    [
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--upload-url".into(),
        format!("http://localhost:{port}"),
    ]
}

fn refs(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}

/// `url` with `digest` added to its query.
fn with_digest(url: &str, digest: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}digest={digest}")
}

/// A client that sends no credentials, as containerd does on another host.
fn bare() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn send(method: Method, url: &str, body: &[u8]) -> reqwest::Response {
    bare()
        .request(method, url)
        .body(body.to_vec())
        .send()
        .await
        .expect("request to the upload URL")
}

/// Pushes `data` through the session at `loc` with no credentials: a `PATCH`, a status
/// `GET` and the closing `PUT`, each `Location` the same as `loc`. Returns the digest.
async fn push_through(loc: &str, data: &[u8]) -> String {
    let (first, rest) = data.split_at(data.len() / 2);
    let r = send(Method::PATCH, loc, first).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "PATCH {loc}");
    assert_eq!(header(&r, "location"), loc);
    let r = send(Method::GET, loc, b"").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "GET {loc}");
    assert_eq!(header(&r, "location"), loc);
    assert_eq!(header(&r, "range"), format!("0-{}", first.len() - 1));
    let d = digest(data);
    let r = send(Method::PUT, &with_digest(loc, &d), rest).await;
    assert_status(r, StatusCode::CREATED, "closing PUT").await;
    d
}

#[tokio::test]
async fn without_auth_sessions_continue_at_the_upload_url() {
    let port = free_port();
    let s = TestServer::spawn_with(&refs(&flags(port))).await;
    let loc = s.start_upload("r").await;
    let prefix = format!("http://localhost:{port}/v2/r/blobs/uploads/");
    assert!(loc.starts_with(&prefix), "{loc}");
    assert!(!loc.contains('?'), "no capability without auth: {loc}");
    let data = bytes(5000, 1);
    let d = push_through(&loc, &data).await;
    assert_eq!(s.blob_bytes("r", &d).await, data);
    // A session belongs to its repository, whatever host it is continued on.
    let loc = s.start_upload("r").await;
    let elsewhere = loc.replace("/v2/r/", "/v2/o/");
    let r = send(Method::PATCH, &elsewhere, b"x").await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn under_auth_the_upload_url_is_the_sessions_credential() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let mut s = auth_server(dir.path(), "", &refs(&flags(port))).await;
    as_user(&mut s, "alice", &["repository:private/app:pull,push"]).await;
    let loc = s.start_upload("private/app").await;
    let prefix = format!("http://localhost:{port}/v2/private/app/blobs/uploads/");
    assert!(loc.starts_with(&prefix), "{loc}");
    assert!(loc.contains("?cap="), "{loc}");
    let data = bytes(7000, 2);
    let d = push_through(&loc, &data).await;
    assert_eq!(s.blob_bytes("private/app", &d).await, data);

    // A cancel needs nothing more either.
    let loc = s.start_upload("private/app").await;
    assert_eq!(
        send(Method::DELETE, &loc, b"").await.status(),
        StatusCode::NO_CONTENT
    );
    // Without the URL's capability, the session wants credentials as before.
    let loc = s.start_upload("private/app").await;
    let (plain, _) = loc.split_once('?').expect("a query");
    let r = send(Method::PATCH, plain, b"x").await;
    assert!(header(&r, "www-authenticate").starts_with("Bearer "));
    assert_oci_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // The token still works on the upload host, with or without the capability.
    let r = s.client.patch(plain).body(b"x".to_vec()).send().await;
    let r = r.expect("PATCH with a token");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(header(&r, "location").contains("?cap="));
}

/// The capability's text, and the parts of `loc` around it.
fn split_cap(loc: &str) -> (&str, &str) {
    loc.split_once("?cap=").expect("a capability")
}

#[tokio::test]
async fn altered_misplaced_and_expired_capabilities_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let mut args = flags(port).to_vec();
    args.extend(["--upload-max-age".into(), "2s".into()]);
    let mut s = auth_server(dir.path(), "", &refs(&args)).await;
    as_user(
        &mut s,
        "alice",
        &["repository:private/app:pull,push repository:private/other:pull,push"],
    )
    .await;
    let a = s.start_upload("private/app").await;
    let b = s.start_upload("private/app").await;
    let (a_path, a_cap) = split_cap(&a);
    let (b_path, _) = split_cap(&b);
    let mut altered = a_cap.to_owned();
    let last = if altered.ends_with('A') { "B" } else { "A" };
    altered.replace_range(altered.len() - 1.., last);
    let other_repo = a_path.replace("/private/app/", "/private/other/");
    let refused = [
        format!("{a_path}?cap={altered}"),
        format!("{b_path}?cap={a_cap}"),
        format!("{other_repo}?cap={a_cap}"),
        format!("{a_path}?cap=garbage"),
    ];
    for url in &refused {
        let r = send(Method::PATCH, url, b"x").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{url}");
        let body = r.text().await.expect("body");
        assert!(
            body.contains("UNAUTHORIZED") && body.contains("capability"),
            "{body}"
        );
    }
    // A capability opens its session, nothing else.
    let manifest = format!("http://localhost:{port}/v2/private/app/manifests/v1?cap={a_cap}");
    let r = send(Method::GET, &manifest, b"").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Past the session's age limit its capability has expired.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = send(Method::GET, &b, b"").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body = r.text().await.expect("body");
    assert!(body.contains("expired"), "{body}");
}

#[tokio::test]
async fn a_removed_users_upload_urls_stop_working() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let mut s = auth_server(dir.path(), "", &refs(&flags(port))).await;
    as_user(&mut s, "alice", &["repository:private/app:pull,push"]).await;
    let loc = s.start_upload("private/app").await;
    assert_eq!(
        send(Method::GET, &loc, b"").await.status(),
        StatusCode::NO_CONTENT
    );
    let config = dir.path().join("cargohold.toml").display().to_string();
    let (ok, _) = cargohold(&["user", "remove", "alice", "--config", &config], "");
    assert!(ok, "user remove");
    let r = send(Method::GET, &loc, b"").await;
    assert_oci_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}
