//! Final replies: the typed `result` of each op, the error object, latencies.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{ErrorBody, EventLine, Op, RequestId, WireError};

/// Phase latencies of a request in milliseconds, measured inside the gateway. Absent phases are
/// omitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// C → wasm → AOT compilation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile_ms: Option<f64>,
    /// Upload of the module bytes over the device link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_ms: Option<f64>,
    /// Device round trips: command line out to final reply line in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_ms: Option<f64>,
    /// Request received to reply sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
}

impl Latency {
    /// A duration in milliseconds, rounded to the microsecond.
    pub fn ms(d: Duration) -> f64 {
        (d.as_secs_f64() * 1e6).round() / 1e3
    }
}

/// One device in the `devices` reply (fields other than `name` read as unknown when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSummary {
    /// Logical name.
    pub name: String,
    /// Endpoint as configured.
    #[serde(default)]
    pub endpoint: String,
    /// Answering: the link is up, the device answered INFO on it, and no request went
    /// unanswered since it last said something.
    #[serde(default)]
    pub online: bool,
    /// Throughput upload deadlines assume, bytes/s (line speed / 10); null before the first
    /// connect.
    #[serde(default)]
    pub link_bytes_per_sec: Option<u32>,
    /// Why the device is not online (link down with the last connect error, `link lost: …`,
    /// no handshake yet, a request unanswered); null while online.
    #[serde(default)]
    pub offline_reason: Option<String>,
    /// While a serial or `usb:` device is offline: the USB serial ports of the gateway's
    /// machine, one summary line each ending in the `usb:` endpoint that selects it.
    #[serde(default)]
    pub candidates: Vec<String>,
    /// Milliseconds since the device last sent a line.
    #[serde(default)]
    pub last_seen_ms_ago: Option<u64>,
    /// Board name.
    #[serde(default)]
    pub board: Option<String>,
    /// Firmware version.
    #[serde(default)]
    pub firmware: Option<String>,
    /// Protocol version (1 or 2).
    #[serde(default)]
    pub proto: Option<u32>,
    /// Slots in use per the last STATUS.
    #[serde(default)]
    pub slots_used: Option<u32>,
    /// Slots available.
    #[serde(default)]
    pub slots_total: Option<u32>,
    /// The device's identity and enrollment (absent from gateways before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<DeviceIdentity>,
}

/// Enrollment state of a device's identity key (docs/SECURITY.md "Device identity").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityState {
    /// Not checked yet on this link (not connected, or the handshake is still going on).
    Unknown,
    /// The device has no identity key (legacy v1 firmware, or firmware built without one).
    None,
    /// The device proved a key that is not pinned yet: commands are refused until
    /// `wasmbed-host devices approve NAME`.
    Pending,
    /// The device proved the pinned key.
    Approved,
    /// The device proved (or announced) a key other than the pinned one, or none while one is
    /// pinned: another board behind the endpoint. Commands are refused.
    Mismatch,
    /// The device did not prove the key it announced (a bad or replayed signature, no answer).
    /// Commands are refused; the gateway challenges it again on the next connect.
    Failed,
}

impl IdentityState {
    /// The wire name (`pending`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityState::Unknown => "unknown",
            IdentityState::None => "none",
            IdentityState::Pending => "pending",
            IdentityState::Approved => "approved",
            IdentityState::Mismatch => "mismatch",
            IdentityState::Failed => "failed",
        }
    }
}

impl std::fmt::Display for IdentityState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device's identity as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceIdentity {
    /// Enrollment state.
    pub state: IdentityState,
    /// Fingerprint of the key the device proved (or announced, when it failed to prove it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Fingerprint of the key pinned for this device name (approved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<String>,
    /// Why the state is what it is (a mismatch, a failed proof), for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Commands other than `info`/`status`/`logs` are served.
    pub allowed: bool,
}

