//! What the device task does after it answered a job, without IO: mark the device not
//! answering (a deadline passed), resynchronise the line (a timeout on legacy firmware whose
//! late answer could otherwise answer the next command), re-read STATUS (the slots changed).

use super::{DeviceError, Reply};

/// The task's chores after a job's reply is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FollowUp {
    /// Offline until the device says something again, with this reason.
    pub(crate) not_answering: Option<String>,
    /// The marker and STATUS of docs/PROTOCOL.md "Resynchronisation after a timeout".
    pub(crate) resync: bool,
    /// STATUS, so `devices` and `status` list the slots as they are now.
    pub(crate) reread_status: bool,
}

/// What the job's link knows of its correlation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkFacts {
    /// The link was lost during the job (it reconnects; nothing more is sent on it).
    pub(crate) lost: bool,
    /// Legacy v1 firmware.
    pub(crate) legacy: bool,
    /// Commands carry `seq=` (an answer names the command it answers).
    pub(crate) correlated: bool,
}

/// The follow-up of a job that ended with `result`; `changes_slots` for LOAD and UNLOAD.
pub(crate) fn follow_up(
    result: &Result<Reply, DeviceError>,
    changes_slots: bool,
    link: LinkFacts,
) -> FollowUp {
    let timed_out = matches!(result, Err(DeviceError::Timeout { .. }));
    FollowUp {
        not_answering: match result {
            Err(e @ DeviceError::Timeout { .. }) => Some(e.to_string()),
            _ => None,
        },
        resync: timed_out && !link.lost && link.legacy && !link.correlated,
        reread_status: changes_slots && !link.lost && result.is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use wasmbed_api::UnloadResult;

    use super::*;

    const V2: LinkFacts = LinkFacts {
        lost: false,
        legacy: false,
        correlated: true,
    };
    const V1: LinkFacts = LinkFacts {
        lost: false,
        legacy: true,
        correlated: false,
    };

    fn timeout() -> Result<Reply, DeviceError> {
        Err(DeviceError::Timeout {
            phase: "waiting for STATUS_OK".into(),
            last_line: None,
        })
    }

    fn unloaded() -> Result<Reply, DeviceError> {
        Ok(Reply::Unloaded(UnloadResult {
            line: "UNLOAD_OK".into(),
        }))
    }

    #[test]
    fn a_timeout_marks_the_device_not_answering() {
        let f = follow_up(&timeout(), false, V2);
        assert_eq!(
            f.not_answering.as_deref(),
            Some("timeout waiting for STATUS_OK (last line heard: none)")
        );
        assert!(!f.resync && !f.reread_status);
        assert_eq!(follow_up(&unloaded(), false, V2).not_answering, None);
    }

    #[test]
    fn only_uncorrelated_legacy_firmware_is_resynchronised_after_a_timeout() {
        assert!(follow_up(&timeout(), false, V1).resync);
        for link in [
            V2,
            LinkFacts { lost: true, ..V1 },
            LinkFacts {
                correlated: true,
                ..V1
            },
        ] {
            assert!(!follow_up(&timeout(), false, link).resync, "{link:?}");
        }
        assert!(!follow_up(&unloaded(), true, V1).resync);
    }

    #[test]
    fn slots_are_reread_after_a_load_or_unload_that_worked() {
        assert!(follow_up(&unloaded(), true, V2).reread_status);
        assert!(!follow_up(&unloaded(), false, V2).reread_status);
        assert!(!follow_up(&timeout(), true, V2).reread_status);
        assert!(!follow_up(&unloaded(), true, LinkFacts { lost: true, ..V2 }).reread_status);
    }
}
