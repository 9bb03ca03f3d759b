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
    /// The agent (re)booted while it was asked (its HELLO) and did not answer within
    /// [`INFO_SETTLE`] (plus one line's time) of it: it missed this INFO or got it cut. Ask again
    /// ([`InfoSession::after_hello`]); docs/PROTOCOL.md "Handshake restart".
    Rebooted {
        /// The HELLO line.
        hello: Line,
    },
}

/// How long INFO waits for its answer after the agent says HELLO (plus the time of one
/// [`AGENT_LINE_MAX`](crate::AGENT_LINE_MAX) line at the link speed) before it gives up on
/// that INFO with [`InfoOutcome::Rebooted`]. An agent that got the INFO whole answers it right
/// after its HELLO (the simulated board says HELLO on every connection); one that booted into it
/// never answers it.
pub const INFO_SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

/// INFO state machine: `first_reply` for `INFO_OK` or `ERROR code=UNKNOWN_COMMAND` (→ v1).
///
/// A HELLO during the wait means the agent (re)booted: the session then waits at most
/// [`INFO_SETTLE`] plus one line's time for the answer, else ends with
/// [`InfoOutcome::Rebooted`]. After a HELLO that says `proto=2` (heard here, or the one
/// [`InfoSession::after_hello`] was given) the agent is known to speak v2, so an
/// `ERROR code=UNKNOWN_COMMAND` is not a v1 answer but the answer to a command the agent got cut
/// (it switched its receiver on in the middle of it): an event.
#[derive(Debug)]
pub struct InfoSession {
    core: Core<InfoOutcome>,
    /// The last HELLO heard (or given).
    hello: Option<Line>,
    /// A HELLO came during this session: its deadline is the settle time, then `Rebooted`.
    settling: bool,
    /// [`INFO_SETTLE`] plus one line at the link speed.
    settle: std::time::Duration,
}

impl InfoSession {
    /// Queues `INFO` at `now`.
    pub fn new(now: Instant, timeouts: &Timeouts) -> Self {
        InfoSession {
            core: Core::new(Command::Info, Phase::Info, now + timeouts.first_reply),
            hello: None,
            settling: false,
            settle: INFO_SETTLE + timeouts.transfer(crate::AGENT_LINE_MAX),
        }
    }

    /// Queues `INFO` at `now`, asked again because the agent said `hello` (a HELLO line) while
    /// the handshake ran. A HELLO with `proto=2` or later rules out the v1 fallback.
    /// The HELLO is the last line heard until another comes: a timeout names it.
    pub fn after_hello(now: Instant, timeouts: &Timeouts, hello: Line) -> Self {
        let mut s = Self::new(now, timeouts);
        s.core.last = Some(hello.clone());
        s.hello = Some(hello);
        s
    }

    /// A HELLO said `proto=2` or later.
    fn speaks_v2(&self) -> bool {
        matches!(&self.hello, Some(Line { msg: AgentLine::Hello(h), .. })
            if h.proto.is_some_and(|p| p >= 2))
    }

    fn on_line(&mut self, now: Instant, line: Line) {
        match &line.msg {
            AgentLine::InfoOk(i) => {
                let info = i.clone();
                self.core.finish(Ok(InfoOutcome::V2 { info, line }))
            }
            AgentLine::Error(e) if e.code == ErrorCode::UnknownCommand && self.speaks_v2() => {
                self.core.unsolicited(line)
            }
            AgentLine::Error(e) if e.code == ErrorCode::UnknownCommand => {
                self.core.finish(Ok(InfoOutcome::V1))
            }
            AgentLine::Hello(_) => {
                self.hello = Some(line.clone());
                self.core.unsolicited(line);
                // The first HELLO starts the settle time; later ones do not extend it.
                if !self.settling {
                    self.settling = true;
                    self.core.wait(Phase::Info, now + self.settle);
                }
            }
            _ if reply_error(&line) => self.core.reject(line),
            _ => self.core.unsolicited(line),
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        let due = self.core.poll_timeout().is_some_and(|d| now >= d);
        match self.hello.clone() {
            Some(hello) if due && self.settling => {
                self.core.finish(Ok(InfoOutcome::Rebooted { hello }))
            }
            _ => self.core.check_timeout(now),
        }
    }
}

impl_session!(InfoSession, InfoOutcome, |s: &mut InfoSession, now| s
    .on_timeout(now));

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
