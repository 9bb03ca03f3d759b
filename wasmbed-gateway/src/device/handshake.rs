//! What a device is, learned on each (re)connect, without IO: the handshake's steps in order,
//! what each answer does to the device's state, and the deadlines' link speed. The device task
//! ([`super::task`]) drives the step [`Handshake::next`] names through its session and hands the
//! outcome back here.
//!
//! Steps: `INFO` (v1 firmware answers `ERROR code=UNKNOWN_COMMAND`: the legacy fallback; the
//! identity challenge follows it), then `STATUS`. A new step is a new [`Step`] in
//! [`Handshake::new`]'s list, a session the task drives for it, and a function here for its
//! answer.
//!
//! A HELLO heard during any step means the device (re)booted while it was being asked: what it
//! said so far may be cut (an STM32 image switches its receiver on as it says HELLO, so the
//! connect-time INFO can arrive half), and what it proved belongs to a run that is gone. The
//! handshake then starts over from `INFO` ([`Handshake::restart`]), at most
//! [`HANDSHAKE_RESTARTS`] times (docs/PROTOCOL.md "Handshake restart").

use std::collections::VecDeque;

use wasmbed_agent_proto::{InfoOk, Line, Modules, SlotState, StatusOk};
use wasmbed_api::InfoResult;

use super::DeviceState;
use crate::pipeline::{legacy_natives, AotExact, AotTarget, DeviceCaps};

/// One step of the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// `INFO`, sent without `seq=`: its answer says whether the device correlates.
    Info,
    /// `STATUS`: the slots in use and memory.
    Status,
}

/// How many times one handshake starts over because the device said HELLO during it; one more
/// HELLO and it gives up ([`Handshake::restart`]).
pub(crate) const HANDSHAKE_RESTARTS: u32 = 3;

/// The handshake of one link.
#[derive(Debug)]
pub(crate) struct Handshake {
    steps: VecDeque<Step>,
    restarts: u32,
}

/// The device kept rebooting during the handshake: [`HANDSHAKE_RESTARTS`] restarts were not
/// enough. What the device is stays unknown until its next HELLO or `info`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the device said HELLO {hellos} times during its handshake (it keeps rebooting?): its last \
     HELLO was `{last}`; see its console with `wasmbed-host logs`, then ask again with \
     `wasmbed-host info`"
)]
pub(crate) struct GaveUp {
    /// HELLOs heard during this handshake.
    pub hellos: u32,
    /// The last one.
    pub last: String,
}

impl Handshake {
    /// A fresh link: every step, in order.
    pub(crate) fn new() -> Self {
        Handshake {
            steps: VecDeque::from([Step::Info, Step::Status]),
            restarts: 0,
        }
    }

    /// Only a re-read of what the device holds (after a LOAD or UNLOAD).
    pub(crate) fn status_only() -> Self {
        Handshake {
            steps: VecDeque::from([Step::Status]),
            restarts: 0,
        }
    }

    /// The next step to drive; `None` when done.
    pub(crate) fn next(&mut self) -> Option<Step> {
        self.steps.pop_front()
    }

    /// The device said `hello` during a step: every step again from `INFO` (also after a
    /// STATUS-only re-read: a rebooted device must be asked what it is), and the number of this
    /// restart; `Err` when [`HANDSHAKE_RESTARTS`] are used up (no step is left then).
    pub(crate) fn restart(&mut self, hello: &str) -> Result<u32, GaveUp> {
        self.restarts += 1;
        if self.restarts > HANDSHAKE_RESTARTS {
            self.steps.clear();
            return Err(GaveUp {
                hellos: self.restarts,
                last: hello.to_string(),
            });
        }
        self.steps = VecDeque::from([Step::Info, Step::Status]);
        Ok(self.restarts)
    }
}

/// The link speed the deadlines assume, in bytes/s: the configured line speed, else the one INFO
/// reports (`baud=`), else the configured `link_bytes_per_sec` (`base`). The second value is a
/// warning to log when the configuration and the firmware disagree.
pub(crate) fn link_rate(
    configured: Option<u32>,
    reported: Option<u32>,
    base: u32,
) -> (u32, Option<String>) {
    match (configured, reported) {
        (Some(cfg), Some(rep)) if cfg != rep => (
            base,
            Some(format!(
                "the firmware reports a {rep} baud UART, the configuration says {cfg}: \
                 deadlines use {cfg}"
            )),
        ),
        (None, Some(rep)) if rep > 0 => ((rep / 10).max(1), None),
        _ => (base, None),
    }
}

