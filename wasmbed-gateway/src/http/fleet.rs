//! The fleet's pages and API (a gateway started with `--fleet`): applications with their state on
//! every device (desired vs reported, rollout progress), the gateways, and every device of the
//! fleet as its owning gateway reports it.
//!
//! - `GET /apps`: the applications, live through `GET /ui/apps/events` (event `apps`, the
//!   table's body as HTML, sent when it changes).
//! - `GET /gateways`: the gateways and the fleet's devices, live through
//!   `GET /ui/gateways/events` (events `gateways` and `devices`).
//! - `GET /api/apps`: every application with its aggregate status (JSON, the shape of
//!   `wasmbed-host get apps --json`); `GET /api/gateways`: the Gateway records;
//!   `GET /api/fleet/devices`: the Device records (reported state per device).

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
    /// The Device records, with `status.online` and `status.claimed` as the fleet sees them.
    devices: Vec<Value>,
}

async fn fleet_view(http: &Http) -> Result<FleetView, String> {
    let Some(m) = http.gw.fleet.get() else {
        return Err("this gateway is not in a fleet (start it with --fleet nats://…)".into());
    };
    let c = m.client();
    let store = AppStore::open(&c.jetstream(), m.replicas())
        .await
        .map_err(|e| e.to_string())?;
    let records = c.devices().await.map_err(|e| e.to_string())?;
    let candidates = apps::candidates(&records);
    let statuses = store.statuses(None).await.map_err(|e| e.to_string())?;
    let apps = store
        .list()
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(|a| apps::summarize(a, &candidates, &statuses))
        .collect();
    let gateways = c.gateways().await.map_err(|e| e.to_string())?;
    Ok(FleetView {
        apps,
        gateways,
        devices: records,
    })
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

/// The fleet devices table's body: each Device record as its owner reports it.
pub fn fleet_device_rows_html(devices: &[Value]) -> Markup {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let text = |v: &Value| match v {
        Value::Null => "–".to_string(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    html! {
        @for d in devices {
            @let s = &d["status"];
            @let name = d["metadata"]["name"].as_str().unwrap_or("?");
            tr data-device=(name) data-gateway=(text(&s["gateway"])) data-online=(s["online"] == true) {
                th scope="row" { (name) }
                td { @if s["online"] == true { span.badge.ok { "online" } } @else { span.badge.bad { "offline" } } }
                td { (text(&s["gateway"])) @if s["claimed"] != true { " " span.muted { "(no claim)" } } }
                td { (text(&s["board"])) }
                td { (text(&s["firmware"])) }
                td { (text(&s["proto"])) }
                td { (text(&s["slotsUsed"])) " / " (text(&s["slotsTotal"])) }
                td { (s["lastSeenMs"].as_u64().map_or_else(|| "never".to_string(), |t| format!("{:.1} s ago", now.saturating_sub(t) as f64 / 1e3))) }
                td { (d["metadata"]["labels"].as_object().map(|l| l.iter().map(|(k, v)| format!("{k}={}", text(v))).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
            }
        }
        @if devices.is_empty() {
            tr { td colspan="9" { "No device reported to the fleet yet." } }
        }
    }
}

/// `GET /apps`: the fleet's applications, live.
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
                    p { "The gateways and every device of the fleet: " a href="/gateways" { "Gateways" } "." }
                }
            }
        },
    )
}

/// `GET /gateways`: the fleet's gateways and devices, live.
pub async fn gateways_page(State(http): State<Arc<Http>>) -> Markup {
    let view = fleet_view(&http).await;
    pages::layout(
        "Gateways",
        "gateways",
        html! {
            h1 { "Gateways" }
            @match view {
                Err(e) => p.muted #nofleet { (e) },
                Ok(v) => div hx-ext="sse" sse-connect="/ui/gateways/events" {
                    div.scroll { table #gateways {
                        caption.sr { "Gateways of the fleet, updated live" }
                        thead { tr {
                            th scope="col" { "Gateway" } th scope="col" { "State" } th scope="col" { "Devices" }
                            th scope="col" { "Serving" } th scope="col" { "Version" }
                        } }
                        tbody sse-swap="gateways" { (gateway_rows_html(&v.gateways)) }
                    } }
                    h2 { "Devices of the fleet" }
                    p.muted { "As each device's owning gateway reports it (online only while that gateway holds the device's claim)." }
                    div.scroll { table #fleet-devices {
                        thead { tr {
                            th scope="col" { "Device" } th scope="col" { "State" } th scope="col" { "Gateway" }
                            th scope="col" { "Board" } th scope="col" { "Firmware" } th scope="col" { "Protocol" }
                            th scope="col" { "Slots" } th scope="col" { "Reported" } th scope="col" { "Labels" }
                        } }
                        tbody sse-swap="devices" { (fleet_device_rows_html(&v.devices)) }
                    } }
                }
            }
        },
    )
}

/// A page's live tables: (event name, the table body as HTML) from the fleet's state.
type Tables = fn(&FleetView) -> Vec<(&'static str, Markup)>;

/// `GET /ui/apps/events`: the applications table's body whenever it changes.
pub async fn ui_events(State(http): State<Arc<Http>>) -> Response {
    events::sse(|tx| tables_loop(http, tx, |v| vec![("apps", app_rows_html(&v.apps))]))
}

/// `GET /ui/gateways/events`: the gateways and fleet devices tables' bodies when they change.
pub async fn ui_gateway_events(State(http): State<Arc<Http>>) -> Response {
    events::sse(|tx| {
        tables_loop(http, tx, |v| {
            vec![
                ("gateways", gateway_rows_html(&v.gateways)),
                ("devices", fleet_device_rows_html(&v.devices)),
            ]
        })
    })
}

/// Recomputes `tables` every [`POLL`] and sends the ones that changed, until the client goes.
async fn tables_loop(http: Arc<Http>, tx: mpsc::Sender<Result<Event, Infallible>>, tables: Tables) {
    let mut last: Vec<String> = Vec::new();
    let mut tick = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            _ = tx.closed() => return,
            _ = tick.tick() => {}
        }
        let Ok(v) = fleet_view(&http).await else {
            continue;
        };
        for (i, (event, html)) in tables(&v).into_iter().enumerate() {
            let html = html.into_string();
            if last.get(i) == Some(&html) {
                continue;
            }
            if tx
                .send(Ok(Event::default().event(event).data(html.clone())))
                .await
                .is_err()
            {
                return;
            }
            match last.get_mut(i) {
                Some(l) => *l = html,
                None => last.push(html),
            }
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

/// `GET /api/fleet/devices`.
pub async fn api_devices(State(http): State<Arc<Http>>) -> Response {
    match fleet_view(&http).await {
        Ok(v) => Json(json!({"devices": v.devices})).into_response(),
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
