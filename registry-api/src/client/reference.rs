//! Image references as people type them: `[registry/]repository[:tag][@digest]`.

use std::fmt;

use index_format::{Digest, RepoName, Tag};

use super::ClientError;

/// The registry Docker Hub's short names mean.
const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's API actually answers.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]` as written (`docker.io` for short names).
    pub registry: String,
    /// The repository inside the registry.
    pub repository: RepoName,
    /// The tag, if one was given.
    pub tag: Option<Tag>,
    /// The digest, if one was given (it wins over the tag when reading).
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Parses `s`. The first path component is a registry when it contains `.` or `:` or
    /// is `localhost`; otherwise the reference is Docker Hub's (`library/` for one-part
    /// names), as docker and podman read it.
    pub fn parse(s: &str) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::Input(format!("image reference {s:?}: {why}"));
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::new(d).map_err(|e| bad(&e.to_string()))?)),
            None => (s, None),
        };
        // A tag's colon comes after the last slash (a registry's port comes before it).
        let (rest, tag) = match rest.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => {
                (r, Some(Tag::new(t).map_err(|e| bad(&e.to_string()))?))
            }
            _ => (rest, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), path.to_owned())
            }
            Some(_) => (DOCKER_HUB.to_owned(), rest.to_owned()),
            None => (DOCKER_HUB.to_owned(), format!("library/{rest}")),
        };
        let repository = RepoName::new(&path).map_err(|e| bad(&e.to_string()))?;
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the registry for: the digest if given, else the tag, else `latest`.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.as_str().to_owned(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// The host the API is reached at (Docker Hub's differs from its name).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{}", t.as_str())?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Whether `host` (`name[:port]`, `[v6]:port`) is this machine: such registries are spoken
/// to in plain HTTP, as docker and podman do for `localhost`.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_registry_repository_tag_and_digest() {
        let r = ImageRef::parse("127.0.0.1:5000/a/b:v1").expect("parses");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository.as_str(), "a/b");
        assert_eq!(r.reference(), "v1");
        let r = ImageRef::parse(&format!("localhost/x@{D}")).expect("parses");
        assert_eq!(
            (r.registry.as_str(), r.reference()),
            ("localhost", D.to_owned())
        );
        let r = ImageRef::parse("alpine").expect("parses");
        assert_eq!(r.to_string(), "docker.io/library/alpine");
        assert_eq!(
            (r.api_host(), r.reference().as_str()),
            ("registry-1.docker.io", "latest")
        );
        let r = ImageRef::parse("user/app:1").expect("parses");
        assert_eq!(r.repository.as_str(), "user/app");
    }

    #[test]
    fn refuses_bad_names() {
        for bad in ["UPPER/x:1", "h:5000/a:b:c", "x@sha256:zz", ""] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for yes in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:1",
            "[::1]:5000",
            "127.3.2.1",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in ["example.com", "10.0.0.1:5000", "[fe80::1]:5"] {
            assert!(!is_loopback(no), "{no}");
        }
    }
}
