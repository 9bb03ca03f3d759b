//! The legacy JSON dialect (`{"cmd": ...}`) of gateway generations GW-1..GW-3: one request per
//! connection, raw bytes after the line for uploads, one Python-formatted JSON reply.

use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::io::AsyncBufRead;

use super::legacy_paths::PathError;
use super::ops::{host_gone, DeploySpec, Latency, Payload};
use super::{ApiError, Gateway};
use crate::device::{StartRequest, StopRequest};
use crate::pipeline::BuildMode;
use wasmbed_api::RunStatus;

fn str_field<'a>(req: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    req.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request(format!("missing or non-string field `{key}`")))
}

fn opt_str(req: &Map<String, Value>, key: &str) -> Option<String> {
    req.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn timeout_field(req: &Map<String, Value>) -> Duration {
    let secs = req
        .get("result_timeout")
        .and_then(Value::as_f64)
        .unwrap_or(10.0);
    Duration::from_secs_f64(secs.clamp(0.0, 3600.0))
}

fn fail(msg: impl Into<String>) -> Value {
    json!({"ok": false, "error": msg.into()})
}

/// Handles one legacy request; returns the reply object (never fails: errors become
/// `{"ok": false, "error": ...}`) and the size of an upload body refused unread, which the
/// connection takes off after answering.
pub async fn handle<R: AsyncBufRead + Unpin>(
    gw: &Gateway,
    req: &Map<String, Value>,
    reader: &mut R,
) -> (Value, Option<u64>) {
    match handle_inner(gw, req, reader).await {
        Ok(v) => (v, None),
        Err(e) => (fail(e.message), e.unread_body),
    }
}

async fn handle_inner<R: AsyncBufRead + Unpin>(
    gw: &Gateway,
    req: &Map<String, Value>,
    reader: &mut R,
) -> Result<Value, ApiError> {
    let cmd = str_field(req, "cmd")?;
    let known = [
        "deploy",
        "load",
        "build_and_deploy",
        "build_and_load",
        "start",
        "stop",
        "status",
    ];
    if !known.contains(&cmd) {
        return Ok(fail(format!("comando sconosciuto: {cmd}")));
    }
    let device = str_field(req, "device")?;
    let dev = gw.device(device)?;
    let mut lat = Latency::default();
    match cmd {
        "status" => {
            let reply = gw.finish(dev.status().await, &mut lat)?;
            Ok(ok_line(&reply.line))
        }
        "stop" => {
            let stop = StopRequest {
                module_id: str_field(req, "module_id")?.to_string(),
                wait: true,
                result_timeout: timeout_field(req),
            };
            let reply = gw.stop(dev, stop, host_gone(reader), &mut lat).await?;
            Ok(ok_line(&reply.line))
        }
        "start" => {
            let args = match req.get("func_args").and_then(Value::as_str) {
                Some(text) if !text.is_empty() => parse_legacy_args(text)?,
                _ => Vec::new(),
            };
            let wait_result = req
                .get("wait_result")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let start = StartRequest {
                module_id: str_field(req, "module_id")?.to_string(),
                func: opt_str(req, "func_name"),
                args,
                wait_result,
                result_timeout: timeout_field(req),
            };
            match gw
                .start(dev, start, false, host_gone(reader), &mut lat)
                .await
            {
                Ok(r) => match r.status {
                    None => Ok(json!({"ok": true, "detail": "START_OK"})),
                    Some(RunStatus::Ok) => Ok(json!({"ok": true, "detail": r.line})),
                    Some(_) => Ok(fail(r.line)),
                },
                Err(e) => Ok(fail(e.message)),
            }
        }
        _ => deploy(gw, cmd, req, reader, &mut lat).await,
    }
}

/// `a=1,b=2` → positional values (names ignored, like the agent).
fn parse_legacy_args(text: &str) -> Result<Vec<i32>, ApiError> {
    wasmbed_agent_proto::Args::parse_legacy(text)
        .map(|a| a.values().to_vec())
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn deploy<R: AsyncBufRead + Unpin>(
    gw: &Gateway,
    cmd: &str,
    req: &Map<String, Value>,
    reader: &mut R,
    lat: &mut Latency,
) -> Result<Value, ApiError> {
    let dev = gw.device(str_field(req, "device")?)?;
    let module_id = str_field(req, "module_id")?.to_string();
    let build = cmd.starts_with("build");
    let (size_key, crc_key) = if build {
        ("source_size", "source_crc32")
    } else {
        ("blob_size", "blob_crc32")
    };
    // Generation 1 names a file on the gateway's disk instead of sending the bytes.
    let path_key = if build { "source_path" } else { "wasm_path" };
    // The body's bytes in the gateway-wide budget, held until the deploy is done.
    let mut _held = None;
    let body = if let Some(path) = req.get("wasm_path").or_else(|| req.get("source_path")) {
        let path = path
            .as_str()
            .ok_or_else(|| ApiError::bad_request(format!("non-string field `{path_key}`")))?;
        match gw.legacy_paths.read(path, gw.limits.max_body) {
            Ok(bytes) => bytes,
            // The legacy gateway's own words for a missing file.
            Err(PathError::NotFound { .. }) if build => {
                return Ok(fail(format!("sorgente C non trovato: {path}")))
            }
            Err(PathError::NotFound { .. }) => {
                return Ok(fail(format!("file non trovato: {path}")))
            }
            Err(e) => return Ok(fail(e.to_string())),
        }
    } else {
        let size = req.get(size_key).and_then(Value::as_u64).ok_or_else(|| {
            ApiError::bad_request(format!("missing or non-integer field `{size_key}`"))
        })?;
        let (body, charge) = gw.read_body(reader, size).await?;
        _held = Some(charge);
        let got = format!("{:08x}", crc32fast::hash(&body));
        if let Some(expected) = req.get(crc_key).and_then(Value::as_str) {
            if expected.to_ascii_lowercase() != got {
                return Ok(fail(format!(
                    "CRC mismatch expected={} got={got}",
                    expected.to_ascii_lowercase()
                )));
            }
        }
        body
    };
    let mode = match req.get("mode").and_then(Value::as_str).unwrap_or("wasm") {
        "wasm" => BuildMode::Wasm,
        "aot" => BuildMode::Aot,
        other => {
            return Err(ApiError::bad_request(format!(
                "mode must be wasm or aot, not `{other}`"
            )))
        }
    };
    let spec = DeploySpec {
        module_id: module_id.clone(),
        payload: if build {
            Payload::Source(body, mode)
        } else {
            Payload::Binary(body)
        },
        replace: req.get("replace").and_then(Value::as_bool).unwrap_or(false),
        replace_victim: opt_str(req, "replace_victim"),
        force: true,
        strip: false,
        version: 0,
        signature: None,
    };
    // A host that leaves while its source compiles (or its module uploads) cancels the work:
    // the compiler's process group is killed, as for the Wasmbed dialect.
    let result = gw
        .deploy_until(dev, spec, None, lat, host_gone(reader))
        .await;
    if !build {
        return Ok(match result {
            Ok(d) => ok_line(&d.reply.line),
            Err(e) => fail(e.message),
        });
    }
    let step = if cmd == "build_and_load" {
        "load"
    } else {
        "deploy"
    };
    let mut out = Map::new();
    match result {
        Err(e) if e.code == "COMPILE_FAILED" => {
            let aot = e.detail.step.as_deref() == Some("compile_aot");
            out.insert("ok".into(), false.into());
            out.insert(
                "step".into(),
                if aot { "compile_aot" } else { "compile_wasm" }.into(),
            );
            let text = if aot {
                "errore compilazione WASM->AOT"
            } else {
                "errore compilazione C->WASM"
            };
            out.insert("error".into(), text.into());
            out.insert(
                "stderr".into(),
                e.detail
                    .stderr
                    .clone()
                    .unwrap_or_else(|| e.message.clone())
                    .into(),
            );
            out.insert(
                "stdout".into(),
                e.detail.stdout.clone().unwrap_or_default().into(),
            );
        }
        other => {
            out.insert("step".into(), step.into());
            out.insert("wasm_path".into(), format!("{module_id}.wasm").into());
            if mode == BuildMode::Aot {
                out.insert("aot_path".into(), format!("{module_id}.aot").into());
            }
            match other {
                Ok(d) => {
                    out.insert("ok".into(), true.into());
                    out.insert("detail".into(), d.reply.line.into());
                }
                Err(e) => {
                    out.insert("ok".into(), false.into());
                    out.insert("error".into(), e.message.into());
                }
            }
        }
    }
    Ok(Value::Object(out))
}

fn ok_line(line: &str) -> Value {
    json!({"ok": true, "detail": line})
}
