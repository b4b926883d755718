//! Who is asking ([`Caller`], an extractor) and whether they may ([`check`]): the one
//! place every `/v2/` route is authorised, called by `dispatch` before any handler runs.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use index_format::RepoName;

use super::rules::{Action, Actions};
use super::scope::{CATALOG, REGISTRY, REPOSITORY};
use super::token::Claims;
use super::{Auth, LoginError, Principal};
use crate::error::{ApiError, OciCode};
use crate::state::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No auth configured: everything is allowed.
    Open,
    /// Auth configured, no credentials sent.
    Anonymous,
    /// A verified bearer token.
    Token(Box<Claims>),
    /// Basic credentials, checked (where `basic = true`).
    Basic(Principal),
}

impl Caller {
    /// Who is asking, as a token's `sub` names them (empty: no one in particular).
    pub fn subject(&self) -> String {
        match self {
            Self::Open | Self::Anonymous => String::new(),
            Self::Token(c) => c.sub.clone(),
            Self::Basic(p) => p.sub(),
        }
    }
}

/// What a request needs.
#[derive(Debug, Clone, Copy)]
pub enum Need<'a> {
    /// Only to be authenticated (`GET /v2/`).
    Login,
    /// The catalog.
    Catalog,
    /// An action in a repository.
    Repo(&'a RepoName, Action),
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let Some(auth) = &app.auth else {
            return Ok(Self::Open);
        };
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Self::Anonymous);
        };
        let value = value.to_str().unwrap_or_default();
        let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
        let challenge = |error: &str, message: &str| {
            unauthorized(auth, &parts.headers, None, Some(error), message)
        };
        if scheme.eq_ignore_ascii_case("bearer") {
            let s = &auth.settings;
            return match auth
                .verifier
                .verify(credentials.trim(), &s.issuer, &s.service, false)
            {
                Ok(claims) => Ok(Self::Token(Box::new(claims))),
                Err(e) => Err(challenge("invalid_token", &e.to_string())),
            };
        }
        if scheme.eq_ignore_ascii_case("basic") && auth.settings.basic {
            let (user, password) = basic_credentials(credentials)
                .ok_or_else(|| challenge("invalid_request", "malformed Basic credentials"))?;
            let peer = peer_ip(parts);
            return match auth.login(&user, &password, peer).await {
                Ok(p) => Ok(Self::Basic(p)),
                Err(e) => Err(login_error(auth, &parts.headers, e)),
            };
        }
        Err(challenge(
            "invalid_request",
            "unsupported Authorization scheme",
        ))
    }
}

/// The client's address (behind a trusted proxy, the one it forwarded).
pub fn peer_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    crate::client_ip::of(&parts.extensions)
}

/// `user:password` from a Basic header's base64.
pub fn basic_credentials(b64: &str) -> Option<(String, String)> {
    let raw = STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// The answer to a failed login.
pub fn login_error(auth: &Auth, headers: &HeaderMap, e: LoginError) -> ApiError {
    match e {
        LoginError::Bad => unauthorized(auth, headers, None, None, &e.to_string()),
        LoginError::Locked(wait) => ApiError::Challenge {
            code: OciCode::TooManyRequests,
            message: e.to_string(),
            header: header::RETRY_AFTER,
            value: wait.as_secs().max(1).to_string(),
        },
        LoginError::Internal(e) => ApiError::Internal(e),
    }
}

/// `401` with the Bearer challenge that sends the client to the token endpoint.
fn unauthorized(
    auth: &Auth,
    headers: &HeaderMap,
    scope: Option<String>,
    error: Option<&str>,
    message: &str,
) -> ApiError {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let mut challenge = format!(
        "Bearer realm=\"{}\",service=\"{}\"",
        auth.realm(host),
        auth.settings.service
    );
    if let Some(s) = scope {
        challenge.push_str(&format!(",scope=\"{s}\""));
    }
    if let Some(e) = error {
        challenge.push_str(&format!(",error=\"{e}\""));
    }
    ApiError::Challenge {
        code: OciCode::Unauthorized,
        message: message.to_owned(),
        header: header::WWW_AUTHENTICATE,
        value: challenge,
    }
}

/// The scope a client should ask for to be allowed `need`.
fn scope_for(need: Need<'_>) -> Option<String> {
    match need {
        Need::Login => None,
        Need::Catalog => Some(format!("{REGISTRY}:{CATALOG}:*")),
        Need::Repo(repo, action) => {
            // Pushing clients read too (HEAD before upload): ask for both at once.
            let actions = match action {
                Action::Pull => "pull",
                Action::Push => "pull,push",
                Action::Delete => "delete",
            };
            Some(format!("{REPOSITORY}:{repo}:{actions}"))
        }
    }
}

/// Whether `caller` may do what `need` says: `Ok`, `401` with a challenge (no or
/// insufficient credentials: a token with the right scope may help), or `403 DENIED`
/// (the caller is known and the rules say no, so no token would help).
pub fn check(
    auth: Option<&Arc<Auth>>,
    caller: &Caller,
    need: Need<'_>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let Some(auth) = auth else {
        return Ok(());
    };
    if Permit::new(Some(auth), caller).allows(need) {
        return Ok(());
    }
    let challenge = |error| {
        unauthorized(
            auth,
            headers,
            scope_for(need),
            error,
            "authentication required",
        )
    };
    let denied = || {
        ApiError::new(
            OciCode::Denied,
            "requested access to the resource is denied",
        )
    };
    match caller {
        Caller::Open => Ok(()),
        Caller::Anonymous => Err(challenge(None)),
        Caller::Basic(_) => Err(denied()),
        Caller::Token(claims) => {
            // Would a fresh token for the same subject carry this? Then the client only
            // asked for too little: challenge, so it fetches one.
            let principal = auth.principal_of(&claims.sub).map_err(ApiError::Internal)?;
            let could = match (principal, auth.issues_tokens()) {
                (Some(p), true) => Permit::new(Some(auth), &Caller::Basic(p)).allows(need),
                (_, false) => true,
                (None, true) => false,
            };
            if could {
                Err(challenge(Some("insufficient_scope")))
            } else {
                Err(denied())
            }
        }
    }
}

