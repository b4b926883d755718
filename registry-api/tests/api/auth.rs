//! Authentication and access rules: the token flow clients speak, scopes, anonymous pull
//! of public repositories, private ones, mounts across repositories, forged, expired and
//! replayed tokens, refresh tokens, robots and the password backoff.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use reqwest::{Method, StatusCode};

use crate::util::*;

const RULES: &str = r#"
admins = ["root"]
basic = true

[[auth.rules]]
repository = "public/*"
pull = ["*"]
push = ["alice"]

[[auth.rules]]
repository = "private/*"
pull = ["alice", "bob"]
push = ["alice"]
delete = ["alice"]

[[auth.rules]]
repository = "carol/*"
pull = ["carol"]
push = ["carol"]
"#;

/// A server with auth on, its auth directory under `dir`, users alice, bob, carol and
/// root (password `pw-<name>`), and extra `[auth]` lines and flags.
pub(crate) async fn auth_server(dir: &Path, extra: &str, flags: &[&str]) -> TestServer {
    let auth_dir = dir.join("auth");
    let config = dir.join("cargohold.toml");
    std::fs::write(
        &config,
        format!("[auth]\ndir = {:?}\n{extra}\n{RULES}", auth_dir.display()),
    )
    .expect("config");
    let config = config.display().to_string();
    // A second server on the same directory finds them there already.
    for user in ["alice", "bob", "carol", "root"] {
        let _ = cargohold(
            &["user", "add", user, "--config", &config],
            &format!("pw-{user}\n"),
        );
    }
    let mut args = vec!["--config", config.as_str()];
    args.extend_from_slice(flags);
    TestServer::spawn_with(&args).await
}

/// Runs `cargohold ARGS` with `stdin`; returns (success, stdout).
pub(crate) fn cargohold(args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cargohold"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cargohold");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b64}")
}

/// `GET /token` with `scopes` as credentials `user` would send them (`None`: anonymous).
async fn token_response(s: &TestServer, user: Option<&str>, scopes: &[&str]) -> reqwest::Response {
    let mut query: Vec<(&str, &str)> = vec![("service", "cargohold")];
    query.extend(scopes.iter().map(|sc| ("scope", *sc)));
    let mut req = reqwest::Client::new().get(s.url("/token")).query(&query);
    if let Some(u) = user {
        req = req.header("authorization", basic(u, &format!("pw-{u}")));
    }
    req.send().await.expect("GET /token")
}

async fn token(s: &TestServer, user: Option<&str>, scopes: &[&str]) -> String {
    let r = token_response(s, user, scopes).await;
    assert_eq!(r.status(), StatusCode::OK, "token for {user:?}");
    let v: serde_json::Value = r.json().await.expect("token json");
    v["token"].as_str().expect("token").to_owned()
}

/// A token's claims, read without verifying (the server did that).
fn claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&raw).expect("claims json")
}

pub(crate) async fn as_user(s: &mut TestServer, user: &str, scopes: &[&str]) {
    let t = token(s, Some(user), scopes).await;
    s.authorize(Some(&format!("Bearer {t}")));
}

