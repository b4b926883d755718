//! Opens the store the configuration names, and the background work that keeps it tidy.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use blob_gateway::{FsStore, ObjectStore, S3Config, S3Store, SingleWriter, Uploads};

use crate::config::{Config, Storage};

/// How often the server looks for abandoned uploads.
const GC_INTERVAL: Duration = Duration::from_secs(3600);

/// The store, and a line describing it for the start-up log.
pub async fn open(config: &Config) -> anyhow::Result<(Arc<dyn ObjectStore>, String)> {
    match &config.storage {
        Storage::Filesystem { root, part_size } => {
            let store = FsStore::open(root)
                .with_context(|| format!("opening the filesystem store at {}", root.display()))?;
            let store = match part_size {
                Some(n) => store.with_part_size(*n),
                None => store,
            };
            let what = format!("filesystem at {}", root.display());
            Ok((Arc::new(store), what))
        }
        Storage::S3 { s3, single_writer } => open_s3(s3.clone(), *single_writer).await,
    }
}

/// Connects to the bucket and checks, on a probe key, that it honours conditional writes:
/// tag lists are only safe on a store that does, or with one writer.
async fn open_s3(
    s3: S3Config,
    single_writer: bool,
) -> anyhow::Result<(Arc<dyn ObjectStore>, String)> {
    let what = format!(
        "s3 bucket {} at {}{}",
        s3.bucket,
        s3.endpoint.as_deref().unwrap_or("AWS"),
        s3.prefix
            .as_deref()
            .map(|p| format!(" under {p}/"))
            .unwrap_or_default()
    );
    let store = S3Store::connect(s3)
        .await
        .context("configuring the S3 store")?;
    let probe = store.probe_conditional_writes().await.with_context(|| {
        format!("probing {what} (is it reachable, and are the credentials right?)")
    })?;
    if probe.enforced() {
        return Ok((Arc::new(store), what));
    }
    if !single_writer {
        anyhow::bail!(
            "{what} does not honour conditional writes ({probe}): concurrent pushes could \
             silently lose tags. Use a store that supports If-None-Match and If-Match (AWS S3, \
             R2, MinIO, LocalStack), or, if this is the only cargohold process that will ever \
             write to the bucket, start it with --single-writer (see docs/deploy-s3.md)"
        );
    }
    tracing::warn!(
        %probe,
        "the store ignores conditional writes: running as its single writer. A second cargohold \
         process writing to this bucket can lose tags"
    );
    Ok((
        Arc::new(SingleWriter::new(store)),
        format!("{what} (single writer)"),
    ))
}

/// Collects abandoned uploads now and then, for as long as the server runs. A failed
/// round is logged and retried at the next one: it never affects requests.
pub fn spawn_upload_gc(uploads: Uploads, max_age: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(GC_INTERVAL);
        loop {
            tick.tick().await;
            match uploads.collect_garbage(max_age).await {
                Ok(r) if r == blob_gateway::GcReport::default() => {}
                Ok(r) => tracing::info!(
                    sessions = r.sessions,
                    orphans = r.orphans,
                    leftovers = r.leftovers,
                    "removed abandoned uploads"
                ),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "upload garbage collection failed")
                }
            }
        }
    })
}
