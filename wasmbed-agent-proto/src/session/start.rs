//! START, with or without waiting for the job's RESULT.

use std::time::Instant;

use super::{impl_session, reply_error, result_is_ours, Core, Phase, Timeouts};
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
/// Waits `first_reply` for `START_OK`, an immediate `RESULT` (final: a RESULT before `START_OK`
/// is the answer to this START, ok iff `status=OK`) or a reply `ERROR`. With `wait_result` it
/// then waits `result` for the job's `RESULT`: ok iff `status=OK`, any other status is
/// [`SessionError::Rejected`](super::SessionError::Rejected). A RESULT whose `module_id` is another module's is an event, not
/// ours; FW-A RESULTs carry no `module_id` and are accepted.
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
            (AgentLine::Result(r), _) if result_is_ours(&r.module_id, &self.module_id) => {
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