#[tokio::test]
async fn base_challenges_and_public_pull_needs_no_token_but_private_does() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = auth_server(dir.path(), "", &[]).await;
    let r = s.get("/v2/").await;
    let challenge = header(&r, "www-authenticate");
    assert_oci_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert!(
        challenge.starts_with("Bearer realm=\"http://127.0.0.1:"),
        "{challenge}"
    );
    assert!(
        challenge.contains("/token\",service=\"cargohold\""),
        "{challenge}"
    );

    as_user(
        &mut s,
        "alice",
        &["repository:public/app:pull,push repository:private/app:pull,push"],
    )
    .await;
    assert_eq!(s.get_status("/v2/").await, StatusCode::OK);
    s.push_image("public/app", "v1", b"public layer").await;
    s.push_image("private/app", "v1", b"private layer").await;

    // What a private repository answers no shared cache may keep; a public one's it may.
    let cache = header(
        &s.get("/v2/private/app/manifests/v1").await,
        "cache-control",
    );
    assert!(cache.starts_with("private"), "{cache}");
    let layer = digest(b"private layer");
    let cache = header(
        &s.get(&format!("/v2/private/app/blobs/{layer}")).await,
        "cache-control",
    );
    assert!(cache.starts_with("private"), "{cache}");

    s.authorize(None);
    let r = s.get("/v2/public/app/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::OK);
    let cache = header(&r, "cache-control");
    assert!(cache.starts_with("public"), "{cache}");
    let r = s.get("/v2/private/app/manifests/v1").await;
    let challenge = header(&r, "www-authenticate");
    assert_oci_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert!(
        challenge.ends_with(",scope=\"repository:private/app:pull\""),
        "{challenge}"
    );
    // Anonymous pushes are challenged too, even to a public repository.
    assert_eq!(
        s.post_upload("public/app", "").await.status(),
        StatusCode::UNAUTHORIZED
    );

    as_user(&mut s, "bob", &["repository:private/app:pull"]).await;
    assert_eq!(
        s.get_status("/v2/private/app/manifests/v1").await,
        StatusCode::OK
    );
    assert_eq!(
        s.get_status("/v2/private/app/tags/list").await,
        StatusCode::OK
    );
    // Bob may not push there: no token would help, so 403, not another challenge.
    assert_oci_error(
        s.post_upload("private/app", "").await,
        StatusCode::FORBIDDEN,
        "DENIED",
    )
    .await;
    assert_oci_error(
        s.delete("/v2/private/app/manifests/v1").await,
        StatusCode::FORBIDDEN,
        "DENIED",
    )
    .await;
    // The catalog is for administrators.
    assert_oci_error(s.get("/v2/_catalog").await, StatusCode::FORBIDDEN, "DENIED").await;
    as_user(&mut s, "root", &["registry:catalog:*"]).await;
    assert_eq!(s.get_status("/v2/_catalog").await, StatusCode::OK);
}

