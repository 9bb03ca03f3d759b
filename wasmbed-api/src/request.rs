//! Requests of the Wasmbed dialect: one JSON line `{"op": ..., "id": ..., ...}` per request.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use wasmbed_agent_proto::{FuncName, InvalidField, ModuleId};

/// Most START arguments a device takes (`MAX_CALL_ARGS` in the agent).
pub const ARGS_MAX: usize = 4;
/// `result_timeout_ms` when a request leaves it out.
pub const RESULT_TIMEOUT_DEFAULT_MS: u64 = 10_000;
/// Largest `result_timeout_ms` accepted (one hour).
pub const RESULT_TIMEOUT_MAX_MS: u64 = 3_600_000;

/// A request id: any JSON number or string, echoed back in every event and the reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// A JSON number.
    Number(serde_json::Number),
    /// A JSON string.
    Text(String),
}

impl From<u64> for RequestId {
    fn from(n: u64) -> Self {
        RequestId::Number(n.into())
    }
}

/// Treats an explicit `null` like an absent field.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The ops, without their fields (what a client needs to read the reply's `result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `devices`.
    Devices,
    /// `info`.
    Info,
    /// `status`.
    Status,
    /// `deploy`.
    Deploy,
    /// `build_and_deploy`.
    BuildAndDeploy,
    /// `start`.
    Start,
    /// `stop`.
    Stop,
    /// `unload`.
    Unload,
    /// `logs`.
    Logs,
    /// `approve`.
    Approve,
    /// `forget`.
    Forget,
}

impl Op {
    /// Every op, in the order of docs/HOST-API.md.
    pub const ALL: [Op; 11] = [
        Op::Devices,
        Op::Info,
        Op::Status,
        Op::Deploy,
        Op::BuildAndDeploy,
        Op::Start,
        Op::Stop,
        Op::Unload,
        Op::Logs,
        Op::Approve,
        Op::Forget,
    ];

    /// The wire name (`build_and_deploy`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Devices => "devices",
            Op::Info => "info",
            Op::Status => "status",
            Op::Deploy => "deploy",
            Op::BuildAndDeploy => "build_and_deploy",
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Unload => "unload",
            Op::Logs => "logs",
            Op::Approve => "approve",
            Op::Forget => "forget",
        }
    }

    /// The op of a wire name.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Fields of `info` and `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRequest {
    /// Device name.
    pub device: String,
}

/// Fields of `approve`: pin the device's identity key (docs/SECURITY.md "Device identity").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproveRequest {
    /// Device name.
    pub device: String,
    /// The key fingerprint to pin (32 hex digits, or a prefix of at least 12 of the key the
    /// device presented). Absent: the key the device presented. Required to accept a device
    /// whose key differs from the pinned one, and to pin a key before the device is seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// Fields of `unload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRequest {
    /// Device name.
    pub device: String,
    /// The slot.
    pub module_id: String,
}

/// How `build_and_deploy` builds the C source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildMode {
    /// C → `.wasm` (interpreted on the device).
    Wasm,
    /// C → `.wasm` → `.aot` for the device's target.
    Aot,
}

impl BuildMode {
    /// `wasm` or `aot`.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildMode::Wasm => "wasm",
            BuildMode::Aot => "aot",
        }
    }
}

