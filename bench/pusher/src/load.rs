//! Request-rate load: closed loops of N keep-alive connections for a fixed time. GETs go
//! through `wrk` (C, the least client CPU on a machine whose cores the server shares, and
//! the figures stay comparable with earlier runs); HEADs through a loop of our own on
//! hyper's HTTP/1 client, because wrk 4.1 waits for the `Content-Length` bytes of a HEAD
//! answer's body that never comes, and completes 0 requests. On the same GET endpoint
//! the two measured within ~6% of each other.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use serde::Serialize;

use crate::workload::percentile;
use crate::Res;

/// How long one request may take before it counts as a socket error (wrk's `--timeout`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One load run: `conns` connections on `threads` threads for `secs` seconds.
#[derive(Clone, Debug, Serialize)]
pub struct LoadSpec {
    pub method: String,
    pub url: String,
    pub accept: String,
    pub threads: usize,
    pub conns: usize,
    pub secs: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadResult {
    pub tool: &'static str,
    pub requests: u64,
    pub secs: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers with a status of 400 or more (wrk: anything not 2xx/3xx).
    pub errors_status: u64,
    /// Connect, read and write errors and timeouts.
    pub errors_socket: u64,
}

/// The Lua script wrk runs: prints its summary as `key=value` lines.
const WRK_LUA: &str = include_str!("wrk.lua");

/// Runs the load with wrk (GET) or hyper (any other method); `work_dir` holds wrk's script.
pub async fn run(spec: &LoadSpec, work_dir: &Path) -> Res<LoadResult> {
    if spec.method == "GET" {
        wrk(spec, work_dir).await
    } else {
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || hyper_load(&spec))
            .await
            .map_err(|e| format!("load task: {e}"))?
    }
}

