//! The device task: owns one persistent link, runs queued commands one at a time through the
//! protocol crate's sessions, keeps everything the device says unasked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use wasmbed_api::{InfoResult, MemoryStats, SlotInfo, StopResult, UnloadResult};

use wasmbed_agent_proto::session::{
    Event, InfoOutcome, InfoSession, LoadOptions, LoadSession, Phase, ResyncSession, Session,
    SessionError, StartSession, StatusSession, StopSession, Timeouts, UnloadSession,
};
use wasmbed_agent_proto::{
    AgentLine, Args, Decoder, FuncName, Item, Line, ModuleId, ModuleRef, Modules, ResultClass,
    RunResult, SlotState, Start, StatusOk,
};

use super::jobs::Parked;
use super::wait::{start_reply, stop_reply, Waiters};
use super::{
    DeviceError, DeviceHandle, DeviceLog, DeviceState, Job, JobReply, Loaded, LogKind, Outcome,
    Reply, Request, StatusReply,
};
use crate::link::{BoxLink, SharedConnector};
use crate::pipeline::{legacy_natives, AotExact, AotTarget, DeviceCaps};

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
    /// Signs uploads to devices that check signatures (`[signing] key_file`).
    pub signing_key: Option<Arc<crate::signing::ModuleKey>>,
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
            signing_key: None,
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
        seq: None,
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
    /// The last `seq=` sent, when the device correlates replies (`INFO_OK … seq=1`).
    seq: Option<u32>,
}

/// What a job yields: a reply now, or a session parked until its RESULT.
enum Exec {
    Done(Result<Reply, DeviceError>, Duration),
    Pending(super::wait::Pending),
}

/// How a drive ended: the session's outcome, or (detach condition met) the line that made the
/// session leave its first step.
enum Driven<O> {
    Done(Result<O, SessionError>),
    Detached(Line),
}

/// How a drive ended badly at the IO level.
enum DriveError {
    Io(std::io::Error),
    Rebooted(String),
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
            let reason = match self.serve(link).await {
                Some(reason) => reason,
                None => return,
            };
            self.set_state(|s| {
                s.online = false;
                s.offline_reason = Some(format!("link down: {reason}"));
            });
            tracing::warn!(device = %self.opts.name, "link to {} lost: {reason}", self.opts.connector.describe());
            // No RESULT can come over a lost link.
            self.waiters.link_lost(&reason);
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