/// Fields of `deploy` and `build_and_deploy`; `size` bytes of body follow the line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRequest {
    /// Device name.
    pub device: String,
    /// Target slot.
    pub module_id: String,
    /// `build_and_deploy` only: how to build the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<BuildMode>,
    /// Body size in bytes.
    pub size: u64,
    /// CRC-32 of the body, 8 hex digits.
    pub crc32: String,
    /// Reload the slot if it holds a module (`replace=1`).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub replace: bool,
    /// Evict this module if no slot is free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_victim: Option<String>,
    /// Upload even if the device holds an identical module.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub force: bool,
    /// Remove custom sections before upload.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub strip: bool,
    /// The version the gateway signs the module with (anti-rollback; devices refuse a version
    /// below their minimum for the module id). Used only when the gateway signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// A signature made elsewhere (`wasmbed-host keys sign`), uploaded as-is instead of the
    /// gateway's: `key=<16 hex> ver=<n> sig=<128 hex>` over exactly the body's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// Fields of `start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRequest {
    /// Device name.
    pub device: String,
    /// The module to run.
    pub module_id: String,
    /// Export to call (`None`: the device's default, `app_main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub func: Option<String>,
    /// At most [`ARGS_MAX`] i32 arguments.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<i32>,
    /// Answer with the job's RESULT instead of at `START_OK`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub wait_result: bool,
    /// Deadline for the RESULT from `START_OK` (default [`RESULT_TIMEOUT_DEFAULT_MS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_timeout_ms: Option<u64>,
}

/// Fields of `stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequest {
    /// Device name.
    pub device: String,
    /// The module whose job to stop.
    pub module_id: String,
    /// After `STOP_OK status=PENDING`, answer with the job's RESULT.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub wait: bool,
    /// Deadline for that RESULT from `STOP_OK` (default [`RESULT_TIMEOUT_DEFAULT_MS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_timeout_ms: Option<u64>,
}

/// Fields of `logs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsRequest {
    /// Device name.
    pub device: String,
    /// Keep sending log events until the host closes the connection.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub follow: bool,
    /// Only lines after this sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
}

/// A request of the Wasmbed dialect, tagged by `op`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// List the devices.
    Devices {},
    /// The device's INFO fields.
    Info(DeviceRequest),
    /// STATUS plus the gateway's job records.
    Status(DeviceRequest),
    /// Upload a `.wasm`/`.aot` (body follows).
    Deploy(DeployRequest),
    /// Build C source and upload it (body follows).
    BuildAndDeploy(DeployRequest),
    /// START a function.
    Start(StartRequest),
    /// STOP a job.
    Stop(StopRequest),
    /// UNLOAD a module.
    Unload(ModuleRequest),
    /// Read (and follow) the device log.
    Logs(LogsRequest),
    /// Approve (enroll) a device's identity key.
    Approve(ApproveRequest),
    /// Forget a device's pinned identity key.
    Forget(DeviceRequest),
}

impl Request {
    /// The op.
    pub fn op(&self) -> Op {
        match self {
            Request::Devices {} => Op::Devices,
            Request::Info(_) => Op::Info,
            Request::Status(_) => Op::Status,
            Request::Deploy(_) => Op::Deploy,
            Request::BuildAndDeploy(_) => Op::BuildAndDeploy,
            Request::Start(_) => Op::Start,
            Request::Stop(_) => Op::Stop,
            Request::Unload(_) => Op::Unload,
            Request::Logs(_) => Op::Logs,
            Request::Approve(_) => Op::Approve,
            Request::Forget(_) => Op::Forget,
        }
    }

    /// The device the request is for (`None` for `devices`).
    pub fn device(&self) -> Option<&str> {
        match self {
            Request::Devices {} => None,
            Request::Info(r) | Request::Status(r) => Some(&r.device),
            Request::Deploy(r) | Request::BuildAndDeploy(r) => Some(&r.device),
            Request::Start(r) => Some(&r.device),
            Request::Stop(r) => Some(&r.device),
            Request::Unload(r) => Some(&r.device),
            Request::Logs(r) => Some(&r.device),
            Request::Approve(r) => Some(&r.device),
            Request::Forget(r) => Some(&r.device),
        }
    }

    /// Checks what serde cannot: identifiers (the identifier rule of `wasmbed-agent-proto`,
    /// so a module id the device would refuse is refused here), value ranges and the fields one
    /// op needs. The message names the field and what is allowed.
    pub fn check(&self) -> Result<(), String> {
        self.check_identifiers().map_err(|e| e.to_string())?;
        self.check_values()
    }

