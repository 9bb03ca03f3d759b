//! The fleet's page and API (a gateway started with `--fleet`): applications with their state on
//! every device (desired vs reported, rollout progress) and the gateways.
//!
//! - `GET /apps`: the page, live through `GET /ui/apps/events` (events `apps` and `gateways`,
//!   the tables' bodies as HTML, sent when they change).
//! - `GET /api/apps`: every application with its aggregate status (JSON, the shape of
//!   `wasmbed-host get apps --json`); `GET /api/gateways`: the Gateway records.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use axum::Json;
use maud::{html, Markup};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use wasmbed_api::app::{AppPhase, AppSummary};

use super::{events, pages, Http};
use crate::fleet::apps::{self, AppStore};

/// How often the page's tables are recomputed from the fleet.
const POLL: Duration = Duration::from_millis(1000);

/// What the fleet page shows.
struct FleetView {
    apps: Vec<AppSummary>,
    gateways: Vec<Value>,
}

async fn fleet_view(http: &Http) -> Result<FleetView, String> {
    let Some(m) = http.gw.fleet.get() else {
        return Err("this gateway is not in a fleet (start it with --fleet nats://…)".into());
    };
    let c = m.client();
    let store = AppStore::open(&c.jetstream(), m.replicas())
        .await
        .map_err(|e| e.to_string())?;
    let devices = apps::candidates(&c.devices().await.map_err(|e| e.to_string())?);
    let statuses = store.statuses(None).await.map_err(|e| e.to_string())?;
    let apps = store
        .list()
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(|a| apps::summarize(a, &devices, &statuses))
        .collect();
    let gateways = c.gateways().await.map_err(|e| e.to_string())?;
    Ok(FleetView { apps, gateways })
}

fn phase_badge(p: AppPhase) -> Markup {
    let text = format!("{p:?}");
    html! {
        @match p {
            AppPhase::Running | AppPhase::Completed => span.badge.ok { (text) },
            AppPhase::Failed => span.badge.bad { (text) },
            _ => span.badge.run { (text) },
        }
    }
}

/// The applications table's body: one row per application, then one per device.
pub fn app_rows_html(apps: &[AppSummary]) -> Markup {
    html! {
        @for s in apps {
            tr.app data-app=(s.app.metadata.name) data-converged=(s.status.converged) {
                th scope="row" { (s.app.metadata.name) }
                td { (s.app.metadata.generation) }
                td data-ready=(s.status.ready) { (s.status.ready) " / " (s.status.desired) }
                td { (s.status.updated) }
                td { @if s.status.converged { span.badge.ok { "converged" } } @else { span.badge.run { "rolling out" } } }
                td { code { (s.app.spec.module.sha256.as_deref().map(|h| &h[..12.min(h.len())]).unwrap_or("–")) } }
            }
            @for d in &s.status.devices {
                tr.appdev data-app=(s.app.metadata.name) data-device=(d.device) data-phase=(format!("{:?}", d.phase)) {
                    td { "↳ " a href={"/devices/" (d.device)} { (d.device) } }
                    td { (d.deployed_generation) " / " (s.app.metadata.generation) }
                    td { (phase_badge(d.phase)) }
                    td { (d.gateway) }
                    td { (d.job_state.as_deref().unwrap_or("–")) }
                    td { (d.error.as_deref().or(d.last_result.as_deref()).unwrap_or("")) }
                }
            }
        }
        @if apps.is_empty() {
            tr { td colspan="6" { "No applications: create one with `wasmbed-host --fleet … apply -f app.toml`." } }
        }
    }
}

/// The gateways table's body.
pub fn gateway_rows_html(gateways: &[Value]) -> Markup {
    html! {
        @for g in gateways {
            tr data-gateway=(g["metadata"]["name"].as_str().unwrap_or("?")) {
                th scope="row" { (g["metadata"]["name"].as_str().unwrap_or("?")) }
                td { @if g["status"]["online"] == true { span.badge.ok { "online" } } @else { span.badge.bad { "offline" } } }
                td { (g["status"]["load"]["devicesServed"]) }
                td { (g["status"]["serving"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                td { (g["status"]["version"].as_str().unwrap_or("–")) }
            }
        }
    }
}

/// `GET /apps`: applications and gateways of the fleet, live.
pub async fn page(State(http): State<Arc<Http>>) -> Markup {
    let view = fleet_view(&http).await;
    pages::layout(
        "Applications",
        "apps",
        html! {
            h1 { "Applications" }
            @match view {
                Err(e) => p.muted #nofleet { (e) },
                Ok(v) => div hx-ext="sse" sse-connect="/ui/apps/events" {
                    div.scroll { table #apps {
                        caption.sr { "Applications of the fleet and their state on each device, updated live" }
                        thead { tr {
                            th scope="col" { "Application / device" } th scope="col" { "Generation" }
                            th scope="col" { "Ready / phase" } th scope="col" { "Up to date / gateway" }
                            th scope="col" { "Rollout / job" } th scope="col" { "Module / result" }
                        } }
                        tbody sse-swap="apps" { (app_rows_html(&v.apps)) }
                    } }
                    h2 { "Gateways" }
                    div.scroll { table #gateways {
                        thead { tr {
                            th scope="col" { "Gateway" } th scope="col" { "State" } th scope="col" { "Devices" }
                            th scope="col" { "Serving" } th scope="col" { "Version" }
                        } }
                        tbody sse-swap="gateways" { (gateway_rows_html(&v.gateways)) }
                    } }
                }
            }
        },
    )
}

/// `GET /ui/apps/events`: the two tables' bodies whenever they change.
pub async fn ui_events(State(http): State<Arc<Http>>) -> Response {
    events::sse(|tx| apps_loop(http, tx))
}

async fn apps_loop(http: Arc<Http>, tx: mpsc::Sender<Result<Event, Infallible>>) {
    let (mut last_apps, mut last_gws) = (String::new(), String::new());
    let mut tick = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            _ = tx.closed() => return,
            _ = tick.tick() => {}
        }
        let Ok(v) = fleet_view(&http).await else {
            continue;
        };
        let a = app_rows_html(&v.apps).into_string();
        if a != last_apps {
            if tx
                .send(Ok(Event::default().event("apps").data(a.clone())))
                .await
                .is_err()
            {
                return;
            }
            last_apps = a;
        }
        let g = gateway_rows_html(&v.gateways).into_string();
        if g != last_gws {
            if tx
                .send(Ok(Event::default().event("gateways").data(g.clone())))
                .await
                .is_err()
            {
                return;
            }
            last_gws = g;
        }
    }
}

fn unavailable(e: String) -> Response {
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        Json(
            json!({"ok": false, "error": {"code": "INTERNAL", "message": e,
            "help": "start the gateway with --fleet, and check the fleet's NATS servers"}}),
        ),
    )
        .into_response()
}

/// `GET /api/apps`.
pub async fn api_apps(State(http): State<Arc<Http>>) -> Response {
    match fleet_view(&http).await {
        Ok(v) => Json(json!({"apps": v.apps})).into_response(),
        Err(e) => unavailable(e),
    }
}

/// `GET /api/gateways`.
pub async fn api_gateways(State(http): State<Arc<Http>>) -> Response {
    match fleet_view(&http).await {
        Ok(v) => Json(json!({"gateways": v.gateways})).into_response(),
        Err(e) => unavailable(e),
    }
}
