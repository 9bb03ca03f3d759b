//! A blocking client for the gateway's Wasmbed JSON dialect (docs/HOST-API.md).
//!
//! One [`Connection`] carries any number of sequential requests. Every read and write is bounded
//! by the deadline passed to [`Connection::request`]; progress and log events are handed to a
//! callback while the final reply is awaited.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{GatewayError, HostError};

/// Port used when `--gateway` names a host without one.
pub const DEFAULT_PORT: u16 = 9000;
/// Longest reply line accepted from the gateway.
const MAX_LINE: u64 = 16 * 1024 * 1024;

/// Phase latencies reported by the gateway, in milliseconds. Absent phases are `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// C → wasm → AOT compilation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile_ms: Option<f64>,
    /// Upload of the module bytes over the device link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_ms: Option<f64>,
    /// Device round trips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_ms: Option<f64>,
    /// Request received to reply sent, inside the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
}

/// The final reply to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The `result` object (empty on error).
    pub result: Map<String, Value>,
    /// Phase latencies.
    pub latency: Latency,
    /// Host-measured time from sending the request to receiving this reply, in ms.
    pub e2e_ms: f64,
}

/// A progress or log event sent by the gateway while a request runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Compile or upload progress.
    Progress {
        /// `compile` or `upload`.
        phase: String,
        /// Units done so far.
        done: u64,
        /// Units in total (0 if unknown).
        total: u64,
    },
    /// A device log line.
    Log {
        /// Sequence number in the gateway's log buffer.
        seq: u64,
        /// Device name.
        device: String,
        /// `log`, `console`, `result` or `hello`.
        kind: String,
        /// The line as received from the device.
        line: String,
    },
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

/// An open connection to the gateway.
pub struct Connection {
    addr: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
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
    /// Connects to `addr` within `timeout`. `token` is sent with the first request.
    pub fn connect(
        addr: &str,
        timeout: Duration,
        token: Option<String>,
    ) -> Result<Connection, HostError> {
        let addr = normalize_addr(addr);
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
                    let writer = stream
                        .try_clone()
                        .map_err(|e| HostError::Internal(format!("socket clone: {e}")))?;
                    tracing::debug!(%addr, "connected to gateway");
                    return Ok(Connection {
                        addr,
                        reader: BufReader::new(stream),
                        writer,
                        next_id: 1,
                        token,
                    });
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(unreachable(last))
    }

