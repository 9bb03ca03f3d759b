//! The dashboard's pages and the HTML fragments their live parts swap in (maud templates).
//!
//! Pages: `/` (devices), `/devices/{name}` (one device), `/latency`; a fleet's `/apps` and
//! `/gateways` are in `fleet.rs`, linked from [`layout`]'s navigation.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::events::DeviceView;
use super::{api::not_found, Http};
use crate::device::{JobRecord, JobState, LogEntry, LogKind};

/// Log lines a device page shows when it opens (and keeps, live).
pub const LOG_LINES: usize = 200;

pub(super) fn layout(title: &str, nav: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Wasmbed" }
                link rel="icon" href="/assets/favicon.svg";
                link rel="stylesheet" href="/assets/app.css";
                link rel="stylesheet" href="/assets/uPlot.min.css";
                script src="/assets/htmx.min.js" defer {}
                script src="/assets/htmx-ext-sse.min.js" defer {}
                script src="/assets/uPlot.iife.min.js" defer {}
                script src="/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    nav aria-label="Main" {
                        span.brand { "Wasmbed gateway" }
                        a href="/" aria-current=[(nav == "devices").then_some("page")] { "Devices" }
                        a href="/latency" aria-current=[(nav == "latency").then_some("page")] { "Latency" }
                        a href="/apps" aria-current=[(nav == "apps").then_some("page")] { "Applications" }
                        a href="/gateways" aria-current=[(nav == "gateways").then_some("page")] { "Gateways" }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// The sign-in page (a gateway with a token).
pub fn login(error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        "",
        html! {
            h1 { "Sign in" }
            p { "This gateway requires its token (the contents of its token file)." }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/login" {
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Sign in" }
            }
        },
    )
}

fn age(ms: Option<u64>) -> String {
    match ms {
        None => "never".into(),
        Some(ms) if ms < 1000 => "just now".into(),
        Some(ms) if ms < 120_000 => format!("{} s ago", ms / 1000),
        Some(ms) => format!("{} min ago", ms / 60_000),
    }
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "–".into(), |v| v.to_string())
}

fn kib(b: u64) -> String {
    format!("{:.1} KiB", b as f64 / 1024.0)
}

fn memory(v: &DeviceView) -> String {
    match (v.pool_free, v.pool_total) {
        (Some(f), Some(t)) => format!("{} free of {}", kib(f), kib(t)),
        (None, Some(t)) => kib(t),
        _ => "–".into(),
    }
}

fn slots_text(v: &DeviceView) -> String {
    match (v.summary.slots_used, v.summary.slots_total) {
        (Some(u), Some(t)) => format!("{u} / {t}"),
        (Some(u), None) => u.to_string(),
        (None, Some(t)) => format!("? / {t}"),
        _ => "–".into(),
    }
}

/// The device's identity and enrollment state: a badge (approved green; pending, mismatch and
/// failed red, as commands are refused then), the short fingerprint, and why as a tooltip.
fn identity_cell(v: &DeviceView) -> Markup {
    use wasmbed_api::IdentityState as S;
    let Some(id) = &v.summary.identity else {
        return html! { "–" };
    };
    let short = id.fingerprint.as_deref().map(|f| &f[..f.len().min(12)]);
    html! {
        span.identity data-identity=(id.state.as_str()) title=[id.reason.as_deref()] {
            @match id.state {
                S::Approved => span.badge.ok { (id.state) },
                S::Pending | S::Mismatch | S::Failed => span.badge.bad { (id.state) },
                S::None | S::Unknown => span.muted { (id.state) },
            }
            @if let Some(f) = short { " " code { (f) } }
        }
    }
}

fn online_badge(v: &DeviceView) -> Markup {
    html! {
        @if v.summary.online { span.badge.ok { "online" } }
        @else { span.badge.bad { "offline" } }
    }
}

