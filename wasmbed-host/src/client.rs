//! A blocking client for the gateway's Wasmbed JSON dialect (docs/HOST-API.md).
//!
//! One [`Connection`] carries any number of sequential requests. Every read and write is bounded
//! by the deadline passed to [`Connection::request`]; progress and log events are handed to a
//! callback while the final reply is awaited.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmbed_api::{OpResult, Request, RequestId, RequestLine, ServerMessage};

use crate::error::HostError;

/// Port used when `--gateway` names a host without one.
pub const DEFAULT_PORT: u16 = 9000;
/// Longest reply line accepted from the gateway.
const MAX_LINE: u64 = 16 * 1024 * 1024;

pub use wasmbed_api::{Event, Latency};

/// The final reply to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The typed `result` of the request's op.
    pub result: OpResult,
    /// Phase latencies.
    pub latency: Latency,
    /// Host-measured time from sending the request to receiving this reply, in ms.
    pub e2e_ms: f64,
}

/// A failed request: the error plus what is known about its timing.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong.
    pub error: HostError,
    /// Phase latencies the gateway reported with the error, if any.
    pub latency: Latency,
    /// Host-measured time until the failure, in ms.
    pub e2e_ms: f64,
}

impl From<HostError> for Box<Failure> {
    fn from(error: HostError) -> Self {
        Box::new(Failure {
            error,
            latency: Latency::default(),
            e2e_ms: 0.0,
        })
    }
}

/// Turns `host`, `host:port`, `:port` or `tcp:host:port` into `host:port`.
pub fn normalize_addr(addr: &str) -> String {
    let addr = addr.trim().strip_prefix("tcp:").unwrap_or(addr.trim());
    if addr.starts_with('[') {
        return if addr.contains("]:") {
            addr.to_string()
        } else {
            format!("{addr}:{DEFAULT_PORT}")
        };
    }
    match addr.rsplit_once(':') {
        Some(("", port)) => format!("127.0.0.1:{port}"),
        Some(_) => addr.to_string(),
        None => format!("{addr}:{DEFAULT_PORT}"),
    }
}

/// The byte stream to the gateway: plain TCP or TLS over it.
enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
        }
    }
}

/// An open connection to the gateway.
pub struct Connection {
    addr: String,
    /// Reads and (through `get_mut`) writes.
    reader: BufReader<Transport>,
    /// The socket under the transport, for its deadlines.
    socket: TcpStream,
    tls: bool,
    next_id: u64,
    token: Option<String>,
}

fn remaining(deadline: Instant, what: &str, total: Duration) -> Result<Duration, HostError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(HostError::Timeout {
            what: what.into(),
            seconds: total.as_secs_f64(),
        });
    }
    Ok(left)
}

impl Connection {
    /// Connects to `addr` within `timeout`. `token` is sent with the first request. A
    /// `tls://` address needs [`Connection::connect_tls`].
    pub fn connect(
        addr: &str,
        timeout: Duration,
        token: Option<String>,
    ) -> Result<Connection, HostError> {
        Self::connect_tls(addr, timeout, token, None)
    }

