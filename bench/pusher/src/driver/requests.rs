//! `requests`: the request rows, every server at once. Tens of thousands of tiny requests
//! a second on 2 shared cores follow whatever else the machine does (±15% within a
//! minute), more than the servers differ; measured one server after the other, that
//! drift would decide the ratio. So all servers run together on fresh stores holding one
//! small image, and take turns in short rounds (who goes first rotates) after one
//! unrecorded warm-up round; each figure is the median of its rounds.
//!
//! nginx, when run.sh started one, takes its turn like a server: manifest GET by tag with
//! infra/nginx/cargohold.conf over the `--nginx-of` server's store, and the same bytes as
//! a plain file from a static location of the same nginx.

use std::path::PathBuf;
use std::time::Duration;

use super::procfs;
use super::{log, median, Run};
use crate::load::{self, LoadSpec};
use crate::oci::{self, CLIENT_ACCEPT};
use crate::Res;

#[derive(Debug, clap::Args)]
pub struct RequestsArgs {
    /// A running server: NAME=http://127.0.0.1:PORT@PID; repeatable, in column order.
    #[arg(long = "target", value_name = "NAME=URL@PID")]
    targets: Vec<String>,
    /// nginx with infra/nginx/cargohold.conf over the store of `--nginx-of`: its base URL.
    #[arg(long)]
    nginx: Option<String>,
    /// The server whose store nginx serves (its column gets the nginx rows).
    #[arg(long, default_value = "cargohold")]
    nginx_of: String,
    /// The URL at which the same nginx serves `--plain-file` from a static location.
    #[arg(long, requires = "plain_file")]
    nginx_plain: Option<String>,
    /// Where to write the manifest's bytes for `--nginx-plain`.
    #[arg(long)]
    plain_file: Option<PathBuf>,
}

struct Target {
    name: String,
    url: String,
    pid: u32,
}

fn parse_target(s: &str) -> Res<Target> {
    let bad = || format!("--target {s}: not NAME=URL@PID");
    let (name, rest) = s.split_once('=').ok_or_else(bad)?;
    let (url, pid) = rest.rsplit_once('@').ok_or_else(bad)?;
    Ok(Target {
        name: name.to_owned(),
        url: url.to_owned(),
        pid: pid.parse().map_err(|_| bad())?,
    })
}

/// One figure: its column, its row key prefix (`man_tag` → `man_tag_rps`, …) and load.
struct Figure {
    column: String,
    key: String,
    load: LoadSpec,
}

/// What one server (or nginx) measures back to back in a round.
struct Turn {
    figures: Vec<Figure>,
}

pub async fn run(run: &mut Run, a: RequestsArgs) -> Res<()> {
    let targets = a
        .targets
        .iter()
        .map(|t| parse_target(t))
        .collect::<Res<Vec<_>>>()?;
    let c = oci::client(Duration::from_secs(30), 4)?;
    let mut turns = Vec::new();
    let mut nginx_manifest = None;
    for t in &targets {
        let image = oci::push_small_image(&c, &t.url, "bench/small", "latest", 3);
        let Some(img) = run.step(&t.name, "small image", image).await else {
            continue;
        };
        let base = format!("{}/v2/bench/small", t.url);
        let candidates = [
            ("man_tag", "GET", format!("{base}/manifests/latest")),
            (
                "man_digest",
                "GET",
                format!("{base}/manifests/{}", img.manifest_digest),
            ),
            (
                "blob_head",
                "HEAD",
                format!("{base}/blobs/{}", img.layer_digest),
            ),
        ];
        let mut figures = Vec::new();
        for (key, method, url) in candidates {
            if let Some(f) = checked(run, &c, &t.name, key, method, url, &img.manifest).await {
                figures.push(f);
            }
        }
        turns.push(Turn { figures });
        if t.name == a.nginx_of {
            nginx_manifest = Some(img.manifest);
        }
    }
    if let (Some(ngx), Some(manifest)) = (&a.nginx, &nginx_manifest) {
        let mut figures = Vec::new();
        let url = format!("{ngx}/v2/bench/small/manifests/latest");
        figures.extend(checked(run, &c, &a.nginx_of, "nginx_man_tag", "GET", url, manifest).await);
        if let (Some(url), Some(file)) = (&a.nginx_plain, &a.plain_file) {
            std::fs::write(file, manifest)
                .map_err(|e| format!("writing {}: {e}", file.display()))?;
            figures.extend(
                checked(
                    run,
                    &c,
                    &a.nginx_of,
                    "nginx_plain",
                    "GET",
                    url.clone(),
                    manifest,
                )
                .await,
            );
        }
        turns.push(Turn { figures });
    }
    measure_rounds(run, &turns).await;
    for t in &targets {
        // Peak RSS: the larger of this phase's and the server's own run's.
        if let Some(m) = procfs::vm_hwm_mib(t.pid) {
            if run.state.get(&t.name, "rss_hwm").is_none_or(|old| m > old) {
                run.state.put(&t.name, "rss_hwm", m);
            }
        }
    }
    run.save()
}

