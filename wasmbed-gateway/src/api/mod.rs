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
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
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
    /// Deadline for the next request of a Wasmbed connection between requests.
    pub idle_timeout: Duration,
    /// Deadline for a new connection's first complete request line (TLS handshake included).
    pub first_request_timeout: Duration,
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
    /// Connections served per peer address (`limits.max_connections_per_peer`).
    per_peer: Arc<Mutex<HashMap<std::net::IpAddr, usize>>>,
    /// TLS on this listener (`[tls]`), `None` for plaintext.
    pub tls: Option<crate::tls::Tls>,
    /// What the gateway deployed: (device, module_id) → exports, for START checks.
    modules: Mutex<HashMap<(String, String), ModuleSummary>>,
    /// Fleet membership (docs/FLEET.md): set once the gateway joined a fleet. Requests for a
    /// device this gateway does not serve go to the fleet.
    pub fleet: std::sync::OnceLock<Arc<crate::fleet::Member>>,
    /// The module-signing key (`[signing] key_file`): in a fleet, AOT files this gateway
    /// builds for the others are stored with its signature.
    pub signing_key: Option<Arc<crate::signing::ModuleKey>>,
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
            first_request_timeout: Duration::from_millis(limits.first_request_timeout_ms),
            legacy_paths: legacy_paths::PathPolicy::default(),
            latency: crate::http::LatencyBook::new(limits.latency_window_s, limits.latency_windows),
            line_timeout: Duration::from_millis(limits.line_timeout_ms),
            budget: Budget::new(limits.buffer_budget),
            connections: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            per_peer: Arc::default(),
            tls: None,
            modules: Mutex::new(HashMap::new()),
            fleet: std::sync::OnceLock::new(),
            signing_key: None,
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

/// Capacity of the channel [`call`] answers into, in messages.
pub(crate) const CALL_CHANNEL: usize = 64;

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
/// `out` is bounded ([`CALL_CHANNEL`]): a caller that does not take its lines holds the request's
/// outbox up, which closes it after `limits.write_stall_ms` like a host that does not read.
pub(crate) async fn call(
    gw: &Gateway,
    req: Map<String, Value>,
    body: &[u8],
    out: &mpsc::Sender<Value>,
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
            if out.send(v).await.is_err() {
                break;
            }
        }
    };
    let run = async {
        // In a fleet, a device claimed by another gateway is served by it (as on a host
        // connection): this gateway's device task refuses jobs it may not write.
        handle_one(gw, req, &mut reader, &outbox, &open_rx).await;
        outbox.finish();
    };
    tokio::join!(run, writer, forward);
}

/// The reading side of a host connection (plain TCP or TLS).
type HostRead = BufReader<Box<dyn AsyncRead + Send + Unpin>>;
/// The writing side of a host connection.
type HostWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// A place among one peer's connections, given back on drop.
struct PeerSlot {
    map: Arc<Mutex<HashMap<std::net::IpAddr, usize>>>,
    ip: std::net::IpAddr,
}

