//! An upload on the link: STATUS (skipped when the device holds the same module), the link sped
//! up for large uploads, the protocol crate's `LoadSession`, and a cancelled upload discarded.
//! The decisions are [`crate::device::upload`]'s.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wasmbed_agent_proto::session::{LoadSession, StatusSession, UnloadSession};
use wasmbed_agent_proto::{ModuleId, ModuleRef};

use super::drive::Driven;
use super::exec::Timed;
use super::{now_std, DeviceTask, DriveError};
use crate::device::reply::session_error;
use crate::device::upload::{self, SigCheck};
use crate::device::{DeployRequest, DeviceError, Loaded, Progress, Reply};
use crate::link::BoxLink;

impl DeviceTask {
    pub(super) async fn deploy(
        &mut self,
        link: &mut BoxLink,
        d: DeployRequest,
        progress: Option<&mpsc::UnboundedSender<Progress>>,
        cancel: &CancellationToken,
    ) -> Result<Timed, DriveError> {
        if cancel.is_cancelled() {
            // The host left while the upload waited in the queue: nothing was sent.
            return Ok((Err(upload::cancelled()), Duration::ZERO));
        }
        let slots = match upload::slots(&d) {
            Ok(s) => s,
            Err(e) => return Ok((Err(e), Duration::ZERO)),
        };
        let mut device_time = Duration::ZERO;
        if !d.force {
            let session = StatusSession::new(now_std(), &self.opts.timeouts);
            let (r, dt) = self.drive(link, session, None, false).await?;
            device_time += dt;
            if let Ok(o) = r {
                self.record_status(&o.status);
                if let Some(skipped) = upload::already_held(&o.status.modules, &d) {
                    return Ok((Ok(Reply::Loaded(skipped)), device_time));
                }
            }
        }
        let check = {
            let s = self.state.lock().expect("state lock");
            SigCheck {
                mode: s.sig_mode.clone(),
                target: s.sig_target.clone(),
            }
        };
        let key = self.opts.signing_key.as_deref();
        let signature = match upload::signature(&check, &slots.module_id, &d, key) {
            Ok(s) => s,
            Err(e) => return Ok((Err(e), device_time)),
        };
        let mut options =
            upload::load_options(&d, slots.victim, self.proto(), self.paced_rate(), signature);
        let back = self.speed_up(link, d.bytes.len()).await?;
        options.deflated = self.deflated_upload(&d.module_id, &d.bytes, options.chunked);
        let t = self.opts.timeouts.clone(); // deadlines at the (new) link speed
        let mut session =
            match LoadSession::new(now_std(), slots.module_id, d.bytes.to_vec(), options, &t) {
                Ok(s) => s,
                Err(e) => return Ok((Err(DeviceError::BadRequest(e)), device_time)),
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
            for (module_id, by) in upload::killed_by(&d, "LOAD") {
                self.abandon_jobs(&module_id, &by);
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

    /// The line speed (bytes/s) the link is paced at, `None` on an instant link: a TCP bridge
    /// with no `?baud=` to an agent whose INFO reports no `baud=` (an emulator or the simulated
    /// board without a UART speed of its own).
    fn paced_rate(&self) -> Option<u32> {
        let paced = !self.opts.unpaced || self.opts.baud.is_some() || self.line_baud.is_some();
        paced.then_some(self.opts.timeouts.link_bytes_per_sec)
    }

    /// A cancelled upload: ends a frame cut short (a lone `\n`), then `UNLOAD`s the slot so the
    /// partial module is discarded (protocol v2; v1 firmware times the payload out by itself).
    async fn discard_upload(
        &mut self,
        link: &mut BoxLink,
        d: &DeployRequest,
        slot_cleared: bool,
        mut device_time: Duration,
    ) -> Result<Timed, DriveError> {
        tracing::info!(device = %self.opts.name, module_id = %d.module_id,
            "host went away during the upload: cancelling it");
        if slot_cleared {
            self.abandon_jobs(&d.module_id, "LOAD (cancelled)");
        }
        if self.proto() == Some(2) {
            if let Some(why) = self.fenced() {
                return Err(DriveError::Fenced(why));
            }
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
        Ok((Err(upload::cancelled()), device_time))
    }
}
