//! The life of a job, in one place and without IO: the job records (what `status.jobs` shows)
//! and the waiters (a START with `wait_result` or a STOP with `wait` whose first reply came and
//! whose RESULT is still to come), with time passed in. The device task drives it
//! ([`super::wait`] adds the channels to the callers); the rules are those of docs/HOST-API.md,
//! "Waiting for a RESULT", each a test below.
//!
//! Routing (RESULT lines carry no request id; the protocol crate's
//! [`RunResult::class`](wasmbed_agent_proto::RunResult::class) tells them apart):
//! - an immediate RESULT (`BUSY`, `NO_MODULE`, … — the answer to a START on the link) is never a
//!   waiter's and never ends a job;
//! - a run-time RESULT with `module_id=X` goes to module X's waiters only; one without (FW-A
//!   firmware, FW-B's bare `NO_FUNC`/`NO_EXEC_ENV`) goes to the waiters of the only module being
//!   waited on, and to nobody when several modules are;
//! - among X's waiters it goes to the **oldest START** (the agent runs one job per slot, in
//!   order, and writes a job's RESULT before its slot can start the next one) and to **every
//!   STOP** of X;
//! - any other line is fed to every waiter (it becomes the last line a timeout names);
//! - a reboot (HELLO) fails every waiter and loses every running job; a lost link fails every
//!   waiter; a LOAD that clears a slot fails that module's waiters and loses its job.

use std::collections::BTreeMap;
use std::time::Instant;

use wasmbed_agent_proto::session::{
    Session, SessionError, StartOutcome, StartSession, StopOutcome, StopSession,
};
use wasmbed_agent_proto::{AgentLine, Item, Line, ResultClass, RunResult};
use wasmbed_api::{JobRecord, JobState, RunStatus};

use super::reply::{start_reply, stop_reply};
use super::{DeviceError, LinkIoError, LogKind, Reply};

/// Where a line heard outside a command goes ([`JobTable::unasked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Heard {
    /// A waiter took it as its RESULT: not late, not logged.
    Taken,
    /// To the device log, as this kind.
    Log(LogKind),
}

/// A START or STOP session waiting for its RESULT.
#[derive(Debug)]
pub(crate) enum Parked {
    Start(StartSession),
    Stop(StopSession),
}

