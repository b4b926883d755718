//! The token signing key (Ed25519, JWT `EdDSA`): read from a PKCS#8 PEM file (v1 or v2),
//! or generated into that file on first start (mode 0600, PKCS#8 v1 as `openssl genpkey`
//! writes it, so OpenSSL 3 and node read it too), and its public half as a JWK for
//! `config.json` and edges. An external issuer's keys come from a JWKS file instead.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

/// The built-in issuer's key pair.
pub struct SigningKey {
    /// Signs tokens.
    pub encoding: EncodingKey,
    /// Verifies them.
    pub decoding: DecodingKey,
    /// The key id in each token's header and in the JWK.
    pub kid: String,
    /// The public key, published in `config.json`.
    pub jwk: serde_json::Value,
}

impl SigningKey {
    /// Reads the key at `path`, generating it first if the file does not exist.
    pub fn load_or_generate(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            generate(path)?;
        }
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("reading the signing key {}", path.display()))?;
        Self::from_pem(&pem).with_context(|| format!("signing key {}", path.display()))
    }

    fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let der = STANDARD
            .decode(body.trim())
            .context("the PEM body is not base64")?;
        let pair = Ed25519KeyPair::from_pkcs8(&der)
            .map_err(|e| anyhow::anyhow!("not an Ed25519 PKCS#8 key: {e}"))?;
        let public = pair.public_key().as_ref();
        let x = URL_SAFE_NO_PAD.encode(public);
        let kid = hex(&aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public).as_ref()[..8]);
        let jwk = serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x,
        });
        Ok(Self {
            encoding: EncodingKey::from_ed_der(&der),
            decoding: DecodingKey::from_ed_components(&x)?,
            kid,
            jwk,
        })
    }
}

/// A new key as PEM: PKCS#8 v1 (RFC 5208 `PrivateKeyInfo`, no public key). The v2
/// document `generate_pkcs8` writes is refused by OpenSSL 3 and node.
fn new_key_pem() -> anyhow::Result<String> {
    let der = Ed25519KeyPair::generate()
        .and_then(|pair| pair.to_pkcs8v1())
        .map_err(|_| anyhow::anyhow!("generating an Ed25519 key"))?;
    let b64 = STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok(pem)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a new key to `path` (see [`create_private`]).
fn generate(path: &Path) -> anyhow::Result<()> {
    if create_private(path, new_key_pem()?.as_bytes())? {
        tracing::info!(path = %path.display(), "generated a token signing key");
    }
    Ok(())
}

/// Writes `contents` to a new file at `path`, readable by its owner only; `false` when the
/// file exists already. `create_new`: two servers starting at once do not overwrite each
/// other's secret (the loser reads the winner's).
pub(super) fn create_private(path: &Path, contents: &[u8]) -> anyhow::Result<bool> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut f) => {
            f.write_all(contents)?;
            f.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

/// A verification key of an external issuer.
pub struct ExternalKey {
    /// Its `kid`, if the JWK names one.
    pub kid: Option<String>,
    /// The algorithm tokens signed with it must name.
    pub algorithm: Algorithm,
    /// The key.
    pub key: DecodingKey,
}

/// Reads a JWKS file (`{"keys": [...]}`); keys of algorithms we do not verify are refused.
pub fn load_jwks(path: &Path) -> anyhow::Result<(Vec<ExternalKey>, Vec<serde_json::Value>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the issuer's JWKS {}", path.display()))?;
    let set: JwkSet = serde_json::from_str(&text)
        .with_context(|| format!("parsing the JWKS {}", path.display()))?;
    let raw: serde_json::Value = serde_json::from_str(&text)?;
    let keys = set
        .keys
        .iter()
        .map(|jwk| external_key(jwk).with_context(|| format!("a key in {}", path.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!keys.is_empty(), "{} holds no keys", path.display());
    let published = raw["keys"].as_array().cloned().unwrap_or_default();
    Ok((keys, published))
}

fn external_key(jwk: &Jwk) -> anyhow::Result<ExternalKey> {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
        // The same names: `KeyAlgorithm`'s own conversion is private.
        (Some(alg), _) => alg
            .to_string()
            .parse()
            .map_err(|e| anyhow::anyhow!("unsupported alg {alg}: {e}"))?,
        (None, P::OctetKeyPair(_)) => Algorithm::EdDSA,
        (None, P::EllipticCurve(_)) => Algorithm::ES256,
        (None, P::RSA(_)) => Algorithm::RS256,
        (None, P::OctetKey(_)) => anyhow::bail!("shared-secret keys are not accepted"),
    };
    anyhow::ensure!(
        !matches!(
            algorithm,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ),
        "shared-secret keys are not accepted"
    );
    Ok(ExternalKey {
        kid: jwk.common.key_id.clone(),
        algorithm,
        key: DecodingKey::from_jwk(jwk)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_kept_and_reread() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("k/signing-key.pem");
        let a = SigningKey::load_or_generate(&path)?;
        let b = SigningKey::load_or_generate(&path)?;
        assert_eq!(a.jwk, b.jwk);
        assert_eq!(a.jwk["kty"], "OKP");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)?.permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read the key");
        }
        Ok(())
    }

    fn der_of(pem: &str) -> Vec<u8> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        STANDARD.decode(body).expect("base64")
    }

    #[test]
    fn a_new_key_is_pkcs8_v1_as_openssl_writes_it() -> anyhow::Result<()> {
        let der = der_of(&new_key_pem()?);
        // SEQUENCE(46) { INTEGER 0 (v1), SEQUENCE { OID 1.3.101.112 }, OCTET STRING { seed } }:
        // no public key, which a v2 document would append.
        assert_eq!(der.len(), 48);
        assert_eq!(
            der[..16],
            [
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20
            ]
        );
        Ok(())
    }

    #[test]
    fn a_pkcs8_v2_key_written_by_earlier_versions_still_reads() -> anyhow::Result<()> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let v2 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| anyhow::anyhow!("generate"))?;
        assert_eq!(v2.as_ref()[4], 1, "version 1 is PKCS#8 v2");
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(v2.as_ref())
        );
        let key = SigningKey::from_pem(&pem)?;
        let public = Ed25519KeyPair::from_pkcs8(v2.as_ref())
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .public_key()
            .as_ref()
            .to_vec();
        assert_eq!(key.jwk["x"], URL_SAFE_NO_PAD.encode(public));
        Ok(())
    }
}
