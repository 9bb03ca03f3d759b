//! Host API errors with stable codes (docs/HOST-API.md).

use serde_json::{json, Map, Value};

use crate::device::DeviceError;
use crate::pipeline::CompileError;

/// A failed request, as sent to the host.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// Stable code (`BAD_REQUEST`, `DEVICE_UNKNOWN`, ...).
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// What to do about it, if known.
    pub help: Option<String>,
    /// Extra fields (`stderr`, `line`, `phase`, `last_line`).
    pub detail: Map<String, Value>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            help: None,
            detail: Map::new(),
        }
    }

    /// `BAD_REQUEST`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new("BAD_REQUEST", message)
    }

    /// Adds a help text.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a detail field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_string(), value.into());
        self
    }

    /// The `error` object of a Wasmbed reply.
    pub fn to_json(&self) -> Value {
        let mut o = json!({"code": self.code, "message": self.message});
        if let Some(h) = &self.help {
            o["help"] = h.clone().into();
        }
        if !self.detail.is_empty() {
            o["detail"] = Value::Object(self.detail.clone());
        }
        o
    }

    /// The unknown-device error.
    pub fn unknown_device(name: &str) -> Self {
        Self::new("DEVICE_UNKNOWN", format!("no device named '{name}'"))
            .help("list devices with `wasmbed-host devices`")
    }
}

impl From<DeviceError> for ApiError {
    fn from(e: DeviceError) -> Self {
        let msg = e.to_string();
        match e {
            DeviceError::BadRequest(_) => ApiError::bad_request(msg),
            DeviceError::Offline(_) => ApiError::new("DEVICE_OFFLINE", msg)
                .help("check the device's endpoint; the gateway reconnects automatically"),
            DeviceError::LinkLost { phase, .. } => {
                ApiError::new("LINK_LOST", msg).with("phase", phase)
            }
            DeviceError::Rebooted { phase, line } => ApiError::new("LINK_LOST", msg)
                .with("phase", phase)
                .with("line", line),
            DeviceError::Timeout { phase, last_line } => ApiError::new("TIMEOUT", msg)
                .with("phase", phase)
                .with("last_line", last_line.map_or(Value::Null, Value::from)),
            DeviceError::Rejected { line, status } => {
                let code = match status.as_deref() {
                    Some("EXCEPTION") => "MODULE_TRAPPED",
                    Some("STOPPED") => "MODULE_STOPPED",
                    _ => "DEVICE_REJECTED",
                };
                ApiError::new(code, msg).with("line", line)
            }
            DeviceError::Killed { phase, .. } => {
                ApiError::new("MODULE_STOPPED", msg).with("phase", phase)
            }
            DeviceError::Unsupported(_) => ApiError::new("DEVICE_REJECTED", msg),
            // Only a host that closed its sending side but still reads can see this.
            DeviceError::HostGone { phase } => ApiError::bad_request(msg)
                .with("phase", phase)
                .help("keep the connection open until the reply arrives"),
        }
    }
}

impl From<CompileError> for ApiError {
    fn from(e: CompileError) -> Self {
        let mut err = ApiError::new("COMPILE_FAILED", e.to_string()).with("step", e.step());
        if let CompileError::Failed { stderr, stdout, .. } = e {
            err = err.with("stderr", stderr).with("stdout", stdout);
        }
        err
    }
}