/// Result of `approve` and `forget`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityResult {
    /// Device name.
    pub device: String,
    /// Its identity after the change.
    pub identity: DeviceIdentity,
}

fn api_version_1() -> u32 {
    1
}

/// Result of `devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicesResult {
    /// [`crate::API_VERSION`] of the gateway (1 when absent: gateways before the field).
    #[serde(default = "api_version_1")]
    pub api_version: u32,
    /// The devices, by name.
    pub devices: Vec<DeviceSummary>,
}

/// Result of `info`: the device's INFO fields (`proto: 1` and nulls for legacy firmware).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoResult {
    /// The `INFO_OK` line as it came, with its `seq=1` on correlating firmware (absent for
    /// legacy firmware, which has no INFO; see the crate docs, "Device lines").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// Protocol version.
    pub proto: u32,
    /// Board name.
    #[serde(default)]
    pub board: Option<String>,
    /// Firmware build id.
    #[serde(default)]
    pub fw: Option<String>,
    /// WAMR version.
    #[serde(default)]
    pub wamr: Option<String>,
    /// AOT target architecture (`none` without AOT).
    #[serde(default)]
    pub aot_arch: Option<String>,
    /// AOT target CPU.
    #[serde(default)]
    pub aot_cpu: Option<String>,
    /// AOT target ABI.
    #[serde(default)]
    pub aot_abi: Option<String>,
    /// AOT file format version.
    #[serde(default)]
    pub aot_version: Option<u32>,
    /// Module slots.
    #[serde(default)]
    pub slots: Option<u32>,
    /// Largest module in bytes.
    #[serde(default)]
    pub max_module: Option<u32>,
    /// Module memory pool size.
    #[serde(default)]
    pub pool_total: Option<u32>,
    /// Free pool bytes.
    #[serde(default)]
    pub pool_free: Option<u32>,
    /// Largest upload chunk.
    #[serde(default)]
    pub chunk_max: Option<u32>,
    /// Longest command line.
    #[serde(default)]
    pub line_max: Option<u32>,
    /// The agent's UART speed, when it reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baud: Option<u32>,
    /// How STOP ends a job (`forced`, `cooperative`, `forced_interp_only`).
    #[serde(default)]
    pub stop: Option<String>,
    /// Native functions as `name:signature`.
    #[serde(default)]
    pub natives: Option<Vec<String>>,
}

/// One slot in the `status` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInfo {
    /// The module in the slot.
    pub module_id: String,
    /// Slot state as the device names it (`loaded`, `running`, ...).
    pub state: String,
    /// Module size in bytes.
    pub size: u32,
    /// CRC-32 (8 hex digits) when the firmware reports it.
    pub crc32: Option<String>,
    /// Free stack of the module's job.
    pub stack_free: u32,
}

/// Memory pool figures in the `status` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Pool size.
    pub total: u32,
    /// Free bytes.
    pub free: u32,
    /// Used bytes.
    pub used: u32,
    /// Most ever used.
    pub highmark: u32,
}

/// State of a [`JobRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Started, no RESULT yet.
    Running,
    /// Its RESULT was heard.
    Done,
    /// The device rebooted, the link dropped, or a LOAD of its slot killed it: no RESULT will come.
    Lost,
}

/// What the gateway knows of a module's last job (`status.jobs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The function started (`None`: the device default `app_main`).
    pub func: Option<String>,
    /// Running, done or lost.
    pub state: JobState,
    /// The RESULT status, once heard.
    pub status: Option<RunStatus>,
    /// The RESULT line, once heard.
    pub result: Option<String>,
    /// True when the RESULT came after the `start` request had been answered and no `stop`
    /// with `wait` took it.
    pub late: bool,
    /// That late RESULT's entry in the device log.
    pub log_seq: Option<u64>,
    /// Milliseconds since `START_OK`.
    pub started_ms_ago: Option<u64>,
    /// Milliseconds from `START_OK` to the end of the job, once ended.
    pub duration_ms: Option<u64>,
}

