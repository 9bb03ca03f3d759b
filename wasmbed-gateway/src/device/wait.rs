//! Waiters: a START (`wait_result`) or STOP (`wait`) whose first reply came and whose RESULT is
//! still to come. The link and the device's command queue are free meanwhile; the device task
//! feeds the lines it hears to the parked sessions of the protocol crate, which decide (as they
//! would on the link) whether a line is their RESULT; the caller owns the deadline.
//!
//! Routing (RESULT lines carry no request id; the protocol crate's
//! [`RunResult::class`](wasmbed_agent_proto::RunResult::class) tells them apart):
//! - an immediate RESULT (`BUSY`, `NO_MODULE`, … — the answer to a START on the link) is never a
//!   waiter's: it is fed to every waiter like any other line, and no parked session takes it;
//! - a run-time RESULT with `module_id=X` goes to module X's waiters only; one without (FW-A
//!   firmware, FW-B's bare `NO_FUNC`/`NO_EXEC_ENV`) goes to the waiters of the only module being
//!   waited on, and to nobody when several modules are;
//! - among X's waiters it goes to the **oldest START** (the agent runs one job per slot, in
//!   order, and writes a job's RESULT before its slot can start the next one, so the oldest
//!   parked START is the job that ended) and to **every STOP** of X (they wait for that end too).
//!
//! Any other line is fed to every waiter (it becomes the last line a timeout names). A reboot or
//! a lost link fails every waiter; a LOAD that clears a slot fails its waiters (the agent kills
//! that job without a RESULT).

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio::time::Instant;
use wasmbed_agent_proto::session::{
    Session, SessionError, StartOutcome, StartSession, StopOutcome, StopSession,
};
use wasmbed_agent_proto::{AgentLine, Item, Line, ResultClass, RunResult};
use wasmbed_api::{RunStatus, StartResult, StopResult};

use super::{DeviceError, Outcome, Reply};

/// A START or STOP session waiting for its RESULT.
#[derive(Debug)]
pub(crate) enum Parked {
    Start(StartSession),
    Stop(StopSession),
}

impl Parked {
    fn feed(&mut self, line: &Line) {
        let now = Instant::now().into_std();
        match self {
            Parked::Start(s) => {
                s.handle_line(now, Item::Line(line.clone()));
                while s.poll_event().is_some() {}
            }
            Parked::Stop(s) => {
                s.handle_line(now, Item::Line(line.clone()));
                while s.poll_event().is_some() {}
            }
        }
    }

    fn deadline(&self) -> Option<std::time::Instant> {
        match self {
            Parked::Start(s) => s.poll_timeout(),
            Parked::Stop(s) => s.poll_timeout(),
        }
    }

    /// The reply, once the session has an outcome.
    fn take_reply(&mut self) -> Option<Result<Reply, DeviceError>> {
        match self {
            Parked::Start(s) => s.take_outcome().map(start_reply),
            Parked::Stop(s) => s.take_outcome().map(stop_reply),
        }
    }

    /// Fails the session with its timeout (phase and last line heard).
    fn time_out(&mut self, now: std::time::Instant) -> Result<Reply, DeviceError> {
        let now = self.deadline().map_or(now, |d| d.max(now));
        match self {
            Parked::Start(s) => s.handle_timeout(now),
            Parked::Stop(s) => s.handle_timeout(now),
        }
        self.take_reply().unwrap_or_else(|| {
            Err(DeviceError::Timeout {
                phase: "waiting for RESULT".into(),
                last_line: None,
            })
        })
    }
}

/// The reply to a START from its session's outcome.
pub(crate) fn start_reply(r: Result<StartOutcome, SessionError>) -> Result<Reply, DeviceError> {
    r.map_err(super::task::session_error).map(|o| {
        Reply::Started(StartResult::new(
            o.line.raw.clone(),
            o.result.as_ref().map(run_result),
        ))
    })
}

/// The reply to a STOP from its session's outcome.
pub(crate) fn stop_reply(r: Result<StopOutcome, SessionError>) -> Result<Reply, DeviceError> {
    r.map_err(super::task::session_error).map(|o| {
        let status = match (&o.result, &o.status) {
            (Some(r), _) => r.status.to_string(),
            (None, Some(st)) => st.to_string(),
            (None, None) => String::new(),
        };
        Reply::Stopped(StopResult {
            line: o.line.raw.clone(),
            status,
            forced: o.result.as_ref().is_some_and(|r| r.forced),
        })
    })
}

/// A device RESULT as the host API's typed RESULT.
pub(crate) fn run_result(r: &RunResult) -> wasmbed_api::RunResult {
    wasmbed_api::RunResult {
        status: RunStatus::from_wire(&r.status.to_string()),
        ret: r.ret_i32.map(|v| v as i32),
        ret_u32: r.ret_i32,
        msg: r.msg.clone(),
        forced: r.forced,
    }
}

struct Waiter {
    id: u64,
    module_id: String,
    /// `START` or `STOP` (named when the link is lost).
    phase: &'static str,
    /// When the command was written (device time runs from here to the RESULT).
    t0: Instant,
    parked: Parked,
    done: oneshot::Sender<Outcome>,
}

