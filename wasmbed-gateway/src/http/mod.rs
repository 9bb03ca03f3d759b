//! The HTTP side of the gateway (`--http ADDR`, docs/HOST-API.md "HTTP API", docs/dashboard.md):
//! a JSON API that carries the Wasmbed dialect's requests and replies over HTTP, server-sent
//! events for logs, job results, upload progress and device state, and the dashboard pages
//! (server-rendered, live through htmx's SSE extension, assets embedded in the binary).
//!
//! This gateway's devices (`pages.rs`, `api.rs`, `events.rs`) and, with `--fleet`, the fleet's
//! applications, gateways and Device records (`fleet.rs`).

mod api;
mod assets;
mod auth;
mod events;
mod fleet;
pub mod latency;
mod pages;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

pub use latency::LatencyBook;
pub use wasmbed_api::latency::{
    Bucket, LatencyReport, LatencySample, LatencySummary, LatencyWindow, Percentiles,
};

use crate::api::Gateway;

/// What the HTTP handlers share.
pub struct Http {
    /// The gateway (devices, pipeline, token, latency book).
    pub gw: Arc<Gateway>,
    /// Progress of uploads started over HTTP: (device, event), for the device pages.
    progress: broadcast::Sender<(String, wasmbed_api::Event)>,
}

impl Http {
    /// HTTP state over a gateway.
    pub fn new(gw: Arc<Gateway>) -> Arc<Self> {
        let (progress, _) = broadcast::channel(256);
        Arc::new(Self { gw, progress })
    }
}

/// All routes: pages, fragments and event streams for the pages, the JSON API, assets.
pub fn router(http: Arc<Http>) -> Router {
    let max_body = http.gw.limits.max_body;
    let protected = Router::new()
        .route("/", get(pages::devices))
        .route("/devices/{name}", get(pages::device))
        .route("/latency", get(pages::latency))
        .route("/ui/devices/rows", get(pages::device_rows))
        .route("/ui/latency/table", get(pages::latency_rows))
        .route("/ui/devices/events", get(events::ui_devices))
        .route("/ui/devices/{name}/slots", get(pages::slots))
        .route("/ui/devices/{name}/events", get(events::ui_device))
        .route("/api/devices", get(api::devices))
        .route("/api/devices/{name}/info", get(api::info))
        .route("/api/devices/{name}/status", get(api::status))
        .route("/api/devices/{name}/deploy", post(api::deploy))
        .route("/api/devices/{name}/start", post(api::start))
        .route("/api/devices/{name}/stop", post(api::stop))
        .route("/api/devices/{name}/unload", post(api::unload))
        .route("/api/devices/{name}/approve", post(api::approve))
        .route("/api/devices/{name}/forget", post(api::forget))
        .route("/api/devices/{name}/logs", get(api::logs))
        .route("/api/devices/{name}/events", get(events::api_device))
        .route("/api/events", get(events::api_devices))
        .route("/api/latency", get(api::latency))
        .route("/apps", get(fleet::page))
        .route("/ui/apps/events", get(fleet::ui_events))
        .route("/api/apps", get(fleet::api_apps))
        .route("/api/gateways", get(fleet::api_gateways))
        .route("/gateways", get(fleet::gateways_page))
        .route("/ui/gateways/events", get(fleet::ui_gateway_events))
        .route("/api/fleet/devices", get(fleet::api_devices))
        .route_layer(axum::middleware::from_fn_with_state(
            http.clone(),
            auth::require_token,
        ));
    Router::new()
        .merge(protected)
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/assets/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            http.clone(),
            auth::same_origin,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(http)
}

/// Serves HTTP on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, http: Arc<Http>) {
    let app = router(http).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!("HTTP server stopped: {e}");
    }
}

/// Serves HTTPS on `listener` (`[tls]`) until the task is dropped.
pub async fn serve_tls(listener: crate::tls::HttpListener, http: Arc<Http>) {
    use axum::serve::ListenerExt;
    let app = router(http).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener.tap_io(|_| {}), app).await {
        tracing::warn!("HTTPS server stopped: {e}");
    }
}
