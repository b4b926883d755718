//! Accepting connections, with the limits that keep slow or idle clients from holding the
//! server: a deadline for each request's header, an idle timeout between body bytes, a
//! cap on open connections, and a bound on the bytes a request head may take.
//!
//! `axum::serve` sets none of these (it runs hyper without a timer, so a connection that
//! never finishes its header stays open for ever), hence this loop over hyper's HTTP/1.1
//! connection builder. It speaks HTTP/1.1 only: prior-knowledge h2c, which no registry
//! client uses over plain TCP, would need a protocol sniff that has no deadline of its own.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::timeout::TimeoutBody;

use crate::App;
use crate::client_ip::{ClientIp, TrustedProxies};
use crate::error::{ApiError, OciCode};

/// Hyper's buffer bound, for reading and for writing alike. Reading: the most a request
/// line and header may take (hyper answers `431` beyond it); hyper's default, ~400 KB,
/// lets each of a thousand slow clients hold that much. Writing: hyper asks the body for
/// its next chunk only while less than this is queued, so it must exceed one blob chunk
/// (the filesystem store reads 256 KiB at a time) for the next read to overlap the socket
/// write; at 64 KiB every chunk waited for the previous one's flush and blob GETs lost a
/// fifth of their throughput. 320 KiB is one chunk and a header's worth over it.
pub const MAX_HEAD_BYTES: usize = 320 * 1024;

/// Connection limits; see docs/configuration.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's line and header, counted from the
    /// connection's start or the end of the previous response: it is also the keep-alive
    /// idle timeout.
    pub header_timeout: Duration,
    /// How long a request body may go without a byte arriving.
    pub body_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and waits
/// for the requests in flight (idle connections close at once).
pub async fn serve(
    listener: TcpListener,
    app: App,
    limits: ConnectionLimits,
    proxies: Arc<TrustedProxies>,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    tokio::pin!(shutdown);
    loop {
        // The permit first: at the cap, connections wait in the kernel's backlog rather
        // than being accepted and starved.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break, // never closed
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before accept: wait
                    // a moment rather than spin, and go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let body_timeout = limits.body_timeout;
        let proxies = proxies.clone();
        let service = tower::service_fn(move |mut request: Request<Incoming>| {
            let app = app.clone();
            let client = proxies.client(peer.ip(), request.headers());
            request.extensions_mut().insert(ClientIp(client));
            async move { Ok::<_, Infallible>(handle(app, body_timeout, request).await) }
        });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are the client's: a reset, a malformed head, a header timeout.
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// One request: refused without `Host` (RFC 9112 §3.2), else handed to the router with
/// its body under the idle timeout. The client's address travels as [`ClientIp`] alone:
/// an extension costs an allocation on every request.
async fn handle(app: App, body_timeout: Duration, request: Request<Incoming>) -> Response {
    if request.version() == Version::HTTP_11 && !request.headers().contains_key(header::HOST) {
        return ApiError::with_status(
            OciCode::Unsupported,
            StatusCode::BAD_REQUEST,
            "an HTTP/1.1 request must carry a Host header",
        )
        .into_response();
    }
    let request = request.map(|b| Body::new(TimeoutBody::new(body_timeout, b)));
    app.call(request).await
}
