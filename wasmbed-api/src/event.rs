//! Events the gateway sends while a request runs (before its final reply).

use serde::{Deserialize, Serialize};

use crate::RequestId;

/// What a progress event counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgressPhase {
    /// C → wasm → AOT (`done == total` when the build finished).
    Compile,
    /// Module bytes acknowledged by the device.
    Upload,
    /// The build waits for one of the gateway's `compiler.max_concurrent` slots
    /// (`done` and `total` are 0).
    Queued,
}

/// The kind of a device log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogKind {
    /// `LOG module_id=… msg=…` from a module.
    Log,
    /// Console text (printk, `uart_print`).
    Console,
    /// A `RESULT` no waiting request took.
    Result,
    /// A `HELLO` banner (the device rebooted).
    Hello,
    /// A gateway note (link up/down, lines a slow follower missed).
    Gateway,
}

impl LogKind {
    /// The wire name (`log`, `console`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Log => "log",
            LogKind::Console => "console",
            LogKind::Result => "result",
            LogKind::Hello => "hello",
            LogKind::Gateway => "gateway",
        }
    }
}

/// An event, tagged by `event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// Compile or upload progress.
    Progress {
        /// What is counted.
        phase: ProgressPhase,
        /// Units done so far.
        done: u64,
        /// Units in total (0 if unknown).
        total: u64,
    },
    /// A device log line (`logs` with `follow`).
    Log {
        /// Sequence number in the device log (`None` for a gateway note about missed lines).
        seq: Option<u64>,
        /// Device name.
        device: String,
        /// The line as heard, or the gateway's note.
        line: String,
        /// What kind of line.
        kind: LogKind,
    },
}

/// An event line: the request's id and the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLine {
    /// The request the event belongs to.
    pub id: RequestId,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}
