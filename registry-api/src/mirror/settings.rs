//! The `[mirror]` section of the configuration file: the upstream registries a pull-through
//! cache answers for, and the repositories `cargohold mirror sync` copies ahead of time.
//!
//! ```toml
//! [[mirror.upstream]]
//! name = "docker.io"                      # path prefix and `ns` value
//! url = "https://registry-1.docker.io"
//! aliases = ["registry-1.docker.io", "index.docker.io"]
//! repositories = ["library/*"]            # none: every repository
//! tag_ttl = "10m"
//! username = "me"
//! password_file = "/run/secrets/hub"
//!
//! [[mirror.sync]]
//! upstream = "docker.io"
//! repository = "library/alpine"
//! tags = '^3\.\d+$'                       # a regex, or `semver = ">=3.18"`
//! newest = 3
//! platforms = ["linux/amd64", "linux/arm64"]
//! referrers = true
//! every = "6h"
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::auth::rules::Pattern;
use crate::client::{Credentials, Platform};

/// How long a mirrored tag is served before it is revalidated upstream, by default.
pub const DEFAULT_TAG_TTL: Duration = Duration::from_secs(10 * 60);

/// The validated `[mirror]` section.
#[derive(Debug, Clone)]
pub struct MirrorSettings {
    /// The upstream registries, in the order configured.
    pub upstreams: Vec<Upstream>,
    /// What `cargohold mirror sync` (and the server's schedule) copies.
    pub syncs: Vec<SyncJob>,
}

/// One upstream registry.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The first path component of mirrored repositories (`docker.io/library/alpine`), and
    /// the `ns` query parameter value that selects this upstream.
    pub name: String,
    /// Further `ns` values that select this upstream (`registry-1.docker.io`).
    pub aliases: Vec<String>,
    /// The registry's base URL, without a trailing slash.
    pub url: String,
    /// Credentials for the upstream's token flow; never passed on to downstream clients.
    pub credentials: Option<Credentials>,
    /// Which upstream repositories may be mirrored; empty: all.
    pub repositories: Vec<Pattern>,
    /// How long a tag is trusted before it is revalidated by `HEAD`.
    pub tag_ttl: Duration,
    /// Whether pushes into the mirrored namespace are allowed (normally read-only).
    pub push: bool,
}

impl Upstream {
    /// Whether `ns` (as containerd sends it) names this upstream.
    pub fn answers_ns(&self, ns: &str) -> bool {
        self.name == ns || self.aliases.iter().any(|a| a == ns)
    }

    /// Whether the upstream repository `repo` (without this upstream's prefix) may be mirrored.
    pub fn allows(&self, repo: &str) -> bool {
        self.repositories.is_empty() || self.repositories.iter().any(|p| p.matches(repo))
    }
}

/// Which tags of a repository a sync copies.
#[derive(Debug, Clone)]
pub enum TagFilter {
    /// Every tag.
    All,
    /// Tags matching a regular expression.
    Regex(regex::Regex),
    /// Tags that parse as semantic versions (a leading `v` allowed) inside a range.
    Semver(semver::VersionReq),
}

/// One `[[mirror.sync]]` entry.
#[derive(Debug, Clone)]
pub struct SyncJob {
    /// The upstream's `name`.
    pub upstream: String,
    /// The upstream repository (without the upstream's prefix).
    pub repository: String,
    /// Which tags.
    pub tags: TagFilter,
    /// Keep only the newest N matching tags (semver order when `semver`, else natural
    /// order: digit runs compare as numbers; see `sync/filter.rs`).
    pub newest: Option<usize>,
    /// The platforms to copy; empty: every platform of an index.
    pub platforms: Vec<Platform>,
    /// Copy referrers (signatures, SBOMs) too.
    pub referrers: bool,
    /// How often the server runs this job; `None`: only `cargohold mirror sync` runs it.
    pub every: Option<Duration>,
}

