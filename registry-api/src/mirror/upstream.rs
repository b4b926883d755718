//! Which requests the mirror answers: a repository under an upstream's name
//! (`/v2/docker.io/library/alpine/...`), or one named with containerd's `?ns=docker.io`,
//! which is stored under the same prefixed name. Pushes there are refused unless the
//! upstream says `push = true`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, Method, StatusCode};
use index_format::RepoName;

use super::Mirror;
use super::settings::Upstream;
use crate::client::{Client, Options, ProgressMode, Registry, Repository};
use crate::error::{ApiError, OciCode};
use crate::route::Route;

/// The response header naming the namespace a `?ns=` request was answered for.
pub const OCI_NAMESPACE: HeaderName = HeaderName::from_static("oci-namespace");

/// One configured upstream and its connection (token flow, credentials kept here).
pub(super) struct UpstreamConn {
    pub settings: Upstream,
    registry: Arc<Registry>,
}

/// The longest an upstream may keep a download or an answer waiting for its next bytes.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The client every upstream connection shares: few retries, as a client is waiting and
/// the cache answers when the upstream cannot.
pub(super) fn client() -> anyhow::Result<Client> {
    let options = Options {
        creds: None,
        retries: 2,
        backoff: Duration::from_millis(200),
        state_dir: None,
        progress: ProgressMode::Quiet,
        direct: false,
        read_timeout: Some(READ_TIMEOUT),
        ..Options::default()
    };
    Ok(Client::new(options)?)
}

impl UpstreamConn {
    pub fn new(client: &Client, settings: Upstream) -> Self {
        let registry = client.registry_at(&settings.url, settings.credentials.clone());
        Self { settings, registry }
    }

    /// The upstream repository `name`.
    pub fn repository(&self, name: RepoName) -> Repository {
        Repository::on(self.registry.clone(), name)
    }
}

/// A repository the mirror answers for.
pub struct Mirrored<'a> {
    pub(super) conn: &'a UpstreamConn,
    /// The repository's name upstream (without the upstream's prefix).
    pub(super) upstream_repo: RepoName,
}

impl Mirror {
    /// The upstream whose name is `repo`'s first component, with the rest of the name;
    /// `None` for a repository of this registry's own.
    fn owner<'a>(&'a self, repo: &'a RepoName) -> Option<(&'a UpstreamConn, &'a str)> {
        let (first, rest) = repo.as_str().split_once('/')?;
        let conn = self.upstreams.iter().find(|u| u.settings.name == first)?;
        Some((conn, rest))
    }

    /// What the mirror fetches for `repo` when the index lacks it; `None` when `repo` is
    /// not under an upstream, the upstream's `repositories` leave it out, or the upstream
    /// is filled by sync only (`pull_through = false`).
    pub fn mirrored<'a>(&'a self, repo: &'a RepoName) -> Option<Mirrored<'a>> {
        let (conn, rest) = self.owner(repo)?;
        if !conn.settings.pull_through || !conn.settings.allows(rest) {
            return None;
        }
        Some(Mirrored {
            conn,
            upstream_repo: RepoName::new(rest).ok()?,
        })
    }

    /// `route` as the mirror stores it: with `?ns=` naming an upstream, its repository
    /// under the upstream's prefix, and the `OCI-Namespace` value to answer with. An
    /// `ns` naming no upstream (this registry itself, say) changes nothing.
    pub fn route_ns(
        &self,
        route: Route,
        ns: Option<&str>,
    ) -> Result<(Route, Option<String>), ApiError> {
        let Some(ns) = ns else {
            return Ok((route, None));
        };
        let Some(conn) = self.upstreams.iter().find(|u| u.settings.answers_ns(ns)) else {
            return Ok((route, None));
        };
        let prefix = &conn.settings.name;
        let route = route.map_repo(|repo| {
            // Already prefixed: a static host that rewrote the path and kept the query.
            if repo
                .as_str()
                .strip_prefix(prefix.as_str())
                .is_some_and(|r| r.starts_with('/'))
            {
                return Ok(repo);
            }
            RepoName::new(&format!("{prefix}/{repo}")).map_err(ApiError::from)
        })?;
        Ok((route, Some(ns.to_owned())))
    }

    /// Refuses a write into a mirrored namespace whose upstream does not allow pushes:
    /// what is there is the upstream's, and a push would be shadowed or lost on the next
    /// revalidation.
    pub fn check_write(&self, route: &Route, method: &Method) -> Result<(), ApiError> {
        if method == Method::GET || method == Method::HEAD {
            return Ok(());
        }
        let Some((conn, _)) = route.repo().and_then(|r| self.owner(r)) else {
            return Ok(());
        };
        if conn.settings.push {
            return Ok(());
        }
        Err(ApiError::with_status(
            OciCode::Denied,
            StatusCode::FORBIDDEN,
            format!(
                "{} is a read-only mirror of {} (push = true in its [[mirror.upstream]] allows writes)",
                conn.settings.name, conn.settings.url
            ),
        )
        .detail(serde_json::json!({ "reason": "mirrored", "upstream": conn.settings.name })))
    }
}
