//! Server-sent events: what a device does (log lines, job results, upload progress, state
//! changes) as JSON for API clients (`/api/...events`) and as HTML fragments for the pages
//! (`/ui/...events`, swapped in by htmx's SSE extension). Both come from one [`DeviceEvent`]
//! stream per client.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use wasmbed_api::{self as api, DeviceSummary};

use super::{api::not_found, pages, Http};
use crate::device::{DeviceHandle, JobRecord, LogEntry, LogKind};

/// How often device state is compared for changes.
const POLL: Duration = Duration::from_millis(250);
/// Events buffered per client before a slow client holds its stream back.
const QUEUE: usize = 256;

/// A device as the pages and the `state`/`devices` events show it: the `devices` op's
/// [`DeviceSummary`] and what the dashboard adds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceView {
    /// What the `devices` op says of the device.
    #[serde(flatten)]
    pub summary: DeviceSummary,
    /// WAMR pool size (INFO).
    pub pool_total: Option<u64>,
    /// WAMR pool free at INFO time.
    pub pool_free: Option<u64>,
}

impl DeviceView {
    /// The device's current view.
    pub fn of(dev: &DeviceHandle) -> Self {
        let s = dev.snapshot();
        let mut summary = crate::api::device_summary(dev);
        if !summary.online && summary.offline_reason.is_none() {
            // Before the first note the gateway's last log line on the link says why.
            summary.offline_reason = Some(
                dev.log
                    .since(0)
                    .0
                    .into_iter()
                    .rev()
                    .find(|e| e.kind == LogKind::Gateway)
                    .map_or_else(|| "not connected yet".to_string(), |e| e.line),
            );
        }
        Self {
            pool_total: s.info.as_ref().and_then(|i| i.pool_total).map(u64::from),
            pool_free: s.info.as_ref().and_then(|i| i.pool_free).map(u64::from),
            summary,
        }
    }

    /// The view without the ever-changing age, to tell real changes.
    fn key(&self) -> Self {
        let mut k = self.clone();
        k.summary.last_seen_ms_ago = None;
        k
    }
}

/// A log entry as the host API's typed `log` event.
pub fn log_event(device: &str, e: &LogEntry) -> api::Event {
    api::Event::Log {
        seq: Some(e.seq),
        device: device.to_string(),
        line: e.line.clone(),
        kind: match e.kind {
            LogKind::Log => api::LogKind::Log,
            LogKind::Console => api::LogKind::Console,
            LogKind::Result => api::LogKind::Result,
            LogKind::Hello => api::LogKind::Hello,
            LogKind::Gateway => api::LogKind::Gateway,
        },
    }
}

/// The job records without their age, which changes on every read: what tells whether a job
/// changed.
fn settled(jobs: &BTreeMap<String, JobRecord>) -> BTreeMap<String, JobRecord> {
    jobs.iter()
        .map(|(id, j)| {
            let j = JobRecord {
                started_ms_ago: None,
                ..j.clone()
            };
            (id.clone(), j)
        })
        .collect()
}

/// Something that happened on a device.
#[derive(Debug, Clone)]
pub enum DeviceEvent {
    /// A log line (module output, console text, a late RESULT, HELLO, gateway note).
    Log(LogEntry),
    /// The follower fell behind and lines were dropped.
    Skipped(u64),
    /// The device's state changed.
    State(Box<DeviceView>),
    /// The gateway's record of the jobs changed (a START, a RESULT).
    Jobs(BTreeMap<String, JobRecord>),
    /// Progress of an upload started over HTTP.
    Progress(api::Event),
}

