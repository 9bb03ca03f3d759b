//! The host API server: legacy JSON and the Wasmbed dialect on one TCP port.
// ApiError carries a detail map; requests are rare enough that its size does not matter.
#![allow(clippy::result_large_err)]

mod error;
mod framing;
mod legacy;
mod ops;
pub mod pyjson;
mod wasmbed;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub use error::ApiError;
pub use ops::{DeploySpec, Latency, Payload};

use crate::config::Limits;
use crate::device::DeviceHandle;
use crate::pipeline::{Compiler, ModuleSummary};

/// Everything the host API serves from.
pub struct Gateway {
    /// Devices by name.
    pub devices: BTreeMap<String, DeviceHandle>,
    /// The module pipeline.
    pub compiler: Compiler,
    /// Request bounds.
    pub limits: Limits,
    /// Required token (off loopback).
    pub token: Option<String>,
    /// Deadline for a whole upload body.
    pub body_timeout: Duration,
    /// Deadline for the first request line of a connection and between Wasmbed requests.
    pub idle_timeout: Duration,
    /// What the gateway deployed: (device, module_id) → exports, for START checks.
    modules: Mutex<HashMap<(String, String), ModuleSummary>>,
    /// Fleet membership (docs/FLEET.md): set once the gateway joined a fleet. Requests for a
    /// device this gateway does not serve go to the fleet.
    pub fleet: std::sync::OnceLock<Arc<crate::fleet::Member>>,
}

impl Gateway {
    /// A gateway over the given devices.
    pub fn new(
        devices: Vec<DeviceHandle>,
        compiler: Compiler,
        limits: Limits,
        token: Option<String>,
    ) -> Self {
        Self {
            devices: devices.into_iter().map(|d| (d.name.clone(), d)).collect(),
            compiler,
            limits,
            token,
            body_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(600),
            modules: Mutex::new(HashMap::new()),
            fleet: std::sync::OnceLock::new(),
        }
    }

    /// The devices of the `devices` op.
    pub fn device_list(&self) -> Vec<wasmbed_api::DeviceSummary> {
        self.devices
            .values()
            .map(|d| {
                let s = d.snapshot();
                wasmbed_api::DeviceSummary {
                    name: d.name.clone(),
                    endpoint: d.endpoint.clone(),
                    online: s.online,
                    last_seen_ms_ago: s.last_seen.map(|t| t.elapsed().as_millis() as u64),
                    board: s.board,
                    firmware: s.firmware,
                    proto: s.proto,
                    slots_used: s.slots_used,
                    slots_total: s.slots_total,
                }
            })
            .collect()
    }

    fn check_token(&self, req: &Map<String, Value>) -> Result<(), ApiError> {
        match &self.token {
            None => Ok(()),
            Some(t) if req.get("token").and_then(Value::as_str) == Some(t.as_str()) => Ok(()),
            Some(_) => Err(ApiError::new("UNAUTHORIZED", "missing or wrong token")
                .help("pass the contents of the gateway's token file as `token`")),
        }
    }
}

/// Accepts connections forever, one task per connection.
pub async fn serve(listener: TcpListener, gw: Arc<Gateway>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let gw = gw.clone();
                tokio::spawn(async move {
                    tracing::debug!(%peer, "host connected");
                    serve_connection(stream, gw).await;
                });
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn parse_request(line: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let v: Value = serde_json::from_slice(line)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::bad_request("a request must be a JSON object")),
    }
}

async fn send_legacy(w: &mut tokio::net::tcp::OwnedWriteHalf, v: &Value) {
    let mut text = pyjson::dumps(v);
    text.push('\n');
    let _ = w.write_all(text.as_bytes()).await;
    let _ = w.shutdown().await;
}

async fn serve_connection(stream: TcpStream, gw: Arc<Gateway>) {
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r);
    let first = framing::read_line(&mut reader, gw.limits.max_line, gw.idle_timeout).await;
    let req = match first {
        Ok(None) => return,
        Ok(Some(line)) => parse_request(&line),
        Err(e) => Err(e),
    };
    let req = match req {
        Ok(r) => r,
        Err(e) => {
            // Dialect unknown: answer in the legacy shape, which both kinds of host can read.
            send_legacy(
                &mut w,
                &json!({"ok": false, "error": e.message, "code": e.code}),
            )
            .await;
            return;
        }
    };
    if !req.contains_key("op") {
        let reply = match gw.check_token(&req) {
            Ok(()) => legacy::handle(&gw, &req, &mut reader).await,
            Err(e) => json!({"ok": false, "error": e.message}),
        };
        send_legacy(&mut w, &reply).await;
        return;
    }
    serve_wasmbed(req, reader, w, gw).await;
}

/// One Wasmbed-dialect request: served here, or forwarded to the fleet when this gateway is in
/// a fleet and does not serve the request's device.
async fn handle_one(
    gw: &Gateway,
    req: Map<String, Value>,
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    out: &mpsc::UnboundedSender<Value>,
    open: &tokio::sync::watch::Receiver<()>,
) {
    if let Some(member) = gw.fleet.get() {
        if let Some(dev) = req.get("device").and_then(Value::as_str) {
            if member.serves(dev).is_none() {
                let limits = (gw.limits.max_body, gw.body_timeout);
                return crate::fleet::bridge::forward(member.client(), req, reader, out, limits)
                    .await;
            }
        }
    }
    wasmbed::handle(gw, req, reader, out, open).await
}

/// Serves one Wasmbed-dialect request that arrived through the fleet (its upload body, if
/// any, in `body`); events and the reply go to `out`. `logs` follows end at once.
pub async fn handle_request<R: tokio::io::AsyncBufRead + Unpin>(
    gw: &Gateway,
    req: Map<String, Value>,
    body: &mut R,
    out: &mpsc::UnboundedSender<Value>,
) {
    let (open_tx, open_rx) = tokio::sync::watch::channel(());
    drop(open_tx);
    wasmbed::handle(gw, req, body, out, &open_rx).await
}

async fn serve_wasmbed(
    first: Map<String, Value>,
    mut reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    gw: Arc<Gateway>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let writer = tokio::spawn(async move {
        while let Some(v) = rx.recv().await {
            let mut line = serde_json::to_string(&v).expect("JSON value");
            line.push('\n');
            if w.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    });
    // Dropped when the host stops sending (EOF or error): `logs` follows end then.
    let (open_tx, open_rx) = tokio::sync::watch::channel(());
    let reply_error = |id: Value, e: ApiError| json!({"id": id, "ok": false, "error": e.to_json()});
    if let Err(e) = gw.check_token(&first) {
        let _ = tx.send(reply_error(
            first.get("id").cloned().unwrap_or(Value::Null),
            e,
        ));
    } else {
        handle_one(&gw, first, &mut reader, &tx, &open_rx).await;
        loop {
            match framing::read_line(&mut reader, gw.limits.max_line, gw.idle_timeout).await {
                Ok(None) => break,
                Ok(Some(line)) if line.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(Some(line)) => match parse_request(&line) {
                    Ok(req) => handle_one(&gw, req, &mut reader, &tx, &open_rx).await,
                    Err(e) => {
                        let _ = tx.send(reply_error(Value::Null, e));
                    }
                },
                Err(e) => {
                    // An oversized line leaves the stream out of sync: report and close.
                    let _ = tx.send(reply_error(Value::Null, e));
                    break;
                }
            }
        }
    }
    drop(open_tx);
    drop(open_rx);
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}
