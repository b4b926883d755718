//! Integration tests: each talks HTTP to a real `cargohold serve` on a loopback port.
//! One module per area of the distribution spec; `util` holds the harness.

mod auth;
mod blobs;
mod browse;
mod concurrency;
mod crash;
mod direct;
mod discovery;
mod hostile;
mod index_repair;
mod logging;
mod manifests;
mod memory;
mod mirror_sync;
mod names;
mod redirect;
mod resume;
mod unavailable;
mod upload_url;
mod uploads;
mod util;
