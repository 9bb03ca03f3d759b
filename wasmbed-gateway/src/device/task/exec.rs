//! One command on the link: INFO, STATUS, START, STOP and UNLOAD here (uploads in `deploy.rs`).
//! A START with `wait_result` or a STOP with `wait` leaves the queue once its first reply came:
//! its session is parked in the job table until its RESULT.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wasmbed_agent_proto::session::{
    Phase, StartSession, StatusSession, StopSession, UnloadSession,
};
use wasmbed_agent_proto::{ModuleId, ModuleRef};
use wasmbed_api::UnloadResult;

use super::drive::Driven;
use super::{now_std, DeviceTask, DriveError, Exec};
use crate::device::jobs::Parked;
use crate::device::reply::{
    session_error, start_command, start_reply, status_reply, stop_pending_reply, stop_reply,
};
use crate::device::{DeviceError, LogKind, Progress, Reply, Request, StartRequest, StopRequest};
use crate::link::BoxLink;

/// A reply (or error) and the device time it took.
pub(super) type Timed = (Result<Reply, DeviceError>, Duration);

impl DeviceTask {
    pub(super) async fn exec(
        &mut self,
        link: &mut BoxLink,
        request: Request,
        progress: Option<&mpsc::UnboundedSender<Progress>>,
        cancel: &CancellationToken,
    ) -> Result<Exec, DriveError> {
        let (r, d) = match request {
            Request::Start(s) => return self.start(link, s).await,
            Request::Stop(s) => return self.stop(link, s).await,
            Request::Deploy(d) => self.deploy(link, d, progress, cancel).await?,
            Request::Info => self.info(link).await?,
            Request::Status => self.status(link).await?,
            Request::Unload { module_id } => self.unload(link, module_id).await?,
        };
        Ok(Exec::Done(r, d))
    }

    /// START: holds the link until the first reply. With `wait_result`, a START_OK parks the
    /// session as a waiter (its RESULT comes through the job table).
    async fn start(&mut self, link: &mut BoxLink, s: StartRequest) -> Result<Exec, DriveError> {
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
    async fn stop(&mut self, link: &mut BoxLink, s: StopRequest) -> Result<Exec, DriveError> {
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
                let reply = stop_pending_reply(session.last_reply());
                return Ok(Exec::Done(Ok(reply), d));
            }
            Driven::Done(r) => r,
        };
        self.waiters.stop_answered(&s.module_id, &r);
        Ok(Exec::Done(stop_reply(r), d))
    }

    /// INFO: the handshake again (identity included), and its answer.
    async fn info(&mut self, link: &mut BoxLink) -> Result<Timed, DriveError> {
        let t0 = Instant::now();
        if let Some(e) = self.refresh(link, None).await.map_err(DriveError::Io)? {
            return Ok((Err(e), t0.elapsed()));
        }
        let info = self.state.lock().expect("state lock").info.clone();
        Ok((
            info.map(|i| Reply::Info(Box::new(i)))
                .ok_or_else(|| DeviceError::Unsupported("no INFO".into())),
            t0.elapsed(),
        ))
    }

    /// STATUS, recorded in the device state.
    async fn status(&mut self, link: &mut BoxLink) -> Result<Timed, DriveError> {
        let session = StatusSession::new(now_std(), &self.opts.timeouts);
        let (r, d) = self.drive(link, session, None, false).await?;
        let r = r.map(|o| {
            self.record_status(&o.status);
            Reply::Status(status_reply(&o.line.raw, &o.status))
        });
        Ok((r.map_err(session_error), d))
    }

    /// UNLOAD (protocol v2): the module's job record goes with it.
    async fn unload(&mut self, link: &mut BoxLink, module_id: String) -> Result<Timed, DriveError> {
        let module_id = match ModuleId::new(module_id) {
            Ok(m) => m,
            Err(e) => return Ok((Err(DeviceError::BadRequest(e)), Duration::ZERO)),
        };
        if self.proto() == Some(1) {
            let e = DeviceError::Unsupported("UNLOAD needs protocol v2 firmware".into());
            return Ok((Err(e), Duration::ZERO));
        }
        let id = module_id.to_string();
        let session = UnloadSession::new(now_std(), ModuleRef { module_id }, &self.opts.timeouts);
        let (r, d) = self.drive(link, session, None, false).await?;
        if r.is_ok() {
            self.waiters.unloaded(&id);
        }
        let r = r.map_err(session_error).map(|o| {
            Reply::Unloaded(UnloadResult {
                line: o.line.raw.clone(),
            })
        });
        Ok((r, d))
    }

    /// A LOAD cleared `module_id`'s slot: its running job (if any) was killed without a RESULT.
    pub(super) fn abandon_jobs(&self, module_id: &str, by: &str) {
        let n = self.waiters.slot_cleared(module_id, by);
        if n > 0 {
            self.log.push(
                LogKind::Gateway,
                format!("{by} of {module_id} killed its job: {n} waiter(s) failed"),
            );
        }
    }
}
