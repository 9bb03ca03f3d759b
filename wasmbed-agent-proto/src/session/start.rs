//! START, with or without waiting for the job's RESULT.

use std::time::Instant;

use super::{immediate_is_ours, impl_session, reply_error, Core, Phase, Timeouts};
use crate::decoder::Line;
use crate::message::{AgentLine, Command, RunResult, Start};

/// Successful START.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartOutcome {
    /// The job's `RESULT status=OK …` when waiting for it, `None` when not waiting.
    pub result: Option<RunResult>,
    /// The decisive line (`START_OK` or the RESULT), e.g. for a legacy JSON `detail`.
    pub line: Line,
}

/// START state machine.
///
/// Waits `first_reply` for `START_OK`, an immediate `RESULT` (a refusal: `BUSY`, `NO_MODULE`,
/// `BAD_PARAMS`, `NO_ENTRYPOINT`, `NO_MEM`, `NO_FUNC name=`; always
/// [`SessionError::Rejected`](super::SessionError::Rejected)) or a reply `ERROR`. With
/// `wait_result` it then waits `result` for the job's run-time `RESULT` (`OK`, `EXCEPTION`,
/// `STOPPED`, `NO_EXEC_ENV`, bare `NO_FUNC`): ok iff `status=OK`, any other status is
/// `Rejected`.
///
/// RESULT lines carry no request id, so the class decides (see
/// [`RunResult::class`](crate::message::RunResult::class)): a run-time RESULT before `START_OK`
/// is an earlier job's end (of this module too: the agent writes a job's RESULT before its slot
/// can start again), and an immediate RESULT after `START_OK` answers another START; both are
/// [`Event::Unsolicited`](super::Event::Unsolicited). A run-time RESULT naming another module is
/// an event too; FW-A RESULTs name no module and are accepted by class alone.
#[derive(Debug)]
pub struct StartSession {
    core: Core<StartOutcome>,
    module_id: String,
    wait_result: bool,
    result_wait: std::time::Duration,
}

impl StartSession {
    /// Queues `START` at `now`.
    pub fn new(now: Instant, start: Start, wait_result: bool, timeouts: &Timeouts) -> Self {
        let module_id = start.module_id.to_string();
        StartSession {
            core: Core::new(
                Command::Start(start),
                Phase::StartReply,
                now + timeouts.first_reply,
            ),
            module_id,
            wait_result,
            result_wait: timeouts.result,
        }
    }

    fn on_line(&mut self, now: Instant, line: Line) {
        match (&line.msg, self.core.phase) {
            (AgentLine::StartOk, Phase::StartReply) => {
                if self.wait_result {
                    self.core.wait(Phase::Result, now + self.result_wait);
                } else {
                    self.core.finish(Ok(StartOutcome { result: None, line }));
                }
            }
            // Before START_OK only an immediate refusal answers this START: a run-time RESULT
            // here (even of our module) is the end of an earlier job.
            (AgentLine::Result(r), Phase::StartReply) if immediate_is_ours(r, &self.module_id) => {
                self.core.reject(line)
            }
            // After START_OK only a run-time RESULT of our module ends our job: an immediate one
            // (`BUSY`, …) answers somebody else's START.
            (AgentLine::Result(r), Phase::Result) if r.is_runtime_of(&self.module_id) => {
                if r.is_ok() {
                    let result = Some(r.clone());
                    self.core.finish(Ok(StartOutcome { result, line }));
                } else {
                    self.core.reject(line);
                }
            }
            _ if self.core.phase == Phase::StartReply && reply_error(&line) => {
                self.core.reject(line)
            }
            _ => self.core.unsolicited(line),
        }
    }
}

impl_session!(StartSession, StartOutcome);
