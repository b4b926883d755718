//! The `cargohold` binary: parse flags, set up logging, load the configuration, open the
//! store, and serve until SIGTERM or Ctrl-C, draining in-flight requests.

mod cli;

use std::io::IsTerminal;

use anyhow::Context;
use blob_gateway::Uploads;
use clap::{Parser, Subcommand};
use index_format::RepoName;
use index_format::documents::IndexConfig;
use registry_api::auth::Auth;
use registry_api::config::{AccessLog, Config, LogFormat, ServeArgs};
use registry_api::index::Index;
use registry_api::logging::{LogOutput, REQUEST_TARGET, Reopen};
use registry_api::upload_url::UploadUrl;
use registry_api::{App, AppState, server, storage};

/// An OCI registry that writes a static, CDN-cacheable index.
#[derive(Parser)]
#[command(name = "cargohold", version, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry API server.
    Serve(ServeArgs),
    /// Remove what nothing needs any more.
    Gc {
        #[command(subcommand)]
        what: GcCommand,
    },
    /// Check the index against its source of truth, or rebuild what is derived from it.
    Index {
        #[command(subcommand)]
        what: IndexCommand,
    },
    /// Manage the users of the auth directory (see docs/auth.md).
    User {
        #[command(subcommand)]
        what: cli::UserCommand,
    },
    /// Manage robot (CI) tokens of the auth directory.
    Token {
        #[command(subcommand)]
        what: cli::TokenCommand,
    },
    /// Print the nginx include that tells infra/nginx/ the auth mode, the challenge,
    /// which repositories are public (see docs/auth.md) and which are mirrored
    /// (docs/mirror.md).
    NginxAuth(ServeArgs),
    /// Copy upstream registries' repositories into this one (see docs/mirror-sync.md).
    Mirror {
        #[command(subcommand)]
        what: cli::mirror::MirrorCommand,
    },
    #[command(flatten)]
    Client(cli::ClientCommand),
}

#[derive(Subcommand)]
enum IndexCommand {
    /// Report every disagreement (a tag naming a missing manifest, a manifest naming an
    /// unlinked blob, a list missing a tag, ...) without changing anything; exits 1 if any.
    Check(IndexArgs),
    /// Regenerate tag lists, referrers and the catalog from the manifests and tags, and
    /// restore what can be restored. Idempotent, and safe while servers run.
    Rebuild(IndexArgs),
}

#[derive(clap::Args)]
struct IndexArgs {
    /// Only this repository (the catalog is then left alone).
    #[arg(long)]
    repo: Option<String>,
    #[command(flatten)]
    store: ServeArgs,
}

#[derive(Subcommand)]
enum GcCommand {
    /// Discard upload sessions older than --upload-max-age (as the server does hourly).
    Uploads(ServeArgs),
}

