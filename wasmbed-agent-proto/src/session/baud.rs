//! Negotiated link-speed switching (docs/PROTOCOL.md "Baud switching"): the `BAUD` exchange and
//! the gateway's decisions around it. The caller does the IO: after a `BAUD_OK` it changes its
//! own port's speed, proves the new speed with a probe (any command, e.g. STATUS, within
//! [`probe_deadline`]) and, if the probe fails, goes back to the old speed and waits
//! [`revert_wait`] before talking again: by then the agent has reverted by itself.

use std::time::{Duration, Instant};

use super::{impl_session, reply_error, Core, Phase, Timeouts};
use crate::decoder::Line;
use crate::message::{AgentLine, Baud, BaudOk, Command};

/// Successful `BAUD`: the agent switches to `ok.rate` right after this line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaudOutcome {
    /// The typed reply.
    pub ok: BaudOk,
    /// The raw line.
    pub line: Line,
}

/// BAUD state machine: `first_reply` for `BAUD_OK` (naming the rate asked for), `BAUD_ERR` or a
/// reply `ERROR` (legacy firmware: `UNKNOWN_COMMAND`) — both rejections, the speed unchanged.
#[derive(Debug)]
pub struct BaudSession {
    core: Core<BaudOutcome>,
    rate: u32,
}

impl BaudSession {
    /// Queues `BAUD rate=<rate>` at `now`.
    pub fn new(now: Instant, rate: u32, timeouts: &Timeouts) -> Self {
        BaudSession {
            core: Core::new(
                Command::Baud(Baud { rate }),
                Phase::Baud,
                now + timeouts.first_reply,
            ),
            rate,
        }
    }

    fn on_line(&mut self, _now: Instant, line: Line) {
        match &line.msg {
            AgentLine::BaudOk(ok) if ok.rate == self.rate => {
                let ok = *ok;
                self.core.finish(Ok(BaudOutcome { ok, line }))
            }
            AgentLine::BaudOk(_) => self.core.protocol("BAUD_OK names another rate", &line),
            AgentLine::BaudErr(_) => self.core.reject(line),
            _ if reply_error(&line) => self.core.reject(line),
            _ => self.core.unsolicited(line),
        }
    }
}

impl_session!(BaudSession, BaudOutcome);

/// What a gateway may switch to, and when it is worth it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeedPolicy {
    /// The endpoint's ceiling (`?max_baud=`): never switch above it. `None`: never switch.
    pub max_baud: Option<u32>,
    /// Switch only when the estimated saving is at least this long. Default 100 ms.
    pub min_saving: Duration,
}

impl Default for SpeedPolicy {
    fn default() -> Self {
        SpeedPolicy {
            max_baud: None,
            min_saving: Duration::from_millis(100),
        }
    }
}

/// Bytes a switch costs on the wire at each speed: `BAUD`/`BAUD_OK` at the old speed, the probe
/// (STATUS and its reply) at the new one, the same again on the way back.
const SWITCH_BYTES: u64 = 2 * (40 + 300);

/// Time of `bytes` at `baud` (8N1: 10 bits per byte).
pub fn wire_time(bytes: u64, baud: u32) -> Duration {
    Duration::from_nanos(bytes * 10 * 1_000_000_000 / u64::from(baud.max(1)))
}

/// The speed to switch to before sending `bytes` at `current` baud: the highest of the agent's
/// `rates` within the policy's ceiling, if it saves at least `min_saving` (switch costs
/// included). `None`: stay.
pub fn pick_rate(bytes: u64, current: u32, rates: &[u32], policy: &SpeedPolicy) -> Option<u32> {
    let ceiling = policy.max_baud?;
    let best = rates
        .iter()
        .copied()
        .filter(|&r| r > current && r <= ceiling)
        .max()?;
    let stay = wire_time(bytes, current);
    let switch = wire_time(bytes, best) + wire_time(SWITCH_BYTES, current) * 2;
    (stay > switch && stay - switch >= policy.min_saving).then_some(best)
}

/// How long the probe at the new speed may take: half the agent's revert bound, so that a failed
/// probe is known while the agent still listens at the new speed (and has not yet reverted).
pub fn probe_deadline(ok: &BaudOk) -> Duration {
    Duration::from_millis(u64::from(ok.revert_ms / 2).max(20))
}

/// After a failed probe: how long to wait (from the moment `BAUD_OK` was received) before
/// talking at the old speed again: the agent's revert bound plus a margin of a quarter of it
/// (at least 50 ms) for its poll loop.
pub fn revert_wait(ok: &BaudOk) -> Duration {
    let ms = u64::from(ok.revert_ms);
    Duration::from_millis(ms + (ms / 4).max(50))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max: u32) -> SpeedPolicy {
        SpeedPolicy {
            max_baud: Some(max),
            ..SpeedPolicy::default()
        }
    }

    #[test]
    fn switches_up_for_large_uploads_within_the_ceiling() {
        let rates = [115_200, 230_400, 460_800, 921_600];
        assert_eq!(
            pick_rate(65_536, 115_200, &rates, &policy(921_600)),
            Some(921_600)
        );
        assert_eq!(
            pick_rate(65_536, 115_200, &rates, &policy(460_800)),
            Some(460_800)
        );
        assert_eq!(
            pick_rate(65_536, 115_200, &rates, &policy(500_000)),
            Some(460_800)
        );
        // no ceiling configured, nothing above the current speed, or a tiny module: stay
        assert_eq!(
            pick_rate(65_536, 115_200, &rates, &SpeedPolicy::default()),
            None
        );
        assert_eq!(pick_rate(65_536, 921_600, &rates, &policy(921_600)), None);
        assert_eq!(pick_rate(460, 115_200, &rates, &policy(921_600)), None);
        assert_eq!(pick_rate(65_536, 115_200, &[], &policy(921_600)), None);
    }

    #[test]
    fn probe_is_known_before_the_agent_reverts() {
        let ok = BaudOk {
            rate: 921_600,
            revert_ms: 1000,
        };
        assert!(probe_deadline(&ok) < Duration::from_millis(1000));
        assert!(revert_wait(&ok) > Duration::from_millis(1000));
    }
}
