//! Authentication and authorisation. With no `[auth]` configuration the server is open
//! (and says so at start-up); with one, every request is denied unless a rule allows it.
//!
//! - [`keys`]: the Ed25519 signing key (from a file, or generated on first start) and an
//!   external issuer's JWKS;
//! - [`token`]: issuing and verifying JWTs (access and refresh tokens);
//! - [`scope`]: `repository:<name>:pull,push` scopes and the `access` claim;
//! - [`users`], [`robots`]: the users file (argon2id hashes) and the robot tokens file;
//! - [`rules`]: who may pull, push, delete where (pure);
//! - [`backoff`]: the brake on password guessing;
//! - [`capability`]: the HMAC that lets an upload URL on another host (`upload_url`)
//!   stand in for the credentials of the `POST` that started the session;
//! - [`caller`]: the extractor that says who is asking, and the one authorisation check
//!   `dispatch` runs per route;
//! - [`endpoint`]: `GET`/`POST /token`, the built-in token endpoint;
//! - [`nginx`]: the auth mode and public repositories as an nginx include.

mod backoff;
pub mod caller;
pub mod capability;
pub mod endpoint;
pub mod keys;
pub mod nginx;
pub mod robots;
pub mod rules;
pub mod scope;
pub mod settings;
pub mod token;
pub mod users;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use index_format::documents::AuthInfo;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use caller::{Caller, Need, Permit};
use robots::{ROBOT_PREFIX, Robot, Robots};
use rules::{Actions, Rules, Subject};
use token::Verifier;
use users::Users;

/// The validated `[auth]` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// Holds `users.toml`, `robots.toml` and, unless given elsewhere, `signing-key.pem`.
    pub dir: PathBuf,
    /// The `service` of challenges and the audience of tokens.
    pub service: String,
    /// The `iss` of tokens.
    pub issuer: String,
    /// The token endpoint clients are sent to; default `<public url>/token`.
    pub realm: Option<String>,
    /// The signing key file; default `<dir>/signing-key.pem`, generated if missing.
    pub signing_key: Option<PathBuf>,
    /// An external issuer's JWKS: tokens are verified with it, and no token is issued here.
    pub issuer_jwks: Option<PathBuf>,
    /// Access token lifetime.
    pub token_ttl: Duration,
    /// Refresh token lifetime.
    pub refresh_ttl: Duration,
    /// Whether `/v2/` requests may carry Basic credentials instead of a token.
    pub basic: bool,
    /// Who may do what where.
    pub rules: Rules,
}

/// Who has been authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials.
    Anonymous,
    /// A user of the users file.
    User(String),
    /// A robot token.
    Robot(Robot),
}

impl Principal {
    /// The token `sub` naming this principal.
    pub fn sub(&self) -> String {
        match self {
            Self::Anonymous => String::new(),
            Self::User(u) => u.clone(),
            Self::Robot(r) => format!("{ROBOT_PREFIX}{}", r.name),
        }
    }
}

/// A login that failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong name or password.
    #[error("incorrect username or password")]
    Bad,
    /// Too many recent failures for this name or address.
    #[error("too many failed logins; retry in {} s", .0.as_secs().max(1))]
    Locked(Duration),
    /// The users or robots file could not be read.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Authentication and rules of a server with auth configured.
pub struct Auth {
    settings: AuthSettings,
    verifier: Verifier,
    users: Users,
    robots: Robots,
    backoff: backoff::Backoff,
    /// Keys for `config.json`'s JWKS.
    jwks: Vec<serde_json::Value>,
    public_url: Option<String>,
}

