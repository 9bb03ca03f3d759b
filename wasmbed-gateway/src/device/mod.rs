//! Devices: one task per device owns its link and runs its commands one at a time.

mod followup;
mod handshake;
mod jobs;
pub mod lease;
mod log;
mod reply;
mod task;
mod upload;
mod wait;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use wasmbed_api::{InfoResult, MemoryStats, SlotInfo, StartResult, StopResult, UnloadResult};

pub use log::{DeviceLog, LogEntry, LogKind};
pub use task::{spawn_device, DeviceOptions};

use crate::pipeline::{AotTarget, DeviceCaps};

/// A command for a device, as the host API asked for it (validated by the task before any byte
/// is sent).
#[derive(Debug, Clone)]
pub enum Request {
    /// Re-read the capabilities (`INFO`, or v1 fallback).
    Info,
    /// `STATUS`.
    Status,
    /// Upload a module (already validated and built).
    Deploy(DeployRequest),
    /// `START`.
    Start(StartRequest),
    /// `STOP`.
    Stop(StopRequest),
    /// `UNLOAD` (v2).
    Unload {
        /// The slot.
        module_id: String,
    },
}

/// Upload parameters.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// Target slot.
    pub module_id: String,
    /// Module bytes.
    pub bytes: Arc<Vec<u8>>,
    /// `replace=1`.
    pub replace: bool,
    /// `replace_victim=`.
    pub replace_victim: Option<String>,
    /// Upload even when STATUS shows the same size and CRC.
    pub force: bool,
    /// Version to sign with (the gateway's key, for devices that check signatures).
    pub version: u32,
    /// A signature made elsewhere: sent as-is to a device that checks signatures.
    pub signature: Option<wasmbed_agent_proto::ModuleSignature>,
}

/// START parameters.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// Module.
    pub module_id: String,
    /// Export (`None` = device default `app_main`).
    pub func: Option<String>,
    /// Up to 4 i32 arguments.
    pub args: Vec<i32>,
    /// Wait for the final RESULT.
    pub wait_result: bool,
    /// Deadline for the final RESULT.
    pub result_timeout: Duration,
}

/// STOP parameters.
#[derive(Debug, Clone)]
pub struct StopRequest {
    /// Module.
    pub module_id: String,
    /// Wait for the RESULT after `STOP_OK status=PENDING`.
    pub wait: bool,
    /// Deadline for that RESULT.
    pub result_timeout: Duration,
}

/// Progress of a long command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes acknowledged so far.
    pub done: u64,
    /// Total bytes.
    pub total: u64,
}

/// A device's answer, as the typed results of the host API (`wasmbed-api`).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// INFO fields (`proto: 1` and nulls for legacy firmware).
    Info(Box<InfoResult>),
    /// STATUS: the line and its slots and memory.
    Status(StatusReply),
    /// A finished upload (or a skipped one).
    Loaded(Loaded),
    /// START: `START_OK` or the RESULT, typed.
    Started(StartResult),
    /// STOP: the final line and its status.
    Stopped(StopResult),
    /// UNLOAD_OK.
    Unloaded(UnloadResult),
}

/// STATUS, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReply {
    /// The `STATUS_OK` line.
    pub line: String,
    /// The slots in use.
    pub slots: Vec<SlotInfo>,
    /// Memory pool figures, when reported.
    pub memory: Option<MemoryStats>,
}

/// A finished upload (or a skipped one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The `LOAD_OK` line (or a note when skipped).
    pub line: String,
    /// True when the device already held the module.
    pub skipped: bool,
    /// True when the chunked v2 upload was used.
    pub chunked: bool,
    /// Time spent sending payload bytes.
    pub transfer: Duration,
}

