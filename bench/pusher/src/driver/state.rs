//! The run's one JSON file: settings, every figure and every step's raw output. Each
//! phase reads it, adds to it and writes it back (whole, by rename); `report` renders the
//! table from it and adds the table, so the file is also the run's JSON output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Res;

/// The workload's size and timing, from `BENCH_*` (or flags to `init`), kept in the state
/// so that every phase and the JSON output see the same.
#[derive(Clone, Debug, clap::Args, Serialize, Deserialize)]
pub struct Knobs {
    /// Concurrent pushers, one image each.
    #[arg(long, env = "BENCH_PUSHERS", default_value_t = 4)]
    pub pushers: usize,
    /// Layer bytes pushed per push mode, all pushers together.
    #[arg(long, env = "BENCH_PUSH_MIB", default_value_t = 512)]
    pub push_mib: u64,
    /// Size of each pushed layer.
    #[arg(long, env = "BENCH_BLOB_MIB", default_value_t = 32)]
    pub blob_mib: u64,
    /// PATCH size of chunked pushes.
    #[arg(long, env = "BENCH_CHUNK_MIB", default_value_t = 8)]
    pub chunk_mib: u64,
    #[arg(long, env = "BENCH_WRK_THREADS", default_value_t = 2)]
    pub wrk_threads: usize,
    #[arg(long, env = "BENCH_WRK_CONNS", default_value_t = 64)]
    pub wrk_conns: usize,
    /// Length of each figure's run in the unrecorded warm-up round.
    #[arg(long, env = "BENCH_WRK_WARMUP_SECS", default_value_t = 2)]
    pub warmup_secs: u64,
    /// Request rows: measured rounds, servers taking turns; the median is kept.
    #[arg(long, env = "BENCH_REQ_ROUNDS", default_value_t = 5)]
    pub req_rounds: usize,
    /// Request rows: length of each figure's run in a round.
    #[arg(long, env = "BENCH_REQ_SECS", default_value_t = 4)]
    pub req_secs: u64,
    /// Blob GET row: the blob's size.
    #[arg(long, env = "BENCH_BIG_MIB", default_value_t = 256)]
    pub big_mib: u64,
    /// Blob GET row: measured sequential downloads (after one unmeasured).
    #[arg(long, env = "BENCH_GET_COUNT", default_value_t = 5)]
    pub get_count: u64,
    /// tags/list rows: tags pushed.
    #[arg(long, env = "BENCH_TAGS", default_value_t = 1000)]
    pub tags: usize,
    /// tags/list rows: measured requests (after 20 unmeasured).
    #[arg(long, env = "BENCH_LAT_COUNT", default_value_t = 2000)]
    pub lat_count: usize,
    /// Hard cap in seconds on any one step.
    #[arg(long, env = "BENCH_STEP_TIMEOUT", default_value_t = 300)]
    pub step_timeout: u64,
    /// Blob delivery: pushers on S3 [default: pushers].
    #[arg(long, env = "BENCH_S3_PUSHERS")]
    pub s3_pushers: Option<usize>,
    /// Blob delivery: layer bytes pushed to S3 per push mode (LocalStack is slow).
    #[arg(long, env = "BENCH_S3_PUSH_MIB", default_value_t = 128)]
    pub s3_push_mib: u64,
    #[arg(long, env = "BENCH_S3_BLOB_MIB", default_value_t = 16)]
    pub s3_blob_mib: u64,
    /// Blob delivery: the blob pulled in every mode.
    #[arg(long, env = "BENCH_PULL_MIB", default_value_t = 64)]
    pub pull_mib: u64,
    /// Blob delivery: measured downloads per S3 mode (after one unmeasured).
    #[arg(long, env = "BENCH_S3_PULL_COUNT", default_value_t = 5)]
    pub s3_pull_count: u64,
    /// Blob delivery: measured downloads per filesystem mode (after one unmeasured).
    #[arg(long, env = "BENCH_FS_PULL_COUNT", default_value_t = 20)]
    pub fs_pull_count: u64,
    /// Blob delivery: no new measured download starts after this many seconds.
    #[arg(long, env = "BENCH_PULL_SECS", default_value_t = 30)]
    pub pull_secs: u64,
}

/// One step's record: its output as JSON, or why it failed.
#[derive(Debug, Serialize, Deserialize)]
pub struct Step {
    pub column: String,
    pub step: String,
    pub ok: bool,
    pub secs: f64,
    pub output: serde_json::Value,
}

/// The whole run. `figures[column][row key]` is what the table shows.
#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    pub started_unix: u64,
    /// Free-form facts from run.sh: host, commit, versions, binaries.
    pub info: BTreeMap<String, String>,
    /// The comparison columns, in order (`BENCH_SERVERS`).
    pub servers: Vec<String>,
    pub knobs: Knobs,
    /// The run's scratch directory (wrk's script).
    pub work_dir: PathBuf,
    /// 1, 5 and 15 min load averages, at `init` and at `report`.
    pub load_average_start: String,
    pub load_average_end: String,
    /// `ok`, `skipped: why` or `failed: why`, per server.
    pub status: BTreeMap<String, String>,
    pub figures: BTreeMap<String, BTreeMap<String, f64>>,
    /// Request rows: every measured round's figure, per column and key (`man_tag_rps`).
    pub rounds: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
    /// Request rows: the unrecorded warm-up round's figures, same shape.
    pub warmup: BTreeMap<String, BTreeMap<String, f64>>,
    /// Blob delivery: the digest of the blob every pull mode downloads.
    pub pull_digest: Option<String>,
    pub steps: Vec<Step>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
    /// Written by `report`: the table as data.
    pub table: Vec<serde_json::Value>,
}

impl State {
    pub fn new(
        servers: Vec<String>,
        knobs: Knobs,
        work_dir: PathBuf,
        info: BTreeMap<String, String>,
    ) -> Self {
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            started_unix,
            info,
            servers,
            knobs,
            work_dir,
            load_average_start: crate::driver::procfs::load_average(),
            load_average_end: String::new(),
            status: BTreeMap::new(),
            figures: BTreeMap::new(),
            rounds: BTreeMap::new(),
            warmup: BTreeMap::new(),
            pull_digest: None,
            steps: Vec::new(),
            warnings: Vec::new(),
            notes: Vec::new(),
            table: Vec::new(),
        }
    }

    pub fn load(path: &Path) -> Res<Self> {
        let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a bench state: {e}", path.display()))
    }

    /// Written to a temp file and renamed over `path`, so a killed phase leaves the
    /// previous phases' figures intact.
    pub fn save(&self, path: &Path) -> Res<()> {
        let tmp = path.with_extension("tmp");
        let json = serde_json::to_vec_pretty(self).map_err(|e| format!("state to JSON: {e}"))?;
        std::fs::write(&tmp, json).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("renaming to {}: {e}", path.display()))
    }

    pub fn put(&mut self, column: &str, key: &str, v: f64) {
        self.figures
            .entry(column.to_owned())
            .or_default()
            .insert(key.to_owned(), v);
    }

    pub fn get(&self, column: &str, key: &str) -> Option<f64> {
        self.figures.get(column)?.get(key).copied()
    }

    pub fn warn(&mut self, w: String) {
        crate::driver::log(&format!("warning: {w}"));
        self.warnings.push(w);
    }
}
