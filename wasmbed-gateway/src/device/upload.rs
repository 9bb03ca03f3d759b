//! An upload's decisions, without IO: what a deploy request names (checked before any byte is
//! sent), whether the device already holds the module (then nothing is sent), which signature
//! goes with it, and the options of its `LOAD`. The device task ([`super::task`]) drives the
//! STATUS and the protocol crate's `LoadSession` around these.

use std::time::Duration;

use wasmbed_agent_proto::session::LoadOptions;
use wasmbed_agent_proto::{Crc32, ModuleId, ModuleKind, ModuleSignature, Modules};

use super::{DeployRequest, DeviceError, Loaded};
use crate::signing::ModuleKey;

/// The slot ids of a deploy request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slots {
    /// The slot loaded.
    pub(crate) module_id: ModuleId,
    /// The slot evicted to make room (`replace_victim=`).
    pub(crate) victim: Option<ModuleId>,
}

/// Checks the ids a deploy request names; an error means nothing may be sent.
pub(crate) fn slots(d: &DeployRequest) -> Result<Slots, DeviceError> {
    Ok(Slots {
        module_id: ModuleId::new(d.module_id.clone())?,
        victim: d.replace_victim.clone().map(ModuleId::new).transpose()?,
    })
}

/// The device already holds this module (same slot, size and CRC in its STATUS): the skipped
/// upload's reply, else `None` (upload it).
pub(crate) fn already_held(modules: &Modules, d: &DeployRequest) -> Option<Loaded> {
    let Modules::Slots(slots) = modules else {
        return None;
    };
    let crc = Crc32::of(&d.bytes);
    let same = slots.iter().any(|m| {
        m.module_id == d.module_id && m.wasm_size as usize == d.bytes.len() && m.crc32 == Some(crc)
    });
    same.then(|| Loaded {
        line: format!(
            "skipped: {} already holds {} bytes crc32={:08x}",
            d.module_id,
            d.bytes.len(),
            crc.0
        ),
        skipped: true,
        chunked: false,
        transfer: Duration::ZERO,
    })
}

/// What the device checks of signatures (its INFO `sig=` and AOT target).
#[derive(Debug, Clone, Default)]
pub(crate) struct SigCheck {
    /// INFO `sig=` (`required`/`optional`); `None`: the device checks none.
    pub(crate) mode: Option<String>,
    /// The device's exact AOT target, which AOT signatures name.
    pub(crate) target: Option<wasmbed_agent_proto::AotTarget>,
}

/// The signature an upload carries: none for a device that does not check (no INFO `sig=`),
/// else the host's own (as-is), else one made with the gateway's key (`[signing] key_file`),
/// else none (the device then refuses it if it requires signatures, saying so).
pub(crate) fn signature(
    check: &SigCheck,
    module_id: &ModuleId,
    d: &DeployRequest,
    key: Option<&ModuleKey>,
) -> Result<Option<ModuleSignature>, DeviceError> {
    if check.mode.is_none() {
        return Ok(None);
    }
    if let Some(sig) = d.signature {
        return Ok(Some(sig));
    }
    let Some(key) = key else {
        return Ok(None);
    };
    let target = match ModuleKind::of(&d.bytes) {
        ModuleKind::Aot => check.target.as_ref(),
        ModuleKind::Wasm => None,
    };
    Ok(Some(key.sign(module_id, d.version, target, &d.bytes)?))
}

/// The options of the `LOAD`: chunked on protocol v2 firmware, in chunks of half a second of
/// line time at `link_bytes_per_sec` (so progress moves at least twice a second); on an instant
/// link (`None`: no line speed, every chunk a round trip and nothing else) in the largest chunks
/// the agent takes.
pub(crate) fn load_options(
    d: &DeployRequest,
    victim: Option<ModuleId>,
    proto: Option<u32>,
    link_bytes_per_sec: Option<u32>,
    signature: Option<ModuleSignature>,
) -> LoadOptions {
    LoadOptions {
        chunked: proto == Some(2),
        resume: false,
        replace: d.replace,
        replace_victim: victim,
        max_chunk: link_bytes_per_sec.map(|r| (r / 2).max(64)),
        signature,
        // set by the task once it knows the link's speed for this upload (`compress.rs`)
        deflated: None,
    }
}

/// The error of an upload the host cancelled (it went away).
pub(crate) fn cancelled() -> DeviceError {
    DeviceError::Cancelled {
        phase: "LOAD".into(),
    }
}

