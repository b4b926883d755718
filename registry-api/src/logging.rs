//! Logging: the layer every response passes through, and the writer log lines go out by.
//!
//! [`ResponseLayer`] adds `Docker-Distribution-API-Version`, writes one line per request
//! (method, path, status, bytes, duration; target [`REQUEST_TARGET`]) where
//! [`install_request_lines`] said and, for a 5xx, logs one ERROR line with the cause that
//! [`ApiError`] left in the response's extensions.
//!
//! Written as a plain tower layer rather than `axum::middleware::from_fn`, which boxes a
//! clone of the inner service and its future on every request: this runs on every pull.
//!
//! [`LogOutput`] batches lines in memory and writes them from a thread of its own when
//! [`FLUSH_BYTES`] have gathered or [`FLUSH_EVERY`] has passed, so a request line costs a
//! copy under a lock rather than a `write` syscall and a thread wake-up.

use std::fs::File;
use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, Uri, header};
use axum::response::Response;
use tower::{Layer, Service};

use crate::error::ApiError;

/// The target of the per-request lines, which `--access-log` routes.
pub const REQUEST_TARGET: &str = "cargohold::request";

const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
const REGISTRY_V2: HeaderValue = HeaderValue::from_static("registry/2.0");

/// Wraps the router: see the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseLayer;

impl<S> Layer<S> for ResponseLayer {
    type Service = ResponseService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResponseService { inner }
    }
}

#[derive(Debug, Clone)]
/// The service [`ResponseLayer`] wraps around the router.
pub struct ResponseService<S> {
    inner: S,
}

/// What the log lines need from the request. Method and URI are cheap clones (the URI
/// shares hyper's buffer) and a 5xx is logged even with request lines off; the clock is
/// read only when request lines are on.
struct Started {
    at: Option<Instant>,
    method: Method,
    uri: Uri,
}

impl<S> Service<Request> for ResponseService<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let started = Started {
            at: REQUEST_LINES.get().map(|_| Instant::now()),
            method: req.method().clone(),
            uri: req.uri().clone(),
        };
        ResponseFuture {
            inner: self.inner.call(req),
            started: Some(started),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response of [`ResponseService`], logged when it is ready.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        started: Option<Started>,
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.inner.poll(cx) {
            Poll::Ready(Ok(r)) => r,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        response.headers_mut().insert(API_VERSION, REGISTRY_V2);
        if let Some(started) = this.started.take() {
            log(&started, &mut response);
        }
        Poll::Ready(Ok(response))
    }
}

fn log(started: &Started, response: &mut Response) {
    let status = response.status();
    let path = started.uri.path();
    if status.is_server_error() {
        // Taken out: it has been logged, nothing downstream needs it.
        match response.extensions_mut().remove::<Arc<ApiError>>() {
            Some(error) => tracing::error!(
                method = %started.method,
                path,
                status = status.as_u16(),
                error = %Causes(&*error),
                "{error}",
            ),
            None => tracing::error!(
                method = %started.method,
                path,
                status = status.as_u16(),
                "server error",
            ),
        }
    }
    let (Some(at), Some(out)) = (started.at, REQUEST_LINES.get()) else {
        return;
    };
    let bytes = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let ms = at.elapsed().as_secs_f64() * 1000.0;
    write_request_line(out, started, status.as_u16(), bytes, ms);
}

/// An error's chain of causes, `a: b: c`, without the error's own message.
struct Causes<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut next = self.0.source();
        let mut first = true;
        while let Some(e) = next {
            if !first {
                f.write_str(": ")?;
            }
            write!(f, "{e}")?;
            first = false;
            next = e.source();
        }
        Ok(())
    }
}

/// Where request lines go, set once at start-up by [`install_request_lines`]; unset (the
/// access log off, or filtered out by `CARGOHOLD_LOG`), requests do not even read the clock.
static REQUEST_LINES: OnceLock<RequestLines> = OnceLock::new();

/// The request-line output: its writer and format.
struct RequestLines {
    writer: LogWriter,
    json: bool,
}

/// Sends request lines to `writer`, as text or JSON. Request lines bypass `tracing`: its
/// dispatch and field visiting cost more than the rest of the logging path together, and
/// a line is written on every pull. The output is what `tracing_subscriber`'s text or
/// JSON format (uncoloured) would write for target [`REQUEST_TARGET`], so log parsers see
/// one shape for every line.
pub fn install_request_lines(writer: LogWriter, json: bool) {
    // A second call (tests that build several apps in one process) keeps the first.
    let _ = REQUEST_LINES.set(RequestLines { writer, json });
}

