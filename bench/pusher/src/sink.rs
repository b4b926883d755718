//! `pusher sink`: a registry-shaped null server that accepts uploads and discards the
//! bytes, to measure the pusher's own ceiling (README, "Caveats").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode};
use futures::StreamExt;

use crate::Res;

/// Serves on `listen` for at most `secs` seconds.
pub async fn serve(listen: &str, secs: u64) -> Res<()> {
    let ctr = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let ctr = ctr.clone();
        async move {
            let method = req.method().clone();
            let path = req.uri().path().to_owned();
            let mut stream = req.into_body().into_data_stream();
            while let Some(Ok(_)) = stream.next().await {}
            let id = ctr.fetch_add(1, Ordering::Relaxed);
            let (st, loc) = match method {
                Method::POST => (StatusCode::ACCEPTED, format!("/v2/sink/blobs/uploads/{id}")),
                Method::PATCH => (StatusCode::ACCEPTED, path),
                Method::PUT => (StatusCode::CREATED, path),
                _ => (StatusCode::OK, path),
            };
            Response::builder()
                .status(st)
                .header("Location", loc)
                .body(Body::empty())
                .expect("static parts")
        }
    });
    let l = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("bind {listen}: {e}"))?;
    eprintln!("sink listening on {listen} for {secs} s");
    let _ = tokio::time::timeout(Duration::from_secs(secs), axum::serve(l, app)).await;
    Ok(())
}
