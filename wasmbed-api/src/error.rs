//! Stable error codes, the host exit code of each, and the error object of a failed reply.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The documented process exit codes of `wasmbed-host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ExitCode {
    /// The command succeeded.
    Success = 0,
    /// A bug or an unexpected answer: neither the user nor the device is to blame.
    Internal = 1,
    /// Bad arguments, an unreadable input file, or a request the gateway refused as malformed.
    Usage = 2,
    /// The gateway cannot be reached, closed the connection, or refused the token.
    GatewayUnreachable = 3,
    /// The device is unknown, offline, or its link dropped during the command.
    Device = 4,
    /// The device rejected the request, the module is invalid, or compiling it failed.
    Rejected = 5,
    /// A deadline passed (on the host or inside the gateway).
    Timeout = 6,
    /// `start --wait-result`: the module trapped or was stopped.
    ModuleFailed = 7,
}

impl ExitCode {
    /// The numeric process exit status.
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl Serialize for ExitCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(self.code())
    }
}

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $text:literal, $exit:ident, $help:literal;)*) => {
        /// A stable error code of the host API (docs/HOST-API.md, "Error codes").
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $name,)*
            /// A code this version does not know (a newer gateway): kept as sent.
            Other(String),
        }

        impl ErrorCode {
            /// Every known code, in the order of the documented table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];

            /// The wire text (`DEVICE_UNKNOWN`, ...).
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrorCode::$name => $text,)*
                    ErrorCode::Other(s) => s,
                }
            }

            /// The code of a wire text; unknown texts become [`ErrorCode::Other`].
            pub fn from_wire(s: &str) -> ErrorCode {
                match s {
                    $($text => ErrorCode::$name,)*
                    other => ErrorCode::Other(other.to_string()),
                }
            }

            /// The `wasmbed-host` exit code for this code (unknown codes: [`ExitCode::Internal`]).
            pub fn exit_code(&self) -> ExitCode {
                match self {
                    $(ErrorCode::$name => ExitCode::$exit,)*
                    ErrorCode::Other(_) => ExitCode::Internal,
                }
            }

            /// What to do next: the help text of the code, used when the error itself brings
            /// none more specific.
            pub fn help(&self) -> &'static str {
                match self {
                    $(ErrorCode::$name => $help,)*
                    ErrorCode::Other(_) => "this client does not know the code; update wasmbed-host or read the gateway's log",
                }
            }
        }
    };
}

error_codes! {
    /// Malformed JSON, a missing or invalid field, an identifier that would inject protocol
    /// text, or a host that closed its sending side while its request waited.
    BadRequest = "BAD_REQUEST", Usage,
        "fix the request as the message says (docs/HOST-API.md lists every op's fields)";
    /// No such op.
    UnknownOp = "UNKNOWN_OP", Usage,
        "use one of the ops of docs/HOST-API.md: devices, info, status, deploy, build_and_deploy, start, stop, unload, logs";
    /// Request line or body over the limit.
    TooLarge = "TOO_LARGE", Usage,
        "send a smaller module or raise `max_line` or `max_body` in the `[limits]` table of the gateway's config file";
    /// Missing or wrong token.
    Unauthorized = "UNAUTHORIZED", GatewayUnreachable,
        "point `wasmbed-host --token-file` (WASMBED_TOKEN_FILE) at a copy of the gateway's token file";
    /// A plaintext connection to a gateway that serves TLS only.
    TlsRequired = "TLS_REQUIRED", GatewayUnreachable,
        "connect with --gateway tls://HOST:PORT and --ca FILE (WASMBED_CA): this gateway serves TLS only";
    /// The gateway serves `limits.max_connections` hosts already.
    Busy = "BUSY", GatewayUnreachable,
        "the gateway is serving as many hosts as its `max_connections` in `[limits]` allows: retry later or raise it";
    /// No device of that name.
    DeviceUnknown = "DEVICE_UNKNOWN", Device,
        "list devices with `wasmbed-host devices`";
    /// The device link is down.
    DeviceOffline = "DEVICE_OFFLINE", Device,
        "check the device's power and endpoint; the gateway reconnects by itself (`wasmbed-host devices` shows when it is back)";
    /// The link dropped (or the device rebooted) during the command.
    LinkLost = "LINK_LOST", Device,
        "the device rebooted or its link dropped; check `wasmbed-host logs` and run the command again once it is online";
    /// The device answered with an error line.
    DeviceRejected = "DEVICE_REJECTED", Rejected,
        "see the device's line in the message; `wasmbed-host status` shows its slots and jobs";
    /// wasmparser or the device capability check refused the module.
    InvalidModule = "INVALID_MODULE", Rejected,
        "fix the module or build it for this device (`wasmbed-host info` shows its natives and limits)";
    /// clang or wamrc failed.
    CompileFailed = "COMPILE_FAILED", Rejected,
        "fix the source; the compiler's output is in detail.stderr";
    /// A deadline passed.
    Timeout = "TIMEOUT", Timeout,
        "the message names the phase and the knob that sets its deadline; raise it or check the device";
    /// `start` with `wait_result`: `RESULT status=EXCEPTION`.
    ModuleTrapped = "MODULE_TRAPPED", ModuleFailed,
        "the module trapped; see the RESULT's msg and the device log (`wasmbed-host logs`)";
    /// `start` with `wait_result`: `RESULT status=STOPPED`, or the job was killed by a LOAD.
    ModuleStopped = "MODULE_STOPPED", ModuleFailed,
        "the job was stopped (`stop`) or its slot reloaded; start it again if needed";
    /// A bug in the gateway.
    Internal = "INTERNAL", Internal,
        "a bug in the gateway: please report it with the gateway's log";
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ErrorCode {
    fn from(s: &str) -> Self {
        ErrorCode::from_wire(s)
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ErrorCode::from_wire(&String::deserialize(d)?))
    }
}