    /// The gateway address this connection talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `request` (an object with `op`; `id` and `token` are added here) followed by
    /// `body`, then waits until `timeout` has passed for the final reply, passing events to
    /// `on_event`.
    pub fn request(
        &mut self,
        mut request: Map<String, Value>,
        body: Option<&[u8]>,
        timeout: Duration,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<Reply, Box<Failure>> {
        let started = Instant::now();
        let deadline = started + timeout;
        let id = self.next_id;
        self.next_id += 1;
        request.insert("id".into(), Value::from(id));
        if let Some(token) = self.token.take() {
            request.insert("token".into(), Value::from(token));
        }
        let op = request
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let fail = |error: HostError, latency: Latency| {
            Box::new(Failure {
                error,
                latency,
                e2e_ms: started.elapsed().as_secs_f64() * 1e3,
            })
        };
        let mut line = serde_json::to_vec(&Value::Object(request))
            .map_err(|e| fail(HostError::Internal(e.to_string()), Latency::default()))?;
        line.push(b'\n');
        tracing::debug!(op = %op, id, body = body.map(<[u8]>::len), "request");
        self.send(&line, body, deadline, timeout)
            .map_err(|e| fail(e, Latency::default()))?;
        loop {
            let what = format!("reply to '{op}'");
            let raw = self
                .read_line(deadline, timeout, &what)
                .map_err(|e| fail(e, Latency::default()))?;
            let msg: Map<String, Value> = serde_json::from_str(&raw).map_err(|e| {
                fail(
                    HostError::Protocol(format!("not a JSON object ({e}): {}", clip(&raw))),
                    Latency::default(),
                )
            })?;
            if msg.get("id") != Some(&Value::from(id)) {
                tracing::debug!(line = %clip(&raw), "ignoring message for another request");
                continue;
            }
            if let Some(kind) = msg.get("event") {
                match parse_event(kind, &msg) {
                    Some(ev) => on_event(&ev),
                    None => tracing::debug!(line = %clip(&raw), "ignoring unknown event"),
                }
                continue;
            }
            let latency: Latency = msg
                .get("latency")
                .cloned()
                .and_then(|l| serde_json::from_value(l).ok())
                .unwrap_or_default();
            let e2e_ms = started.elapsed().as_secs_f64() * 1e3;
            return match msg.get("ok").and_then(Value::as_bool) {
                Some(true) => Ok(Reply {
                    result: match msg.get("result") {
                        Some(Value::Object(r)) => r.clone(),
                        _ => Map::new(),
                    },
                    latency,
                    e2e_ms,
                }),
                Some(false) => {
                    let error = parse_error(msg.get("error"));
                    Err(Box::new(Failure {
                        error: HostError::Gateway(Box::new(error)),
                        latency,
                        e2e_ms,
                    }))
                }
                None => Err(fail(
                    HostError::Protocol(format!("reply without \"ok\": {}", clip(&raw))),
                    latency,
                )),
            };
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
            let msg: Map<String, Value> = serde_json::from_str(&raw).map_err(|e| {
                HostError::Protocol(format!("not a JSON object ({e}): {}", clip(&raw)))
            })?;
            match msg.get("event") {
                Some(kind) => {
                    if let Some(ev) = parse_event(kind, &msg) {
                        return Ok(Some(ev));
                    }
                }
                None if msg.get("ok") == Some(&Value::Bool(false)) => {
                    return Err(HostError::Gateway(Box::new(parse_error(msg.get("error")))))
                }
                None => return Ok(None),
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
                self.writer
                    .set_write_timeout(Some(left))
                    .map_err(|e| self.lost(e.to_string()))?;
                if let Err(e) = self.writer.write_all(chunk) {
                    return Err(self.io_error(e, what, total));
                }
            }
        }
        self.writer
            .flush()
            .map_err(|e| self.io_error(e, what, total))
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
            self.reader
                .get_ref()
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

fn parse_event(kind: &Value, msg: &Map<String, Value>) -> Option<Event> {
    let num = |k: &str| msg.get(k).and_then(Value::as_u64).unwrap_or(0);
    let text = |k: &str| {
        msg.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match kind.as_str()? {
        "progress" => Some(Event::Progress {
            phase: text("phase"),
            done: num("done"),
            total: num("total"),
        }),
        "log" => Some(Event::Log {
            seq: num("seq"),
            device: text("device"),
            kind: text("kind"),
            line: text("line"),
        }),
        _ => None,
    }
}

fn parse_error(v: Option<&Value>) -> GatewayError {
    match v {
        Some(Value::Object(_)) => serde_json::from_value(v.cloned().unwrap_or_default())
            .unwrap_or_else(|e| GatewayError {
                code: "INTERNAL".into(),
                message: format!("malformed error object from the gateway: {e}"),
                help: None,
                detail: None,
            }),
        // The legacy dialect reports a plain string; accept it too.
        Some(Value::String(s)) => GatewayError {
            code: "INTERNAL".into(),
            message: s.clone(),
            help: None,
            detail: None,
        },
        _ => GatewayError {
            code: "INTERNAL".into(),
            message: "the gateway reported a failure without an error object".into(),
            help: None,
            detail: None,
        },
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
    use std::net::TcpListener;
    use std::thread;

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
            writeln!(w, "{}", serde_json::json!({"id": id, "ok": true, "result": {"line": "STATUS_OK"}, "latency": {"device_ms": 1.5}})).unwrap();
        });
        let mut c = Connection::connect(&addr, Duration::from_secs(5), Some("t0k".into())).unwrap();
        let mut events = Vec::new();
        let mut req = Map::new();
        req.insert("op".into(), "status".into());
        let reply = c
            .request(req, None, Duration::from_secs(5), &mut |e| {
                events.push(e.clone())
            })
            .unwrap();
        server.join().unwrap();
        assert_eq!(reply.result["line"], "STATUS_OK");
        assert_eq!(reply.latency.device_ms, Some(1.5));
        assert_eq!(reply.latency.total_ms, None);
        assert_eq!(
            events,
            vec![Event::Progress {
                phase: "upload".into(),
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
        let mut req = Map::new();
        req.insert("op".into(), "status".into());
        let t0 = Instant::now();
        let f = c
            .request(req.clone(), None, Duration::from_millis(150), &mut |_| {})
            .unwrap_err();
        assert!(
            matches!(f.error, HostError::Timeout { .. }),
            "{:?}",
            f.error
        );
        assert!(t0.elapsed() < Duration::from_secs(2));
        let mut c2 = Connection::connect(&addr, Duration::from_secs(5), None).unwrap();
        let f = c2
            .request(req, None, Duration::from_secs(5), &mut |_| {})
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
