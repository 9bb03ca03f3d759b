//! Errors of the host tool and their mapping to process exit codes.
//!
//! Every failure a user can meet ends up as a [`HostError`]; [`HostError::exit_code`] maps it to
//! one of the documented [`ExitCode`]s so CI scripts can tell failures apart.

use serde_json::{Map, Value};

/// The documented process exit codes (one table, in `wasmbed-api`).
pub use wasmbed_api::ExitCode;

/// A structured error reply of the gateway (`"error": {...}` in docs/HOST-API.md).
pub use wasmbed_api::ErrorBody as GatewayError;

/// Everything that can go wrong in a `wasmbed-host` command.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Invalid command-line arguments (caught before anything is sent).
    #[error("{0}")]
    Usage(String),
    /// A local input file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file named on the command line.
        path: String,
        /// The underlying IO error.
        #[source]
        source: std::io::Error,
    },
    /// No TCP connection to the gateway could be made.
    #[error("gateway {addr} unreachable: {reason}")]
    Unreachable {
        /// The gateway address that was tried.
        addr: String,
        /// Why (connection refused, name not resolved, ...).
        reason: String,
    },
    /// The TLS connection to the gateway failed (untrusted certificate, client certificate
    /// refused, no TLS on that port).
    #[error("TLS to gateway {addr} failed: {reason}")]
    Tls {
        /// The gateway address (`tls://HOST:PORT`).
        addr: String,
        /// What went wrong.
        reason: String,
        /// What to do about it.
        help: String,
    },
    /// The gateway closed the connection or failed while a request was in flight.
    #[error("connection to gateway {addr} lost: {reason}")]
    ConnectionLost {
        /// The gateway address.
        addr: String,
        /// What happened.
        reason: String,
    },
    /// The gateway answered with something that is not the documented JSON.
    #[error("gateway protocol error: {0}")]
    Protocol(String),
    /// The host-side deadline for a request passed.
    #[error("timed out: no reply or progress from the gateway for {seconds:.1} s ({what})")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The deadline in seconds.
        seconds: f64,
    },
    /// The gateway reported a structured error.
    #[error("{}", .0.message)]
    Gateway(Box<GatewayError>),
    /// The module ended with a non-OK status although the gateway reported success.
    #[error("module ended with status {status}")]
    ModuleStatus {
        /// The RESULT status (`EXCEPTION`, `STOPPED`, ...).
        status: String,
    },
    /// `test`: at least one test failed.
    #[error("{failed} of {total} tests failed: {}", names.join(", "))]
    TestsFailed {
        /// Failed tests.
        failed: usize,
        /// Their names (so `-q`, which prints only this error, still says which).
        names: Vec<String>,
        /// Tests run.
        total: usize,
    },
    /// A bug in this tool.
    #[error("internal error: {0}")]
    Internal(String),
}

impl HostError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            HostError::Usage(_) | HostError::ReadFile { .. } => ExitCode::Usage,
            HostError::Unreachable { .. }
            | HostError::ConnectionLost { .. }
            | HostError::Tls { .. } => ExitCode::GatewayUnreachable,
            HostError::Protocol(_) | HostError::Internal(_) => ExitCode::Internal,
            HostError::Timeout { .. } => ExitCode::Timeout,
            HostError::Gateway(e) => e.exit_code(),
            HostError::ModuleStatus { .. } | HostError::TestsFailed { .. } => {
                ExitCode::ModuleFailed
            }
        }
    }

    /// The stable error code reported in JSON output.
    pub fn code(&self) -> &str {
        match self {
            HostError::Usage(_) => "USAGE",
            HostError::ReadFile { .. } => "READ_FILE",
            HostError::Unreachable { .. } => "GATEWAY_UNREACHABLE",
            HostError::ConnectionLost { .. } => "GATEWAY_CONNECTION_LOST",
            HostError::Tls { .. } => "GATEWAY_TLS",
            HostError::Protocol(_) => "PROTOCOL",
            HostError::Timeout { .. } => "HOST_TIMEOUT",
            HostError::Gateway(e) => e.code.as_str(),
            HostError::ModuleStatus { .. } => "MODULE_FAILED",
            HostError::TestsFailed { .. } => "TESTS_FAILED",
            HostError::Internal(_) => "INTERNAL",
        }
    }

    /// A hint naming the flag or command that helps, if there is one.
    pub fn help(&self) -> Option<String> {
        match self {
            HostError::Unreachable { .. } => Some(
                "start the gateway (`wasmbed-gateway`) or point --gateway / WASMBED_GATEWAY at it"
                    .into(),
            ),
            HostError::ConnectionLost { .. } => {
                Some("check the gateway's log; it may have crashed or been stopped".into())
            }
            HostError::Tls { help, .. } => Some(help.clone()),
            HostError::Timeout { .. } => Some("raise the deadline with --timeout SECONDS".into()),
            HostError::Gateway(e) => e.help.clone(),
            HostError::ModuleStatus { .. } => {
                Some("see the RESULT line in the output and the device log (`logs`)".into())
            }
            HostError::ReadFile { path, source } => Some(read_file_help(path, source)),
            HostError::TestsFailed { .. } => Some(
                "each failed test's output and result are printed with it (not with -q); rerun \
                 one with `wasmbed-host test FILE NAME`"
                    .into(),
            ),
            _ => None,
        }
    }

    /// The JSON object describing this error (`"error"` in `--json` output).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("code".into(), Value::from(self.code()));
        m.insert("message".into(), Value::from(self.to_string()));
        if let Some(h) = self.help() {
            m.insert("help".into(), Value::from(h));
        }
        if let HostError::Gateway(g) = self {
            if !g.detail.is_empty() {
                m.insert(
                    "detail".into(),
                    serde_json::to_value(&g.detail).expect("detail serializes"),
                );
            }
        }
        Value::Object(m)
    }
}

