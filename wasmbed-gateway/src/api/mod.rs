//! The host API server: legacy JSON and the Wasmbed dialect on one TCP port.
// ApiError carries a detail map; requests are rare enough that its size does not matter.
#![allow(clippy::result_large_err)]

mod error;
mod framing;
mod legacy;
pub mod legacy_paths;
mod ops;
pub mod outbox;
pub mod pyjson;
mod wasmbed;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

pub use error::ApiError;
pub use ops::{DeploySpec, Latency, Payload};
pub use outbox::{Budget, Outbox};

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
    /// Directories whose files legacy generation-1 requests may name (none by default).
    pub legacy_paths: legacy_paths::PathPolicy,
    /// Per operation and device latencies, for the dashboard.
    pub latency: crate::http::LatencyBook,
    /// Deadline for the rest of a request line once its first byte came.
    pub line_timeout: Duration,
    /// Reply bytes queued gateway-wide.
    pub budget: Arc<Budget>,
    /// One permit per connection served.
    connections: Arc<Semaphore>,
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
            idle_timeout: Duration::from_millis(limits.idle_timeout_ms),
            legacy_paths: legacy_paths::PathPolicy::default(),
            latency: Default::default(),
            line_timeout: Duration::from_millis(limits.line_timeout_ms),
            budget: Budget::new(limits.buffer_budget),
            connections: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            modules: Mutex::new(HashMap::new()),
            fleet: std::sync::OnceLock::new(),
        }
    }

    /// The devices of the `devices` op.
    pub fn device_list(&self) -> Vec<wasmbed_api::DeviceSummary> {
        self.devices.values().map(device_summary).collect()
    }

    /// True when `token` is what this gateway requires (or it requires none).
    pub fn token_ok(&self, token: Option<&str>) -> bool {
        match &self.token {
            None => true,
            // Constant time: how long the comparison takes tells nothing about the token.
            Some(t) => token.is_some_and(|g| bool::from(g.as_bytes().ct_eq(t.as_bytes()))),
        }
    }

    fn check_token(&self, req: &Map<String, Value>) -> Result<(), ApiError> {
        let sent = req.get("token").and_then(Value::as_str).unwrap_or("");
        if self.token_ok(Some(sent)) {
            return Ok(());
        }
        Err(ApiError::new("UNAUTHORIZED", "missing or wrong token")
            .help("pass the contents of the gateway's token file as `token`"))
    }
}

/// A host's sending side that neither sends nor ends (an HTTP request's body is read in full
/// before it is served).
struct StaysOpen;

impl tokio::io::AsyncRead for StaysOpen {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Pending
    }
}

/// Serves one Wasmbed-dialect request that arrived another way (the HTTP API): `body` is its
/// upload body; its events and then its final reply go to `out`. The request is taken as coming
/// from a host that stays until the reply (the caller drops this future when its client goes).
pub(crate) async fn call(
    gw: &Gateway,
    req: Map<String, Value>,
    body: &[u8],
    out: &mpsc::UnboundedSender<Value>,
) {
    use tokio::io::AsyncBufReadExt;
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::chain(body, StaysOpen));
    let (_open_tx, open_rx) = tokio::sync::watch::channel(());
    // The same bounded reply queue as a JSON-lines connection, read back line by line.
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let outbox = outbox::Outbox::new(gw.budget.clone(), outbox_bounds(gw), peer);
    let (w, r) = tokio::io::duplex(64 * 1024);
    let writer = {
        let outbox = outbox.clone();
        async move { outbox.run_writer(w).await }
    };
    let forward = async move {
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                break;
            };
            if out.send(v).is_err() {
                break;
            }
        }
    };
    let run = async {
        wasmbed::handle(gw, req, &mut reader, &outbox, &open_rx).await;
        outbox.finish();
    };
    tokio::join!(run, writer, forward);
}