/// Result of `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResult {
    /// The `STATUS_OK` line (without the link's `seq=`: crate docs, "Device lines").
    pub line: String,
    /// The slots in use (empty for firmware that reports none).
    #[serde(default)]
    pub slots: Vec<SlotInfo>,
    /// Memory pool figures, when the firmware reports them.
    #[serde(default)]
    pub memory: Option<MemoryStats>,
    /// The last job the gateway started per module, by module id.
    #[serde(default)]
    pub jobs: BTreeMap<String, JobRecord>,
}

/// Result of `deploy` and `build_and_deploy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployResult {
    /// The `LOAD_OK` line (or a note when skipped), without the link's `seq=`.
    pub line: String,
    /// The slot.
    pub module_id: String,
    /// Size as uploaded.
    pub size: u64,
    /// CRC-32 as uploaded, 8 hex digits.
    pub crc32: String,
    /// The device already held this module: nothing was sent.
    pub skipped: bool,
    /// The chunked (v2) upload was used.
    pub chunked: bool,
    /// Upload throughput.
    pub bytes_per_s: f64,
    /// The functions the module exports, by name (`None`: not inspected, e.g. an AOT file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exports: Option<Vec<String>>,
}

/// The status of a `RESULT` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// `OK`: the function returned.
    Ok,
    /// `EXCEPTION`: the module trapped.
    Exception,
    /// `STOPPED`: ended by STOP.
    Stopped,
    /// `NO_MODULE`: nothing loaded under that id.
    NoModule,
    /// `BUSY`: the slot runs a job.
    Busy,
    /// `BAD_PARAMS`: the arguments do not fit the function.
    BadParams,
    /// `NO_ENTRYPOINT`: the default function is missing.
    NoEntrypoint,
    /// `NO_MEM`: the device could not allocate the job.
    NoMem,
    /// `NO_FUNC`: no such export.
    NoFunc,
    /// `NO_EXEC_ENV`: the runtime could not create an execution environment.
    NoExecEnv,
    /// A status this version does not know, as sent.
    Other(String),
}

impl RunStatus {
    /// The wire text.
    pub fn as_str(&self) -> &str {
        match self {
            RunStatus::Ok => "OK",
            RunStatus::Exception => "EXCEPTION",
            RunStatus::Stopped => "STOPPED",
            RunStatus::NoModule => "NO_MODULE",
            RunStatus::Busy => "BUSY",
            RunStatus::BadParams => "BAD_PARAMS",
            RunStatus::NoEntrypoint => "NO_ENTRYPOINT",
            RunStatus::NoMem => "NO_MEM",
            RunStatus::NoFunc => "NO_FUNC",
            RunStatus::NoExecEnv => "NO_EXEC_ENV",
            RunStatus::Other(s) => s,
        }
    }

    /// The status of a wire text.
    pub fn from_wire(s: &str) -> RunStatus {
        match s {
            "OK" => RunStatus::Ok,
            "EXCEPTION" => RunStatus::Exception,
            "STOPPED" => RunStatus::Stopped,
            "NO_MODULE" => RunStatus::NoModule,
            "BUSY" => RunStatus::Busy,
            "BAD_PARAMS" => RunStatus::BadParams,
            "NO_ENTRYPOINT" => RunStatus::NoEntrypoint,
            "NO_MEM" => RunStatus::NoMem,
            "NO_FUNC" => RunStatus::NoFunc,
            "NO_EXEC_ENV" => RunStatus::NoExecEnv,
            other => RunStatus::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RunStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RunStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RunStatus::from_wire(&String::deserialize(d)?))
    }
}

/// A job's RESULT, typed: what `start --wait-result` prints without knowing the device's wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// The status.
    pub status: RunStatus,
    /// The return value as a signed i32.
    pub ret: Option<i32>,
    /// The return value as the device printed it (unsigned).
    pub ret_u32: Option<u32>,
    /// `msg=` of the RESULT (the trap message, ...).
    pub msg: Option<String>,
    /// `forced=1`: the job did not stop by itself and was aborted.
    pub forced: bool,
}