    /// Like [`Connection::connect`]; a `tls://HOST:PORT` address is reached over TLS 1.3 with
    /// `tls` (see [`crate::tls::client_config`]), the handshake done within `timeout`.
    pub fn connect_tls(
        addr: &str,
        timeout: Duration,
        token: Option<String>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Connection, HostError> {
        let (wants_tls, bare) = crate::tls::split_scheme(addr);
        let addr = normalize_addr(bare);
        let tls = match (wants_tls, tls) {
            (true, Some(c)) => Some(c),
            (true, None) => {
                return Err(HostError::Usage(format!(
                    "{}{addr} is a TLS gateway: pass --ca FILE (the CA that signed its \
                     certificate)",
                    crate::tls::SCHEME
                )))
            }
            (false, _) => None,
        };
        let unreachable = |reason: String| HostError::Unreachable {
            addr: addr.clone(),
            reason,
        };
        let targets: Vec<_> = addr
            .to_socket_addrs()
            .map_err(|e| unreachable(format!("cannot resolve address: {e}")))?
            .collect();
        let mut last = String::from("no address to connect to");
        for target in targets {
            match TcpStream::connect_timeout(&target, timeout) {
                Ok(stream) => {
                    stream.set_nodelay(true).ok();
                    let socket = stream
                        .try_clone()
                        .map_err(|e| HostError::Internal(format!("socket clone: {e}")))?;
                    let transport = match &tls {
                        Some(config) => Transport::Tls(Box::new(Self::handshake(
                            &addr,
                            config.clone(),
                            stream,
                            timeout,
                        )?)),
                        None => Transport::Plain(stream),
                    };
                    tracing::debug!(%addr, tls = tls.is_some(), "connected to gateway");
                    return Ok(Connection {
                        addr,
                        reader: BufReader::new(transport),
                        socket,
                        tls: tls.is_some(),
                        next_id: 1,
                        token,
                    });
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(unreachable(last))
    }

    fn handshake(
        addr: &str,
        config: Arc<rustls::ClientConfig>,
        mut stream: TcpStream,
        timeout: Duration,
    ) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, HostError> {
        let name = crate::tls::server_name(addr)?;
        let mut conn = rustls::ClientConnection::new(config, name)
            .map_err(|e| crate::tls::explain(addr, &e))?;
        let fail = |e: std::io::Error| match crate::tls::rustls_error(&e) {
            Some(t) => crate::tls::explain(addr, t),
            None if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                HostError::Timeout {
                    what: "the TLS handshake".into(),
                    seconds: timeout.as_secs_f64(),
                }
            }
            None => HostError::Tls {
                addr: format!("{}{addr}", crate::tls::SCHEME),
                reason: format!("the connection ended during the TLS handshake ({e})"),
                help: "check that the gateway serves TLS on this port ([tls]) and its log".into(),
            },
        };
        stream.set_read_timeout(Some(timeout)).map_err(fail)?;
        stream.set_write_timeout(Some(timeout)).map_err(fail)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut stream).map_err(fail)?;
        }
        Ok(rustls::StreamOwned::new(conn, stream))
    }

    /// The gateway address this connection talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `request` (with a fresh id, and the token on the first request) followed by
    /// `body`, then waits until `timeout` has passed for the final reply, passing events to
    /// `on_event`.
    pub fn request(
        &mut self,
        request: Request,
        body: Option<&[u8]>,
        timeout: Duration,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<Reply, Box<Failure>> {
        let started = Instant::now();
        let deadline = started + timeout;
        let id = RequestId::from(self.next_id);
        self.next_id += 1;
        let op = request.op();
        let line = RequestLine {
            request,
            id: id.clone(),
            token: self.token.take(),
        };
        let fail = |error: HostError, latency: Latency| {
            Box::new(Failure {
                error,
                latency,
                e2e_ms: started.elapsed().as_secs_f64() * 1e3,
            })
        };
        let mut bytes = line.to_json().into_bytes();
        bytes.push(b'\n');
        tracing::debug!(%op, id = ?id, body = body.map(<[u8]>::len), "request");
        self.send(&bytes, body, deadline, timeout)
            .map_err(|e| fail(e, Latency::default()))?;
        loop {
            let what = format!("reply to '{op}'");
            let raw = self
                .read_line(deadline, timeout, &what)
                .map_err(|e| fail(e, Latency::default()))?;
            let msg = ServerMessage::parse(&raw, op, Some(&id)).map_err(|e| {
                fail(
                    HostError::Protocol(format!("{e}: {}", clip(&raw))),
                    Latency::default(),
                )
            })?;
            match msg {
                ServerMessage::Event(e) if e.id == id => on_event(&e.event),
                ServerMessage::Reply(r) => {
                    let e2e_ms = started.elapsed().as_secs_f64() * 1e3;
                    return match r.outcome {
                        Ok(result) => Ok(Reply {
                            result,
                            latency: r.latency,
                            e2e_ms,
                        }),
                        Err(error) => Err(Box::new(Failure {
                            error: HostError::Gateway(Box::new(error)),
                            latency: r.latency,
                            e2e_ms,
                        })),
                    };
                }
                _ => tracing::debug!(line = %clip(&raw), "ignoring message for another request"),
            }
        }
    }

    /// Waits for the next event of any request (used by `logs --follow`). Returns `Ok(None)`
    /// when the final reply of a request arrives instead.
    pub fn next_event(
        &mut self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Option<Event>, HostError> {
        loop {
            let raw = self.read_line(deadline, timeout, "log events")?;
            let msg = ServerMessage::parse(&raw, wasmbed_api::Op::Logs, None)
                .map_err(|e| HostError::Protocol(format!("{e}: {}", clip(&raw))))?;
            match msg {
                ServerMessage::Event(e) => return Ok(Some(e.event)),
                ServerMessage::Reply(r) => {
                    return match r.outcome {
                        Ok(_) => Ok(None),
                        Err(e) => Err(HostError::Gateway(Box::new(e))),
                    }
                }
                ServerMessage::Skipped { .. } => continue,
            }
        }
    }

    fn lost(&self, reason: impl Into<String>) -> HostError {
        HostError::ConnectionLost {
            addr: self.addr.clone(),
            reason: reason.into(),
        }
    }

    fn io_error(&self, e: std::io::Error, what: &str, total: Duration) -> HostError {
        if let Some(t) = crate::tls::rustls_error(&e) {
            return crate::tls::explain(&self.addr, t);
        }
        match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => HostError::Timeout {
                what: what.into(),
                seconds: total.as_secs_f64(),
            },
            _ => self.lost(e.to_string()),
        }
    }

    fn send(
        &mut self,
        line: &[u8],
        body: Option<&[u8]>,
        deadline: Instant,
        total: Duration,
    ) -> Result<(), HostError> {
        let what = "sending the request";
        for part in [Some(line), body].into_iter().flatten() {
            for chunk in part.chunks(64 * 1024) {
                let left = remaining(deadline, what, total)?;
                self.socket
                    .set_write_timeout(Some(left))
                    .map_err(|e| self.lost(e.to_string()))?;
                if let Err(e) = self.reader.get_mut().write_all(chunk) {
                    return Err(self.write_error(e, what, total));
                }
            }
        }
        self.reader
            .get_mut()
            .flush()
            .map_err(|e| self.write_error(e, what, total))
    }

    /// A failed write over TLS is usually the gateway refusing this client after the
    /// handshake: its alert waits to be read and says why.
    fn write_error(&mut self, e: std::io::Error, what: &str, total: Duration) -> HostError {
        if self.tls && crate::tls::rustls_error(&e).is_none() {
            let _ = self
                .socket
                .set_read_timeout(Some(Duration::from_millis(500)));
            if let Err(r) = self.reader.fill_buf() {
                if let Some(t) = crate::tls::rustls_error(&r) {
                    return crate::tls::explain(&self.addr, t);
                }
            }
        }
        self.io_error(e, what, total)
    }

    fn read_line(
        &mut self,
        deadline: Instant,
        total: Duration,
        what: &str,
    ) -> Result<String, HostError> {
        let mut buf = Vec::new();
        loop {
            let left = remaining(deadline, what, total)?;
            self.socket
                .set_read_timeout(Some(left))
                .map_err(|e| self.lost(e.to_string()))?;
            let limit = MAX_LINE + 1 - buf.len() as u64;
            match (&mut self.reader).take(limit).read_until(b'\n', &mut buf) {
                Ok(0) if buf.is_empty() => {
                    return Err(self.lost(format!("the gateway closed the connection ({what})")))
                }
                Ok(_) if buf.ends_with(b"\n") => break,
                Ok(_) if buf.len() as u64 > MAX_LINE => {
                    return Err(HostError::Protocol(format!(
                        "reply line longer than {MAX_LINE} bytes"
                    )))
                }
                Ok(0) => return Err(self.lost("the gateway closed the connection mid-line")),
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_error(e, what, total)),
            }
        }
        String::from_utf8(buf)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|_| HostError::Protocol("reply is not UTF-8".into()))
    }
}

