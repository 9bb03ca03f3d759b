//! The device task: owns one persistent link, runs queued commands one at a time through the
//! protocol crate's sessions, keeps everything the device says unasked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wasmbed_api::{StopResult, UnloadResult};

use wasmbed_agent_proto::session::{
    Event, InfoOutcome, InfoSession, LoadOptions, LoadSession, Phase, ResyncSession, Session,
    SessionError, StartSession, StatusSession, StopSession, Timeouts, UnloadSession,
};
use wasmbed_agent_proto::{
    AgentLine, Correlation, Decoder, InfoOk, Item, Line, ModuleId, ModuleRef, Modules, SlotState,
    StatusOk,
};

use super::handshake::{apply_info, link_rate, Handshake, Step};
use super::jobs::{Heard, Parked};
use super::reply::{
    request_phase, session_error, start_command, start_reply, status_reply, stop_reply,
};
use super::wait::Waiters;
use super::{
    DeviceError, DeviceHandle, DeviceLog, DeviceState, Job, JobReply, LinkIoError, Loaded, LogKind,
    Outcome, Reply, Request,
};
use crate::link::{BoxLink, SharedConnector};
use crate::pipeline::AotTarget;

mod identify;

mod compress;
mod speed;

/// How to run one device.
#[derive(Clone)]
pub struct DeviceOptions {
    /// Logical name.
    pub name: String,
    /// Opens the link.
    pub connector: SharedConnector,
    /// Periodic STATUS; `None` = the link stays silent between commands.
    pub health_interval: Option<Duration>,
    /// AOT target from the config (overrides INFO).
    pub aot: Option<AotTarget>,
    /// Protocol deadlines.
    pub timeouts: Timeouts,
    /// Entries kept in the device log.
    pub log_lines: usize,
    /// First reconnect delay (doubles up to `backoff_max`).
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Deadline for opening the link.
    pub connect_timeout: Duration,
    /// The configured line speed (`?baud=` or the `baud` key). `None`: deadlines follow the
    /// speed the firmware reports in INFO (`baud=`), else `timeouts.link_bytes_per_sec`.
    pub baud: Option<u32>,
    /// Pinned identity keys and the enrollment policy (default: in memory, `approve`,
    /// anonymous devices allowed).
    pub identity: Arc<crate::identity::IdentityStore>,
    /// Signs uploads to devices that check signatures (`[signing] key_file`).
    pub signing_key: Option<Arc<crate::signing::ModuleKey>>,
    /// The endpoint's `?max_baud=`: large uploads may switch the link up to it with BAUD
    /// (`None`: never switch).
    pub max_baud: Option<u32>,
}

impl DeviceOptions {
    /// Defaults for a device reached through `connector`.
    pub fn new(name: impl Into<String>, connector: SharedConnector) -> Self {
        Self {
            name: name.into(),
            connector,
            health_interval: None,
            aot: None,
            timeouts: Timeouts::default(),
            log_lines: 1000,
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            baud: None,
            identity: Arc::new(crate::identity::IdentityStore::in_memory(Default::default())),
            signing_key: None,
            max_baud: None,
        }
    }
}

/// Starts the task of one device and returns its handle. The task ends when every handle is gone.
pub fn spawn_device(opts: DeviceOptions) -> DeviceHandle {
    let (tx, rx) = mpsc::channel(64);
    let log = Arc::new(DeviceLog::new(opts.log_lines));
    let state = Arc::new(Mutex::new(DeviceState {
        aot: opts.aot.clone(),
        ..Default::default()
    }));
    let waiters = Waiters::new();
    let handle = DeviceHandle {
        name: opts.name.clone(),
        endpoint: opts.connector.describe(),
        log: log.clone(),
        state: state.clone(),
        identity: opts.identity.clone(),
        tx,
        waiters: waiters.clone(),
    };
    let task = DeviceTask {
        base_rate: opts.timeouts.link_bytes_per_sec,
        opts,
        rx,
        log,
        state,
        waiters,
        decoder: Decoder::new(),
        buf: vec![0; 4096],
        correlation: Correlation::off(),
        line_baud: None,
        baud_rates: Vec::new(),
        compress: Vec::new(),
    };
    tokio::spawn(task.run());
    handle
}

struct DeviceTask {
    opts: DeviceOptions,
    /// `link_bytes_per_sec` as configured, before any INFO `baud=`.
    base_rate: u32,
    rx: mpsc::Receiver<Job>,
    log: Arc<DeviceLog>,
    state: Arc<Mutex<DeviceState>>,
    /// Commands past their first reply, waiting for a RESULT.
    waiters: Arc<Waiters>,
    decoder: Decoder,
    buf: Vec<u8>,
    /// The numbering of commands on this link (on when `INFO_OK` says `seq=1`).
    correlation: Correlation,
    /// The agent's UART speed now (INFO `baud=`, then every BAUD switch); see `speed.rs`.
    line_baud: Option<u32>,
    /// The speeds the agent's BAUD takes (INFO `baud_rates=`).
    baud_rates: Vec<u32>,
    /// The compressed uploads the agent takes (INFO `compress=`); see `compress.rs`.
    compress: Vec<String>,
}

