//! The JSON documents of the index. Each is exactly the body of the API response it
//! stands for, so a static host can serve it unchanged.

use serde::{Deserialize, Serialize};

use crate::manifest::Descriptor;
use crate::names::{Digest, RepoName, Tag};

/// The root `config.json`, like Cargo's index `config.json`: what a client or a CDN rule
/// needs to know to read the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexConfig {
    /// The layout version, [`crate::FORMAT_VERSION`] when written by this crate.
    pub format_version: u32,
    /// Where the registry API answers (`/v2/...` writes and anything not static).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// Where blobs are downloaded from, `<blobs>/blobs/<alg>/<hex>`, when not via the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blobs: Option<String>,
    /// Present when the registry requires authentication: what an edge needs to challenge
    /// clients and verify their tokens itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthInfo>,
}

/// The auth part of [`IndexConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthInfo {
    /// The token endpoint of challenges, if fixed (else `<api>/token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// The `service` of challenges and the `aud` of tokens.
    pub service: String,
    /// The `iss` of tokens.
    pub issuer: String,
    /// The public keys tokens are signed with, as JWKs.
    pub keys: Vec<serde_json::Value>,
    /// Repository patterns (`name`, `prefix/*`) anyone may pull without a token.
    pub anonymous_pull: Vec<String>,
    /// The patterns of the other rules: a repository is public when the most specific
    /// pattern matching it, of both lists (an exact name beats any prefix, a longer
    /// prefix a shorter one), is in `anonymous_pull`; when none matches, it is not.
    #[serde(default)]
    pub private: Vec<String>,
}

/// `GET /v2/<name>/tags/list`: tags sorted lexically, as the spec requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagList {
    /// The repository the tags belong to.
    pub name: RepoName,
    /// The tags, sorted lexically and without duplicates.
    pub tags: Vec<Tag>,
}

impl TagList {
    /// An empty list for `name`.
    pub fn new(name: RepoName) -> Self {
        Self {
            name,
            tags: Vec::new(),
        }
    }

    /// Adds a tag, keeping the list sorted; `false` if it was already there.
    pub fn insert(&mut self, tag: Tag) -> bool {
        match self.tags.binary_search(&tag) {
            Ok(_) => false,
            Err(i) => {
                self.tags.insert(i, tag);
                true
            }
        }
    }

    /// Removes a tag; `false` if it was not there.
    pub fn remove(&mut self, tag: &Tag) -> bool {
        match self.tags.binary_search(tag) {
            Ok(i) => {
                self.tags.remove(i);
                true
            }
            Err(_) => false,
        }
    }
}

/// `GET /v2/_catalog`: repository names, sorted lexically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// The repositories, sorted lexically and without duplicates.
    pub repositories: Vec<RepoName>,
}

impl Catalog {
    /// Adds a repository, keeping the list sorted; `false` if it was already there.
    pub fn insert(&mut self, name: RepoName) -> bool {
        match self.repositories.binary_search(&name) {
            Ok(_) => false,
            Err(i) => {
                self.repositories.insert(i, name);
                true
            }
        }
    }

    /// Removes a repository; `false` if it was not there.
    pub fn remove(&mut self, name: &RepoName) -> bool {
        match self.repositories.binary_search(name) {
            Ok(i) => {
                self.repositories.remove(i);
                true
            }
            Err(_) => false,
        }
    }
}

/// `GET /v2/<name>/referrers/<digest>`: an image index of the manifests whose `subject`
/// is that digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrersIndex {
    /// Always 2.
    pub schema_version: u32,
    /// Always the OCI image index media type.
    pub media_type: String,
    /// One descriptor per referring manifest, sorted by digest.
    pub manifests: Vec<Descriptor>,
}

impl Default for ReferrersIndex {
    fn default() -> Self {
        Self {
            schema_version: 2,
            media_type: crate::ManifestMediaType::OciIndex.as_str().to_owned(),
            manifests: Vec::new(),
        }
    }
}

impl ReferrersIndex {
    /// Adds or replaces the entry for `descriptor.digest`; `false` if nothing changed.
    pub fn upsert(&mut self, descriptor: Descriptor) -> bool {
        match self
            .manifests
            .iter_mut()
            .find(|d| d.digest == descriptor.digest)
        {
            Some(d) if *d == descriptor => false,
            Some(d) => {
                *d = descriptor;
                true
            }
            None => {
                self.manifests.push(descriptor);
                self.manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
                true
            }
        }
    }

