//! The manifest media types a registry accepts.

use std::fmt;

/// A manifest kind cargohold stores and serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManifestMediaType {
    /// `application/vnd.oci.image.manifest.v1+json`
    OciManifest,
    /// `application/vnd.oci.image.index.v1+json`
    OciIndex,
    /// `application/vnd.docker.distribution.manifest.v2+json`
    DockerManifest,
    /// `application/vnd.docker.distribution.manifest.list.v2+json`
    DockerManifestList,
}

/// A `Content-Type` that is not a manifest media type we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported manifest media type {0:?}")]
pub struct UnknownMediaType(pub String);

impl ManifestMediaType {
    /// Every accepted kind, in the order `parse` tries them.
    pub const ALL: [Self; 4] = [
        Self::OciManifest,
        Self::OciIndex,
        Self::DockerManifest,
        Self::DockerManifestList,
    ];

    /// The media type string, as sent in `Content-Type` and `mediaType`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OciManifest => "application/vnd.oci.image.manifest.v1+json",
            Self::OciIndex => "application/vnd.oci.image.index.v1+json",
            Self::DockerManifest => "application/vnd.docker.distribution.manifest.v2+json",
            Self::DockerManifestList => "application/vnd.docker.distribution.manifest.list.v2+json",
        }
    }

    /// Parses a `Content-Type` value, ignoring parameters such as `; charset=utf-8`.
    pub fn parse(content_type: &str) -> Result<Self, UnknownMediaType> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(essence))
            .ok_or_else(|| UnknownMediaType(content_type.to_owned()))
    }

    /// An index (or Docker manifest list) references manifests; the others reference blobs.
    pub fn is_index(self) -> bool {
        matches!(self, Self::OciIndex | Self::DockerManifestList)
    }
}

impl fmt::Display for ManifestMediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_parameters() {
        for m in ManifestMediaType::ALL {
            assert_eq!(ManifestMediaType::parse(m.as_str()), Ok(m));
        }
        assert_eq!(
            ManifestMediaType::parse("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
            Ok(ManifestMediaType::OciManifest)
        );
        assert!(ManifestMediaType::parse("application/json").is_err());
    }
}
