//! `cargohold mirror sync`: runs the configured `[[mirror.sync]]` jobs once, writing into
//! the store the server flags name (see docs/mirror-sync.md).

use std::sync::Arc;

use anyhow::Context;
use blob_gateway::Uploads;
use clap::Subcommand;
use registry_api::client::ProgressMode;
use registry_api::config::{Config, ServeArgs};
use registry_api::index::Index;
use registry_api::mirror::sync::{SyncOptions, SyncReport, Syncer};

/// `cargohold mirror ...`.
#[derive(Subcommand)]
pub enum MirrorCommand {
    /// Copy the configured repositories and tags from their upstreams into the store, once.
    Sync(SyncArgs),
}

/// `mirror sync` arguments.
#[derive(clap::Args)]
pub struct SyncArgs {
    /// Only this job, `UPSTREAM/REPOSITORY` (repeatable; default: every `[[mirror.sync]]`).
    #[arg(long = "job", value_name = "UPSTREAM/REPO")]
    jobs_named: Vec<String>,
    /// Report what would be copied, and copy nothing.
    #[arg(long)]
    dry_run: bool,
    /// No progress output (the summary line still prints).
    #[arg(long, short)]
    quiet: bool,
    /// Blobs fetched at once.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Attempts per upstream request and per blob.
    #[arg(long, default_value_t = 5)]
    retries: u32,
    #[command(flatten)]
    pub store: ServeArgs,
}

impl MirrorCommand {
    /// The store flags.
    pub fn store(&self) -> &ServeArgs {
        match self {
            Self::Sync(a) => &a.store,
        }
    }
}

/// Runs the command; `false` when some tag or job failed.
pub async fn run(command: MirrorCommand, config: Config) -> anyhow::Result<bool> {
    let MirrorCommand::Sync(args) = command;
    let settings = config
        .mirror
        .clone()
        .context("the configuration has no [mirror] section (docs/mirror-sync.md)")?;
    let jobs: Vec<_> = if args.jobs_named.is_empty() {
        settings.syncs.clone()
    } else {
        args.jobs_named
            .iter()
            .map(|named| {
                settings
                    .syncs
                    .iter()
                    .find(|j| format!("{}/{}", j.upstream, j.repository) == *named)
                    .cloned()
                    .with_context(|| format!("--job {named}: no such [[mirror.sync]] entry"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    anyhow::ensure!(!jobs.is_empty(), "no [[mirror.sync]] entries to run");
    let (store, what) = registry_api::storage::open(&config).await?;
    let options = SyncOptions {
        jobs: args.jobs,
        retries: args.retries,
        dry_run: args.dry_run,
        progress: ProgressMode::detect(args.quiet),
    };
    let syncer = Arc::new(Syncer::new(
        Index::new(store.clone()),
        Uploads::new(store),
        &settings,
        options,
    )?);
    let mut total = SyncReport::default();
    let mut ok = true;
    for job in &jobs {
        let name = format!("{}/{}", job.upstream, job.repository);
        match syncer.run(job).await {
            Ok(report) => {
                syncer.progress().line(&format!("{name}: {report}"));
                ok &= report.failed == 0;
                total.add(&report);
            }
            Err(e) => {
                eprintln!(
                    "cargohold: {name} into {what}: {:#}",
                    anyhow::Error::from(e)
                );
                ok = false;
            }
        }
    }
    let verb = if args.dry_run { "dry run" } else { "synced" };
    println!("{verb}: {} jobs, {total}", jobs.len());
    Ok(ok)
}