/// What a job yields: a reply now, or a session parked until its RESULT.
enum Exec {
    Done(Result<Reply, DeviceError>, Duration),
    Pending(super::wait::Pending),
}

/// How a drive ended: the session's outcome, or the detach condition held (the session's
/// [`last_reply`](StopSession::last_reply) made it leave its first step).
enum Driven<O> {
    Done(Result<O, SessionError>),
    Detached,
}

/// How a drive ended badly at the IO level.
enum DriveError {
    Io(std::io::Error),
    Rebooted(String),
}

/// The device closed its side of the link.
fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "device closed the link")
}

fn now_std() -> std::time::Instant {
    Instant::now().into_std()
}

impl DeviceTask {
    /// A request went unanswered: offline until the device says something again.
    fn not_answering(&self, why: &str) {
        self.set_state(|s| {
            s.online = false;
            s.offline_reason = Some(format!("not answering: {why}"));
        });
    }

    fn set_state(&self, f: impl FnOnce(&mut DeviceState)) {
        f(&mut self.state.lock().expect("state lock"));
    }

    async fn run(mut self) {
        let mut backoff = self.opts.backoff_min;
        loop {
            let connect =
                tokio::time::timeout(self.opts.connect_timeout, self.opts.connector.connect());
            let link = match connect.await {
                Ok(Ok(link)) => link,
                Ok(Err(e)) => {
                    let reason = e.to_string();
                    self.note_offline(&reason);
                    if !self.wait_offline(backoff, &reason).await {
                        return;
                    }
                    backoff = (backoff * 2).min(self.opts.backoff_max);
                    continue;
                }
                Err(_) => {
                    self.note_offline("connect timed out");
                    if !self.wait_offline(backoff, "connect timed out").await {
                        return;
                    }
                    backoff = (backoff * 2).min(self.opts.backoff_max);
                    continue;
                }
            };
            backoff = self.opts.backoff_min;
            self.decoder = Decoder::new();
            self.set_state(|s| {
                s.online = false;
                s.handshake = false;
                s.offline_reason = Some("link up, waiting for the device to answer INFO".into());
                s.candidates.clear();
            });
            self.log.push(
                LogKind::Gateway,
                format!("link up: {}", self.opts.connector.describe()),
            );
            let cause = match self.serve(link).await {
                Some(cause) => LinkIoError::from(cause),
                None => return,
            };
            let reason = cause.to_string();
            self.set_state(|s| {
                s.online = false;
                s.offline_reason = Some(format!("link down: {reason}"));
            });
            tracing::warn!(device = %self.opts.name, "link to {} lost: {reason}", self.opts.connector.describe());
            // No RESULT can come over a lost link.
            self.waiters.link_lost(&cause);
            self.log
                .push(LogKind::Gateway, format!("link down: {reason}"));
        }
    }

    /// Records why the link cannot be opened and which serial ports could be the board; logs
    /// it when the reason changes (every retry at debug level).
    fn note_offline(&self, reason: &str) {
        let candidates = self.opts.connector.candidates();
        let list = candidates.clone().unwrap_or_default();
        let changed = {
            let mut s = self.state.lock().expect("state lock");
            let changed = s.offline_reason.as_deref() != Some(reason) || s.candidates != list;
            s.offline_reason = Some(reason.to_string());
            s.candidates = list;
            changed
        };
        let (name, endpoint) = (&self.opts.name, self.opts.connector.describe());
        if !changed {
            tracing::debug!(device = %name, "offline, {endpoint}: {reason}");
            return;
        }
        tracing::warn!(device = %name, "offline, cannot open {endpoint}: {reason} (retrying)");
        match candidates.as_deref() {
            None => {}
            Some([]) => tracing::warn!(device = %name, "no USB serial port is present"),
            Some(list) => {
                for c in list {
                    tracing::warn!(device = %name, "candidate port: {c}");
                }
            }
        }
    }

