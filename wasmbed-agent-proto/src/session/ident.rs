//! IDENT: the identity challenge (docs/PROTOCOL.md "Device identity (IDENT)").

use std::time::Instant;

use super::{impl_session, reply_error, Core, Phase, SessionError, Timeouts};
use crate::decoder::Line;
use crate::identity::{self, Nonce, Verified};
use crate::message::{AgentLine, Command};

/// A device that proved it holds the key its INFO announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentOutcome {
    /// The key and its fingerprint.
    pub verified: Verified,
    /// The `IDENT_OK` line.
    pub line: Line,
}

/// IDENT state machine: `first_reply` for `IDENT_OK` (verified against the announced fingerprint
/// and this nonce: a failure is [`SessionError::Protocol`]), `IDENT_ERR` or a reply `ERROR` (a
/// rejection).
#[derive(Debug)]
pub struct IdentSession {
    core: Core<IdentOutcome>,
    nonce: Nonce,
    announced: String,
}

impl IdentSession {
    /// Queues `IDENT nonce=<nonce>` at `now` for a device whose INFO announced the key
    /// fingerprint `announced`. `nonce` must be fresh random bytes for every challenge.
    pub fn new(now: Instant, nonce: Nonce, announced: &str, timeouts: &Timeouts) -> Self {
        IdentSession {
            core: Core::new(
                Command::Ident(nonce),
                Phase::Ident,
                now + timeouts.first_reply,
            ),
            nonce,
            announced: announced.to_string(),
        }
    }

    fn on_line(&mut self, _now: Instant, line: Line) {
        match &line.msg {
            AgentLine::IdentOk(ok) => match identity::verify(&self.announced, &self.nonce, ok) {
                Ok(verified) => self.core.finish(Ok(IdentOutcome { verified, line })),
                Err(e) => self.core.finish(Err(SessionError::Protocol {
                    reason: e.to_string(),
                    line: line.raw.clone(),
                })),
            },
            AgentLine::IdentErr(_) => self.core.reject(line),
            _ if reply_error(&line) => self.core.reject(line),
            _ => self.core.unsolicited(line),
        }
    }
}

impl_session!(IdentSession, IdentOutcome);
