//! Back to line sync with a device that does not correlate replies (legacy v1 firmware, and v2
//! firmware without `seq=1`), after a command timed out: its late answer must not be taken as
//! the answer to the next command (docs/PROTOCOL.md "Resynchronisation after a timeout").
//!
//! The marker is `\n` (ends whatever partial line the device holds), the line
//! [`RESYNC_MARKER`] (an unknown command: every firmware answers `ERROR code=UNKNOWN_COMMAND`,
//! and no other command the gateway sends to such a device gets that answer) and `STATUS`.
//! The device answers in order, so every late reply to an earlier command comes before the
//! marker's `ERROR`; the session is in sync when that `ERROR` is followed by `STATUS_OK` with no
//! other reply between them. Everything before is discarded (handed out as events, so the device
//! log keeps it). A device still reading a v1 LOAD payload swallows the marker as payload bytes:
//! each attempt waits `status`, and [`RESYNC_ATTEMPTS`] attempts outlast the legacy agent's
//! 5 s payload wait. After a second attempt an earlier marker may still be answered late, so a
//! pair matched then only counts once [`RESYNC_SETTLE`] passes with no further reply.

use std::time::Instant;

use super::{answers_a_command, impl_session, Core, Phase, Timeouts, Transmit};
use crate::decoder::Line;
use crate::message::{AgentLine, Command, StatusOk};
use crate::wire::ErrorCode;

/// The unknown command that marks the resynchronisation point.
pub const RESYNC_MARKER: &str = "WASMBED_RESYNC";

/// Attempts (each: marker + STATUS, then `Timeouts::status`) before the device is given up as
/// not answering.
pub const RESYNC_ATTEMPTS: u32 = 4;

/// Quiet time required after the pair when more than one marker went out.
pub const RESYNC_SETTLE: std::time::Duration = std::time::Duration::from_millis(300);

/// A resynchronised link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResyncOutcome {
    /// The STATUS answered right after the marker (the device's state now).
    pub status: StatusOk,
    /// Lines discarded before the marker's answer (late replies, payload read as lines).
    pub discarded: usize,
    /// Attempts used (1 when the first marker was answered).
    pub attempts: u32,
}

/// Resynchronisation state machine (see the module documentation).
#[derive(Debug)]
pub struct ResyncSession {
    core: Core<ResyncOutcome>,
    per_attempt: std::time::Duration,
    attempts: u32,
    marker_answered: bool,
    discarded: usize,
    /// The pair matched after several attempts: done once the settle deadline passes quietly.
    settling: Option<ResyncOutcome>,
}

fn marker() -> Transmit {
    Transmit::Payload(format!("\n{RESYNC_MARKER}\n").into_bytes())
}

impl ResyncSession {
    /// Queues the marker and `STATUS` at `now`.
    pub fn new(now: Instant, timeouts: &Timeouts) -> Self {
        let mut core = Core::new(Command::Status, Phase::Resync, now + timeouts.status);
        core.transmit.push_front(marker());
        ResyncSession {
            core,
            per_attempt: timeouts.status,
            attempts: 1,
            marker_answered: false,
            discarded: 0,
            settling: None,
        }
    }

    fn on_line(&mut self, now: Instant, line: Line) {
        if let Some(pending) = self.settling.take() {
            if !answers_a_command(&line.msg) {
                self.settling = Some(pending);
                self.core.unsolicited(line);
                return;
            }
            // a late answer to an earlier marker: the pair must come again
            drop(pending);
            self.discarded += 2; // the pair that matched was stale
            self.core.wait(Phase::Resync, now + self.per_attempt);
        }
        match &line.msg {
            AgentLine::Error(e) if e.code == ErrorCode::UnknownCommand => {
                // the marker's answer, or a stale one: a STATUS_OK right after decides
                if self.marker_answered {
                    self.discarded += 1;
                }
                self.marker_answered = true;
                self.core.unsolicited(line);
            }
            AgentLine::StatusOk(s) if self.marker_answered => {
                let out = ResyncOutcome {
                    status: s.clone(),
                    discarded: self.discarded,
                    attempts: self.attempts,
                };
                self.marker_answered = false;
                if self.attempts == 1 {
                    self.core.finish(Ok(out));
                } else {
                    self.settling = Some(out);
                    self.core.wait(Phase::Resync, now + RESYNC_SETTLE);
                }
            }
            msg => {
                // a late reply between the marker's answer and STATUS_OK breaks the pair
                if answers_a_command(msg) {
                    self.marker_answered = false;
                    self.discarded += 1;
                }
                self.core.unsolicited(line);
            }
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        if self.core.outcome().is_some() || self.core.poll_timeout().is_none_or(|d| now < d) {
            return;
        }
        if let Some(out) = self.settling.take() {
            self.core.finish(Ok(out));
            return;
        }
        if self.attempts >= RESYNC_ATTEMPTS {
            self.core.check_timeout(now);
            return;
        }
        self.attempts += 1;
        self.marker_answered = false;
        self.core.send(marker());
        self.core.send(Transmit::Line(Command::Status));
        self.core.wait(Phase::Resync, now + self.per_attempt);
    }
}

impl_session!(
    ResyncSession,
    ResyncOutcome,
    |s: &mut ResyncSession, now| s.on_timeout(now)
);