#[tokio::test]
async fn tokens_grant_every_requested_scope_the_caller_may_have_and_no_more() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = auth_server(dir.path(), "", &[]).await;
    // Repeated and space-separated scopes are all read.
    let t = token(
        &s,
        Some("bob"),
        &[
            "repository:private/a:pull,push,delete repository:public/b:pull",
            "repository:carol/c:pull",
            "registry:catalog:*",
        ],
    )
    .await;
    let c = claims(&t);
    assert_eq!(c["sub"], "bob");
    assert_eq!(c["aud"], "cargohold");
    assert_eq!(
        c["access"],
        serde_json::json!([
            {"type": "repository", "name": "private/a", "actions": ["pull"]},
            {"type": "repository", "name": "public/b", "actions": ["pull"]},
        ])
    );
    let anon = claims(
        &token(
            &s,
            None,
            &["repository:public/b:pull,push", "repository:private/a:pull"],
        )
        .await,
    );
    assert_eq!(
        anon["access"],
        serde_json::json!([{"type": "repository", "name": "public/b", "actions": ["pull"]}])
    );
    // A wrong password is refused outright.
    let mut bad = reqwest::Client::new().get(s.url("/token"));
    bad = bad.header("authorization", basic("bob", "nope"));
    assert_eq!(
        bad.send().await.expect("GET").status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn forged_expired_misdirected_and_unsigned_tokens_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = auth_server(dir.path(), "", &["--token-ttl", "4s"]).await;
    let other_dir = tempfile::tempdir().expect("tmp");
    // Same rules and users, its own key; then the first server's key with another name.
    let other = auth_server(other_dir.path(), "", &[]).await;
    let elsewhere = auth_server(dir.path(), "service = \"elsewhere\"", &[]).await;
    let scope = ["repository:private/app:pull,push"];
    let good = token(&s, Some("alice"), &scope).await;
    s.authorize(Some(&format!("Bearer {good}")));
    s.push_image("private/app", "v1", b"x").await;
    let refused = |r: reqwest::Response| {
        let challenge = header(&r, "www-authenticate");
        assert!(challenge.contains("error="), "{challenge}");
        assert_oci_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    };
    let forged = token(&other, Some("alice"), &scope).await;
    let replayed = token(&elsewhere, Some("alice"), &scope).await;
    let header_none = {
        use base64::Engine;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = good.split('.').nth(1).expect("payload");
        format!("{}.{payload}.", e.encode(r#"{"alg":"none","typ":"JWT"}"#))
    };
    for bad in [
        forged.as_str(),
        replayed.as_str(),
        header_none.as_str(),
        "garbage",
    ] {
        s.authorize(Some(&format!("Bearer {bad}")));
        refused(s.get("/v2/private/app/manifests/v1").await).await;
    }
    // A token for another repository or action: the caller may, so a challenge naming
    // the scope to ask for.
    let pull_only = token(&s, Some("alice"), &["repository:private/app:pull"]).await;
    s.authorize(Some(&format!("Bearer {pull_only}")));
    let r = s.post_upload("private/app", "").await;
    let challenge = header(&r, "www-authenticate");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        challenge
            .contains("scope=\"repository:private/app:pull,push\",error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert_eq!(
        s.get_status("/v2/private/other/tags/list").await,
        StatusCode::UNAUTHORIZED
    );
    // Expired: past the 4 s lifetime, the second of leeway, and the whole-second rounding.
    tokio::time::sleep(std::time::Duration::from_millis(6600)).await;
    refused(s.get("/v2/private/app/manifests/v1").await).await;
}

#[tokio::test]
async fn a_refresh_token_carries_a_push_past_its_first_token() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = auth_server(dir.path(), "", &["--token-ttl", "4s"]).await;
    let token_url = s.url("/token");
    let form = |pairs: &[(&str, &str)]| reqwest::Client::new().post(&token_url).form(pairs).send();
    let scope = "repository:private/big:pull,push";
    let r = form(&[
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "pw-alice"),
        ("service", "cargohold"),
        ("scope", scope),
        ("access_type", "offline"),
        ("client_id", "test"),
    ])
    .await
    .expect("POST");
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.expect("json");
    let refresh = v["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    s.authorize(Some(&format!(
        "Bearer {}",
        v["access_token"].as_str().expect("token")
    )));
    let data = bytes(3000, 7);
    let loc = s.start_upload("private/big").await;
    assert_eq!(
        s.patch(&loc, 0, &data[..1000]).await.status(),
        StatusCode::ACCEPTED
    );
    tokio::time::sleep(std::time::Duration::from_millis(6600)).await;
    assert_eq!(
        s.patch(&loc, 1000, &data[1000..2000]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The refresh token is no access token.
    let r = s
        .req(Method::GET, "/v2/private/big/tags/list")
        .bearer_auth(&refresh)
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &refresh),
        ("service", "cargohold"),
        ("scope", scope),
    ])
    .await
    .expect("POST");
    let v: serde_json::Value = r.json().await.expect("json");
    s.authorize(Some(&format!(
        "Bearer {}",
        v["access_token"].as_str().expect("token")
    )));
    assert_eq!(
        s.patch(&loc, 1000, &data[1000..2000]).await.status(),
        StatusCode::ACCEPTED
    );
    let r = s
        .finish_upload_from(&loc, &digest(&data), 2000, &data[2000..])
        .await;
    assert_status(r, StatusCode::CREATED, "finish after refresh").await;
    // A removed user's refresh token gets nothing.
    let (ok, _) = cargohold(
        &[
            "user",
            "remove",
            "alice",
            "--auth-dir",
            &dir.path().join("auth").display().to_string(),
        ],
        "",
    );
    assert!(ok);
    let r = form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn mounts_need_pull_on_the_source_and_automatic_mounts_find_only_readable_blobs() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = auth_server(dir.path(), "", &[]).await;
    as_user(&mut s, "alice", &["repository:private/src:pull,push"]).await;
    let d = s.push_blob("private/src", b"shared layer").await;
    // Carol may push to carol/* but not read private/src: a session, not the blob.
    as_user(
        &mut s,
        "carol",
        &[
            "repository:carol/dst:pull,push",
            "repository:private/src:pull",
        ],
    )
    .await;
    let r = s
        .post_upload("carol/dst", &format!("?mount={d}&from=private/src"))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = s.post_upload("carol/dst", &format!("?mount={d}")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        s.head(&format!("/v2/carol/dst/blobs/{d}")).await.status(),
        StatusCode::NOT_FOUND
    );
    // Alice may read the source: mounted, with or without `from`.
    as_user(
        &mut s,
        "alice",
        &[
            "repository:private/dst:pull,push",
            "repository:private/src:pull",
            "repository:private/auto:pull,push",
        ],
    )
    .await;
    let r = s
        .post_upload("private/dst", &format!("?mount={d}&from=private/src"))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s.post_upload("private/auto", &format!("?mount={d}")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        s.head(&format!("/v2/private/auto/blobs/{d}"))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn failed_passwords_slow_the_next_attempts() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = auth_server(dir.path(), "", &[]).await;
    let wrong = reqwest::Client::new()
        .get(s.url("/token"))
        .header("authorization", basic("bob", "guess"))
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // Locked: even the right password is not checked.
    let r = token_response(&s, Some("bob"), &[]).await;
    assert!(!header(&r, "retry-after").is_empty());
    assert_oci_error(r, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;
    // Another user from the same address is held back as well.
    assert_eq!(
        token_response(&s, Some("alice"), &[]).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        token_response(&s, Some("bob"), &[]).await.status(),
        StatusCode::OK
    );
}

/// The browse documents under access control: a repository's for those who may pull it
/// (so a public one's for anyone), the catalog and search (every name, private ones too)
/// for administrators; a private document's absence is not told apart from its presence.
#[tokio::test]
async fn browse_documents_of_private_repositories_need_pull_and_the_catalog_an_admin() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = auth_server(dir.path(), "", &[]).await;
    as_user(
        &mut s,
        "alice",
        &["repository:public/app:pull,push repository:private/app:pull,push"],
    )
    .await;
    s.push_image("public/app", "v1", b"public layer").await;
    let (_, private_digest) = s.push_image("private/app", "v1", b"private layer").await;
    let private_docs = [
        "/index/private/app/_browse/tags.json".to_owned(),
        format!("/index/private/app/_browse/manifests/{private_digest}.json"),
        "/index/private/never-pushed/_browse/tags.json".to_owned(),
    ];
    let every_repository = [
        "/index/_browse/catalog.json",
        "/index/_browse/catalog/00000000.json",
        "/index/_browse/search/00000000.json",
    ];

    s.authorize(None);
    assert_eq!(
        s.get_status("/index/public/app/_browse/tags.json").await,
        StatusCode::OK
    );
    assert_eq!(s.get_status("/config.json").await, StatusCode::OK);
    for path in private_docs
        .iter()
        .map(String::as_str)
        .chain(every_repository)
    {
        let r = s.get(path).await;
        assert!(
            header(&r, "www-authenticate").starts_with("Bearer "),
            "{path}"
        );
        assert_oci_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }

    as_user(&mut s, "bob", &["repository:private/app:pull"]).await;
    assert_eq!(s.get_status(&private_docs[0]).await, StatusCode::OK);
    assert_eq!(s.get_status(&private_docs[1]).await, StatusCode::OK);
    for path in every_repository {
        assert_ne!(s.get_status(path).await, StatusCode::OK, "{path}");
    }
    as_user(&mut s, "root", &["registry:catalog:*"]).await;
    let catalog = s.get_json("/index/_browse/catalog/00000000.json").await;
    assert!(catalog.to_string().contains("private/app"), "{catalog}");
}

