//! Hostile clients: each malformed, oversized, slow or abusive request gets a spec-shaped
//! error (or a closed connection where no answer is possible) and leaves every stored
//! byte as it was. Requests reqwest will not send go over raw TCP ([`Raw`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use crate::util::*;

/// A raw HTTP/1.1 request with `Host` and `Connection: close`, and `Content-Length` when
/// it has a body.
fn request(method: &str, path: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: registry\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    [head.as_bytes(), body].concat()
}

/// The JSON error codes of a raw response's body.
fn raw_codes(response: &str) -> Vec<String> {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["code"].as_str())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn assert_raw_error(response: &str, status: u16, code: &str, what: &str) {
    assert_eq!(raw_status(response), status, "{what}: {response}");
    assert!(
        raw_codes(response).iter().any(|c| c == code),
        "{what}: expected {code}: {response}"
    );
}

/// Every stored file and the digest of its bytes, except upload sessions and their parts (a refused
/// request may leave an abandoned one, which garbage collection removes) and lock files;
/// empty on S3, where the tests check what they read back instead.
fn stored(s: &TestServer) -> Vec<(PathBuf, String)> {
    let Some(root) = s.fs_root() else {
        return Vec::new();
    };
    let mut files: Vec<(PathBuf, String)> = walk(&root)
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&root).ok()?.to_path_buf();
            let skip = rel.components().any(|c| {
                matches!(
                    c.as_os_str().to_str(),
                    Some("uploads" | ".multipart" | ".locks")
                )
            });
            (!skip).then(|| (rel, digest(&std::fs::read(&p).unwrap_or_default())))
        })
        .collect();
    files.sort();
    files
}

/// A server with one image in `r` (tag `v1`); returns it, the manifest's bytes and the
/// config blob's digest.
async fn with_image() -> (TestServer, Vec<u8>, String) {
    let s = TestServer::spawn().await;
    let (m, _) = s.push_image("r", "v1", b"layer").await;
    let config = digest(b"{}");
    (s, m, config)
}

