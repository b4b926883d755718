//! The parts of a pushed manifest the registry must understand: its kind, what it
//! references (so a push can be refused when a blob is missing), and its subject.
//!
//! Parsing is deliberately lenient about fields the registry does not use and strict about
//! the ones it does: a manifest is stored byte for byte, never re-serialized.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::media_type::ManifestMediaType;
use crate::names::Digest;

/// A descriptor as it appears in manifests and in the referrers index. Annotations are a
/// `BTreeMap` so a serialized index is byte-stable across rewrites (stable ETags).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the content described.
    pub media_type: String,
    /// The content's digest.
    pub digest: Digest,
    /// The content's length in bytes.
    pub size: u64,
    /// Other places the content can be fetched from; `None` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// `annotations`, kept as given; `None` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// `artifactType`; `None` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// An index entry's `platform` object, passed through unread; `None` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    artifact_type: Option<String>,
    annotations: Option<BTreeMap<String, String>>,
}

/// Why a manifest body was refused (`MANIFEST_INVALID`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The body is not JSON of the expected shape; holds the parser's message.
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    /// `schemaVersion` is missing or not 2.
    #[error("manifest schemaVersion must be 2")]
    SchemaVersion,
    /// Neither the `Content-Type` nor the `mediaType` field gives a media type.
    #[error("no media type: send Content-Type or set mediaType in the manifest")]
    NoMediaType,
    /// The `Content-Type` and the `mediaType` field name different accepted types.
    #[error("Content-Type {header} does not match the manifest's mediaType {field}")]
    MediaTypeMismatch {
        /// The media type the `Content-Type` names.
        header: String,
        /// The media type the `mediaType` field names.
        field: String,
    },
    /// The media type given is not one cargohold accepts; holds it as given.
    #[error("unsupported manifest media type {0:?}")]
    UnknownMediaType(String),
    /// A field the manifest's kind requires is absent: the kind and the field's JSON name.
    #[error("a {0} needs {1}")]
    MissingField(ManifestMediaType, &'static str),
    /// Arrays and objects nest deeper than [`MAX_DEPTH`].
    #[error("manifest nests arrays and objects more than {MAX_DEPTH} deep")]
    TooDeep,
    /// More descriptors than [`MAX_REFERENCES`]; holds how many.
    #[error("manifest has {0} descriptors; at most {MAX_REFERENCES} are accepted")]
    TooManyReferences(usize),
}

/// How deep a manifest's arrays and objects may nest. Docker's and containerd's Go
/// decoder refuses more than 10,000 levels, so anything stored here is readable by every
/// client; real manifests nest five deep. serde_json skips unknown fields without a depth
/// limit, so without this check any depth would be stored.
pub const MAX_DEPTH: usize = 1000;

/// How many descriptors (config, layers or child manifests) a manifest may have: each is
/// checked against the store on push. Images have at most a few hundred layers.
pub const MAX_REFERENCES: usize = 10_000;