/// Records an INFO answer (`None`: v1 firmware, which has no INFO) in the device state; the AOT
/// target of the configuration (`configured_aot`) wins over the one INFO reports.
pub(crate) fn apply_info(
    s: &mut DeviceState,
    info: Option<(&InfoOk, &Line)>,
    configured_aot: Option<AotTarget>,
) {
    s.handshake = true;
    s.sig_mode = info.and_then(|(i, _)| i.sig.clone());
    s.sig_target = info.and_then(|(i, _)| wasmbed_agent_proto::AotTarget::from_info(i));
    let Some((i, line)) = info else {
        s.proto = Some(1);
        s.caps = DeviceCaps {
            natives: legacy_natives(),
            ..Default::default()
        };
        s.aot = configured_aot;
        s.info = Some(InfoResult {
            proto: 1,
            board: s.board.clone(),
            fw: s.firmware.clone(),
            ..Default::default()
        });
        return;
    };
    s.proto = Some(i.proto);
    s.board = i.board.clone();
    s.firmware = i.fw.clone();
    s.slots_total = i.slots;
    s.caps = DeviceCaps {
        natives: i
            .natives
            .iter()
            .map(|n| (n.name.clone(), n.signature.clone()))
            .collect(),
        max_module: i.max_module.map(u64::from),
        memory_limit: i.pool_total.map(u64::from),
        aot_arch: i.aot_arch.clone(),
        aot_version: i.aot_version,
        // only Wasmbed agents name a bounds-check need (and check descriptors)
        aot_exact: i.aot_bounds_checks.as_ref().map(|b| AotExact {
            cpu: i.aot_cpu.clone().unwrap_or_else(|| "generic".into()),
            features: i.aot_features.clone().unwrap_or_else(|| "none".into()),
            abi: i.aot_abi.clone().unwrap_or_else(|| "gnu".into()),
            bounds_required: b == "required",
        }),
    };
    s.aot = configured_aot.or_else(|| {
        i.aot_arch
            .clone()
            .filter(|a| a != "none")
            .map(|target| AotTarget {
                target,
                cpu: i.aot_cpu.clone().filter(|c| c != "generic"),
                abi: i.aot_abi.clone(),
            })
    });
    s.info = Some(InfoResult {
        line: Some(line.raw.clone()),
        proto: i.proto,
        board: i.board.clone(),
        fw: i.fw.clone(),
        wamr: i.wamr.clone(),
        aot_arch: i.aot_arch.clone(),
        aot_cpu: i.aot_cpu.clone(),
        aot_abi: i.aot_abi.clone(),
        aot_version: i.aot_version,
        slots: i.slots,
        max_module: i.max_module,
        pool_total: i.pool_total,
        pool_free: i.pool_free,
        chunk_max: i.chunk_max,
        line_max: i.line_max,
        baud: i.baud,
        stop: i.stop.as_ref().map(|m| m.to_string()),
        natives: Some(
            i.natives
                .iter()
                .map(|n| format!("{}:{}", n.name, n.signature))
                .collect(),
        ),
    });
}

/// Records a STATUS answer in the device state (slots in use; v1 firmware has two slots) and
/// returns the modules it shows running (the job table revives jobs thought lost).
pub(crate) fn apply_status(s: &mut DeviceState, st: &StatusOk) -> Vec<String> {
    s.slots_used = match &st.modules {
        Modules::Slots(v) => Some(v.len() as u32),
        Modules::None => Some(0),
        Modules::Text(_) => None,
    };
    if s.slots_total.is_none() && s.proto == Some(1) {
        s.slots_total = Some(2);
    }
    match &st.modules {
        Modules::Slots(v) => v
            .iter()
            .filter(|m| m.state == SlotState::Running)
            .map(|m| m.module_id.clone())
            .collect(),
        _ => Vec::new(),
    }
}

/// The device said something: it answers again, once it has answered INFO on this link.
pub(crate) fn heard(s: &mut DeviceState, now: std::time::Instant) {
    s.last_seen = Some(now);
    if s.handshake {
        s.online = true;
        s.offline_reason = None;
    }
}

#[cfg(test)]
mod tests {
    use wasmbed_agent_proto::AgentLine;

    use super::*;

    #[test]
    fn a_fresh_link_asks_info_then_status_a_reread_only_status() {
        let mut h = Handshake::new();
        assert_eq!(
            (h.next(), h.next(), h.next()),
            (Some(Step::Info), Some(Step::Status), None)
        );
        let mut h = Handshake::status_only();
        assert_eq!((h.next(), h.next()), (Some(Step::Status), None));
    }

