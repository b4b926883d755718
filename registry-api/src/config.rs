//! Configuration: command-line flags, `CARGOHOLD_*` environment variables and an optional
//! TOML file, merged in that order of precedence into one validated [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
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
    /// Multipart part size in bytes: every part but the last has exactly this size (S3
    /// and R2 need it); on the filesystem it makes the store enforce R2's rule
    #[arg(long, env = "CARGOHOLD_PART_SIZE")]
    pub part_size: Option<u64>,
    /// Log format [default: text]
    #[arg(long, env = "CARGOHOLD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// The configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    log_format: Option<LogFormat>,
    public_url: Option<String>,
    #[serde(default)]
    storage: FileStorage,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStorage {
    backend: Option<String>,
    root: Option<PathBuf>,
    part_size: Option<u64>,
}

/// Where the bytes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    Filesystem {
        root: PathBuf,
        part_size: Option<u64>,
    },
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    pub storage: Storage,
    /// Where clients reach the API, without a trailing slash.
    pub public_url: Option<String>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
pub const DEFAULT_ROOT: &str = "./cargohold-data";

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
        let backend = file.storage.backend.as_deref().unwrap_or("filesystem");
        let storage = match backend {
            "filesystem" => Storage::Filesystem {
                root: args
                    .root
                    .clone()
                    .or(file.storage.root)
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)),
                part_size: args.part_size.or(file.storage.part_size),
            },
            other => {
                anyhow::bail!("storage.backend = {other:?} is not supported; use \"filesystem\"")
            }
        };
        Ok(Self {
            listen,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            storage,
            public_url: args
                .public_url
                .clone()
                .or(file.public_url)
                .map(|u| u.trim_end_matches('/').to_owned()),
        })
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
        assert_eq!(
            c.storage,
            Storage::Filesystem {
                root: DEFAULT_ROOT.into()
            }
        );

        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:6000\"\nlog_format = \"json\"\n[storage]\nroot = \"/srv/x\"\n",
        )?;
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let c = Config::load(&args)?;
        assert_eq!(c.listen.port(), 6000);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(
            c.storage,
            Storage::Filesystem {
                root: "/srv/x".into()
            }
        );

        let args = ServeArgs {
            config: Some(path),
            root: Some("/flag".into()),
            ..ServeArgs::default()
        };
        assert_eq!(
            Config::load(&args)?.storage,
            Storage::Filesystem {
                root: "/flag".into()
            }
        );
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
