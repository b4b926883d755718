//! The server's schedule: every `[[mirror.sync]]` job with `every` runs in one task, first
//! at start-up, then each `every` after its last run began. Jobs run one at a time, so runs
//! never overlap (a run longer than its period is followed at once by the next, not
//! stacked); a failure is logged and the job tried again next period.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Syncer;
use crate::mirror::settings::SyncJob;

/// Starts the schedule of `jobs` that have `every`; `None` when none has.
pub fn spawn_schedule(syncer: Arc<Syncer>, jobs: Vec<SyncJob>) -> Option<JoinHandle<()>> {
    let jobs: Vec<_> = jobs
        .into_iter()
        .filter_map(|j| j.every.map(|every| (j, every)))
        .collect();
    if jobs.is_empty() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut due = vec![Instant::now(); jobs.len()];
        loop {
            for ((job, every), next) in jobs.iter().zip(due.iter_mut()) {
                if *next > Instant::now() {
                    continue;
                }
                let began = Instant::now();
                let name = format!("{}/{}", job.upstream, job.repository);
                match syncer.run(job).await {
                    Ok(report) if report.failed == 0 => {
                        tracing::info!(job = %name, %report, "mirror sync done");
                    }
                    Ok(report) => tracing::warn!(job = %name, %report, "mirror sync had failures"),
                    Err(e) => {
                        tracing::warn!(job = %name, error = %format!("{:#}", anyhow::Error::from(e)), "mirror sync failed")
                    }
                }
                *next = began + *every;
            }
            if let Some(first) = due.iter().min() {
                tokio::time::sleep_until(*first).await;
            }
        }
    }))
}