impl Parked {
    fn feed(&mut self, line: &Line, now: Instant) {
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

    /// When the session gives up waiting for its RESULT.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self {
            Parked::Start(s) => s.poll_timeout(),
            Parked::Stop(s) => s.poll_timeout(),
        }
    }

    fn take_reply(&mut self) -> Option<Result<Reply, DeviceError>> {
        match self {
            Parked::Start(s) => s.take_outcome().map(start_reply),
            Parked::Stop(s) => s.take_outcome().map(stop_reply),
        }
    }

    fn time_out(&mut self, now: Instant) -> Result<Reply, DeviceError> {
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

/// A waiter's id.
pub(crate) type WaiterId = u64;

/// A waiter that is done: its id and its reply.
pub(crate) type Completed = (WaiterId, Result<Reply, DeviceError>);

#[derive(Debug)]
struct Waiter {
    id: WaiterId,
    module_id: String,
    /// `START` or `STOP`.
    phase: &'static str,
    parked: Parked,
}

/// A module's last job: the host API's record (its `started_ms_ago` filled when read) and when
/// it was started.
#[derive(Debug, Clone)]
struct Tracked {
    record: JobRecord,
    started: Instant,
}

impl Tracked {
    /// The job ended (RESULT heard, or lost) at `now`.
    fn end(&mut self, state: JobState, now: Instant) {
        self.record.state = state;
        let ms = now.saturating_duration_since(self.started).as_millis();
        self.record.duration_ms = Some(ms as u64);
    }
}

/// Job records and waiters of one device.
#[derive(Debug, Default)]
pub(crate) struct JobTable {
    jobs: BTreeMap<String, Tracked>,
    waiters: Vec<Waiter>,
    next_id: WaiterId,
}

impl JobTable {
    /// The last job of each module as the host API shows it at `now`.
    pub(crate) fn jobs(&self, now: Instant) -> BTreeMap<String, JobRecord> {
        self.jobs
            .iter()
            .map(|(id, t)| {
                let ago = now.saturating_duration_since(t.started).as_millis() as u64;
                let record = JobRecord {
                    started_ms_ago: Some(ago),
                    ..t.record.clone()
                };
                (id.clone(), record)
            })
            .collect()
    }

    /// Number of waiters.
    pub(crate) fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// A job was started (START answered; its RESULT is still to come).
    pub(crate) fn started(&mut self, module_id: &str, func: Option<String>, now: Instant) {
        let record = JobRecord {
            func,
            state: JobState::Running,
            status: None,
            result: None,
            late: false,
            log_seq: None,
            started_ms_ago: None,
            duration_ms: None,
        };
        let tracked = Tracked {
            record,
            started: now,
        };
        self.jobs.insert(module_id.to_string(), tracked);
    }

    /// Attaches a RESULT to its module's job: by `module_id`, or (FW-A, no id) to the only
    /// running job. `log_seq` is set for a RESULT no request took (late).
    pub(crate) fn result(&mut self, r: &RunResult, raw: &str, log_seq: Option<u64>, now: Instant) {
        // An immediate RESULT (BUSY, NO_MODULE, …) answers a START; it never ends a job.
        if r.class() != ResultClass::RunTime {
            return;
        }
        let key = match &r.module_id {
            Some(id) => Some(id.clone()),
            None => {
                let mut running = self
                    .jobs
                    .iter()
                    .filter(|(_, j)| j.record.state == JobState::Running);
                match (running.next(), running.next()) {
                    (Some((id, _)), None) => Some(id.clone()),
                    _ => None,
                }
            }
        };
        let Some(tracked) = key.and_then(|k| self.jobs.get_mut(&k)) else {
            return;
        };
        // Only a job still running takes a late RESULT (not a duplicate).
        if log_seq.is_some() && tracked.record.state != JobState::Running {
            return;
        }
        tracked.end(JobState::Done, now);
        let job = &mut tracked.record;
        job.status = Some(RunStatus::from_wire(&r.status.to_string()));
        job.result = Some(raw.to_string());
        job.late = log_seq.is_some();
        job.log_seq = log_seq;
    }

    /// A START's first step ended with `outcome` (not parked): records the job it started, if
    /// any. `START_OK` starts one; a run-time RESULT (the job ended before the answer, or a
    /// START with `wait_result` got its RESULT on the link) starts and ends it; an immediate
    /// refusal (`BUSY`, `NO_MODULE`, …) never started one.
    pub(crate) fn start_answered(
        &mut self,
        module_id: &str,
        func: Option<String>,
        outcome: &Result<StartOutcome, SessionError>,
        now: Instant,
    ) {
        let ended = match outcome {
            Ok(o) => match (&o.result, &o.line.msg) {
                (Some(r), AgentLine::Result(_)) => Some((r, &o.line.raw)),
                _ => None,
            },
            Err(SessionError::Rejected { line }) => match &line.msg {
                AgentLine::Result(r) if r.class() == ResultClass::RunTime => Some((r, &line.raw)),
                _ => return,
            },
            Err(_) => return,
        };
        self.started(module_id, func, now);
        if let Some((r, raw)) = ended {
            self.result(r, raw, None, now);
        }
    }

    /// A STOP ended on the link with `outcome` (not parked): a RESULT it took ends the job,
    /// and a START waiting on that job gets it too. Returns the waiters it completed.
    pub(crate) fn stop_answered(
        &mut self,
        module_id: &str,
        outcome: &Result<StopOutcome, SessionError>,
        now: Instant,
    ) -> Vec<Completed> {
        let Ok(o) = outcome else {
            return Vec::new();
        };
        let Some(r) = &o.result else {
            return Vec::new();
        };
        self.result(r, &o.line.raw, None, now);
        self.hear(&o.line, Some(module_id), now)
    }

    /// A line the device sent outside any command's answer (HELLO, LOG, console text, a RESULT
    /// no session took). Returns whether it goes to the device log (and as what) and the
    /// waiters it completed: a HELLO fails every waiter (the device rebooted), a RESULT a
    /// waiter takes is that waiter's (not late, not logged), any other line is fed to every
    /// waiter as the last line heard. A logged RESULT is recorded by [`JobTable::late_result`]
    /// once the log has numbered it.
    pub(crate) fn unasked(&mut self, line: &Line, now: Instant) -> (Heard, Vec<Completed>) {
        match &line.msg {
            AgentLine::Hello(_) => (Heard::Log(LogKind::Hello), self.rebooted(&line.raw, now)),
            AgentLine::Result(r) => {
                let done = self.hear(line, None, now);
                if done.is_empty() {
                    return (Heard::Log(LogKind::Result), done);
                }
                self.result(r, &line.raw, None, now);
                (Heard::Taken, done)
            }
            AgentLine::Log(_) => (Heard::Log(LogKind::Log), self.hear(line, None, now)),
            _ => (Heard::Log(LogKind::Console), self.hear(line, None, now)),
        }
    }

    /// A RESULT nobody waited for went to the device log as entry `log_seq`: it ends its
    /// module's running job, late.
    pub(crate) fn late_result(&mut self, line: &Line, log_seq: u64, now: Instant) {
        if let AgentLine::Result(r) = &line.msg {
            self.result(r, &line.raw, Some(log_seq), now);
        }
    }

    /// STATUS shows these modules running: a job thought lost (a HELLO on reconnect) that the
    /// device still runs is running.
    pub(crate) fn running_on_device<'a>(&mut self, modules: impl IntoIterator<Item = &'a str>) {
        for m in modules {
            if let Some(j) = self.jobs.get_mut(m) {
                if j.record.state == JobState::Lost {
                    j.record.state = JobState::Running;
                    j.record.duration_ms = None;
                }
            }
        }
    }

    /// The module was unloaded: its record goes.
    pub(crate) fn unloaded(&mut self, module_id: &str) {
        self.jobs.remove(module_id);
    }

    /// Parks a session waiting for its RESULT; returns its id.
    pub(crate) fn park(
        &mut self,
        module_id: &str,
        phase: &'static str,
        parked: Parked,
    ) -> WaiterId {
        self.next_id += 1;
        let id = self.next_id;
        self.waiters.push(Waiter {
            id,
            module_id: module_id.to_string(),
            phase,
            parked,
        });
        id
    }

    /// Drops a waiter (its caller went away); returns whether it was there.
    pub(crate) fn remove(&mut self, id: WaiterId) -> bool {
        let before = self.waiters.len();
        self.waiters.retain(|w| w.id != id);
        self.waiters.len() != before
    }

    /// The waiter's deadline passed: its session's timeout (phase and last line heard), unless
    /// it completed already.
    pub(crate) fn time_out(
        &mut self,
        id: WaiterId,
        now: Instant,
    ) -> Option<Result<Reply, DeviceError>> {
        let i = self.waiters.iter().position(|w| w.id == id)?;
        Some(self.waiters.remove(i).parked.time_out(now))
    }

    /// A line heard from the device outside a command. For a RESULT, `module` is its module when
    /// known from elsewhere (a STOP session took it); otherwise its `module_id=` decides.
    /// Returns the waiters it completed; empty when no waiter took it as its RESULT.
    pub(crate) fn hear(
        &mut self,
        line: &Line,
        module: Option<&str>,
        now: Instant,
    ) -> Vec<Completed> {
        if self.waiters.is_empty() {
            return Vec::new();
        }
        let target = match &line.msg {
            AgentLine::Result(r) if r.class() == ResultClass::RunTime => {
                match module.or(r.module_id.as_deref()) {
                    Some(m) => m.to_string(),
                    None => {
                        let first = &self.waiters[0].module_id;
                        if self.waiters.iter().all(|w| &w.module_id == first) {
                            first.clone()
                        } else {
                            // FW-A RESULT, several modules waited on: nobody's for sure.
                            return Vec::new();
                        }
                    }
                }
            }
            _ => {
                for w in self.waiters.iter_mut() {
                    w.parked.feed(line, now);
                }
                return Vec::new();
            }
        };
        let mut done = Vec::new();
        // The oldest START of the module (list order is park order) and every STOP of it.
        let mut start_fed = false;
        let mut i = 0;
        while i < self.waiters.len() {
            let w = &mut self.waiters[i];
            let is_start = matches!(w.parked, Parked::Start(_));
            if w.module_id == target && !(is_start && start_fed) {
                start_fed |= is_start;
                w.parked.feed(line, now);
                if let Some(result) = w.parked.take_reply() {
                    done.push((self.waiters.remove(i).id, result));
                    continue;
                }
            }
            i += 1;
        }
        done
    }

    /// A LOAD cleared `module_id`'s slot: the agent killed its job without a RESULT. Its
    /// waiters fail (otherwise the oldest would take the next job's RESULT), its job is lost.
    pub(crate) fn slot_cleared(
        &mut self,
        module_id: &str,
        by: &str,
        now: Instant,
    ) -> Vec<Completed> {
        if let Some(j) = self.jobs.get_mut(module_id) {
            if j.record.state == JobState::Running {
                j.end(JobState::Lost, now);
            }
        }
        let (gone, keep) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.module_id == module_id);
        self.waiters = keep;
        gone.into_iter()
            .map(|w| {
                let e = DeviceError::Killed {
                    phase: w.phase.into(),
                    by: format!("{by} of {module_id}"),
                };
                (w.id, Err(e))
            })
            .collect()
    }

    /// The device rebooted (HELLO): it forgot its jobs, so no waiter's RESULT will come and
    /// every running job is lost.
    pub(crate) fn rebooted(&mut self, hello: &str, now: Instant) -> Vec<Completed> {
        for j in self.jobs.values_mut() {
            if j.record.state == JobState::Running {
                j.end(JobState::Lost, now);
            }
        }
        self.fail_all(|phase| DeviceError::Rebooted {
            phase: phase.into(),
            line: hello.to_string(),
        })
    }

    /// The link dropped: no RESULT can come over it (the jobs may still run: a reconnect's
    /// STATUS tells).
    pub(crate) fn link_lost(&mut self, cause: &LinkIoError) -> Vec<Completed> {
        self.fail_all(|phase| DeviceError::LinkLost {
            phase: phase.into(),
            source: cause.clone(),
        })
    }

    fn fail_all(&mut self, err: impl Fn(&'static str) -> DeviceError) -> Vec<Completed> {
        std::mem::take(&mut self.waiters)
            .into_iter()
            .map(|w| (w.id, Err(err(w.phase))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    //! One case per rule of docs/HOST-API.md, "Waiting for a RESULT", on the bare table: no
    //! tokio, no link, time passed in.

    use std::time::Duration;

    use wasmbed_agent_proto::session::Timeouts;
    use wasmbed_agent_proto::{Args, ModuleId, ModuleRef, Start};

    use super::*;

    fn line(text: &str) -> Line {
        Line::parse(text)
    }

    fn timeouts() -> Timeouts {
        Timeouts {
            result: Duration::from_secs(5),
            ..Timeouts::default()
        }
    }

    /// A START with `wait_result` past its `START_OK`.
    fn start(t0: Instant, module: &str) -> Parked {
        let cmd = Start {
            module_id: ModuleId::new(module).unwrap(),
            func: None,
            args: Args::none(),
        };
        let mut s = StartSession::new(t0, cmd, true, &timeouts());
        while s.poll_transmit().is_some() {}
        s.handle_line(t0, Item::Line(line("START_OK")));
        while s.poll_event().is_some() {}
        assert!(s.outcome().is_none(), "parked before its RESULT");
        Parked::Start(s)
    }

    /// A STOP with `wait` past its `STOP_OK status=PENDING`.
    fn stop(t0: Instant, module: &str) -> Parked {
        let m = ModuleRef {
            module_id: ModuleId::new(module).unwrap(),
        };
        let mut s = StopSession::new(t0, m, &timeouts());
        while s.poll_transmit().is_some() {}
        s.handle_line(t0, Item::Line(line("STOP_OK status=PENDING")));
        while s.poll_event().is_some() {}
        assert!(s.outcome().is_none(), "parked before its RESULT");
        Parked::Stop(s)
    }

    fn ok_line(done: &[Completed], id: WaiterId) -> String {
        let (_, r) = done.iter().find(|(i, _)| *i == id).expect("completed");
        match r {
            Ok(Reply::Started(s)) => s.line.clone(),
            Ok(Reply::Stopped(s)) => s.line.clone(),
            // A START's job that did not end OK: its RESULT, as the refusal it is.
            Err(DeviceError::Rejected { line, .. }) => line.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn immediate_result_never_answers_a_wait() {
        let t0 = Instant::now();
        let mut t = JobTable::default();
        let a = t.park("m", "START", start(t0, "m"));
        for l in [
            "RESULT status=BUSY",
            "RESULT status=NO_MODULE",
            "RESULT status=NO_FUNC name=f",
        ] {
            assert!(t.hear(&line(l), None, t0).is_empty(), "{l}");
        }
        assert_eq!(t.waiting(), 1);
        let done = t.hear(&line("RESULT status=OK module_id=m ret_i32=1"), None, t0);
        assert_eq!(ok_line(&done, a), "RESULT status=OK module_id=m ret_i32=1");
    }

    #[test]
    fn runtime_result_goes_to_its_module_only() {
        let t0 = Instant::now();
        let mut t = JobTable::default();
        let a = t.park("a", "START", start(t0, "a"));
        let b = t.park("b", "START", start(t0, "b"));
        let done = t.hear(&line("RESULT status=OK module_id=b ret_i32=2"), None, t0);
        assert_eq!(done.len(), 1);
        assert_eq!(ok_line(&done, b), "RESULT status=OK module_id=b ret_i32=2");
        let done = t.hear(&line("RESULT status=OK module_id=a ret_i32=1"), None, t0);
        assert_eq!(ok_line(&done, a), "RESULT status=OK module_id=a ret_i32=1");
    }

    #[test]
    fn starts_on_one_module_are_answered_in_order_and_every_stop_too() {
        let t0 = Instant::now();
        let mut t = JobTable::default();
        let first = t.park("m", "START", start(t0, "m"));
        let second = t.park("m", "START", start(t0, "m"));
        let stop1 = t.park("m", "STOP", stop(t0, "m"));
        let stop2 = t.park("m", "STOP", stop(t0, "m"));
        let done = t.hear(&line("RESULT status=STOPPED module_id=m"), None, t0);
        let ids: Vec<WaiterId> = done.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids,
            vec![first, stop1, stop2],
            "the oldest START and every STOP"
        );
        let done = t.hear(&line("RESULT status=OK module_id=m ret_i32=7"), None, t0);
        assert_eq!(
            ok_line(&done, second),
            "RESULT status=OK module_id=m ret_i32=7"
        );
        assert_eq!(t.waiting(), 0);
    }

    #[test]
    fn result_without_module_answers_the_only_module_waited_on() {
        let t0 = Instant::now();
        let mut t = JobTable::default();
        let a = t.park("a", "START", start(t0, "a"));
        let done = t.hear(&line("RESULT status=OK ret_i32=3"), None, t0);
        assert_eq!(ok_line(&done, a), "RESULT status=OK ret_i32=3");

        // Several modules waited on: it answers none of them (they end in TIMEOUT).
        let a = t.park("a", "START", start(t0, "a"));
        let b = t.park("b", "START", start(t0, "b"));
        assert!(t
            .hear(&line("RESULT status=OK ret_i32=3"), None, t0)
            .is_empty());
        let late = t0 + Duration::from_secs(6);
        for id in [a, b] {
            let e = t.time_out(id, late).unwrap().unwrap_err();
            assert!(matches!(e, DeviceError::Timeout { .. }), "{e:?}");
        }
    }

    #[test]
    fn a_stop_session_names_the_module_of_a_bare_result() {
        let t0 = Instant::now();
        let mut t = JobTable::default();
        let a = t.park("a", "START", start(t0, "a"));
        t.park("b", "START", start(t0, "b"));
        let done = t.hear(&line("RESULT status=STOPPED"), Some("a"), t0);
        assert_eq!(ok_line(&done, a), "RESULT status=STOPPED");
    }

    #[test]
    fn timeout_names_the_phase_once_and_the_last_line() {
        let t0 = Instant::now();
        let mut t = JobTable::default();
        let a = t.park("m", "START", start(t0, "m"));
        assert!(t
            .hear(&line("LOG module_id=m msg=\"busy\""), None, t0)
            .is_empty());
        let e = t
            .time_out(a, t0 + Duration::from_secs(5))
            .unwrap()
            .unwrap_err();
        assert_eq!(
            e,
            DeviceError::Timeout {
                phase: "waiting for RESULT".into(),
                last_line: Some("LOG module_id=m msg=\"busy\"".into()),
            }
        );
        assert_eq!(e.to_string().matches("waiting for").count(), 1, "{e}");
        assert!(t.time_out(a, t0).is_none(), "gone once timed out");
    }

    #[test]
    fn a_stop_wait_times_out_as_its_own_phase() {
        let t0 = Instant::now();
        let mut t = JobTable::default();
        let s = t.park("m", "STOP", stop(t0, "m"));
        let e = t
            .time_out(s, t0 + Duration::from_secs(5))
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&e, DeviceError::Timeout { phase, last_line }
                if phase == "waiting for RESULT (stop)"
                    && last_line.as_deref() == Some("STOP_OK status=PENDING")),
            "{e:?}"
        );
    }

    #[test]
    fn a_bare_result_with_several_modules_waited_on_goes_to_the_log() {
        let t0 = Instant::now();
        let mut t = JobTable::default();
        t.park("a", "START", start(t0, "a"));
        t.park("b", "START", start(t0, "b"));
        let (heard, done) = t.unasked(&line("RESULT status=OK ret_i32=3"), t0);
        assert_eq!(heard, Heard::Log(LogKind::Result));
        assert!(done.is_empty());
        assert_eq!(t.waiting(), 2);
    }

    #[test]
    fn a_dropped_wait_leaves_the_job_and_its_result_completes_the_record() {
        let t0 = Instant::now();
        let mut t = JobTable::default();
        t.started("m", Some("spin".into()), t0);
        let a = t.park("m", "START", start(t0, "m"));
        // The host went away: the wait goes, the job runs on.
        assert!(t.remove(a));
        assert_eq!(t.jobs(t0)["m"].state, JobState::Running);
        let result = line("RESULT status=OK module_id=m ret_i32=1");
        let later = t0 + Duration::from_millis(30);
        let (heard, done) = t.unasked(&result, later);
        assert_eq!(heard, Heard::Log(LogKind::Result), "nobody waits: logged");
        assert!(done.is_empty());
        t.late_result(&result, 9, later);
        let j = &t.jobs(later)["m"];
        assert_eq!(
            (j.state, j.late, j.log_seq, j.duration_ms),
            (JobState::Done, true, Some(9), Some(30))
        );
    }

    #[test]
    fn a_load_that_clears_the_slot_kills_its_waits_and_loses_its_job() {
        let t0 = Instant::now();
        let mut t = JobTable::default();
        t.started("m", Some("spin".into()), t0);
        t.started("other", None, t0);
        let a = t.park("m", "START", start(t0, "m"));
        let keep = t.park("other", "START", start(t0, "other"));
        let done = t.slot_cleared("m", "LOAD", t0);
        assert_eq!(done.len(), 1);
        assert!(matches!(&done[0], (id, Err(DeviceError::Killed { .. })) if *id == a));
        assert_eq!(t.jobs(t0)["m"].state, JobState::Lost);
        assert_eq!(t.jobs(t0)["other"].state, JobState::Running);
        assert!(t.remove(keep));
    }

    #[test]
    fn hello_ends_every_wait_and_loses_running_jobs() {
        let t0 = Instant::now();
        let mut t = JobTable::default();
        t.started("m", None, t0);
        t.park("m", "START", start(t0, "m"));
        t.park("n", "STOP", stop(t0, "n"));
        let done = t.rebooted("HELLO device_id=x fw_version=1", t0);
        assert_eq!(done.len(), 2);
        assert!(done
            .iter()
            .all(|(_, r)| matches!(r, Err(DeviceError::Rebooted { .. }))));
        assert_eq!(t.jobs(t0)["m"].state, JobState::Lost);
        // STATUS after the reconnect shows it still running: it is.
        t.running_on_device(["m"]);
        assert_eq!(t.jobs(t0)["m"].state, JobState::Running);
    }

    #[test]
    fn a_lost_link_ends_every_wait_but_keeps_the_jobs() {
        let t0 = Instant::now();
        let mut t = JobTable::default();
        t.started("m", None, t0);
        t.park("m", "START", start(t0, "m"));
        let cause = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        let done = t.link_lost(&cause.into());
        assert!(
            matches!(&done[..], [(_, Err(DeviceError::LinkLost { phase, .. }))] if phase == "START")
        );
        assert_eq!(t.jobs(t0)["m"].state, JobState::Running);
    }

    /// The contention regression (`tests/contention.rs`, over TCP): on firmware that echoes
    /// `seq=`, two hosts start jobs of one module. Host A's START is parked after
    /// `START_OK seq=5`; host B's START (seq=6) reaches the device while A's job runs and is
    /// refused `RESULT status=BUSY seq=6`. B must get an honest BUSY whose line reads like any
    /// firmware's (`RESULT status=BUSY`: before the fix the link's ` seq=6` stayed in the line
    /// and the reply was neither the refusal clients know nor a result), and A still gets its
    /// own RESULT.
    #[test]
    fn busy_answering_a_second_start_under_seq_is_the_plain_refusal() {
        let t0 = Instant::now();
        let seq_start = |seq: u32| {
            let cmd = Start {
                module_id: ModuleId::new("m").unwrap(),
                func: None,
                args: Args::none(),
            };
            let mut s = StartSession::new(t0, cmd, true, &timeouts());
            s.set_seq(seq);
            let sent = s.poll_transmit().unwrap().to_bytes();
            assert!(sent.ends_with(format!(" seq={seq}\n").as_bytes()));
            s
        };
        let mut t = JobTable::default();
        let mut a = seq_start(5);
        a.handle_line(t0, Item::Line(line("START_OK seq=5")));
        assert_eq!(a.phase(), wasmbed_agent_proto::session::Phase::Result);
        t.started("m", None, t0);
        let a = t.park("m", "START", Parked::Start(a));

        let mut b = seq_start(6);
        // A late reply of another command, then B's own answer.
        b.handle_line(t0, Item::Line(line("RESULT status=BUSY seq=4")));
        assert!(b.outcome().is_none(), "a BUSY of another START is not ours");
        b.handle_line(t0, Item::Line(line("RESULT status=BUSY seq=6")));
        match start_reply(b.take_outcome().expect("answered")) {
            Err(DeviceError::Rejected { line, status }) => {
                assert_eq!(line, "RESULT status=BUSY");
                assert_eq!(status.as_deref(), Some("BUSY"));
            }
            other => panic!("{other:?}"),
        }
        // The refusal neither answers A nor ends A's job (had it reached the table).
        assert!(t
            .hear(&line("RESULT status=BUSY seq=6"), None, t0)
            .is_empty());
        assert_eq!(t.jobs(t0)["m"].state, JobState::Running);
        let done = t.hear(&line("RESULT status=OK module_id=m ret_i32=3"), None, t0);
        assert_eq!(ok_line(&done, a), "RESULT status=OK module_id=m ret_i32=3");
        assert_eq!(t.waiting(), 0);
    }

    #[test]
    fn unasked_lines_go_to_a_waiter_or_the_log() {
        let t0 = Instant::now();
        let mut t = JobTable::default();
        t.started("m", None, t0);
        let a = t.park("m", "START", start(t0, "m"));
        let (heard, done) = t.unasked(&line("LOG module_id=m msg=\"hi\""), t0);
        assert_eq!((heard, done.len()), (Heard::Log(LogKind::Log), 0));
        let (heard, done) = t.unasked(&line("booting"), t0);
        assert_eq!((heard, done.len()), (Heard::Log(LogKind::Console), 0));
        // Another module's RESULT: nobody waits for it, it is logged and ends nothing here.
        let other = line("RESULT status=OK module_id=n ret_i32=1");
        let (heard, done) = t.unasked(&other, t0);
        assert_eq!((heard, done.len()), (Heard::Log(LogKind::Result), 0));
        // Its own RESULT: taken by the waiter, not logged, the job done and not late.
        let (heard, done) = t.unasked(&line("RESULT status=OK module_id=m ret_i32=2"), t0);
        assert_eq!(heard, Heard::Taken);
        assert_eq!(ok_line(&done, a), "RESULT status=OK module_id=m ret_i32=2");
        assert_eq!(
            (t.jobs(t0)["m"].state, t.jobs(t0)["m"].late),
            (JobState::Done, false)
        );
        // A late RESULT the log numbered ends a running job, late.
        t.started("n", None, t0);
        t.late_result(&other, 7, t0);
        assert_eq!(t.jobs(t0)["n"].log_seq, Some(7));
        // HELLO: every waiter fails, logged as a HELLO.
        t.park("m", "START", start(t0, "m"));
        let (heard, done) = t.unasked(
            &line("HELLO device_id=x rtos=posix runtime=WAMR fw_version=1"),
            t0,
        );
        assert_eq!(heard, Heard::Log(LogKind::Hello));
        assert!(matches!(
            &done[..],
            [(_, Err(DeviceError::Rebooted { .. }))]
        ));
    }

    #[test]
    fn a_start_answered_on_the_link_records_only_a_job_it_started() {
        let t0 = Instant::now();
        let mut t = JobTable::default();
        let refused: Result<StartOutcome, SessionError> = Err(SessionError::Rejected {
            line: line("RESULT status=BUSY"),
        });
        t.start_answered("m", None, &refused, t0);
        assert!(t.jobs(t0).is_empty(), "an immediate refusal starts no job");
        let trapped = Err(SessionError::Rejected {
            line: line("RESULT status=EXCEPTION module_id=m msg=\"trap\""),
        });
        t.start_answered("m", Some("f".into()), &trapped, t0);
        assert_eq!(t.jobs(t0)["m"].state, JobState::Done);
        assert_eq!(t.jobs(t0)["m"].status, Some(RunStatus::Exception));
        let ok = Ok(StartOutcome {
            result: None,
            line: line("START_OK"),
        });
        t.start_answered("m", None, &ok, t0);
        assert_eq!(t.jobs(t0)["m"].state, JobState::Running);
    }

    #[test]
    fn late_result_completes_the_record_once() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(40);
        let mut t = JobTable::default();
        t.started("m", Some("add".into()), t0);
        let l = line("RESULT status=OK module_id=m ret_i32=5");
        let AgentLine::Result(r) = &l.msg else {
            panic!()
        };
        // Immediate refusals never end a job.
        let busy = line("RESULT status=BUSY module_id=m");
        let AgentLine::Result(b) = &busy.msg else {
            panic!()
        };
        t.result(b, &busy.raw, Some(3), later);
        assert_eq!(t.jobs(t0)["m"].state, JobState::Running);
        t.result(r, &l.raw, Some(4), later);
        let j = &t.jobs(later + Duration::from_millis(10))["m"];
        assert_eq!(
            (j.state, j.late, j.log_seq),
            (JobState::Done, true, Some(4))
        );
        assert_eq!(j.status, Some(RunStatus::Ok));
        assert_eq!(j.duration_ms, Some(40));
        assert_eq!(
            j.started_ms_ago,
            Some(50),
            "ages are read at the time passed in"
        );
        // A duplicate does not overwrite it.
        t.result(r, "RESULT status=OK module_id=m ret_i32=6", Some(5), later);
        assert_eq!(t.jobs(t0)["m"].log_seq, Some(4));
    }
}
