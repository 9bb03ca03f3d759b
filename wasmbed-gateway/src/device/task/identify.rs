//! The identity step of the connect-time handshake (docs/SECURITY.md "Device identity"): after
//! INFO, a device that announces an identity key is challenged with a fresh random nonce
//! (`IDENT`); what it showed is recorded, and commands are gated on it. The rules are in
//! `wasmbed_agent_proto::identity` and `crate::identity`; this is only the IO.

use wasmbed_agent_proto::identity::{self, Announced, Nonce, NONCE_LEN};
use wasmbed_agent_proto::{IdentSession, InfoOk, Line};
use wasmbed_api::IdentityState;

use super::{now_std, DeviceTask};
use crate::device::{DeviceError, LogKind, Request};
use crate::identity::Seen;
use crate::link::BoxLink;

impl DeviceTask {
    /// Challenges the device if its INFO (`None`: legacy v1 firmware) announces a key, and
    /// records the result. `Ok(Some(hello))`: the device said HELLO during the challenge (it
    /// rebooted), nothing is recorded and the handshake starts over. `Err` only when the link
    /// failed.
    pub(super) async fn identify(
        &mut self,
        link: &mut BoxLink,
        info: Option<&InfoOk>,
    ) -> Result<Option<Line>, String> {
        let seen = match info.map(identity::announced) {
            None => Seen::Anonymous("legacy firmware (protocol v1)".into()),
            Some(Announced::Absent) => Seen::Anonymous("firmware without identity support".into()),
            Some(Announced::None) => Seen::Anonymous("no identity key (identity=none)".into()),
            Some(Announced::Unsupported(v)) => Seen::Failed {
                announced: None,
                reason: format!("INFO announces identity={v}, which this gateway cannot check"),
            },
            Some(Announced::Key(fp)) => {
                let mut nonce = [0u8; NONCE_LEN];
                if let Err(e) = getrandom::getrandom(&mut nonce) {
                    return Err(format!("no random bytes for the identity challenge: {e}"));
                }
                let session = IdentSession::new(now_std(), Nonce(nonce), &fp, &self.opts.timeouts);
                match self.drive(link, session, None, true).await {
                    Ok((Ok(out), _)) => Seen::Proved(out.verified),
                    Ok((Err(e), _)) => Seen::Failed {
                        announced: Some(fp),
                        reason: e.to_string(),
                    },
                    Err(super::DriveError::Io(e)) => return Err(e.to_string()),
                    Err(super::DriveError::Rebooted(hello)) => return Ok(Some(hello)),
                    Err(super::DriveError::Fenced(why)) => return Err(why),
                }
            }
        };
        let name = self.opts.name.clone();
        let view = match self.opts.identity.record(&name, &seen) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(device = %name, "{e}");
                self.opts.identity.view(&name, &seen)
            }
        };
        if view.state != IdentityState::None {
            let fp = view
                .fingerprint
                .as_deref()
                .map(identity::short)
                .unwrap_or("-");
            let why = view.reason.as_deref().unwrap_or("");
            let text = format!("identity: {} {fp} {why}", view.state);
            match view.state {
                IdentityState::Mismatch | IdentityState::Failed => {
                    tracing::warn!(device = %name, "{}", text.trim_end())
                }
                IdentityState::Pending => tracing::warn!(device = %name,
                    "{}: approve it with `wasmbed-host devices approve {name}`", text.trim_end()),
                _ => tracing::info!(device = %name, "{}", text.trim_end()),
            }
            self.log.push(LogKind::Gateway, text.trim_end().to_string());
        }
        self.set_state(|s| s.identity = seen);
        Ok(None)
    }

    /// Commands that load, run or change code need an identity that allows them; INFO and
    /// STATUS always go (they change nothing, and INFO re-runs the challenge).
    pub(super) fn identity_gate(&self, request: &Request) -> Result<(), DeviceError> {
        if matches!(request, Request::Info | Request::Status) {
            return Ok(());
        }
        let seen = self.state.lock().expect("state lock").identity.clone();
        self.opts
            .identity
            .gate(&self.opts.name, &seen)
            .map_err(DeviceError::Identity)
    }
}
