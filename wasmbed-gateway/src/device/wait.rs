//! The async side of the job table ([`super::jobs::JobTable`]): the callers of parked commands
//! wait on channels here, and the device task's clock is passed to the table. The rules
//! themselves (RESULT routing, what HELLO, a lost link and a LOAD do) live in the table.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio::time::Instant;
use wasmbed_agent_proto::session::{SessionError, StartOutcome, StopOutcome};
use wasmbed_agent_proto::Line;

use super::jobs::{Completed, Heard, JobTable, Parked, WaiterId};
use super::{JobRecord, LinkIoError, Outcome};

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
    /// Drops the waiters whose callers went away without removing them (their future was
    /// dropped).
    fn drop_gone(&mut self) {
        let gone: Vec<WaiterId> = self
            .callers
            .iter()
            .filter(|(_, (tx, _))| tx.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.callers.remove(&id);
            self.table.remove(id);
        }
    }

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
    /// A LOAD cleared `module_id`'s slot; returns how many waiters failed.
    pub(crate) fn slot_cleared(&self, module_id: &str, by: &str) -> usize {
        let mut inner = self.lock();
        let done = inner.table.slot_cleared(module_id, by, now());
        inner.complete(done)
    }

    /// The link dropped.
    pub(crate) fn link_lost(&self, cause: &LinkIoError) {
        let mut inner = self.lock();
        let done = inner.table.link_lost(cause);
        inner.complete(done);
    }

    /// A job was started (its START parked for the RESULT).
    pub(crate) fn started(&self, module_id: &str, func: Option<String>) {
        self.lock().table.started(module_id, func, now());
    }

    /// A START was answered on the link (see [`JobTable::start_answered`]).
    pub(crate) fn start_answered(
        &self,
        module_id: &str,
        func: Option<String>,
        outcome: &Result<StartOutcome, SessionError>,
    ) {
        self.lock()
            .table
            .start_answered(module_id, func, outcome, now());
    }

    /// A STOP was answered on the link (see [`JobTable::stop_answered`]).
    pub(crate) fn stop_answered(
        &self,
        module_id: &str,
        outcome: &Result<StopOutcome, SessionError>,
    ) {
        let mut inner = self.lock();
        let done = inner.table.stop_answered(module_id, outcome, now());
        inner.complete(done);
    }

    /// A line heard outside a command (see [`JobTable::unasked`]): where it goes.
    pub(crate) fn unasked(&self, line: &Line) -> Heard {
        let mut inner = self.lock();
        inner.drop_gone();
        let (heard, done) = inner.table.unasked(line, now());
        inner.complete(done);
        heard
    }

    /// A RESULT nobody waited for went to the device log as entry `log_seq`.
    pub(crate) fn late_result(&self, line: &Line, log_seq: u64) {
        self.lock().table.late_result(line, log_seq, now());
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
        self.lock().table.jobs(now())
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
