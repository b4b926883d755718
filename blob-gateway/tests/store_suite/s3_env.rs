//! S3 servers from the environment (`.ci/s3-servers.sh start` writes the variables), and
//! the S3-only clauses: part size, probing conditional writes, presigned URLs, the parts
//! of a direct upload.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use blob_gateway::{
    ChecksummedPart, MultipartId, ObjectStore, Presign, PutCondition, S3Config, S3Store, StoreError,
};
use index_format::StorageKey;

use crate::Fixture;
use crate::util::*;

/// Servers already reported as skipped, so each is reported once per test binary.
static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The config for the server whose variables start with `env`, under a fresh prefix, or
/// `None` (reported on the terminal) when the variables are not set.
pub fn config(server: &str, env: &str) -> Option<S3Config> {
    let var = |name: &str| {
        std::env::var(format!("{env}_{name}"))
            .ok()
            .filter(|v| !v.is_empty())
    };
    let Some(endpoint) = var("ENDPOINT") else {
        if std::env::var("CARGOHOLD_TEST_S3_REQUIRED").is_ok_and(|v| v == "1") {
            panic!(
                "{env}_ENDPOINT is not set and CARGOHOLD_TEST_S3_REQUIRED=1: run .ci/s3-servers.sh start and source .ci/.s3/env"
            );
        }
        let mut skipped = SKIPPED.lock().unwrap_or_else(|p| p.into_inner());
        if !skipped.iter().any(|s| s == server) {
            skipped.push(server.to_owned());
            // Straight to the terminal: libtest captures print!/eprint! of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "store_suite: SKIPPED every {server} test: {env}_ENDPOINT is not set \
                 (.ci/s3-servers.sh start; source .ci/.s3/env)"
            );
        }
        return None;
    };
    Some(S3Config {
        endpoint: Some(endpoint),
        region: var("REGION").unwrap_or_else(|| "us-east-1".to_owned()),
        bucket: var("BUCKET").unwrap_or_else(|| "cargohold-test".to_owned()),
        prefix: Some(format!("suite-{}", uuid::Uuid::new_v4())),
        path_style: true,
        access_key: var("ACCESS_KEY"),
        secret_key: var("SECRET_KEY"),
        // The smallest part S3 allows, so that 64 MiB makes many parts.
        part_size: S3Config::MIN_PART_SIZE,
        ..S3Config::new("", "")
    })
}

pub async fn fixture(
    server: &'static str,
    env: &str,
    known_failures: &'static [(&'static str, crate::Known)],
) -> Option<Fixture> {
    let config = config(server, env)?;
    let store = S3Store::connect(config).await.expect("connect to S3");
    Some(Fixture {
        store: Arc::new(store),
        server,
        known_failures,
        _guard: None,
    })
}

pub async fn store_with(
    server: &str,
    env: &str,
    change: impl FnOnce(&mut S3Config),
) -> Option<S3Store> {
    let mut config = config(server, env)?;
    change(&mut config);
    Some(S3Store::connect(config).await.expect("connect to S3"))
}

