//! What the driver reads from /proc about the machine and the servers run.sh started:
//! load average, CPU busy share, a process's peak and sampled RSS, CPU ticks, children.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// "1min 5min 15min" from /proc/loadavg.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// (busy, total) jiffies of all CPUs; steal and iowait count as idle.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let f = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    Some((f(0) + f(1) + f(2) + f(5) + f(6), (0..8).map(f).sum()))
}

/// How busy the whole machine was over one second, in percent.
pub async fn cpu_busy_pct() -> f64 {
    let a = cpu_jiffies();
    tokio::time::sleep(Duration::from_secs(1)).await;
    match (a, cpu_jiffies()) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => 100.0 * (b1 - b0) as f64 / (t1 - t0) as f64,
        _ => 0.0,
    }
}

/// A `kB` field of /proc/PID/status (`VmHWM`, `VmRSS`).
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// The kernel's high-water mark of the process's resident set, MiB.
pub fn vm_hwm_mib(pid: u32) -> Option<f64> {
    status_kib(pid, "VmHWM").map(|k| k as f64 / 1024.0)
}

pub fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The fields of /proc/PID/stat after the `)` that ends the command name.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(
        s.rsplit_once(") ")?
            .1
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

/// utime + stime of the processes (all threads), in clock ticks.
pub fn cpu_ticks(pids: &[u32]) -> Option<u64> {
    pids.iter().try_fold(0u64, |sum, &pid| {
        let f = stat_fields(pid)?;
        Some(sum + f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    })
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux when that fails).
pub fn clk_tck() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// The direct children of `pid` (an nginx master's workers).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&c| stat_fields(c).and_then(|f| f.get(1)?.parse::<u32>().ok()) == Some(pid))
        .collect()
}

/// The largest `VmRSS` seen every 0.5 s while it runs (ends with the process, or when
/// dropped), beside the kernel's `VmHWM`.
pub struct RssSampler {
    max_kib: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let max_kib = Arc::new(AtomicU64::new(0));
        let m = max_kib.clone();
        let task = tokio::spawn(async move {
            while let Some(k) = status_kib(pid, "VmRSS") {
                m.fetch_max(k, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Self { max_kib, task }
    }

    pub fn max_mib(&self) -> Option<f64> {
        let k = self.max_kib.load(Ordering::Relaxed);
        (k > 0).then(|| k as f64 / 1024.0)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}