    /// Offline: answers queued jobs with `Offline` until the backoff delay is over.
    /// Returns false when all handles are gone.
    async fn wait_offline(&mut self, delay: Duration, reason: &str) -> bool {
        self.set_state(|s| {
            s.online = false;
            s.offline_reason = Some(format!("cannot connect: {reason}"));
        });
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return true,
                job = self.rx.recv() => match job {
                    None => return false,
                    Some(job) => {
                        let candidates = self.state.lock().expect("state lock").candidates.clone();
                        let present = match candidates.as_slice() {
                            [] => String::new(),
                            list => format!("; USB serial ports present: {}", list.join("; ")),
                        };
                        let _ = job.reply.send(JobReply::Done(Outcome {
                            result: Err(DeviceError::Offline(format!(
                                "{} ({reason}){present}", self.opts.connector.describe()))),
                            device_time: Duration::ZERO,
                        }));
                    }
                },
            }
        }
    }

    /// Serves one connected link. `Some(cause)` when the link is lost, `None` when all handles
    /// are gone.
    async fn serve(&mut self, mut link: BoxLink) -> Option<std::io::Error> {
        if let Err(e) = self.refresh(&mut link).await {
            return Some(e);
        }
        let mut health = self.opts.health_interval.map(|d| {
            let mut i = tokio::time::interval_at(Instant::now() + d, d);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        loop {
            let tick = async {
                match health.as_mut() {
                    Some(i) => {
                        i.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                job = self.rx.recv() => {
                    let job = job?;
                    let lost = self.run_job(&mut link, job).await;
                    if let Some(reason) = lost {
                        return Some(reason);
                    }
                    // Lines that arrived with the job's last reply (a RESULT right after
                    // START_OK, console text) are used now, not when the next bytes come.
                    if self.idle_bytes(&[]) {
                        if let Err(e) = self.refresh(&mut link).await {
                            return Some(e);
                        }
                    }
                }
                read = link.read(&mut self.buf) => match read {
                    Ok(0) => return Some(closed()),
                    Ok(n) => {
                        let data = self.buf[..n].to_vec();
                        if self.idle_bytes(&data) {
                            if let Err(e) = self.refresh(&mut link).await {
                                return Some(e);
                            }
                        }
                    }
                    Err(e) => return Some(e),
                },
                _ = tick => {
                    let s = StatusSession::new(now_std(), &self.opts.timeouts);
                    match self.drive(&mut link, s, None, false).await {
                        Ok((Ok(out), _)) => self.record_status(&out.status),
                        Ok((Err(e), _)) => {
                            tracing::warn!(device = %self.opts.name, "health check: {e}");
                            self.not_answering(&e.to_string());
                        }
                        Err(DriveError::Io(e)) => return Some(e),
                        Err(DriveError::Rebooted(_)) => {}
                    }
                }
            }
        }
    }

    /// Feeds bytes heard between commands; returns true if a HELLO asks for a state re-read.
    fn idle_bytes(&mut self, data: &[u8]) -> bool {
        self.decoder.feed(data);
        let mut rebooted = false;
        while let Some(item) = self.decoder.next_item() {
            if let Item::Line(line) = &item {
                rebooted |= matches!(line.msg, AgentLine::Hello(_));
            }
            self.unsolicited(item_event(item));
        }
        rebooted
    }

    /// The connect-time handshake ([`Handshake`]): what the device is and holds.
    async fn refresh(&mut self, link: &mut BoxLink) -> std::io::Result<()> {
        // Checked again on every handshake: until then, nothing proved who answers.
        self.set_state(|s| s.identity = crate::identity::Seen::Unknown);
        self.handshake(link, Handshake::new()).await
    }

    /// Re-reads STATUS into the device state (slots in use, memory).
    async fn refresh_status(&mut self, link: &mut BoxLink) -> std::io::Result<()> {
        self.handshake(link, Handshake::status_only()).await
    }

    /// Drives each step of `h` through its session; `Err` when the link is lost.
    async fn handshake(&mut self, link: &mut BoxLink, mut h: Handshake) -> std::io::Result<()> {
        while let Some(step) = h.next() {
            match step {
                Step::Info => self.info_step(link).await?,
                Step::Status => self.status_step(link).await?,
            }
        }
        Ok(())
    }

    /// Runs a session the device's state depends on (a handshake step, the resync): its
    /// outcome, or `None` when it failed (the device is then marked not answering, `what`
    /// names the step) or a HELLO cut it short; `Err` when the link is lost.
    async fn drive_step<S: Session>(
        &mut self,
        link: &mut BoxLink,
        what: &str,
        session: S,
    ) -> std::io::Result<Option<S::Outcome>>
    where
        S::Outcome: Clone,
    {
        match self.drive(link, session, None, false).await {
            Ok((Ok(out), _)) => Ok(Some(out)),
            Ok((Err(e), _)) => {
                tracing::warn!(device = %self.opts.name, "{what} failed: {e}");
                self.not_answering(&e.to_string());
                Ok(None)
            }
            Err(DriveError::Io(e)) => Err(e),
            Err(DriveError::Rebooted(_)) => Ok(None),
        }
    }

    /// INFO, sent without `seq=`: its answer says whether commands are numbered from here on.
    async fn info_step(&mut self, link: &mut BoxLink) -> std::io::Result<()> {
        self.correlation = Correlation::off();
        let info = InfoSession::new(now_std(), &self.opts.timeouts);
        match self.drive_step(link, "INFO", info).await? {
            Some(InfoOutcome::V2 { info, line }) => {
                self.correlation = Correlation::from_info(&line);
                self.follow_link_speed(info.baud);
                self.note_speeds(Some(&info));
                self.record_info(Some((&info, &line)));
                self.identify(link, Some(&info))
                    .await
                    .map_err(std::io::Error::other)?;
            }
            Some(InfoOutcome::V1) => {
                self.follow_link_speed(None);
                self.note_speeds(None);
                self.record_info(None);
                self.identify(link, None)
                    .await
                    .map_err(std::io::Error::other)?;
            }
            None => {}
        }
        Ok(())
    }

    /// STATUS: the slots in use and memory.
    async fn status_step(&mut self, link: &mut BoxLink) -> std::io::Result<()> {
        let status = StatusSession::new(now_std(), &self.opts.timeouts);
        if let Some(out) = self.drive_step(link, "STATUS", status).await? {
            self.record_status(&out.status);
        }
        Ok(())
    }

    /// After a timeout on legacy v1 firmware (which echoes no `seq=`): the marker, then STATUS,
    /// everything before the marker's answer discarded into the device log (docs/PROTOCOL.md,
    /// "Resynchronisation after a timeout").
    async fn resync(&mut self, link: &mut BoxLink) -> std::io::Result<()> {
        let resync = ResyncSession::new(now_std(), &self.opts.timeouts);
        if let Some(out) = self.drive_step(link, "resynchronisation", resync).await? {
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
            heard(s);
        });
    }

    fn record_status(&self, st: &StatusOk) {
        let used = match &st.modules {
            Modules::Slots(v) => Some(v.len() as u32),
            Modules::None => Some(0),
            Modules::Text(_) => None,
        };
        if let Modules::Slots(v) = &st.modules {
            let running = v.iter().filter(|m| m.state == SlotState::Running);
            self.waiters
                .running_on_device(running.map(|m| m.module_id.as_str()));
        }
        self.set_state(|s| {
            s.slots_used = used;
            if s.slots_total.is_none() && s.proto == Some(1) {
                s.slots_total = Some(2);
            }
        });
    }

    /// A LOAD cleared `module_id`'s slot: its running job (if any) was killed without a RESULT.
    fn abandon_jobs(&self, module_id: &str, by: &str) {
        let n = self.waiters.slot_cleared(module_id, by);
        if n > 0 {
            self.log.push(
                LogKind::Gateway,
                format!("{by} of {module_id} killed its job: {n} waiter(s) failed"),
            );
        }
    }

    /// Something the device said outside a command's answer: the job table decides where it
    /// goes ([`super::jobs::JobTable::unasked`]).
    fn unsolicited(&self, ev: Event) {
        self.set_state(heard);
        match ev {
            Event::Unsolicited(line) => {
                if let AgentLine::Hello(h) = &line.msg {
                    let (board, fw) = (h.device_id.clone(), h.fw_version.clone());
                    self.set_state(|s| {
                        s.board.get_or_insert(board);
                        s.firmware.get_or_insert(fw);
                    });
                }
                if let Heard::Log(kind) = self.waiters.unasked(&line) {
                    let seq = self.log.push(kind, line.raw.clone());
                    self.waiters.late_result(&line, seq);
                }
            }
            Event::LineTooLong { len, head } => {
                self.log.push(
                    LogKind::Gateway,
                    format!("dropped a {len}-byte line: {head}…"),
                );
            }
            Event::Telnet { .. } | Event::Progress(_) => {}
        }
    }

    /// Runs one session to its outcome over the link. Returns the outcome and the time from the
    /// first byte written to the outcome.
    async fn drive<S: Session>(
        &mut self,
        link: &mut BoxLink,
        mut session: S,
        progress: Option<&mpsc::UnboundedSender<super::Progress>>,
        abort_on_hello: bool,
    ) -> Result<(Result<S::Outcome, SessionError>, Duration), DriveError>
    where
        S::Outcome: Clone,
    {
        match self
            .drive_until(link, &mut session, progress, abort_on_hello, None)
            .await?
        {
            (Driven::Done(r), d) => Ok((r, d)),
            (Driven::Detached, _) => unreachable!("no detach condition"),
        }
    }

    /// [`DeviceTask::drive`], but returns as soon as `detach` holds for the session (then the
    /// session stays with the caller, e.g. to wait for a RESULT outside the command queue).
    async fn drive_until<S: Session>(
        &mut self,
        link: &mut BoxLink,
        session: &mut S,
        progress: Option<&mpsc::UnboundedSender<super::Progress>>,
        abort_on_hello: bool,
        detach: Option<fn(&S) -> bool>,
    ) -> Result<(Driven<S::Outcome>, Duration), DriveError>
    where
        S::Outcome: Clone,
    {
        let t0 = Instant::now();
        self.correlation.tag(session);
        loop {
            while let Some(t) = session.poll_transmit() {
                let bytes = t.to_bytes();
                link.write_all(&bytes).await.map_err(DriveError::Io)?;
                link.flush().await.map_err(DriveError::Io)?;
            }
            while let Some(ev) = session.poll_event() {
                match ev {
                    Event::Progress(p) => {
                        if let Some(tx) = progress {
                            let _ = tx.send(super::Progress {
                                done: p.acked.into(),
                                total: p.total.into(),
                            });
                        }
                    }
                    Event::Unsolicited(line)
                        if abort_on_hello && matches!(line.msg, AgentLine::Hello(_)) =>
                    {
                        let raw = line.raw.clone();
                        self.unsolicited(Event::Unsolicited(line));
                        return Err(DriveError::Rebooted(raw));
                    }
                    other => self.unsolicited(other),
                }
            }
            if let Some(out) = session.outcome() {
                return Ok((Driven::Done(out.clone()), t0.elapsed()));
            }
            if let Some(detach) = detach {
                if detach(session) {
                    return Ok((Driven::Detached, t0.elapsed()));
                }
            }
            // Items already decoded go first.
            if let Some(item) = self.decoder.next_item() {
                self.set_state(heard);
                session.handle_line(now_std(), item);
                continue;
            }
            let deadline = session.poll_timeout().map(Instant::from_std);
            // A device that keeps sending lines, none of them the answer, must not hold the
            // session past its deadline: the read below only times out on a silent link.
            if deadline.is_some_and(|d| Instant::now() >= d) {
                session.handle_timeout(now_std());
                continue;
            }
            let read = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, link.read(&mut self.buf))
                        .await
                        .ok(),
                    None => Some(link.read(&mut self.buf).await),
                }
            };
            match read.await {
                None => session.handle_timeout(now_std()),
                Some(Ok(0)) => return Err(DriveError::Io(closed())),
                Some(Ok(n)) => self.decoder.feed(&self.buf[..n]),
                Some(Err(e)) => return Err(DriveError::Io(e)),
            }
        }
    }

    /// Runs a job; `Some(cause)` if the link was lost.
    async fn run_job(&mut self, link: &mut BoxLink, job: Job) -> Option<std::io::Error> {
        let Job {
            request,
            progress,
            reply,
            cancel,
        } = job;
        if let Err(e) = self.identity_gate(&request) {
            let _ = reply.send(JobReply::Done(Outcome {
                result: Err(e),
                device_time: Duration::ZERO,
            }));
            return None;
        }
        let phase = request_phase(&request);
        let changes_slots = matches!(request, Request::Deploy(_) | Request::Unload { .. });
        let (result, device_time, lost) =
            match self.exec(link, request, progress.as_ref(), &cancel).await {
                Ok(Exec::Done(r, t)) => (r, t, None),
                Ok(Exec::Pending(p)) => {
                    // The queue moves on; the caller waits for the RESULT (or gave up already).
                    let id = p.id;
                    if reply.send(JobReply::Pending(p)).is_err() {
                        self.waiters.remove(id);
                    }
                    return None;
                }
                Err(DriveError::Io(e)) => {
                    let lost = LinkIoError::from(e);
                    let again = std::io::Error::new(lost.io().kind(), lost.to_string());
                    let err = DeviceError::LinkLost {
                        phase: phase.into(),
                        source: lost,
                    };
                    (Err(err), Duration::ZERO, Some(again))
                }
                Err(DriveError::Rebooted(line)) => {
                    let r = Err(DeviceError::Rebooted {
                        phase: phase.into(),
                        line,
                    });
                    // State is re-read after a reboot.
                    if let Err(e) = self.refresh(link).await {
                        let _ = reply.send(JobReply::Done(Outcome {
                            result: r,
                            device_time: Duration::ZERO,
                        }));
                        return Some(e);
                    }
                    (r, Duration::ZERO, None)
                }
            };
        let timed_out = matches!(&result, Err(DeviceError::Timeout { .. }));
        if let Err(e @ DeviceError::Timeout { .. }) = &result {
            self.not_answering(&e.to_string());
        }
        let refresh = changes_slots && lost.is_none() && result.is_ok();
        let _ = reply.send(JobReply::Done(Outcome {
            result,
            device_time,
        }));
        // The caller forwards progress until every sender is gone: release ours now.
        drop(progress);
        let legacy = self.state.lock().expect("state lock").proto == Some(1);
        if timed_out && lost.is_none() && legacy && !self.correlation.is_on() {
            // Its late answer must not answer the next command: back to line sync first.
            if let Err(e) = self.resync(link).await {
                return Some(e);
            }
        }
        if refresh {
            // After the reply, so the caller does not wait for it: the slots listed by
            // `devices` and `status` reflect the LOAD/UNLOAD before the next command runs.
            if let Err(e) = self.refresh_status(link).await {
                return Some(e);
            }
        }
        lost
    }

    async fn exec(
        &mut self,
        link: &mut BoxLink,
        request: Request,
        progress: Option<&mpsc::UnboundedSender<super::Progress>>,
        cancel: &CancellationToken,
    ) -> Result<Exec, DriveError> {
        match request {
            Request::Start(s) => self.start(link, s).await,
            Request::Stop(s) => self.stop(link, s).await,
            Request::Deploy(d) => {
                let (r, d) = self.deploy(link, d, progress, cancel).await?;
                Ok(Exec::Done(r, d))
            }
            other => {
                let (r, d) = self.exec_simple(link, other).await?;
                Ok(Exec::Done(r, d))
            }
        }
    }

    /// START: holds the link until the first reply. With `wait_result`, a START_OK parks the
    /// session as a waiter (its RESULT comes through [`Waiters::hear`]).
    async fn start(
        &mut self,
        link: &mut BoxLink,
        s: super::StartRequest,
    ) -> Result<Exec, DriveError> {
        let start = match start_command(&s.module_id, s.func.as_deref(), &s.args) {
            Ok(c) => c,
            Err(e) => return Ok(Exec::Done(Err(e), Duration::ZERO)),
        };
        let mut t = self.opts.timeouts.clone();
        t.result = s.result_timeout;
        let t0 = Instant::now();
        let mut session = StartSession::new(now_std(), start, s.wait_result, &t);
        let detach: fn(&StartSession) -> bool = |s| s.phase() == Phase::Result;
        let (r, d) = self
            .drive_until(link, &mut session, None, true, Some(detach))
            .await?;
        let r = match r {
            Driven::Detached => {
                self.waiters.started(&s.module_id, s.func.clone());
                let p = self
                    .waiters
                    .park(&s.module_id, "START", t0, Parked::Start(session));
                return Ok(Exec::Pending(p));
            }
            Driven::Done(r) => r,
        };
        self.waiters
            .start_answered(&s.module_id, s.func.clone(), &r);
        Ok(Exec::Done(start_reply(r), d))
    }

    /// STOP: holds the link until `STOP_OK`. After `STOP_OK status=PENDING` it answers at once
    /// without `wait`, and parks the session as a waiter for the RESULT with `wait`.
    async fn stop(
        &mut self,
        link: &mut BoxLink,
        s: super::StopRequest,
    ) -> Result<Exec, DriveError> {
        let module_id = match ModuleId::new(s.module_id.clone()) {
            Ok(m) => m,
            Err(e) => return Ok(Exec::Done(Err(DeviceError::BadRequest(e)), Duration::ZERO)),
        };
        let mut t = self.opts.timeouts.clone();
        t.result = s.result_timeout;
        let t0 = Instant::now();
        let mut session = StopSession::new(now_std(), ModuleRef { module_id }, &t);
        let detach: fn(&StopSession) -> bool = |s| s.phase() == Phase::StopResult;
        let (r, d) = self
            .drive_until(link, &mut session, None, false, Some(detach))
            .await?;
        let r = match r {
            Driven::Detached if s.wait => {
                let p = self
                    .waiters
                    .park(&s.module_id, "STOP", t0, Parked::Stop(session));
                return Ok(Exec::Pending(p));
            }
            Driven::Detached => {
                let line = session
                    .last_reply()
                    .cloned()
                    .unwrap_or_else(|| Line::parse(""));
                let reply = Reply::Stopped(StopResult {
                    line: line.raw.clone(),
                    status: match &line.msg {
                        AgentLine::StopOk(st) => st.status.to_string(),
                        _ => "PENDING".into(),
                    },
                    forced: false,
                });
                return Ok(Exec::Done(Ok(reply), d));
            }
            Driven::Done(r) => r,
        };
        self.waiters.stop_answered(&s.module_id, &r);
        Ok(Exec::Done(stop_reply(r), d))
    }

    async fn exec_simple(
        &mut self,
        link: &mut BoxLink,
        request: Request,
    ) -> Result<(Result<Reply, DeviceError>, Duration), DriveError> {
        let t = self.opts.timeouts.clone();
        match request {
            Request::Info => {
                let t0 = Instant::now();
                self.refresh(link).await.map_err(DriveError::Io)?;
                let info = self.state.lock().expect("state lock").info.clone();
                Ok((
                    info.map(|i| Reply::Info(Box::new(i)))
                        .ok_or_else(|| DeviceError::Unsupported("no INFO".into())),
                    t0.elapsed(),
                ))
            }
            Request::Status => {
                let (r, d) = self
                    .drive(link, StatusSession::new(now_std(), &t), None, false)
                    .await?;
                let r = r.map(|o| {
                    self.record_status(&o.status);
                    Reply::Status(status_reply(&o.line.raw, &o.status))
                });
                Ok((r.map_err(session_error), d))
            }
            Request::Start(_) | Request::Stop(_) => unreachable!("handled by exec"),
            Request::Unload { module_id } => {
                let module_id = match ModuleId::new(module_id) {
                    Ok(m) => m,
                    Err(e) => return Ok((Err(DeviceError::BadRequest(e)), Duration::ZERO)),
                };
                if self.state.lock().expect("state lock").proto == Some(1) {
                    return Ok((
                        Err(DeviceError::Unsupported(
                            "UNLOAD needs protocol v2 firmware".into(),
                        )),
                        Duration::ZERO,
                    ));
                }
                let id = module_id.to_string();
                let session = UnloadSession::new(now_std(), ModuleRef { module_id }, &t);
                let (r, d) = self.drive(link, session, None, false).await?;
                if r.is_ok() {
                    self.waiters.unloaded(&id);
                }
                Ok((
                    r.map_err(session_error).map(|o| {
                        Reply::Unloaded(UnloadResult {
                            line: o.line.raw.clone(),
                        })
                    }),
                    d,
                ))
            }
            Request::Deploy(_) => unreachable!("handled by exec"),
        }
    }

    /// The signature an upload carries: none for a device that does not check (no INFO `sig=`),
    /// else the host's own (as-is), else the gateway's key's (`[signing] key_file`), else none
    /// (the device then refuses it if it requires signatures, saying so).
    fn module_signature(
        &self,
        module_id: &ModuleId,
        d: &super::DeployRequest,
    ) -> Result<Option<wasmbed_agent_proto::ModuleSignature>, DeviceError> {
        let (mode, target) = {
            let s = self.state.lock().expect("state lock");
            (s.sig_mode.clone(), s.sig_target.clone())
        };
        if mode.is_none() {
            return Ok(None);
        }
        if let Some(sig) = d.signature {
            return Ok(Some(sig));
        }
        let Some(key) = &self.opts.signing_key else {
            return Ok(None);
        };
        let target = match wasmbed_agent_proto::ModuleKind::of(&d.bytes) {
            wasmbed_agent_proto::ModuleKind::Aot => target,
            wasmbed_agent_proto::ModuleKind::Wasm => None,
        };
        key.sign(module_id, d.version, target.as_ref(), &d.bytes)
            .map(Some)
            .map_err(DeviceError::BadRequest)
    }

    async fn deploy(
        &mut self,
        link: &mut BoxLink,
        d: super::DeployRequest,
        progress: Option<&mpsc::UnboundedSender<super::Progress>>,
        cancel: &CancellationToken,
    ) -> Result<(Result<Reply, DeviceError>, Duration), DriveError> {
        if cancel.is_cancelled() {
            // The host left while the upload waited in the queue: nothing was sent.
            let e = DeviceError::Cancelled {
                phase: "LOAD".into(),
            };
            return Ok((Err(e), Duration::ZERO));
        }
        let bad = DeviceError::BadRequest;
        let module_id = match ModuleId::new(d.module_id.clone()).map_err(bad) {
            Ok(m) => m,
            Err(e) => return Ok((Err(e), Duration::ZERO)),
        };
        let victim = match d
            .replace_victim
            .clone()
            .map(ModuleId::new)
            .transpose()
            .map_err(bad)
        {
            Ok(v) => v,
            Err(e) => return Ok((Err(e), Duration::ZERO)),
        };
        let t = self.opts.timeouts.clone();
        let mut device_time = Duration::ZERO;
        let crc = wasmbed_agent_proto::Crc32::of(&d.bytes);
        if !d.force {
            let (r, dt) = self
                .drive(link, StatusSession::new(now_std(), &t), None, false)
                .await?;
            device_time += dt;
            if let Ok(o) = r {
                self.record_status(&o.status);
                if let Modules::Slots(slots) = &o.status.modules {
                    let same = slots.iter().any(|m| {
                        m.module_id == d.module_id
                            && m.wasm_size as usize == d.bytes.len()
                            && m.crc32 == Some(crc)
                    });
                    if same {
                        let line = format!(
                            "skipped: {} already holds {} bytes crc32={:08x}",
                            d.module_id,
                            d.bytes.len(),
                            crc.0
                        );
                        let reply = Reply::Loaded(Loaded {
                            line,
                            skipped: true,
                            chunked: false,
                            transfer: Duration::ZERO,
                        });
                        return Ok((Ok(reply), device_time));
                    }
                }
            }
        }
        let chunked = self.state.lock().expect("state lock").proto == Some(2);
        let mut options = LoadOptions {
            chunked,
            resume: false,
            replace: d.replace,
            replace_victim: victim,
            // Progress moves at least twice a second: chunks of half a second of line time.
            max_chunk: Some((self.opts.timeouts.link_bytes_per_sec / 2).max(64)),
            signature: match self.module_signature(&module_id, &d) {
                Ok(s) => s,
                Err(e) => return Ok((Err(e), device_time)),
            },
            deflated: None,
        };
        let back = self.speed_up(link, d.bytes.len()).await?;
        options.deflated = self.deflated_upload(&d.module_id, &d.bytes, chunked);
        let t = self.opts.timeouts.clone(); // deadlines at the (new) link speed
        let mut session =
            match LoadSession::new(now_std(), module_id, d.bytes.to_vec(), options, &t) {
                Ok(s) => s,
                Err(e) => return Ok((Err(bad(e)), device_time)),
            };
        let driven = tokio::select! {
            biased;
            _ = cancel.cancelled() => None,
            d = self.drive_until(link, &mut session, progress, true, None) => Some(d),
        };
        let Some(driven) = driven else {
            let r = self
                .discard_upload(link, &d, session.slot_cleared(), device_time)
                .await;
            if let Some(to) = back {
                self.speed_back(link, to, &r.as_ref().map(|_| ())).await?;
            }
            return r;
        };
        if let Some(to) = back {
            self.speed_back(link, to, &driven.as_ref().map(|_| ()))
                .await?;
        }
        if session.slot_cleared() {
            // The agent killed a job running in the cleared slot without a RESULT.
            self.abandon_jobs(&d.module_id, "LOAD");
            if let Some(v) = &d.replace_victim {
                self.abandon_jobs(v, "LOAD (as replace_victim)");
            }
        }
        let (r, dt) = match driven? {
            (Driven::Done(r), dt) => (r, dt),
            (Driven::Detached, _) => unreachable!("no detach condition"),
        };
        device_time += dt;
        let r = r.map_err(session_error).map(|o| {
            Reply::Loaded(Loaded {
                line: o.line.raw.clone(),
                skipped: false,
                chunked: o.chunked,
                transfer: dt,
            })
        });
        Ok((r, device_time))
    }
}

