//! Repository names, tags, digests and references, checked once in their constructors.
//!
//! Grammar (OCI distribution spec v1.1.1, "Pulling manifests"):
//! - name: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
//! - tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
//! - digest: `algorithm ":" encoded`, of which we accept `sha256` (64 lowercase hex) and
//!   `sha512` (128 lowercase hex).

use std::fmt;
use std::str::FromStr;

/// Longest repository name we accept. The spec lets registries limit it; 255 matches
/// CNCF distribution and keeps every derived object key well under S3's 1024-byte limit.
pub const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// Why a name, tag, digest or reference was rejected. Each variant carries the bad input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A repository name is empty, over 255 characters, or breaks the grammar.
    #[error(
        "invalid repository name {0:?}: lowercase components of [a-z0-9] joined by '.', '_', '__' or '-', separated by '/', at most 255 characters"
    )]
    Name(String),
    /// A tag is empty, over 128 characters, or has a character the grammar forbids.
    #[error("invalid tag {0:?}: [a-zA-Z0-9_] then up to 127 of [a-zA-Z0-9._-]")]
    Tag(String),
    /// A digest is malformed, or its hex is not lowercase of its algorithm's length.
    #[error("invalid digest {0:?}: expected algorithm:hex, e.g. sha256:<64 hex digits>")]
    Digest(String),
    /// A well-formed digest names an algorithm other than sha256 or sha512; holds the
    /// algorithm alone.
    #[error("unsupported digest algorithm {0:?}: cargohold accepts sha256 and sha512")]
    UnsupportedAlgorithm(String),
}

/// A repository name such as `library/alpine`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoName(String);