/// The figure, if one request with the clients' Accept header is answered 200 (and, for
/// a GET, with exactly the pushed manifest's bytes for manifest URLs).
async fn checked(
    run: &mut Run,
    c: &reqwest::Client,
    column: &str,
    key: &str,
    method: &str,
    url: String,
    manifest: &[u8],
) -> Option<Figure> {
    let k = &run.state.knobs;
    let load = LoadSpec {
        method: method.to_owned(),
        url,
        accept: CLIENT_ACCEPT.to_owned(),
        threads: k.wrk_threads,
        conns: k.wrk_conns,
        secs: k.req_secs,
    };
    let m = if method == "HEAD" {
        reqwest::Method::HEAD
    } else {
        reqwest::Method::GET
    };
    let answer = async {
        let r = c
            .request(m, &load.url)
            .header("Accept", CLIENT_ACCEPT)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let body = r.bytes().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((status, body))
    };
    let problem = match answer.await {
        Err(e) => Some(e),
        Ok((200, _)) if method == "HEAD" => None,
        Ok((200, body)) if body.as_ref() == manifest => None,
        Ok((200, body)) => Some(format!(
            "200 with {} bytes that are not the pushed manifest",
            body.len()
        )),
        Ok((status, _)) => Some(format!("answered {status}, not 200")),
    };
    match problem {
        None => Some(Figure {
            column: column.to_owned(),
            key: key.to_owned(),
            load,
        }),
        Some(p) => {
            run.state.warn(format!(
                "{column}: {key}: {method} {}: {p}; figure skipped",
                load.url
            ));
            None
        }
    }
}

async fn measure_rounds(run: &mut Run, turns: &[Turn]) {
    let k = run.state.knobs.clone();
    log("request rows: warm-up round");
    for f in turns.iter().flat_map(|t| &t.figures) {
        let load = LoadSpec {
            secs: k.warmup_secs,
            ..f.load.clone()
        };
        if let Some(r) = measure(run, f, &load, "warm-up").await {
            let w = run.state.warmup.entry(f.column.clone()).or_default();
            w.insert(format!("{}_rps", f.key), r.rps);
            w.insert(format!("{}_p50", f.key), r.p50_ms);
            w.insert(format!("{}_p99", f.key), r.p99_ms);
        }
    }
    let n = turns.len();
    for round in 0..k.req_rounds {
        log(&format!(
            "request rows: round {} of {}",
            round + 1,
            k.req_rounds
        ));
        for i in 0..n {
            for f in &turns[(i + round) % n].figures {
                if let Some(r) = measure(run, f, &f.load, &format!("round {}", round + 1)).await {
                    let rounds = run.state.rounds.entry(f.column.clone()).or_default();
                    rounds
                        .entry(format!("{}_rps", f.key))
                        .or_default()
                        .push(r.rps);
                    rounds
                        .entry(format!("{}_p50", f.key))
                        .or_default()
                        .push(r.p50_ms);
                    rounds
                        .entry(format!("{}_p99", f.key))
                        .or_default()
                        .push(r.p99_ms);
                }
            }
        }
    }
    let medians: Vec<(String, String, f64)> = run
        .state
        .rounds
        .iter()
        .flat_map(|(col, keys)| {
            keys.iter()
                .filter_map(move |(key, v)| Some((col.clone(), key.clone(), median(v)?)))
        })
        .collect();
    for (col, key, v) in medians {
        run.state.put(&col, &key, v);
    }
}

async fn measure(
    run: &mut Run,
    f: &Figure,
    load: &LoadSpec,
    what: &str,
) -> Option<load::LoadResult> {
    let work_dir = run.state.work_dir.clone();
    let r = run
        .step(
            &f.column,
            &format!("{} {what}", f.key),
            load::run(load, &work_dir),
        )
        .await?;
    if r.errors_status > 0 || r.errors_socket > 0 {
        run.state.warn(format!(
            "{}: {} {what}: {} answers >= 400, {} socket errors/timeouts",
            f.column, f.key, r.errors_status, r.errors_socket
        ));
    }
    Some(r)
}