    #[test]
    fn a_hello_restarts_from_info_a_bounded_number_of_times() {
        let hello = "HELLO device_id=nucleo-f446re rtos=baremetal proto=2";
        let mut h = Handshake::new();
        assert_eq!(h.next(), Some(Step::Info));
        for n in 1..=HANDSHAKE_RESTARTS {
            assert_eq!(h.restart(hello), Ok(n));
            assert_eq!(h.next(), Some(Step::Info), "restart {n} asks INFO first");
        }
        assert_eq!(h.next(), Some(Step::Status));
        let gave_up = h.restart(hello).unwrap_err();
        assert_eq!(gave_up.hellos, HANDSHAKE_RESTARTS + 1);
        assert_eq!(h.next(), None, "nothing more is asked after giving up");
        let text = gave_up.to_string();
        assert!(
            text.contains(hello) && text.contains("wasmbed-host info"),
            "{text}"
        );

        // A re-read interrupted by a reboot becomes the whole handshake.
        let mut h = Handshake::status_only();
        assert_eq!(h.next(), Some(Step::Status));
        assert_eq!(h.restart(hello), Ok(1));
        assert_eq!(
            (h.next(), h.next(), h.next()),
            (Some(Step::Info), Some(Step::Status), None)
        );
    }

    #[test]
    fn deadlines_follow_the_configured_then_the_reported_speed() {
        assert_eq!(link_rate(None, Some(921_600), 11_520), (92_160, None));
        assert_eq!(link_rate(None, None, 11_520), (11_520, None));
        assert_eq!(
            link_rate(Some(115_200), Some(115_200), 11_520),
            (11_520, None)
        );
        let (rate, warning) = link_rate(Some(115_200), Some(921_600), 11_520);
        assert_eq!(rate, 11_520);
        assert!(warning.unwrap().contains("921600 baud"));
    }

    #[test]
    fn info_fills_the_state_and_v1_gets_the_legacy_natives() {
        let line = Line::parse(
            "INFO_OK proto=2 board=sim fw=1 slots=2 aot_arch=x86_64 aot_cpu=generic \
             pool_total=4096 natives=\"log:(ii)\" seq=1",
        );
        let AgentLine::InfoOk(info) = &line.msg else {
            panic!("{line:?}")
        };
        let mut s = DeviceState::default();
        apply_info(&mut s, Some((info, &line)), None);
        assert!(s.handshake);
        assert_eq!((s.proto, s.slots_total), (Some(2), Some(2)));
        assert_eq!(s.board.as_deref(), Some("sim"));
        assert_eq!(s.caps.memory_limit, Some(4096));
        let aot = s.aot.clone().expect("AOT target from INFO");
        assert_eq!((aot.target.as_str(), aot.cpu), ("x86_64", None));
        assert_eq!(
            s.info.as_ref().unwrap().line.as_deref(),
            Some(line.raw.as_str())
        );

        let configured = AotTarget {
            target: "thumbv7em".into(),
            cpu: Some("cortex-m4".into()),
            abi: None,
        };
        apply_info(&mut s, Some((info, &line)), Some(configured.clone()));
        assert_eq!(s.aot, Some(configured), "the configuration wins");

        let mut s = DeviceState::default();
        apply_info(&mut s, None, None);
        assert_eq!(s.proto, Some(1));
        assert_eq!(s.caps.natives, legacy_natives());
        assert_eq!(s.info.as_ref().map(|i| i.proto), Some(1));
    }

    fn status_of(raw: &str) -> StatusOk {
        match Line::parse(raw).msg {
            AgentLine::StatusOk(st) => st,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn status_counts_the_slots_and_names_the_running_modules() {
        let mut s = DeviceState::default();
        let running = apply_status(
            &mut s,
            &status_of(
                "STATUS_OK modules=\"a:RUNNING:wasm=8:stack_free=0,b:LOADED:wasm=8:stack_free=0\"",
            ),
        );
        assert_eq!(running, vec!["a".to_string()]);
        assert_eq!((s.slots_used, s.slots_total), (Some(2), None));
        // v1 firmware has no INFO `slots=`: two slots
        s.proto = Some(1);
        assert!(apply_status(&mut s, &status_of("STATUS_OK modules=\"none\"")).is_empty());
        assert_eq!((s.slots_used, s.slots_total), (Some(0), Some(2)));
        // FW-A's free text says nothing countable
        apply_status(
            &mut s,
            &status_of("STATUS_OK modules=\"wasm_module(loaded)\" runner=RUNNING"),
        );
        assert_eq!(s.slots_used, None);
    }

    #[test]
    fn a_device_heard_is_online_only_after_its_handshake() {
        let now = std::time::Instant::now();
        let mut s = DeviceState {
            offline_reason: Some("link up, waiting for the device to answer INFO".into()),
            ..Default::default()
        };
        heard(&mut s, now);
        assert_eq!(s.last_seen, Some(now));
        assert!(!s.online && s.offline_reason.is_some());
        s.handshake = true;
        heard(&mut s, now);
        assert!(s.online && s.offline_reason.is_none());
    }
}