    fn check_identifiers(&self) -> Result<(), InvalidField> {
        match self {
            Request::Deploy(d) | Request::BuildAndDeploy(d) => {
                ModuleId::new(d.module_id.as_str())?;
                if let Some(v) = &d.replace_victim {
                    ModuleId::for_field("replace_victim", v.as_str())?;
                }
            }
            Request::Start(s) => {
                ModuleId::new(s.module_id.as_str())?;
                if let Some(f) = &s.func {
                    FuncName::new(f.as_str())?;
                }
            }
            Request::Stop(s) => {
                ModuleId::new(s.module_id.as_str())?;
            }
            Request::Unload(u) => {
                ModuleId::new(u.module_id.as_str())?;
            }
            _ => {}
        }
        Ok(())
    }

    fn check_values(&self) -> Result<(), String> {
        let timeout = |t: Option<u64>| match t {
            Some(ms) if ms > RESULT_TIMEOUT_MAX_MS => Err(format!(
                "result_timeout_ms must be 0..{RESULT_TIMEOUT_MAX_MS}, not {ms}"
            )),
            _ => Ok(()),
        };
        match self {
            Request::Deploy(d) | Request::BuildAndDeploy(d) => {
                if d.crc32.len() != 8 || !d.crc32.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("crc32 must be 8 hex digits, not `{}`", d.crc32));
                }
                match (self.op(), d.mode) {
                    (Op::BuildAndDeploy, None) => {
                        Err("build_and_deploy needs `mode` (wasm or aot)".into())
                    }
                    (Op::Deploy, Some(_)) => {
                        Err("`mode` belongs to build_and_deploy, not deploy".into())
                    }
                    _ => Ok(()),
                }
            }
            Request::Start(s) => {
                if s.args.len() > ARGS_MAX {
                    return Err(format!(
                        "`args` must be an array of at most {ARGS_MAX} i32, not {}",
                        s.args.len()
                    ));
                }
                timeout(s.result_timeout_ms)
            }
            Request::Stop(s) => timeout(s.result_timeout_ms),
            Request::Approve(a) => match &a.fingerprint {
                Some(f) if f.len() < 12 || f.len() > 32 || !f.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    Err(format!(
                        "fingerprint must be 12 to 32 hex digits (as `wasmbed-host devices` shows it), not `{f}`"
                    ))
                }
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// One request line: the request, its id and (first request of a connection) the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLine {
    /// The op and its fields.
    #[serde(flatten)]
    pub request: Request,
    /// Echoed in the events and the reply.
    pub id: RequestId,
    /// The gateway's token (off loopback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Why a request line was refused, before anything ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// `op` names no op: `UNKNOWN_OP`.
    #[error("no op `{0}`")]
    UnknownOp(String),
    /// Anything else: `BAD_REQUEST`.
    #[error("{0}")]
    Bad(String),
}

impl RequestLine {
    /// Serializes the line (without the trailing newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a request serializes")
    }

    /// Reads a request from a JSON object (the gateway has already told the dialect by `op`).
    /// The id is checked first, then the op, then the fields and [`Request::check`].
    pub fn from_value(v: Value) -> Result<RequestLine, RequestError> {
        let obj = v
            .as_object()
            .ok_or_else(|| RequestError::Bad("a request must be a JSON object".into()))?;
        let op = obj
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| RequestError::Bad("missing or non-string field `op`".into()))?;
        if !matches!(obj.get("id"), Some(Value::Number(_) | Value::String(_))) {
            return Err(RequestError::Bad(
                "`id` must be a number or a string".into(),
            ));
        }
        let op = Op::from_name(op).ok_or_else(|| RequestError::UnknownOp(op.to_string()))?;
        let line: RequestLine = serde_json::from_value(v)
            .map_err(|e| RequestError::Bad(format!("invalid `{op}` request: {e}")))?;
        line.request.check().map_err(RequestError::Bad)?;
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_name_round_trips() {
        for op in Op::ALL {
            assert_eq!(Op::from_name(op.as_str()), Some(op));
            assert_eq!(serde_json::to_value(op).unwrap(), op.as_str());
        }
        assert_eq!(Op::from_name("reboot"), None);
    }
}