/// The clauses only S3 has; each runs against every S3 server.
macro_rules! s3_only {
    ($server:literal, $env:literal) => {
        #[tokio::test]
        async fn probe_finds_conditional_writes_enforced() {
            let Some(store) = $crate::s3_env::store_with($server, $env, |_| {}).await else {
                return;
            };
            $crate::s3_env::probe_finds_conditional_writes_enforced(store).await;
        }

        #[tokio::test]
        async fn part_size_is_the_configured_one_and_parts_need_a_size() {
            let Some(store) = $crate::s3_env::store_with($server, $env, |_| {}).await else {
                return;
            };
            $crate::s3_env::part_size_is_the_configured_one_and_parts_need_a_size(store).await;
        }

        #[tokio::test]
        async fn presigned_get_urls_serve_the_object() {
            let Some(store) = $crate::s3_env::store_with($server, $env, |_| {}).await else {
                return;
            };
            $crate::s3_env::presigned_get_urls_serve_the_object(store).await;
        }

        #[tokio::test]
        async fn public_base_url_gives_cdn_urls() {
            let set = |c: &mut blob_gateway::S3Config| {
                c.public_base_url = Some("https://cdn.example/".into())
            };
            let Some(store) = $crate::s3_env::store_with($server, $env, set).await else {
                return;
            };
            $crate::s3_env::public_base_url_gives_cdn_urls(store).await;
        }

        #[tokio::test]
        async fn a_missing_bucket_is_an_error_not_a_missing_key() {
            let set = |c: &mut blob_gateway::S3Config| c.bucket = "cargohold-no-such-bucket".into();
            let Some(store) = $crate::s3_env::store_with($server, $env, set).await else {
                return;
            };
            $crate::s3_env::a_missing_bucket_is_an_error_not_a_missing_key(store, $server).await;
        }

        #[tokio::test]
        async fn store_hashed_copies_publish_only_the_true_digest() {
            let Some(store) = $crate::s3_env::store_with($server, $env, |_| {}).await else {
                return;
            };
            $crate::s3_env::store_hashed_copies_publish_only_the_true_digest(store, $server).await;
        }

        #[tokio::test]
        async fn checksummed_parts_are_listed_by_number_with_their_checksums() {
            let Some(store) = $crate::s3_env::store_with($server, $env, |_| {}).await else {
                return;
            };
            $crate::s3_env::checksummed_parts_are_listed_by_number_with_their_checksums(store)
                .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn large_copies_go_part_by_part() {
            let set = |c: &mut blob_gateway::S3Config| c.multipart_copy_threshold = 1;
            let Some(store) = $crate::s3_env::store_with($server, $env, set).await else {
                return;
            };
            $crate::s3_env::large_copies_go_part_by_part(store).await;
        }
    };
}
pub(crate) use s3_only;

pub async fn probe_finds_conditional_writes_enforced(store: S3Store) {
    let found = store.probe_conditional_writes().await.expect("probe");
    assert!(
        found.enforced(),
        "this server ignores conditional writes: {found}"
    );
    let page = store
        .list(&index_format::KeyPrefix::Blobs, None, 10)
        .await
        .expect("list");
    assert!(
        page.keys.is_empty(),
        "the probe leaves nothing in the layout: {page:?}"
    );
}

pub async fn part_size_is_the_configured_one_and_parts_need_a_size(store: S3Store) {
    assert_eq!(store.part_size(), Some(S3Config::MIN_PART_SIZE));
    let key = upload_key();
    let id = store.create_multipart(&key).await.expect("create");
    let result = store
        .upload_part(&key, &id, 1, once(&b"bytes"[..]), None)
        .await;
    assert!(
        matches!(result, Err(StoreError::InvalidPart { .. })),
        "a part without a size is refused before any byte is sent, got {result:?}"
    );
    store.abort_multipart(&key, &id).await.expect("abort");
}

pub async fn presigned_get_urls_serve_the_object(store: S3Store) {
    let key = tag_key("suite/presign", "v1");
    let bytes = pattern(20, 3000);
    let s: Store = Arc::new(store.clone());
    put(&s, &key, bytes.clone(), PutCondition::None)
        .await
        .expect("put");
    let url = store
        .presigner()
        .expect("S3 offers a presigner")
        .presign_get(&key, std::time::Duration::from_secs(300))
        .await
        .expect("presign");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let (status, body) = http_get(&url, Some("bytes=10-19")).await;
    assert_eq!(status, 206, "a ranged GET of the presigned URL");
    assert!(body == bytes[10..20]);
    let (status, body) = http_get(&url, None).await;
    assert_eq!(status, 200);
    assert!(body == bytes);
    let tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    let (status, _) = http_get(&tampered, None).await;
    // 403 on S3 and LocalStack, 400 on s3s-fs: refused either way.
    assert!(
        matches!(status, 400 | 403),
        "a tampered signature is refused, got {status}"
    );
}

/// What a resuming direct upload is told: the parts the server holds, whatever order and
/// paging the server lists them in, each with its size, ETag and SHA-256.
pub async fn checksummed_parts_are_listed_by_number_with_their_checksums(store: S3Store) {
    let key = upload_key();
    let presigner = store.presigner().expect("S3 offers a presigner");
    let upload = presigner
        .create_checksummed_multipart(&key)
        .await
        .expect("create");
    let mut sent = Vec::new();
    // Out of order, and part 2 never sent.
    for number in [3u32, 1] {
        let bytes = pattern(u64::from(number), 1000 + number as usize);
        let part = put_presigned_part(presigner, &key, &upload, number, &bytes).await;
        sent.push((number, bytes.len() as u64, part.sha256));
    }
    sent.sort();
    let listed = presigner
        .list_checksummed(&key, &upload)
        .await
        .expect("list");
    let got: Vec<_> = listed.iter().map(|p| (p.number, p.size)).collect();
    let want: Vec<_> = sent.iter().map(|s| (s.0, s.1)).collect();
    assert_eq!(got, want);
    // s3s-fs 0.14 lists neither ETags nor checksums: a resuming client sends such parts
    // again. Where they are listed, they are the parts' own.
    for (p, s) in listed.iter().zip(&sent) {
        assert!(p.sha256.is_none_or(|h| h == s.2), "{p:?}");
        assert!(!p.etag.contains('"'), "{p:?}");
    }
    store.abort_multipart(&key, &upload).await.expect("abort");
    // S3 and LocalStack: `NoSuchUpload`; s3s-fs lists nothing.
    let gone = presigner.list_checksummed(&key, &upload).await;
    assert!(
        matches!(&gone, Err(StoreError::NoSuchUpload { .. }))
            || gone.as_ref().is_ok_and(Vec::is_empty),
        "an aborted upload has no parts to list: {gone:?}"
    );
}

pub async fn public_base_url_gives_cdn_urls(store: S3Store) {
    let key = tag_key("suite/presign", "v1");
    let url = store
        .presigner()
        .expect("S3 with a public base URL offers a presigner")
        .public_url(&key)
        .expect("a URL");
    let prefix = url
        .strip_prefix("https://cdn.example/suite-")
        .expect("CDN URL");
    assert!(
        prefix.ends_with("/index/suite/presign/_manifests/v1"),
        "{url}"
    );
}

/// A misconfigured bucket must not read as "blob unknown" to clients.
pub async fn a_missing_bucket_is_an_error_not_a_missing_key(store: S3Store, server: &str) {
    let result = store.list(&index_format::KeyPrefix::Blobs, None, 10).await;
    assert!(
        matches!(result, Err(StoreError::Io { .. })),
        "list of a missing bucket: expected Io (NoSuchBucket), got {result:?}"
    );
    let key = tag_key("suite/bucket", "v1");
    let result = store.get(&key, None).await.map(|b| b.info);
    match result {
        Err(StoreError::Io { .. }) => {}
        // s3s-fs 0.14.1 answers GetObject in a missing bucket with NoSuchKey.
        Err(StoreError::NotFound { .. }) if server == "s3s-fs" => {}
        other => panic!("get from a missing bucket: expected Io (NoSuchBucket), got {other:?}"),
    }
}

pub async fn large_copies_go_part_by_part(store: S3Store) {
    // With the threshold at 1 byte every copy is a multipart copy: 12 MiB in 5 MiB parts.
    let s: Store = Arc::new(store);
    let src = upload_key();
    let bytes = pattern(21, 12 << 20);
    put(&s, &src, bytes.clone(), PutCondition::None)
        .await
        .expect("put");
    let dst = blob_key(&bytes);
    let info = s
        .copy(&src, &dst, PutCondition::IfNoneMatch)
        .await
        .expect("copy");
    assert_eq!(info.size, 12 << 20);
    let (got, read_info) = read(&s, &dst).await;
    assert!(got == bytes, "the parts are copied in order");
    assert_eq!(read_info.etag, info.etag);
    assert_layout_meta(&read_info, &dst, None, "a multipart copy");
    assert!(
        info.etag.0.ends_with("-3"),
        "a three-part object: {}",
        info.etag
    );
    assert_precondition_failed(
        s.copy(&src, &dst, PutCondition::IfNoneMatch).await,
        "a create-only multipart copy onto an existing key",
    );
}

/// A minimal HTTP/1.1 GET over loopback: status and body.
async fn http_get(url: &str, range: Option<&str>) -> (u16, Vec<u8>) {
    let headers: Vec<_> = range.map(|r| ("Range", r)).into_iter().collect();
    http("GET", url, &headers, &[]).await
}

/// One request over a fresh connection; `headers` as given (a `Content-Length` is added
/// for a body unless among them).
/// Part `number` of `upload`, sent with its SHA-256 through a presigned URL, as a client would.
async fn put_presigned_part(
    presigner: &dyn Presign,
    key: &StorageKey,
    upload: &MultipartId,
    number: u32,
    bytes: &[u8],
) -> ChecksummedPart {
    use sha2::{Digest as _, Sha256};
    let part = ChecksummedPart {
        number,
        etag: String::new(),
        sha256: Sha256::digest(bytes).into(),
    };
    let expires = std::time::Duration::from_secs(300);
    let request = presigner
        .presign_part(key, upload, &part, bytes.len() as u64, expires)
        .await
        .expect("presign");
    let headers: Vec<_> = request.headers.iter().map(|(k, v)| (&**k, &**v)).collect();
    let (status, _) = http("PUT", &request.url, &headers, bytes).await;
    assert_eq!(status, 200, "part {number}");
    part
}

async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .expect("a plain-HTTP test server");
    let (host, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut conn = tokio::net::TcpStream::connect(host).await.expect("connect");
    let mut head: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let has_length = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    if !body.is_empty() && !has_length {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n{head}Connection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await.expect("send");
    conn.write_all(body).await.expect("send the body");
    let mut response = Vec::new();
    conn.read_to_end(&mut response).await.expect("read");
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end")
        + 4;
    let head = String::from_utf8_lossy(&response[..end]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut body = response[end..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = String::from_utf8_lossy(&data[..line]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("hex size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line + 2..line + 2 + size]);
        data = &data[line + 2 + size + 2..];
    }
}

/// A direct multipart object's SHA-256, computed by the store (in the publishing copy,
/// where the probe proved it returns the whole object's: LocalStack does) or else read:
/// the publishing copy completes for the true digest only, and publishing it again (the
/// blob is then there) changes nothing.
pub async fn store_hashed_copies_publish_only_the_true_digest(store: S3Store, server: &str) {
    use sha2::{Digest as _, Sha256};

    let presigner = store.presigner().expect("S3 offers a presigner");
    let proven = presigner.copies_checksums().await.expect("probe");
    assert!(proven || server != "localstack", "LocalStack hashes copies");
    let key = upload_key();
    let upload = presigner
        .create_checksummed_multipart(&key)
        .await
        .expect("create");
    let data = pattern(7, S3Config::MIN_PART_SIZE as usize + 7);
    let mut parts = Vec::new();
    for (i, bytes) in data.chunks(S3Config::MIN_PART_SIZE as usize).enumerate() {
        let part = put_presigned_part(presigner, &key, &upload, i as u32 + 1, bytes).await;
        parts.push(part);
    }
    let listed = presigner
        .list_checksummed(&key, &upload)
        .await
        .expect("list");
    for (part, held) in parts.iter_mut().zip(&listed) {
        part.etag = held.etag.clone();
    }
    if parts.iter().any(|p| p.etag.is_empty()) {
        // s3s-fs 0.14 lists no ETags: nothing to complete the upload with here.
        store.abort_multipart(&key, &upload).await.expect("abort");
        return;
    }
    presigner
        .complete_checksummed(&key, &upload, &parts)
        .await
        .expect("complete");
    let truth: [u8; 32] = Sha256::digest(&data).into();
    let lie: [u8; 32] = Sha256::digest(b"not these bytes").into();
    let staged = store.head(&key).await.expect("head");
    for (claimed, published) in [(lie, false), (truth, true), (truth, true)] {
        let blob = StorageKey::Blob(index_format::Digest::sha256(&claimed));
        let hash = presigner
            .read_sha256_publishing(&key, &staged, &blob, &claimed, proven)
            .await
            .expect("hash");
        assert_eq!(hash, truth);
        assert_eq!(store.head(&blob).await.is_ok(), published, "{blob:?}");
    }
    let blob = StorageKey::Blob(index_format::Digest::sha256(&truth));
    let (stored, _) = store.read(&blob, 1 << 30).await.expect("read");
    assert_eq!(stored.as_ref(), &data[..]);
    // Neither the refused copy nor the one that found the blob published is left
    // unfinished (S3 records start times to the second).
    let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
    let unfinished = store.remove_leftovers(soon).await.expect("leftovers");
    assert_eq!(unfinished, 0, "unfinished copies");
}