/// cargohold's client waits out a short lock of the token endpoint (`429`, `Retry-After`)
/// instead of failing: behind a shared address, someone else's typo must not fail a pull.
#[tokio::test]
async fn the_client_waits_out_a_short_login_lock() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = auth_server(dir.path(), "", &[]).await;
    as_user(&mut s, "alice", &["repository:private/app:pull,push"]).await;
    s.push_image("private/app", "v1", b"private layer").await;
    let wrong = reqwest::Client::new()
        .get(s.url("/token"))
        .header("authorization", basic("carol", "guess"))
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        token_response(&s, Some("bob"), &[]).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let host = s.base.trim_start_matches("http://").to_owned();
    let out = dir.path().join("pulled");
    let (ok, _) = cargohold(
        &[
            "pull",
            "--quiet",
            "--creds",
            "bob:pw-bob",
            &format!("{host}/private/app:v1"),
            &out.display().to_string(),
        ],
        "",
    );
    assert!(ok, "the pull waited for the lock to pass");
    assert!(out.join("index.json").exists());
}

/// Behind a trusted proxy (`--trusted-proxy`), the backoff locks the forwarded client
/// address, not the proxy's; an untrusted peer's `X-Forwarded-For` is not believed.
#[tokio::test]
async fn the_backoff_locks_the_client_a_trusted_proxy_names_not_the_proxy() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = auth_server(dir.path(), "", &["--trusted-proxy", "127.0.0.1/32"]).await;
    // Requests from `local` (127.0.0.1 or 127.0.0.2) as the client `forwarded` says.
    let login = |local: [u8; 4], forwarded: &'static str, user: &'static str, pw: String| {
        let client = reqwest::Client::builder()
            .local_address(Some(local.into()))
            .build()
            .expect("client");
        let url = s.url("/token?service=cargohold");
        async move {
            client
                .get(url)
                .header("x-forwarded-for", forwarded)
                .header("authorization", basic(user, &pw))
                .send()
                .await
                .expect("GET /token")
                .status()
        }
    };
    let proxy = [127, 0, 0, 1];
    let good = |u: &str| format!("pw-{u}");
    assert_eq!(
        login(proxy, "203.0.113.1", "carol", "guess".into()).await,
        StatusCode::UNAUTHORIZED
    );
    // The guesser is locked out, with any user name...
    assert_eq!(
        login(proxy, "203.0.113.1", "alice", good("alice")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...and everyone else behind the same proxy is not. A forged entry left of the one
    // the proxy appended changes nothing.
    assert_eq!(
        login(proxy, "203.0.113.2", "alice", good("alice")).await,
        StatusCode::OK
    );
    assert_eq!(
        login(proxy, "203.0.113.1, 203.0.113.3", "bob", good("bob")).await,
        StatusCode::OK
    );
    // An untrusted peer's header is its own claim: the peer is what gets locked.
    let untrusted = [127, 0, 0, 2];
    assert_eq!(
        login(untrusted, "203.0.113.4", "root", "guess".into()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(untrusted, "203.0.113.5", "bob", good("bob")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login(proxy, "203.0.113.4", "bob", good("bob")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn robots_are_limited_to_their_repositories_and_revocable() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = auth_server(dir.path(), "", &[]).await;
    let auth_dir = dir.path().join("auth").display().to_string();
    let (ok, out) = cargohold(
        &[
            "token",
            "create",
            "ci",
            "--repo",
            "private/*",
            "--access",
            "pull,push",
            "--auth-dir",
            &auth_dir,
        ],
        "",
    );
    assert!(ok, "{out}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("secret")
        .to_owned();
    // Basic on /v2/ (basic = true here) and through the token endpoint alike.
    s.authorize(Some(&basic("robot$ci", &secret)));
    s.push_image("private/ci", "v1", b"built by ci").await;
    assert_oci_error(
        s.post_upload("carol/x", "").await,
        StatusCode::FORBIDDEN,
        "DENIED",
    )
    .await;
    assert_oci_error(
        s.delete("/v2/private/ci/manifests/v1").await,
        StatusCode::FORBIDDEN,
        "DENIED",
    )
    .await;
    let (ok, _) = cargohold(&["token", "revoke", "ci", "--auth-dir", &auth_dir], "");
    assert!(ok);
    assert_eq!(
        s.get_status("/v2/private/ci/tags/list").await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn config_json_publishes_the_public_key_and_the_open_prefixes() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = auth_server(
        dir.path(),
        "",
        &["--public-url", "https://registry.example"],
    )
    .await;
    let Some(root) = s.fs_root() else {
        return;
    };
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("config.json")).expect("config.json"))
            .expect("json");
    let auth = &config["auth"];
    assert_eq!(auth["realm"], "https://registry.example/token");
    assert_eq!(auth["keys"][0]["kty"], "OKP");
    assert_eq!(auth["keys"][0].get("d"), None, "never the private key");
    assert_eq!(auth["anonymous_pull"], serde_json::json!(["public/*"]));
    // The other rules, most specific first: an edge decides as the API does.
    assert_eq!(auth["private"], serde_json::json!(["private/*", "carol/*"]));
    let r = s.get("/v2/").await;
    assert!(header(&r, "www-authenticate").contains("realm=\"https://registry.example/token\""));
}
