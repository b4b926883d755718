//! `upload_url`: upload sessions continued on another host. Behind a CDN that caps request
//! bodies (Cloudflare: 100 MB on Free and Pro) the image keeps the CDN's name, while layer
//! bytes go to a host the CDN does not proxy: the upload `POST`, authorised on the CDN
//! host, answers with an absolute `Location` on `upload_url`. Under auth that URL carries
//! a capability (`auth/capability.rs`), because containerd sends no credentials to a
//! `Location` on another host; every `Location` of the session keeps it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use index_format::{RepoName, UploadId};

use crate::auth::capability::{CapabilityError, CapabilityKey, KEY_FILE};
use crate::auth::{Auth, Caller};
use crate::error::{ApiError, ApiResult};
use crate::handlers::{hv_owned, location};
use crate::route::Route;

/// The query parameter a capability travels in.
pub const PARAM: &str = "cap";

/// Where upload sessions continue.
pub struct UploadUrl {
    /// `scheme://host[:port]`.
    base: String,
    /// Mints and verifies capabilities; `None` on an open server, where upload ids (random
    /// UUIDs, bound to their repository) are all a session needs.
    key: Option<CapabilityKey>,
    /// How long a capability holds: as long as the session may live.
    ttl: Duration,
}

/// What a request's capability proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// It carries none (or the route is not an upload session).
    Absent,
    /// Valid for this session: the request needs no credentials. Holds the capability.
    Valid(String),
    /// One that does not hold, and why.
    Invalid(CapabilityError),
}

impl UploadUrl {
    /// Sessions continue at `base`; with `auth_dir`, under capabilities keyed by
    /// `<auth_dir>/upload-url.key` (generated if missing), valid for `ttl`.
    pub fn new(base: String, auth_dir: Option<&Path>, ttl: Duration) -> anyhow::Result<Self> {
        let key = auth_dir
            .map(|dir| CapabilityKey::load_or_generate(&dir.join(KEY_FILE)))
            .transpose()?;
        Ok(Self { base, key, ttl })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// What the capability `cap` of a request on `route` proves.
    pub fn presented(&self, auth: Option<&Auth>, route: &Route, cap: Option<&str>) -> Presented {
        let (Some(key), Some(auth), Route::Upload(repo, id), Some(cap)) =
            (&self.key, auth, route, cap)
        else {
            return Presented::Absent;
        };
        let now = crate::auth::token::now();
        let checked = key
            .verify(cap, repo.as_str(), id.as_str(), now)
            .and_then(|sub| match auth.may_still_push(&sub, repo.as_str()) {
                Ok(true) => Ok(()),
                Ok(false) => Err(CapabilityError::Revoked),
                Err(e) => {
                    // The users file could not be read: refuse, and say why in the log.
                    tracing::warn!(error = %format!("{e:#}"), "checking an upload capability");
                    Err(CapabilityError::Revoked)
                }
            });
        match checked {
            Ok(()) => Presented::Valid(cap.to_owned()),
            Err(e) => Presented::Invalid(e),
        }
    }
}

/// Where the `Location`s one request gives for an upload session point.
pub struct Locator {
    url: Option<Arc<UploadUrl>>,
    /// The request's own valid capability, handed on unchanged.
    presented: Option<String>,
    /// Whom a new capability names.
    sub: String,
}

impl Locator {
    /// For a request by `caller` that presented `presented`.
    pub fn new(url: Option<Arc<UploadUrl>>, presented: &Presented, caller: &Caller) -> Self {
        // Nothing copied without `upload_url`: every request, pulls included, makes one.
        let sub = match &url {
            Some(_) => caller.subject(),
            None => String::new(),
        };
        Self {
            url,
            presented: match presented {
                Presented::Valid(cap) => Some(cap.clone()),
                Presented::Absent | Presented::Invalid(_) => None,
            },
            sub,
        }
    }

    /// The `Location` of session `id` of `repo`: its path, or without `upload_url` its
    /// absolute URL there, with a capability under auth.
    pub fn session(&self, repo: &RepoName, id: &UploadId) -> ApiResult<HeaderValue> {
        let route = Route::Upload(repo.clone(), id.clone());
        let Some(url) = &self.url else {
            return location(&route);
        };
        let path = route
            .path()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no path for {route:?}")))?;
        let Some(key) = &url.key else {
            return hv_owned(format!("{}{path}", url.base));
        };
        let cap = match &self.presented {
            Some(cap) => cap.clone(),
            None => {
                let exp = crate::auth::token::now().saturating_add(url.ttl.as_secs());
                key.mint(repo.as_str(), id.as_str(), &self.sub, exp)
            }
        };
        hv_owned(format!("{}{path}?{PARAM}={cap}", url.base))
    }
}

/// Checks an `upload_url` setting: an absolute `http`/`https` URL naming only a host (and
/// port), since sessions live at `/v2/...` on it. Returns it without a trailing `/`.
pub fn parse_base(raw: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(raw).map_err(|e| anyhow::anyhow!("upload_url {raw:?}: {e}"))?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https")
            && url.host().is_some()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none(),
        "upload_url {raw:?} must be http(s)://host[:port], with no path, query or credentials"
    );
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_urls_name_a_host_only() {
        let ok = |s: &str| parse_base(s).ok();
        assert_eq!(
            ok("https://up.example.com/").as_deref(),
            Some("https://up.example.com")
        );
        assert_eq!(
            ok("http://127.0.0.1:5001").as_deref(),
            Some("http://127.0.0.1:5001")
        );
        for bad in [
            "up.example.com",
            "ftp://up.example.com",
            "https://up.example.com/v2",
            "https://up.example.com/?x=1",
            "https://user:pw@up.example.com",
        ] {
            assert!(parse_base(bad).is_err(), "{bad}");
        }
    }
}