impl Waiter {
    fn complete(self, result: Result<Reply, DeviceError>) {
        let _ = self.done.send(Outcome {
            result,
            device_time: self.t0.elapsed(),
        });
    }
}

/// What the caller of a parked command waits on.
pub(crate) struct Pending {
    pub(crate) id: u64,
    pub(crate) rx: oneshot::Receiver<Outcome>,
    /// The session's deadline for its RESULT.
    pub(crate) deadline: Instant,
    pub(crate) t0: Instant,
    pub(crate) phase: &'static str,
}

/// The waiters of one device, shared by its task (which completes them) and its handles (which
/// time them out or drop them).
#[derive(Default)]
pub(crate) struct Waiters {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    list: Vec<Waiter>,
}

impl Waiters {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("waiters lock")
    }

    /// Parks a session that is waiting for its RESULT.
    pub(crate) fn park(
        &self,
        module_id: &str,
        phase: &'static str,
        t0: Instant,
        parked: Parked,
    ) -> Pending {
        let (done, rx) = oneshot::channel();
        let deadline = parked
            .deadline()
            .map_or_else(Instant::now, Instant::from_std);
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.list.push(Waiter {
            id,
            module_id: module_id.to_string(),
            phase,
            t0,
            parked,
            done,
        });
        Pending {
            id,
            rx,
            deadline,
            t0,
            phase,
        }
    }

    /// Removes a waiter (its caller went away or gave up); returns whether it was still there.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut inner = self.lock();
        let before = inner.list.len();
        inner.list.retain(|w| w.id != id);
        inner.list.len() != before
    }

    /// The deadline passed: fails the waiter with its session's timeout, unless it was already
    /// completed (then `None`: the outcome is in its channel).
    pub(crate) fn time_out(&self, id: u64) -> Option<Outcome> {
        let mut w = {
            let mut inner = self.lock();
            let i = inner.list.iter().position(|w| w.id == id)?;
            inner.list.remove(i)
        };
        let result = w.parked.time_out(Instant::now().into_std());
        Some(Outcome {
            result,
            device_time: w.t0.elapsed(),
        })
    }

    /// Number of live waiters.
    pub(crate) fn len(&self) -> usize {
        self.lock().list.len()
    }

    /// Feeds a line heard from the device. For a RESULT, `module` is the module it belongs to
    /// when that is known from elsewhere (a STOP session took it); otherwise its `module_id=`
    /// decides. Returns true if a waiter took the line as its RESULT.
    pub(crate) fn hear(&self, line: &Line, module: Option<&str>) -> bool {
        let mut inner = self.lock();
        inner.list.retain(|w| !w.done.is_closed());
        if inner.list.is_empty() {
            return false;
        }
        let target: Option<String> = match &line.msg {
            AgentLine::Result(r) if r.class() == ResultClass::RunTime => {
                match module.or(r.module_id.as_deref()) {
                    Some(m) => Some(m.to_string()),
                    None => {
                        let first = inner.list[0].module_id.clone();
                        if inner.list.iter().all(|w| w.module_id == first) {
                            Some(first)
                        } else {
                            // FW-A RESULT, several modules waited on: it belongs to nobody for sure.
                            return false;
                        }
                    }
                }
            }
            _ => {
                for w in inner.list.iter_mut() {
                    w.parked.feed(line);
                }
                return false;
            }
        };
        let target = target.expect("a RESULT has a target here");
        let mut taken = false;
        // The oldest START of the module (list order is park order) and every STOP of it.
        let mut start_fed = false;
        let mut i = 0;
        while i < inner.list.len() {
            let w = &mut inner.list[i];
            let is_start = matches!(w.parked, Parked::Start(_));
            if w.module_id == target && !(is_start && start_fed) {
                start_fed |= is_start;
                w.parked.feed(line);
                if let Some(result) = w.parked.take_reply() {
                    taken = true;
                    inner.list.remove(i).complete(result);
                    continue;
                }
            }
            i += 1;
        }
        taken
    }

    /// Fails the waiters of `module_id` whose job ended without a RESULT (a LOAD cleared its
    /// slot: the agent kills the job silently). Returns how many there were.
    pub(crate) fn abandon(
        &self,
        module_id: &str,
        err: impl Fn(&'static str) -> DeviceError,
    ) -> usize {
        let list = {
            let mut inner = self.lock();
            let (gone, keep): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut inner.list)
                .into_iter()
                .partition(|w| w.module_id == module_id);
            inner.list = keep;
            gone
        };
        let n = list.len();
        for w in list {
            let e = err(w.phase);
            w.complete(Err(e));
        }
        n
    }

    /// Fails every waiter (reboot, lost link).
    pub(crate) fn fail_all(&self, err: impl Fn(&'static str) -> DeviceError) {
        let list = std::mem::take(&mut self.lock().list);
        for w in list {
            let e = err(w.phase);
            w.complete(Err(e));
        }
    }
}

/// Removes its waiter when the caller stops waiting (reply, timeout, or the future is dropped
/// because the host went away).
pub(crate) struct WaitGuard {
    pub(crate) waiters: Arc<Waiters>,
    pub(crate) id: u64,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.waiters.remove(self.id);
    }
}
