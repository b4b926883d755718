//! cargohold's OCI Distribution v1.1 API server.
//!
//! [`App`] is the HTTP application for an [`AppState`]; the `cargohold` binary in `main.rs`
//! wires it to configuration, logging and a listener. Paths are parsed once into a
//! [`route::Route`]; handlers answer from the sparse [`index`] and the `blob-gateway` store,
//! and every failure is an [`error::ApiError`] in the spec's error envelope.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod client_ip;
pub mod config;
pub mod direct;
pub mod error;
mod handlers;
pub mod index;
pub mod logging;
pub mod mirror;
pub mod route;
pub mod server;
pub mod sessions;
mod state;
pub mod storage;
pub mod ui;
pub mod upload_url;

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::body::HttpBody as _;
use axum::extract::Request;
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use axum::routing::{get, post};
use tower::{Layer, ServiceExt};

pub use handlers::{RangeRequest, decode_path, parse_content_range, parse_range};
pub use state::AppState;

/// The registry's HTTP application. A `/v2/<rest>` path goes straight to the handler
/// that parses it ([`route::Route`]): axum's router would first fail to match it against
/// every fixed route and then take its fallback, about a sixth of a manifest GET's
/// instructions. The fixed paths (base, token, browse UI) go through [`router`].
#[derive(Clone)]
pub struct App {
    state: AppState,
    routes: Router,
}

impl App {
    /// The application over `state`.
    pub fn new(state: AppState) -> Self {
        Self {
            routes: router(state.clone()),
            state,
        }
    }

    /// Answers one request.
    pub async fn call(&self, request: Request) -> Response {
        let path = request.uri().path();
        let result = if path.len() > "/v2/".len() && path.starts_with("/v2/") {
            let method = request.method().clone();
            let state = self.state.clone();
            let dispatch = tower::service_fn(move |request| {
                let answer = Handler::call(handlers::dispatch, request, state.clone());
                async move { Ok::<_, Infallible>(answer.await) }
            });
            logging::ResponseLayer
                .layer(dispatch)
                .oneshot(request)
                .await
                .map(|r| as_router_would(&method, r))
        } else {
            self.routes.clone().oneshot(request).await
        };
        match result {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// What axum's router does to every response it returns: a `Content-Length` from a body
/// of known size, and no body for `HEAD` (after its length is taken).
fn as_router_would(method: &Method, mut response: Response) -> Response {
    if !response.headers().contains_key(header::CONTENT_LENGTH)
        && let Some(size) = response.body().size_hint().exact()
    {
        let length = HeaderValue::from_str(itoa::Buffer::new().format(size));
        if let Ok(length) = length {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, length);
        }
    }
    if method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    response
}

/// The router for the fixed paths, with [`handlers::dispatch`] for any other.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v2", get(handlers::base).head(handlers::base))
        .route("/v2/", get(handlers::base).head(handlers::base))
        .route(
            "/token",
            get(auth::endpoint::token).merge(post(auth::endpoint::token)),
        )
        // The browse UI and the documents it reads (ui.rs).
        .route("/", get(ui::page))
        .route("/ui/{file}", get(ui::asset))
        .route("/index/{*doc}", get(ui::document))
        .route("/config.json", get(ui::document))
        // Every other path, `/v2/<rest>` or not, is parsed by `dispatch` itself: a fallback
        // spares each request the router's path-parameter and matched-path bookkeeping.
        .fallback(handlers::dispatch)
        .with_state(state)
        .layer(logging::ResponseLayer)
}