/// One request line, built in a buffer each thread keeps.
fn write_request_line(
    out: &RequestLines,
    started: &Started,
    status: u16,
    bytes: Option<u64>,
    ms: f64,
) {
    thread_local! {
        static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    LINE.with_borrow_mut(|line| {
        line.clear();
        let now = Timestamp::of(std::time::SystemTime::now());
        let fields = LineFields {
            method: started.method.as_str(),
            path: started.uri.path(),
            status,
            bytes,
            ms,
        };
        // Writing into a String cannot fail.
        let _ = if out.json {
            format_json_line(line, now, &fields)
        } else {
            format_text_line(line, now, &fields)
        };
        // The writer only copies into its batch; it never fails.
        let _ = (&out.writer).write(line.as_bytes());
    });
}

/// A line's time as `humantime::format_rfc3339_micros` writes it, with the date and
/// time of day formatted once per second per thread: the calendar arithmetic was the
/// costliest part of a request line.
struct Timestamp {
    /// `YYYY-MM-DDTHH:MM:SS`.
    second: std::rc::Rc<str>,
    micros: u32,
}

impl Timestamp {
    fn of(now: std::time::SystemTime) -> Self {
        use std::time::{Duration, UNIX_EPOCH};
        thread_local! {
            static SECOND: std::cell::RefCell<(u64, std::rc::Rc<str>)> =
                std::cell::RefCell::new((u64::MAX, std::rc::Rc::from("")));
        }
        // A clock before 1970 (which humantime would panic on) reads as the epoch.
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let second = SECOND.with_borrow_mut(|(at, second)| {
            if *at != secs {
                let text =
                    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs));
                *second = text.to_string().trim_end_matches('Z').into();
                *at = secs;
            }
            second.clone()
        });
        Self {
            second,
            micros: since.subsec_micros(),
        }
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `{:06}` by hand: the padding path of the formatter is slow for six digits.
        let mut digits = *b".000000Z";
        let mut rest = self.micros;
        for d in digits[1..7].iter_mut().rev() {
            *d = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        f.write_str(&self.second)?;
        f.write_str(std::str::from_utf8(&digits).map_err(|_| std::fmt::Error)?)
    }
}

/// `s` as `{s:?}` writes it, without the per-character escape checks when it needs no
/// escaping (every request path a registry client sends).
fn push_debug_str(line: &mut String, s: &str) -> std::fmt::Result {
    use std::fmt::Write as _;
    if s.bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        line.push('"');
        line.push_str(s);
        line.push('"');
        Ok(())
    } else {
        write!(line, "{s:?}")
    }
}

/// What a request line says.
struct LineFields<'a> {
    method: &'a str,
    path: &'a str,
    status: u16,
    bytes: Option<u64>,
    ms: f64,
}

fn format_text_line(
    line: &mut String,
    now: impl std::fmt::Display,
    f: &LineFields<'_>,
) -> std::fmt::Result {
    use std::fmt::Write as _;
    let LineFields {
        method,
        path,
        status,
        bytes,
        ms,
    } = f;
    // Pushed piece by piece: `write!` costs a formatting pass per argument, and this
    // runs on every request. Only the float keeps `{:?}` (its shortest form).
    let mut number = itoa::Buffer::new();
    write!(line, "{now}")?;
    for piece in ["  INFO ", REQUEST_TARGET, ": method=", method, " path="] {
        line.push_str(piece);
    }
    push_debug_str(line, path)?;
    line.push_str(" status=");
    line.push_str(number.format(*status));
    if let Some(b) = bytes {
        line.push_str(" bytes=");
        line.push_str(number.format(*b));
    }
    writeln!(line, " duration_ms={ms:?}")
}

fn format_json_line(
    line: &mut String,
    now: impl std::fmt::Display,
    f: &LineFields<'_>,
) -> std::fmt::Result {
    use std::fmt::Write as _;
    write!(
        line,
        "{{\"timestamp\":\"{now}\",\"level\":\"INFO\",\"fields\":{{\"method\":\""
    )?;
    JsonEscape(line).write_str(f.method)?;
    line.push_str("\",\"path\":\"");
    JsonEscape(line).write_str(f.path)?;
    let mut number = itoa::Buffer::new();
    line.push_str("\",\"status\":");
    line.push_str(number.format(f.status));
    if let Some(b) = f.bytes {
        line.push_str(",\"bytes\":");
        line.push_str(number.format(b));
    }
    if f.ms.is_finite() {
        write!(line, ",\"duration_ms\":{:?}", f.ms)?;
    }
    writeln!(line, "}},\"target\":\"{REQUEST_TARGET}\"}}")
}

/// The inside of a JSON string.
struct JsonEscape<'a>(&'a mut String);

