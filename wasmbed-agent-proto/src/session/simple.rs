//! Single-reply operations: STATUS, INFO (with v1 fallback) and UNLOAD.

use std::time::Instant;

use super::{impl_session, reply_error, Core, Phase, Timeouts};
use crate::decoder::Line;
use crate::message::{AgentLine, Command, InfoOk, ModuleRef, RunResult, StatusOk};
use crate::wire::ErrorCode;

/// Successful STATUS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusOutcome {
    /// The typed reply.
    pub status: StatusOk,
    /// The raw line.
    pub line: Line,
}

/// STATUS state machine: `status` (2 s) for `STATUS_OK`; a reply `ERROR` is a rejection;
/// RESULT lines and console text are events (the legacy gateway wrongly took them as the answer).
#[derive(Debug)]
pub struct StatusSession {
    core: Core<StatusOutcome>,
}

impl StatusSession {
    /// Queues `STATUS` at `now`.
    pub fn new(now: Instant, timeouts: &Timeouts) -> Self {
        StatusSession {
            core: Core::new(Command::Status, Phase::Status, now + timeouts.status),
        }
    }

    fn on_line(&mut self, _now: Instant, line: Line) {
        match &line.msg {
            AgentLine::StatusOk(s) => {
                let status = s.clone();
                self.core.finish(Ok(StatusOutcome { status, line }))
            }
            _ if reply_error(&line) => self.core.reject(line),
            _ => self.core.unsolicited(line),
        }
    }
}

impl_session!(StatusSession, StatusOutcome);

/// Result of INFO: what protocol the agent speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoOutcome {
    /// A v2 agent and its capabilities.
    V2 {
        /// The typed reply.
        info: Box<InfoOk>,
        /// The raw line.
        line: Line,
    },
    /// A legacy agent (`ERROR code=UNKNOWN_COMMAND`): use v1 commands only.
    V1,
}

/// INFO state machine: `first_reply` for `INFO_OK` or `ERROR code=UNKNOWN_COMMAND` (→ v1).
#[derive(Debug)]
pub struct InfoSession {
    core: Core<InfoOutcome>,
}

impl InfoSession {
    /// Queues `INFO` at `now`.
    pub fn new(now: Instant, timeouts: &Timeouts) -> Self {
        InfoSession {
            core: Core::new(Command::Info, Phase::Info, now + timeouts.first_reply),
        }
    }

    fn on_line(&mut self, _now: Instant, line: Line) {
        match &line.msg {
            AgentLine::InfoOk(i) => {
                let info = i.clone();
                self.core.finish(Ok(InfoOutcome::V2 { info, line }))
            }
            AgentLine::Error(e) if e.code == ErrorCode::UnknownCommand => {
                self.core.finish(Ok(InfoOutcome::V1))
            }
            _ if reply_error(&line) => self.core.reject(line),
            _ => self.core.unsolicited(line),
        }
    }
}

impl_session!(InfoSession, InfoOutcome);

/// Successful UNLOAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnloadOutcome {
    /// The `RESULT status=STOPPED forced=1` of a job killed by the unload, if one was running.
    pub stopped: Option<RunResult>,
    /// The `UNLOAD_OK` line.
    pub line: Line,
}

/// UNLOAD state machine: `first_reply` for `UNLOAD_OK`/`UNLOAD_ERR`/`ERROR`. A RESULT naming
/// this module before `UNLOAD_OK` is recorded as the killed job's result.
#[derive(Debug)]
pub struct UnloadSession {
    core: Core<UnloadOutcome>,
    module_id: String,
    stopped: Option<RunResult>,
}

impl UnloadSession {
    /// Queues `UNLOAD module_id=…` at `now`.
    pub fn new(now: Instant, unload: ModuleRef, timeouts: &Timeouts) -> Self {
        let module_id = unload.module_id.to_string();
        UnloadSession {
            core: Core::new(
                Command::Unload(unload),
                Phase::Unload,
                now + timeouts.first_reply,
            ),
            module_id,
            stopped: None,
        }
    }

    fn on_line(&mut self, _now: Instant, line: Line) {
        match &line.msg {
            AgentLine::UnloadOk(u) if u.module_id == self.module_id => {
                let stopped = self.stopped.take();
                self.core.finish(Ok(UnloadOutcome { stopped, line }))
            }
            AgentLine::UnloadErr(e)
                if e.module_id.as_deref().is_none_or(|m| m == self.module_id) =>
            {
                self.core.reject(line)
            }
            AgentLine::Result(r)
                if r.module_id.as_deref() == Some(self.module_id.as_str())
                    && r.is_runtime_of(&self.module_id)
                    && self.stopped.is_none() =>
            {
                self.stopped = Some(r.clone());
            }
            _ if reply_error(&line) => self.core.reject(line),
            _ => self.core.unsolicited(line),
        }
    }
}

impl_session!(UnloadSession, UnloadOutcome);
