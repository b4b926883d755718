//! Who the client is to a registry: credentials from `--creds`, podman's and docker's
//! auth files, and the two `WWW-Authenticate` challenges registries send (`Bearer` for the
//! token flow, `Basic`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::ClientError;

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

impl Credentials {
    /// Parses `user:password` (as `--creds` takes it).
    pub fn parse(s: &str) -> Result<Self, ClientError> {
        let (u, p) = s
            .split_once(':')
            .ok_or_else(|| ClientError::Input("--creds wants user:password".into()))?;
        Ok(Self {
            username: u.to_owned(),
            password: p.to_owned(),
        })
    }

    /// The credentials the auth files hold for `registry` (`host[:port]`): podman's
    /// (`$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`), then docker's
    /// (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`). Unreadable or absent
    /// files are skipped; a present entry that does not decode is an error.
    pub fn from_auth_files(registry: &str) -> Result<Option<Self>, ClientError> {
        for path in auth_files() {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let found = lookup(&text, registry)
                .map_err(|why| ClientError::Input(format!("{}: {why}", path.display())))?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The `Authorization` value for HTTP Basic.
    pub fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!("Basic {}", STANDARD.encode(pair))
    }
}

fn auth_files() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut files = Vec::new();
    if let Some(f) = env("REGISTRY_AUTH_FILE") {
        files.push(f);
    }
    if let Some(d) = env("XDG_RUNTIME_DIR") {
        files.push(d.join("containers/auth.json"));
    }
    match (env("DOCKER_CONFIG"), env("HOME")) {
        (Some(d), _) => files.push(d.join("config.json")),
        (None, Some(h)) => files.push(h.join(".docker/config.json")),
        (None, None) => {}
    }
    files
}

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
}

/// The entry of an auth file (docker's and podman's share the format) for `registry`.
/// Keys may be bare hosts or URLs (`https://index.docker.io/v1/`).
fn lookup(text: &str, registry: &str) -> Result<Option<Credentials>, String> {
    let file: AuthFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let wanted = if registry == "docker.io" {
        "index.docker.io"
    } else {
        registry
    };
    let host_of = |key: &str| {
        let k = key.split_once("://").map_or(key, |(_, rest)| rest);
        k.split('/').next().unwrap_or(k).to_owned()
    };
    let Some(entry) = file
        .auths
        .iter()
        .find(|(k, _)| host_of(k) == wanted)
        .map(|(_, e)| e)
    else {
        return Ok(None);
    };
    let Some(auth) = &entry.auth else {
        return Ok(None);
    };
    let decoded = STANDARD
        .decode(auth.trim())
        .map_err(|e| format!("the auth entry for {registry} is not base64: {e}"))?;
    let pair = String::from_utf8(decoded)
        .map_err(|_| format!("the auth entry for {registry} is not UTF-8"))?;
    Credentials::parse(&pair)
        .map(Some)
        .map_err(|_| format!("the auth entry for {registry} is not user:password"))
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=...`: send the credentials with every request.
    Basic,
    /// `Bearer realm=...,service=...,scope=...`: fetch a token from `realm`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` to ask for, if named.
        service: Option<String>,
        /// The scope the refused request needs, if named.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses a header value; `None` for schemes the client does not speak.
    pub fn parse(header: &str) -> Option<Self> {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Self::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        Some(Self::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    }
}

/// `k="v", k2=v2`: values may be quoted, and quoted values may hold commas (a scope's
/// `pull,push`).
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(q) => match q.split_once('"') {
                Some((v, n)) => (v, n),
                None => (q, ""),
            },
            None => after.split_once(',').unwrap_or((after, "")),
        };
        out.insert(key, value.to_owned());
        rest = next.trim_start().trim_start_matches(',');
    }
    out
}

/// A token endpoint's answer (`token`, or OAuth2's `access_token`).
#[derive(Deserialize)]
pub(super) struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
}

impl TokenResponse {
    pub(super) fn into_token(self) -> Option<String> {
        self.token.or(self.access_token).filter(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse_with_commas_inside_quotes() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
        assert_eq!(Challenge::parse("Bearer service=x"), None);
    }

    #[test]
    fn auth_files_are_matched_by_host() {
        let file = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"127.0.0.1:5000":{"auth":"YTpiOmM="}}}"#;
        let hub = lookup(file, "docker.io").expect("reads");
        assert_eq!(
            hub.map(|c| (c.username, c.password)),
            Some(("u".into(), "p".into()))
        );
        let local = lookup(file, "127.0.0.1:5000").expect("reads");
        assert_eq!(local.map(|c| c.password), Some("b:c".into()));
        assert_eq!(lookup(file, "other:1").expect("reads"), None);
        assert!(lookup(r#"{"auths":{"h":{"auth":"!!"}}}"#, "h").is_err());
    }
}
