//! Configuration: command-line flags, `CARGOHOLD_*` environment variables and an optional
//! TOML file, merged in that order of precedence into one validated [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use blob_gateway::{FaultPoint, S3Config};
use serde::Deserialize;

use crate::server::ConnectionLimits;
use crate::sessions::SessionLimits;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Where the per-request lines (target `cargohold::request`) go.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum AccessLog {
    /// Not written at all (errors are still logged to stderr).
    Off,
    /// With the other logs.
    #[default]
    Stderr,
    /// Appended to this file, reopened on SIGHUP (for logrotate).
    File(PathBuf),
}

impl std::str::FromStr for AccessLog {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" => Err("expected off, stderr or a file path".to_owned()),
            "off" => Ok(Self::Off),
            "stderr" => Ok(Self::Stderr),
            path => Ok(Self::File(PathBuf::from(path))),
        }
    }
}

impl TryFrom<String> for AccessLog {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Which store holds the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The embedded default: a directory on local disk.
    Filesystem,
    /// An S3-compatible bucket (AWS S3, R2, MinIO, LocalStack).
    S3,
}

/// How blob downloads are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BlobDelivery {
    /// `307` to a presigned or CDN URL where the store can give one; bytes stream through
    /// the API otherwise (the filesystem).
    #[default]
    Redirect,
    /// Always stream the bytes through the API (for buckets clients cannot reach).
    Proxy,
}

