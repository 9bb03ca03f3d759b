//! The device task: owns one persistent link and drives it. It runs queued commands one at a
//! time through the protocol crate's sessions and hands what the device says unasked to the job
//! table. The decisions are sans-IO and unit-tested where they live: the handshake
//! ([`super::handshake`]), the life of jobs and RESULT routing ([`super::jobs`]), uploads
//! ([`super::upload`]), replies and errors ([`super::reply`]), what follows a job
//! ([`super::followup`]), BAUD switching (the protocol crate). This file and its submodules only
//! do the IO, the timers and the channels:
//! - `connect.rs`: opening the link, backoff, answering queued jobs while offline;
//! - `drive.rs`: one session over the link, and what the device says unasked;
//! - `refresh.rs`: the connect-time handshake, STATUS re-reads, resynchronisation;
//! - `exec.rs`: INFO, STATUS, START, STOP, UNLOAD; `deploy.rs`: uploads;
//! - `identify.rs`: the identity challenge; `speed.rs`: BAUD switching around uploads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use wasmbed_agent_proto::session::{StatusSession, Timeouts};
use wasmbed_agent_proto::{Correlation, Decoder};

use super::followup::{follow_up, LinkFacts};
use super::reply::{drive_error, request_phase};
use super::wait::Waiters;
use super::{
    DeviceError, DeviceHandle, DeviceLog, DeviceState, Job, JobReply, LinkIoError, Outcome, Request,
};
use crate::link::{BoxLink, SharedConnector};
use crate::pipeline::AotTarget;

mod compress;
mod connect;
mod deploy;
mod drive;
mod exec;
mod identify;
mod refresh;
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
    /// The link has no line speed of its own (a TCP bridge without `?baud=`): unless INFO
    /// reports a `baud=`, uploads go in the largest chunks the agent takes instead of half a
    /// second of assumed line time each. Default `false` (paced).
    pub unpaced: bool,
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
            unpaced: false,
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
    let lease = super::lease::SharedLease::default();
    let handle = DeviceHandle {
        name: opts.name.clone(),
        endpoint: opts.connector.describe(),
        log: log.clone(),
        state: state.clone(),
        identity: opts.identity.clone(),
        lease: lease.clone(),
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
        lease,
        in_job: false,
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
    /// Whether a job's commands may be written now (fleet fencing; see `device/lease.rs`).
    lease: super::lease::SharedLease,
    /// A job's commands are being written: each write checks `lease` first.
    in_job: bool,
}

/// What a job yields: a reply now, or a session parked until its RESULT.
enum Exec {
    Done(Result<super::Reply, DeviceError>, Duration),
    Pending(super::wait::Pending),
}

/// How a drive ended badly at the IO level.
enum DriveError {
    Io(std::io::Error),
    /// The device said HELLO (the line) during a session asked to stop at one.
    Rebooted(wasmbed_agent_proto::Line),
    /// A job's write refused by the lease (fleet fencing): nothing more was written.
    Fenced(String),
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

    fn proto(&self) -> Option<u32> {
        self.state.lock().expect("state lock").proto
    }