    /// Removes the entry for `digest`; `false` if there was none.
    pub fn remove(&mut self, digest: &Digest) -> bool {
        let before = self.manifests.len();
        self.manifests.retain(|d| &d.digest != digest);
        before != self.manifests.len()
    }

    /// The index filtered to one `artifactType`.
    pub fn filtered(&self, artifact_type: &str) -> Self {
        Self {
            manifests: self
                .manifests
                .iter()
                .filter(|d| d.artifact_type.as_deref() == Some(artifact_type))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }
}

/// The content of a blob link: the blob's digest and size, so a `HEAD` on a blob is
/// answered from the repository's index without touching the blob itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobLink {
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's length in bytes.
    pub size: u64,
}

/// Serializes a document to the exact bytes stored. The documents here cannot fail to
/// serialize (no maps with non-string keys), but the error is passed on rather than
/// turned into an empty document that would then be written.
pub fn to_bytes<T: Serialize>(doc: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_list_exact_bytes_sorted() {
        let mut l = TagList::new(RepoName::new("a/b").expect("name"));
        for t in ["v2", "latest", "v1", "v2"] {
            l.insert(Tag::new(t).expect("tag"));
        }
        assert_eq!(
            String::from_utf8(to_bytes(&l).expect("json")).expect("utf8"),
            r#"{"name":"a/b","tags":["latest","v1","v2"]}"#
        );
        assert!(l.remove(&Tag::new("v1").expect("tag")));
        assert!(!l.remove(&Tag::new("v1").expect("tag")));
    }

    #[test]
    fn referrers_exact_bytes_and_filter() {
        let d = |c: char, at: &str| Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: Digest::new(&format!("sha256:{}", c.to_string().repeat(64))).expect("d"),
            size: 1,
            urls: None,
            annotations: None,
            artifact_type: Some(at.into()),
            platform: None,
        };
        let mut r = ReferrersIndex::default();
        assert!(r.upsert(d('b', "x/sig")));
        assert!(r.upsert(d('a', "x/sbom")));
        assert!(!r.upsert(d('a', "x/sbom")));
        assert_eq!(r.manifests[0].digest.hex(), "a".repeat(64));
        assert_eq!(r.filtered("x/sig").manifests.len(), 1);
        let bytes =
            String::from_utf8(to_bytes(&ReferrersIndex::default()).expect("json")).expect("utf8");
        assert_eq!(
            bytes,
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#
        );
    }

    proptest::proptest! {
        /// Inserting and removing tags in any order keeps the list sorted and free of
        /// duplicates, and it reads back from its bytes as it was.
        #[test]
        fn tag_lists_stay_sorted_and_round_trip(
            ops in proptest::collection::vec(("[a-c][a-c0-9]{0,2}", proptest::bool::ANY), 0..40)
        ) {
            let mut l = TagList::new(RepoName::new("r").expect("name"));
            for (t, add) in ops {
                let tag = Tag::new(&t).expect("tag");
                if add { l.insert(tag); } else { l.remove(&tag); }
            }
            proptest::prop_assert!(l.tags.windows(2).all(|w| w[0] < w[1]));
            let bytes = to_bytes(&l).expect("serialize");
            proptest::prop_assert_eq!(serde_json::from_slice::<TagList>(&bytes).ok(), Some(l));
        }

        /// A damaged or hostile stored document fails to parse; it never panics, and what
        /// parses holds only valid names, tags and digests.
        #[test]
        fn any_bytes_parse_or_fail(body in "\\PC{0,200}|\\{\"(name|tags|repositories|manifests)\":\\PC{0,60}") {
            if let Ok(l) = serde_json::from_str::<TagList>(&body) {
                proptest::prop_assert!(l.tags.iter().all(|t| Tag::new(t.as_str()).is_ok()));
            }
            if let Ok(c) = serde_json::from_str::<Catalog>(&body) {
                proptest::prop_assert!(c.repositories.iter().all(|r| RepoName::new(r.as_str()).is_ok()));
            }
            let _ = serde_json::from_str::<ReferrersIndex>(&body);
            let _ = serde_json::from_str::<BlobLink>(&body);
        }
    }
}