/// `cargohold serve` flags; every one also reads a `CARGOHOLD_*` variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:5000]
    #[arg(long, env = "CARGOHOLD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory of the filesystem store [default: ./cargohold-data]
    #[arg(long, env = "CARGOHOLD_ROOT")]
    pub root: Option<PathBuf>,
    /// TOML configuration file (see docs/configuration.md)
    #[arg(long, env = "CARGOHOLD_CONFIG")]
    pub config: Option<PathBuf>,
    /// The URL clients reach the API at, recorded in the index's config.json
    #[arg(long, env = "CARGOHOLD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Answer upload POSTs with a Location on this base URL (a host the CDN does not
    /// proxy), so pushes of any size keep the registry's name (see docs/configuration.md)
    #[arg(long, env = "CARGOHOLD_UPLOAD_URL")]
    pub upload_url: Option<String>,
    /// Multipart part size in bytes: every part but the last has exactly this size (S3
    /// and R2 need it); on the filesystem it makes the store enforce R2's rule
    #[arg(long, env = "CARGOHOLD_PART_SIZE")]
    pub part_size: Option<u64>,
    /// Discard upload sessions not closed within this time, e.g. "24h" [default: 24h]
    #[arg(long, env = "CARGOHOLD_UPLOAD_MAX_AGE", value_parser = humantime::parse_duration)]
    pub upload_max_age: Option<Duration>,
    /// Log format [default: text]
    #[arg(long, env = "CARGOHOLD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Request lines: off, stderr, or a file reopened on SIGHUP ("./off" for a file named
    /// off) [default: stderr]
    #[arg(long, env = "CARGOHOLD_ACCESS_LOG", value_parser = str::parse::<AccessLog>)]
    pub access_log: Option<AccessLog>,
    /// Storage backend [default: filesystem]
    #[arg(long, env = "CARGOHOLD_STORAGE", value_enum)]
    pub storage: Option<Backend>,
    /// S3 bucket
    #[arg(long, env = "CARGOHOLD_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// S3 region ("auto" for R2) [default: us-east-1]
    #[arg(long, env = "CARGOHOLD_S3_REGION")]
    pub s3_region: Option<String>,
    /// S3 endpoint URL, for R2 and self-hosted servers [default: AWS]
    #[arg(long, env = "CARGOHOLD_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Key prefix inside the bucket
    #[arg(long, env = "CARGOHOLD_S3_PREFIX")]
    pub s3_prefix: Option<String>,
    /// Path-style addressing (most self-hosted servers need it)
    #[arg(long, env = "CARGOHOLD_S3_PATH_STYLE", num_args = 0..=1, default_missing_value = "true")]
    pub s3_path_style: Option<bool>,
    /// S3 access key id [default: the AWS credential chain]
    #[arg(long, env = "CARGOHOLD_S3_ACCESS_KEY")]
    pub s3_access_key: Option<String>,
    /// S3 secret key
    #[arg(long, env = "CARGOHOLD_S3_SECRET_KEY", hide_env_values = true)]
    pub s3_secret_key: Option<String>,
    /// CDN base URL serving the bucket; blob downloads redirect to `<url>/<key>`
    #[arg(long, env = "CARGOHOLD_PUBLIC_BLOB_URL")]
    pub public_blob_url: Option<String>,
    /// Blob downloads: redirect (to presigned/CDN URLs) or proxy [default: redirect]
    #[arg(long, env = "CARGOHOLD_BLOB_DELIVERY", value_enum)]
    pub blob_delivery: Option<BlobDelivery>,
    /// How long presigned blob URLs stay valid [default: 5m]
    #[arg(long, env = "CARGOHOLD_PRESIGN_EXPIRY", value_parser = humantime::parse_duration)]
    pub presign_expiry: Option<Duration>,
    /// Run as the bucket's only writer on a store that ignores conditional writes
    #[arg(long, env = "CARGOHOLD_SINGLE_WRITER", num_args = 0..=1, default_missing_value = "true")]
    pub single_writer: Option<bool>,
    /// Require authentication: users, robots and the signing key live here (see
    /// docs/auth.md; the `[auth]` config section turns it on too)
    #[arg(long, env = "CARGOHOLD_AUTH_DIR")]
    pub auth_dir: Option<PathBuf>,
    /// Lifetime of issued access tokens [default: 5m]
    #[arg(long, env = "CARGOHOLD_TOKEN_TTL", value_parser = humantime::parse_duration)]
    pub token_ttl: Option<Duration>,
    /// The direct-upload extension's flags.
    #[command(flatten)]
    pub direct: crate::direct::DirectArgs,
    /// Close a connection whose request header has not arrived within this time (also
    /// the keep-alive idle timeout) [default: 30s]
    #[arg(long, env = "CARGOHOLD_HEADER_TIMEOUT", value_parser = humantime::parse_duration)]
    pub header_timeout: Option<Duration>,
    /// Fail a request whose body sends no byte for this long [default: 60s]
    #[arg(long, env = "CARGOHOLD_BODY_TIMEOUT", value_parser = humantime::parse_duration)]
    pub body_timeout: Option<Duration>,
    /// Connections served at once [default: 1024]
    #[arg(long, env = "CARGOHOLD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Upload sessions this process has open at once [default: 1000]
    #[arg(long, env = "CARGOHOLD_MAX_UPLOAD_SESSIONS")]
    pub max_upload_sessions: Option<usize>,
    /// Upload sessions one client address has open at once [default: 100]
    #[arg(long, env = "CARGOHOLD_MAX_UPLOAD_SESSIONS_PER_CLIENT")]
    pub max_upload_sessions_per_client: Option<usize>,
    /// A proxy (address or network) whose X-Forwarded-For / CF-Connecting-IP names the
    /// client; repeat it, or comma-separate [default: none]
    #[arg(
        long = "trusted-proxy",
        env = "CARGOHOLD_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
}

/// The configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    log_format: Option<LogFormat>,
    access_log: Option<AccessLog>,
    public_url: Option<String>,
    upload_url: Option<String>,
    #[serde(default, with = "humantime_serde_opt")]
    upload_max_age: Option<Duration>,
    #[serde(default)]
    storage: FileStorage,
    auth: Option<crate::auth::settings::FileAuth>,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    mirror: crate::mirror::settings::FileMirror,
}

/// The `[limits]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    #[serde(default, with = "humantime_serde_opt")]
    header_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde_opt")]
    body_timeout: Option<Duration>,
    max_connections: Option<usize>,
    max_upload_sessions: Option<usize>,
    max_upload_sessions_per_client: Option<usize>,
    trusted_proxies: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStorage {
    backend: Option<Backend>,
    root: Option<PathBuf>,
    part_size: Option<u64>,
    bucket: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    prefix: Option<String>,
    path_style: Option<bool>,
    access_key: Option<String>,
    secret_key: Option<String>,
    public_blob_url: Option<String>,
    blob_delivery: Option<BlobDelivery>,
    #[serde(default, with = "humantime_serde_opt")]
    presign_expiry: Option<Duration>,
    single_writer: Option<bool>,
}