/// A caller's rights, for handlers that decide more than the route (mount sources, blob
/// delivery).
#[derive(Clone)]
pub struct Permit<'a> {
    auth: Option<Arc<Auth>>,
    caller: &'a Caller,
}

impl<'a> Permit<'a> {
    /// The rights of `caller` on a server with `auth` (`None`: open).
    pub fn new(auth: Option<&Arc<Auth>>, caller: &'a Caller) -> Self {
        Self {
            auth: auth.cloned(),
            caller,
        }
    }

    /// Whether the caller may do `need`.
    pub fn allows(&self, need: Need<'_>) -> bool {
        let Some(auth) = self.auth.as_deref() else {
            return true;
        };
        match need {
            Need::Login => !matches!(self.caller, Caller::Anonymous),
            Need::Catalog => match self.caller {
                Caller::Open => true,
                Caller::Anonymous => false,
                Caller::Basic(p) => auth.may_list_catalog(p),
                Caller::Token(c) => c
                    .access
                    .iter()
                    .any(|a| a.kind == REGISTRY && a.name == CATALOG),
            },
            Need::Repo(repo, action) => self.actions(repo).has(action),
        }
    }

    /// What the caller may do in `repo`: anyone's rights (anonymous pull) and their own.
    pub fn actions(&self, repo: &RepoName) -> Actions {
        let Some(auth) = self.auth.as_deref() else {
            return Actions::ALL;
        };
        let anyone = auth.rights(&Principal::Anonymous, repo.as_str());
        let own = match self.caller {
            Caller::Open => Actions::ALL,
            Caller::Anonymous => Actions::NONE,
            Caller::Basic(p) => auth.rights(p, repo.as_str()),
            Caller::Token(c) => c
                .access
                .iter()
                .filter(|a| a.kind == REPOSITORY && a.name == repo.as_str())
                .fold(Actions::NONE, |s, a| s.union(a.actions())),
        };
        anyone.union(own)
    }

    /// Whether anyone, without credentials, may pull `repo` (its blobs may then be handed
    /// out by their public CDN URL).
    pub fn is_public(&self, repo: &RepoName) -> bool {
        self.auth.as_deref().is_none_or(|a| {
            a.rights(&Principal::Anonymous, repo.as_str())
                .has(Action::Pull)
        })
    }

    /// The repositories the caller's token names for pull, for automatic mounts.
    pub fn token_repositories(&self) -> Vec<String> {
        match self.caller {
            Caller::Token(c) => c
                .access
                .iter()
                .filter(|a| a.kind == REPOSITORY && a.actions().has(Action::Pull))
                .map(|a| a.name.clone())
                .collect(),
            _ => Vec::new(),
        }
    }
}
