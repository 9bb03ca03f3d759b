//! The Wasmbed dialect (`{"op": ...}`): request ids, several requests per connection, progress
//! events, stable error codes, phase latencies (docs/HOST-API.md).

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tokio::io::AsyncBufRead;
use tokio::sync::{mpsc, watch};

use super::ops::{host_gone, DeploySpec, Latency, Payload};
use super::{framing, ApiError, Gateway, Outbox};
use crate::device::{Reply, Request, StartRequest, StopRequest};
use crate::pipeline::BuildMode;

fn req_str<'a>(req: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    req.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request(format!("missing or non-string field `{key}`")))
}

fn opt_bool(req: &Map<String, Value>, key: &str) -> Result<bool, ApiError> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::bad_request(format!(
            "field `{key}` must be a boolean"
        ))),
    }
}

fn opt_str(req: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!(
            "field `{key}` must be a string"
        ))),
    }
}

fn timeout_ms(req: &Map<String, Value>, default_ms: u64) -> Result<Duration, ApiError> {
    match req.get("result_timeout_ms") {
        None | Some(Value::Null) => Ok(Duration::from_millis(default_ms)),
        Some(v) => v
            .as_u64()
            .filter(|ms| *ms <= 3_600_000)
            .map(Duration::from_millis)
            .ok_or_else(|| ApiError::bad_request("result_timeout_ms must be 0..3600000")),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn latency_json(lat: &Latency, total: Duration) -> Value {
    let mut o = Map::new();
    if let Some(d) = lat.compile {
        o.insert("compile_ms".into(), ms(d).into());
    }
    if let Some(d) = lat.transfer {
        o.insert("transfer_ms".into(), ms(d).into());
    }
    if let Some(d) = lat.device {
        o.insert("device_ms".into(), ms(d).into());
    }
    o.insert("total_ms".into(), ms(total).into());
    Value::Object(o)
}

/// Serves one request and sends its events and final reply through `out`.
pub async fn handle<R: AsyncBufRead + Unpin>(
    gw: &Gateway,
    req: Map<String, Value>,
    reader: &mut R,
    out: &Outbox,
    open: &watch::Receiver<()>,
) {
    let t0 = Instant::now();
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let mut lat = Latency::default();
    let result = dispatch(gw, &req, &id, reader, out, open, &mut lat).await;
    let latency = latency_json(&lat, t0.elapsed());
    let reply = match result {
        Ok(result) => json!({"id": id, "ok": true, "result": result, "latency": latency}),
        Err(e) => json!({"id": id, "ok": false, "error": e.to_json(), "latency": latency}),
    };
    let _ = out.send(reply);
}

async fn dispatch<R: AsyncBufRead + Unpin>(
    gw: &Gateway,
    req: &Map<String, Value>,
    id: &Value,
    reader: &mut R,
    out: &Outbox,
    open: &watch::Receiver<()>,
    lat: &mut Latency,
) -> Result<Value, ApiError> {
    let op = req_str(req, "op")?;
    if !matches!(id, Value::Number(_) | Value::String(_)) {
        return Err(ApiError::bad_request("`id` must be a number or a string"));
    }
    if op == "devices" {
        return Ok(json!({"devices": gw.device_list()}));
    }
    let known = [
        "info",
        "status",
        "deploy",
        "build_and_deploy",
        "start",
        "stop",
        "unload",
        "logs",
    ];
    if !known.contains(&op) {
        return Err(ApiError::new("UNKNOWN_OP", format!("no op `{op}`"))
            .help(format!("ops: devices, {}", known.join(", "))));
    }
    let dev = gw.device(req_str(req, "device")?)?;
    match op {
        "info" => match gw.simple(dev, Request::Info, lat).await? {
            Reply::Info(v) => Ok(v),
            other => Ok(json!(other)),
        },
        "status" => match gw.simple(dev, Request::Status, lat).await? {
            Reply::Status { line, parsed } => {
                let mut v = parsed;
                v["line"] = line.into();
                let jobs: Map<String, Value> = dev
                    .snapshot()
                    .jobs
                    .iter()
                    .map(|(id, j)| (id.clone(), j.to_json()))
                    .collect();
                v["jobs"] = Value::Object(jobs);
                Ok(v)
            }
            other => Ok(json!(other)),
        },
        "deploy" | "build_and_deploy" => {
            let module_id = req_str(req, "module_id")?.to_string();
            let size = req
                .get("size")
                .and_then(Value::as_u64)
                .ok_or_else(|| ApiError::bad_request("missing or non-integer field `size`"))?;
            let crc = req_str(req, "crc32")?.to_ascii_lowercase();
            let mode = if op == "deploy" {
                None
            } else {
                Some(match req_str(req, "mode")? {
                    "wasm" => BuildMode::Wasm,
                    "aot" => BuildMode::Aot,
                    m => {
                        return Err(ApiError::bad_request(format!(
                            "mode must be wasm or aot, not `{m}`"
                        )))
                    }
                })
            };
            let body =
                framing::read_body(reader, size, gw.limits.max_body, gw.body_timeout).await?;
            let got = format!("{:08x}", crc32fast::hash(&body));
            if got != crc {
                return Err(ApiError::bad_request(format!(
                    "body CRC mismatch expected={crc} got={got}"
                )));
            }
            let spec = DeploySpec {
                module_id: module_id.clone(),
                payload: match mode {
                    None => Payload::Binary(body),
                    Some(m) => Payload::Source(body, m),
                },
                replace: opt_bool(req, "replace")?,
                replace_victim: opt_str(req, "replace_victim")?,
                force: opt_bool(req, "force")?,
                strip: opt_bool(req, "strip")?,
            };
            let (ptx, mut prx) =
                mpsc::unbounded_channel::<(&'static str, crate::device::Progress)>();
            let fwd_out = out.clone();
            let fwd_id = id.clone();
            let forward = tokio::spawn(async move {
                while let Some((phase, p)) = prx.recv().await {
                    let _ = fwd_out.send(json!({"id": fwd_id, "event": "progress", "phase": phase, "done": p.done, "total": p.total}));
                }
            });
            let res = gw
                .deploy_until(dev, spec, Some(ptx), lat, host_gone(reader))
                .await;
            let _ = forward.await;
            let d = res?;
            let Reply::Loaded {
                line,
                skipped,
                chunked,
                transfer,
            } = d.reply
            else {
                return Err(ApiError::new("INTERNAL", "unexpected device reply to LOAD"));
            };
            let bps = if transfer.is_zero() {
                0.0
            } else {
                d.size as f64 / transfer.as_secs_f64()
            };
            Ok(
                json!({"line": line, "module_id": module_id, "size": d.size, "crc32": format!("{:08x}", d.crc32),
                      "skipped": skipped, "chunked": chunked, "bytes_per_s": bps}),
            )
        }
        "start" => {
            let args = match req.get("args") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_i64().and_then(|n| i32::try_from(n).ok()))
                    .collect::<Option<Vec<i32>>>()
                    .filter(|a| a.len() <= 4)
                    .ok_or_else(|| {
                        ApiError::bad_request("`args` must be an array of at most 4 i32")
                    })?,
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "`args` must be an array of at most 4 i32",
                    ))
                }
            };
            let wait_result = opt_bool(req, "wait_result")?;
            let start = StartRequest {
                module_id: req_str(req, "module_id")?.to_string(),
                func: opt_str(req, "func")?,
                args,
                wait_result,
                result_timeout: timeout_ms(req, 10_000)?,
            };
            match gw.start(dev, start, true, host_gone(reader), lat).await? {
                Reply::Started {
                    line,
                    status,
                    ret_u32,
                    msg,
                } => {
                    match status.as_deref() {
                        Some("EXCEPTION") => {
                            return Err(
                                ApiError::new("MODULE_TRAPPED", line.clone()).with("line", line)
                            );
                        }
                        Some("STOPPED") => {
                            return Err(
                                ApiError::new("MODULE_STOPPED", line.clone()).with("line", line)
                            );
                        }
                        _ => {}
                    }
                    Ok(
                        json!({"line": line, "status": status, "ret": ret_u32.map(|r| r as i32),
                              "ret_u32": ret_u32, "msg": msg}),
                    )
                }
                other => Ok(json!(other)),
            }
        }
        "stop" => {
            let stop = StopRequest {
                module_id: req_str(req, "module_id")?.to_string(),
                wait: opt_bool(req, "wait")?,
                result_timeout: timeout_ms(req, 10_000)?,
            };
            match gw.stop(dev, stop, host_gone(reader), lat).await? {
                Reply::Stopped { line, status } => Ok(json!({"line": line, "status": status})),
                other => Ok(json!(other)),
            }
        }
        "unload" => {
            let module_id = req_str(req, "module_id")?.to_string();
            match gw.simple(dev, Request::Unload { module_id }, lat).await? {
                Reply::Unloaded { line } => Ok(json!({"line": line})),
                other => Ok(json!(other)),
            }
        }
        "logs" => {
            let since = req.get("since").and_then(Value::as_u64).unwrap_or(0);
            let (lines, rx) = dev.log.since(since);
            let last = lines.last().map_or(since, |e| e.seq);
            if opt_bool(req, "follow")? {
                let out = out.clone();
                let id = id.clone();
                let name = dev.name.clone();
                let open = open.clone();
                tokio::spawn(follow(out, id, name, last, rx, open));
            }
            Ok(json!({"lines": lines}))
        }
        _ => Err(ApiError::new("UNKNOWN_OP", format!("no op `{op}`"))),
    }
}