fn main() {
    if let Err(e) = run() {
        eprintln!("cargohold: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    let args = match &command {
        Command::Serve(a)
        | Command::Gc {
            what: GcCommand::Uploads(a),
        } => a,
        Command::Index {
            what: IndexCommand::Check(a) | IndexCommand::Rebuild(a),
        } => &a.store,
        Command::Mirror { what } => what.store(),
        Command::User { .. }
        | Command::Token { .. }
        | Command::NginxAuth(_)
        | Command::Client(_) => {
            return standalone(command);
        }
    };
    let config = Config::load(args)?;
    // Held until run() returns, after the runtime below is gone: dropping it writes the
    // lines still buffered, so a clean exit (SIGTERM included) loses none.
    let logs = init_tracing(config.log_format, &config.access_log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match command {
        Command::Serve(_) => runtime.block_on(serve(config, logs.reopen.clone())),
        Command::Gc { .. } => runtime.block_on(gc_uploads(config)),
        Command::User { .. }
        | Command::Token { .. }
        | Command::NginxAuth(_)
        | Command::Client(_) => Ok(()),
        Command::Index { what } => {
            let (args, repair) = match what {
                IndexCommand::Check(a) => (a, false),
                IndexCommand::Rebuild(a) => (a, true),
            };
            let repo = args.repo.as_deref().map(RepoName::new).transpose()?;
            let clean = runtime.block_on(index_check(config, repo, repair))?;
            if !clean {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Mirror { what } => {
            if !runtime.block_on(cli::mirror::run(what, config))? {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// The subcommands that need no store: the auth directory's editors, the nginx include,
/// and the client (which starts a runtime of its own).
fn standalone(command: Command) -> anyhow::Result<()> {
    match command {
        Command::User { what } => cli::user(what),
        Command::Token { what } => cli::token(what),
        Command::NginxAuth(args) => {
            let config = Config::load(&args)?;
            let include = registry_api::auth::nginx::include(
                config.auth.as_ref(),
                config.public_url.as_deref(),
            )?;
            print!("{include}");
            print!(
                "{}",
                registry_api::mirror::nginx::include(config.mirror.as_ref())
            );
            Ok(())
        }
        Command::Client(c) => cli::run(c),
        _ => Ok(()),
    }
}

/// Prints each finding; `true` when the index is (now) consistent.
async fn index_check(config: Config, repo: Option<RepoName>, repair: bool) -> anyhow::Result<bool> {
    let (store, what) = storage::open(&config).await?;
    let mirror = config.mirror.as_ref();
    let pulled_through = |r: &RepoName| mirror.is_some_and(|m| m.pulls_through(r));
    let report = Index::new(store)
        .check(repo.as_ref(), repair, &pulled_through)
        .await
        .with_context(|| format!("checking the index in {what}"))?;
    for finding in &report.findings {
        println!("{finding}");
    }
    if report.unfetched > 0 {
        println!(
            "{} references of cached manifests in pull-through repositories not fetched yet (a pull fetches them)",
            report.unfetched
        );
    }
    let verb = if repair { "repaired" } else { "found" };
    println!(
        "{} repositories, {} findings, {} {verb}",
        report.repositories,
        report.findings.len(),
        if repair {
            report.repaired
        } else {
            report.findings.len()
        },
    );
    Ok(if repair {
        report.repaired == report.findings.len()
    } else {
        report.findings.is_empty()
    })
}

async fn gc_uploads(config: Config) -> anyhow::Result<()> {
    let (store, what) = storage::open(&config).await?;
    let report = Uploads::new(store)
        .collect_garbage(config.upload_max_age)
        .await
        .with_context(|| format!("collecting abandoned uploads in {what}"))?;
    println!(
        "removed {} abandoned upload sessions, {} orphaned objects, {} leftovers of crashed writes",
        report.sessions, report.orphans, report.leftovers
    );
    Ok(())
}

/// The log outputs; dropping them writes what they still buffer.
struct Logs {
    _outputs: Vec<LogOutput>,
    /// The access log file's, for SIGHUP.
    reopen: Option<Reopen>,
}

/// Logs go to stderr, request lines (target `cargohold::request`) where `--access-log`
/// says. Both are written in batches by a thread of their own (see `logging.rs`), so a
/// request neither waits on a slow terminal or pipe nor pays a `write` per line.
fn init_tracing(format: LogFormat, access: &AccessLog) -> anyhow::Result<Logs> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CARGOHOLD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let stderr = LogOutput::stderr().context("starting the log writer")?;
    let mut outputs = Vec::new();
    let mut reopen = None;
    let requests = match access {
        AccessLog::Off => None,
        AccessLog::Stderr => Some(stderr.writer(true)),
        AccessLog::File(path) => {
            let file = LogOutput::file(path)
                .with_context(|| format!("opening the access log {}", path.display()))?;
            reopen = Some(file.reopener());
            let w = file.writer(true);
            outputs.push(file);
            Some(w)
        }
    };
    // Colours only for a person at a terminal, never into log files.
    let ansi = std::io::stderr().is_terminal() && !matches!(access, AccessLog::File(_));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(stderr.writer(false));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    outputs.push(stderr);
    // Request lines bypass tracing (logging.rs says why) but obey its filter:
    // `CARGOHOLD_LOG=warn` or `cargohold::request=off` turns them off as before.
    if let Some(w) = requests
        && tracing::enabled!(target: REQUEST_TARGET, tracing::Level::INFO)
    {
        registry_api::logging::install_request_lines(w, matches!(format, LogFormat::Json));
    }
    Ok(Logs {
        _outputs: outputs,
        reopen,
    })
}

async fn serve(config: Config, reopen: Option<Reopen>) -> anyhow::Result<()> {
    // Registered before the start-up line, so a SIGHUP from then on never kills the
    // server (the default action), with or without a file to reopen.
    #[cfg(unix)]
    {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("installing the SIGHUP handler")?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                if let Some(r) = &reopen {
                    r.reopen();
                }
            }
        });
    }
    let (store, backend) = storage::open(&config).await?;
    let auth = match config.auth.clone() {
        Some(settings) => Some(Auth::new(settings, config.public_url.clone())?),
        None => {
            tracing::warn!(
                "NO AUTHENTICATION: anyone who can reach this server may push, overwrite and \
                 delete; configure [auth] or --auth-dir before exposing it (docs/auth.md)"
            );
            None
        }
    };
    let auth_info = auth.as_ref().map(Auth::index_info);
    let upload_url = match config.upload_url.clone() {
        Some(base) => {
            let auth_dir = config.auth.as_ref().map(|a| a.dir.as_path());
            let url = UploadUrl::new(base, auth_dir, config.upload_max_age)
                .context("setting up upload_url")?;
            tracing::info!(
                upload_url = url.base(),
                "upload sessions continue at upload_url"
            );
            Some(url)
        }
        None => None,
    };
    let direct = registry_api::direct::Direct::for_store(&config.direct, &store)
        .await
        .context("probing the store for direct uploads")?;
    let mirror = match config.mirror.as_ref().filter(|m| !m.upstreams.is_empty()) {
        Some(m) => Some(std::sync::Arc::new(
            registry_api::mirror::Mirror::new(m, registry_api::mirror::default_spool())
                .context("setting up the mirror's upstreams")?,
        )),
        None => None,
    };
    let state = AppState::new(store)
        .with_direct(direct)
        .with_mirror(mirror)
        .with_blob_delivery(config.blob_delivery, config.presign_expiry)
        .with_fault(config.fault)
        .with_auth(auth)
        .with_upload_url(upload_url)
        .with_session_limits(config.sessions, config.upload_max_age);
    let gc = storage::spawn_upload_gc(state.uploads.clone(), config.upload_max_age);
    let sync = spawn_sync_schedule(&config, &state)?;
    state
        .index
        .write_config(IndexConfig {
            format_version: index_format::FORMAT_VERSION,
            api: config.public_url.clone(),
            blobs: config
                .public_blob_url()
                .or_else(|| config.public_url.clone()),
            auth: auth_info,
        })
        .await
        .context("writing the index's config.json")?;
    state
        .index
        .write_ui(&registry_api::ui::FILES)
        .await
        .context("publishing the browse UI")?;
    let app = App::new(state);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(listen = %listener.local_addr()?, storage = %backend, "cargohold serving");
    // The connection loop puts the client's address in each request's extensions
    // (`ClientIp`: the peer's, or the one a trusted proxy forwarded), for the per-address
    // login backoff and session caps.
    server::serve(
        listener,
        app,
        config.connections,
        std::sync::Arc::new(config.trusted_proxies.clone()),
        shutdown_signal(),
    )
    .await;
    gc.abort();
    if let Some(s) = sync {
        // A sync stopped mid-way is resumed by the next: nothing half-written is visible.
        s.abort();
    }
    tracing::info!("shut down cleanly");
    Ok(())
}

/// The `[[mirror.sync]]` jobs with `every`, run in the background (mirror/sync/schedule.rs).
fn spawn_sync_schedule(
    config: &Config,
    state: &AppState,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(settings) = config
        .mirror
        .as_ref()
        .filter(|m| m.syncs.iter().any(|j| j.every.is_some()))
    else {
        return Ok(None);
    };
    let syncer = registry_api::mirror::sync::Syncer::new(
        state.index.clone(),
        state.uploads.clone(),
        settings,
        registry_api::mirror::sync::SyncOptions::default(),
    )
    .context("setting up the mirror's sync schedule")?;
    Ok(registry_api::mirror::sync::spawn_schedule(
        std::sync::Arc::new(syncer),
        settings.syncs.clone(),
    ))
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
