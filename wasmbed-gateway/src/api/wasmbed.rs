//! The Wasmbed dialect (`{"op": ...}`): request ids, several requests per connection, progress
//! events, stable error codes, phase latencies (docs/HOST-API.md). Requests, results and events
//! are the typed ones of `wasmbed-api`.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::io::AsyncBufRead;
use tokio::sync::{mpsc, watch};
use wasmbed_api::{
    DeployResult, DevicesResult, ErrorCode, Event, EventLine, LogLine, LogsResult, Op, OpResult,
    ProgressPhase, ReplyLine, Request, RequestError, RequestId, RequestLine, RunStatus,
    StatusResult, API_VERSION, RESULT_TIMEOUT_DEFAULT_MS,
};

use super::ops::{host_gone, DeploySpec, Latency, Payload};
use super::{framing, ApiError, Gateway, Outbox};
use crate::device::{StartRequest, StopRequest};
use crate::pipeline::BuildMode;

fn result_timeout(ms: Option<u64>) -> Duration {
    Duration::from_millis(ms.unwrap_or(RESULT_TIMEOUT_DEFAULT_MS))
}

fn send(out: &Outbox, msg: &impl serde::Serialize) -> bool {
    out.send(serde_json::to_value(msg).expect("a host API message serializes"))
        .is_ok()
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
    // The id as sent, for the reply to a request that does not parse (null if unusable).
    let raw_id: Option<RequestId> = req
        .get("id")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok());
    let mut lat = Latency::default();
    // For the dashboard's latency book (requests that reach a known device).
    let op = req
        .get("op")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let device = req
        .get("device")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (id, outcome) = match RequestLine::from_value(Value::Object(req)) {
        Ok(line) => {
            let r = dispatch(gw, line.request, &line.id, reader, out, open, &mut lat).await;
            (Some(line.id), r)
        }
        Err(RequestError::UnknownOp(op)) => {
            let ops: Vec<&str> = Op::ALL.iter().map(|o| o.as_str()).collect();
            let e = ApiError::new(ErrorCode::UnknownOp, format!("no op `{op}`"))
                .help(format!("ops: {}", ops.join(", ")));
            (raw_id, Err(e))
        }
        Err(RequestError::Bad(m)) => (raw_id, Err(ApiError::bad_request(m))),
    };
    let total = t0.elapsed();
    // Known devices and ops only: the book holds an entry per (op, device) for as long as the
    // gateway runs, so a name the host made up must not add one.
    if let Some(dev) = device.filter(|d| gw.devices.contains_key(d)) {
        if Op::from_name(&op).is_some_and(|o| !matches!(o, Op::Logs | Op::Devices)) {
            gw.latency.record(&op, &dev, &lat, total, outcome.is_ok());
        }
    }
    let unread = outcome.as_ref().err().and_then(|e| e.unread_body);
    let reply = ReplyLine {
        id,
        outcome: outcome.map_err(|e| e.body()),
        latency: lat.to_api(total),
    };
    send(out, &reply);
    if let Some(n) = unread {
        // A body refused unread: answered first, then taken off the connection.
        framing::discard(reader, n, gw.body_timeout).await;
    }
}

