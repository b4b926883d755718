//! cargohold's OCI Distribution v1.1 API server.
//!
//! [`router`] builds the axum app for an [`AppState`]; the `cargohold` binary in `main.rs`
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

use axum::Router;
use axum::routing::{get, post};

pub use handlers::{RangeRequest, decode_path, parse_content_range, parse_range};
pub use state::AppState;

/// The registry's HTTP application.
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