/// `[mirror]` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMirror {
    #[serde(default)]
    upstream: Vec<FileUpstream>,
    #[serde(default)]
    sync: Vec<FileSync>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUpstream {
    name: String,
    url: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    repositories: Vec<Pattern>,
    #[serde(default, with = "crate::config::humantime_serde_opt")]
    tag_ttl: Option<Duration>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    #[serde(default)]
    push: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSync {
    upstream: String,
    repository: String,
    tags: Option<String>,
    semver: Option<String>,
    newest: Option<usize>,
    #[serde(default)]
    platforms: Vec<String>,
    #[serde(default)]
    referrers: bool,
    #[serde(default, with = "crate::config::humantime_serde_opt")]
    every: Option<Duration>,
}

impl FileMirror {
    /// Validates the section; `None` when it configures nothing.
    pub fn validate(self) -> anyhow::Result<Option<MirrorSettings>> {
        if self.upstream.is_empty() && self.sync.is_empty() {
            return Ok(None);
        }
        let upstreams = self
            .upstream
            .into_iter()
            .map(FileUpstream::validate)
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (i, u) in upstreams.iter().enumerate() {
            let clash = upstreams[..i].iter().find(|v| {
                std::iter::once(&u.name)
                    .chain(&u.aliases)
                    .any(|n| v.answers_ns(n))
            });
            if let Some(v) = clash {
                anyhow::bail!(
                    "[[mirror.upstream]] {} and {} share a name or alias",
                    v.name,
                    u.name
                );
            }
        }
        let syncs = self
            .sync
            .into_iter()
            .map(|s| {
                let what = format!("[[mirror.sync]] {}/{}", s.upstream, s.repository);
                anyhow::ensure!(
                    upstreams.iter().any(|u| u.name == s.upstream),
                    "{what}: no [[mirror.upstream]] is named {}",
                    s.upstream
                );
                s.validate().context(what)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Some(MirrorSettings { upstreams, syncs }))
    }
}

impl FileUpstream {
    fn validate(self) -> anyhow::Result<Upstream> {
        let what = format!("[[mirror.upstream]] {}", self.name);
        // The name is the first component of mirrored repository names, so it must be one.
        index_format::RepoName::new(self.name.as_str())
            .ok()
            .filter(|_| !self.name.contains('/'))
            .with_context(|| format!("{what}: the name must be one repository-name component"))?;
        let url = reqwest::Url::parse(&self.url).with_context(|| format!("{what}: url"))?;
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https"),
            "{what}: url must be http or https"
        );
        let password = match (self.password, self.password_file) {
            (Some(_), Some(_)) => {
                anyhow::bail!("{what}: password and password_file exclude each other")
            }
            (Some(p), None) => Some(p),
            (None, Some(path)) => Some(
                std::fs::read_to_string(&path)
                    .with_context(|| format!("{what}: reading {}", path.display()))?
                    .trim_end()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let credentials = match (self.username, password) {
            (Some(username), Some(password)) => Some(Credentials { username, password }),
            (None, None) => None,
            _ => anyhow::bail!("{what}: username and password go together"),
        };
        let tag_ttl = self.tag_ttl.unwrap_or(DEFAULT_TAG_TTL);
        Ok(Upstream {
            name: self.name,
            aliases: self.aliases,
            url: self.url.trim_end_matches('/').to_owned(),
            credentials,
            repositories: self.repositories,
            tag_ttl,
            push: self.push,
        })
    }
}

impl FileSync {
    fn validate(self) -> anyhow::Result<SyncJob> {
        let tags = match (self.tags, self.semver) {
            (Some(_), Some(_)) => anyhow::bail!("tags and semver exclude each other"),
            (Some(re), None) => TagFilter::Regex(regex::Regex::new(&re).context("tags")?),
            (None, Some(req)) => {
                TagFilter::Semver(semver::VersionReq::parse(&req).context("semver")?)
            }
            (None, None) => TagFilter::All,
        };
        anyhow::ensure!(self.newest != Some(0), "newest must be greater than zero");
        anyhow::ensure!(
            self.every.is_none_or(|d| d >= Duration::from_secs(1)),
            "every must be at least 1s"
        );
        let platforms = self
            .platforms
            .iter()
            .map(|p| Platform::parse(p).map_err(|e| anyhow::anyhow!("platform {p}: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(SyncJob {
            upstream: self.upstream,
            repository: self.repository,
            tags,
            newest: self.newest,
            platforms,
            referrers: self.referrers,
            every: self.every,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> anyhow::Result<Option<MirrorSettings>> {
        toml::from_str::<FileMirror>(toml_text)?.validate()
    }

    #[test]
    fn upstream_and_sync_parse() -> anyhow::Result<()> {
        let m = parse(
            r#"
            [[upstream]]
            name = "docker.io"
            url = "https://registry-1.docker.io/"
            aliases = ["registry-1.docker.io"]
            repositories = ["library/*"]
            tag_ttl = "1m"
            [[sync]]
            upstream = "docker.io"
            repository = "library/alpine"
            semver = ">=3.18"
            newest = 2
            platforms = ["linux/amd64"]
            every = "1h"
            "#,
        )?
        .context("configured")?;
        let u = &m.upstreams[0];
        assert_eq!(u.url, "https://registry-1.docker.io");
        assert!(u.answers_ns("registry-1.docker.io") && u.answers_ns("docker.io"));
        assert!(u.allows("library/alpine") && !u.allows("bitnami/redis"));
        assert_eq!(u.tag_ttl, Duration::from_secs(60));
        assert!(!u.push);
        assert!(matches!(m.syncs[0].tags, TagFilter::Semver(_)));
        Ok(())
    }

    #[test]
    fn bad_sections_name_the_problem() {
        for (text, needle) in [
            (
                "[[upstream]]\nname = \"a/b\"\nurl = \"http://x\"",
                "one repository-name component",
            ),
            (
                "[[upstream]]\nname = \"x\"\nurl = \"ftp://x\"",
                "http or https",
            ),
            (
                "[[upstream]]\nname = \"x\"\nurl = \"http://x\"\nusername = \"u\"",
                "go together",
            ),
            (
                "[[sync]]\nupstream = \"nope\"\nrepository = \"r\"",
                "no [[mirror.upstream]]",
            ),
            (
                "[[upstream]]\nname = \"a\"\nurl = \"http://x\"\n[[upstream]]\nname = \"b\"\nurl = \"http://y\"\naliases = [\"a\"]",
                "share a name",
            ),
        ] {
            let err = format!(
                "{:#}",
                parse(text).err().unwrap_or_else(|| panic!("{text} parsed"))
            );
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
