//! Issuing and verifying JWTs: access tokens (short-lived, with an `access` claim) and
//! refresh tokens (long-lived, no access of their own: each use re-reads the caller's
//! current rights, so removing a user or revoking a robot ends them).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use super::keys::{ExternalKey, SigningKey};
use super::scope::ResourceAccess;

/// A token's claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Who issued it.
    pub iss: String,
    /// Who it was issued to: a user name, `robot$<name>`, or empty for anonymous.
    pub sub: String,
    /// The service it is for (refresh tokens: `<service>#refresh`).
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not before.
    pub nbf: u64,
    /// Issued at.
    pub iat: u64,
    /// A unique id.
    pub jti: String,
    /// What it grants.
    #[serde(default)]
    pub access: Vec<ResourceAccess>,
}

/// Why a token was refused (said in the challenge, never more).
#[derive(Debug, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct InvalidToken(#[from] jsonwebtoken::errors::Error);

/// Who verifies tokens.
pub enum Verifier {
    /// Our own key.
    BuiltIn(SigningKey),
    /// An external issuer's keys.
    External(Vec<ExternalKey>),
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn refresh_audience(service: &str) -> String {
    format!("{service}#refresh")
}

impl Verifier {
    /// Signs an access token (`refresh: false`) or a refresh token for `sub`.
    pub fn issue(
        &self,
        issuer: &str,
        service: &str,
        sub: &str,
        access: Vec<ResourceAccess>,
        lifetime: Duration,
        refresh: bool,
    ) -> anyhow::Result<String> {
        let Self::BuiltIn(key) = self else {
            anyhow::bail!("tokens are issued by the external issuer");
        };
        let now = now();
        let claims = Claims {
            iss: issuer.to_owned(),
            sub: sub.to_owned(),
            aud: if refresh {
                refresh_audience(service)
            } else {
                service.to_owned()
            },
            exp: now + lifetime.as_secs().max(1),
            nbf: now.saturating_sub(1),
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            access,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &key.encoding)?)
    }

    /// Verifies an access token for `service`: the signature with one of our keys and
    /// only its algorithm (so `alg: none` or an HMAC forged with the public key fail),
    /// the expiry, the audience and the issuer.
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        service: &str,
        refresh: bool,
    ) -> Result<Claims, InvalidToken> {
        let header = jsonwebtoken::decode_header(token)?;
        let (algorithm, key) = match self {
            Self::BuiltIn(k) => (Algorithm::EdDSA, &k.decoding),
            Self::External(keys) => {
                let found = keys
                    .iter()
                    .find(|k| header.kid.is_none() || k.kid == header.kid)
                    .ok_or_else(|| {
                        InvalidToken(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into())
                    })?;
                (found.algorithm, &found.key)
            }
        };
        let mut v = Validation::new(algorithm);
        let aud = if refresh {
            refresh_audience(service)
        } else {
            service.to_owned()
        };
        v.set_audience(&[aud]);
        v.set_issuer(&[issuer]);
        v.set_required_spec_claims(&["exp", "aud", "iss"]);
        // Our own clock issued the token: a second covers rounding, and an expired token
        // is refused promptly.
        v.leeway = 1;
        Ok(jsonwebtoken::decode::<Claims>(token, key, &v)?.claims)
    }
}
