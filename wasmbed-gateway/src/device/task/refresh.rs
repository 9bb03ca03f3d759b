//! What the device is and holds: the connect-time handshake ([`Handshake`]: INFO, identity,
//! STATUS), STATUS re-reads, and the resynchronisation after a timeout on legacy firmware. The
//! answers are applied by [`crate::device::handshake`].

use wasmbed_agent_proto::session::{
    InfoOutcome, InfoSession, ResyncSession, Session, StatusSession,
};
use wasmbed_agent_proto::{Correlation, InfoOk, Line, StatusOk};

use super::{now_std, DeviceTask, DriveError};
use crate::device::handshake::{
    apply_info, apply_status, heard, link_rate, Handshake, Step, HANDSHAKE_RESTARTS,
};
use crate::device::reply::session_error;
use crate::device::{DeviceError, LogKind};
use crate::link::BoxLink;

/// How a step that stops at a HELLO ended.
pub(super) enum Stepped<O> {
    /// Its outcome.
    Done(O),
    /// It failed (this error); the device is marked not answering.
    Failed(DeviceError),
    /// The device said HELLO (this line) during it: the handshake starts over.
    Hello(Line),
}

/// How the INFO step (and the identity check after it) ended.
enum InfoStep {
    /// Answered (and identified).
    Done,
    /// The device said HELLO (this line) during it: the handshake starts over.
    Hello(Line),
    /// INFO went unanswered: this error names it.
    Unanswered(DeviceError),
}

impl DeviceTask {
    /// The connect-time handshake ([`Handshake`]): what the device is and holds. `hello`: the
    /// HELLO that asked for it, if one did (it tells [`InfoSession::after_hello`] the device
    /// speaks v2). `Ok(Some(e))` when the device did not answer INFO (the steps after it are
    /// skipped, `e` names INFO) or kept rebooting during the handshake.
    pub(super) async fn refresh(
        &mut self,
        link: &mut BoxLink,
        hello: Option<Line>,
    ) -> std::io::Result<Option<DeviceError>> {
        self.handshake(link, Handshake::new(), hello).await
    }

    /// Re-reads STATUS into the device state (slots in use, memory).
    pub(super) async fn refresh_status(&mut self, link: &mut BoxLink) -> std::io::Result<()> {
        self.handshake(link, Handshake::status_only(), None)
            .await
            .map(drop)
    }

    /// Drives each step of `h` through its session, from `INFO` again when the device says
    /// HELLO during one ([`Handshake::restart`]); `Err` when the link is lost, `Ok(Some(e))` when
    /// INFO went unanswered (a device that does not answer INFO is not asked more) or the device
    /// kept rebooting ([`Handshake::restart`] gave up).
    async fn handshake(
        &mut self,
        link: &mut BoxLink,
        mut h: Handshake,
        mut hello: Option<Line>,
    ) -> std::io::Result<Option<DeviceError>> {
        while let Some(step) = h.next() {
            let heard = match step {
                Step::Info => match self.info_step(link, hello.as_ref()).await? {
                    InfoStep::Done => None,
                    InfoStep::Hello(line) => Some(line),
                    InfoStep::Unanswered(e) => return Ok(Some(e)),
                },
                Step::Status => self.status_step(link).await?,
            };
            let Some(line) = heard else { continue };
            // Nothing the device said before it rebooted proves who answers now.
            self.set_state(|s| s.identity = crate::identity::Seen::Unknown);
            let name = self.opts.name.clone();
            match h.restart(&line.raw) {
                Ok(n) => {
                    let during = match step {
                        Step::Info => "INFO/IDENT",
                        Step::Status => "STATUS",
                    };
                    let text = format!(
                        "the device said HELLO during {during} (it booted): asking INFO again \
                         (restart {n} of {HANDSHAKE_RESTARTS})"
                    );
                    tracing::info!(device = %name, "{text}");
                    self.log.push(LogKind::Gateway, text);
                }
                Err(gave_up) => {
                    tracing::warn!(device = %name, "{gave_up}");
                    self.log.push(LogKind::Gateway, gave_up.to_string());
                    self.not_answering(&gave_up.to_string());
                    // Not the answers of the boot before (`info` would show them): this error.
                    return Ok(Some(DeviceError::KeepsRebooting(gave_up.to_string())));
                }
            }
            hello = Some(line);
        }
        Ok(None)
    }