/// A LOAD that cleared a slot killed the jobs of these modules without a RESULT: its own and
/// its victim's, each with what killed it.
pub(crate) fn killed_by(d: &DeployRequest, by: &str) -> Vec<(String, String)> {
    let mut v = vec![(d.module_id.clone(), by.to_string())];
    if let Some(victim) = &d.replace_victim {
        v.push((victim.clone(), format!("{by} (as replace_victim)")));
    }
    v
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wasmbed_agent_proto::{Line, ModuleEntry};

    use super::*;

    fn req(id: &str, bytes: &[u8]) -> DeployRequest {
        DeployRequest {
            module_id: id.into(),
            bytes: Arc::new(bytes.to_vec()),
            replace: false,
            replace_victim: None,
            force: false,
            version: 1,
            signature: None,
        }
    }

    fn status(line: &str) -> Modules {
        match Line::parse(line).msg {
            wasmbed_agent_proto::AgentLine::StatusOk(s) => s.modules,
            other => panic!("not a STATUS_OK: {other:?}"),
        }
    }

    #[test]
    fn ids_are_checked_before_anything_is_sent() {
        assert!(slots(&req("math_ops", b"x")).is_ok());
        assert!(matches!(
            slots(&req("a:b", b"x")),
            Err(DeviceError::BadRequest(_))
        ));
        let mut d = req("m", b"x");
        d.replace_victim = Some("v=1".into());
        assert!(matches!(slots(&d), Err(DeviceError::BadRequest(_))));
        d.replace_victim = Some("v".into());
        assert_eq!(slots(&d).unwrap().victim.unwrap().as_str(), "v");
    }

    #[test]
    fn same_slot_size_and_crc_is_skipped_anything_else_uploaded() {
        let bytes = b"\0asm\x01\0\0\0";
        let crc = Crc32::of(bytes).0;
        let d = req("m", bytes);
        let held = status(&format!(
            "STATUS_OK modules=\"m:LOADED:wasm=8:stack_free=0:crc32={crc:08x}\""
        ));
        let l = already_held(&held, &d).expect("skipped");
        assert!(l.skipped && !l.chunked);
        assert_eq!(
            l.line,
            format!("skipped: m already holds 8 bytes crc32={crc:08x}")
        );
        // another CRC, another size, another slot, no CRC (FW-A), no list: uploaded
        let other_crc = format!(
            "STATUS_OK modules=\"m:LOADED:wasm=8:stack_free=0:crc32={:08x}\"",
            crc ^ 1
        );
        for line in [
            other_crc.as_str(),
            "STATUS_OK modules=\"m:LOADED:wasm=9:stack_free=0\"",
            "STATUS_OK modules=\"none\"",
        ] {
            assert_eq!(already_held(&status(line), &d), None, "{line}");
        }
        let other_slot = Modules::Slots(vec![ModuleEntry {
            module_id: "n".into(),
            ..match status(&format!(
                "STATUS_OK modules=\"m:LOADED:wasm=8:stack_free=0:crc32={crc:08x}\""
            )) {
                Modules::Slots(mut v) => v.remove(0),
                _ => unreachable!(),
            }
        }]);
        assert_eq!(already_held(&other_slot, &d), None);
        assert_eq!(
            already_held(&Modules::Text("wasm_module(loaded)".into()), &d),
            None
        );
    }

    #[test]
    fn a_device_that_checks_nothing_gets_no_signature() {
        let d = req("m", b"\0asm\x01\0\0\0");
        let id = ModuleId::new("m").unwrap();
        assert_eq!(
            signature(&SigCheck::default(), &id, &d, None).unwrap(),
            None
        );
        let check = SigCheck {
            mode: Some("optional".into()),
            target: None,
        };
        // checks, but neither the host nor the gateway has a key: none (the device decides)
        assert_eq!(signature(&check, &id, &d, None).unwrap(), None);
    }

    #[test]
    fn chunked_on_v2_in_half_a_second_of_line_time() {
        let mut d = req("m", b"x");
        d.replace = true;
        let o = load_options(&d, None, Some(2), Some(11_520), None);
        assert!(o.chunked && o.replace && !o.resume);
        assert_eq!(o.max_chunk, Some(5_760));
        let o = load_options(&d, None, Some(1), Some(50), None);
        assert!(!o.chunked);
        assert_eq!(o.max_chunk, Some(64), "never below 64 bytes");
        let o = load_options(&d, None, Some(2), None, None);
        assert!(o.chunked);
        assert_eq!(o.max_chunk, None, "instant link: the agent's chunk");
    }

    #[test]
    fn a_cleared_slot_kills_the_module_and_its_victim() {
        let mut d = req("m", b"x");
        assert_eq!(killed_by(&d, "LOAD"), vec![("m".into(), "LOAD".into())]);
        d.replace_victim = Some("v".into());
        assert_eq!(
            killed_by(&d, "LOAD"),
            vec![
                ("m".into(), "LOAD".into()),
                ("v".into(), "LOAD (as replace_victim)".into())
            ]
        );
    }
}
