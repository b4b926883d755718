//! Digests computed while bytes stream, with a state that can be saved in the store and
//! resumed by another process (so a chunked upload survives a restart without re-reading).

use index_format::{Digest, DigestAlgorithm};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Sha256, Sha512};

#[derive(Clone)]
enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

/// A running digest over bytes seen so far. SHA-NI / ARMv8 hashing is picked at run time
/// by `sha2`.
#[derive(Clone)]
pub struct DigestWriter {
    hasher: Hasher,
    size: u64,
}

/// A [`DigestWriter`] frozen for storage: algorithm, hasher state (hex), byte count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashState {
    /// The algorithm's name: `sha256` or `sha512`.
    pub algorithm: String,
    /// The hasher's serialised internal state, hex-encoded.
    pub state: String,
    /// Bytes hashed so far.
    pub size: u64,
}

impl DigestWriter {
    /// A writer that has hashed nothing yet.
    pub fn new(algorithm: DigestAlgorithm) -> Self {
        let hasher = match algorithm {
            DigestAlgorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            DigestAlgorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        };
        Self { hasher, size: 0 }
    }

    /// Hashes `bytes`, after everything before.
    pub fn update(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// Bytes hashed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The algorithm the writer hashes with.
    pub fn algorithm(&self) -> DigestAlgorithm {
        match self.hasher {
            Hasher::Sha256(_) => DigestAlgorithm::Sha256,
            Hasher::Sha512(_) => DigestAlgorithm::Sha512,
        }
    }

    /// The digest of everything hashed so far (the writer can go on).
    pub fn digest(&self) -> Digest {
        let digest = match &self.hasher {
            Hasher::Sha256(h) => Digest::from_hash(self.algorithm(), &h.clone().finalize()),
            Hasher::Sha512(h) => Digest::from_hash(self.algorithm(), &h.clone().finalize()),
        };
        // `from_hash` only fails on a hash of the wrong length for its algorithm.
        digest.unwrap_or_else(|e| unreachable!("hash rejected: {e}"))
    }

    /// Freezes the running state for storage; [`restore`](Self::restore) resumes it.
    pub fn save(&self) -> HashState {
        let state = match &self.hasher {
            Hasher::Sha256(h) => hex::encode(h.serialize()),
            Hasher::Sha512(h) => hex::encode(h.serialize()),
        };
        HashState {
            algorithm: self.algorithm().as_str().to_owned(),
            state,
            size: self.size,
        }
    }

    /// Restores a saved state; `None` if it is corrupt or of another algorithm.
    pub fn restore(saved: &HashState) -> Option<Self> {
        let bytes = hex::decode(&saved.state).ok()?;
        let hasher = match saved.algorithm.as_str() {
            "sha256" => {
                Hasher::Sha256(Sha256::deserialize(bytes.as_slice().try_into().ok()?).ok()?)
            }
            "sha512" => {
                Hasher::Sha512(Sha512::deserialize(bytes.as_slice().try_into().ok()?).ok()?)
            }
            _ => return None,
        };
        Some(Self {
            hasher,
            size: saved.size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_and_resume() {
        let mut w = DigestWriter::new(DigestAlgorithm::Sha256);
        w.update(b"hello ");
        let saved = w.save();
        let mut resumed = DigestWriter::restore(&saved).expect("restore");
        resumed.update(b"world");
        assert_eq!(
            resumed.digest().as_str(),
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(resumed.size(), 11);
        let empty = DigestWriter::new(DigestAlgorithm::Sha512).digest();
        assert!(empty.as_str().starts_with("sha512:cf83e1357eefb8bd"));
        assert!(
            DigestWriter::restore(&HashState {
                algorithm: "sha256".into(),
                state: "00".into(),
                size: 0
            })
            .is_none()
        );
    }
}