/// The device table's rows.
pub fn device_rows_html(views: &[DeviceView]) -> Markup {
    html! {
        @for v in views {
            tr data-device=(v.summary.name) data-online=(v.summary.online) {
                td { a href={"/devices/" (v.summary.name)} { (v.summary.name) } }
                td { (online_badge(v)) }
                td { (opt(&v.summary.board)) }
                td { (opt(&v.summary.firmware)) }
                td { (opt(&v.summary.proto)) }
                td { (slots_text(v)) }
                td { (memory(v)) }
                td { (identity_cell(v)) }
                td { (age(v.summary.last_seen_ms_ago)) }
                td.reason { (v.summary.offline_reason.as_deref().unwrap_or("")) }
            }
        }
        @if views.is_empty() {
            tr { td colspan="10" { "No devices: start the gateway with --sim or --device NAME=ENDPOINT." } }
        }
    }
}

fn views(http: &Http) -> Vec<DeviceView> {
    http.gw.devices.values().map(DeviceView::of).collect()
}

/// `GET /`: all devices, live.
pub async fn devices(State(http): State<Arc<Http>>) -> Markup {
    let v = views(&http);
    layout(
        "Devices",
        "devices",
        html! {
            h1 { "Devices" }
            div.scroll hx-ext="sse" sse-connect="/ui/devices/events" {
                table #devices {
                    caption.sr { "Devices of this gateway, updated live" }
                    thead { tr {
                        th scope="col" { "Device" } th scope="col" { "State" } th scope="col" { "Board" }
                        th scope="col" { "Firmware" } th scope="col" { "Protocol" } th scope="col" { "Slots" }
                        th scope="col" { "Memory" } th scope="col" { "Identity" } th scope="col" { "Last seen" }
                        th scope="col" { "Why offline" }
                    } }
                    tbody sse-swap="rows" { (device_rows_html(&v)) }
                }
            }
        },
    )
}

/// `GET /ui/devices/rows`: the rows alone.
pub async fn device_rows(State(http): State<Arc<Http>>) -> Markup {
    device_rows_html(&views(&http))
}