/// Starts following `dev`: log lines from `since` on, then state, jobs and progress changes.
/// The follower ends when the receiver is dropped.
pub fn follow(http: &Http, dev: DeviceHandle, since: u64) -> mpsc::Receiver<DeviceEvent> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let mut progress = http.progress.subscribe();
    tokio::spawn(async move {
        let (held, mut log) = dev.log.since(since);
        let mut last = since.saturating_sub(1);
        for e in held {
            last = e.seq;
            if tx.send(DeviceEvent::Log(e)).await.is_err() {
                return;
            }
        }
        let mut view = None;
        let mut jobs = None;
        let mut tick = tokio::time::interval(POLL);
        loop {
            let ev = tokio::select! {
                _ = tx.closed() => return,
                e = log.recv() => match e {
                    Ok(e) if e.seq <= last => continue,
                    Ok(e) => { last = e.seq; DeviceEvent::Log(e) }
                    Err(broadcast::error::RecvError::Lagged(n)) => DeviceEvent::Skipped(n),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                p = progress.recv() => match p {
                    Ok((name, v)) if name == dev.name => DeviceEvent::Progress(v),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    let v = DeviceView::of(&dev);
                    let j = dev.snapshot().jobs;
                    if jobs.as_ref() != Some(&settled(&j)) {
                        jobs = Some(settled(&j));
                        if tx.send(DeviceEvent::Jobs(j)).await.is_err() {
                            return;
                        }
                    }
                    if view.as_ref() == Some(&v.key()) {
                        continue;
                    }
                    view = Some(v.key());
                    DeviceEvent::State(Box::new(v))
                }
            };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// An SSE response fed by a task that renders events into `tx` until the client goes.
pub(super) fn sse<F, Fut>(produce: F) -> Response
where
    F: FnOnce(mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(produce(tx));
    Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Where a follower starts.
#[derive(Deserialize)]
pub struct Since {
    /// First log sequence number wanted (default: only new lines).
    since: Option<u64>,
}

/// The sequence number the device's next log line will have (`follow` from it sees no race:
/// it takes held lines and subscribes at once).
fn next_seq(dev: &DeviceHandle) -> u64 {
    dev.log.since(0).0.last().map_or(1, |e| e.seq + 1)
}

/// `GET /api/devices/{name}/events`: `log`, `skipped`, `state`, `jobs`, `progress` as JSON.
pub async fn api_device(
    State(http): State<Arc<Http>>,
    Path(name): Path<String>,
    Query(q): Query<Since>,
) -> Response {
    let Some(dev) = http.gw.devices.get(&name).cloned() else {
        return not_found(&name);
    };
    let since = q.since.unwrap_or_else(|| next_seq(&dev));
    let mut rx = follow(&http, dev, since);
    sse(|tx| async move {
        while let Some(ev) = rx.recv().await {
            let (event, data) = match ev {
                DeviceEvent::Log(e) => ("log", json!(log_event(&name, &e))),
                DeviceEvent::Skipped(n) => ("skipped", json!({"lines": n})),
                DeviceEvent::State(v) => ("state", json!(v)),
                DeviceEvent::Jobs(j) => ("jobs", json!(j)),
                DeviceEvent::Progress(p) => ("progress", json!(p)),
            };
            let ev = Event::default().event(event).data(data.to_string());
            if tx.send(Ok(ev)).await.is_err() {
                return;
            }
        }
    })
}

/// `GET /ui/devices/{name}/events`: the device page's live parts as HTML.
pub async fn ui_device(
    State(http): State<Arc<Http>>,
    Path(name): Path<String>,
    Query(q): Query<Since>,
) -> Response {
    let Some(dev) = http.gw.devices.get(&name).cloned() else {
        return not_found(&name);
    };
    let since = q.since.unwrap_or_else(|| next_seq(&dev));
    let mut rx = follow(&http, dev, since);
    sse(|tx| async move {
        while let Some(ev) = rx.recv().await {
            let (name, html) = match ev {
                DeviceEvent::Log(e) => ("log", pages::log_line(&e)),
                DeviceEvent::Skipped(n) => ("log", pages::log_skipped(n)),
                DeviceEvent::State(v) => ("state", pages::device_facts(&v)),
                DeviceEvent::Jobs(j) => ("jobs", pages::jobs(&j)),
                DeviceEvent::Progress(_) => continue,
            };
            let ev = Event::default().event(name).data(html.into_string());
            if tx.send(Ok(ev)).await.is_err() {
                return;
            }
        }
    })
}

/// Sends `render(views)` whenever any device's view changes (and every few seconds for the
/// ages), until the client goes.
async fn devices_loop(
    http: Arc<Http>,
    tx: mpsc::Sender<Result<Event, Infallible>>,
    render: fn(&[DeviceView]) -> Event,
) {
    let mut last: Option<Vec<DeviceView>> = None;
    let mut tick = tokio::time::interval(POLL);
    let mut since_sent = 0u32;
    loop {
        tokio::select! {
            _ = tx.closed() => return,
            _ = tick.tick() => {}
        }
        let views: Vec<DeviceView> = http.gw.devices.values().map(DeviceView::of).collect();
        let keys: Vec<DeviceView> = views.iter().map(DeviceView::key).collect();
        since_sent += 1;
        // Unchanged: refresh the "last seen" ages every 2 s only.
        if last.as_ref() == Some(&keys) && since_sent < 8 {
            continue;
        }
        since_sent = 0;
        last = Some(keys);
        if tx.send(Ok(render(&views))).await.is_err() {
            return;
        }
    }
}

/// `GET /api/events`: `devices` (the list as JSON) whenever a device's state changes.
pub async fn api_devices(State(http): State<Arc<Http>>) -> Response {
    sse(|tx| {
        devices_loop(http, tx, |v| {
            Event::default()
                .event("devices")
                .data(json!({ "api_version": api::API_VERSION, "devices": v }).to_string())
        })
    })
}

/// `GET /ui/devices/events`: the device table's rows as HTML.
pub async fn ui_devices(State(http): State<Arc<Http>>) -> Response {
    sse(|tx| {
        devices_loop(http, tx, |v| {
            Event::default()
                .event("rows")
                .data(pages::device_rows_html(v).into_string())
        })
    })
}