impl std::fmt::Write for JsonEscape<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find(|c: char| c == '"' || c == '\\' || c < ' ') {
            self.0.push_str(&rest[..i]);
            let c = rest[i..].chars().next().unwrap_or(' ');
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                '\n' => self.0.push_str("\\n"),
                '\r' => self.0.push_str("\\r"),
                '\t' => self.0.push_str("\\t"),
                c => write!(self.0, "\\u{:04x}", u32::from(c))?,
            }
            rest = &rest[i + c.len_utf8()..];
        }
        self.0.push_str(rest);
        Ok(())
    }
}

/// Buffered lines are written once this many bytes have gathered...
pub const FLUSH_BYTES: usize = 64 * 1024;
/// ...or this long after the previous write, whichever comes first.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Past this, lines are dropped and counted rather than memory grown without bound while
/// the output is stuck (a full pipe nobody reads).
const MAX_BUFFERED: usize = 16 << 20;

/// One log destination and the thread that writes to it. Dropping it writes what is still
/// buffered and waits for that write, so a clean exit loses nothing.
pub struct LogOutput {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    /// Lines refused because `buf` was full.
    dropped: u64,
    /// A line that should not wait for the batch (a warning, the start-up line).
    urgent: bool,
    reopen: bool,
    stop: bool,
}

enum Sink {
    Stderr,
    File {
        path: PathBuf,
        file: File,
        failing: bool,
    },
}

impl LogOutput {
    /// Lines to stderr.
    pub fn stderr() -> io::Result<Self> {
        Self::start(Sink::Stderr)
    }

    /// Lines appended to `path`, created if missing; see [`Reopen`].
    pub fn file(path: &Path) -> io::Result<Self> {
        Self::start(Sink::File {
            path: path.to_owned(),
            file: open_append(path)?,
            failing: false,
        })
    }