    /// Serves one connected link. `Some(reason)` when the link is lost, `None` when all handles
    /// are gone.
    async fn serve(&mut self, mut link: BoxLink) -> Option<String> {
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
                    Ok(0) => return Some("device closed the link".into()),
                    Ok(n) => {
                        let data = self.buf[..n].to_vec();
                        if self.idle_bytes(&data) {
                            if let Err(e) = self.refresh(&mut link).await {
                                return Some(e);
                            }
                        }
                    }
                    Err(e) => return Some(e.to_string()),
                },
                _ = tick => {
                    let s = StatusSession::new(now_std(), &self.opts.timeouts);
                    match self.drive(&mut link, s, None, false).await {
                        Ok((Ok(out), _)) => self.record_status(&out.status),
                        Ok((Err(e), _)) => {
                            tracing::warn!(device = %self.opts.name, "health check: {e}");
                            self.not_answering(&e.to_string());
                        }
                        Err(DriveError::Io(e)) => return Some(e.to_string()),
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

    /// INFO (v1 fallback) and STATUS: what the device is and holds.
    async fn refresh(&mut self, link: &mut BoxLink) -> Result<(), String> {
        self.seq = None; // INFO itself goes without seq=: it tells whether the device echoes one
        let info = InfoSession::new(now_std(), &self.opts.timeouts);
        match self.drive(link, info, None, false).await {
            Ok((Ok(InfoOutcome::V2 { info, line }), _)) => {
                self.seq = wasmbed_agent_proto::correlates(&line).then_some(0);
                self.follow_link_speed(info.baud);
                self.record_info(Some(&info), &line)
            }
            Ok((Ok(InfoOutcome::V1), _)) => {
                self.seq = None;
                self.follow_link_speed(None);
                self.record_info(None, &Line::parse(""))
            }
            Ok((Err(e), _)) => {
                tracing::warn!(device = %self.opts.name, "INFO failed: {e}");
                self.not_answering(&e.to_string());
            }
            Err(DriveError::Io(e)) => return Err(e.to_string()),
            Err(DriveError::Rebooted(_)) => {}
        }
        self.refresh_status(link).await
    }

    /// Re-reads STATUS into the device state (slots in use, memory).
    async fn refresh_status(&mut self, link: &mut BoxLink) -> Result<(), String> {
        let status = StatusSession::new(now_std(), &self.opts.timeouts);
        match self.drive(link, status, None, false).await {
            Ok((Ok(out), _)) => self.record_status(&out.status),
            Ok((Err(e), _)) => {
                tracing::warn!(device = %self.opts.name, "STATUS failed: {e}");
                self.not_answering(&e.to_string());
            }
            Err(DriveError::Io(e)) => return Err(e.to_string()),
            Err(DriveError::Rebooted(_)) => {}
        }
        Ok(())
    }

    /// After a timeout on legacy v1 firmware (which echoes no `seq=`): the marker, then STATUS, everything before the marker's answer
    /// discarded into the device log (docs/PROTOCOL.md "Resynchronisation after a timeout").
    async fn resync(&mut self, link: &mut BoxLink) -> Result<(), String> {
        let resync = ResyncSession::new(now_std(), &self.opts.timeouts);
        match self.drive(link, resync, None, false).await {
            Ok((Ok(out), _)) => {
                tracing::info!(device = %self.opts.name, discarded = out.discarded,
                    attempts = out.attempts, "back in line sync after a timeout");
                self.record_status(&out.status);
            }
            Ok((Err(e), _)) => {
                tracing::warn!(device = %self.opts.name, "resynchronisation failed: {e}");
                self.not_answering(&e.to_string());
            }
            Err(DriveError::Io(e)) => return Err(e.to_string()),
            Err(DriveError::Rebooted(_)) => {}
        }
        Ok(())
    }

    /// Deadlines assume the configured line speed, else the one INFO reports, else the
    /// configured `link_bytes_per_sec`.
    fn follow_link_speed(&mut self, reported: Option<u32>) {
        let rate = match (self.opts.baud, reported) {
            (Some(cfg), Some(rep)) if cfg != rep => {
                tracing::warn!(device = %self.opts.name,
                    "the firmware reports a {rep} baud UART, the configuration says {cfg}: deadlines use {cfg}");
                self.base_rate
            }
            (None, Some(rep)) if rep > 0 => (rep / 10).max(1),
            _ => self.base_rate,
        };
        self.opts.timeouts.link_bytes_per_sec = rate;
        self.set_state(|s| s.link_bytes_per_sec = rate);
    }

    fn record_info(&self, info: Option<&wasmbed_agent_proto::InfoOk>, line: &Line) {
        let cfg_aot = self.opts.aot.clone();
        self.set_state(|s| {
            s.handshake = true;
            heard(s);
        });
        self.set_state(|s| match info {
            Some(i) => {
                s.sig_mode = i.sig.clone();
                s.sig_target = wasmbed_agent_proto::AotTarget::from_info(i);
                s.proto = Some(i.proto);
                s.board = i.board.clone();
                s.firmware = i.fw.clone();
                s.slots_total = i.slots;
                s.caps = DeviceCaps {
                    natives: i
                        .natives
                        .iter()
                        .map(|n| (n.name.clone(), n.signature.clone()))
                        .collect(),
                    max_module: i.max_module.map(u64::from),
                    memory_limit: i.pool_total.map(u64::from),
                    aot_arch: i.aot_arch.clone(),
                    aot_version: i.aot_version,
                    // only Wasmbed agents name a bounds-check need (and check descriptors)
                    aot_exact: i.aot_bounds_checks.as_ref().map(|b| AotExact {
                        cpu: i.aot_cpu.clone().unwrap_or_else(|| "generic".into()),
                        features: i.aot_features.clone().unwrap_or_else(|| "none".into()),
                        abi: i.aot_abi.clone().unwrap_or_else(|| "gnu".into()),
                        bounds_required: b == "required",
                    }),
                };
                s.aot = cfg_aot.or_else(|| {
                    i.aot_arch
                        .clone()
                        .filter(|a| a != "none")
                        .map(|target| AotTarget {
                            target,
                            cpu: i.aot_cpu.clone().filter(|c| c != "generic"),
                            abi: i.aot_abi.clone(),
                        })
                });
                s.info = Some(InfoResult {
                    line: Some(line.raw.clone()),
                    proto: i.proto,
                    board: i.board.clone(),
                    fw: i.fw.clone(),
                    wamr: i.wamr.clone(),
                    aot_arch: i.aot_arch.clone(),
                    aot_cpu: i.aot_cpu.clone(),
                    aot_abi: i.aot_abi.clone(),
                    aot_version: i.aot_version,
                    slots: i.slots,
                    max_module: i.max_module,
                    pool_total: i.pool_total,
                    pool_free: i.pool_free,
                    chunk_max: i.chunk_max,
                    line_max: i.line_max,
                    baud: i.baud,
                    stop: i.stop.as_ref().map(|m| m.to_string()),
                    natives: Some(
                        i.natives
                            .iter()
                            .map(|n| format!("{}:{}", n.name, n.signature))
                            .collect(),
                    ),
                });
            }
            None => {
                s.proto = Some(1);
                s.caps = DeviceCaps {
                    natives: legacy_natives(),
                    ..Default::default()
                };
                s.aot = cfg_aot;
                s.info = Some(InfoResult {
                    proto: 1,
                    board: s.board.clone(),
                    fw: s.firmware.clone(),
                    ..Default::default()
                });
            }
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

    /// Records a started job (START answered, RESULT still to come).
    fn record_started(&self, module_id: &str, func: Option<String>) {
        self.waiters.started(module_id, func);
    }

    /// Attaches a RESULT to its module's job (`log_seq`: it came unasked, late).
    fn record_result(&self, r: &RunResult, raw: &str, log_seq: Option<u64>) {
        self.waiters.result(r, raw, log_seq);
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

    fn unsolicited(&self, ev: Event) {
        self.set_state(heard);
        match ev {
            Event::Unsolicited(line) => {
                let kind = match &line.msg {
                    AgentLine::Hello(h) => {
                        let (board, fw) = (h.device_id.clone(), h.fw_version.clone());
                        // A rebooted device forgot its jobs: no waiter's RESULT will come.
                        self.waiters.rebooted(&line.raw);
                        self.set_state(|s| {
                            s.board.get_or_insert(board);
                            s.firmware.get_or_insert(fw);
                        });
                        LogKind::Hello
                    }
                    AgentLine::Result(r) => {
                        // A waiting START/STOP asked for it: not late, not a log entry (as
                        // when the session took it on the link).
                        if self.waiters.hear(&line, None) {
                            self.record_result(r, &line.raw, None);
                            return;
                        }
                        LogKind::Result
                    }
                    AgentLine::Log(_) => LogKind::Log,
                    _ => LogKind::Console,
                };
                if !matches!(line.msg, AgentLine::Hello(_) | AgentLine::Result(_)) {
                    self.waiters.hear(&line, None);
                }
                let seq = self.log.push(kind, line.raw.clone());
                if let AgentLine::Result(r) = &line.msg {
                    self.record_result(r, &line.raw, Some(seq));
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
            (Driven::Detached(_), _) => unreachable!("no detach condition"),
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
        let mut fed: Option<Line> = None;
        if let Some(seq) = self.seq.as_mut() {
            *seq = seq.wrapping_add(1);
            session.set_seq(*seq);
        }
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
                    let line = fed.take().unwrap_or_else(|| Line::parse(""));
                    return Ok((Driven::Detached(line), t0.elapsed()));
                }
            }
            // Items already decoded go first.
            if let Some(item) = self.decoder.next_item() {
                self.set_state(heard);
                if detach.is_some() {
                    if let Item::Line(l) = &item {
                        fed = Some(l.clone());
                    }
                }
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
                Some(Ok(0)) => {
                    return Err(DriveError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "device closed the link",
                    )))
                }
                Some(Ok(n)) => self.decoder.feed(&self.buf[..n]),
                Some(Err(e)) => return Err(DriveError::Io(e)),
            }
        }
    }

    /// Runs a job; `Some(reason)` if the link was lost.
    async fn run_job(&mut self, link: &mut BoxLink, job: Job) -> Option<String> {
        let Job {
            request,
            progress,
            reply,
        } = job;
        let phase = request_phase(&request);
        let changes_slots = matches!(request, Request::Deploy(_) | Request::Unload { .. });
        let (result, device_time, lost) = match self.exec(link, request, progress.as_ref()).await {
            Ok(Exec::Done(r, t)) => (r, t, None),
            Ok(Exec::Pending(p)) => {
                // The queue moves on; the caller waits for the RESULT (or gave up already).
                let id = p.id;
                if reply.send(JobReply::Pending(p)).is_err() {
                    self.waiters.remove(id);
                }
                return None;
            }
            Err(DriveError::Io(e)) => (
                Err(DeviceError::LinkLost {
                    phase: phase.into(),
                    reason: e.to_string(),
                }),
                Duration::ZERO,
                Some(e.to_string()),
            ),
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
        if timed_out && lost.is_none() && legacy && self.seq.is_none() {
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
    ) -> Result<Exec, DriveError> {
        match request {
            Request::Start(s) => self.start(link, s).await,
            Request::Stop(s) => self.stop(link, s).await,
            other => {
                let (r, d) = self.exec_simple(link, other, progress).await?;
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
            Driven::Detached(_) => {
                self.record_started(&s.module_id, s.func.clone());
                let p = self
                    .waiters
                    .park(&s.module_id, "START", t0, Parked::Start(session));
                return Ok(Exec::Pending(p));
            }
            Driven::Done(r) => r,
        };
        match &r {
            Ok(o) => {
                self.record_started(&s.module_id, s.func.clone());
                if let (Some(res), AgentLine::Result(_)) = (&o.result, &o.line.msg) {
                    self.record_result(res, &o.line.raw, None);
                }
            }
            Err(SessionError::Rejected { line }) => {
                // Only a job's run-time RESULT (after START_OK, without waiting) ends a job here;
                // an immediate refusal (BUSY, NO_MODULE, …) never started one.
                if let AgentLine::Result(res) = &line.msg {
                    if res.class() == ResultClass::RunTime {
                        self.record_started(&s.module_id, s.func.clone());
                        self.record_result(res, &line.raw, None);
                    }
                }
            }
            Err(_) => {}
        }
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
            Err(e) => {
                return Ok(Exec::Done(
                    Err(DeviceError::BadRequest(e.to_string())),
                    Duration::ZERO,
                ))
            }
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
            Driven::Detached(_) if s.wait => {
                let p = self
                    .waiters
                    .park(&s.module_id, "STOP", t0, Parked::Stop(session));
                return Ok(Exec::Pending(p));
            }
            Driven::Detached(line) => {
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
        if let Ok(o) = &r {
            if let Some(res) = &o.result {
                self.record_result(res, &o.line.raw, None);
                // The job's end: a START waiting on it gets it too.
                self.waiters.hear(&o.line, Some(&s.module_id));
            }
        }
        Ok(Exec::Done(stop_reply(r), d))
    }

    async fn exec_simple(
        &mut self,
        link: &mut BoxLink,
        request: Request,
        progress: Option<&mpsc::UnboundedSender<super::Progress>>,
    ) -> Result<(Result<Reply, DeviceError>, Duration), DriveError> {
        let t = self.opts.timeouts.clone();
        match request {
            Request::Info => {
                let t0 = Instant::now();
                self.refresh(link)
                    .await
                    .map_err(|e| DriveError::Io(std::io::Error::other(e)))?;
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
                    Err(e) => {
                        return Ok((Err(DeviceError::BadRequest(e.to_string())), Duration::ZERO))
                    }
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
            Request::Deploy(d) => self.deploy(link, d, progress).await,
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
            .map_err(|e| DeviceError::BadRequest(e.to_string()))
    }

    async fn deploy(
        &mut self,
        link: &mut BoxLink,
        d: super::DeployRequest,
        progress: Option<&mpsc::UnboundedSender<super::Progress>>,
    ) -> Result<(Result<Reply, DeviceError>, Duration), DriveError> {
        let bad = |e: wasmbed_agent_proto::InvalidField| DeviceError::BadRequest(e.to_string());
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
        let options = LoadOptions {
            chunked,
            resume: false,
            replace: d.replace,
            replace_victim: victim,
            max_chunk: None,
            signature: match self.module_signature(&module_id, &d) {
                Ok(s) => s,
                Err(e) => return Ok((Err(e), device_time)),
            },
        };
        let mut session =
            match LoadSession::new(now_std(), module_id, d.bytes.to_vec(), options, &t) {
                Ok(s) => s,
                Err(e) => return Ok((Err(bad(e)), device_time)),
            };
        let driven = self
            .drive_until(link, &mut session, progress, true, None)
            .await;
        if session.slot_cleared() {
            // The agent killed a job running in the cleared slot without a RESULT.
            self.abandon_jobs(&d.module_id, "LOAD");
            if let Some(v) = &d.replace_victim {
                self.abandon_jobs(v, "LOAD (as replace_victim)");
            }
        }
        let (r, dt) = match driven? {
            (Driven::Done(r), dt) => (r, dt),
            (Driven::Detached(_), _) => unreachable!("no detach condition"),
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

fn item_event(item: Item) -> Event {
    match item {
        Item::Line(l) => Event::Unsolicited(l),
        Item::LineTooLong { len, head } => Event::LineTooLong { len, head },
        Item::Telnet { len } => Event::Telnet { len },
    }
}

fn request_phase(r: &Request) -> &'static str {
    match r {
        Request::Info => "INFO",
        Request::Status => "STATUS",
        Request::Deploy(_) => "LOAD",
        Request::Start(_) => "START",
        Request::Stop(_) => "STOP",
        Request::Unload { .. } => "UNLOAD",
    }
}

fn start_command(module_id: &str, func: Option<&str>, args: &[i32]) -> Result<Start, DeviceError> {
    let bad = |e: wasmbed_agent_proto::InvalidField| DeviceError::BadRequest(e.to_string());
    Ok(Start {
        module_id: ModuleId::new(module_id.to_string()).map_err(bad)?,
        func: func
            .map(|f| FuncName::new(f.to_string()))
            .transpose()
            .map_err(bad)?,
        args: Args::new(args.to_vec()).map_err(bad)?,
    })
}

pub(crate) fn session_error(e: SessionError) -> DeviceError {
    match e {
        SessionError::Timeout { phase, last_line } => DeviceError::Timeout {
            phase: phase.to_string(),
            last_line,
        },
        SessionError::Rejected { line } => {
            let status = match &line.msg {
                AgentLine::Result(r) => Some(r.status.to_string()),
                _ => None,
            };
            DeviceError::Rejected {
                line: line.raw,
                status,
            }
        }
        SessionError::Protocol { reason, line } => DeviceError::Rejected {
            line: format!("{reason}: {line}"),
            status: None,
        },
        other => DeviceError::Rejected {
            line: other.to_string(),
            status: None,
        },
    }
}

fn status_reply(line: &str, st: &StatusOk) -> StatusReply {
    let slots = match &st.modules {
        Modules::Slots(v) => v
            .iter()
            .map(|m| SlotInfo {
                module_id: m.module_id.clone(),
                state: m.state.to_string(),
                size: m.wasm_size,
                crc32: m.crc32.map(|c| format!("{:08x}", c.0)),
                stack_free: m.stack_free,
            })
            .collect(),
        _ => Vec::new(),
    };
    let memory = st.pool.and_then(|p| p.stats()).map(|p| MemoryStats {
        total: p.total,
        free: p.free,
        used: p.used,
        highmark: p.highmark,
    });
    StatusReply {
        line: line.to_string(),
        slots,
        memory,
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