/// Where the bytes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// A directory on local disk.
    Filesystem {
        /// The directory.
        root: PathBuf,
        /// R2's equal-part rule enforced with this part size (tests and R2 stand-ins).
        part_size: Option<u64>,
    },
    /// An S3-compatible bucket.
    S3 {
        /// The bucket and how to reach it.
        s3: S3Config,
        /// Accept a store that ignores conditional writes, as its only writer.
        single_writer: bool,
    },
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address the API listens on.
    pub listen: SocketAddr,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// Where per-request lines go, if anywhere.
    pub access_log: AccessLog,
    /// Where blobs and the index are stored.
    pub storage: Storage,
    /// Where clients reach the API, without a trailing slash.
    pub public_url: Option<String>,
    /// Where upload sessions continue (`scheme://host[:port]`), if not where they start.
    pub upload_url: Option<String>,
    /// Upload sessions older than this are garbage.
    pub upload_max_age: Duration,
    /// How blob downloads are answered.
    pub blob_delivery: BlobDelivery,
    /// How long a presigned download URL lives.
    pub presign_expiry: Duration,
    /// Authentication and access rules; `None`: the server is open to anyone.
    pub auth: Option<crate::auth::AuthSettings>,
    /// The direct-upload extension's settings (flags only).
    pub direct: crate::direct::DirectArgs,
    /// Header and body timeouts and the connection cap.
    pub connections: ConnectionLimits,
    /// Caps on open upload sessions.
    pub sessions: SessionLimits,
    /// Proxies whose forwarding headers name the client (the backoff's and the session
    /// cap's address).
    pub trusted_proxies: crate::client_ip::TrustedProxies,
    /// Upstream registries mirrored, and sync jobs; `None`: not a mirror.
    pub mirror: Option<crate::mirror::settings::MirrorSettings>,
    /// Crash tests only: the step of closing an upload after which the process aborts,
    /// from `CARGOHOLD_TEST_CRASH_AFTER` (deliberately no flag or config key).
    pub fault: Option<FaultPoint>,
}

/// Where `serve` listens with no configuration: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
/// The filesystem store of the embedded default.
pub const DEFAULT_ROOT: &str = "./cargohold-data";
/// Upload sessions older than this are abandoned and collected.
pub const DEFAULT_UPLOAD_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Lifetime of a presigned download URL.
pub const DEFAULT_PRESIGN_EXPIRY: Duration = Duration::from_secs(300);
/// How long a request's header may take to arrive.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request body may pause.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Upload sessions open at once, in all.
pub const DEFAULT_MAX_UPLOAD_SESSIONS: usize = 1000;
/// Upload sessions open at once, per client address.
pub const DEFAULT_MAX_UPLOAD_SESSIONS_PER_CLIENT: usize = 100;
/// The region used when none is configured.
pub const DEFAULT_S3_REGION: &str = "us-east-1";