async fn wrk(spec: &LoadSpec, work_dir: &Path) -> Res<LoadResult> {
    let lua = work_dir.join("wrk.lua");
    if !lua.exists() {
        std::fs::write(&lua, WRK_LUA).map_err(|e| format!("writing {}: {e}", lua.display()))?;
    }
    let mut cmd = tokio::process::Command::new("wrk");
    cmd.arg("-t")
        .arg(spec.threads.to_string())
        .arg("-c")
        .arg(spec.conns.to_string())
        .arg("-d")
        .arg(format!("{}s", spec.secs))
        .arg("--timeout")
        .arg(format!("{}s", REQUEST_TIMEOUT.as_secs()))
        .arg("--latency")
        .arg("-H")
        .arg(format!("Accept: {}", spec.accept))
        .arg("-s")
        .arg(&lua)
        .arg(&spec.url)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // wrk stops itself after -d; the margin covers start-up and the last timeouts.
    let limit = Duration::from_secs(spec.secs + 30);
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .map_err(|_| format!("wrk still running after {} s: killed", limit.as_secs()))?
        .map_err(|e| format!("running wrk: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("wrk exited with {}: {}", out.status, err.trim()));
    }
    parse_wrk(&stdout)
}

/// The `key=value` lines wrk.lua prints (wrk's own report lines have no `=`).
fn parse_wrk(stdout: &str) -> Res<LoadResult> {
    let get = |k: &str| -> Res<f64> {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .ok_or_else(|| format!("wrk output has no {k}=: {stdout}"))?
            .trim()
            .parse()
            .map_err(|_| format!("wrk output: {k} is not a number"))
    };
    Ok(LoadResult {
        tool: "wrk",
        requests: get("requests")? as u64,
        secs: get("secs")?,
        rps: get("rps")?,
        p50_ms: get("p50_ms")?,
        p99_ms: get("p99_ms")?,
        errors_status: get("errors_status")? as u64,
        errors_socket: get("errors_socket")? as u64,
    })
}

/// The same closed loop as wrk on hyper: each connection sends its next request as soon
/// as the previous answer is read; a failed connection is replaced.
pub fn hyper_load(spec: &LoadSpec) -> Res<LoadResult> {
    let rest = spec
        .url
        .strip_prefix("http://")
        .ok_or("load: only http:// URLs")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    };
    let method: hyper::Method = spec
        .method
        .parse()
        .map_err(|_| format!("bad method {}", spec.method))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(spec.threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let start = Instant::now();
    let end = start + Duration::from_secs(spec.secs);
    let (lat, errors_status, errors_socket) = rt.block_on(async {
        let tasks: Vec<_> = (0..spec.conns)
            .map(|_| {
                let target = Target {
                    authority: authority.clone(),
                    path: path.clone(),
                    method: method.clone(),
                    accept: spec.accept.clone(),
                };
                tokio::spawn(async move { target.connection_loop(end).await })
            })
            .collect();
        let (mut all, mut es, mut ek) = (Vec::new(), 0, 0);
        for t in tasks {
            if let Ok((l, s, k)) = t.await {
                all.extend(l);
                es += s;
                ek += k;
            }
        }
        (all, es, ek)
    });
    let secs = start.elapsed().as_secs_f64();
    if lat.is_empty() {
        return Err(format!(
            "load: no request completed ({errors_socket} socket errors)"
        ));
    }
    let mut ms: Vec<f64> = lat.iter().map(|&u| f64::from(u) / 1e3).collect();
    ms.sort_by(f64::total_cmp);
    Ok(LoadResult {
        tool: "hyper",
        requests: ms.len() as u64,
        secs,
        rps: ms.len() as f64 / secs,
        p50_ms: percentile(&ms, 50.0),
        p99_ms: percentile(&ms, 99.0),
        errors_status,
        errors_socket,
    })
}

struct Target {
    authority: String,
    path: String,
    method: hyper::Method,
    accept: String,
}

impl Target {
    /// One connection's loop until `end`: latencies in µs, bad statuses, socket errors.
    async fn connection_loop(&self, end: Instant) -> (Vec<u32>, u64, u64) {
        let mut lat: Vec<u32> = Vec::with_capacity(1 << 14);
        let (mut bad_status, mut socket_err) = (0u64, 0u64);
        while Instant::now() < end {
            let Ok(stream) = tokio::net::TcpStream::connect(&self.authority).await else {
                socket_err += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let io = hyper_util::rt::TokioIo::new(stream);
            let Ok((mut tx, conn)) = hyper::client::conn::http1::handshake(io).await else {
                socket_err += 1;
                continue;
            };
            let driver = tokio::spawn(conn);
            while Instant::now() < end {
                let t0 = Instant::now();
                match tokio::time::timeout(REQUEST_TIMEOUT, self.request(&mut tx)).await {
                    Ok(Ok(status)) => {
                        lat.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                        bad_status += u64::from(status > 399);
                    }
                    _ => {
                        socket_err += 1;
                        break;
                    }
                }
            }
            driver.abort();
        }
        (lat, bad_status, socket_err)
    }

    async fn request(
        &self,
        tx: &mut hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>,
    ) -> Result<u16, hyper::Error> {
        let req = hyper::Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header("Host", self.authority.as_str())
            .header("Accept", self.accept.as_str())
            .body(http_body_util::Empty::<Bytes>::new())
            .expect("method, path and headers were checked when parsed");
        let resp = tx.send_request(req).await?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        while let Some(f) = body.frame().await {
            f?;
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_summary_wrk_lua_prints_after_wrks_own_report() {
        let out = "Running 4s test @ http://127.0.0.1:1/v2/\n  2 threads and 64 connections\n\
                   requests=1000\nsecs=4.001\nrps=249.9\np50_ms=1.250\np99_ms=9.000\nerrors_status=2\nerrors_socket=0\n";
        let r = parse_wrk(out).expect("parses");
        assert_eq!((r.requests, r.errors_status, r.errors_socket), (1000, 2, 0));
        assert_eq!((r.rps, r.p50_ms, r.p99_ms), (249.9, 1.25, 9.0));
    }

    #[test]
    fn a_summary_without_the_lua_lines_is_an_error() {
        assert!(parse_wrk("Requests/sec: 1000\n").is_err());
    }
}
