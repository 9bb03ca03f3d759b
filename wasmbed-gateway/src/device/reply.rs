//! The device layer's answers from the protocol crate's outcomes, without IO: typed replies
//! (`wasmbed-api` results) and [`DeviceError`]s, and the protocol commands built from requests.

use wasmbed_agent_proto::session::{SessionError, StartOutcome, StopOutcome};
use wasmbed_agent_proto::{
    AgentLine, Args, FuncName, ModuleId, Modules, RunResult, Start, StatusOk,
};
use wasmbed_api::{MemoryStats, RunStatus, SlotInfo, StartResult, StopResult};

use super::{DeviceError, Reply, Request, StatusReply};

/// The reply to a START from its session's outcome.
pub(crate) fn start_reply(r: Result<StartOutcome, SessionError>) -> Result<Reply, DeviceError> {
    r.map_err(session_error).map(|o| {
        Reply::Started(StartResult::new(
            o.line.raw.clone(),
            o.result.as_ref().map(run_result),
        ))
    })
}

/// The reply to a STOP from its session's outcome.
pub(crate) fn stop_reply(r: Result<StopOutcome, SessionError>) -> Result<Reply, DeviceError> {
    r.map_err(session_error).map(|o| {
        let status = match (&o.result, &o.status) {
            (Some(r), _) => r.status.to_string(),
            (None, Some(st)) => st.to_string(),
            (None, None) => String::new(),
        };
        Reply::Stopped(StopResult {
            line: o.line.raw.clone(),
            status,
            forced: o.result.as_ref().is_some_and(|r| r.forced),
        })
    })
}

/// A device RESULT as the host API's typed RESULT.
pub(crate) fn run_result(r: &RunResult) -> wasmbed_api::RunResult {
    wasmbed_api::RunResult {
        status: RunStatus::from_wire(&r.status.to_string()),
        ret: r.ret_i32.map(|v| v as i32),
        ret_u32: r.ret_i32,
        msg: r.msg.clone(),
        forced: r.forced,
    }
}

pub(crate) fn request_phase(r: &Request) -> &'static str {
    match r {
        Request::Info => "INFO",
        Request::Status => "STATUS",
        Request::Deploy(_) => "LOAD",
        Request::Start(_) => "START",
        Request::Stop(_) => "STOP",
        Request::Unload { .. } => "UNLOAD",
    }
}

pub(crate) fn start_command(
    module_id: &str,
    func: Option<&str>,
    args: &[i32],
) -> Result<Start, DeviceError> {
    let bad = DeviceError::BadRequest;
    Ok(Start {
        module_id: ModuleId::new(module_id.to_string()).map_err(bad)?,
        func: func
            .map(|f| FuncName::new(f.to_string()))
            .transpose()
            .map_err(bad)?,
        args: Args::new(args.to_vec()).map_err(bad)?,
    })
}

pub(crate) fn session_error(e: SessionError) -> DeviceError {
    match e {
        SessionError::Timeout { phase, last_line } => DeviceError::Timeout {
            phase: phase.to_string(),
            last_line,
        },
        SessionError::Rejected { line } => {
            let status = match &line.msg {
                AgentLine::Result(r) => Some(r.status.to_string()),
                _ => None,
            };
            DeviceError::Rejected {
                line: line.raw,
                status,
            }
        }
        other @ (SessionError::Protocol { .. } | SessionError::RetriesExhausted { .. }) => {
            DeviceError::Protocol(Box::new(other))
        }
    }
}

pub(crate) fn status_reply(line: &str, st: &StatusOk) -> StatusReply {
    let slots = match &st.modules {
        Modules::Slots(v) => v
            .iter()
            .map(|m| SlotInfo {
                module_id: m.module_id.clone(),
                state: m.state.to_string(),
                size: m.wasm_size,
                crc32: m.crc32.map(|c| format!("{:08x}", c.0)),
                stack_free: m.stack_free,
            })
            .collect(),
        _ => Vec::new(),
    };
    let memory = st.pool.and_then(|p| p.stats()).map(|p| MemoryStats {
        total: p.total,
        free: p.free,
        used: p.used,
        highmark: p.highmark,
    });
    StatusReply {
        line: line.to_string(),
        slots,
        memory,
    }
}