impl Reply {
    /// The device line the reply stands for (for INFO, the `INFO_OK` line if there was one).
    pub fn line(&self) -> &str {
        match self {
            Reply::Info(i) => i.line.as_deref().unwrap_or(""),
            Reply::Status(s) => &s.line,
            Reply::Loaded(l) => &l.line,
            Reply::Started(s) => &s.line,
            Reply::Stopped(s) => &s.line,
            Reply::Unloaded(u) => &u.line,
        }
    }
}

/// Why a device command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// A field would not encode (injection, too long): nothing was sent.
    #[error(transparent)]
    BadRequest(#[from] wasmbed_agent_proto::InvalidField),
    /// The device cannot take commands now.
    #[error("device offline: {0}")]
    Offline(OfflineReason),
    /// The link dropped during the command.
    #[error("link lost during {phase}: {source}")]
    LinkLost {
        /// What was going on.
        phase: String,
        /// The IO error.
        #[source]
        source: LinkIoError,
    },
    /// A deadline passed.
    #[error("timeout {phase} (last line heard: {})", last_line.as_deref().unwrap_or("none"))]
    Timeout {
        /// What was awaited.
        phase: String,
        /// The last line the device sent.
        last_line: Option<String>,
    },
    /// The device answered with an error line.
    #[error("{line}")]
    Rejected {
        /// The line (`LOAD_ERR …`, `RESULT status=NO_MODULE`, …).
        line: String,
        /// RESULT status, when it was a RESULT line.
        status: Option<String>,
    },
    /// The device rebooted (HELLO) during the command.
    #[error("device rebooted during {phase}: {line}")]
    Rebooted {
        /// What was going on.
        phase: String,
        /// The HELLO line.
        line: String,
    },
    /// The job was killed by a command that reports no RESULT for it (a LOAD of its module with
    /// `replace=1`, or naming it as the victim): its RESULT will never come.
    #[error("the job was killed during {phase} by {by}; the agent reports no RESULT for it")]
    Killed {
        /// `START` or `STOP`.
        phase: String,
        /// What killed it.
        by: String,
    },
    /// The device's answers broke the protocol: a reply contradicting the request, or a chunk
    /// refused too many times in a row.
    #[error(transparent)]
    Protocol(Box<wasmbed_agent_proto::SessionError>),
    /// The command is not supported by this device's firmware.
    #[error("{0}")]
    Unsupported(String),
    /// The host closed its connection during an upload: the upload was stopped and the
    /// partial module discarded (`UNLOAD` of the slot).
    #[error("the host went away during {phase}: the upload was cancelled and its partial module discarded")]
    Cancelled {
        /// `LOAD`.
        phase: String,
    },
    /// The device's identity does not allow the command (pending, mismatch, a failed proof):
    /// docs/SECURITY.md "Device identity".
    #[error("{}", .0.message)]
    Identity(crate::identity::Refused),
    /// The host closed its connection (or its sending side) while the command waited for its
    /// RESULT: the wait was dropped (the job itself keeps running on the device).
    #[error("the host went away while {phase} waited for its RESULT; the wait was dropped (the job keeps running)")]
    HostGone {
        /// `START` or `STOP`.
        phase: String,
    },
    /// The device said HELLO during its handshake more often than the gateway restarts it
    /// (docs/PROTOCOL.md "Handshake restart"): what it is stays unknown. The text says so, with
    /// its last HELLO and what to do.
    #[error("{0}")]
    KeepsRebooting(String),
}

