//! Upload capabilities. With `upload_url` an upload session continues on another host, and
//! containerd drops `Authorization` when a `Location` names another host. So the session's
//! URL carries its own proof, minted when the `POST` was authorised: an HMAC-SHA256 over
//! the repository, the session id, the subject that started it and an expiry, under a
//! secret kept next to the users file (every process sharing the auth directory verifies
//! what any of them minted).
//!
//! The `cap` query parameter reads `<expiry>.<base64url subject>.<base64url MAC>`: only
//! characters that clients re-encoding the query (Go's `url.Values.Encode`) leave alone.

use std::path::Path;

use anyhow::Context;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The secret's file in the auth directory.
pub const KEY_FILE: &str = "upload-url.key";
/// Bytes of secret.
const KEY_BYTES: usize = 32;
/// Says what the MAC is for, so it can never be mistaken for another use of the key.
const CONTEXT: &[u8] = b"cargohold upload capability v1";

/// Why a capability was not accepted (said in the `401`, never more).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    /// Not of the capability's shape.
    #[error("the upload URL's capability is malformed")]
    Malformed,
    /// A MAC that does not match: altered, or minted for another repository or session.
    #[error("the upload URL's capability is not valid for this upload")]
    Forged,
    /// Past its expiry.
    #[error("the upload URL's capability has expired")]
    Expired,
    /// Its subject has since been removed, revoked, or lost push rights.
    #[error("the upload URL's capability was issued to someone who may no longer push here")]
    Revoked,
}

/// The key capabilities are minted and verified with.
pub struct CapabilityKey(hmac::Key);

impl CapabilityKey {
    /// Reads the secret at `path` (hex), generating it first if the file does not exist.
    pub fn load_or_generate(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            let mut secret = [0u8; KEY_BYTES];
            aws_lc_rs::rand::fill(&mut secret)
                .map_err(|_| anyhow::anyhow!("generating the upload URL key"))?;
            if super::keys::create_private(path, format!("{}\n", hex::encode(secret)).as_bytes())? {
                tracing::info!(path = %path.display(), "generated the upload URL key");
            }
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the upload URL key {}", path.display()))?;
        let secret = hex::decode(text.trim())
            .ok()
            .filter(|s| s.len() >= KEY_BYTES)
            .with_context(|| {
                format!(
                    "{} must hold at least {KEY_BYTES} bytes in hex (delete it to have one generated)",
                    path.display()
                )
            })?;
        Ok(Self::from_secret(&secret))
    }

    /// A key from raw secret bytes.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// The capability for session `id` of `repo`, started by `sub`, valid until `exp`
    /// (seconds since the epoch).
    pub fn mint(&self, repo: &str, id: &str, sub: &str, exp: u64) -> String {
        let tag = hmac::sign(&self.0, &message(repo, id, sub, exp));
        format!(
            "{exp}.{}.{}",
            URL_SAFE_NO_PAD.encode(sub),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// The subject of `cap` if it was minted here for session `id` of `repo` and has not
    /// expired by `now`.
    pub fn verify(
        &self,
        cap: &str,
        repo: &str,
        id: &str,
        now: u64,
    ) -> Result<String, CapabilityError> {
        let mut fields = cap.splitn(3, '.');
        let (Some(exp), Some(sub), Some(tag)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(CapabilityError::Malformed);
        };
        let exp: u64 = exp.parse().map_err(|_| CapabilityError::Malformed)?;
        let sub = URL_SAFE_NO_PAD
            .decode(sub)
            .ok()
            .and_then(|s| String::from_utf8(s).ok())
            .ok_or(CapabilityError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| CapabilityError::Malformed)?;
        hmac::verify(&self.0, &message(repo, id, &sub, exp), &tag)
            .map_err(|_| CapabilityError::Forged)?;
        if now >= exp {
            return Err(CapabilityError::Expired);
        }
        Ok(sub)
    }
}

/// What the MAC covers: each field length-prefixed, so no two tuples share a message.
fn message(repo: &str, id: &str, sub: &str, exp: u64) -> Vec<u8> {
    let exp = exp.to_string();
    let mut m = CONTEXT.to_vec();
    for field in [repo, id, sub, &exp] {
        m.extend_from_slice(&(field.len() as u64).to_be_bytes());
        m.extend_from_slice(field.as_bytes());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0f0e0d0c-0b0a-4908-8706-050403020100";

    #[test]
    fn a_capability_holds_only_for_its_repository_session_and_time() {
        let key = CapabilityKey::from_secret(&[7; 32]);
        let cap = key.mint("a/b", ID, "robot$ci", 1000);
        assert!(
            cap.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{cap}"
        );
        assert_eq!(key.verify(&cap, "a/b", ID, 999), Ok("robot$ci".into()));
        assert_eq!(
            key.verify(&cap, "a/b", ID, 1000),
            Err(CapabilityError::Expired)
        );
        assert_eq!(key.verify(&cap, "a/c", ID, 0), Err(CapabilityError::Forged));
        let other = "0f0e0d0c-0b0a-4908-8706-050403020101";
        assert_eq!(
            key.verify(&cap, "a/b", other, 0),
            Err(CapabilityError::Forged)
        );
        let foreign = CapabilityKey::from_secret(&[8; 32]);
        assert_eq!(
            foreign.verify(&cap, "a/b", ID, 0),
            Err(CapabilityError::Forged)
        );
        // A later expiry, or another subject, under the same MAC.
        let (_, rest) = cap.split_once('.').unwrap_or_default();
        let later = format!("2000.{rest}");
        assert_eq!(
            key.verify(&later, "a/b", ID, 0),
            Err(CapabilityError::Forged)
        );
        let parts: Vec<&str> = cap.split('.').collect();
        let alice = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode("alice"),
            parts[2]
        );
        assert_eq!(
            key.verify(&alice, "a/b", ID, 0),
            Err(CapabilityError::Forged)
        );
        for bad in ["", "x", "1.2", "a.b.c", "1..!!", &format!("{cap}x")] {
            assert!(key.verify(bad, "a/b", ID, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_is_generated_once_and_kept() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(KEY_FILE);
        let cap = CapabilityKey::load_or_generate(&path)?.mint("r", ID, "", 9);
        let again = CapabilityKey::load_or_generate(&path)?;
        assert_eq!(again.verify(&cap, "r", ID, 0), Ok(String::new()));
        std::fs::write(&path, "short")?;
        assert!(CapabilityKey::load_or_generate(&path).is_err());
        Ok(())
    }
}