    /// Runs a session the device's state depends on (a handshake step, the resync), stopping at
    /// a HELLO unless the session handles HELLO itself (`stop_at_hello` false: INFO). A failure
    /// marks the device not answering (`what` names the step); `Err` when the link is lost.
    async fn drive_step<S: Session>(
        &mut self,
        link: &mut BoxLink,
        what: &str,
        session: S,
        stop_at_hello: bool,
    ) -> std::io::Result<Stepped<S::Outcome>>
    where
        S::Outcome: Clone,
    {
        match self.drive(link, session, None, stop_at_hello).await {
            Ok((Ok(out), _)) => Ok(Stepped::Done(out)),
            Ok((Err(e), _)) => {
                tracing::warn!(device = %self.opts.name, "{what} failed: {e}");
                let e = session_error(e);
                self.not_answering(&e.to_string());
                Ok(Stepped::Failed(e))
            }
            Err(DriveError::Io(e)) => Err(e),
            Err(DriveError::Rebooted(hello)) => Ok(Stepped::Hello(hello)),
            Err(DriveError::Fenced(why)) => Ok(Stepped::Failed(DeviceError::Offline(
                crate::device::OfflineReason::Fenced(why),
            ))),
        }
    }

    /// INFO, sent without `seq=`: its answer says whether commands are numbered from here on;
    /// then the identity challenge. `hello`: the HELLO this handshake (re)started for. Returns
    /// a HELLO heard meanwhile, or the error when INFO went unanswered.
    async fn info_step(
        &mut self,
        link: &mut BoxLink,
        hello: Option<&Line>,
    ) -> std::io::Result<InfoStep> {
        // Checked again on every handshake: until then, nothing proved who answers.
        self.set_state(|s| s.identity = crate::identity::Seen::Unknown);
        self.correlation = Correlation::off();
        let (now, t) = (now_std(), &self.opts.timeouts);
        let info = match hello {
            Some(hello) => InfoSession::after_hello(now, t, hello.clone()),
            None => InfoSession::new(now, t),
        };
        // INFO settles a HELLO itself: a device that answers right after it (the simulated board
        // says HELLO on every connection) is not asked twice.
        let info = match self.drive_step(link, "INFO", info, false).await? {
            Stepped::Done(InfoOutcome::V2 { info, line }) => {
                self.correlation = Correlation::from_info(&line);
                self.follow_link_speed(info.baud);
                self.note_speeds(Some(&info));
                self.record_info(Some((&info, &line)));
                Some(info)
            }
            Stepped::Done(InfoOutcome::V1) => {
                self.follow_link_speed(None);
                self.note_speeds(None);
                self.record_info(None);
                None
            }
            Stepped::Done(InfoOutcome::Rebooted { hello }) => return Ok(InfoStep::Hello(hello)),
            Stepped::Failed(e) => {
                // What `devices` shows: what went unanswered, and what to do about it.
                let help = e.help().unwrap_or_default();
                self.not_answering(&format!("{e}; {help}"));
                return Ok(InfoStep::Unanswered(e));
            }
            Stepped::Hello(line) => return Ok(InfoStep::Hello(line)),
        };
        // A HELLO during the challenge: the handshake starts over (not STATUS of a gone run).
        let hello = self
            .identify(link, info.as_deref())
            .await
            .map_err(std::io::Error::other)?;
        Ok(hello.map_or(InfoStep::Done, InfoStep::Hello))
    }

    /// STATUS: the slots in use and memory. Returns a HELLO heard meanwhile.
    async fn status_step(&mut self, link: &mut BoxLink) -> std::io::Result<Option<Line>> {
        let status = StatusSession::new(now_std(), &self.opts.timeouts);
        Ok(match self.drive_step(link, "STATUS", status, true).await? {
            Stepped::Done(out) => {
                self.record_status(&out.status);
                None
            }
            Stepped::Failed(_) => None,
            Stepped::Hello(hello) => Some(hello),
        })
    }

    /// After a timeout on legacy v1 firmware (which echoes no `seq=`): the marker, then STATUS,
    /// everything before the marker's answer discarded into the device log (docs/PROTOCOL.md,
    /// "Resynchronisation after a timeout").
    pub(super) async fn resync(&mut self, link: &mut BoxLink) -> std::io::Result<()> {
        let resync = ResyncSession::new(now_std(), &self.opts.timeouts);
        match self
            .drive_step(link, "resynchronisation", resync, true)
            .await?
        {
            Stepped::Done(out) => {
                tracing::info!(device = %self.opts.name, discarded = out.discarded,
                    attempts = out.attempts, "back in line sync after a timeout");
                self.record_status(&out.status);
            }
            Stepped::Failed(_) => {}
            // a rebooted device is in line sync: what it is and holds is asked again
            Stepped::Hello(hello) => {
                self.refresh(link, Some(hello)).await?;
            }
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
