//! The layer every response passes through: it adds `Docker-Distribution-API-Version`
//! and logs one line per request (method, path, status, bytes, duration).
//!
//! Written as a plain tower layer rather than `axum::middleware::from_fn`, which boxes a
//! clone of the inner service and its future on every request: this runs on every pull.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use tower::{Layer, Service};

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
pub struct ResponseService<S> {
    inner: S,
}

/// What the log line needs from the request; taken only when request lines are enabled.
struct Started {
    at: Instant,
    method: Method,
    path: String,
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
        let started =
            tracing::enabled!(target: "cargohold::request", tracing::Level::INFO).then(|| {
                Started {
                    at: Instant::now(),
                    method: req.method().clone(),
                    path: req.uri().path().to_owned(),
                }
            });
        ResponseFuture {
            inner: self.inner.call(req),
            started,
        }
    }
}

pin_project_lite::pin_project! {
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
            log(&started, &response);
        }
        Poll::Ready(Ok(response))
    }
}

fn log(started: &Started, response: &Response) {
    let bytes = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    tracing::info!(
        target: "cargohold::request",
        method = %started.method,
        path = %started.path,
        status = response.status().as_u16(),
        bytes,
        duration_ms = started.at.elapsed().as_secs_f64() * 1000.0,
    );
}