impl DeviceError {
    /// What to do next, when this error knows better than its host API code's own help text.
    pub fn help(&self) -> Option<String> {
        match self {
            DeviceError::Timeout { phase, .. } if phase == "waiting for RESULT" => Some(
                "the job is still running: raise result_timeout_ms (wasmbed-host: --result-timeout \
                 SECONDS) or stop it with `wasmbed-host stop --module-id ID`"
                    .into(),
            ),
            DeviceError::Timeout { phase, .. } if phase == "waiting for RESULT (stop)" => Some(
                "the job did not end after STOP: raise result_timeout_ms (wasmbed-host stop \
                 --result-timeout SECONDS), or unload the module (`wasmbed-host unload`)"
                    .into(),
            ),
            DeviceError::Timeout { phase, .. } if phase.starts_with("waiting for INFO") => Some(
                "the device did not answer INFO, the first command the gateway sends on a link: \
                 check that it runs the Wasmbed agent (not other firmware or a bootloader), that \
                 the endpoint's baud matches its UART, and what it printed (`wasmbed-host logs`); \
                 the gateway asks again at the next command or when the device sends a line"
                    .into(),
            ),
            DeviceError::Timeout { .. } => Some(
                "the device did not answer within the protocol deadline (docs/PROTOCOL.md, \
                 \"Timeouts\"; uploads scale with the endpoint's `baud`): check that it runs the \
                 agent (`wasmbed-host logs`) and that the endpoint's baud is right"
                    .into(),
            ),
            DeviceError::Rejected { line, .. } => rejected_help(line),
            DeviceError::HostGone { .. } => {
                Some("keep the connection open until the reply arrives".into())
            }
            DeviceError::Killed { .. } => Some(
                "a LOAD replaced the module while the job ran: start it again if needed".into(),
            ),
            DeviceError::Identity(r) => Some(r.help.clone()),
            DeviceError::Offline(OfflineReason::Fenced(_)) => Some(
                "another gateway of the fleet holds the device's claim now (`wasmbed-host \
                 --fleet … devices` names it): send the request again, the fleet routes it to \
                 the claim's holder"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// Why a device is offline when a command arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfflineReason {
    /// The link cannot be opened; the task retries with backoff.
    CannotConnect {
        /// The endpoint (`tcp:…`, `serial:…`, `usb:…`).
        endpoint: String,
        /// What opening it did.
        cause: ConnectFailure,
        /// The USB serial ports present (serial and `usb:` endpoints), one summary line each.
        candidates: Vec<String>,
    },
    /// The device's task has ended (the gateway is shutting down).
    TaskStopped,
    /// The device is fleet-claimed and this gateway may not drive it now (the message of
    /// [`lease::Lease`]): nothing was written to it.
    Fenced(String),
}

/// How opening a device link failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectFailure {
    /// Not open within `connect_timeout`.
    TimedOut,
    /// The open failed.
    Failed(LinkIoError),
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectFailure::TimedOut => f.write_str("connect timed out"),
            ConnectFailure::Failed(e) => e.fmt(f),
        }
    }
}

impl std::fmt::Display for OfflineReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OfflineReason::CannotConnect {
                endpoint,
                cause,
                candidates,
            } => {
                write!(f, "{endpoint} ({cause})")?;
                if !candidates.is_empty() {
                    write!(f, "; USB serial ports present: {}", candidates.join("; "))?;
                }
                Ok(())
            }
            OfflineReason::TaskStopped => f.write_str("device task stopped"),
            OfflineReason::Fenced(why) => write!(f, "not driven by this gateway: {why}"),
        }
    }
}

/// An IO failure of a device link: shared by every command and waiter it failed (cheap to
/// clone), compared by kind and text.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct LinkIoError(Arc<std::io::Error>);

impl LinkIoError {
    /// The IO error.
    pub fn io(&self) -> &std::io::Error {
        &self.0
    }
}

impl From<std::io::Error> for LinkIoError {
    fn from(e: std::io::Error) -> Self {
        LinkIoError(Arc::new(e))
    }
}

impl PartialEq for LinkIoError {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind() && self.0.to_string() == other.0.to_string()
    }
}

impl Eq for LinkIoError {}