fn clip(s: &str) -> String {
    if s.len() <= 200 {
        return s.to_string();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::net::TcpListener;
    use std::thread;
    use wasmbed_api::{DeviceRequest, ProgressPhase};

    fn status() -> Request {
        Request::Status(DeviceRequest { device: "d".into() })
    }

    #[test]
    fn addresses_are_normalized() {
        assert_eq!(normalize_addr("localhost"), "localhost:9000");
        assert_eq!(normalize_addr("10.0.0.1:9100"), "10.0.0.1:9100");
        assert_eq!(normalize_addr(":9100"), "127.0.0.1:9100");
        assert_eq!(normalize_addr("tcp:gw:1"), "gw:1");
        assert_eq!(normalize_addr("[::1]"), "[::1]:9000");
        assert_eq!(normalize_addr("[::1]:5"), "[::1]:5");
    }

    #[test]
    fn request_skips_other_ids_and_reports_events() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let req: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(req["op"], "status");
            assert_eq!(req["token"], "t0k");
            let id = req["id"].clone();
            let mut w = s;
            writeln!(w, "{}", serde_json::json!({"id": 999, "ok": true})).unwrap();
            writeln!(w, "{}", serde_json::json!({"id": id, "event": "progress", "phase": "upload", "done": 5, "total": 10})).unwrap();
            writeln!(w, "{}", serde_json::json!({"id": id, "ok": true, "result": {"line": "STATUS_OK", "slots": [], "memory": null, "jobs": {}}, "latency": {"device_ms": 1.5}})).unwrap();
        });
        let mut c = Connection::connect(&addr, Duration::from_secs(5), Some("t0k".into())).unwrap();
        let mut events = Vec::new();
        let reply = c
            .request(status(), None, Duration::from_secs(5), &mut |e| {
                events.push(e.clone())
            })
            .unwrap();
        server.join().unwrap();
        let OpResult::Status(st) = &reply.result else {
            panic!("{:?}", reply.result)
        };
        assert_eq!(st.line, "STATUS_OK");
        assert_eq!(reply.latency.device_ms, Some(1.5));
        assert_eq!(reply.latency.total_ms, None);
        assert_eq!(
            events,
            vec![Event::Progress {
                phase: ProgressPhase::Upload,
                done: 5,
                total: 10
            }]
        );
    }

    #[test]
    fn silent_gateway_times_out_and_closed_one_is_lost() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = thread::spawn(move || {
            let (silent, _) = listener.accept().unwrap();
            let (closer, _) = listener.accept().unwrap();
            drop(closer);
            thread::sleep(Duration::from_millis(500));
            drop(silent);
        });
        let mut c = Connection::connect(&addr, Duration::from_secs(5), None).unwrap();
        let t0 = Instant::now();
        let f = c
            .request(status(), None, Duration::from_millis(150), &mut |_| {})
            .unwrap_err();
        assert!(
            matches!(f.error, HostError::Timeout { .. }),
            "{:?}",
            f.error
        );
        assert!(t0.elapsed() < Duration::from_secs(2));
        let mut c2 = Connection::connect(&addr, Duration::from_secs(5), None).unwrap();
        let f = c2
            .request(status(), None, Duration::from_secs(5), &mut |_| {})
            .unwrap_err();
        assert!(
            matches!(f.error, HostError::ConnectionLost { .. }),
            "{:?}",
            f.error
        );
        server.join().unwrap();
    }

    #[test]
    fn refused_connection_is_unreachable() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = Connection::connect(&format!("127.0.0.1:{port}"), Duration::from_secs(2), None)
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), crate::error::ExitCode::GatewayUnreachable);
    }
}
