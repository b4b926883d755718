//! The benchmark driver: bench/run.sh starts and stops the servers and calls one phase
//! per server set-up; every measurement, warm-up, round, median and ratio is here.
//!
//! ```text
//! init      new state file: columns (BENCH_SERVERS), knobs (BENCH_*), facts from run.sh
//! status    a server that could not be started: its column shows n/a and why
//! note      a line under the table
//! server    one server alone on a fresh store: pushes, blob GET, tags/list, peak RSS
//! requests  every server at once (plus nginx): manifest GET by tag and digest, blob HEAD,
//!           in alternating rounds after a warm-up round; medians
//! prepare   blob delivery: warm-up, S3 pushes (--s3), the blob every pull mode downloads
//! pull      blob delivery: one pull mode, with the API's (and nginx's) CPU per GB
//! report    the table on stdout and in a text file, the whole state as JSON
//! ```
//!
//! Every step is bounded by its count and by `BENCH_STEP_TIMEOUT`; the state is written
//! after each one, so a phase killed from outside loses only its current step.

pub mod delivery;
pub mod procfs;
pub mod report;
pub mod requests;
mod rows;
pub mod server;
mod state;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use state::Knobs;
use state::{State, Step};

use crate::Res;

/// Progress line on stderr: `[bench HH:MM:SS] what` (UTC).
pub fn log(what: &str) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    eprintln!(
        "[bench {:02}:{:02}:{:02}] {what}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    );
}

/// An open state file.
pub struct Run {
    pub state: State,
    path: PathBuf,
}

impl Run {
    pub fn open(path: &Path) -> Res<Self> {
        Ok(Self {
            state: State::load(path)?,
            path: path.to_owned(),
        })
    }

    pub fn save(&self) -> Res<()> {
        self.state.save(&self.path)
    }

    /// Runs one bounded step: its output (or error) is recorded under `column`, a failure
    /// becomes a warning under the table, and the state is saved.
    pub async fn step<T: Serialize>(
        &mut self,
        column: &str,
        name: &str,
        f: impl Future<Output = Res<T>>,
    ) -> Option<T> {
        log(&format!("  {column}: {name}"));
        let limit = self.state.knobs.step_timeout;
        let t0 = Instant::now();
        let res = match tokio::time::timeout(Duration::from_secs(limit), f).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {limit} s")),
        };
        let (ok, output) = match &res {
            Ok(v) => (
                true,
                serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
            ),
            Err(e) => (false, serde_json::Value::String(e.clone())),
        };
        let step = Step {
            column: column.to_owned(),
            step: name.to_owned(),
            ok,
            secs: t0.elapsed().as_secs_f64(),
            output,
        };
        self.state.steps.push(step);
        if let Err(e) = &res {
            self.state.warn(format!("{column}: {name} failed: {e}"));
        }
        if let Err(e) = self.save() {
            log(&format!("warning: {e}"));
        }
        res.ok()
    }
}

/// `init`: a fresh state file.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The comparison columns, in order, separated by spaces (none: only blob delivery).
    #[arg(long, env = "BENCH_SERVERS", default_value = "")]
    servers: String,
    /// Scratch directory for the run.
    #[arg(long)]
    work_dir: PathBuf,
    /// A fact to keep with the figures, KEY=VALUE (host, commit, versions); repeatable.
    #[arg(long = "info", value_name = "KEY=VALUE")]
    info: Vec<String>,
    #[command(flatten)]
    knobs: Knobs,
}

pub fn init(path: &Path, a: InitArgs) -> Res<()> {
    let info: BTreeMap<String, String> = a
        .info
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or(format!("--info {kv}: not KEY=VALUE"))
        })
        .collect::<Res<_>>()?;
    let servers = a.servers.split_whitespace().map(str::to_owned).collect();
    let state = State::new(servers, a.knobs, a.work_dir, info);
    log(&format!("load average: {}", state.load_average_start));
    state.save(path)
}

/// `status`: why a server's column is empty.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[arg(long)]
    name: String,
    /// `skipped: why` or `failed: why`.
    #[arg(long)]
    status: String,
    /// The server's log, whose last lines are kept in the state.
    #[arg(long)]
    log: Option<PathBuf>,
}

pub fn status(run: &mut Run, a: StatusArgs) -> Res<()> {
    log(&format!("{}: {}", a.name, a.status));
    if let Some(tail) = a.log.as_deref().and_then(tail) {
        run.state.steps.push(Step {
            column: a.name.clone(),
            step: "server log (tail)".into(),
            ok: false,
            secs: 0.0,
            output: serde_json::Value::String(tail),
        });
    }
    run.state.status.insert(a.name, a.status);
    run.save()
}

/// The last 30 lines of a file.
fn tail(path: &Path) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let lines: Vec<&str> = s.lines().collect();
    Some(lines[lines.len().saturating_sub(30)..].join("\n"))
}

/// `note`: a line under the table.
#[derive(Debug, clap::Args)]
pub struct NoteArgs {
    text: String,
}

pub fn note(run: &mut Run, a: NoteArgs) -> Res<()> {
    log(&format!("note: {}", a.text));
    run.state.notes.push(a.text);
    run.save()
}

/// The median of the values (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_even_and_no_rounds() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
