//! `server`: one server alone on a fresh store. Warm-up, then the push rows, the blob GET
//! row, the tags/list rows and its peak RSS.

use std::time::Duration;

use super::procfs::{self, RssSampler};
use super::{log, Run};
use crate::oci;
use crate::workload::{self, ExpectRedirect, PushMode, PushSpec};
use crate::Res;

#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The column (a name in BENCH_SERVERS).
    #[arg(long)]
    name: String,
    /// Base URL, http://127.0.0.1:PORT.
    #[arg(long)]
    url: String,
    /// The server's PID, for its RSS.
    #[arg(long)]
    pid: u32,
}

/// One set of push rows: `keys` (monolithic, chunked) measured with `pushers` pushers,
/// `total_mib` in `blob_mib` layers each, after a warm-up push of each kind.
pub struct PushRows {
    pub keys: [&'static str; 2],
    pub seeds: [u64; 2],
    pub pushers: usize,
    pub warm_mib: u64,
    pub warm_blob_mib: u64,
    pub total_mib: u64,
    pub blob_mib: u64,
}

/// The warm-up pushes, then the measured ones; their MB/s go to column `figures`.
pub async fn push_rows(run: &mut Run, label: &str, figures: &str, base: &str, p: PushRows) {
    let chunk_mib = run.state.knobs.chunk_mib;
    let spec = |mode, total_mib, blob_mib, seed, prefix: &str| PushSpec {
        mode,
        pushers: p.pushers,
        total_mib,
        blob_mib,
        chunk_mib,
        seed,
        repo_prefix: prefix.to_owned(),
    };
    let modes = [PushMode::Mono, PushMode::Chunked];
    for (mode, seed) in modes.into_iter().zip([101, 102]) {
        let s = spec(
            mode,
            p.warm_mib,
            p.warm_blob_mib,
            seed,
            &format!("bench/warm-{}", mode.name()),
        );
        run.step(
            label,
            &format!("warm-up push {}", mode.name()),
            workload::push_images(base, &s),
        )
        .await;
    }
    for ((mode, seed), key) in modes.into_iter().zip(p.seeds).zip(p.keys) {
        let s = spec(mode, p.total_mib, p.blob_mib, seed, &format!("bench/{key}"));
        if let Some(r) = run.step(label, key, workload::push_images(base, &s)).await {
            run.state.put(figures, key, r.mb_per_s);
        }
    }
}

pub async fn run(run: &mut Run, a: ServerArgs) -> Res<()> {
    let k = run.state.knobs.clone();
    let (name, base) = (a.name.as_str(), a.url.as_str());
    let busy = procfs::cpu_busy_pct().await;
    log(&format!(
        "== {name} on {base}; CPU busy before start: {busy:.0}%"
    ));
    run.state.put(name, "bg_cpu_busy_pct", busy);
    if busy > 15.0 {
        run.state.warn(format!("{name}: machine not idle before the run ({busy:.0}% CPU busy over 1 s): figures are noisy"));
    }
    run.state.status.insert(name.to_owned(), "ok".into());
    let sampler = RssSampler::start(a.pid);

    // Warm-up: a small image and a small push of each kind.
    let c = oci::client(Duration::from_secs(60), 4)?;
    run.step(
        name,
        "warm-up image",
        oci::push_small_image(&c, base, "bench/warm", "latest", 3),
    )
    .await;
    let rows = PushRows {
        keys: ["push_mono", "push_chunked"],
        seeds: [1, 2],
        pushers: k.pushers,
        warm_mib: 64,
        warm_blob_mib: 8,
        total_mib: k.push_mib,
        blob_mib: k.blob_mib,
    };
    push_rows(run, name, name, base, rows).await;

    let blob = run
        .step(
            name,
            &format!("push {} MiB blob", k.big_mib),
            workload::push_blob(base, "bench/big", k.big_mib, 7),
        )
        .await;
    if let Some(digest) = blob {
        let url = format!("{base}/v2/bench/big/blobs/{digest}");
        let get = workload::get_blob(&url, k.get_count, 1, f64::INFINITY, ExpectRedirect::Any);
        if let Some(r) = run.step(name, "blob GET", get).await {
            run.state.put(name, "blob_get", r.gb_per_s);
        }
    }

    let tagged = run
        .step(
            name,
            &format!("tag {}x", k.tags),
            workload::push_tags(base, "bench/tags", k.tags, 8),
        )
        .await;
    if tagged.is_some() {
        let url = format!("{base}/v2/bench/tags/tags/list");
        if let Some(r) = run
            .step(
                name,
                "tags/list latency",
                workload::latency(&url, k.lat_count, 20, "application/json"),
            )
            .await
        {
            run.state.put(name, "tags_p50", r.p50_ms);
            run.state.put(name, "tags_p99", r.p99_ms);
            if r.tags_in_response != Some(k.tags) {
                let seen = r.tags_in_response.map_or("?".into(), |n| n.to_string());
                run.state.warn(format!(
                    "{name}: tags/list returned {seen} tags, not {} (paginated or missing)",
                    k.tags
                ));
            }
        }
    }

    match procfs::vm_hwm_mib(a.pid) {
        Some(m) => run.state.put(name, "rss_hwm", m),
        None => run.state.warn(format!(
            "{name}: server process gone before the VmHWM reading"
        )),
    }
    if let Some(m) = sampler.max_mib() {
        run.state.put(name, "rss_sampled", m);
    }
    if !procfs::alive(a.pid) {
        run.state.status.insert(
            name.to_owned(),
            "failed: server exited during the run".into(),
        );
    }
    run.save()
}