impl DeviceTask {
    /// A cancelled upload: ends a frame cut short (a lone `\n`), then `UNLOAD`s the slot so the
    /// partial module is discarded (protocol v2; v1 firmware times the payload out by itself).
    async fn discard_upload(
        &mut self,
        link: &mut BoxLink,
        d: &super::DeployRequest,
        slot_cleared: bool,
        mut device_time: Duration,
    ) -> Result<(Result<Reply, DeviceError>, Duration), DriveError> {
        tracing::info!(device = %self.opts.name, module_id = %d.module_id,
            "host went away during the upload: cancelling it");
        if slot_cleared {
            self.abandon_jobs(&d.module_id, "LOAD (cancelled)");
        }
        if self.state.lock().expect("state lock").proto == Some(2) {
            link.write_all(b"\n").await.map_err(DriveError::Io)?;
            link.flush().await.map_err(DriveError::Io)?;
            if let Ok(module_id) = ModuleId::new(d.module_id.clone()) {
                let t = self.opts.timeouts.clone();
                let session = UnloadSession::new(now_std(), ModuleRef { module_id }, &t);
                let (r, dt) = self.drive(link, session, None, false).await?;
                device_time += dt;
                match r {
                    Ok(_) => self.waiters.unloaded(&d.module_id),
                    Err(e) => tracing::debug!(device = %self.opts.name, error = %e,
                        "UNLOAD after a cancelled upload (nothing to discard)"),
                }
            }
        }
        let e = DeviceError::Cancelled {
            phase: "LOAD".into(),
        };
        Ok((Err(e), device_time))
    }
}

fn item_event(item: Item) -> Event {
    match item {
        Item::Line(l) => Event::Unsolicited(l),
        Item::LineTooLong { len, head } => Event::LineTooLong { len, head },
        Item::Telnet { len } => Event::Telnet { len },
    }
}

/// The device said something: online again once it has answered INFO on this link.
fn heard(s: &mut DeviceState) {
    s.last_seen = Some(std::time::Instant::now());
    if s.handshake {
        s.online = true;
        s.offline_reason = None;
    }
}
