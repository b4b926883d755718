//! How values look on the wire: ETags, condition headers, ranges, copy sources, numbers.

use std::time::SystemTime;

use aws_sdk_s3::primitives::DateTime;

use crate::store::{ETag, ObjectInfo, PutCondition, PutMeta, StoreError};

/// `(If-Match, If-None-Match)` for a condition.
pub(super) fn condition_headers(condition: &PutCondition) -> (Option<String>, Option<String>) {
    match condition {
        PutCondition::None => (None, None),
        PutCondition::IfNoneMatch => (None, Some("*".to_owned())),
        PutCondition::IfMatch(etag) => (Some(quote(&etag.0)), None),
    }
}

/// A failed conditional write: `If-Match` on a missing key is a 404 on S3, a failed
/// precondition to the contract.
pub(super) fn write_error(err: StoreError, condition: &PutCondition) -> StoreError {
    match (err, condition) {
        (StoreError::NotFound { key }, PutCondition::IfMatch(_)) => {
            StoreError::PreconditionFailed { key }
        }
        (err, _) => err,
    }
}

/// What a successful write returns: S3 answers with the ETag only.
pub(super) fn written(size: u64, etag: Option<String>, meta: PutMeta) -> ObjectInfo {
    ObjectInfo {
        size,
        etag: ETag(unquote(etag)),
        content_type: meta.content_type,
        cache_control: meta.cache_control,
        last_modified: None,
        sha256: None,
        digest: meta.digest,
    }
}

/// The user metadata key of a manifest's digest: `x-amz-meta-digest` on the wire, R2's
/// `digest` custom metadata.
pub(super) const DIGEST_META: &str = "digest";

/// The digest a writer recorded in an object's user metadata.
pub(super) fn recorded_digest(
    metadata: Option<&std::collections::HashMap<String, String>>,
) -> Option<String> {
    metadata.and_then(|m| m.get(DIGEST_META)).cloned()
}

/// The user metadata a write stores: the manifest's digest, if any.
pub(super) fn user_metadata(meta: &PutMeta) -> Option<std::collections::HashMap<String, String>> {
    let digest = meta.digest.clone()?;
    Some([(DIGEST_META.to_owned(), digest)].into())
}

pub(super) fn unquote(etag: Option<String>) -> String {
    etag.as_deref()
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned()
}

pub(super) fn quote(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// `Range: bytes=<start>-[<end>]`.
pub(super) fn range_header(start: u64, end: Option<u64>) -> String {
    match end {
        Some(end) => format!("bytes={start}-{end}"),
        None => format!("bytes={start}-"),
    }
}

/// `Content-Range: bytes <start>-<end>/<size>` → `(start, end, size)`.
pub(super) fn content_range(header: &str) -> Option<(u64, u64, u64)> {
    let (range, size) = header.strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    Some((start.parse().ok()?, end.parse().ok()?, size.parse().ok()?))
}

/// `x-amz-copy-source`: the bucket and the URL-encoded key.
pub(super) fn copy_source(bucket: &str, object: &str) -> String {
    format!("{bucket}/{}", percent_encode(object))
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `/`.
pub(super) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn part_number(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(super) fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn as_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(super) fn system_time(t: DateTime) -> Option<SystemTime> {
    SystemTime::try_from(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_both_ways() {
        assert_eq!(range_header(10, Some(19)), "bytes=10-19");
        assert_eq!(range_header(10, None), "bytes=10-");
        assert_eq!(content_range("bytes 0-9/100"), Some((0, 9, 100)));
        assert_eq!(content_range("bytes */100"), None);
        assert_eq!(content_range("items 0-9/100"), None);
    }

    #[test]
    fn keys_are_encoded_for_copy_source_and_urls() {
        let key = "p/index/a/_manifests/sha256:ab";
        assert_eq!(
            copy_source("bkt", key),
            "bkt/p/index/a/_manifests/sha256%3Aab"
        );
        assert_eq!(percent_encode("a b+c~"), "a%20b%2Bc~");
    }

    #[test]
    fn conditions_become_headers() {
        assert_eq!(condition_headers(&PutCondition::None), (None, None));
        assert_eq!(
            condition_headers(&PutCondition::IfNoneMatch),
            (None, Some("*".into()))
        );
        assert_eq!(
            condition_headers(&PutCondition::IfMatch(ETag("abc".into()))),
            (Some("\"abc\"".into()), None)
        );
        assert_eq!(unquote(Some("\"abc\"".into())), "abc");
    }

    #[test]
    fn if_match_on_a_missing_key_is_a_failed_precondition() {
        let missing = || StoreError::NotFound { key: "k".into() };
        let if_match = PutCondition::IfMatch(ETag("e".into()));
        assert!(write_error(missing(), &if_match).is_precondition_failed());
        assert!(write_error(missing(), &PutCondition::None).is_not_found());
    }
}
