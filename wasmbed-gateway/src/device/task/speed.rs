//! BAUD switching around large uploads (docs/PROTOCOL.md "Baud switching"): the decisions and
//! the exchange are the sans-IO crate's ([`pick_rate`], [`BaudSession`], [`probe_deadline`],
//! [`revert_wait`]); this drives them over the link and reprograms the gateway's own port.

use wasmbed_agent_proto::session::{
    pick_rate, probe_deadline, revert_wait, BaudSession, SpeedPolicy, StatusSession,
};
use wasmbed_agent_proto::{Decoder, InfoOk};

use super::{now_std, DeviceTask, DriveError};
use crate::device::LogKind;
use crate::link::{set_line_speed, BoxLink};

impl DeviceTask {
    /// What INFO says about the link speed: the agent's UART speed now and the speeds BAUD takes.
    pub(super) fn note_speeds(&mut self, info: Option<&InfoOk>) {
        self.line_baud = info.and_then(|i| i.baud);
        self.baud_rates = info.map(|i| i.baud_rates.clone()).unwrap_or_default();
        self.compress = info.map(|i| i.compress.clone()).unwrap_or_default();
    }

    /// Before an upload of `bytes`: switches the link up if the agent offers BAUD, the endpoint's
    /// `?max_baud=` allows a faster speed and it saves time. Returns the speed to go back to
    /// afterwards (`None`: the link stayed as it was).
    pub(super) async fn speed_up(
        &mut self,
        link: &mut BoxLink,
        bytes: usize,
    ) -> Result<Option<u32>, DriveError> {
        let policy = SpeedPolicy {
            max_baud: self.opts.max_baud,
            ..SpeedPolicy::default()
        };
        let Some(cur) = self.line_baud else {
            return Ok(None);
        };
        let Some(rate) = pick_rate(bytes as u64, cur, &self.baud_rates, &policy) else {
            return Ok(None);
        };
        Ok(self.switch(link, cur, rate).await?.then_some(cur))
    }

    /// After the upload: back to `to` (the speed a reconnecting gateway opens the port at).
    pub(super) async fn speed_back(
        &mut self,
        link: &mut BoxLink,
        to: u32,
        outcome: &Result<(), &DriveError>,
    ) -> Result<(), DriveError> {
        match outcome {
            Err(DriveError::Io(_)) => Ok(()), // the link is gone: it reopens at its speed
            Err(DriveError::Fenced(_)) => Ok(()), // not ours to drive now: leave it as it is
            Err(DriveError::Rebooted(_)) => {
                // a rebooted board runs at its boot speed: follow it without asking
                self.set_port(link, to);
                self.line_baud = Some(to);
                Ok(())
            }
            Ok(()) => {
                let Some(cur) = self.line_baud.filter(|&c| c != to) else {
                    return Ok(());
                };
                self.switch(link, cur, to).await.map(|_| ())
            }
        }
    }

    /// Reprograms the gateway's port (serial endpoints) and its deadlines to `baud`.
    fn set_port(&mut self, link: &mut BoxLink, baud: u32) {
        if let Err(e) = set_line_speed(link, baud) {
            tracing::warn!(device = %self.opts.name, "{e}");
            self.log.push(LogKind::Gateway, e.to_string());
        }
        let rate = (baud / 10).max(1);
        self.opts.timeouts.link_bytes_per_sec = rate;
        self.set_state(|s| s.link_bytes_per_sec = rate);
    }

    /// `BAUD rate=<to>`, then both sides at `to` and a STATUS round trip to prove it. On any
    /// failure the link ends up at `from` (after the agent's own revert) and `false` is returned.
    async fn switch(&mut self, link: &mut BoxLink, from: u32, to: u32) -> Result<bool, DriveError> {
        let t = self.opts.timeouts.clone();
        let ok = match self
            .drive(link, BaudSession::new(now_std(), to, &t), None, true)
            .await?
        {
            (Ok(o), _) => o.ok,
            (Err(e), _) => {
                self.note(format!(
                    "link stays at {from} baud: BAUD rate={to} failed: {e}"
                ));
                return Ok(false);
            }
        };
        let acked = tokio::time::Instant::now();
        self.set_port(link, to);
        let mut probe_t = self.opts.timeouts.clone();
        probe_t.status = probe_deadline(&ok);
        let probe = StatusSession::new(now_std(), &probe_t);
        if let (Ok(_), _) = self.drive(link, probe, None, true).await? {
            self.line_baud = Some(to);
            self.note(format!("link switched from {from} to {to} baud"));
            return Ok(true);
        }
        // Not heard at the new speed: back to the old one, and talk again only once the agent
        // has reverted by itself.
        self.set_port(link, from);
        tokio::time::sleep_until(acked + revert_wait(&ok)).await;
        self.decoder = Decoder::new(); // whatever arrived in between was line noise
        let check = StatusSession::new(now_std(), &self.opts.timeouts);
        let back = matches!(self.drive(link, check, None, true).await?, (Ok(_), _));
        self.line_baud = Some(from);
        self.note(format!(
            "BAUD rate={to} acknowledged but no answer at {to} baud within {:?}: {}",
            probe_deadline(&ok),
            if back {
                format!("both sides back at {from} baud")
            } else {
                format!("back at {from} baud, but the device does not answer yet")
            }
        ));
        Ok(false)
    }

    fn note(&self, msg: String) {
        tracing::info!(device = %self.opts.name, "{msg}");
        self.log.push(LogKind::Gateway, msg);
    }
}