impl Auth {
    /// Loads the keys (generating the built-in one if needed).
    pub fn new(settings: AuthSettings, public_url: Option<String>) -> anyhow::Result<Self> {
        let (verifier, jwks) = match &settings.issuer_jwks {
            Some(path) => {
                let (keys, published) = keys::load_jwks(path)?;
                (Verifier::External(keys), published)
            }
            None => {
                let path = settings
                    .signing_key
                    .clone()
                    .unwrap_or_else(|| settings.dir.join("signing-key.pem"));
                let key = keys::SigningKey::load_or_generate(&path)?;
                let jwk = key.jwk.clone();
                (Verifier::BuiltIn(key), vec![jwk])
            }
        };
        Ok(Self {
            users: Users::new(settings.dir.join("users.toml")),
            robots: Robots::new(settings.dir.join("robots.toml")),
            settings,
            verifier,
            backoff: backoff::Backoff::default(),
            jwks,
            public_url,
        })
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Whether this server issues tokens itself (no external issuer).
    pub fn issues_tokens(&self) -> bool {
        matches!(self.verifier, Verifier::BuiltIn(_))
    }

    /// What `config.json` says about auth, for clients and edges.
    pub fn index_info(&self) -> AuthInfo {
        AuthInfo {
            realm: self
                .settings
                .realm
                .clone()
                .or_else(|| self.public_url.as_ref().map(|u| format!("{u}/token"))),
            service: self.settings.service.clone(),
            issuer: self.settings.issuer.clone(),
            keys: self.jwks.clone(),
            anonymous_pull: self.settings.rules.patterns_where_anonymous_pull_is(true),
            private: self.settings.rules.patterns_where_anonymous_pull_is(false),
        }
    }

    /// The token endpoint URL, from the configuration or the request's `Host`.
    pub fn realm(&self, host: Option<&str>) -> String {
        if let Some(r) = &self.settings.realm {
            return r.clone();
        }
        match (&self.public_url, host) {
            (Some(u), _) => format!("{u}/token"),
            (None, Some(h)) => format!("http://{h}/token"),
            (None, None) => "/token".to_owned(),
        }
    }

    /// What `p` may do in `repo`.
    pub fn rights(&self, p: &Principal, repo: &str) -> Actions {
        let rules = &self.settings.rules;
        match p {
            Principal::Anonymous => rules.actions(&Subject::Anonymous, repo),
            Principal::User(u) => rules.actions(&Subject::User(u.clone()), repo),
            Principal::Robot(r) => r.actions_in(repo),
        }
    }

    /// Whether `p` may list the catalog (administrators only).
    pub fn may_list_catalog(&self, p: &Principal) -> bool {
        matches!(p, Principal::User(u) if self.settings.rules.is_admin(&Subject::User(u.clone())))
    }

    /// The principal a token's `sub` names, if it still exists (a removed user or a
    /// revoked robot is `None`).
    pub fn principal_of(&self, sub: &str) -> anyhow::Result<Option<Principal>> {
        if sub.is_empty() {
            return Ok(Some(Principal::Anonymous));
        }
        if let Some(name) = sub.strip_prefix(ROBOT_PREFIX) {
            return Ok(self.robots.get(name)?.map(Principal::Robot));
        }
        Ok(self
            .users
            .exists(sub)?
            .then(|| Principal::User(sub.to_owned())))
    }

    /// Whether the subject `sub` of an upload capability may still push to `repo`: a
    /// removed user, a revoked robot or withdrawn rights end their capabilities, as they
    /// end refresh tokens. An external issuer's subjects are not known here: its
    /// capabilities hold until they expire.
    pub fn may_still_push(&self, sub: &str, repo: &str) -> anyhow::Result<bool> {
        if !self.issues_tokens() {
            return Ok(true);
        }
        Ok(self
            .principal_of(sub)?
            .is_some_and(|p| self.rights(&p, repo).has(rules::Action::Push)))
    }

    /// Checks a name and password (or robot secret), slowed by the backoff.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<Principal, LoginError> {
        let user_key = format!("user:{name}");
        let mut keys = vec![user_key.clone()];
        if let Some(ip) = peer {
            keys.push(format!("addr:{ip}"));
        }
        if let Some(wait) = self.backoff.locked(&keys, Instant::now()) {
            return Err(LoginError::Locked(wait));
        }
        let (users, robots) = (self.users.clone(), self.robots.clone());
        let (name_owned, password) = (name.to_owned(), password.to_owned());
        // argon2 and the file reads block: off the async workers.
        let found =
            tokio::task::spawn_blocking(move || match name_owned.strip_prefix(ROBOT_PREFIX) {
                Some(robot) => Ok(robots.verify(robot, &password)?.map(Principal::Robot)),
                None => Ok::<_, anyhow::Error>(
                    users
                        .verify(&name_owned, &password)?
                        .then(|| Principal::User(name_owned.clone())),
                ),
            })
            .await
            .context("password check")??;
        match found {
            Some(p) => {
                self.backoff.succeeded(&user_key);
                Ok(p)
            }
            None => {
                self.backoff.failed(&keys, Instant::now());
                tracing::warn!(user = name, peer = ?peer, "failed login");
                Err(LoginError::Bad)
            }
        }
    }
}

/// Reads a TOML file; a missing file is the empty document.
fn read_toml<T: DeserializeOwned + Default>(path: &Path) -> anyhow::Result<T> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("parsing {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Replaces a TOML file whole (a temporary file renamed over it), readable by its owner
/// only: it holds password hashes.
fn write_toml<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    use std::io::Write;
    let text = toml::to_string(value).context("serializing")?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}