/// The facts at the top of a device page.
pub fn device_facts(v: &DeviceView) -> Markup {
    html! {
        dl.facts {
            div { dt { "State" } dd #state { (online_badge(v)) } }
            div { dt { "Endpoint" } dd { (v.summary.endpoint) } }
            div { dt { "Board" } dd { (opt(&v.summary.board)) } }
            div { dt { "Firmware" } dd { (opt(&v.summary.firmware)) } }
            div { dt { "Protocol" } dd { (opt(&v.summary.proto)) } }
            div { dt { "Slots" } dd { (slots_text(v)) } }
            div { dt { "Memory (INFO)" } dd { (memory(v)) } }
            div { dt { "Identity" } dd #identity { (identity_cell(v)) } }
            @if let Some(r) = v.summary.identity.as_ref().and_then(|i| i.reason.as_deref()) {
                div { dt { "Identity note" } dd { (r) } }
            }
            div { dt { "Last seen" } dd { (age(v.summary.last_seen_ms_ago)) } }
            @if let Some(r) = &v.summary.offline_reason { div { dt { "Why offline" } dd { (r) } } }
        }
    }
}

/// The jobs table.
pub fn jobs(jobs: &BTreeMap<String, JobRecord>) -> Markup {
    html! {
        @if jobs.is_empty() { p.muted { "No job started through this gateway yet." } }
        @else {
            div.scroll { table #jobs {
                thead { tr { th scope="col" { "Module" } th scope="col" { "Function" } th scope="col" { "State" }
                    th scope="col" { "Status" } th scope="col" { "Result" } th scope="col" { "Duration" } } }
                tbody { @for (id, j) in jobs {
                    tr data-module=(id) data-state=(format!("{:?}", j.state).to_lowercase()) {
                        td { (id) }
                        td { (j.func.as_deref().unwrap_or("app_main")) }
                        td { @match j.state {
                            JobState::Running => span.badge.run { "running" },
                            JobState::Done => span.badge.ok { "done" },
                            JobState::Lost => span.badge.bad { "lost" },
                        } }
                        td { (opt(&j.status)) }
                        td.line { (opt(&j.result)) }
                        td { @if let Some(ms) = j.duration_ms {
                            (format!("{ms} ms"))
                        } @else { "–" } }
                    }
                } }
            } }
        }
    }
}

/// One log line; module output (`LOG`) is told apart from console text by class and label.
pub fn log_line(e: &LogEntry) -> Markup {
    let (class, label) = match e.kind {
        LogKind::Log => ("module", "module"),
        LogKind::Console => ("console", "console"),
        LogKind::Result => ("result", "result"),
        LogKind::Hello => ("hello", "boot"),
        LogKind::Gateway => ("gateway", "gateway"),
    };
    html! {
        li class=(class) data-seq=(e.seq) {
            span.kind { (label) }
            " "
            span.text { (e.line) }
        }
    }
}

/// A note that lines were skipped.
pub fn log_skipped(n: u64) -> Markup {
    html! { li.gateway { span.kind { "gateway" } " " span.text { (n) " log lines skipped (page too slow)" } } }
}

/// `GET /devices/{name}`: one device.
pub async fn device(State(http): State<Arc<Http>>, Path(name): Path<String>) -> Response {
    let Some(dev) = http.gw.devices.get(&name) else {
        return not_found(&name);
    };
    let v = DeviceView::of(dev);
    let held = dev.log.since(0).0;
    let next = held.last().map_or(1, |e| e.seq + 1);
    let shown = &held[held.len().saturating_sub(LOG_LINES)..];
    let jobs_now = dev.snapshot().jobs;
    layout(&name, "devices", html! {
        div hx-ext="sse" sse-connect={"/ui/devices/" (name) "/events?since=" (next)} data-device=(name) #device {
            h1 { "Device " (name) }
            section aria-labelledby="h-facts" {
                h2 #h-facts.sr { "Facts" }
                div sse-swap="state" { (device_facts(&v)) }
            }
            div.cols {
                section aria-labelledby="h-run" {
                    h2 #h-run { "Run" }
                    form #run {
                        label for="run-module" { "Module id" }
                        input #run-module name="module_id" required pattern="[A-Za-z0-9_.\\-]{1,32}";
                        label for="run-func" { "Function" }
                        input #run-func name="func" placeholder="app_main";
                        label for="run-args" { "Arguments (up to 4 integers, comma-separated)" }
                        input #run-args name="args" placeholder="200, 26";
                        label.check { input #run-wait type="checkbox" name="wait_result" checked; " wait for the RESULT" }
                        div.buttons {
                            button type="submit" data-action="start" { "Start" }
                            button type="button" data-action="stop" { "Stop" }
                            button type="button" data-action="unload" { "Unload" }
                        }
                    }
                    output #run-result for="run-module" aria-live="polite" {}
                }
                section aria-labelledby="h-deploy" {
                    h2 #h-deploy { "Deploy" }
                    form #deploy {
                        label #drop for="deploy-file" {
                            "Drop a .c, .wasm or .aot file here, or choose one"
                            input #deploy-file type="file" name="file" accept=".c,.wasm,.aot";
                        }
                        label for="deploy-module" { "Module id (default: the file's name)" }
                        input #deploy-module name="module_id" pattern="[A-Za-z0-9_.\\-]{1,32}";
                        label for="deploy-mode" { "Build C source as" }
                        select #deploy-mode name="mode" {
                            option value="wasm" selected { "wasm (interpreted)" }
                            option value="aot" { "aot (compiled ahead of time)" }
                        }
                        label.check { input #deploy-replace type="checkbox" name="replace" checked; " replace a loaded module of that id" }
                        button type="submit" { "Deploy" }
                    }
                    div #deploy-status aria-live="polite" {
                        progress #deploy-progress max="100" value="0" aria-label="Deploy progress" {}
                        span #deploy-phase { "idle" }
                    }
                    output #deploy-result {}
                }
            }
            section aria-labelledby="h-identity" {
                h2 #h-identity { "Identity" }
                p.muted { "Approve pins the identity key the device proved (or the full fingerprint given); forget removes the pin, so the device is pending again (or, with enrollment = \"tofu\", trusted on its next connect). As wasmbed-host devices approve / forget; docs/SECURITY.md." }
                form #enroll {
                    label for="identity-fingerprint" { "Fingerprint to approve (optional; 32 hex digits, or 12 or more of the key the device proved)" }
                    input #identity-fingerprint name="fingerprint" autocomplete="off" pattern="[0-9A-Fa-f]{12,32}";
                    div.buttons {
                        button #approve type="submit" data-enroll="approve" { "Approve" }
                        button #forget type="button" data-enroll="forget" { "Forget" }
                    }
                }
                output #identity-result for="identity-fingerprint" aria-live="polite" {}
            }
            section aria-labelledby="h-slots" {
                h2 #h-slots { "Slots" }
                div #slots hx-get={"/ui/devices/" (name) "/slots"} hx-trigger="load, refresh-slots from:body" {
                    p.muted { "Reading STATUS…" }
                }
            }
            section aria-labelledby="h-jobs" {
                h2 #h-jobs { "Jobs" }
                div sse-swap="jobs" { (jobs(&jobs_now)) }
            }
            section aria-labelledby="h-log" {
                h2 #h-log { "Log" }
                p.legend {
                    span.module { span.kind { "module" } } " module output (LOG) · "
                    span.console { span.kind { "console" } } " console text · "
                    span.result { span.kind { "result" } } " late RESULT"
                }
                ol #log sse-swap="log" hx-swap="beforeend" aria-live="off" tabindex="0" {
                    @for e in shown { (log_line(e)) }
                }
            }
        }
    })
    .into_response()
}

