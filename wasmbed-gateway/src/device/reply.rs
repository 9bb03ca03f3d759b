//! The device layer's answers from the protocol crate's outcomes, without IO: typed replies
//! (`wasmbed-api` results) and [`DeviceError`]s, and the protocol commands built from requests.

use wasmbed_agent_proto::session::{SessionError, StartOutcome, StopOutcome};
use wasmbed_agent_proto::{
    AgentLine, Args, FuncName, Line, ModuleId, Modules, RunResult, Start, StatusOk,
};
use wasmbed_api::{MemoryStats, RunStatus, SlotInfo, StartResult, StopResult};

use super::{DeviceError, LinkIoError, Reply, Request, StatusReply};

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

/// The reply to a STOP without `wait` whose `STOP_OK status=PENDING` came (the job ends later,
/// its RESULT goes to the device log): that line and its status.
pub(crate) fn stop_pending_reply(last: Option<&Line>) -> Reply {
    let (line, status) = match last {
        Some(l) => (
            l.raw.clone(),
            match &l.msg {
                AgentLine::StopOk(st) => st.status.to_string(),
                _ => "PENDING".into(),
            },
        ),
        None => (String::new(), "PENDING".into()),
    };
    Reply::Stopped(StopResult {
        line,
        status,
        forced: false,
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

/// How a drive failed at the IO level, as the job's error: the link was lost, or the device
/// rebooted (HELLO) during `phase`.
pub(crate) fn drive_error(phase: &str, lost: Result<LinkIoError, String>) -> DeviceError {
    match lost {
        Ok(source) => DeviceError::LinkLost {
            phase: phase.into(),
            source,
        },
        Err(hello) => DeviceError::Rebooted {
            phase: phase.into(),
            line: hello,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_answered_pending_reports_its_line_and_status() {
        let line = Line::parse("STOP_OK module_id=spin status=PENDING");
        let Reply::Stopped(s) = stop_pending_reply(Some(&line)) else {
            panic!("not a STOP reply")
        };
        assert_eq!(s.line, "STOP_OK module_id=spin status=PENDING");
        assert_eq!(s.status, "PENDING");
        assert!(!s.forced);
        let Reply::Stopped(s) = stop_pending_reply(None) else {
            panic!("not a STOP reply")
        };
        assert_eq!((s.line.as_str(), s.status.as_str()), ("", "PENDING"));
    }

    #[test]
    fn start_arguments_are_checked_before_anything_is_sent() {
        assert!(start_command("m", Some("add"), &[1, 2]).is_ok());
        for (m, f, a) in [
            ("a:b", None, &[][..]),
            ("m", Some("f,g"), &[][..]),
            ("m", None, &[1, 2, 3, 4, 5][..]),
        ] {
            assert!(
                matches!(start_command(m, f, a), Err(DeviceError::BadRequest(_))),
                "{m} {f:?} {a:?}"
            );
        }
    }

    #[test]
    fn a_refusal_keeps_its_line_and_result_status() {
        let e = session_error(SessionError::Rejected {
            line: Line::parse("RESULT status=BUSY module_id=m"),
        });
        assert_eq!(
            e,
            DeviceError::Rejected {
                line: "RESULT status=BUSY module_id=m".into(),
                status: Some("BUSY".into())
            }
        );
        let e = drive_error("START", Err("HELLO device_id=sim fw_version=1".into()));
        assert_eq!(
            e.to_string(),
            "device rebooted during START: HELLO device_id=sim fw_version=1"
        );
    }
}