/// Help for a device's refusal, by what the line says.
fn rejected_help(line: &str) -> Option<String> {
    let module = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("module_id="))
        .unwrap_or("ID");
    let has = |s: &str| line.split_whitespace().any(|w| w == s);
    if has("status=BUSY") || has("code=BUSY") {
        Some(format!(
            "the module is running a job: stop it with `wasmbed-host stop --module-id {module} \
             --wait` (a deploy with --replace kills it instead)"
        ))
    } else if has("code=NO_SLOT") || has("code=FULL") {
        Some(
            "every slot is in use: free one with `wasmbed-host unload --module-id ID` or evict \
             one with `--replace-victim ID` (`wasmbed-host status` lists them)"
                .into(),
        )
    } else if has("code=BAD_VICTIM") {
        Some("the --replace-victim module is not loaded: `wasmbed-host status` lists them".into())
    } else if has("status=NO_MODULE") {
        Some(format!(
            "nothing is loaded as {module}: deploy it first (`wasmbed-host deploy`)"
        ))
    } else {
        None
    }
}

/// Live state of a device, readable without asking its task.
#[derive(Debug, Clone, Default)]
pub struct DeviceState {
    /// Answering: the link is up, the device answered the connect-time INFO on this link, and
    /// it did not leave a request unanswered since it last said something.
    pub online: bool,
    /// Link throughput the deadlines assume, in bytes/s (line speed / 10), once connected.
    pub link_bytes_per_sec: u32,
    /// Why the device is not online (the last connect error, why the link dropped, no handshake
    /// yet, a request unanswered); `None` while online.
    pub offline_reason: Option<String>,
    /// While offline on a serial or `usb:` endpoint: the USB serial ports present, one summary
    /// line each, with the `usb:` endpoint that selects each.
    pub candidates: Vec<String>,
    /// When the device last said anything.
    pub last_seen: Option<Instant>,
    /// The device answered INFO on the current link.
    pub handshake: bool,
    /// Board name (INFO `board=` or HELLO `device_id=`).
    pub board: Option<String>,
    /// Firmware version.
    pub firmware: Option<String>,
    /// Protocol version (1 or 2), once known.
    pub proto: Option<u32>,
    /// Slots in use per the last STATUS.
    pub slots_used: Option<u32>,
    /// Slots available.
    pub slots_total: Option<u32>,
    /// Capabilities for validation.
    pub caps: DeviceCaps,
    /// AOT target for builds (config overrides INFO).
    pub aot: Option<AotTarget>,
    /// INFO as the host API reports it.
    pub info: Option<InfoResult>,
    /// INFO `sig=` (`required`/`optional`): the device checks module signatures; with the AOT
    /// target its signatures name (docs/PROTOCOL.md "Signed modules").
    pub sig_mode: Option<String>,
    /// The exact AOT target of the device (INFO), for AOT signatures.
    pub sig_target: Option<wasmbed_agent_proto::AotTarget>,
    /// The last job of each module the gateway started, by module id, as the host API shows it
    /// (filled by [`DeviceHandle::snapshot`] from the device's job table).
    pub jobs: std::collections::BTreeMap<String, JobRecord>,
    /// What the device showed of its identity on the current link (or the last one).
    pub identity: crate::identity::Seen,
}

pub use wasmbed_api::{JobRecord, JobState};

pub(crate) struct Job {
    pub(crate) request: Request,
    pub(crate) progress: Option<mpsc::UnboundedSender<Progress>>,
    pub(crate) reply: oneshot::Sender<JobReply>,
    /// Cancelled when the host that asked went away (uploads only): the task drops the upload
    /// and discards its partial module (docs/HOST-API.md, "Cancelling").
    pub(crate) cancel: CancellationToken,
}

/// How the device task answers a job: done, or (START with `wait_result`, STOP with `wait`)
/// first reply heard and the RESULT awaited outside the command queue.
pub(crate) enum JobReply {
    Done(Outcome),
    Pending(wait::Pending),
}

/// A command's result with the time spent on device round trips.
#[derive(Debug, Clone)]
pub struct Outcome<T = Reply> {
    /// The reply or the error.
    pub result: Result<T, DeviceError>,
    /// Command line out to final reply in, summed over the command's round trips.
    pub device_time: Duration,
}