/// Extra facts of an error (`error.detail`); absent ones are omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// What was going on (`LOAD`, `waiting for RESULT`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The device line the error is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// When that line is a RESULT: its status, typed (clients never parse `line`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<crate::RunStatus>,
    /// The last line heard before a timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_line: Option<String>,
    /// The compile step that failed (`clang`, `wamrc`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Compiler stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// Compiler stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
}

impl ErrorDetail {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == ErrorDetail::default()
    }
}

/// The `error` object of a failed reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable code.
    pub code: ErrorCode,
    /// What happened.
    #[serde(default)]
    pub message: String,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Extra facts.
    #[serde(default, skip_serializing_if = "ErrorDetail::is_empty")]
    pub detail: ErrorDetail,
}

impl ErrorBody {
    /// An error with a code and message (no help, no detail).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            help: None,
            detail: ErrorDetail::default(),
        }
    }

    /// The help of this error, or the code's own help text.
    pub fn help_or_default(&self) -> &str {
        self.help.as_deref().unwrap_or_else(|| self.code.help())
    }

    /// The exit code of [`ErrorBody::code`].
    pub fn exit_code(&self) -> ExitCode {
        self.code.exit_code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_documented_exit_codes() {
        let table = [
            ("BAD_REQUEST", 2),
            ("UNKNOWN_OP", 2),
            ("TOO_LARGE", 2),
            ("UNAUTHORIZED", 3),
            ("DEVICE_UNKNOWN", 4),
            ("DEVICE_OFFLINE", 4),
            ("LINK_LOST", 4),
            ("DEVICE_REJECTED", 5),
            ("INVALID_MODULE", 5),
            ("COMPILE_FAILED", 5),
            ("TIMEOUT", 6),
            ("MODULE_TRAPPED", 7),
            ("MODULE_STOPPED", 7),
            ("INTERNAL", 1),
            ("BUSY", 3),
            ("TLS_REQUIRED", 3),
            ("SOMETHING_NEW", 1),
        ];
        for (code, exit) in table {
            let c = ErrorCode::from_wire(code);
            assert_eq!(c.as_str(), code);
            assert_eq!(c.exit_code().code(), exit, "{code}");
        }
        assert_eq!(ErrorCode::ALL.len(), 16);
    }

    #[test]
    fn every_code_has_a_help_text() {
        for c in ErrorCode::ALL {
            assert!(c.help().len() > 20, "{c}: {}", c.help());
        }
    }
}