/// What to do about a local file that cannot be read, by what the OS said.
fn read_file_help(path: &str, e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let relative = if std::path::Path::new(path).is_relative() {
        match std::env::current_dir() {
            Ok(d) => format!(" (relative to the current directory {})", d.display()),
            Err(_) => " (relative to the current directory)".into(),
        }
    } else {
        String::new()
    };
    match e.kind() {
        ErrorKind::NotFound => {
            format!("check the path{relative}: no file is there; fix the flag that names it")
        }
        ErrorKind::PermissionDenied => format!(
            "this user may not read {path}: fix its permissions (ls -l {path}) or name a readable copy"
        ),
        ErrorKind::IsADirectory => format!("{path} is a directory: name a file in it"),
        _ => format!("check that {path}{relative} is a readable regular file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(code: &str) -> HostError {
        HostError::Gateway(Box::new(GatewayError::new(code.into(), "m")))
    }

    #[test]
    fn gateway_codes_take_the_api_exit_codes() {
        // The table itself is tested once, in wasmbed-api; here: the host delegates to it.
        for code in [
            "BAD_REQUEST",
            "UNAUTHORIZED",
            "DEVICE_OFFLINE",
            "COMPILE_FAILED",
            "TIMEOUT",
            "MODULE_TRAPPED",
            "BUSY",
            "INTERNAL",
            "SOMETHING_NEW",
        ] {
            let api = wasmbed_api::ErrorCode::from_wire(code).exit_code();
            assert_eq!(gw(code).exit_code(), api, "{code}");
        }
        assert_eq!(gw("TIMEOUT").exit_code().code(), 6);
    }

    #[test]
    fn host_errors_map_to_exit_codes() {
        let unreachable = HostError::Unreachable {
            addr: "x".into(),
            reason: "refused".into(),
        };
        assert_eq!(unreachable.exit_code(), ExitCode::GatewayUnreachable);
        assert_eq!(HostError::Usage("u".into()).exit_code(), ExitCode::Usage);
        let t = HostError::Timeout {
            what: "reply".into(),
            seconds: 1.0,
        };
        assert_eq!(t.exit_code(), ExitCode::Timeout);
        assert_eq!(t.code(), "HOST_TIMEOUT");
        let m = HostError::ModuleStatus {
            status: "EXCEPTION".into(),
        };
        assert_eq!(m.exit_code(), ExitCode::ModuleFailed);
        assert_eq!(HostError::Internal("x".into()).exit_code().code(), 1);
    }

    #[test]
    fn gateway_error_json_keeps_detail() {
        let mut g = GatewayError::new("COMPILE_FAILED".into(), "clang failed");
        g.help = Some("fix the source".into());
        g.detail.stderr = Some("x.c:1: error".into());
        let e = HostError::Gateway(Box::new(g));
        let j = e.to_json();
        assert_eq!(j["code"], "COMPILE_FAILED");
        assert_eq!(j["detail"]["stderr"], "x.c:1: error");
        assert_eq!(j["help"], "fix the source");
    }

    #[test]
    fn an_unreadable_file_says_what_to_do() {
        use std::io::{Error, ErrorKind};
        let e = |path: &str, kind| HostError::ReadFile {
            path: path.into(),
            source: Error::from(kind),
        };
        let missing = e("mod.wasm", ErrorKind::NotFound).help().expect("help");
        assert!(missing.contains("check the path"), "{missing}");
        assert!(
            missing.contains("relative to the current directory"),
            "{missing}"
        );
        let absolute = e("/x/mod.wasm", ErrorKind::NotFound).help().unwrap();
        assert!(!absolute.contains("relative"), "{absolute}");
        let denied = e("/x/mod.wasm", ErrorKind::PermissionDenied)
            .help()
            .unwrap();
        assert!(denied.contains("permissions"), "{denied}");
        let j = e("/x/mod.wasm", ErrorKind::IsADirectory).to_json();
        assert_eq!(j["code"], "READ_FILE");
        assert!(j["help"].as_str().unwrap().contains("directory"), "{j}");
    }
}
