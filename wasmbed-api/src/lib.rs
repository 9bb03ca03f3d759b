//! The typed host API of the Wasmbed gateway: the Wasmbed dialect of docs/HOST-API.md as serde
//! types, shared by the gateway (server), `wasmbed-host` (CLI) and `tools/bench` (client).
//!
//! No IO here: a client serializes a [`RequestLine`] and reads [`ServerMessage`]s; the gateway
//! reads a [`RequestLine`] ([`RequestLine::from_value`], which also applies the identifier rule of
//! `wasmbed-agent-proto`) and serializes [`EventLine`]s and a [`ReplyLine`]. The JSON shapes are
//! those of docs/HOST-API.md; its examples are read back by this crate's tests.
//!
//! - [`Request`]: every op as one enum tagged by `op`.
//! - [`OpResult`]: the typed `result` of each op.
//! - [`Event`]: progress and log events.
//! - [`ErrorCode`]: the stable error codes, the host exit code of each ([`ExitCode`]) and a help
//!   text for every code.
//! - [`Latency`]: the phase latencies of a reply.
//! - [`latency`]: the gateway's latency book (percentiles overall and per time window), as its
//!   HTTP API serves it.
//!
//! # Device lines
//!
//! The `line` fields of results and errors (and an error's `last_line`) are the device's reply as
//! an agent without sequence numbers writes it: on firmware that correlates replies
//! (docs/PROTOCOL.md, "Sequence numbers") the gateway drops the link's trailing ` seq=<n>`, which
//! only says which command a line answers. So a reply reads the same from every firmware, e.g.
//! `RESULT status=BUSY`. Two exceptions show lines as they came: [`InfoResult::line`] (its
//! `seq=1` announces that the device correlates) and the device log ([`LogLine`], log events),
//! where a late reply keeps the seq of the command it answered. Clients read results from the
//! typed fields, never from `line`.

pub mod app;
mod error;
mod event;
pub mod latency;
mod reply;
mod request;

pub use error::{ErrorBody, ErrorCode, ErrorDetail, ExitCode};
pub use event::{Event, EventLine, LogKind, ProgressPhase};
pub use reply::{
    DeployResult, DeviceIdentity, DeviceSummary, DevicesResult, IdentityResult, IdentityState,
    InfoResult, JobRecord, JobState, Latency, LogLine, LogsResult, MemoryStats, OpResult,
    ReplyLine, RunResult, RunStatus, ServerMessage, SlotInfo, StartResult, StatusResult,
    StopResult, UnloadResult,
};
pub use request::{
    ApproveRequest, BuildMode, DeployRequest, DeviceRequest, LogsRequest, ModuleRequest, Op,
    Request, RequestError, RequestId, RequestLine, StartRequest, StopRequest, ARGS_MAX,
    RESULT_TIMEOUT_DEFAULT_MS, RESULT_TIMEOUT_MAX_MS,
};

/// Version of this API, reported in the `devices` reply (`api_version`). Raised when a reply or
/// request changes shape in a way an older client would misread.
pub const API_VERSION: u32 = 2;

/// A line that is not a valid message of the Wasmbed dialect.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub String);

impl From<serde_json::Error> for WireError {
    fn from(e: serde_json::Error) -> Self {
        WireError(e.to_string())
    }
}
