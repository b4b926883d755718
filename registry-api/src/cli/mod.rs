//! The subcommands beside `serve`, one file each, each a thin layer over a library call:
//! the auth directory's editors (`cargohold user | token`, over `registry_api::auth`) and
//! the client (`cargohold push | pull | copy`, over `registry_api::client`), and the
//! mirror's sync (`cargohold mirror sync`, over `registry_api::mirror::sync`).

mod copy;
pub mod mirror;
mod pull;
mod push;
mod token;
mod user;

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use registry_api::auth::settings::DEFAULT_AUTH_DIR;
use registry_api::client::{Client, Credentials, Options, ProgressMode};
use registry_api::config::{Config, ServeArgs};
pub use token::{TokenCommand, token};
pub use user::{UserCommand, user};

/// The auth directory the server with these flags would use.
fn auth_dir(args: &ServeArgs) -> anyhow::Result<PathBuf> {
    Ok(Config::load(args)?
        .auth
        .map_or_else(|| PathBuf::from(DEFAULT_AUTH_DIR), |a| a.dir))
}

/// The client's subcommands.
#[derive(Subcommand)]
pub enum ClientCommand {
    /// Push an OCI layout directory or an image tarball to a registry.
    Push(push::Args),
    /// Pull an image into an OCI layout directory.
    Pull(pull::Args),
    /// Copy an image between registries.
    Copy(copy::Args),
}

/// What every client subcommand takes.
#[derive(clap::Args)]
pub struct ClientArgs {
    /// Credentials for the registries, `user:password` (else ~/.docker/config.json and
    /// $XDG_RUNTIME_DIR/containers/auth.json are read).
    #[arg(long, env = "CARGOHOLD_CREDS", hide_env_values = true)]
    creds: Option<String>,
    /// Speak plain HTTP to every registry (loopback registries always get plain HTTP).
    #[arg(long)]
    insecure: bool,
    /// Blobs transferred at once.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Attempts per request and per blob on network errors and 5xx answers.
    #[arg(long, default_value_t = 5)]
    retries: u32,
    /// Upload in PATCH chunks of this many bytes, resumable across runs (default: one PUT
    /// per blob).
    #[arg(long)]
    chunk_size: Option<u64>,
    /// Where chunked and direct multipart uploads record their sessions for a later run
    /// to resume [default: $XDG_STATE_HOME/cargohold/uploads].
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Never use cargohold's direct uploads to the bucket, even where offered.
    #[arg(long)]
    no_direct: bool,
    /// Direct uploads in parts of this many bytes, sent in parallel (default: the
    /// server's choice).
    #[arg(long)]
    part_size: Option<u64>,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

impl ClientArgs {
    fn client(&self) -> anyhow::Result<Client> {
        let creds = self.creds.as_deref().map(Credentials::parse).transpose()?;
        let mut options = Options {
            creds,
            insecure: self.insecure,
            jobs: self.jobs,
            retries: self.retries,
            chunk_size: self.chunk_size.filter(|&n| n > 0),
            progress: ProgressMode::detect(self.quiet),
            direct: !self.no_direct,
            direct_part_size: self.part_size,
            ..Options::default()
        };
        if let Some(d) = &self.state_dir {
            options.state_dir = Some(d.clone());
        }
        Ok(Client::new(options)?)
    }
}

/// Runs a client subcommand on a runtime of its own.
pub fn run(command: ClientCommand) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CARGOHOLD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match command {
            ClientCommand::Push(a) => push::run(a).await,
            ClientCommand::Pull(a) => pull::run(a).await,
            ClientCommand::Copy(a) => copy::run(a).await,
        }
    })
}