impl RepoName {
    /// Checks `s` against the name grammar and the length limit.
    pub fn new(s: &str) -> Result<Self, NameError> {
        if s.is_empty() || s.len() > MAX_NAME_LEN || !s.split('/').all(valid_component) {
            return Err(NameError::Name(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One path component: alphanumeric runs joined by exactly one separator (`.`, `_`, `__` or
/// any number of `-`).
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__', or '-'+; must be followed by an alphanumeric.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if b.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || !b.get(i).is_some_and(|&x| alnum(x)) {
            return false;
        }
    }
    true
}

/// A tag such as `v1.2.3` or `latest`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

impl Tag {
    /// Checks `s` against the tag grammar (at most 128 characters).
    pub fn new(s: &str) -> Result<Self, NameError> {
        let b = s.as_bytes();
        let first_ok = b
            .first()
            .is_some_and(|&x| x.is_ascii_alphanumeric() || x == b'_');
        let rest_ok = b
            .iter()
            .skip(1)
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'));
        if !first_ok || !rest_ok || b.len() > MAX_TAG_LEN {
            return Err(NameError::Tag(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    /// The tag as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The digest algorithms cargohold verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DigestAlgorithm {
    /// SHA-256: 64 hex digits.
    Sha256,
    /// SHA-512: 128 hex digits.
    Sha512,
}

impl DigestAlgorithm {
    /// The name digests start with: `sha256` or `sha512`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
}

/// A content digest, `sha256:<hex>` or `sha512:<hex>`, lowercase.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    /// The whole `algorithm:hex` string, kept so `as_str` borrows.
    full: String,
}

impl Digest {
    /// Parses `algorithm:hex`, refusing algorithms other than sha256 and sha512 and
    /// anything but lowercase hex of the algorithm's length.
    pub fn new(s: &str) -> Result<Self, NameError> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(NameError::Digest(s.to_owned()));
        };
        // The spec's algorithm grammar: [a-z0-9]+([+._-][a-z0-9]+)*
        let alg_ok = !alg.is_empty()
            && alg
                .bytes()
                .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"+._-".contains(&x));
        let encoded_ok = !hex.is_empty()
            && hex
                .bytes()
                .all(|x| x.is_ascii_alphanumeric() || b"=_-".contains(&x));
        if !alg_ok || !encoded_ok {
            return Err(NameError::Digest(s.to_owned()));
        }
        let algorithm = match alg {
            "sha256" => DigestAlgorithm::Sha256,
            "sha512" => DigestAlgorithm::Sha512,
            other => return Err(NameError::UnsupportedAlgorithm(other.to_owned())),
        };
        let lower_hex = hex
            .bytes()
            .all(|x| x.is_ascii_digit() || (b'a'..=b'f').contains(&x));
        if hex.len() != algorithm.hex_len() || !lower_hex {
            return Err(NameError::Digest(s.to_owned()));
        }
        Ok(Self {
            algorithm,
            full: s.to_owned(),
        })
    }

    /// Builds a digest from a hash the caller computed; `hex` must be the lowercase encoding.
    pub fn from_hex(algorithm: DigestAlgorithm, hex: &str) -> Result<Self, NameError> {
        Self::new(&format!("{}:{hex}", algorithm.as_str()))
    }

    /// Builds a digest from the raw output of `algorithm`'s hash function: the hot path of
    /// every manifest read by tag, so encoded in one pass with no validation to repeat.
    pub fn from_hash(algorithm: DigestAlgorithm, hash: &[u8]) -> Result<Self, NameError> {
        if hash.len() * 2 != algorithm.hex_len() {
            return Err(NameError::Digest(format!(
                "{}: {} bytes of hash",
                algorithm.as_str(),
                hash.len()
            )));
        }
        Ok(Self::encode(algorithm, hash))
    }

    /// The digest of a SHA-256 hash, which has the right length by its type.
    pub fn sha256(hash: &[u8; 32]) -> Self {
        Self::encode(DigestAlgorithm::Sha256, hash)
    }

    /// `algorithm:hex(hash)`, for a hash already known to be of `algorithm`'s length.
    fn encode(algorithm: DigestAlgorithm, hash: &[u8]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut full = String::with_capacity(algorithm.as_str().len() + 1 + hash.len() * 2);
        full.push_str(algorithm.as_str());
        full.push(':');
        for b in hash {
            full.push(char::from(HEX[usize::from(b >> 4)]));
            full.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        Self { algorithm, full }
    }

    /// The algorithm before the colon.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The encoded part after the colon.
    pub fn hex(&self) -> &str {
        &self.full[self.algorithm.as_str().len() + 1..]
    }

    /// The whole digest, `algorithm:hex`.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

/// What follows `/manifests/` in a URL: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    /// A tag, which can move to another manifest.
    Tag(Tag),
    /// A digest, which names one manifest for good.
    Digest(Digest),
}

impl Reference {
    /// A digest if `s` has a colon, else a tag.
    pub fn new(s: &str) -> Result<Self, NameError> {
        // A colon can only appear in a digest, never in a tag.
        if s.contains(':') {
            Digest::new(s).map(Self::Digest)
        } else {
            Tag::new(s).map(Self::Tag)
        }
    }

    /// The tag or digest as given.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Tag(t) => t.as_str(),
            Self::Digest(d) => d.as_str(),
        }
    }
}

macro_rules! string_impls {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
string_impls!(RepoName, Tag, Digest, Reference);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names() {
        let ok = [
            "a",
            "library/alpine",
            "a/b/c/d",
            "foo.bar",
            "foo_bar",
            "foo__bar",
            "foo---bar",
            "0/1",
        ];
        for n in ok {
            assert!(RepoName::new(n).is_ok(), "{n} should be valid");
        }
        let long = "a".repeat(256);
        let bad = [
            "",
            "A",
            "Foo/bar",
            "foo/",
            "/foo",
            "foo//bar",
            "..",
            "a/../b",
            "foo.",
            "_foo",
            "foo___bar",
            "foo._bar",
            "foo bar",
            "foo:bar",
            &long,
        ];
        for n in bad {
            assert!(RepoName::new(n).is_err(), "{n:?} should be invalid");
        }
        assert!(RepoName::new(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn tags() {
        for t in ["latest", "v1.0", "_x", "A-b_c.d", &"a".repeat(128)] {
            assert!(Tag::new(t).is_ok(), "{t}");
        }
        for t in ["", ".x", "-x", "a:b", "a/b", &"a".repeat(129)] {
            assert!(Tag::new(t).is_err(), "{t:?}");
        }
    }

    #[test]
    fn digests() {
        let h = "a".repeat(64);
        let d = Digest::new(&format!("sha256:{h}")).expect("valid");
        assert_eq!(d.hex(), h);
        assert_eq!(d.algorithm(), DigestAlgorithm::Sha256);
        assert!(Digest::new(&format!("sha512:{}", "0".repeat(128))).is_ok());
        assert_eq!(
            Digest::new("md5:abc"),
            Err(NameError::UnsupportedAlgorithm("md5".into()))
        );
        for bad in [
            "sha256".to_owned(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha512:{h}"),
            format!(":{h}"),
            format!("sha256:{h}/x"),
        ] {
            assert!(Digest::new(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn digests_from_raw_hashes() {
        let hash: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37)).collect();
        let d = Digest::from_hash(DigestAlgorithm::Sha256, &hash).expect("32 bytes");
        let expected: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            d,
            Digest::new(&format!("sha256:{expected}")).expect("valid")
        );
        assert!(Digest::from_hash(DigestAlgorithm::Sha512, &hash).is_err());
        assert!(Digest::from_hash(DigestAlgorithm::Sha256, &hash[1..]).is_err());
        let array: [u8; 32] = hash.try_into().expect("32 bytes");
        assert_eq!(Digest::sha256(&array), d);
    }

    #[test]
    fn references_split_on_colon() {
        assert!(matches!(Reference::new("v1"), Ok(Reference::Tag(_))));
        let d = format!("sha256:{}", "b".repeat(64));
        assert!(matches!(Reference::new(&d), Ok(Reference::Digest(_))));
        assert!(Reference::new("a:b").is_err());
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// The spec's name grammar with its repetitions bounded, so that every name
        /// generated is within the 255-character limit.
        const NAME: &str = "[a-z0-9]{1,8}((\\.|_|__|-{1,3})[a-z0-9]{1,8}){0,3}(/[a-z0-9]{1,8}((\\.|_|__|-{1,3})[a-z0-9]{1,8}){0,3}){0,4}";
        const TAG: &str = "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}";

        /// Nothing accepted can step out of, or collide with, the index's own folders: no
        /// `..` segment, no backslash, no NUL, no `%`, no empty segment, and no segment starting with
        /// `_` (`_manifests`, `_tags`, `_blobs`, `_referrers`, `_catalog`).
        fn path_safe(s: &str) -> bool {
            !s.contains(['\\', '\0', '%', ':'])
                && s.split('/')
                    .all(|c| !c.is_empty() && !c.starts_with(['_', '.', '-']))
        }

        proptest! {
            #[test]
            fn grammar_names_are_accepted(n in NAME) {
                let name = RepoName::new(&n).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(name.as_str(), n.as_str());
            }

            #[test]
            fn accepted_names_are_path_safe(n in "[a-z0-9._/%\\\\-]{0,40}|\\PC{0,64}") {
                if let Ok(name) = RepoName::new(&n) {
                    prop_assert!(path_safe(name.as_str()) && !n.contains(".."), "{n:?}");
                    prop_assert!(name.as_str().len() <= MAX_NAME_LEN);
                }
            }

            #[test]
            fn grammar_tags_are_accepted_and_others_are_path_safe(t in TAG, other in "\\PC{0,200}") {
                prop_assert!(Tag::new(&t).is_ok());
                if let Ok(tag) = Tag::new(&other) {
                    prop_assert!(!tag.as_str().contains(['/', '\\', '%', '\0']) && tag.as_str().len() <= 128);
                    prop_assert!(!tag.as_str().starts_with('.'));
                }
            }

            #[test]
            fn digests_round_trip(hex in "[0-9a-f]{64}", long in "[0-9a-f]{128}") {
                for s in [format!("sha256:{hex}"), format!("sha512:{long}")] {
                    let d = Digest::new(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(d.as_str(), s.as_str());
                    prop_assert_eq!(Reference::new(&s).map(|r| r.as_str().to_owned()), Ok(s.clone()));
                }
            }

            #[test]
            fn any_reference_is_a_path_safe_tag_or_digest(s in "[a-z0-9._:/-]{0,20}|\\PC{0,200}") {
                match Reference::new(&s) {
                    Ok(Reference::Tag(t)) => {
                        // One file name inside `_manifests/`, never `.` or `..`.
                        prop_assert!(!t.as_str().contains(['/', '\\', '%', '\0']) && !t.as_str().starts_with('.'));
                    }
                    Ok(Reference::Digest(d)) => {
                        prop_assert!(d.hex().bytes().all(|b| b.is_ascii_hexdigit()));
                    }
                    Err(_) => {}
                }
            }
        }
    }
}
