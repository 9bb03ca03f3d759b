//! Host API errors with stable codes (docs/HOST-API.md): the device layer's and the pipeline's
//! errors, turned into the typed error object of `wasmbed-api`.

use serde_json::Value;
use wasmbed_agent_proto::SessionError;
use wasmbed_api::{ErrorBody, ErrorCode, ErrorDetail, RunStatus};

use crate::device::DeviceError;
use crate::pipeline::CompileError;

/// A failed request, as sent to the host.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// Stable code (`BAD_REQUEST`, `DEVICE_UNKNOWN`, ...).
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
    /// What to do about it (`None`: the code's own help text is sent).
    pub help: Option<String>,
    /// Extra fields (`phase`, `line`, `last_line`, `step`, `stderr`, `stdout`).
    pub detail: ErrorDetail,
    /// Bytes of an upload body refused before it was read (not sent to the host): the
    /// connection takes them off after answering, so the host reads the answer and its next
    /// request is in sync.
    pub unread_body: Option<u64>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: impl Into<ErrorCode>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            help: None,
            detail: ErrorDetail::default(),
            unread_body: None,
        }
    }

    /// `BAD_REQUEST`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// Marks an error that left `size` body bytes unread on the connection.
    pub fn unread(mut self, size: u64) -> Self {
        self.unread_body = Some(size);
        self
    }

    /// Adds a help text.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets a detail field by its wire name (`phase`, `line`, `last_line`, `step`, `stderr`,
    /// `stdout`); a string value, anything else is ignored.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        let text = match value.into() {
            Value::String(s) => Some(s),
            _ => None,
        };
        let d = &mut self.detail;
        match key {
            "phase" => d.phase = text,
            "line" => d.line = text,
            "last_line" => d.last_line = text,
            "step" => d.step = text,
            "stderr" => d.stderr = text,
            "stdout" => d.stdout = text,
            other => debug_assert!(false, "unknown error detail `{other}`"),
        }
        self
    }

    /// The typed `error` object: the help of this error or, without one, the code's own.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.clone(),
            message: self.message.clone(),
            help: Some(
                self.help
                    .clone()
                    .unwrap_or_else(|| self.code.help().to_string()),
            ),
            detail: self.detail.clone(),
        }
    }

    /// The `error` object of a Wasmbed reply.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.body()).expect("an error serializes")
    }

    /// The unknown-device error.
    pub fn unknown_device(name: &str) -> Self {
        Self::new(
            ErrorCode::DeviceUnknown,
            format!("no device named '{name}'"),
        )
        .help("list devices with `wasmbed-host devices`")
    }
}

impl From<DeviceError> for ApiError {
    fn from(e: DeviceError) -> Self {
        let msg = e.to_string();
        let help = e.help();
        let mut err = match e {
            DeviceError::BadRequest(_) => ApiError::bad_request(msg),
            DeviceError::Offline(_) => ApiError::new(ErrorCode::DeviceOffline, msg),
            DeviceError::LinkLost { phase, .. } => {
                ApiError::new(ErrorCode::LinkLost, msg).with("phase", phase)
            }
            DeviceError::Rebooted { phase, line } => ApiError::new(ErrorCode::LinkLost, msg)
                .with("phase", phase)
                .with("line", line),
            DeviceError::Timeout {
                phase, last_line, ..
            } => {
                let mut e = ApiError::new(ErrorCode::Timeout, msg).with("phase", phase);
                e.detail.last_line = last_line;
                e
            }
            DeviceError::Rejected { line, status } => {
                let code = match status.as_deref() {
                    Some("EXCEPTION") => ErrorCode::ModuleTrapped,
                    Some("STOPPED") => ErrorCode::ModuleStopped,
                    _ => ErrorCode::DeviceRejected,
                };
                let mut e = ApiError::new(code, msg).with("line", line);
                e.detail.status = status.as_deref().map(RunStatus::from_wire);
                e
            }
            DeviceError::Killed { phase, .. } => {
                ApiError::new(ErrorCode::ModuleStopped, msg).with("phase", phase)
            }
            DeviceError::Protocol(e) => {
                let line = match e.as_ref() {
                    SessionError::Protocol { line, .. } => Some(line.clone()),
                    SessionError::RetriesExhausted { last_line, .. } => Some(last_line.clone()),
                    _ => None,
                };
                let mut err = ApiError::new(ErrorCode::DeviceRejected, msg);
                err.detail.line = line;
                err
            }
            DeviceError::Unsupported(_) => ApiError::new(ErrorCode::DeviceRejected, msg),
            DeviceError::Cancelled { phase } => ApiError::bad_request(msg).with("phase", phase),
            DeviceError::Identity(r) => {
                use crate::identity::Refusal;
                let code = match r.kind {
                    Refusal::Pending | Refusal::Anonymous => ErrorCode::DevicePending,
                    Refusal::Mismatch => ErrorCode::IdentityMismatch,
                    Refusal::Unverified => ErrorCode::DeviceOffline,
                };
                ApiError::new(code, msg)
            }
            // Only a host that closed its sending side but still reads can see this.
            DeviceError::HostGone { phase } => ApiError::bad_request(msg).with("phase", phase),
            DeviceError::KeepsRebooting(_) => ApiError::new(ErrorCode::DeviceOffline, msg),
        };
        err.help = help;
        err
    }
}