/// Checks that `r:v1` still reads back as pushed.
async fn image_intact(s: &TestServer, manifest: &[u8]) {
    let r = s.get("/v2/r/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.expect("body").as_ref(), manifest);
    assert_eq!(s.blob_bytes("r", &digest(b"layer")).await, b"layer");
}

#[tokio::test]
async fn chunked_bodies_with_bad_framing_are_client_errors() {
    let (s, m, _) = with_image().await;
    let before = stored(&s);
    let path = format!("/v2/r/blobs/uploads/?digest={}", digest(b"abc"));
    let overflow = b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n".to_vec();
    let extension = [
        b"3;".as_slice(),
        &vec![b'a'; 200_000],
        b"\r\nabc\r\n0\r\n\r\n",
    ]
    .concat();
    for (what, body) in [
        ("overflowing size", overflow),
        ("200 KB extension", extension),
    ] {
        let head = request("POST", &path, &["Transfer-Encoding: chunked"], b"");
        let r = Raw::exchange(&s.base, &[head, body].concat()).await;
        assert_raw_error(&r, 400, "BLOB_UPLOAD_INVALID", what);
    }
    assert_eq!(stored(&s), before);
    image_intact(&s, &m).await;
}

/// RFC 9112 §6.3: with both, `Transfer-Encoding` wins and the connection closes after the
/// answer, so what follows the chunked body is never read as another request.
#[tokio::test]
async fn content_length_and_transfer_encoding_together_cannot_smuggle_a_request() {
    let s = TestServer::spawn().await;
    let path = format!("/v2/r/blobs/uploads/?digest={}", digest(b"abc"));
    let head = request(
        "POST",
        &path,
        &["Content-Length: 3", "Transfer-Encoding: chunked"],
        b"",
    );
    let smuggled = b"3\r\nabc\r\n0\r\n\r\nDELETE /v2/r/manifests/v1 HTTP/1.1\r\nHost: x\r\n\r\n";
    let r = Raw::exchange(&s.base, &[head.as_slice(), smuggled].concat()).await;
    assert_eq!(r.matches("HTTP/1.1 ").count(), 1, "{r}");
    assert_eq!(raw_status(&r), 201, "the chunked body was the blob: {r}");
}

#[tokio::test]
async fn an_http11_request_without_host_is_refused() {
    let s = TestServer::spawn().await;
    let r = Raw::exchange(&s.base, b"GET /v2/ HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert_raw_error(&r, 400, "UNSUPPORTED", "HTTP/1.1 without Host");
    // HTTP/1.0 has no Host requirement.
    let r = Raw::exchange(&s.base, b"GET /v2/ HTTP/1.0\r\n\r\n").await;
    assert_eq!(raw_status(&r), 200, "{r}");
}

#[tokio::test]
async fn truncated_bodies_store_nothing() {
    let (s, m, config) = with_image().await;
    let before = stored(&s);
    let loc = s.start_upload("r").await;
    let manifest = image_manifest(&config, 2, &[], None);
    let cases = [
        ("PATCH", loc.clone(), &b"0123456789"[..]),
        ("PUT", "/v2/r/manifests/v2".to_owned(), manifest.as_slice()),
    ];
    for (method, path, body) in cases {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n");
        head.push_str(&format!(
            "Content-Type: {OCI_MANIFEST}\r\nContent-Length: {}\r\n\r\n",
            body.len() + 100
        ));
        let mut c = Raw::connect(&s.base).await;
        c.send(&[head.as_bytes(), body].concat()).await;
        c.finish_sending().await;
        let r = c
            .read_for(Duration::from_secs(10))
            .await
            .unwrap_or_default();
        assert_eq!(raw_status(&r), 400, "{method}: {r}");
    }
    assert_eq!(header(&s.upload_status(&loc).await, "range"), "0-0");
    assert_eq!(
        s.get_status("/v2/r/manifests/v2").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(stored(&s), before);
    image_intact(&s, &m).await;
}

/// Slow-loris: hundreds of connections that never finish their header neither keep the
/// server from answering others nor stay open past the header timeout; a body that
/// stalls is answered `408` and stores nothing; at the connection cap, new clients wait
/// for a slot instead of being refused.
#[tokio::test]
async fn slow_clients_are_cut_off_without_holding_up_others() {
    let s = TestServer::spawn_with(&[
        "--header-timeout",
        "2s",
        "--body-timeout",
        "1s",
        "--max-connections",
        "400",
    ])
    .await;
    let rss_before = s.peak_rss_kib();
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut c = Raw::connect(&s.base).await;
        c.send(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
        slow.push(c);
    }
    assert_eq!(s.get_status("/v2/").await, StatusCode::OK);
    // Closed by the 2 s header timeout; the bound is generous because a loaded machine
    // (the suite runs tests in parallel) takes a while to close 300 connections, and
    // what it guards against is connections never closed.
    let started = Instant::now();
    for c in &mut slow {
        let answer = c.read_for(Duration::from_secs(30)).await;
        assert!(
            answer.as_deref().is_none_or(|a| raw_status(a) == 408),
            "{answer:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "closed by the timeout"
    );
    let grown = s.peak_rss_kib().saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "300 slow connections took {grown} KiB");

    let loc = s.start_upload("r").await;
    let mut c = Raw::connect(&s.base).await;
    c.send(format!("PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01").as_bytes())
        .await;
    let r = c
        .read_for(Duration::from_secs(10))
        .await
        .unwrap_or_default();
    assert_raw_error(&r, 408, "BLOB_UPLOAD_INVALID", "stalled body");
    assert_eq!(header(&s.upload_status(&loc).await, "range"), "0-0");
}

#[tokio::test]
async fn at_the_connection_cap_a_client_waits_for_a_slot() {
    let s = TestServer::spawn_with(&["--header-timeout", "1s", "--max-connections", "2"]).await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(Raw::connect(&s.base).await);
    }
    // Served once an idle connection times out, not refused.
    assert_eq!(s.get_status("/v2/").await, StatusCode::OK);
}

#[tokio::test]
async fn upload_session_floods_are_capped_per_client_and_in_all() {
    let s = TestServer::spawn_with(&[
        "--max-upload-sessions-per-client",
        "3",
        "--max-upload-sessions",
        "5",
    ])
    .await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(s.start_upload("r").await);
    }
    assert_oci_error(
        s.post_upload("r", "").await,
        StatusCode::TOO_MANY_REQUESTS,
        "TOOMANYREQUESTS",
    )
    .await;
    // A monolithic push needs a slot too.
    let r = s.post_blob("r", &digest(b"x"), b"x".to_vec()).await;
    assert_oci_error(r, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;
    // Finishing or cancelling gives the slot back.
    let r = s.finish_upload(&mine[0], &digest(b"x"), b"x").await;
    assert_status(r, StatusCode::CREATED, "finish").await;
    assert_eq!(s.delete(&mine[1]).await.status(), StatusCode::NO_CONTENT);
    mine.push(s.start_upload("r").await);
    mine.push(s.start_upload("r").await);

    // Another address (127.0.0.2 reaches the loopback listener too) has its own slots,
    // up to the process's cap of five.
    let other = reqwest::Client::builder()
        .local_address(Some([127, 0, 0, 2].into()))
        .build()
        .expect("client");
    let post = || other.post(s.url("/v2/r/blobs/uploads/")).send();
    assert_eq!(post().await.expect("POST").status(), StatusCode::ACCEPTED);
    assert_eq!(post().await.expect("POST").status(), StatusCode::ACCEPTED);
    let r = post().await.expect("POST");
    assert_oci_error(r, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;
}

/// Behind a trusted proxy every request comes from the proxy's address: the per-client
/// cap counts the client it forwarded instead.
#[tokio::test]
async fn session_caps_count_the_clients_a_trusted_proxy_forwards() {
    let s = TestServer::spawn_with(&[
        "--max-upload-sessions-per-client",
        "1",
        "--trusted-proxy",
        "127.0.0.1,::1",
    ])
    .await;
    let post = |client: &'static str| {
        s.req(Method::POST, "/v2/r/blobs/uploads/")
            .header("x-forwarded-for", client)
            .send()
    };
    assert_eq!(
        post("198.51.100.1").await.expect("POST").status(),
        StatusCode::ACCEPTED
    );
    let r = post("198.51.100.1").await.expect("POST");
    assert_oci_error(r, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;
    assert_eq!(
        post("198.51.100.2").await.expect("POST").status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn manifest_bodies_over_the_limits_are_refused() {
    let (s, m, config) = with_image().await;
    let before = stored(&s);
    // Refused from the header alone: no byte of the 10 GiB is sent.
    let mut c = Raw::connect(&s.base).await;
    c.send(
        format!("PUT /v2/r/manifests/big HTTP/1.1\r\nHost: x\r\nContent-Type: {OCI_MANIFEST}\r\nContent-Length: 10737418240\r\n\r\n")
            .as_bytes(),
    )
    .await;
    let r = c
        .read_for(Duration::from_secs(10))
        .await
        .unwrap_or_default();
    assert_raw_error(&r, 413, "MANIFEST_INVALID", "10 GiB Content-Length");

    let valid = String::from_utf8(image_manifest(&config, 2, &[], None)).expect("utf-8");
    let with = |extra: &str| valid.replacen('{', &format!("{{{extra}"), 1).into_bytes();
    let nested = |n: usize| with(&format!(r#""x":{}{},"#, "[".repeat(n), "]".repeat(n)));
    let wrong_size = image_manifest(&config, 3, &[], None);
    let mut invalid_utf8 = with(r#""annotations":{"a":"XX"},"#);
    let at = invalid_utf8
        .windows(2)
        .position(|w| w == b"XX")
        .expect("marker");
    invalid_utf8[at] = 0xff;
    let layer = digest(b"layer");
    let many: Vec<(&str, usize)> = vec![(layer.as_str(), 5); 20_000];
    let cases = [
        ("10,000 levels", nested(10_000)),
        ("2,000,000 levels", nested(2_000_000)),
        ("a config whose size lies", wrong_size),
        (
            "duplicate keys",
            with(&format!(
                r#""config":{{"mediaType":"a/b","digest":"{layer}","size":5}},"#
            )),
        ),
        ("invalid UTF-8", invalid_utf8),
        (
            "20,000 descriptors",
            image_manifest(&config, 2, &many, None),
        ),
    ];
    for (what, body) in cases {
        let r = s.put_manifest("r", "bad", OCI_MANIFEST, &body).await;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {text}");
        assert!(text.contains("MANIFEST_INVALID"), "{what}: {text}");
    }
    assert_eq!(stored(&s), before);
    // Thousands of copies of one descriptor are checked once, and accepted.
    let repeated: Vec<(&str, usize)> = vec![(layer.as_str(), 5); 5_000];
    let r = s
        .put_manifest(
            "r",
            "v2",
            OCI_MANIFEST,
            &image_manifest(&config, 2, &repeated, None),
        )
        .await;
    assert_status(r, StatusCode::CREATED, "5,000 copies of one layer").await;
    image_intact(&s, &m).await;
}

#[tokio::test]
async fn query_content_range_and_range_abuse_get_spec_answers() {
    let (s, m, _) = with_image().await;
    let d = digest(b"x");
    let r = s.post_upload("r", &format!("?digest={d}&digest={d}")).await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    for query in [
        "?digest=../../x",
        "?digest=sha256:%00",
        "?mount=..%2F..&from=r",
    ] {
        let r = s.post_upload("r", query).await;
        assert_oci_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    }

    // A closing PUT whose Content-Range disagrees with its body, or with the session.
    let loc = s.start_upload("r").await;
    assert_eq!(s.patch(&loc, 0, b"ab").await.status(), StatusCode::ACCEPTED);
    let r = s
        .req(Method::PUT, &format!("{loc}?digest={}", digest(b"abcd")))
        .header("content-range", "2-9")
        .body(b"cd".to_vec())
        .send()
        .await
        .expect("PUT");
    assert_oci_error(r, StatusCode::BAD_REQUEST, "SIZE_INVALID").await;
    let r = s.finish_upload_from(&loc, &digest(b"abcd"), 5, b"cd").await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&s.upload_status(&loc).await, "range"), "0-1");
    let r = s.finish_upload_from(&loc, &digest(b"abcd"), 2, b"cd").await;
    assert_status(r, StatusCode::CREATED, "the right chunk still closes it").await;

    let path = format!("/v2/r/blobs/{}", digest(b"layer"));
    for (range, status, body) in [
        ("bytes=0-99999999999999999999", 206, &b"layer"[..]),
        ("bytes=1-2", 206, b"ay"),
        ("bytes=-99999999999999999999", 206, b"layer"),
        ("items=0-1", 200, b"layer"),
        ("bytes=0-0,2-3", 200, b"layer"),
        ("bytes=3-1", 200, b"layer"),
        ("bytes=-1-2", 200, b"layer"),
        ("bytes=5-", 416, b""),
        ("bytes=99999999999999999999-", 416, b""),
    ] {
        let r = s.get_with(&path, "range", range).await;
        assert_eq!(r.status().as_u16(), status, "{range}");
        if status != 416 {
            assert_eq!(r.bytes().await.expect("body").as_ref(), body, "{range}");
        }
    }
    image_intact(&s, &m).await;
}

#[tokio::test]
async fn encoded_slashes_get_the_error_of_their_segment() {
    let (s, m, config) = with_image().await;
    let body = image_manifest(&config, 2, &[], None);
    let r = s.put_manifest("r", "a%2Fb", OCI_MANIFEST, &body).await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    let r = s.get("/v2/r/manifests/a%2Fb").await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    let r = s
        .get(&format!("/v2/r/blobs/sha256%2F{}", "0".repeat(64)))
        .await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    let loc = s.start_upload("r").await;
    let r = s.send(Method::GET, &loc.replacen('-', "%2F", 1)).await;
    assert_oci_error(r, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let r = s.get("/v2/r%2Fx/tags/list").await;
    assert_oci_error(r, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
    image_intact(&s, &m).await;
}

/// Dot segments, encoded dots and slashes, NUL, backslashes, very long components and
/// names that collide with the index's own folders, in every position of a path: each is
/// the spec's error for that position, and the store is untouched.
#[tokio::test]
async fn traversal_and_odd_bytes_are_refused_everywhere() {
    let (s, m, config) = with_image().await;
    let before = stored(&s);
    let long = "a".repeat(300);
    let odd = [
        "..",
        "%2e%2e",
        "%2E%2E%2F%2E%2E",
        "a%00b",
        "a%5Cb",
        "a\\b",
        "a%2F..%2Fb",
        "%ff",
        long.as_str(),
    ];
    let body = image_manifest(&config, 2, &[], None);
    let put = |path: String| {
        request(
            "PUT",
            &path,
            &[&format!("Content-Type: {OCI_MANIFEST}")],
            &body,
        )
    };
    for bad in odd {
        let cases = [
            (
                request("GET", &format!("/v2/r/{bad}/x/tags/list"), &[], b""),
                400,
                "NAME_INVALID",
            ),
            (
                request("GET", &format!("/v2/{bad}/manifests/v1"), &[], b""),
                400,
                "NAME_INVALID",
            ),
            (
                put(format!("/v2/r/manifests/{bad}")),
                400,
                "MANIFEST_INVALID",
            ),
            (
                request("GET", &format!("/v2/r/blobs/sha256:{bad}"), &[], b""),
                400,
                "DIGEST_INVALID",
            ),
            (
                request("DELETE", &format!("/v2/r/blobs/uploads/{bad}"), &[], b""),
                404,
                "BLOB_UPLOAD_UNKNOWN",
            ),
            (
                request(
                    "POST",
                    &format!("/v2/r/blobs/uploads/?digest={bad}"),
                    &[],
                    b"x",
                ),
                400,
                "DIGEST_INVALID",
            ),
        ];
        for (req, status, code) in cases {
            let what = String::from_utf8_lossy(&req[..req.len().min(80)]).into_owned();
            let r = Raw::exchange(&s.base, &req).await;
            assert_raw_error(&r, status, code, &what);
        }
    }
    for name in [
        "a/_manifests",
        "a/_tags/list/x",
        "a/_blobs",
        "a/_referrers",
        "_catalog/x",
        "a/_uploads",
    ] {
        let r = s.put_manifest(name, "v1", OCI_MANIFEST, &body).await;
        assert_oci_error(r, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
        let r = s.post_blob(name, &digest(b"x"), b"x".to_vec()).await;
        assert_oci_error(r, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
    }
    assert_eq!(stored(&s), before);
    image_intact(&s, &m).await;
}