/// Whether `body`'s arrays and objects nest at most `max` deep, found in one pass without
/// recursion (so no input can exhaust the stack). Brackets inside strings do not count;
/// the JSON's validity is the parser's business.
pub fn nesting_within(body: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// A manifest the registry accepted.
#[derive(Debug, Clone)]
pub struct ParsedManifest {
    /// The manifest's kind, from the `Content-Type` or else the `mediaType` field.
    pub media_type: ManifestMediaType,
    /// Blobs (config and layers) or child manifests this manifest needs in its repository.
    pub references: Vec<Descriptor>,
    /// The manifest this one refers to (for the referrers API); `None` when absent.
    pub subject: Option<Descriptor>,
    /// `artifactType`, or for an image manifest without one, the config's media type.
    pub artifact_type: Option<String>,
    /// The manifest's `annotations`; `None` when absent.
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ParsedManifest {
    /// Parses `body` sent with `content_type` (the request's `Content-Type`, if any).
    pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Self, ManifestError> {
        if !nesting_within(body, MAX_DEPTH) {
            return Err(ManifestError::TooDeep);
        }
        let raw: RawManifest =
            serde_json::from_slice(body).map_err(|e| ManifestError::Json(e.to_string()))?;
        if raw.schema_version != Some(2) {
            return Err(ManifestError::SchemaVersion);
        }
        let header = content_type.map(ManifestMediaType::parse);
        let field = raw.media_type.as_deref().map(ManifestMediaType::parse);
        let media_type = match (header, field) {
            (Some(Ok(h)), Some(Ok(f))) if h != f => {
                return Err(ManifestError::MediaTypeMismatch {
                    header: h.to_string(),
                    field: f.to_string(),
                });
            }
            (Some(Ok(h)), _) => h,
            (_, Some(Ok(f))) => f,
            (_, Some(Err(e))) | (Some(Err(e)), None) => {
                return Err(ManifestError::UnknownMediaType(e.0));
            }
            (None, None) => return Err(ManifestError::NoMediaType),
        };
        let references = if media_type.is_index() {
            raw.manifests
                .ok_or(ManifestError::MissingField(media_type, "manifests"))?
        } else {
            let config = raw
                .config
                .ok_or(ManifestError::MissingField(media_type, "config"))?;
            let layers = raw
                .layers
                .ok_or(ManifestError::MissingField(media_type, "layers"))?;
            std::iter::once(config).chain(layers).collect()
        };
        if references.len() > MAX_REFERENCES {
            return Err(ManifestError::TooManyReferences(references.len()));
        }
        let artifact_type = raw.artifact_type.or_else(|| {
            (!media_type.is_index())
                .then(|| references.first().map(|c| c.media_type.clone()))
                .flatten()
        });
        Ok(Self {
            media_type,
            references,
            subject: raw.subject,
            artifact_type,
            annotations: raw.annotations,
        })
    }
}

/// The media type of a stored manifest read without metadata: its `mediaType` field, or
/// for a manifest without one, an index if it has `manifests`, else an image manifest.
pub fn sniff_media_type(body: &[u8]) -> ManifestMediaType {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Shape {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Shape>(body) {
        Ok(shape) => shape
            .media_type
            .and_then(|t| ManifestMediaType::parse(&t).ok())
            .unwrap_or(if shape.manifests.is_some() {
                ManifestMediaType::OciIndex
            } else {
                ManifestMediaType::OciManifest
            }),
        Err(_) => ManifestMediaType::OciManifest,
    }
}

impl Descriptor {
    /// Non-distributable (foreign) layers are fetched from their `urls`, not the registry.
    pub fn is_foreign(&self) -> bool {
        self.urls.as_ref().is_some_and(|u| !u.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn manifest(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,{extra}"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{D}","size":3}}]}}"#
        )
    }

    #[test]
    fn media_type_from_header_or_field() {
        let oci = "application/vnd.oci.image.manifest.v1+json";
        let m = ParsedManifest::parse(manifest("").as_bytes(), Some(oci)).expect("parse");
        assert_eq!(m.media_type, ManifestMediaType::OciManifest);
        assert_eq!(m.references.len(), 2);
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        let with_field = manifest(&format!(r#""mediaType":"{oci}","#));
        assert!(ParsedManifest::parse(with_field.as_bytes(), None).is_ok());
        assert!(matches!(
            ParsedManifest::parse(manifest("").as_bytes(), None),
            Err(ManifestError::NoMediaType)
        ));
        assert!(matches!(
            ParsedManifest::parse(
                with_field.as_bytes(),
                Some("application/vnd.oci.image.index.v1+json")
            ),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
    }

    #[test]
    fn rejects_bad_bodies() {
        let oci = Some("application/vnd.oci.image.manifest.v1+json");
        assert!(matches!(
            ParsedManifest::parse(b"{", oci),
            Err(ManifestError::Json(_))
        ));
        assert!(matches!(
            ParsedManifest::parse(br#"{"schemaVersion":1}"#, oci),
            Err(ManifestError::SchemaVersion)
        ));
        assert!(matches!(
            ParsedManifest::parse(br#"{"schemaVersion":2,"layers":[]}"#, oci),
            Err(ManifestError::MissingField(_, "config"))
        ));
        let bad_digest = manifest("").replace(D, "sha256:xyz");
        assert!(matches!(
            ParsedManifest::parse(bad_digest.as_bytes(), oci),
            Err(ManifestError::Json(_))
        ));
    }

    #[test]
    fn sniffing_without_metadata() {
        assert_eq!(
            sniff_media_type(manifest("").as_bytes()),
            ManifestMediaType::OciManifest
        );
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":2,"manifests":[]}"#),
            ManifestMediaType::OciIndex
        );
        let docker =
            br#"{"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json"}"#;
        assert_eq!(
            sniff_media_type(docker),
            ManifestMediaType::DockerManifestList
        );
    }

    #[test]
    fn index_references_and_subject() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D}","size":7,"platform":{{"os":"linux","architecture":"arm64"}}}}],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D}","size":7}},"artifactType":"application/x-test"}}"#
        );
        let m = ParsedManifest::parse(body.as_bytes(), None).expect("parse");
        assert!(m.media_type.is_index());
        assert_eq!(m.references.len(), 1);
        assert_eq!(m.subject.map(|s| s.size), Some(7));
        assert_eq!(m.artifact_type.as_deref(), Some("application/x-test"));
    }

    #[test]
    fn hostile_bodies_are_refused() {
        let oci = Some("application/vnd.oci.image.manifest.v1+json");
        let nested = |n: usize| manifest(&format!(r#""x":{}{},"#, "[".repeat(n), "]".repeat(n)));
        assert!(ParsedManifest::parse(nested(MAX_DEPTH - 1).as_bytes(), oci).is_ok());
        for n in [MAX_DEPTH, 10_000, 2_000_000] {
            assert_eq!(
                ParsedManifest::parse(nested(n).as_bytes(), oci).err(),
                Some(ManifestError::TooDeep),
                "{n} levels"
            );
        }
        // Brackets in strings are text, escaped quotes do not end them.
        let text = manifest(&format!(r#""x":"\"{}","#, "[".repeat(5000)));
        assert!(ParsedManifest::parse(text.as_bytes(), oci).is_ok());
        // Duplicate keys: the registry and a client could each believe another one.
        let twice = manifest("").replacen(
            r#""config":"#,
            &format!(r#""config":{{"mediaType":"a/b","digest":"{D}","size":9}},"config":"#),
            1,
        );
        assert!(matches!(
            ParsedManifest::parse(twice.as_bytes(), oci),
            Err(ManifestError::Json(e)) if e.contains("duplicate field")
        ));
        let digest_twice = manifest("").replacen(r#""size":2"#, r#""size":2,"size":3"#, 1);
        assert!(ParsedManifest::parse(digest_twice.as_bytes(), oci).is_err());
        let mut invalid_utf8 = manifest(r#""annotations":{"a":"XX"},"#).into_bytes();
        let at = invalid_utf8
            .windows(2)
            .position(|w| w == b"XX")
            .expect("marker");
        invalid_utf8[at] = 0xff;
        assert!(matches!(
            ParsedManifest::parse(&invalid_utf8, oci),
            Err(ManifestError::Json(_))
        ));
        let layer = format!(r#"{{"mediaType":"a/b","digest":"{D}","size":1}}"#);
        let many = format!(
            r#"{{"schemaVersion":2,"config":{layer},"layers":[{}]}}"#,
            vec![layer.as_str(); MAX_REFERENCES].join(",")
        );
        assert_eq!(
            ParsedManifest::parse(many.as_bytes(), oci).err(),
            Some(ManifestError::TooManyReferences(MAX_REFERENCES + 1))
        );
    }

    proptest::proptest! {
        /// No input makes the parser panic or recurse without bound.
        #[test]
        fn any_bytes_parse_or_fail(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = ParsedManifest::parse(&body, None);
            let _ = sniff_media_type(&body);
        }

        /// Whatever a generated manifest holds, its references are its config then its
        /// layers, as written.
        #[test]
        fn references_are_config_then_layers(sizes in proptest::collection::vec(0u64..u64::MAX, 1..20)) {
            let layers: Vec<String> = sizes
                .iter()
                .map(|n| format!(r#"{{"mediaType":"l","digest":"{D}","size":{n}}}"#))
                .collect();
            let body = format!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"c","digest":"{D}","size":1}},"layers":[{}]}}"#,
                layers.join(",")
            );
            let m = ParsedManifest::parse(body.as_bytes(), Some("application/vnd.oci.image.manifest.v1+json"))
                .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let got: Vec<u64> = m.references.iter().skip(1).map(|d| d.size).collect();
            proptest::prop_assert_eq!(got, sizes);
        }

        /// The depth check agrees with a plain count of unquoted brackets.
        #[test]
        fn nesting_matches_a_bracket_count(open in 0usize..50, max in 0usize..50) {
            let body = format!("{}{}", "[".repeat(open), "]".repeat(open));
            proptest::prop_assert_eq!(nesting_within(body.as_bytes(), max), open <= max);
        }
    }
}
