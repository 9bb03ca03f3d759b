//! The async side of the job table ([`super::jobs::JobTable`]): the callers of parked commands
//! wait on channels here, and the device task's clock is passed to the table. The rules
//! themselves (RESULT routing, what HELLO, a lost link and a LOAD do) live in the table.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio::time::Instant;
use wasmbed_agent_proto::session::{SessionError, StartOutcome, StopOutcome};
use wasmbed_agent_proto::{Line, RunResult};
use wasmbed_api::{RunStatus, StartResult, StopResult};

use super::jobs::{Completed, JobTable, Parked, WaiterId};
use super::{DeviceError, JobRecord, Outcome, Reply};

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

/// What the caller of a parked command waits on.
pub(crate) struct Pending {
    pub(crate) id: WaiterId,
    pub(crate) rx: oneshot::Receiver<Outcome>,
    /// The session's deadline for its RESULT.
    pub(crate) deadline: Instant,
    pub(crate) t0: Instant,
    pub(crate) phase: &'static str,
}

/// The job table of one device, shared by its task (which feeds it) and its handles (which
/// time waiters out or drop them), with each waiter's reply channel.
#[derive(Default)]
pub(crate) struct Waiters {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    table: JobTable,
    /// Reply channel and command start of each waiter.
    callers: HashMap<WaiterId, (oneshot::Sender<Outcome>, Instant)>,
}

impl Inner {
    fn complete(&mut self, done: Vec<Completed>) -> usize {
        let n = done.len();
        for (id, result) in done {
            if let Some((tx, t0)) = self.callers.remove(&id) {
                let _ = tx.send(Outcome {
                    result,
                    device_time: t0.elapsed(),
                });
            }
        }
        n
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl Waiters {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("job table lock")
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
        let id = inner.table.park(module_id, phase, parked);
        inner.callers.insert(id, (done, t0));
        Pending {
            id,
            rx,
            deadline,
            t0,
            phase,
        }
    }

    /// Removes a waiter (its caller went away or gave up); returns whether it was still there.
    pub(crate) fn remove(&self, id: WaiterId) -> bool {
        let mut inner = self.lock();
        inner.callers.remove(&id);
        inner.table.remove(id)
    }

    /// The deadline passed: fails the waiter with its session's timeout, unless it was already
    /// completed (then `None`: the outcome is in its channel).
    pub(crate) fn time_out(&self, id: WaiterId) -> Option<Outcome> {
        let mut inner = self.lock();
        let result = inner.table.time_out(id, now())?;
        let (_, t0) = inner.callers.remove(&id)?;
        Some(Outcome {
            result,
            device_time: t0.elapsed(),
        })
    }

    /// Number of live waiters.
    pub(crate) fn len(&self) -> usize {
        self.lock().table.waiting()
    }

    /// Feeds a line heard from the device (see [`JobTable::hear`]). Returns true if a waiter
    /// took the line as its RESULT.
    pub(crate) fn hear(&self, line: &Line, module: Option<&str>) -> bool {
        let mut inner = self.lock();
        // Callers that went away without removing their waiter (their future was dropped).
        let gone: Vec<WaiterId> = inner
            .callers
            .iter()
            .filter(|(_, (tx, _))| tx.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            inner.callers.remove(&id);
            inner.table.remove(id);
        }
        let done = inner.table.hear(line, module, now());
        inner.complete(done) > 0
    }

    /// A LOAD cleared `module_id`'s slot; returns how many waiters failed.
    pub(crate) fn slot_cleared(&self, module_id: &str, by: &str) -> usize {
        let mut inner = self.lock();
        let done = inner.table.slot_cleared(module_id, by, now());
        inner.complete(done)
    }

    /// The device rebooted.
    pub(crate) fn rebooted(&self, hello: &str) {
        let mut inner = self.lock();
        let done = inner.table.rebooted(hello, now());
        inner.complete(done);
    }

    /// The link dropped.
    pub(crate) fn link_lost(&self, reason: &str) {
        let mut inner = self.lock();
        let done = inner.table.link_lost(reason);
        inner.complete(done);
    }

    /// A job was started.
    pub(crate) fn started(&self, module_id: &str, func: Option<String>) {
        self.lock().table.started(module_id, func, now());
    }

    /// A RESULT for the job records (`log_seq`: it went to the device log, late).
    pub(crate) fn result(&self, r: &RunResult, raw: &str, log_seq: Option<u64>) {
        self.lock().table.result(r, raw, log_seq, now());
    }

    /// STATUS shows these modules running.
    pub(crate) fn running_on_device<'a>(&self, modules: impl IntoIterator<Item = &'a str>) {
        self.lock().table.running_on_device(modules);
    }

    /// The module was unloaded.
    pub(crate) fn unloaded(&self, module_id: &str) {
        self.lock().table.unloaded(module_id);
    }

    /// The job records.
    pub(crate) fn jobs(&self) -> BTreeMap<String, JobRecord> {
        self.lock().table.jobs().clone()
    }
}

/// Removes its waiter when the caller stops waiting (reply, timeout, or the future is dropped
/// because the host went away).
pub(crate) struct WaitGuard {
    pub(crate) waiters: Arc<Waiters>,
    pub(crate) id: WaiterId,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.waiters.remove(self.id);
    }
}
