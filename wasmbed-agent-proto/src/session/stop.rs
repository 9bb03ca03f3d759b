//! STOP: `STOP_OK status=PENDING` then the stopped job's RESULT.

use std::time::{Duration, Instant};

use super::{impl_session, reply_error, Core, Phase, Timeouts};
use crate::decoder::Line;
use crate::message::{AgentLine, Command, ModuleRef, RunResult};
use crate::wire::StopStatus;

/// Successful STOP (legacy semantics: any RESULT status counts as stopped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopOutcome {
    /// `STOP_OK status=` if one came (`None` if a RESULT came first).
    pub status: Option<StopStatus>,
    /// The job's RESULT (after PENDING, or instead of `STOP_OK`).
    pub result: Option<RunResult>,
    /// The decisive line.
    pub line: Line,
}

/// STOP state machine: `first_reply` for `STOP_OK`/`RESULT`/`ERROR`; after `PENDING`, `result`
/// for the run-time RESULT of this module. Other modules' RESULTs and immediate RESULTs (the
/// `BUSY` answering another host's START) are events.
#[derive(Debug)]
pub struct StopSession {
    core: Core<StopOutcome>,
    module_id: String,
    result_wait: Duration,
}

impl StopSession {
    /// Queues `STOP module_id=…` at `now`.
    pub fn new(now: Instant, stop: ModuleRef, timeouts: &Timeouts) -> Self {
        let module_id = stop.module_id.to_string();
        StopSession {
            core: Core::new(
                Command::Stop(stop),
                Phase::StopReply,
                now + timeouts.first_reply,
            ),
            module_id,
            result_wait: timeouts.result,
        }
    }

    fn on_line(&mut self, now: Instant, line: Line) {
        match (&line.msg, self.core.phase) {
            (AgentLine::StopOk(s), Phase::StopReply) if s.status == StopStatus::Pending => {
                self.core.wait(Phase::StopResult, now + self.result_wait)
            }
            (AgentLine::StopOk(s), Phase::StopReply) => {
                let status = Some(s.status.clone());
                self.core.finish(Ok(StopOutcome {
                    status,
                    result: None,
                    line,
                }))
            }
            (AgentLine::Result(r), phase) if r.is_runtime_of(&self.module_id) => {
                let status = (phase == Phase::StopResult).then_some(StopStatus::Pending);
                let result = Some(r.clone());
                self.core.finish(Ok(StopOutcome {
                    status,
                    result,
                    line,
                }))
            }
            _ if self.core.phase == Phase::StopReply && reply_error(&line) => {
                self.core.reject(line)
            }
            _ => self.core.unsolicited(line),
        }
    }
}

impl_session!(StopSession, StopOutcome);
