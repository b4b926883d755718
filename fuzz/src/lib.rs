//! Fuzz targets for the parsers that read what clients send and what the store holds:
//! repository names, tags, digests and references, request paths, `Range` and
//! `Content-Range`, manifests and index documents.
//!
//! Each target takes arbitrary bytes, must never panic, and checks what the parser
//! promises about what it accepts (path-safe names, ranges inside the blob, ...). They
//! have the `fn(&[u8])` shape every fuzzing engine calls, so a `cargo afl` or `cargo fuzz`
//! harness can wrap them as they are; `src/main.rs` runs them on the stable toolchain.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use index_format::documents::{BlobLink, Catalog, ReferrersIndex, TagList};
use index_format::manifest::ParsedManifest;
use index_format::{Digest, Reference, RepoName, Tag};
use registry_api::route::Route;
use registry_api::{RangeRequest, decode_path, parse_content_range, parse_range};

/// A fuzz target: arbitrary input, panics on a broken promise.
pub type Target = fn(&[u8]);

/// Every target by name, with the inputs its mutations start from.
pub const TARGETS: &[(&str, Target, &[&str])] = &[
    (
        "names",
        names,
        &[
            "library/alpine",
            "a/b-c/d__e.f",
            "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "v1.2.3",
        ],
    ),
    (
        "route",
        route,
        &[
            "r/manifests/v1",
            "a/b/blobs/uploads/0f0e0d0c-0b0a-4908-8706-050403020100",
            "r/referrers/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "a%2Fb/tags/list",
        ],
    ),
    (
        "range",
        range,
        &[
            "bytes=0-99",
            "bytes=-5",
            "bytes=10-",
            "items=0-1",
            "bytes=0-1,4-5",
        ],
    ),
    (
        "content_range",
        content_range,
        &["0-99", "bytes 10-19/100", "5-4"],
    ),
    (
        "manifest",
        manifest,
        &[
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a/b","digest":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","size":2},"layers":[{"mediaType":"a/c","digest":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","size":3,"annotations":{"k":"v"}}],"subject":{"mediaType":"a/d","digest":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","size":4}}"#,
        ],
    ),
    (
        "documents",
        documents,
        &[
            r#"{"name":"a/b","tags":["latest","v1"]}"#,
            r#"{"repositories":["a","b/c"]}"#,
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
        ],
    ),
];

/// Nothing a name accepts can climb out of, or collide with, the index's folders: every
/// segment is non-empty and starts with neither `_` (`_manifests`, `_tags`, ...) nor `.`.
fn name_safe(s: &str) -> bool {
    !s.contains(['\\', '\0', '%'])
        && s.split('/')
            .all(|c| !c.is_empty() && !c.starts_with(['_', '.', '-']))
}

/// A tag is one file name inside `_manifests/`: no `/`, not `.` or `..` (it may contain
/// `..`, as in `v1..2`, and start with `_`).
fn file_safe(s: &str) -> bool {
    !s.contains(['/', '\\', '\0', '%']) && !s.starts_with('.') && !s.is_empty()
}

/// Names, tags, digests, references: accepted values are path-safe and kept verbatim.
pub fn names(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Ok(n) = RepoName::new(&s) {
        assert!(name_safe(n.as_str()) && n.as_str().len() <= 255, "{s:?}");
    }
    if let Ok(t) = Tag::new(&s) {
        assert!(file_safe(t.as_str()), "{s:?}");
    }
    if let Ok(d) = Digest::new(&s) {
        assert_eq!(d.as_str(), s, "a digest is kept as given");
        assert!(d.hex().bytes().all(|b| b.is_ascii_hexdigit()));
    }
    if let Ok(r) = Reference::new(&s) {
        assert_eq!(r.as_str(), s);
    }
}

/// Request paths: whatever parses, its repository name is valid and its path (where it
/// has one) parses back to the same route.
pub fn route(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Ok(Some(r)) = Route::parse(&decode_path(&s))
        && let Some(path) = r.path()
    {
        let again = path.strip_prefix("/v2/").map(Route::parse);
        assert!(
            matches!(again, Some(Ok(Some(ref a))) if *a == r),
            "{s:?} -> {path}"
        );
    }
}

/// `Range`: a range served lies inside the blob, for any size.
pub fn range(data: &[u8]) {
    let (size, spec) = match data.split_first() {
        Some((n, rest)) => (u64::from(*n) * 997, String::from_utf8_lossy(rest)),
        None => return,
    };
    if let RangeRequest::Part(r) = parse_range(&spec, size) {
        let end = r.end.unwrap_or(u64::MAX);
        assert!(r.start <= end && end < size, "{spec:?} on {size} bytes");
    }
}

/// `Content-Range`: what parses is an ordered, inclusive pair.
pub fn content_range(data: &[u8]) {
    if let Some((a, b)) = parse_content_range(&String::from_utf8_lossy(data)) {
        assert!(a <= b);
    }
}

/// Manifests: no input panics or exhausts the stack; what parses names only valid digests.
pub fn manifest(data: &[u8]) {
    for content_type in [None, Some("application/vnd.oci.image.index.v1+json")] {
        if let Ok(m) = ParsedManifest::parse(data, content_type) {
            assert!(m.references.len() <= index_format::manifest::MAX_REFERENCES);
            for d in &m.references {
                assert!(Digest::new(d.digest.as_str()).is_ok());
            }
        }
    }
    let _ = index_format::manifest::sniff_media_type(data);
}

/// Index documents as read back from a (possibly damaged) store.
pub fn documents(data: &[u8]) {
    if let Ok(l) = serde_json::from_slice::<TagList>(data) {
        assert!(l.tags.iter().all(|t| file_safe(t.as_str())));
    }
    if let Ok(c) = serde_json::from_slice::<Catalog>(data) {
        assert!(c.repositories.iter().all(|r| name_safe(r.as_str())));
    }
    let _ = serde_json::from_slice::<ReferrersIndex>(data);
    let _ = serde_json::from_slice::<BlobLink>(data);
}
