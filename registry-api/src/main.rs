//! The `cargohold` binary: parse flags, set up logging, load the configuration, open the
//! store, and serve until SIGTERM or Ctrl-C, draining in-flight requests.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use blob_gateway::FsStore;
use clap::{Parser, Subcommand};
use index_format::documents::IndexConfig;
use registry_api::config::{Config, LogFormat, ServeArgs, Storage};
use registry_api::{AppState, router};

/// An OCI registry that writes a static, CDN-cacheable index.
#[derive(Parser)]
#[command(name = "cargohold", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry API server.
    Serve(ServeArgs),
}

fn main() {
    if let Err(e) = run() {
        eprintln!("cargohold: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let Command::Serve(args) = cli.command;
    let config = Config::load(&args)?;
    init_tracing(config.log_format);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(serve(config))
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CARGOHOLD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into log files.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let store = match &config.storage {
        Storage::Filesystem { root, part_size } => {
            let store = FsStore::open(root)
                .with_context(|| format!("opening the filesystem store at {}", root.display()))?;
            match part_size {
                Some(n) => store.with_part_size(*n),
                None => store,
            }
        }
    };
    let backend = format!("filesystem at {}", store.root().display());
    let state = AppState::new(Arc::new(store));
    state
        .index
        .write_config(IndexConfig {
            format_version: index_format::FORMAT_VERSION,
            api: config.public_url.clone(),
            blobs: config.public_url.clone(),
        })
        .await
        .context("writing the index's config.json")?;
    let app = router(state);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(listen = %listener.local_addr()?, storage = %backend, "cargohold serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    tracing::info!("shut down cleanly");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("signal received, draining in-flight requests");
}