/// Accepts connections forever, one task per connection, at most `limits.max_connections` at
/// once: a connection over the cap is answered `BUSY` and closed.
pub async fn serve(listener: TcpListener, gw: Arc<Gateway>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let gw = gw.clone();
                let Ok(permit) = gw.connections.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "refusing connection: limits.max_connections = {} reached", gw.limits.max_connections);
                    tokio::spawn(async move {
                        let (_, mut w) = stream.into_split();
                        let e = json!({"ok": false, "code": "BUSY", "error": format!(
                            "the gateway serves {} connections at most (limits.max_connections): retry later",
                            gw.limits.max_connections)});
                        let _ =
                            tokio::time::timeout(Duration::from_secs(1), send_legacy(&mut w, &e))
                                .await;
                    });
                    continue;
                };
                tokio::spawn(async move {
                    tracing::debug!(%peer, "host connected");
                    serve_connection(stream, peer, gw).await;
                    drop(permit);
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

/// [`send_legacy`] to a host that has `limits.write_stall_ms` to take the reply.
async fn send_legacy_bounded(
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    v: &Value,
    gw: &Gateway,
    peer: std::net::SocketAddr,
) {
    let stall = Duration::from_millis(gw.limits.write_stall_ms);
    if tokio::time::timeout(stall, send_legacy(w, v))
        .await
        .is_err()
    {
        tracing::warn!(%peer, "closing connection: host took no reply bytes for {} s (limits.write_stall_ms)", stall.as_secs_f64());
    }
}

async fn serve_connection(stream: TcpStream, peer: std::net::SocketAddr, gw: Arc<Gateway>) {
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r);
    // Hosts may open their connections ahead of their first request (the fan-out benchmark
    // holds one per board): the first byte may take `idle_timeout`, the line then `line_timeout`.
    let first = framing::read_line(
        &mut reader,
        gw.limits.max_line,
        gw.idle_timeout,
        gw.line_timeout,
    )
    .await;
    let req = match first {
        Ok(None) => return,
        Ok(Some(line)) => parse_request(&line),
        Err(e) => Err(e),
    };
    let req = match req {
        Ok(r) => r,
        Err(e) => {
            // Dialect unknown: answer in the legacy shape, which both kinds of host can read.
            send_legacy_bounded(
                &mut w,
                &json!({"ok": false, "error": e.message, "code": e.code}),
                &gw,
                peer,
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
        send_legacy_bounded(&mut w, &reply, &gw, peer).await;
        return;
    }
    serve_wasmbed(req, reader, w, peer, gw).await;
}

/// One Wasmbed-dialect request: served here, or forwarded to the fleet when this gateway is in
/// a fleet and does not serve the request's device.
async fn handle_one(
    gw: &Gateway,
    req: Map<String, Value>,
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    out: &Outbox,
    open: &tokio::sync::watch::Receiver<()>,
) {
    if let Some(member) = gw.fleet.get() {
        if let Some(dev) = req.get("device").and_then(Value::as_str) {
            if member.serves(dev).is_none() {
                let limits = (gw.limits.max_body, gw.body_timeout);
                // The bridge sends into a channel; its lines go on through the bounded outbox.
                let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
                let forward = async move {
                    crate::fleet::bridge::forward(member.client(), req, reader, &tx, limits).await;
                };
                let pump = async {
                    while let Some(v) = rx.recv().await {
                        let _ = out.send(v);
                    }
                };
                tokio::join!(forward, pump);
                return;
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
    // The same bounded outbox as a host connection, written into a pipe read back as lines.
    let (pipe_w, pipe_r) = tokio::io::duplex(64 * 1024);
    let peer = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let ob = Outbox::new(gw.budget.clone(), outbox_bounds(gw), peer);
    let writer = {
        let ob = ob.clone();
        async move { ob.run_writer(pipe_w).await }
    };
    let relay = async {
        use tokio::io::AsyncBufReadExt;
        let mut lines = BufReader::new(pipe_r).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<Value>(&l) {
                let _ = out.send(v);
            }
        }
    };
    let serve = async {
        wasmbed::handle(gw, req, body, &ob, &open_rx).await;
        ob.finish();
    };
    tokio::join!(serve, writer, relay);
}

fn outbox_bounds(gw: &Gateway) -> outbox::Bounds {
    outbox::Bounds {
        soft: gw.limits.reply_queue_soft,
        hard: gw.limits.reply_queue_max.max(gw.limits.reply_queue_soft),
        stall: Duration::from_millis(gw.limits.write_stall_ms),
    }
}

async fn serve_wasmbed(
    first: Map<String, Value>,
    mut reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
    peer: std::net::SocketAddr,
    gw: Arc<Gateway>,
) {
    let out = Outbox::new(gw.budget.clone(), outbox_bounds(&gw), peer);
    let writer = {
        let out = out.clone();
        tokio::spawn(async move { out.run_writer(w).await })
    };
    // Dropped when the host stops sending (EOF or error): `logs` follows end then.
    let (open_tx, open_rx) = tokio::sync::watch::channel(());
    let reply_error = |id: Value, e: ApiError| json!({"id": id, "ok": false, "error": e.to_json()});
    if let Err(e) = gw.check_token(&first) {
        let _ = out.send(reply_error(
            first.get("id").cloned().unwrap_or(Value::Null),
            e,
        ));
    } else {
        handle_one(&gw, first, &mut reader, &out, &open_rx).await;
        loop {
            // Backpressure: a host that does not read its replies gets no further requests
            // read (TCP then slows its sending), and is closed when it takes nothing for
            // `write_stall_ms` or lets `reply_queue_max` bytes pile up.
            if out.room().await.is_err() {
                break;
            }
            let next = tokio::select! {
                next = framing::read_line(&mut reader, gw.limits.max_line, gw.idle_timeout, gw.line_timeout) => next,
                _ = out.closed() => break,
            };
            match next {
                Ok(None) => break,
                Ok(Some(line)) if line.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(Some(line)) => match parse_request(&line) {
                    Ok(req) => handle_one(&gw, req, &mut reader, &out, &open_rx).await,
                    Err(e) => {
                        let _ = out.send(reply_error(Value::Null, e));
                    }
                },
                Err(e) => {
                    // An oversized or late line leaves the stream out of sync: report and close.
                    tracing::info!(%peer, "closing connection: {}", e.message);
                    let _ = out.send(reply_error(Value::Null, e));
                    break;
                }
            }
        }
    }
    drop(open_tx);
    drop(open_rx);
    out.finish();
    // The writer ends by itself: queue written, or the host stalled for `write_stall_ms`.
    let _ = writer.await;
}

/// One device as the `devices` op reports it (also the dashboard's view of it).
pub fn device_summary(d: &DeviceHandle) -> wasmbed_api::DeviceSummary {
    let s = d.snapshot();
    wasmbed_api::DeviceSummary {
        name: d.name.clone(),
        endpoint: d.endpoint.clone(),
        online: s.online,
        link_bytes_per_sec: (s.link_bytes_per_sec > 0).then_some(s.link_bytes_per_sec),
        offline_reason: s.offline_reason,
        candidates: s.candidates,
        last_seen_ms_ago: s.last_seen.map(|t| t.elapsed().as_millis() as u64),
        board: s.board,
        firmware: s.firmware,
        proto: s.proto,
        slots_used: s.slots_used,
        slots_total: s.slots_total,
        identity: Some(d.identity.view(&d.name, &s.identity)),
    }
}