impl PeerSlot {
    /// `Some(None)`: served without a slot (loopback hosts are local users, who can use any
    /// address of 127.0.0.0/8; the global cap bounds them). `None`: over the cap.
    fn take(gw: &Gateway, ip: std::net::IpAddr) -> Option<Option<PeerSlot>> {
        if ip.is_loopback() {
            return Some(None);
        }
        let mut m = gw.per_peer.lock().expect("per-peer lock");
        let n = m.entry(ip).or_default();
        if *n >= gw.limits.max_connections_per_peer.max(1) {
            return None;
        }
        *n += 1;
        Some(Some(PeerSlot {
            map: gw.per_peer.clone(),
            ip,
        }))
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut m = self.map.lock().expect("per-peer lock");
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Answers `BUSY` (legacy shape, which both dialects read) and closes, within 1 s.
fn refuse_busy(stream: TcpStream, message: String) {
    tokio::spawn(async move {
        let (_, mut w) = stream.into_split();
        let e = json!({"ok": false, "code": "BUSY", "error": message});
        let _ = tokio::time::timeout(Duration::from_secs(1), send_legacy(&mut w, &e)).await;
    });
}

/// Accepts connections forever, one task per connection, at most `limits.max_connections` at
/// once and `limits.max_connections_per_peer` from one address: a connection over a cap is
/// answered `BUSY` and closed.
pub async fn serve(listener: TcpListener, gw: Arc<Gateway>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let gw = gw.clone();
                let Some(slot) = PeerSlot::take(&gw, peer.ip()) else {
                    let cap = gw.limits.max_connections_per_peer;
                    tracing::warn!(%peer, "refusing connection: limits.max_connections_per_peer = {cap} reached for {}", peer.ip());
                    refuse_busy(
                        stream,
                        format!(
                            "{} already has {cap} connections open to this gateway \
                         (limits.max_connections_per_peer): close idle ones or retry later",
                            peer.ip()
                        ),
                    );
                    continue;
                };
                let Ok(permit) = gw.connections.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "refusing connection: limits.max_connections = {} reached", gw.limits.max_connections);
                    refuse_busy(stream, format!(
                        "the gateway serves {} connections at most (limits.max_connections): retry later",
                        gw.limits.max_connections));
                    continue;
                };
                // Until its first request, a connection is nobody's: it gets a short deadline.
                let deadline = tokio::time::Instant::now() + gw.first_request_timeout;
                tokio::spawn(async move {
                    tracing::debug!(%peer, "host connected");
                    if let Some((r, w, fd)) = open(stream, peer, &gw, deadline).await {
                        serve_connection(r, w, Some(fd), peer, gw, deadline).await;
                    }
                    drop(permit);
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Tells a TLS host from a JSON-lines one by the first byte, runs the TLS handshake, and refuses
/// what this listener does not serve: plaintext on a TLS listener (except loopback with
/// `tls.plaintext_loopback`), TLS on a plaintext listener. Each refusal is answered with a
/// line saying what to do, and logged.
async fn open(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    gw: &Gateway,
    deadline: tokio::time::Instant,
) -> Option<(HostRead, HostWrite, RawFd)> {
    let fd = stream.as_raw_fd();
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
        Ok(Ok(0)) | Ok(Err(_)) => return None,
        Ok(Ok(_)) => {}
        Err(_) => {
            let e = first_request_late(gw, peer);
            let (_, mut w) = stream.into_split();
            let e = json!({"ok": false, "code": e.code, "error": e.message});
            send_legacy_bounded(&mut w, &e, gw, peer).await;
            return None;
        }
    }
    let is_tls = first[0] == crate::tls::HANDSHAKE_RECORD;
    let plain = |s: TcpStream| -> (HostRead, HostWrite) {
        let (r, w) = s.into_split();
        (BufReader::new(Box::new(r)), Box::new(w))
    };
    let with_fd = |(r, w): (HostRead, HostWrite)| Some((r, w, fd));
    match (&gw.tls, is_tls) {
        (None, false) => with_fd(plain(stream)),
        (Some(t), false) if t.plaintext_allowed(peer) => with_fd(plain(stream)),
        (Some(_), false) => {
            tracing::info!(%peer, "refusing plaintext connection: this listener speaks TLS only");
            let (mut r, mut w) = plain(stream);
            // Take the request line first: closing over unread bytes would reset the
            // connection before the host reads why. Answered in its dialect.
            let line =
                framing::read_line(&mut r, gw.limits.max_line, gw.line_timeout, gw.line_timeout)
                    .await;
            let req = match line {
                Ok(Some(l)) => parse_request(&l).ok(),
                _ => None,
            };
            let message = "this gateway accepts TLS connections only";
            let help = "connect with --gateway tls://HOST:PORT and --ca FILE (docs/SECURITY.md)";
            let reply = match req {
                Some(req) if req.contains_key("op") => {
                    let e = ApiError::new("TLS_REQUIRED", message).help(help);
                    json!({"id": req.get("id").cloned().unwrap_or(Value::Null), "ok": false, "error": e.to_json()})
                }
                _ => {
                    json!({"ok": false, "code": "TLS_REQUIRED", "error": format!("{message}: {help}")})
                }
            };
            send_legacy_bounded(&mut w, &reply, gw, peer).await;
            None
        }
        (None, true) => {
            tracing::info!(%peer, "refusing TLS connection: this listener speaks plaintext (set [tls] to serve TLS)");
            let (mut r, mut w) = plain(stream);
            // Take the ClientHello, then answer in plaintext: the host's TLS library reports a
            // non-TLS answer, which wasmbed-host explains.
            let mut hello = vec![0u8; 16 * 1024];
            let _ = tokio::time::timeout(
                Duration::from_millis(200),
                tokio::io::AsyncReadExt::read(&mut r, &mut hello),
            )
            .await;
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                w.write_all(b"{\"ok\": false, \"code\": \"TLS_UNAVAILABLE\", \"error\": \"this gateway listener speaks plaintext: connect without tls://\"}\n").await?;
                w.shutdown().await
            })
            .await;
            None
        }
        (Some(t), true) => {
            let by = deadline.min(tokio::time::Instant::now() + gw.line_timeout);
            match tokio::time::timeout_at(by, t.acceptor.accept(stream)).await {
                Ok(Ok(s)) => {
                    let (r, w) = tokio::io::split(s);
                    with_fd((BufReader::new(Box::new(r)), Box::new(w)))
                }
                Ok(Err(e)) => {
                    tracing::info!(%peer, "TLS handshake failed: {e}");
                    None
                }
                Err(_) => {
                    tracing::info!(%peer, "closing connection: TLS handshake not done within limits.line_timeout_ms / limits.first_request_timeout_ms");
                    None
                }
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

async fn send_legacy<W: AsyncWrite + Unpin>(w: &mut W, v: &Value) {
    let mut text = pyjson::dumps(v);
    text.push('\n');
    let _ = w.write_all(text.as_bytes()).await;
    let _ = w.shutdown().await;
}

/// [`send_legacy`] to a host that has `limits.write_stall_ms` to take the reply.
async fn send_legacy_bounded<W: AsyncWrite + Unpin>(
    w: &mut W,
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

/// A connection sent no complete request within `limits.first_request_timeout_ms`: logged, and
/// the error its host is answered.
fn first_request_late(gw: &Gateway, peer: std::net::SocketAddr) -> ApiError {
    let secs = gw.first_request_timeout.as_secs_f64();
    tracing::info!(%peer, "closing connection: no complete request within {secs} s of connecting (limits.first_request_timeout_ms)");
    ApiError::new(
        "TIMEOUT",
        format!(
            "no complete request within {secs} s of connecting \
             (limits.first_request_timeout_ms): send the request right after connecting"
        ),
    )
    .with("phase", "request")
    .help(framing::REQUEST_LINE_HELP)
}

async fn serve_connection(
    mut reader: HostRead,
    mut w: HostWrite,
    fd: Option<RawFd>,
    peer: std::net::SocketAddr,
    gw: Arc<Gateway>,
    deadline: tokio::time::Instant,
) {
    // The first request, unauthenticated until read, must be complete by `deadline`
    // (`first_request_timeout`); once started, its line also within `line_timeout`.
    let read = framing::read_line(
        &mut reader,
        gw.limits.max_line,
        gw.first_request_timeout,
        gw.line_timeout,
    );
    let first = match tokio::time::timeout_at(deadline, read).await {
        Ok(r) => r,
        Err(_) => Err(first_request_late(&gw, peer)),
    };
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
        let (reply, unread) = match gw.check_token(&req) {
            Ok(()) => legacy::handle(&gw, &req, &mut reader).await,
            Err(e) => (json!({"ok": false, "error": e.message}), None),
        };
        send_legacy_bounded(&mut w, &reply, &gw, peer).await;
        if let Some(n) = unread {
            // Closing over the unread body would reset the connection before the host read
            // the answer.
            framing::discard(&mut reader, n, gw.body_timeout).await;
        }
        return;
    }
    serve_wasmbed(req, reader, w, fd, peer, gw).await;
}

/// One Wasmbed-dialect request (of a host connection or the HTTP API): served here, or
/// forwarded to the fleet when this gateway is in a fleet and does not serve the request's
/// device.
async fn handle_one<R: tokio::io::AsyncBufRead + Unpin>(
    gw: &Gateway,
    req: Map<String, Value>,
    reader: &mut R,
    out: &Outbox,
    open: &tokio::sync::watch::Receiver<()>,
) {
    if let Some(member) = gw.fleet.get() {
        if let Some(dev) = req.get("device").and_then(Value::as_str) {
            // Fencing: served here only while the claims bucket names this gateway under its
            // token (docs/FLEET.md); otherwise the fleet routes it to the owner.
            if member.check_fence(dev).await.is_err() {
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
    // The body's end is not the host leaving (a fleet request has no connection to watch):
    // without StaysOpen every upload would be cancelled as soon as its bytes were read.
    let mut body = BufReader::new(tokio::io::AsyncReadExt::chain(body, StaysOpen));
    let serve = async {
        wasmbed::handle(gw, req, &mut body, &ob, &open_rx).await;
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
    mut reader: HostRead,
    w: HostWrite,
    fd: Option<RawFd>,
    peer: std::net::SocketAddr,
    gw: Arc<Gateway>,
) {
    let out = Outbox::new(gw.budget.clone(), outbox_bounds(&gw), peer);
    let writer = {
        let out = out.clone();
        // The socket lives while the writer holds its writing half.
        tokio::spawn(async move {
            let unsent = move || fd.and_then(unsent_bytes);
            out.run_writer_probed(w, Some(&unsent)).await
        })
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
                    // A line cut short while replies wait unread is the host not reading (its
                    // writes may be blocked behind them), not a slowloris.
                    let waiting = out.queued() + fd.and_then(unsent_bytes).unwrap_or(0);
                    if waiting > 0 {
                        tracing::info!(%peer, "closing connection: {} while {waiting} reply bytes wait for the host to read them", e.message);
                    } else {
                        tracing::info!(%peer, "closing connection: {}", e.message);
                    }
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
    if out.stalled() {
        // Reset rather than close: replies the host never took would otherwise keep the
        // connection alive in the kernel, probing a zero window.
        if let Some(fd) = fd {
            reset_on_close(fd);
        }
    }
    drop(reader);
}

/// Bytes written to the socket `fd` that its peer has not acknowledged yet (`SIOCOUTQ`).
fn unsent_bytes(fd: RawFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (= SIOCOUTQ) writes one int; `fd` is a socket this connection owns.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    (r == 0).then_some(n.max(0) as usize)
}

/// `SO_LINGER` 0 on `fd`: its last close sends a reset and drops unsent data.
fn reset_on_close(fd: RawFd) {
    // SAFETY: the descriptor is a live socket of this connection (its reading half is alive);
    // SockRef does not close it.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let _ = socket2::SockRef::from(&fd).set_linger(Some(Duration::ZERO));
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
