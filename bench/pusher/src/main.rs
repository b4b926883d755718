//! `pusher`: the driver and load generator of `bench/run.sh`.
//!
//! run.sh builds the servers, starts and stops them; each of its calls here runs one phase
//! of the benchmark against what it started and adds the figures to one JSON state file
//! (`driver`), and the last call prints the table (see bench/README.md). A few tools stay
//! usable on their own: `push`, `load` and `sink` (the pusher's own ceiling).
//!
//! Every loop is bounded by a count and by time.

mod driver;
mod load;
mod oci;
mod sink;
mod workload;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

type Res<T> = Result<T, String>;

#[derive(Parser)]
#[command(name = "pusher", about = "Driver and load generator of bench/run.sh")]
struct Cli {
    /// The run's state file (JSON), for the driver phases.
    #[arg(long, global = true, env = "BENCH_STATE")]
    state: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a run: a fresh state file.
    Init(driver::InitArgs),
    /// Record why a server's column is empty.
    Status(driver::StatusArgs),
    /// Add a note under the table.
    Note(driver::NoteArgs),
    /// One server alone: push rows, blob GET, tags/list, peak RSS.
    Server(driver::server::ServerArgs),
    /// Request rows, every server (and nginx) at once, in rounds.
    Requests(driver::requests::RequestsArgs),
    /// Blob delivery: warm-up, S3 pushes, the blob to pull.
    Prepare(driver::delivery::PrepareArgs),
    /// Blob delivery: one pull mode with the API's CPU per GB.
    Pull(driver::delivery::PullArgs),
    /// Print the table; write it as text and the state as JSON.
    Report(driver::report::ReportArgs),
    /// Push images concurrently and print the rate (JSON).
    Push {
        #[arg(long)]
        url: String,
        #[command(flatten)]
        spec: workload::PushSpec,
    },
    /// Closed-loop request load (wrk for GET, hyper otherwise); prints JSON.
    Load {
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "GET")]
        method: String,
        #[arg(long, default_value = oci::CLIENT_ACCEPT)]
        accept: String,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 64)]
        conns: usize,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Use the hyper loop for GET too (to compare it with wrk).
        #[arg(long)]
        hyper: bool,
    },
    /// A null registry that accepts and discards uploads.
    Sink {
        #[arg(long)]
        listen: String,
        #[arg(long, default_value_t = 600)]
        timeout_s: u64,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = dispatch(cli).await {
        eprintln!("pusher: error: {e}");
        std::process::exit(1);
    }
}

async fn dispatch(cli: Cli) -> Res<()> {
    let state = || {
        cli.state
            .clone()
            .ok_or_else(|| "--state (or BENCH_STATE) is required".to_owned())
    };
    let open = || driver::Run::open(&state()?);
    match cli.cmd {
        Cmd::Init(a) => driver::init(&state()?, a),
        Cmd::Status(a) => driver::status(&mut open()?, a),
        Cmd::Note(a) => driver::note(&mut open()?, a),
        Cmd::Server(a) => driver::server::run(&mut open()?, a).await,
        Cmd::Requests(a) => driver::requests::run(&mut open()?, a).await,
        Cmd::Prepare(a) => driver::delivery::prepare(&mut open()?, a).await,
        Cmd::Pull(a) => driver::delivery::pull(&mut open()?, a).await,
        Cmd::Report(a) => driver::report::report(&mut open()?, a),
        Cmd::Push { url, spec } => print_json(&workload::push_images(&url, &spec).await?),
        Cmd::Load {
            url,
            method,
            accept,
            threads,
            conns,
            secs,
            hyper,
        } => {
            let spec = load::LoadSpec {
                method,
                url,
                accept,
                threads,
                conns,
                secs,
            };
            let r = if hyper {
                tokio::task::spawn_blocking(move || load::hyper_load(&spec))
                    .await
                    .map_err(|e| e.to_string())??
            } else {
                load::run(&spec, &std::env::temp_dir()).await?
            };
            print_json(&r)
        }
        Cmd::Sink { listen, timeout_s } => sink::serve(&listen, timeout_s).await,
    }
}

fn print_json(v: &impl serde::Serialize) -> Res<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(v).map_err(|e| e.to_string())?
    );
    Ok(())
}