/// `GET /ui/devices/{name}/slots`: asks the device for STATUS and shows its slots and memory.
pub async fn slots(State(http): State<Arc<Http>>, Path(name): Path<String>) -> Markup {
    let mut req = Map::new();
    req.insert("op".into(), "status".into());
    req.insert("id".into(), "page".into());
    req.insert("device".into(), name.into());
    let (tx, mut rx) = mpsc::channel(crate::api::CALL_CHANNEL);
    let mut reply = Value::Null;
    let drain = async {
        while let Some(v) = rx.recv().await {
            reply = v;
        }
    };
    let run = async move { crate::api::call(&http.gw, req, &Bytes::new(), &tx).await };
    tokio::join!(run, drain);
    if reply["ok"] != true {
        return html! { p.error role="alert" { "STATUS failed: " (reply["error"]["message"].as_str().unwrap_or("no reply")) } };
    }
    let r = &reply["result"];
    let slots = r["slots"].as_array().cloned().unwrap_or_default();
    let s = |v: &Value| match v {
        Value::Null => "–".to_string(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    html! {
        @if slots.is_empty() { p.muted { "No module loaded." } }
        @else {
            div.scroll { table #slot-table {
                thead { tr { th scope="col" { "Module" } th scope="col" { "State" } th scope="col" { "Size" }
                    th scope="col" { "CRC-32" } th scope="col" { "Stack free" } th scope="col" { "Actions" } } }
                tbody { @for m in &slots {
                    tr data-module=(s(&m["module_id"])) {
                        td { (s(&m["module_id"])) }
                        td { (s(&m["state"])) }
                        td { (s(&m["size"])) }
                        td { (s(&m["crc32"])) }
                        td { (s(&m["stack_free"])) }
                        td.buttons {
                            button type="button" data-action="start" data-module=(s(&m["module_id"])) { "Start" }
                            button type="button" data-action="stop" data-module=(s(&m["module_id"])) { "Stop" }
                            button type="button" data-action="unload" data-module=(s(&m["module_id"])) { "Unload" }
                        }
                    }
                } }
            } }
        }
        @if let Some(m) = r["memory"].as_object() {
            p { "WAMR memory: " (s(&m["used"])) " bytes used of " (s(&m["total"])) ", high mark " (s(&m["highmark"])) "." }
        }
    }
}

fn pct(p: Option<&super::Percentiles>) -> Markup {
    html! {
        @match p {
            Some(p) => { (format!("{:.3}", p.p50)) " / " (format!("{:.3}", p.p95)) " / " (format!("{:.3}", p.p99)) }
            None => "–",
        }
    }
}

/// The latency table.
pub fn latency_table(http: &Http) -> Markup {
    let rows = http.gw.latency.summaries();
    html! {
        @if rows.is_empty() { p.muted { "No request measured yet: run something (a start, a status, wasmbed-host bench)." } }
        @else {
            div.scroll { table #latency {
                caption { "Milliseconds spent in the gateway per request: p50 / p95 / p99" }
                thead { tr {
                    th scope="col" { "Operation" } th scope="col" { "Device" } th scope="col" { "Requests" }
                    th scope="col" { "Errors" } th scope="col" { "Total" } th scope="col" { "Compile" }
                    th scope="col" { "Transfer" } th scope="col" { "Device" }
                } }
                tbody { @for s in &rows {
                    tr data-op=(s.op) data-device=(s.device) data-count=(s.total.count)
                       data-p50=(s.total.p50) data-device-p50=(s.device_phase.map_or(0.0, |p| p.p50)) {
                        td { (s.op) } td { (s.device) } td { (s.total.count) } td { (s.errors) }
                        td { (pct(Some(&s.total))) } td { (pct(s.compile.as_ref())) }
                        td { (pct(s.transfer.as_ref())) } td { (pct(s.device_phase.as_ref())) }
                    }
                } }
            } }
        }
    }
}