/// Forwards a device's new log entries to a `logs` follower. Lines the host is too slow for
/// (its reply queue or the gateway's buffer budget is full, or the device log moved on) are
/// skipped and counted; the count is sent as one notice as soon as there is room again.
async fn follow(
    out: Outbox,
    id: Value,
    device: String,
    last: u64,
    mut rx: tokio::sync::broadcast::Receiver<crate::device::LogEntry>,
    mut open: watch::Receiver<()>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut skipped: u64 = 0;
    loop {
        let next = tokio::select! {
            // The host stopped sending or its connection broke.
            _ = open.changed() => break,
            _ = out.closed() => break,
            next = rx.recv() => next,
        };
        let entry = match next {
            Ok(e) if e.seq <= last => continue,
            Ok(e) => e,
            Err(RecvError::Lagged(n)) => {
                skipped += n;
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        if skipped > 0 {
            let notice = json!({"id": id, "event": "log", "seq": null, "device": device,
                                "line": format!("{skipped} log lines skipped (host too slow)"), "kind": "gateway"});
            match out.offer(notice) {
                Ok(true) => skipped = 0,
                Ok(false) => {
                    skipped += 1;
                    continue;
                }
                Err(_) => break,
            }
        }
        let ev = json!({"id": id, "event": "log", "seq": entry.seq, "device": device, "line": entry.line, "kind": entry.kind});
        match out.offer(ev) {
            Ok(true) => {}
            Ok(false) => skipped += 1,
            Err(_) => break,
        }
    }
}
