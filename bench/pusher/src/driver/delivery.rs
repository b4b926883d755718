//! Blob delivery, cargohold only: pushes to S3, and pulls in each delivery mode (S3
//! redirect, S3 proxy, filesystem from the API, filesystem through nginx) with the CPU
//! time the API process (and nginx's workers) spent per GB pulled.

use std::time::Duration;

use serde::Serialize;

use super::procfs;
use super::server::{push_rows, PushRows};
use super::Run;
use crate::oci;
use crate::workload::{self, ExpectRedirect};
use crate::Res;

/// Delivery figures go in this column.
const COLUMN: &str = "cargohold";

#[derive(Debug, clap::Args)]
pub struct PrepareArgs {
    /// Name for the step records (cargohold-s3, cargohold-fs).
    #[arg(long)]
    label: String,
    #[arg(long)]
    url: String,
    /// Also measure the S3 push rows.
    #[arg(long)]
    s3: bool,
}

/// Warm-up, the S3 push rows with `--s3`, then the blob every pull mode downloads.
pub async fn prepare(run: &mut Run, a: PrepareArgs) -> Res<()> {
    let k = run.state.knobs.clone();
    let (label, base) = (a.label.as_str(), a.url.as_str());
    let c = oci::client(Duration::from_secs(60), 4)?;
    run.step(
        label,
        "warm-up image",
        oci::push_small_image(&c, base, "bench/warm", "latest", 3),
    )
    .await;
    if a.s3 {
        let rows = PushRows {
            keys: ["s3_push_mono", "s3_push_chunked"],
            seeds: [11, 12],
            pushers: k.s3_pushers.unwrap_or(k.pushers),
            warm_mib: 8,
            warm_blob_mib: 2,
            total_mib: k.s3_push_mib,
            blob_mib: k.s3_blob_mib,
        };
        push_rows(run, label, COLUMN, base, rows).await;
    }
    let blob = workload::push_blob(base, "bench/pull", k.pull_mib, 17);
    run.state.pull_digest = run
        .step(label, &format!("push {} MiB blob", k.pull_mib), blob)
        .await;
    run.save()
}

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Row key prefix: s3_redirect, s3_proxy, fs_direct, fs_nginx.
    #[arg(long)]
    key: String,
    /// Where to pull from (the API, or nginx in front of it).
    #[arg(long)]
    url: String,
    /// The API process, whose CPU time is counted.
    #[arg(long)]
    pid: u32,
    /// nginx's master: its workers' CPU time is counted too.
    #[arg(long)]
    nginx_pid: Option<u32>,
    #[arg(long, value_enum)]
    expect_redirect: ExpectRedirect,
}

#[derive(Serialize)]
struct CpuTicks {
    clk_tck: u64,
    api: (Option<u64>, Option<u64>),
    nginx_workers: Vec<u32>,
    nginx: (Option<u64>, Option<u64>),
}

/// One unmeasured download, then the measured ones with CPU ticks read around them.
pub async fn pull(run: &mut Run, a: PullArgs) -> Res<()> {
    let k = run.state.knobs.clone();
    let Some(digest) = run.state.pull_digest.clone() else {
        run.state
            .notes
            .push(format!("{}: skipped, no blob was pushed to pull", a.key));
        return run.save();
    };
    let count = if a.key.starts_with("s3") {
        k.s3_pull_count
    } else {
        k.fs_pull_count
    };
    let url = format!("{}/v2/bench/pull/blobs/{digest}", a.url);
    let warm = workload::get_blob(&url, 1, 0, f64::INFINITY, a.expect_redirect);
    run.step(&a.key, "warm-up download", warm).await;
    let workers = a.nginx_pid.map(procfs::children).unwrap_or_default();
    let mut ticks = CpuTicks {
        clk_tck: procfs::clk_tck(),
        api: (None, None),
        nginx_workers: workers.clone(),
        nginx: (None, None),
    };
    ticks.api.0 = procfs::cpu_ticks(&[a.pid]);
    ticks.nginx.0 = procfs::cpu_ticks(&workers);
    let get = workload::get_blob(&url, count, 0, k.pull_secs as f64, a.expect_redirect);
    let r = run.step(&a.key, "downloads", get).await;
    ticks.api.1 = procfs::cpu_ticks(&[a.pid]);
    ticks.nginx.1 = procfs::cpu_ticks(&workers);
    let Some(r) = r else { return run.save() };
    let per_gb = |t: (Option<u64>, Option<u64>)| match t {
        (Some(t0), Some(t1)) if r.bytes > 0 => {
            Some((t1 - t0) as f64 / ticks.clk_tck as f64 / (r.bytes as f64 / 1e9))
        }
        _ => None,
    };
    run.state.put(COLUMN, &format!("{}_mbs", a.key), r.mb_per_s);
    run.state
        .put(COLUMN, &format!("{}_n", a.key), r.downloads as f64);
    match per_gb(ticks.api) {
        Some(v) => run.state.put(COLUMN, &format!("{}_cpu", a.key), v),
        None => run
            .state
            .notes
            .push(format!("{}: API CPU not readable", a.key)),
    }
    if !workers.is_empty() {
        if let Some(v) = per_gb(ticks.nginx) {
            run.state.put(COLUMN, &format!("{}_ngx_cpu", a.key), v);
        }
    }
    run.step(&a.key, "cpu ticks", async { Ok(ticks) }).await;
    if !procfs::alive(a.pid) {
        run.state
            .notes
            .push(format!("{}: the API exited during the run", a.key));
    }
    run.save()
}