/// `"24h"`-style durations in the TOML file (every section's).
pub(crate) mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl Config {
    /// Merges flags (and their environment variables) over the file over the defaults.
    pub fn load(args: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = match args.listen.or(file.listen) {
            Some(a) => a,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        let fs = file.storage;
        let limits = file.limits;
        let storage = match args.storage.or(fs.backend).unwrap_or(Backend::Filesystem) {
            Backend::Filesystem => Storage::Filesystem {
                root: args
                    .root
                    .clone()
                    .or(fs.root)
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)),
                part_size: args.part_size.or(fs.part_size),
            },
            Backend::S3 => {
                let bucket = args.s3_bucket.clone().or(fs.bucket).context(
                    "the s3 backend needs a bucket: --s3-bucket, CARGOHOLD_S3_BUCKET or [storage] bucket",
                )?;
                let region = args.s3_region.clone().or(fs.region);
                let mut s3 = S3Config::new(bucket, region.as_deref().unwrap_or(DEFAULT_S3_REGION));
                s3.endpoint = args.s3_endpoint.clone().or(fs.endpoint);
                s3.prefix = args.s3_prefix.clone().or(fs.prefix);
                s3.path_style = args.s3_path_style.or(fs.path_style).unwrap_or(false);
                s3.access_key = args.s3_access_key.clone().or(fs.access_key);
                s3.secret_key = args.s3_secret_key.clone().or(fs.secret_key);
                s3.public_base_url = args
                    .public_blob_url
                    .clone()
                    .or(fs.public_blob_url)
                    .map(|u| u.trim_end_matches('/').to_owned());
                if let Some(n) = args.part_size.or(fs.part_size) {
                    s3.part_size = n;
                }
                s3.validate().context("invalid S3 storage configuration")?;
                Storage::S3 {
                    s3,
                    single_writer: args.single_writer.or(fs.single_writer).unwrap_or(false),
                }
            }
        };
        let blob_delivery = args.blob_delivery.or(fs.blob_delivery).unwrap_or_default();
        let presign_expiry = args
            .presign_expiry
            .or(fs.presign_expiry)
            .unwrap_or(DEFAULT_PRESIGN_EXPIRY);
        Ok(Self {
            listen,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            access_log: args
                .access_log
                .clone()
                .or(file.access_log)
                .unwrap_or_default(),
            storage,
            public_url: args
                .public_url
                .clone()
                .or(file.public_url)
                .map(|u| u.trim_end_matches('/').to_owned()),
            upload_url: args
                .upload_url
                .as_deref()
                .or(file.upload_url.as_deref())
                .map(crate::upload_url::parse_base)
                .transpose()?,
            upload_max_age: args
                .upload_max_age
                .or(file.upload_max_age)
                .unwrap_or(DEFAULT_UPLOAD_MAX_AGE),
            blob_delivery,
            presign_expiry,
            auth: crate::auth::settings::merge(file.auth, args.auth_dir.clone(), args.token_ttl)?,
            direct: args.direct.clone(),
            connections: ConnectionLimits {
                header_timeout: positive(
                    "header_timeout",
                    args.header_timeout.or(limits.header_timeout),
                    DEFAULT_HEADER_TIMEOUT,
                )?,
                body_timeout: positive(
                    "body_timeout",
                    args.body_timeout.or(limits.body_timeout),
                    DEFAULT_BODY_TIMEOUT,
                )?,
                max_connections: positive(
                    "max_connections",
                    args.max_connections.or(limits.max_connections),
                    DEFAULT_MAX_CONNECTIONS,
                )?,
            },
            sessions: SessionLimits {
                total: positive(
                    "max_upload_sessions",
                    args.max_upload_sessions.or(limits.max_upload_sessions),
                    DEFAULT_MAX_UPLOAD_SESSIONS,
                )?,
                per_client: positive(
                    "max_upload_sessions_per_client",
                    args.max_upload_sessions_per_client
                        .or(limits.max_upload_sessions_per_client),
                    DEFAULT_MAX_UPLOAD_SESSIONS_PER_CLIENT,
                )?,
            },
            trusted_proxies: crate::client_ip::TrustedProxies::parse(
                if args.trusted_proxies.is_empty() {
                    limits.trusted_proxies.as_deref().unwrap_or_default()
                } else {
                    &args.trusted_proxies
                },
            )?,
            mirror: file.mirror.validate()?,
            fault: match std::env::var("CARGOHOLD_TEST_CRASH_AFTER") {
                Ok(point) => Some(point.parse().map_err(anyhow::Error::msg)?),
                Err(_) => None,
            },
        })
    }
}

