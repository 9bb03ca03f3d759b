//! Whether the device task may write a job's commands to the board now.
//!
//! A device of a gateway outside a fleet always may. A fleet-claimed device (docs/FLEET.md,
//! "The fencing check") may only while this gateway holds its claim, which two facts prove:
//! - before each job, a fresh fencing check ([`Lease::prove`]: the fleet member installs it; one
//!   read of the claims bucket) — so a job queued while the claim moved is refused;
//! - before each write of the job, the claim's last renewal is recent enough
//!   ([`Lease::may_write`]: the renewal was sent under 9/10 of the claim TTL ago, the time rule
//!   of the fleet) — so a gateway frozen (SIGSTOP, a paused VM) between its check and a write,
//!   past the TTL another gateway needs to take the claim over, writes nothing when it wakes.
//!
//! What remains is an operator deleting the claim while a job that passed its check runs (the
//! new owner needs a create, an update and a subscription first): closing that needs the board
//! itself to check the token, a protocol change not made.

use std::sync::{Arc, Mutex, OnceLock};

use futures_util::future::BoxFuture;
use tokio::time::Instant;

/// The fencing check of one device: `Err(message)` when this gateway does not hold its claim
/// (the message says who does and what to do).
pub type FenceCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The write permission of one device (cheap to share: the handle and the task hold it).
#[derive(Default)]
pub struct Lease {
    /// Installed once, when the device's gateway joins a fleet; none = writes always allowed.
    check: OnceLock<FenceCheck>,
    /// Writes of a fenced device are allowed until then (from the claim's last renewal).
    valid_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("fenced", &self.check.get().is_some())
            .field("valid_until", &self.valid_until.lock().expect("lease lock"))
            .finish()
    }
}

impl Lease {
    /// From now on every job needs `check` to pass and every write a live renewal. A second
    /// install is ignored (a device joins one fleet).
    pub fn install(&self, check: FenceCheck) {
        let _ = self.check.set(check);
    }

    /// The claim was renewed (or taken): writes are allowed until `until`.
    pub fn renewed(&self, until: Instant) {
        *self.valid_until.lock().expect("lease lock") = Some(until);
    }

    /// The claim is lost or released: no writes until it is renewed again.
    pub fn revoke(&self) {
        *self.valid_until.lock().expect("lease lock") = None;
    }

    /// Before a job: the fencing check, when the device is fenced.
    pub async fn prove(&self) -> Result<(), String> {
        match self.check.get() {
            Some(check) => check().await,
            None => Ok(()),
        }
    }

    /// Before each write of a job: `Err(message)` when the device is fenced and its claim's
    /// last renewal is too old (or the claim is gone).
    pub fn may_write(&self, now: Instant) -> Result<(), String> {
        if self.check.get().is_none() {
            return Ok(());
        }
        match *self.valid_until.lock().expect("lease lock") {
            Some(t) if now < t => Ok(()),
            Some(t) => Err(format!(
                "this gateway's claim on the device was last renewed too long ago ({:?} past its \
                 limit: the gateway was stalled or cut off from NATS); the command was not \
                 written; retry, the request goes to the current owner",
                now - t
            )),
            None => Err(
                "this gateway no longer holds the device's claim; the command was not \
                 written; retry, the request goes to the current owner"
                    .into(),
            ),
        }
    }
}

/// A shared [`Lease`].
pub type SharedLease = Arc<Lease>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn check(ok: bool) -> FenceCheck {
        Arc::new(move || {
            Box::pin(async move {
                if ok {
                    Ok(())
                } else {
                    Err("stale".into())
                }
            })
        })
    }

    #[tokio::test]
    async fn unfenced_always_writes() {
        let l = Lease::default();
        assert_eq!(l.prove().await, Ok(()));
        assert_eq!(l.may_write(Instant::now()), Ok(()));
    }

    #[tokio::test]
    async fn fenced_writes_only_within_the_renewal() {
        let l = Lease::default();
        l.install(check(true));
        let now = Instant::now();
        assert!(l.may_write(now).is_err(), "never renewed");
        l.renewed(now + Duration::from_secs(1));
        assert_eq!(l.may_write(now), Ok(()));
        let late = l.may_write(now + Duration::from_secs(2)).unwrap_err();
        assert!(late.contains("renewed too long ago"), "{late}");
        l.revoke();
        assert!(l.may_write(now).unwrap_err().contains("no longer holds"));
        assert_eq!(l.prove().await, Ok(()));
    }

    #[tokio::test]
    async fn a_failed_check_refuses_the_job() {
        let l = Lease::default();
        l.install(check(false));
        assert_eq!(l.prove().await, Err("stale".into()));
        l.install(check(true));
        assert_eq!(l.prove().await, Err("stale".into()), "installed once");
    }
}