async fn dispatch<R: AsyncBufRead + Unpin>(
    gw: &Gateway,
    request: Request,
    id: &RequestId,
    reader: &mut R,
    out: &Outbox,
    open: &watch::Receiver<()>,
    lat: &mut Latency,
) -> Result<OpResult, ApiError> {
    let dev = match request.device() {
        None => {
            return Ok(OpResult::Devices(DevicesResult {
                api_version: API_VERSION,
                devices: gw.device_list(),
            }))
        }
        Some(name) => gw.device(name)?,
    };
    match request {
        Request::Devices {} => unreachable!("answered above"),
        Request::Info(_) => Ok(OpResult::Info(gw.finish(dev.info().await, lat)?)),
        Request::Status(_) => {
            let st = gw.finish(dev.status().await, lat)?;
            let jobs = dev.snapshot().jobs;
            Ok(OpResult::Status(StatusResult {
                line: st.line,
                slots: st.slots,
                memory: st.memory,
                jobs,
            }))
        }
        Request::Deploy(d) | Request::BuildAndDeploy(d) => {
            // `_held`: the body's bytes in the gateway-wide budget, until the deploy is done.
            let (body, _held) = gw.read_body(reader, d.size).await?;
            let crc = d.crc32.to_ascii_lowercase();
            let got = format!("{:08x}", crc32fast::hash(&body));
            if got != crc {
                return Err(ApiError::bad_request(format!(
                    "body CRC mismatch expected={crc} got={got}"
                )));
            }
            let spec = DeploySpec {
                module_id: d.module_id.clone(),
                payload: match d.mode {
                    None => Payload::Binary(body),
                    Some(wasmbed_api::BuildMode::Wasm) => Payload::Source(body, BuildMode::Wasm),
                    Some(wasmbed_api::BuildMode::Aot) => Payload::Source(body, BuildMode::Aot),
                },
                replace: d.replace,
                replace_victim: d.replace_victim,
                force: d.force,
                strip: d.strip,
                version: d.version.unwrap_or(0),
                signature: d.signature.clone(),
            };
            let (ptx, mut prx) =
                mpsc::unbounded_channel::<(&'static str, crate::device::Progress)>();
            let fwd_out = out.clone();
            let fwd_id = id.clone();
            let forward = tokio::spawn(async move {
                while let Some((phase, p)) = prx.recv().await {
                    let phase = match phase {
                        "compile" => ProgressPhase::Compile,
                        "queued" => ProgressPhase::Queued,
                        _ => ProgressPhase::Upload,
                    };
                    let event = Event::Progress {
                        phase,
                        done: p.done,
                        total: p.total,
                    };
                    send(
                        &fwd_out,
                        &EventLine {
                            id: fwd_id.clone(),
                            event,
                        },
                    );
                }
            });
            let res = gw
                .deploy_until(dev, spec, Some(ptx), lat, host_gone(reader))
                .await;
            let _ = forward.await;
            let done = res?;
            let transfer = done.reply.transfer;
            let bytes_per_s = if transfer.is_zero() {
                0.0
            } else {
                done.size as f64 / transfer.as_secs_f64()
            };
            let exports = gw
                .modules
                .lock()
                .expect("modules lock")
                .get(&(dev.name.clone(), d.module_id.clone()))
                .and_then(|m| m.exports.as_ref())
                .map(|e| e.iter().map(|x| x.name.clone()).collect());
            Ok(OpResult::Deploy(DeployResult {
                line: done.reply.line,
                module_id: d.module_id,
                size: done.size as u64,
                crc32: format!("{:08x}", done.crc32),
                skipped: done.reply.skipped,
                chunked: done.reply.chunked,
                bytes_per_s,
                exports,
            }))
        }
        Request::Start(s) => {
            let start = StartRequest {
                module_id: s.module_id,
                func: s.func,
                args: s.args,
                wait_result: s.wait_result,
                result_timeout: result_timeout(s.result_timeout_ms),
            };
            let module_id = start.module_id.clone();
            let r = gw
                .start(dev, start, true, host_gone(reader), lat)
                .await
                .map_err(|e| no_module_hint(dev, &module_id, busy_hint(dev, &module_id, e)))?;
            let code = match r.status {
                Some(RunStatus::Exception) => ErrorCode::ModuleTrapped,
                Some(RunStatus::Stopped) => ErrorCode::ModuleStopped,
                _ => return Ok(OpResult::Start(r)),
            };
            let mut e = ApiError::new(code, r.line.clone()).with("line", r.line);
            e.detail.status = r.status;
            Err(e)
        }
        Request::Stop(s) => {
            let stop = StopRequest {
                module_id: s.module_id,
                wait: s.wait,
                result_timeout: result_timeout(s.result_timeout_ms),
            };
            let module_id = stop.module_id.clone();
            let r = gw.stop(dev, stop, host_gone(reader), lat).await?;
            if matches!(r.status.as_str(), "IDLE" | "NO_JOB") {
                not_loaded(gw, dev, &module_id, lat).await?;
            }
            Ok(OpResult::Stop(r))
        }
        Request::Unload(u) => Ok(OpResult::Unload(
            gw.finish(dev.unload(u.module_id).await, lat)?,
        )),
        Request::Approve(a) => {
            let identity = dev.approve(a.fingerprint.as_deref())?;
            Ok(OpResult::Identity(wasmbed_api::IdentityResult {
                device: dev.name.clone(),
                identity,
            }))
        }
        Request::Forget(_) => {
            let identity = dev.forget()?;
            Ok(OpResult::Identity(wasmbed_api::IdentityResult {
                device: dev.name.clone(),
                identity,
            }))
        }
        Request::Logs(l) => {
            let since = l.since.unwrap_or(0);
            let (lines, rx) = dev.log.since(since);
            let last = lines.last().map_or(since, |e| e.seq);
            if l.follow {
                let out = out.clone();
                let id = id.clone();
                let name = dev.name.clone();
                let open = open.clone();
                tokio::spawn(follow(out, id, name, last, rx, open));
            }
            Ok(OpResult::Logs(LogsResult {
                lines: lines
                    .into_iter()
                    .map(|e| LogLine {
                        seq: e.seq,
                        kind: e.kind,
                        line: e.line,
                    })
                    .collect(),
            }))
        }
    }
}

/// A START refused with `status=NO_MODULE`: the device's line names no module, so the help
/// names the one asked for (not a placeholder) and the command that loads it.
fn no_module_hint(dev: &crate::device::DeviceHandle, module_id: &str, e: ApiError) -> ApiError {
    if e.detail.status != Some(RunStatus::NoModule) {
        return e;
    }
    e.help(format!(
        "nothing is loaded as {module_id} on device {}: deploy it first (`wasmbed-host deploy \
         --module-id {module_id} --file FILE`, or `wasmbed-host run FILE --func F`); \
         `wasmbed-host status` lists the loaded modules",
        dev.name
    ))
}

/// A START refused with `status=BUSY`: names the job that holds the slot (from the gateway's
/// job table) and the command that frees it.
fn busy_hint(dev: &crate::device::DeviceHandle, module_id: &str, mut e: ApiError) -> ApiError {
    if e.detail.status != Some(RunStatus::Busy) {
        return e;
    }
    let job = dev.snapshot().jobs.get(module_id).cloned();
    let holder = match job.filter(|j| j.state == wasmbed_api::JobState::Running) {
        Some(j) => {
            let func = j.func.as_deref().unwrap_or("app_main");
            let age = j
                .started_ms_ago
                .map(|ms| format!(", started {:.1} s ago", ms as f64 / 1000.0))
                .unwrap_or_default();
            format!("its job {func}{age}")
        }
        None => "a job".to_string(),
    };
    e.message = format!("{module_id} is busy running {holder}; {}", e.message);
    e.help = Some(format!(
        "stop it with `wasmbed-host stop --module-id {module_id}` (waits for its end), then \
         start again; or deploy with --replace to kill it"
    ));
    e
}

/// After a STOP answered `IDLE`/`NO_JOB`: an error when the device (protocol v2, which lists
/// its slots) holds no module of that id, so a typo is not taken for a stopped job.
async fn not_loaded(
    gw: &Gateway,
    dev: &crate::device::DeviceHandle,
    module_id: &str,
    lat: &mut Latency,
) -> Result<(), ApiError> {
    if dev.snapshot().proto != Some(2) {
        return Ok(());
    }
    let st = gw.finish(dev.status().await, lat)?;
    if st.slots.iter().any(|s| s.module_id == module_id) {
        return Ok(());
    }
    let loaded: Vec<&str> = st.slots.iter().map(|s| s.module_id.as_str()).collect();
    let mut e = ApiError::new(
        ErrorCode::DeviceRejected,
        format!(
            "nothing is loaded as {module_id} on device {}: no job to stop",
            dev.name
        ),
    )
    .help(if loaded.is_empty() {
        "the device holds no modules (`wasmbed-host status`)".to_string()
    } else {
        format!(
            "loaded modules: {} (`wasmbed-host status` shows their jobs)",
            loaded.join(", ")
        )
    });
    e.detail.status = Some(RunStatus::NoModule);
    Err(e)
}

/// Forwards a device's new log entries to a `logs` follower. Lines the host is too slow for
/// (its reply queue or the gateway's buffer budget is full, or the device log moved on) are
/// skipped and counted; the count is sent as one notice as soon as there is room again.
async fn follow(
    out: Outbox,
    id: RequestId,
    device: String,
    last: u64,
    mut rx: tokio::sync::broadcast::Receiver<crate::device::LogEntry>,
    mut open: watch::Receiver<()>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let line = |event: Event| {
        serde_json::to_value(EventLine {
            id: id.clone(),
            event,
        })
        .expect("a host API message serializes")
    };
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
            let notice = line(Event::Log {
                seq: None,
                device: device.clone(),
                line: format!("{skipped} log lines skipped (host too slow)"),
                kind: wasmbed_api::LogKind::Gateway,
            });
            match out.offer(notice) {
                Ok(true) => skipped = 0,
                Ok(false) => {
                    skipped += 1;
                    continue;
                }
                Err(_) => break,
            }
        }
        let ev = line(Event::Log {
            seq: Some(entry.seq),
            device: device.clone(),
            line: entry.line,
            kind: entry.kind,
        });
        match out.offer(ev) {
            Ok(true) => {}
            Ok(false) => skipped += 1,
            Err(_) => break,
        }
    }
}