/// A handle to a device task; cheap to clone.
#[derive(Clone)]
pub struct DeviceHandle {
    /// Logical name.
    pub name: String,
    /// Endpoint description.
    pub endpoint: String,
    /// Unsolicited lines.
    pub log: Arc<DeviceLog>,
    /// Live state.
    pub state: Arc<Mutex<DeviceState>>,
    /// Pinned identity keys and the enrollment policy (shared by the gateway's devices).
    pub identity: Arc<crate::identity::IdentityStore>,
    /// Whether the task may write jobs' commands (a fleet-claimed device: only while this
    /// gateway holds the claim).
    pub lease: lease::SharedLease,
    tx: mpsc::Sender<Job>,
    waiters: Arc<wait::Waiters>,
}

/// An outcome narrowed to the reply its request has; any other reply is a gateway bug.
fn typed<T>(o: Outcome, pick: impl FnOnce(Reply) -> Result<T, Reply>) -> Outcome<T> {
    Outcome {
        result: o.result.and_then(|r| {
            pick(r).map_err(|other| {
                DeviceError::Unsupported(format!("unexpected device reply: {}", other.line()))
            })
        }),
        device_time: o.device_time,
    }
}

impl std::fmt::Debug for DeviceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceHandle")
            .field("name", &self.name)
            .finish()
    }
}

impl DeviceHandle {
    /// Queues a command behind earlier ones and waits for its outcome.
    pub async fn call(
        &self,
        request: Request,
        progress: Option<mpsc::UnboundedSender<Progress>>,
    ) -> Outcome {
        self.call_until(request, progress, std::future::pending())
            .await
    }

    /// Like [`DeviceHandle::call`]; when the command waits for a RESULT after its first reply
    /// (START with `wait_result`, STOP with `wait`: the device's queue is free by then), that
    /// wait ends early with [`DeviceError::HostGone`] if `host_gone` completes first.
    pub async fn call_until(
        &self,
        request: Request,
        progress: Option<mpsc::UnboundedSender<Progress>>,
        host_gone: impl std::future::Future<Output = ()>,
    ) -> Outcome {
        let (reply, mut rx) = oneshot::channel();
        // An upload is cancelled when its host goes away; other commands run to their end.
        let cancellable = matches!(request, Request::Deploy(_));
        let cancel = CancellationToken::new();
        let job = Job {
            request,
            progress,
            reply,
            cancel: cancel.clone(),
        };
        tokio::pin!(host_gone);
        let gone = || Outcome {
            result: Err(DeviceError::Offline(OfflineReason::TaskStopped)),
            device_time: Duration::ZERO,
        };
        if self.tx.send(job).await.is_err() {
            return gone();
        }
        let first = tokio::select! {
            r = &mut rx => r,
            _ = &mut host_gone, if cancellable => {
                cancel.cancel();
                // The task answers once the partial upload is discarded.
                rx.await
            }
        };
        let pending = match first {
            Ok(JobReply::Done(outcome)) => return outcome,
            Ok(JobReply::Pending(p)) => p,
            Err(_) => return gone(),
        };
        // Dropping this (reply, timeout, or this future dropped) removes the waiter.
        let _guard = wait::WaitGuard {
            waiters: self.waiters.clone(),
            id: pending.id,
        };
        let mut rx = pending.rx;
        tokio::select! {
            biased;
            done = &mut rx => done.unwrap_or_else(|_| gone()),
            _ = tokio::time::sleep_until(pending.deadline) => {
                match self.waiters.time_out(pending.id) {
                    Some(outcome) => outcome,
                    // Completed at the deadline: the outcome is in the channel.
                    None => rx.try_recv().unwrap_or_else(|_| gone()),
                }
            }
            _ = &mut host_gone => Outcome {
                result: Err(DeviceError::HostGone { phase: pending.phase.into() }),
                device_time: pending.t0.elapsed(),
            },
        }
    }

