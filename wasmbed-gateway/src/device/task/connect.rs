//! Opening the link: connect with a deadline, back off between failures (doubling from
//! `backoff_min` to `backoff_max`), answer queued jobs with a typed `Offline` meanwhile, and
//! tell the job table when a served link is lost.

use std::time::Duration;

use tokio::time::Instant;
use wasmbed_agent_proto::Decoder;

use super::DeviceTask;
use crate::device::{
    ConnectFailure, DeviceError, JobReply, LinkIoError, LogKind, OfflineReason, Outcome,
};

impl DeviceTask {
    /// Connects, serves, reconnects, until every handle is gone.
    pub(super) async fn run(mut self) {
        let mut backoff = self.opts.backoff_min;
        loop {
            let connect =
                tokio::time::timeout(self.opts.connect_timeout, self.opts.connector.connect());
            let cause = match connect.await {
                Ok(Ok(link)) => {
                    backoff = self.opts.backoff_min;
                    if !self.serve_link(link).await {
                        return;
                    }
                    continue;
                }
                Ok(Err(e)) => ConnectFailure::Failed(LinkIoError::from(e)),
                Err(_) => ConnectFailure::TimedOut,
            };
            self.note_offline(&cause);
            if !self.wait_offline(backoff, cause).await {
                return;
            }
            backoff = (backoff * 2).min(self.opts.backoff_max);
        }
    }

    /// Serves a freshly opened link until it is lost (`true`: reconnect) or every handle is
    /// gone (`false`).
    async fn serve_link(&mut self, link: crate::link::BoxLink) -> bool {
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
            None => return false,
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
        true
    }

    /// Records why the link cannot be opened and which serial ports could be the board; logs
    /// it when the reason changes (every retry at debug level).
    fn note_offline(&self, cause: &ConnectFailure) {
        let reason = cause.to_string();
        let candidates = self.opts.connector.candidates();
        let list = candidates.clone().unwrap_or_default();
        // Compared in the form `wait_offline` stores, so an unchanged cause is not logged again.
        let shown = offline_text(cause);
        let changed = {
            let mut s = self.state.lock().expect("state lock");
            let changed =
                s.offline_reason.as_deref() != Some(shown.as_str()) || s.candidates != list;
            s.offline_reason = Some(shown);
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
    async fn wait_offline(&mut self, delay: Duration, cause: ConnectFailure) -> bool {
        self.set_state(|s| {
            s.online = false;
            s.offline_reason = Some(offline_text(&cause));
        });
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return true,
                job = self.rx.recv() => match job {
                    None => return false,
                    Some(job) => {
                        let candidates = self.state.lock().expect("state lock").candidates.clone();
                        let reason = OfflineReason::CannotConnect {
                            endpoint: self.opts.connector.describe(),
                            cause: cause.clone(),
                            candidates,
                        };
                        let _ = job.reply.send(JobReply::Done(Outcome {
                            result: Err(DeviceError::Offline(reason)),
                            device_time: Duration::ZERO,
                        }));
                    }
                },
            }
        }
    }
}

/// The offline reason `devices` shows for a link that cannot be opened.
fn offline_text(cause: &ConnectFailure) -> String {
    format!("cannot connect: {cause}")
}