/// Result of `start`: at `START_OK`, or (with `wait_result`, or an immediate RESULT) the RESULT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartResult {
    /// The `START_OK` or `RESULT` line, without the link's `seq=` (crate docs, "Device lines").
    pub line: String,
    /// The RESULT status (`None` when answered at `START_OK`).
    pub status: Option<RunStatus>,
    /// The return value as i32.
    pub ret: Option<i32>,
    /// The return value as u32.
    pub ret_u32: Option<u32>,
    /// `msg=` of the RESULT.
    pub msg: Option<String>,
    /// `forced=1` of the RESULT.
    #[serde(default)]
    pub forced: bool,
}

impl StartResult {
    /// The RESULT, when the reply carries one.
    pub fn result(&self) -> Option<RunResult> {
        Some(RunResult {
            status: self.status.clone()?,
            ret: self.ret,
            ret_u32: self.ret_u32,
            msg: self.msg.clone(),
            forced: self.forced,
        })
    }

    /// The reply for `line` and its RESULT (if any); `ret` is derived from `ret_u32`.
    pub fn new(line: String, result: Option<RunResult>) -> StartResult {
        match result {
            None => StartResult {
                line,
                status: None,
                ret: None,
                ret_u32: None,
                msg: None,
                forced: false,
            },
            Some(r) => StartResult {
                line,
                status: Some(r.status),
                ret: r.ret_u32.map(|v| v as i32).or(r.ret),
                ret_u32: r.ret_u32,
                msg: r.msg,
                forced: r.forced,
            },
        }
    }
}

/// Result of `stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopResult {
    /// The `STOP_OK` line, or (with `wait`, or a job that ended first) the job's RESULT line;
    /// without the link's `seq=`.
    pub line: String,
    /// `PENDING`, `IDLE`, `NO_JOB`, or the RESULT's status (`STOPPED`, ...).
    pub status: String,
    /// `forced=1` of the RESULT.
    #[serde(default)]
    pub forced: bool,
}

/// Result of `unload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnloadResult {
    /// The `UNLOAD_OK` line, without the link's `seq=`.
    pub line: String,
}

/// One entry of the device log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Sequence number.
    pub seq: u64,
    /// What kind of line.
    pub kind: crate::LogKind,
    /// The line.
    pub line: String,
}

/// Result of `logs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsResult {
    /// The buffered lines after `since`.
    pub lines: Vec<LogLine>,
}

/// The `result` of a reply, by op.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OpResult {
    /// `devices`.
    Devices(DevicesResult),
    /// `info`.
    Info(InfoResult),
    /// `status`.
    Status(StatusResult),
    /// `deploy` and `build_and_deploy`.
    Deploy(DeployResult),
    /// `start`.
    Start(StartResult),
    /// `stop`.
    Stop(StopResult),
    /// `unload`.
    Unload(UnloadResult),
    /// `logs`.
    Logs(LogsResult),
    /// `approve` and `forget`.
    Identity(IdentityResult),
}

impl OpResult {
    /// Reads the `result` of a reply to `op`.
    pub fn from_value(op: Op, v: Value) -> Result<OpResult, WireError> {
        Ok(match op {
            Op::Devices => OpResult::Devices(serde_json::from_value(v)?),
            Op::Info => OpResult::Info(serde_json::from_value(v)?),
            Op::Status => OpResult::Status(serde_json::from_value(v)?),
            Op::Deploy | Op::BuildAndDeploy => OpResult::Deploy(serde_json::from_value(v)?),
            Op::Start => OpResult::Start(serde_json::from_value(v)?),
            Op::Stop => OpResult::Stop(serde_json::from_value(v)?),
            Op::Unload => OpResult::Unload(serde_json::from_value(v)?),
            Op::Logs => OpResult::Logs(serde_json::from_value(v)?),
            Op::Approve | Op::Forget => OpResult::Identity(serde_json::from_value(v)?),
        })
    }
}