    fn start(sink: Sink) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::with_capacity(FLUSH_BYTES),
                ..State::default()
            }),
            wake: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn({
                let shared = shared.clone();
                move || write_loop(&shared, sink)
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// A writer for `tracing_subscriber::fmt`: `batched` lines wait for the batch, the
    /// others are written at once (with whatever is buffered before them, in order).
    pub fn writer(&self, batched: bool) -> LogWriter {
        LogWriter {
            shared: self.shared.clone(),
            urgent: !batched,
        }
    }

    /// The handle SIGHUP uses to reopen the file.
    pub fn reopener(&self) -> Reopen {
        Reopen {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for LogOutput {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Closes and reopens a [`LogOutput::file`] by its path once what is buffered is written,
/// so logrotate can rename the file and signal; a no-op on stderr.
#[derive(Clone)]
pub struct Reopen {
    shared: Arc<Shared>,
}

impl Reopen {
    /// Reopens the log file at its path (after logrotate moved it away).
    pub fn reopen(&self) {
        lock(&self.shared.state).reopen = true;
        self.shared.wake.notify_one();
    }
}

/// See [`LogOutput::writer`].
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
    urgent: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = &'a LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Write for &LogWriter {
    /// `fmt` hands over each event whole, in one call.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut state = lock(&self.shared.state);
        let before = state.buf.len();
        if before + line.len() > MAX_BUFFERED {
            state.dropped += 1;
            return Ok(line.len());
        }
        state.buf.extend_from_slice(line);
        // Wake the writer only on the line that fills the batch: waking is a syscall.
        let wake = if self.urgent {
            !std::mem::replace(&mut state.urgent, true)
        } else {
            before < FLUSH_BYTES && state.buf.len() >= FLUSH_BYTES
        };
        drop(state);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves at worst a partial line: keep logging.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn write_loop(shared: &Shared, mut sink: Sink) {
    let mut batch = Vec::with_capacity(FLUSH_BYTES);
    loop {
        let (reopen, stop, dropped) = {
            let mut state = lock(&shared.state);
            let due = |s: &State| s.stop || s.reopen || s.urgent || s.buf.len() >= FLUSH_BYTES;
            if !due(&state) {
                state = shared
                    .wake
                    .wait_timeout_while(state, FLUSH_EVERY, |s| !due(s))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            // Swap rather than copy: the lock is held for no longer than a line's append.
            std::mem::swap(&mut state.buf, &mut batch);
            state.urgent = false;
            (
                std::mem::take(&mut state.reopen),
                state.stop,
                std::mem::take(&mut state.dropped),
            )
        };
        if dropped > 0 {
            let _ = writeln!(
                batch,
                "cargohold: {dropped} log lines dropped: the log output could not keep up"
            );
        }
        if !batch.is_empty() {
            sink.write(&batch);
        }
        batch.clear();
        // Give back what a burst grew it to.
        if batch.capacity() > 4 * FLUSH_BYTES {
            batch = Vec::with_capacity(FLUSH_BYTES);
        }
        if reopen {
            sink.reopen();
        }
        if stop {
            return;
        }
    }
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) {
        match self {
            // Nowhere left to report a failing stderr.
            Self::Stderr => {
                let _ = io::stderr().lock().write_all(bytes);
            }
            Self::File {
                path,
                file,
                failing,
            } => match file.write_all(bytes) {
                Ok(()) => *failing = false,
                Err(e) => {
                    // Once per run of failures (a full disk), not once per batch.
                    if !std::mem::replace(failing, true) {
                        eprintln!("cargohold: writing access log {}: {e}", path.display());
                    }
                }
            },
        }
    }

    fn reopen(&mut self) {
        if let Self::File { path, file, .. } = self {
            match open_append(path) {
                Ok(f) => *file = f,
                // Keep writing to the old file rather than lose the lines.
                Err(e) => eprintln!("cargohold: reopening access log {}: {e}", path.display()),
            }
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    File::options().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::fmt::writer::BoxMakeWriter;

    use super::*;

    /// What tracing-subscriber's own format writes for a request event, timestamp cut.
    fn tracing_line(json: bool, f: &LineFields<'_>) -> String {
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = Arc::clone(&out);
        let make = BoxMakeWriter::new(move || Capture(Arc::clone(&sink)));
        let builder = tracing_subscriber::fmt().with_ansi(false).with_writer(make);
        let event = || {
            tracing::info!(
                target: REQUEST_TARGET,
                method = %f.method,
                path = f.path,
                status = f.status,
                bytes = f.bytes,
                duration_ms = f.ms,
            )
        };
        if json {
            tracing::subscriber::with_default(builder.json().finish(), event);
        } else {
            tracing::subscriber::with_default(builder.finish(), event);
        }
        let text = String::from_utf8(out.lock().expect("lock").clone()).expect("utf-8");
        cut_timestamp(&text)
    }

    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn cut_timestamp(line: &str) -> String {
        match line.strip_prefix("{\"timestamp\":\"") {
            Some(rest) => rest.split_once('"').map(|(_, r)| r.to_owned()),
            None => line.split_once(' ').map(|(_, r)| r.to_owned()),
        }
        .unwrap_or_default()
    }

    #[test]
    fn request_lines_are_what_tracing_would_write() {
        for path in ["/v2/a/manifests/latest", "/v2/odd\"path\\x\u{1}/\u{e9}"] {
            for bytes in [Some(396), None] {
                let f = LineFields {
                    method: "GET",
                    path,
                    status: 200,
                    bytes,
                    ms: 0.125,
                };
                for json in [false, true] {
                    let mut ours = String::new();
                    let formatted = if json {
                        format_json_line(&mut ours, "T", &f)
                    } else {
                        format_text_line(&mut ours, "T", &f)
                    };
                    assert!(formatted.is_ok());
                    assert_eq!(cut_timestamp(&ours), tracing_line(json, &f), "json={json}");
                }
            }
        }
    }

    /// The cached second gives what humantime writes, across second boundaries.
    #[test]
    fn timestamps_are_humantimes() {
        use std::time::{Duration, UNIX_EPOCH};
        let base = UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        for offset_us in [0, 1, 999_999, 1_000_000, 1_000_001, 86_400_000_000, 3] {
            let t = base + Duration::from_micros(offset_us);
            let want = humantime::format_rfc3339_micros(t).to_string();
            assert_eq!(Timestamp::of(t).to_string(), want);
        }
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn batches_by_size_and_time_flushes_on_drop_and_reopens() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("access.log");
        let out = LogOutput::file(&path)?;
        let mut w = &out.writer(true);

        w.write_all(b"one\n")?;
        // Written within FLUSH_EVERY, not at once.
        let t = Instant::now();
        while lines(&path).is_empty() {
            assert!(t.elapsed() < FLUSH_EVERY * 3, "not flushed in time");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(lines(&path), ["one"]);

        // A full batch goes out without waiting for the tick.
        let line = [b'x'; 1023];
        for _ in 0..FLUSH_BYTES / 1024 {
            w.write_all(&line)?;
            w.write_all(b"\n")?;
        }
        let t = Instant::now();
        while lines(&path).len() < 1 + FLUSH_BYTES / 1024 {
            assert!(t.elapsed() < FLUSH_EVERY * 3, "full batch not flushed");
            std::thread::sleep(Duration::from_millis(5));
        }

        // logrotate: rename, signal, and the next lines start a new file.
        let rotated = dir.path().join("access.log.1");
        std::fs::rename(&path, &rotated)?;
        out.reopener().reopen();
        let t = Instant::now();
        while !path.exists() {
            assert!(t.elapsed() < FLUSH_EVERY * 3, "not reopened");
            std::thread::sleep(Duration::from_millis(5));
        }
        w.write_all(b"two\n")?;
        drop(out);
        assert_eq!(lines(&path), ["two"]);
        assert_eq!(lines(&rotated).len(), 1 + FLUSH_BYTES / 1024);
        Ok(())
    }
}
