//! The JSON API: each route is one Wasmbed-dialect request (docs/HOST-API.md) with the device
//! and operation taken from the path, so replies, errors and latencies are the JSON-lines API's
//! (`{"ok": true, "result": ..., "latency": ...}` or `{"ok": false, "error": {code, message,
//! help, detail}}`), with an HTTP status that matches the error code. `Accept: text/event-stream`
//! turns the reply into server-sent events: `progress` events, then one `reply`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use wasmbed_api::{ErrorBody, ErrorCode, EventLine};

use super::Http;

/// The HTTP status of a Wasmbed error code.
pub fn status_of(code: &ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest | ErrorCode::UnknownOp => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized | ErrorCode::TlsRequired => StatusCode::UNAUTHORIZED,
        ErrorCode::DeviceUnknown => StatusCode::NOT_FOUND,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::InvalidModule | ErrorCode::CompileFailed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::DeviceOffline | ErrorCode::LinkLost | ErrorCode::Busy => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::DeviceRejected
        | ErrorCode::ModuleTrapped
        | ErrorCode::ModuleStopped
        | ErrorCode::DevicePending
        | ErrorCode::IdentityMismatch => StatusCode::CONFLICT,
        ErrorCode::Internal | ErrorCode::Other(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A failed reply of the HTTP side itself (no Wasmbed request ran): `{"ok": false, "error"}`.
pub fn refuse(status: StatusCode, error: ErrorBody) -> Response {
    (status, Json(json!({"ok": false, "error": error}))).into_response()
}

/// The reply for an unknown device name in a path.
pub fn not_found(name: &str) -> Response {
    let mut e = ErrorBody::new(
        ErrorCode::DeviceUnknown,
        format!("no device named '{name}'"),
    );
    e.help = Some("list devices with GET /api/devices".into());
    refuse(StatusCode::NOT_FOUND, e)
}

fn wants_events(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"))
}

fn without_id(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove("id");
    }
    v
}

/// Runs `req` (with `body`) and answers with its reply, or as events when the client asks.
async fn run(http: Arc<Http>, req: Map<String, Value>, body: Bytes, events: bool) -> Response {
    let device = req.get("device").and_then(Value::as_str).map(String::from);
    let (tx, mut rx) = mpsc::channel::<Value>(crate::api::CALL_CHANNEL);
    if !events {
        let mut reply = Value::Null;
        let drain = async {
            while let Some(v) = rx.recv().await {
                if v.get("event").is_none() {
                    reply = without_id(v);
                }
            }
        };
        let run = async move { crate::api::call(&http.gw, req, &body, &tx).await };
        tokio::join!(run, drain);
        let status = match reply["error"]["code"].as_str() {
            Some(code) => status_of(&ErrorCode::from_wire(code)),
            None => StatusCode::OK,
        };
        return (status, Json(reply)).into_response();
    }
    // The request runs on its own task: a client that goes away does not cut an upload short.
    let (etx, erx) = mpsc::channel::<Result<Event, Infallible>>(crate::api::CALL_CHANNEL);
    let h = http.clone();
    tokio::spawn(async move { crate::api::call(&h.gw, req, &body, &tx).await });
    tokio::spawn(async move {
        while let Some(v) = rx.recv().await {
            let ev = match v.get("event").and_then(Value::as_str) {
                Some(name) => {
                    // Shown on the device's pages too (typed: the host API's event).
                    let typed = serde_json::from_value::<EventLine>(v.clone());
                    if let (Some(d), Ok(e)) = (&device, typed) {
                        let _ = http.progress.send((d.clone(), e.event));
                    }
                    Event::default().event(name)
                }
                None => Event::default().event("reply"),
            };
            let v = without_id(v);
            if etx.send(Ok(ev.data(v.to_string()))).await.is_err() {
                break;
            }
        }
    });
    Sse::new(ReceiverStream::new(erx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn op(op: &str, device: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("op".into(), op.into());
    m.insert("id".into(), "http".into());
    m.insert("device".into(), device.into());
    m
}

/// `GET /api/devices`.
pub async fn devices(State(http): State<Arc<Http>>) -> Response {
    let mut m = Map::new();
    m.insert("op".into(), "devices".into());
    m.insert("id".into(), "http".into());
    run(http, m, Bytes::new(), false).await
}

/// `GET /api/devices/{name}/info`.
pub async fn info(State(http): State<Arc<Http>>, Path(name): Path<String>) -> Response {
    run(http, op("info", &name), Bytes::new(), false).await
}

/// `GET /api/devices/{name}/status`.
pub async fn status(State(http): State<Arc<Http>>, Path(name): Path<String>) -> Response {
    run(http, op("status", &name), Bytes::new(), false).await
}

/// Query of `POST /api/devices/{name}/deploy`.
#[derive(Deserialize)]
pub struct DeployQuery {
    module_id: String,
    /// `wasm` or `aot`: the body is C source to build first (`build_and_deploy`).
    mode: Option<String>,
    replace: Option<bool>,
    replace_victim: Option<String>,
    force: Option<bool>,
    strip: Option<bool>,
}

/// `POST /api/devices/{name}/deploy?module_id=ID[&mode=wasm|aot]`: the body is the module
/// (`.wasm`/`.aot`), or C source with `mode`.
pub async fn deploy(
    State(http): State<Arc<Http>>,
    Path(name): Path<String>,
    Query(q): Query<DeployQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut m = op(
        if q.mode.is_some() {
            "build_and_deploy"
        } else {
            "deploy"
        },
        &name,
    );
    m.insert("module_id".into(), q.module_id.into());
    m.insert("size".into(), body.len().into());
    m.insert(
        "crc32".into(),
        format!("{:08x}", crc32fast::hash(&body)).into(),
    );
    if let Some(mode) = q.mode {
        m.insert("mode".into(), mode.into());
    }
    for (k, v) in [
        ("replace", q.replace),
        ("force", q.force),
        ("strip", q.strip),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), v.into());
        }
    }
    if let Some(v) = q.replace_victim {
        m.insert("replace_victim".into(), v.into());
    }
    run(http, m, body, wants_events(&headers)).await
}

/// A JSON body's fields on top of the operation (the path names the device); `None` when the
/// body is not a JSON object.
fn with_body(mut m: Map<String, Value>, body: &Bytes) -> Option<Map<String, Value>> {
    if body.is_empty() {
        return Some(m);
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    for (k, v) in fields {
        if !matches!(k.as_str(), "op" | "device" | "id" | "token") {
            m.insert(k, v);
        }
    }
    Some(m)
}

async fn json_op(
    http: Arc<Http>,
    name: &str,
    which: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    match with_body(op(which, name), &body) {
        Some(m) => run(http, m, Bytes::new(), wants_events(headers)).await,
        None => {
            let mut e = ErrorBody::new(ErrorCode::BadRequest, "the body must be a JSON object");
            e.help =
                Some(r#"e.g. {"module_id": "math_ops", "func": "add", "args": [1, 2]}"#.into());
            refuse(StatusCode::BAD_REQUEST, e)
        }
    }
}

/// `POST /api/devices/{name}/start` with `{"module_id", "func", "args", "wait_result",
/// "result_timeout_ms"}`.
pub async fn start(
    State(http): State<Arc<Http>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    json_op(http, &name, "start", &headers, body).await
}

/// `POST /api/devices/{name}/stop` with `{"module_id", "wait", "result_timeout_ms"}`.
pub async fn stop(
    State(http): State<Arc<Http>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    json_op(http, &name, "stop", &headers, body).await
}

/// `POST /api/devices/{name}/unload` with `{"module_id"}`.
pub async fn unload(
    State(http): State<Arc<Http>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    json_op(http, &name, "unload", &headers, body).await
}

/// `POST /api/devices/{name}/approve` with `{"fingerprint"}` or no body: pins the identity key
/// the device proved (or the fingerprint given), as `wasmbed-host devices approve`.
pub async fn approve(
    State(http): State<Arc<Http>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    json_op(http, &name, "approve", &headers, body).await
}

/// `POST /api/devices/{name}/forget`: removes the device's pinned identity key, as
/// `wasmbed-host devices forget`.
pub async fn forget(
    State(http): State<Arc<Http>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    json_op(http, &name, "forget", &headers, body).await
}

/// Query of `GET /api/devices/{name}/logs`.
#[derive(Deserialize)]
pub struct LogsQuery {
    since: Option<u64>,
}

/// `GET /api/devices/{name}/logs?since=N`: the lines held (follow them with `/events`).
pub async fn logs(
    State(http): State<Arc<Http>>,
    Path(name): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Response {
    let mut m = op("logs", &name);
    if let Some(s) = q.since {
        m.insert("since".into(), s.into());
    }
    run(http, m, Bytes::new(), false).await
}

/// `GET /api/latency`: per operation and device, percentiles overall and per time window,
/// distributions and samples ([`wasmbed_api::latency::LatencyReport`]).
pub async fn latency(State(http): State<Arc<Http>>) -> Response {
    Json(http.gw.latency.report()).into_response()
}