/// `GET /ui/latency/table`.
pub async fn latency_rows(State(http): State<Arc<Http>>) -> Markup {
    latency_table(&http)
}

/// `GET /latency`: percentiles per operation and device, and for the chosen one its requests
/// over time, its percentiles per time window and the distribution of a chosen window.
pub async fn latency(State(http): State<Arc<Http>>) -> Markup {
    let window_s = http.gw.limits.latency_window_s;
    let kept = http.gw.limits.latency_windows;
    let span = match window_s {
        60 => "minute".to_string(),
        s if s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} s"),
    };
    layout(
        "Latency",
        "latency",
        html! {
            h1 { "Latency" }
            p { "Every request to a device, over the JSON-lines API (wasmbed-host, bench) or HTTP: the time it spent in the gateway, split into compile, transfer (upload) and device round trips. Updated every 2 s." }
            div #latency-table hx-get="/ui/latency/table" hx-trigger="every 2s" { (latency_table(&http)) }
            section aria-labelledby="h-charts" {
                h2 #h-charts { "Charts" }
                div.pickers {
                    div {
                        label for="lat-key" { "Operation and device" }
                        select #lat-key {}
                    }
                    div {
                        label for="lat-window" { "Window of the distribution" }
                        select #lat-window { option value="all" { "all requests since the gateway started" } }
                    }
                }
                figure { div #chart-time {} figcaption { "Each request over time (ms): total and its phases" } }
                figure { div #chart-windows {} figcaption { "Total per " (span) " window (ms): p50 in front of p95 in front of p99, for the windows of the last " (kept) " that had requests" } }
                figure { div #chart-hist {} figcaption { "Distribution of the total in the chosen window (requests per bucket, ms)" } }
                h3 #h-windows { "Per " (span) " window" }
                div.scroll { table #lat-windows aria-labelledby="h-windows" {
                    thead { tr {
                        th scope="col" { "Window" } th scope="col" { "Requests" } th scope="col" { "Errors" }
                        th scope="col" { "Total" } th scope="col" { "Compile" } th scope="col" { "Transfer" }
                        th scope="col" { "Device" }
                    } }
                    tbody {}
                } }
                noscript { p { "The charts need JavaScript; the table above does not." } }
            }
        },
    )
}
