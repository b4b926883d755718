//! Transfer progress: a bar per blob and one overall (bytes/s), plain lines when output is
//! not a terminal, or nothing (`--quiet`).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use blob_gateway::ByteStream;
use futures::TryStreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars, redrawn in place.
    Bars,
    /// One line per finished blob and a summary.
    Plain,
    /// Nothing.
    Quiet,
}

impl ProgressMode {
    /// Bars on a terminal, plain lines otherwise; nothing when `quiet`.
    pub fn detect(quiet: bool) -> Self {
        match (quiet, std::io::stdout().is_terminal()) {
            (true, _) => Self::Quiet,
            (false, true) => Self::Bars,
            (false, false) => Self::Plain,
        }
    }
}

/// The progress of one command.
pub struct Progress {
    mode: ProgressMode,
    multi: MultiProgress,
    overall: Option<ProgressBar>,
    start: Instant,
    bytes: Arc<AtomicU64>,
}

impl Progress {
    /// A display in `mode`.
    pub fn new(mode: ProgressMode) -> Self {
        let multi = MultiProgress::with_draw_target(match mode {
            ProgressMode::Bars => ProgressDrawTarget::stdout(),
            _ => ProgressDrawTarget::hidden(),
        });
        let overall = (mode == ProgressMode::Bars).then(|| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(style("total        "));
            bar
        });
        Self {
            mode,
            multi,
            overall,
            start: Instant::now(),
            bytes: Arc::default(),
        }
    }

    /// A bar for one blob of `size` bytes named `label`.
    pub fn blob(&self, label: &str, size: u64) -> BlobProgress {
        if let Some(o) = &self.overall {
            o.inc_length(size);
        }
        let short: String = label
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect();
        let bar = (self.mode == ProgressMode::Bars).then(|| {
            let bar = self.multi.insert_from_back(1, ProgressBar::new(size));
            bar.set_style(style(&format!("{short} ")));
            bar
        });
        BlobProgress {
            bar,
            overall: self.overall.clone(),
            plain: self.mode == ProgressMode::Plain,
            label: short,
            size,
            position: AtomicU64::new(0),
            start: Instant::now(),
            bytes: self.bytes.clone(),
        }
    }

    /// Prints a line (above the bars when they are shown).
    pub fn line(&self, text: &str) {
        match self.mode {
            ProgressMode::Bars => {
                let _ = self.multi.println(text);
            }
            ProgressMode::Plain => println!("{text}"),
            ProgressMode::Quiet => {}
        }
    }

    /// Ends the display with a summary line.
    pub fn finish(&self, what: &str) {
        if let Some(o) = &self.overall {
            o.finish_and_clear();
        }
        let secs = self.start.elapsed().as_secs_f64();
        let bytes = self.bytes.load(Ordering::Relaxed);
        self.line(&format!(
            "{what}: {} transferred in {secs:.1}s ({})",
            human(bytes as f64),
            rate(bytes, secs)
        ));
    }
}

fn style(prefix: &str) -> ProgressStyle {
    let template =
        format!("{prefix}[{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} {{eta}} {{msg}}");
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// One blob's progress.
pub struct BlobProgress {
    bar: Option<ProgressBar>,
    overall: Option<ProgressBar>,
    plain: bool,
    label: String,
    size: u64,
    position: AtomicU64,
    start: Instant,
    bytes: Arc<AtomicU64>,
}

impl BlobProgress {
    /// Counts `n` bytes sent or received.
    pub fn inc(&self, n: u64) {
        self.position.fetch_add(n, Ordering::Relaxed);
        self.bytes.fetch_add(n, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc(n);
        }
        if let Some(o) = &self.overall {
            o.inc(n);
        }
    }

    /// Bytes counted so far.
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Relaxed)
    }

    /// Restarts from `offset` (a retry, or a resumed upload).
    pub fn restart_at(&self, offset: u64) {
        let old = self.position.swap(offset, Ordering::Relaxed);
        self.bytes
            .fetch_sub(old.saturating_sub(offset).min(old), Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_position(offset);
        }
        if let Some(o) = &self.overall {
            o.set_position(o.position().saturating_sub(old.saturating_sub(offset)));
        }
    }

    /// Takes back `n` bytes counted for an attempt that failed (a retried part, while
    /// other parts of the blob go on).
    pub fn take_back(&self, n: u64) {
        let old = self
            .position
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                Some(p.saturating_sub(n))
            })
            .unwrap_or_else(|p| p);
        let n = n.min(old);
        self.bytes.fetch_sub(n, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_position(b.position().saturating_sub(n));
        }
        if let Some(o) = &self.overall {
            o.set_position(o.position().saturating_sub(n));
        }
    }

    /// Says something about this blob: a plain line, or the bar's message.
    pub fn note(&self, text: &str) {
        if let Some(b) = &self.bar {
            b.set_message(text.to_owned());
        }
        if self.plain {
            println!("{} {text}", self.label);
        }
    }

    /// Counts the bytes of `stream` as they pass.
    pub fn count(self: &Arc<Self>, stream: ByteStream) -> ByteStream {
        let me = self.clone();
        Box::pin(stream.inspect_ok(move |chunk| me.inc(chunk.len() as u64)))
    }

    /// Ends the bar with `how` (`uploaded`, `exists`, `mounted`, ...).
    pub fn done(&self, how: &str) {
        let secs = self.start.elapsed().as_secs_f64();
        let moved = self.position.load(Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        if let Some(o) = &self.overall {
            // Bytes that did not travel count as done.
            o.inc(self.size.saturating_sub(moved));
        }
        if self.plain {
            println!(
                "{} {how} {} in {secs:.1}s ({})",
                self.label,
                human(self.size as f64),
                rate(moved, secs)
            );
        }
    }
}

fn human(bytes: f64) -> String {
    if bytes >= 1_048_576.0 {
        format!("{:.1} MiB", bytes / 1_048_576.0)
    } else {
        format!("{:.1} KiB", bytes / 1024.0)
    }
}

fn rate(bytes: u64, secs: f64) -> String {
    format!("{}/s", human(bytes as f64 / secs.max(1e-3)))
}