    /// Re-reads and returns the device's INFO (v1 firmware: `proto: 1` and nulls).
    pub async fn info(&self) -> Outcome<InfoResult> {
        typed(self.call(Request::Info, None).await, |r| match r {
            Reply::Info(i) => Ok(*i),
            other => Err(other),
        })
    }

    /// STATUS.
    pub async fn status(&self) -> Outcome<StatusReply> {
        typed(self.call(Request::Status, None).await, |r| match r {
            Reply::Status(s) => Ok(s),
            other => Err(other),
        })
    }

    /// Uploads a module (skipped when the device holds the same one, unless `force`). When
    /// `host_gone` completes first the upload is cancelled: the task stops sending, discards
    /// the partial module and answers [`DeviceError::Cancelled`].
    pub async fn deploy(
        &self,
        req: DeployRequest,
        progress: Option<mpsc::UnboundedSender<Progress>>,
        host_gone: impl std::future::Future<Output = ()>,
    ) -> Outcome<Loaded> {
        typed(
            self.call_until(Request::Deploy(req), progress, host_gone)
                .await,
            |r| match r {
                Reply::Loaded(l) => Ok(l),
                other => Err(other),
            },
        )
    }

    /// START; with `wait_result` the RESULT is awaited outside the device's queue, and that
    /// wait ends early with [`DeviceError::HostGone`] when `host_gone` completes.
    pub async fn start(
        &self,
        req: StartRequest,
        host_gone: impl std::future::Future<Output = ()>,
    ) -> Outcome<StartResult> {
        let o = self.call_until(Request::Start(req), None, host_gone).await;
        typed(o, |r| match r {
            Reply::Started(s) => Ok(s),
            other => Err(other),
        })
    }

    /// STOP; with `wait` the RESULT after `STOP_OK status=PENDING` is awaited outside the
    /// device's queue (ending early when `host_gone` completes).
    pub async fn stop(
        &self,
        req: StopRequest,
        host_gone: impl std::future::Future<Output = ()>,
    ) -> Outcome<StopResult> {
        let o = self.call_until(Request::Stop(req), None, host_gone).await;
        typed(o, |r| match r {
            Reply::Stopped(s) => Ok(s),
            other => Err(other),
        })
    }

    /// UNLOAD (protocol v2).
    pub async fn unload(&self, module_id: String) -> Outcome<UnloadResult> {
        typed(
            self.call(Request::Unload { module_id }, None).await,
            |r| match r {
                Reply::Unloaded(u) => Ok(u),
                other => Err(other),
            },
        )
    }

    /// Commands parked waiting for their RESULT (for tests and diagnostics).
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// The device's identity as the host API shows it.
    pub fn identity_view(&self) -> wasmbed_api::DeviceIdentity {
        let seen = self.state.lock().expect("state lock").identity.clone();
        self.identity.view(&self.name, &seen)
    }

    /// `approve`: pins the device's identity key (see [`crate::identity::IdentityStore::approve`]).
    pub fn approve(
        &self,
        fingerprint: Option<&str>,
    ) -> Result<wasmbed_api::DeviceIdentity, crate::identity::EnrollError> {
        let seen = self.state.lock().expect("state lock").identity.clone();
        self.identity.approve(&self.name, &seen, fingerprint)
    }

    /// `forget`: removes the device's pinned identity key.
    pub fn forget(&self) -> Result<wasmbed_api::DeviceIdentity, crate::identity::EnrollError> {
        let seen = self.state.lock().expect("state lock").identity.clone();
        self.identity.forget(&self.name, &seen)
    }

    /// A snapshot of the live state.
    pub fn snapshot(&self) -> DeviceState {
        let mut s = self.state.lock().expect("state lock").clone();
        s.jobs = self.waiters.jobs();
        s
    }
}