/// The final reply to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyLine {
    /// The request's id (`None`, sent as `null`: the request had no usable id).
    pub id: Option<RequestId>,
    /// The result, or the error.
    pub outcome: Result<OpResult, ErrorBody>,
    /// Phase latencies.
    pub latency: Latency,
}

#[derive(Serialize)]
struct ReplyWire<'a> {
    id: &'a Option<RequestId>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a OpResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorBody>,
    latency: &'a Latency,
}

impl Serialize for ReplyLine {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ReplyWire {
            id: &self.id,
            ok: self.outcome.is_ok(),
            result: self.outcome.as_ref().ok(),
            error: self.outcome.as_ref().err(),
            latency: &self.latency,
        }
        .serialize(s)
    }
}

/// A line from the gateway on a Wasmbed connection: an event or a final reply.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// A progress or log event.
    Event(EventLine),
    /// The final reply of a request.
    Reply(Box<ReplyLine>),
    /// An event of a kind this version does not know, or the reply to another request than
    /// the one expected: read no further (clients skip it).
    Skipped {
        /// Its request id, if readable.
        id: Option<RequestId>,
    },
}

impl ServerMessage {
    /// The request id of the message.
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            ServerMessage::Event(e) => Some(&e.id),
            ServerMessage::Reply(r) => r.id.as_ref(),
            ServerMessage::Skipped { id } => id.as_ref(),
        }
    }

    /// Reads a line; a reply's `result` is read as the result of `op` (the op of the request
    /// with that id). A reply whose id is not `expect` is read without its result (another
    /// request's reply: the caller skips it).
    pub fn parse(
        line: &str,
        op: Op,
        expect: Option<&RequestId>,
    ) -> Result<ServerMessage, WireError> {
        let mut v: serde_json::Map<String, Value> = serde_json::from_str(line)
            .map_err(|e| WireError(format!("not a JSON object ({e})")))?;
        let id: Option<RequestId> = v
            .get("id")
            .cloned()
            .and_then(|id| serde_json::from_value(id).ok());
        if let Some(kind) = v.get("event") {
            let known = matches!(kind.as_str(), Some("progress" | "log"));
            if !known {
                return Ok(ServerMessage::Skipped { id });
            }
            return Ok(ServerMessage::Event(serde_json::from_value(
                Value::Object(v),
            )?));
        }
        let id = id.ok_or_else(|| WireError("reply without a valid `id`".into()))?;
        if expect.is_some_and(|e| *e != id) {
            return Ok(ServerMessage::Skipped { id: Some(id) });
        }
        let latency: Latency = match v.remove("latency") {
            Some(Value::Null) | None => Latency::default(),
            Some(l) => serde_json::from_value(l)?,
        };
        let outcome = match v.get("ok").and_then(Value::as_bool) {
            Some(true) => {
                let result = v
                    .remove("result")
                    .unwrap_or(Value::Object(Default::default()));
                Ok(OpResult::from_value(op, result)
                    .map_err(|e| WireError(format!("`{op}` result: {e}")))?)
            }
            Some(false) => Err(match v.remove("error") {
                Some(e @ Value::Object(_)) => serde_json::from_value(e)
                    .map_err(|e| WireError(format!("malformed error object: {e}")))?,
                // The legacy dialect reports a plain string.
                Some(Value::String(s)) => ErrorBody::new(crate::ErrorCode::Internal, s),
                _ => ErrorBody::new(
                    crate::ErrorCode::Internal,
                    "the gateway reported a failure without an error object",
                ),
            }),
            None => return Err(WireError("reply without \"ok\"".into())),
        };
        Ok(ServerMessage::Reply(Box::new(ReplyLine {
            id: Some(id),
            outcome,
            latency,
        })))
    }
}
