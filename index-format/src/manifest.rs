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
}