impl From<crate::identity::EnrollError> for ApiError {
    fn from(e: crate::identity::EnrollError) -> Self {
        use crate::identity::EnrollError;
        let code = match &e {
            EnrollError::NotPresented { .. } | EnrollError::NeedsFingerprint { .. } => {
                ErrorCode::IdentityMismatch
            }
            EnrollError::NothingToApprove { .. } => ErrorCode::BadRequest,
            EnrollError::Save { .. } => ErrorCode::Internal,
        };
        ApiError::new(code, e.to_string()).help(e.help())
    }
}

impl From<CompileError> for ApiError {
    fn from(e: CompileError) -> Self {
        let mut err = ApiError::new(ErrorCode::CompileFailed, e.to_string()).with("step", e.step());
        err.help = e.help();
        if let CompileError::Failed { stderr, stdout, .. } = e {
            err = err.with("stderr", stderr).with("stdout", stdout);
        }
        err
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn device_errors_keep_their_cause_and_map_to_one_code_each() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        let e = DeviceError::LinkLost {
            phase: "START".into(),
            source: io.into(),
        };
        assert_eq!(e.source().unwrap().to_string(), "broken pipe");
        let api = ApiError::from(e);
        assert_eq!(api.code, ErrorCode::LinkLost);
        assert_eq!(api.detail.phase.as_deref(), Some("START"));

        let bad = wasmbed_agent_proto::ModuleId::new("a:b").unwrap_err();
        let e = DeviceError::from(bad.clone());
        assert_eq!(e.to_string(), bad.to_string());
        assert_eq!(ApiError::from(e).code, ErrorCode::BadRequest);

        let refused = SessionError::RetriesExhausted {
            acked: 512,
            attempts: 5,
            last_line: "CHUNK_ERR code=CRC".into(),
        };
        let e = DeviceError::Protocol(Box::new(refused.clone()));
        assert_eq!(e.to_string(), refused.to_string());
        let api = ApiError::from(e);
        assert_eq!(api.code, ErrorCode::DeviceRejected);
        assert_eq!(api.detail.line.as_deref(), Some("CHUNK_ERR code=CRC"));
    }

    #[test]
    fn a_job_refused_by_the_fleet_lease_says_who_serves_the_device_not_to_check_its_power() {
        let e = DeviceError::Offline(crate::device::OfflineReason::Fenced(
            "stale fencing token".into(),
        ));
        let api = ApiError::from(e);
        assert_eq!(api.code, ErrorCode::DeviceOffline);
        let help = api.help.expect("a help text");
        assert!(help.contains("another gateway of the fleet"), "{help}");
        assert!(!help.contains("power"), "{help}");
    }
}
