//! The `[auth]` section of the configuration file and the auth flags, merged into
//! [`AuthSettings`]. Auth is on when either the section or `--auth-dir` is given.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::AuthSettings;
use super::rules::{Rule, Rules};

/// Where users, robots and the generated key live when no directory is configured.
pub const DEFAULT_AUTH_DIR: &str = "./cargohold-auth";
/// The `service` of challenges and tokens by default.
pub const DEFAULT_SERVICE: &str = "cargohold";
/// Access token lifetime by default: short, since a token cannot be revoked.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(300);
/// Refresh token lifetime by default: a long push, or a working day of CI.
pub const DEFAULT_REFRESH_TTL: Duration = Duration::from_secs(24 * 3600);

/// `[auth]` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAuth {
    dir: Option<PathBuf>,
    service: Option<String>,
    issuer: Option<String>,
    realm: Option<String>,
    signing_key: Option<PathBuf>,
    issuer_jwks: Option<PathBuf>,
    #[serde(default, with = "crate::config::humantime_serde_opt")]
    token_ttl: Option<Duration>,
    #[serde(default, with = "crate::config::humantime_serde_opt")]
    refresh_ttl: Option<Duration>,
    basic: Option<bool>,
    #[serde(default)]
    admins: Vec<String>,
    #[serde(default)]
    rules: Vec<Rule>,
}

/// Merges the flags over the file; `None` when auth is not configured at all.
pub fn merge(
    file: Option<FileAuth>,
    dir_flag: Option<PathBuf>,
    ttl_flag: Option<Duration>,
) -> anyhow::Result<Option<AuthSettings>> {
    if file.is_none() && dir_flag.is_none() {
        return Ok(None);
    }
    let f = file.unwrap_or_default();
    let service = f.service.unwrap_or_else(|| DEFAULT_SERVICE.to_owned());
    let token_ttl = ttl_flag.or(f.token_ttl).unwrap_or(DEFAULT_TOKEN_TTL);
    anyhow::ensure!(
        token_ttl >= Duration::from_secs(1),
        "[auth] token_ttl must be at least 1s"
    );
    anyhow::ensure!(
        f.issuer_jwks.is_none() || f.signing_key.is_none(),
        "[auth] signing_key and issuer_jwks exclude each other"
    );
    anyhow::ensure!(
        f.issuer_jwks.is_none() || f.realm.is_some(),
        "[auth] issuer_jwks needs the external issuer's realm (its token URL)"
    );
    Ok(Some(AuthSettings {
        dir: dir_flag
            .or(f.dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_AUTH_DIR)),
        issuer: f.issuer.unwrap_or_else(|| service.clone()),
        service,
        realm: f.realm,
        signing_key: f.signing_key,
        issuer_jwks: f.issuer_jwks,
        token_ttl,
        refresh_ttl: f.refresh_ttl.unwrap_or(DEFAULT_REFRESH_TTL),
        basic: f.basic.unwrap_or(false),
        rules: Rules {
            rules: f.rules,
            admins: f.admins,
        },
    }))
}
