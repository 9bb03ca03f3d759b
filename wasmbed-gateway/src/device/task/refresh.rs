//! What the device is and holds: the connect-time handshake ([`Handshake`]: INFO, identity,
//! STATUS), STATUS re-reads, and the resynchronisation after a timeout on legacy firmware. The
//! answers are applied by [`crate::device::handshake`].

use wasmbed_agent_proto::session::{
    InfoOutcome, InfoSession, ResyncSession, Session, StatusSession,
};
use wasmbed_agent_proto::{Correlation, InfoOk, Line, StatusOk};

use super::{now_std, DeviceTask, DriveError};
use crate::device::handshake::{apply_info, apply_status, heard, link_rate, Handshake, Step};
use crate::device::reply::session_error;
use crate::device::DeviceError;
use crate::link::BoxLink;

impl DeviceTask {
    /// The connect-time handshake ([`Handshake`]): what the device is and holds. `Ok(Some(e))`
    /// when the device did not answer INFO: the steps after it are skipped, `e` names INFO.
    pub(super) async fn refresh(
        &mut self,
        link: &mut BoxLink,
    ) -> std::io::Result<Option<DeviceError>> {
        // Checked again on every handshake: until then, nothing proved who answers.
        self.set_state(|s| s.identity = crate::identity::Seen::Unknown);
        self.handshake(link, Handshake::new()).await
    }

    /// Re-reads STATUS into the device state (slots in use, memory).
    pub(super) async fn refresh_status(&mut self, link: &mut BoxLink) -> std::io::Result<()> {
        self.handshake(link, Handshake::status_only())
            .await
            .map(drop)
    }

    /// Drives each step of `h` through its session; `Err` when the link is lost, `Ok(Some(e))`
    /// when INFO went unanswered (a device that does not answer INFO is not asked more).
    async fn handshake(
        &mut self,
        link: &mut BoxLink,
        mut h: Handshake,
    ) -> std::io::Result<Option<DeviceError>> {
        while let Some(step) = h.next() {
            match step {
                Step::Info => {
                    if let Some(e) = self.info_step(link).await? {
                        return Ok(Some(e));
                    }
                }
                Step::Status => self.status_step(link).await?,
            }
        }
        Ok(None)
    }

    /// Runs a session the device's state depends on (a handshake step, the resync): its
    /// outcome, `Err(Some(e))` when it failed (the device is then marked not answering, `what`
    /// names the step), `Err(None)` when a HELLO cut it short; `Err` outside when the link is
    /// lost.
    async fn drive_step<S: Session>(
        &mut self,
        link: &mut BoxLink,
        what: &str,
        session: S,
    ) -> std::io::Result<Result<S::Outcome, Option<DeviceError>>>
    where
        S::Outcome: Clone,
    {
        match self.drive(link, session, None, false).await {
            Ok((Ok(out), _)) => Ok(Ok(out)),
            Ok((Err(e), _)) => {
                tracing::warn!(device = %self.opts.name, "{what} failed: {e}");
                let e = session_error(e);
                self.not_answering(&e.to_string());
                Ok(Err(Some(e)))
            }
            Err(DriveError::Io(e)) => Err(e),
            Err(DriveError::Rebooted(_)) => Ok(Err(None)),
        }
    }

    /// INFO, sent without `seq=`: its answer says whether commands are numbered from here on.
    /// `Ok(Some(e))` when the device did not answer it.
    async fn info_step(&mut self, link: &mut BoxLink) -> std::io::Result<Option<DeviceError>> {
        self.correlation = Correlation::off();
        let info = InfoSession::new(now_std(), &self.opts.timeouts);
        match self.drive_step(link, "INFO", info).await? {
            Ok(InfoOutcome::V2 { info, line }) => {
                self.correlation = Correlation::from_info(&line);
                self.follow_link_speed(info.baud);
                self.note_speeds(Some(&info));
                self.record_info(Some((&info, &line)));
                self.identify(link, Some(&info))
                    .await
                    .map_err(std::io::Error::other)?;
            }
            Ok(InfoOutcome::V1) => {
                self.follow_link_speed(None);
                self.note_speeds(None);
                self.record_info(None);
                self.identify(link, None)
                    .await
                    .map_err(std::io::Error::other)?;
            }
            Err(Some(e)) => {
                // What `devices` shows: what went unanswered, and what to do about it.
                let help = e.help().unwrap_or_default();
                self.not_answering(&format!("{e}; {help}"));
                return Ok(Some(e));
            }
            Err(None) => {}
        }
        Ok(None)
    }

    /// STATUS: the slots in use and memory.
    async fn status_step(&mut self, link: &mut BoxLink) -> std::io::Result<()> {
        let status = StatusSession::new(now_std(), &self.opts.timeouts);
        if let Ok(out) = self.drive_step(link, "STATUS", status).await? {
            self.record_status(&out.status);
        }
        Ok(())
    }

    /// After a timeout on legacy v1 firmware (which echoes no `seq=`): the marker, then STATUS,
    /// everything before the marker's answer discarded into the device log (docs/PROTOCOL.md,
    /// "Resynchronisation after a timeout").
    pub(super) async fn resync(&mut self, link: &mut BoxLink) -> std::io::Result<()> {
        let resync = ResyncSession::new(now_std(), &self.opts.timeouts);
        if let Ok(out) = self.drive_step(link, "resynchronisation", resync).await? {
            tracing::info!(device = %self.opts.name, discarded = out.discarded,
                attempts = out.attempts, "back in line sync after a timeout");
            self.record_status(&out.status);
        }
        Ok(())
    }

    /// Deadlines follow the link speed [`link_rate`] decides.
    fn follow_link_speed(&mut self, reported: Option<u32>) {
        let (rate, warning) = link_rate(self.opts.baud, reported, self.base_rate);
        if let Some(w) = warning {
            tracing::warn!(device = %self.opts.name, "{w}");
        }
        self.opts.timeouts.link_bytes_per_sec = rate;
        self.set_state(|s| s.link_bytes_per_sec = rate);
    }

    /// An INFO answer (`None`: v1 firmware): the handshake is done, the device answers.
    fn record_info(&self, info: Option<(&InfoOk, &Line)>) {
        let configured = self.opts.aot.clone();
        self.set_state(|s| {
            apply_info(s, info, configured);
            heard(s, std::time::Instant::now());
        });
    }

    /// A STATUS answer: the slots in use, and the jobs it shows running.
    pub(super) fn record_status(&self, st: &StatusOk) {
        let running = {
            let mut s = self.state.lock().expect("state lock");
            apply_status(&mut s, st)
        };
        self.waiters
            .running_on_device(running.iter().map(String::as_str));
    }
}