    /// Serves one connected link. `Some(cause)` when the link is lost, `None` when all handles
    /// are gone.
    async fn serve(&mut self, mut link: BoxLink) -> Option<std::io::Error> {
        if let Err(e) = self.refresh(&mut link, None).await {
            return Some(e);
        }
        let mut health = self.opts.health_interval.map(|d| {
            let mut i = tokio::time::interval_at(Instant::now() + d, d);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        loop {
            // Lines that came with the last answer (a HELLO in the read that brought the
            // handshake's STATUS_OK) are used now, not when the device next says something.
            if let Some(hello) = self.idle_bytes(&[]) {
                if let Err(e) = self.refresh(&mut link, Some(hello)).await {
                    return Some(e);
                }
                continue;
            }
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
                    if let Some(hello) = self.idle_bytes(&[]) {
                        if let Err(e) = self.refresh(&mut link, Some(hello)).await {
                            return Some(e);
                        }
                    }
                }
                read = link.read(&mut self.buf) => match read {
                    Ok(0) => return Some(closed()),
                    Ok(n) => {
                        let data = self.buf[..n].to_vec();
                        if let Some(hello) = self.idle_bytes(&data) {
                            if let Err(e) = self.refresh(&mut link, Some(hello)).await {
                                return Some(e);
                            }
                        }
                    }
                    Err(e) => return Some(e),
                },
                _ = tick => {
                    let s = StatusSession::new(now_std(), &self.opts.timeouts);
                    match self.drive(&mut link, s, None, true).await {
                        Ok((Ok(out), _)) => self.record_status(&out.status),
                        Ok((Err(e), _)) => {
                            tracing::warn!(device = %self.opts.name, "health check: {e}");
                            self.not_answering(&e.to_string());
                        }
                        Err(DriveError::Io(e)) => return Some(e),
                        // it rebooted: what it is and holds is asked again
                        Err(DriveError::Rebooted(hello)) => {
                            if let Err(e) = self.refresh(&mut link, Some(hello)).await {
                                return Some(e);
                            }
                        }
                        // between jobs the lease is not asked: cannot happen
                        Err(DriveError::Fenced(_)) => {}
                    }
                }
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
        // No INFO answered on this link yet: ask again first, so a device that does not answer
        // INFO is reported as such (not as the command's own timeout), and one that came up
        // late is known (natives, limits, identity) before its first command.
        let unanswered = !self.state.lock().expect("state lock").handshake;
        if unanswered && !matches!(request, Request::Info) {
            let failed = match self.refresh(link, None).await {
                Ok(None) => None,
                Ok(Some(e)) => Some((e, None)),
                Err(e) => {
                    let lost = LinkIoError::from(e);
                    let again = std::io::Error::new(lost.io().kind(), lost.to_string());
                    Some((drive_error("INFO", Ok(lost)), Some(again)))
                }
            };
            if let Some((e, lost)) = failed {
                let _ = reply.send(JobReply::Done(Outcome {
                    result: Err(e),
                    device_time: Duration::ZERO,
                }));
                return lost;
            }
        }
        // Fleet fencing: a job queued while the claim moved is refused before its first write.
        if let Err(why) = self.lease.prove().await {
            let _ = reply.send(JobReply::Done(Outcome {
                result: Err(DeviceError::Offline(super::OfflineReason::Fenced(why))),
                device_time: Duration::ZERO,
            }));
            return None;
        }
        if let Err(e) = self.identity_gate(&request) {
            let _ = reply.send(JobReply::Done(Outcome {
                result: Err(e),
                device_time: Duration::ZERO,
            }));
            return None;
        }
        let phase = request_phase(&request);
        let changes_slots = matches!(request, Request::Deploy(_) | Request::Unload { .. });
        self.in_job = true;
        let executed = self.exec(link, request, progress.as_ref(), &cancel).await;
        self.in_job = false;
        let (result, device_time, lost) = match executed {
            Ok(Exec::Done(r, t)) => (r, t, None),
            Err(DriveError::Fenced(why)) => (
                Err(DeviceError::Offline(super::OfflineReason::Fenced(why))),
                Duration::ZERO,
                None,
            ),
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
                (
                    Err(drive_error(phase, Ok(lost))),
                    Duration::ZERO,
                    Some(again),
                )
            }
            Err(DriveError::Rebooted(hello)) => {
                let r = Err(drive_error(phase, Err(hello.raw.clone())));
                // State is re-read after a reboot.
                if let Err(e) = self.refresh(link, Some(hello)).await {
                    let _ = reply.send(JobReply::Done(Outcome {
                        result: r,
                        device_time: Duration::ZERO,
                    }));
                    return Some(e);
                }
                (r, Duration::ZERO, None)
            }
        };
        let facts = LinkFacts {
            lost: lost.is_some(),
            legacy: self.proto() == Some(1),
            correlated: self.correlation.is_on(),
        };
        let next = follow_up(&result, changes_slots, facts);
        if let Some(why) = &next.not_answering {
            self.not_answering(why);
        }
        let _ = reply.send(JobReply::Done(Outcome {
            result,
            device_time,
        }));
        // The caller forwards progress until every sender is gone: release ours now.
        drop(progress);
        if next.resync {
            // Its late answer must not answer the next command: back to line sync first.
            if let Err(e) = self.resync(link).await {
                return Some(e);
            }
        }
        if next.reread_status {
            // After the reply, so the caller does not wait for it: the slots listed by
            // `devices` and `status` reflect the LOAD/UNLOAD before the next command runs.
            if let Err(e) = self.refresh_status(link).await {
                return Some(e);
            }
        }
        lost
    }
}