/// `value`, or `default` when unset; zero is refused (a zero limit would refuse everything).
fn positive<T: Default + PartialEq>(name: &str, value: Option<T>, default: T) -> anyhow::Result<T> {
    match value {
        Some(v) if v == T::default() => anyhow::bail!("{name} must be greater than zero"),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

impl Config {
    /// Where blobs are downloaded from when not through the API: the CDN base, if any.
    pub fn public_blob_url(&self) -> Option<String> {
        match &self.storage {
            Storage::S3 { s3, .. } => s3.public_base_url.as_ref().map(|base| {
                match s3.prefix.as_deref().map(|p| p.trim_matches('/')) {
                    Some(p) if !p.is_empty() => format!("{base}/{p}"),
                    _ => base.clone(),
                }
            }),
            Storage::Filesystem { .. } => None,
        }
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_file_and_flags_merge() -> anyhow::Result<()> {
        let c = Config::load(&ServeArgs::default())?;
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.access_log, AccessLog::Stderr);
        assert_eq!(
            c.storage,
            Storage::Filesystem {
                root: DEFAULT_ROOT.into(),
                part_size: None,
            }
        );

        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:6000\"\nupload_url = \"https://up.example.com/\"\nlog_format = \"json\"\naccess_log = \"/var/log/ch.log\"\nupload_max_age = \"2h\"\n[storage]\nroot = \"/srv/x\"\n",
        )?;
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let c = Config::load(&args)?;
        assert_eq!(c.listen.port(), 6000);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.access_log, AccessLog::File("/var/log/ch.log".into()));
        assert_eq!(c.upload_max_age, Duration::from_secs(7200));
        assert_eq!(c.upload_url.as_deref(), Some("https://up.example.com"));
        assert_eq!(
            c.storage,
            Storage::Filesystem {
                root: "/srv/x".into(),
                part_size: None,
            }
        );

        let args = ServeArgs {
            config: Some(path),
            root: Some("/flag".into()),
            access_log: Some("off".parse().map_err(anyhow::Error::msg)?),
            ..ServeArgs::default()
        };
        assert_eq!(Config::load(&args)?.access_log, AccessLog::Off);
        assert_eq!(
            Config::load(&args)?.storage,
            Storage::Filesystem {
                root: "/flag".into(),
                part_size: None,
            }
        );
        Ok(())
    }

    #[test]
    fn s3_settings_from_file_and_flags() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s3.toml");
        std::fs::write(
            &path,
            "[storage]\nbackend = \"s3\"\nbucket = \"reg\"\nregion = \"auto\"\nendpoint = \"https://acct.r2.cloudflarestorage.com\"\npath_style = true\npublic_blob_url = \"https://cdn.example.com/\"\nprefix = \"p\"\npresign_expiry = \"10m\"\nblob_delivery = \"proxy\"\n",
        )?;
        let args = ServeArgs {
            config: Some(path),
            part_size: Some(16 << 20),
            ..ServeArgs::default()
        };
        let c = Config::load(&args)?;
        let Storage::S3 { s3, single_writer } = &c.storage else {
            anyhow::bail!("expected s3, got {:?}", c.storage);
        };
        assert_eq!(s3.bucket, "reg");
        assert_eq!(s3.region, "auto");
        assert!(s3.path_style);
        assert_eq!(s3.part_size, 16 << 20);
        assert!(!single_writer);
        assert_eq!(c.blob_delivery, BlobDelivery::Proxy);
        assert_eq!(c.presign_expiry, Duration::from_secs(600));
        assert_eq!(
            c.public_blob_url().as_deref(),
            Some("https://cdn.example.com/p")
        );
        // Parts below S3's 5 MiB minimum are refused at start-up.
        let bad = ServeArgs {
            storage: Some(Backend::S3),
            s3_bucket: Some("b".into()),
            part_size: Some(1024),
            ..ServeArgs::default()
        };
        assert!(Config::load(&bad).is_err());
        let no_bucket = ServeArgs {
            storage: Some(Backend::S3),
            ..ServeArgs::default()
        };
        assert!(Config::load(&no_bucket).is_err());
        Ok(())
    }

    #[test]
    fn unknown_keys_and_backends_are_errors() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        for (i, text) in ["bogus = 1", "[storage]\nbackend = \"ftp\""]
            .iter()
            .enumerate()
        {
            let path = dir.path().join(format!("{i}.toml"));
            std::fs::write(&path, text)?;
            let args = ServeArgs {
                config: Some(path),
                ..ServeArgs::default()
            };
            assert!(Config::load(&args).is_err(), "{text}");
        }
        Ok(())
    }
}
