//! Signed modules on the simulated board (docs/PROTOCOL.md "Signed modules"): the real C agent
//! with real WAMR verifies Ed25519 signatures (Monocypher) before any byte reaches WAMR.
//! Unsigned, tampered, wrong-key, wrong-module, wrong-target and replayed-old uploads are refused
//! and nothing of them runs; trusted keys rotate; minimum versions persist.

mod common;

use common::{module, wat, Link, Sim};
use ed25519_dalek::{Signer, SigningKey};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use wasmbed_agent_proto::signing::{hex, signed_message, AotTarget, KeyId};
use wasmbed_agent_proto::ModuleId;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn pub_hex(k: &SigningKey) -> String {
    hex(k.verifying_key().as_bytes())
}

fn key_id(k: &SigningKey) -> String {
    KeyId::of(k.verifying_key().as_bytes()).to_string()
}

/// The SIG line for `bytes` as module `id` version `ver`, signed by `k`.
fn sig_line(
    k: &SigningKey,
    id: &str,
    ver: u32,
    target: Option<&AotTarget>,
    bytes: &[u8],
) -> String {
    let msg = signed_message(&ModuleId::new(id).unwrap(), ver, target, bytes).unwrap();
    let sig = k.sign(&msg);
    format!(
        "SIG module_id={id} ver={ver} key={} sig={}",
        key_id(k),
        hex(&sig.to_bytes())
    )
}

/// SIG then a v1 LOAD; the final LOAD_ line.
fn signed_load(l: &mut Link, sig: &str, id: &str, bytes: &[u8]) -> String {
    l.answers(sig, &format!("SIG_OK module_id={id}"));
    l.load(id, bytes, "")
}

/// A module whose start function toggles the LED: if any of it ran, STATUS shows led_toggles>0.
fn side_effect() -> Vec<u8> {
    wat(r#"(module
  (import "env" "led_toggle" (func $led (param i32)))
  (func $start (call $led (i32.const 0)))
  (func (export "noop"))
  (start $start))"#)
}

/// Nothing is loaded and nothing ever ran.
#[track_caller]
fn nothing_ran(l: &mut Link) {
    let st = l.ask("STATUS", "STATUS_OK");
    assert!(st.contains("modules=\"none\""), "{st}");
    assert!(st.contains(" led_toggles=0"), "{st}");
}

/// `bytes` with one byte flipped inside a trailing custom section: still a valid module.
fn tampered(bytes: &[u8]) -> Vec<u8> {
    let mut m = bytes.to_vec();
    m.extend_from_slice(&[0, 5, 4, b'n', b'o', b't', b'e']);
    m
}

#[test]
fn info_names_mode_and_keys() {
    let (a, b) = (key(1), key(2));
    let sim = Sim::tcp(&["--trusted-key", &pub_hex(&a), "--trusted-key", &pub_hex(&b)]);
    let mut l = sim.hello();
    let info = l.ask("INFO", "INFO_OK");
    assert!(
        info.contains(&format!(
            " sig=required sig_keys={},{} ",
            key_id(&a),
            key_id(&b)
        )),
        "{info}"
    );
    // without keys the feature is off: INFO as before, SIG unknown like on older firmware
    let plain = Sim::tcp(&[]);
    let mut p = plain.hello();
    assert!(!p.ask("INFO", "INFO_OK").contains(" sig="));
    p.answers(
        &sig_line(&a, "m", 1, None, b"\0asm"),
        "ERROR code=UNKNOWN_COMMAND",
    );
    p.answers("MINVER module_id=m", "ERROR code=UNKNOWN_COMMAND");
}

#[test]
fn signed_module_loads_and_runs() {
    let k = key(1);
    let sim = Sim::tcp(&["--trusted-key", &pub_hex(&k)]);
    let mut l = sim.hello();
    let m = module("math_ops");
    assert_eq!(
        signed_load(&mut l, &sig_line(&k, "math", 1, None, &m), "math", &m),
        "LOAD_OK"
    );
    let r = l.run(
        "START module_id=math func=add args=\"a0=200,a1=26\"",
        Duration::from_secs(5),
    );
    assert!(r.contains("ret_i32=226"), "{r}");
}

#[test]
fn unsigned_is_refused_on_v1_and_chunked_paths_and_never_runs() {
    let k = key(1);
    let sim = Sim::tcp(&["--trusted-key", &pub_hex(&k)]);
    let mut l = sim.hello();
    let m = side_effect();
    // a legacy gateway: plain v1 LOAD, no SIG
    let r = l.load("fx", &m, "");
    assert!(
        r.starts_with("LOAD_ERR code=BAD_SIGNATURE msg=\"unsigned module"),
        "{r}"
    );
    nothing_ran(&mut l);
    // the v2 chunked path
    l.send(&format!(
        "LOAD module_id=fx size={} crc32={:08x} chunked=1",
        m.len(),
        common::crc32(&m)
    ));
    l.expect("LOAD_READY");
    l.send(&format!(
        "CHUNK offset=0 size={} crc32={:08x}",
        m.len(),
        common::crc32(&m)
    ));
    l.send_raw(&m);
    l.expect("CHUNK_OK");
    let r = l.expect("LOAD_");
    assert!(r.starts_with("LOAD_ERR code=BAD_SIGNATURE"), "{r}");
    nothing_ran(&mut l);
    // the slot is free again: the same module, signed, loads (and its start function runs)
    assert_eq!(
        signed_load(&mut l, &sig_line(&k, "fx", 0, None, &m), "fx", &m),
        "LOAD_OK"
    );
    let st = l.ask("STATUS", "STATUS_OK");
    assert!(
        st.contains("fx:LOADED") && !st.contains(" led_toggles=0"),
        "{st}"
    );
}

#[test]
fn tampered_wrong_key_and_wrong_module_are_refused() {
    let (k, other) = (key(1), key(2));
    let sim = Sim::tcp(&["--trusted-key", &pub_hex(&k)]);
    let mut l = sim.hello();
    let m = side_effect();

    // signed, then one byte changed (the CRC is of the changed bytes: only the signature sees it)
    let sig = sig_line(&k, "fx", 0, None, &m);
    let r = signed_load(&mut l, &sig, "fx", &tampered(&m));
    assert!(
        r.starts_with("LOAD_ERR code=BAD_SIGNATURE msg=\"signature does not match"),
        "{r}"
    );
    nothing_ran(&mut l);

    // signed by a key the device does not trust
    let r = signed_load(&mut l, &sig_line(&other, "fx", 0, None, &m), "fx", &m);
    assert_eq!(
        r,
        format!(
            "LOAD_ERR code=UNTRUSTED_KEY msg=\"key {} is not trusted by this device (trusted: {})\"",
            key_id(&other),
            key_id(&k)
        )
    );
    nothing_ran(&mut l);

    // the trusted key's id with another key's signature
    let forged = sig_line(&other, "fx", 0, None, &m).replace(&key_id(&other), &key_id(&k));
    let r = signed_load(&mut l, &forged, "fx", &m);
    assert!(r.starts_with("LOAD_ERR code=BAD_SIGNATURE"), "{r}");

    // a signature made for module id "a" does not load the same bytes as "fx"
    let for_a = sig_line(&k, "a", 0, None, &m).replace("module_id=a ", "module_id=fx ");
    let r = signed_load(&mut l, &for_a, "fx", &m);
    assert!(r.starts_with("LOAD_ERR code=BAD_SIGNATURE"), "{r}");
    // a SIG for another module is not used by this LOAD: it is unsigned
    l.answers(&sig_line(&k, "a", 0, None, &m), "SIG_OK module_id=a");
    let r = l.load("fx", &m, "");
    assert!(
        r.starts_with("LOAD_ERR code=BAD_SIGNATURE msg=\"unsigned module"),
        "{r}"
    );
    // a signed version claim changed on the wire
    let r = signed_load(
        &mut l,
        &sig_line(&k, "fx", 1, None, &m).replace("ver=1", "ver=9"),
        "fx",
        &m,
    );
    assert!(r.starts_with("LOAD_ERR code=BAD_SIGNATURE"), "{r}");
    nothing_ran(&mut l);

    // malformed SIG lines
    l.answers(
        "SIG module_id=fx ver=1 key=00 sig=00",
        "SIG_ERR code=BAD_PARAMS module_id=fx msg=\"ver: decimal, key: 16 hex, sig: 128 hex\"",
    );
    l.answers(
        "SIG module_id=fx",
        "SIG_ERR code=BAD_PARAMS msg=\"missing module_id/ver/key/sig\"",
    );
}

#[test]
fn replayed_old_version_is_refused_and_floors_persist() {
    let k = key(1);
    let dir = tempfile::tempdir().unwrap();
    let floors = dir.path().join("floors");
    let floors_arg = floors.to_str().unwrap();
    let m = module("math_ops");
    let fx = side_effect();
    {
        let sim = Sim::tcp(&["--trusted-key", &pub_hex(&k), "--floor-file", floors_arg]);
        let mut l = sim.hello();
        let v1 = sig_line(&k, "math", 1, None, &m);
        let v2 = sig_line(&k, "math", 2, None, &m);
        assert_eq!(signed_load(&mut l, &v2, "math", &m), "LOAD_OK");
        l.answers("MINVER module_id=math", "MINVER_OK module_id=math ver=2");
        assert_eq!(
            signed_load(&mut l, &v1, "math", &m),
            "LOAD_ERR code=ROLLBACK msg=\"version 1 of math is older than this device's minimum 2\""
        );
        // the same version again is fine (reload of the deployed build)
        assert_eq!(signed_load(&mut l, &v2, "math", &m), "LOAD_OK");
        // raised by command, never lowered
        l.answers("MINVER module_id=fx ver=5", "MINVER_OK module_id=fx ver=5");
        l.answers("MINVER module_id=fx ver=3", "MINVER_OK module_id=fx ver=5");
        let r = signed_load(&mut l, &sig_line(&k, "fx", 4, None, &fx), "fx", &fx);
        assert!(r.starts_with("LOAD_ERR code=ROLLBACK"), "{r}");
        let st = l.ask("STATUS", "STATUS_OK");
        assert!(st.contains(" led_toggles=0") && !st.contains("fx:"), "{st}");
    }
    let saved = std::fs::read_to_string(&floors).unwrap();
    assert_eq!(saved, "math 2\nfx 5\n");
    // a restarted board still refuses the old build
    let sim = Sim::tcp(&["--trusted-key", &pub_hex(&k), "--floor-file", floors_arg]);
    let mut l = sim.hello();
    let r = signed_load(&mut l, &sig_line(&k, "math", 1, None, &m), "math", &m);
    assert!(r.starts_with("LOAD_ERR code=ROLLBACK"), "{r}");
    assert_eq!(
        signed_load(&mut l, &sig_line(&k, "math", 3, None, &m), "math", &m),
        "LOAD_OK"
    );
    drop(l);
    drop(sim);
    assert_eq!(std::fs::read_to_string(&floors).unwrap(), "math 3\nfx 5\n");
}

#[test]
fn key_rotation_add_deploy_retire() {
    let (old, new) = (key(1), key(2));
    let m = module("math_ops");
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("trusted.keys");
    // step 1: the device trusts both (keys file), modules signed by either load
    std::fs::write(
        &keys,
        format!("# release keys\n{}\n\n{}\n", pub_hex(&old), pub_hex(&new)),
    )
    .unwrap();
    {
        let sim = Sim::tcp(&["--trusted-keys", keys.to_str().unwrap()]);
        let mut l = sim.hello();
        assert_eq!(
            signed_load(&mut l, &sig_line(&old, "a", 0, None, &m), "a", &m),
            "LOAD_OK"
        );
        assert_eq!(
            signed_load(&mut l, &sig_line(&new, "b", 0, None, &m), "b", &m),
            "LOAD_OK"
        );
    }
    // step 2: the old key is retired
    std::fs::write(&keys, format!("{}\n", pub_hex(&new))).unwrap();
    let sim = Sim::tcp(&["--trusted-keys", keys.to_str().unwrap()]);
    let mut l = sim.hello();
    let r = signed_load(&mut l, &sig_line(&old, "a", 0, None, &m), "a", &m);
    assert!(r.starts_with("LOAD_ERR code=UNTRUSTED_KEY"), "{r}");
    assert_eq!(
        signed_load(&mut l, &sig_line(&new, "a", 0, None, &m), "a", &m),
        "LOAD_OK"
    );
}

#[test]
fn optional_mode_loads_unsigned_but_checks_signed() {
    let k = key(1);
    let sim = Sim::tcp(&["--trusted-key", &pub_hex(&k), "--signatures", "optional"]);
    let mut l = sim.hello();
    assert!(l.ask("INFO", "INFO_OK").contains(" sig=optional "));
    let m = module("math_ops");
    assert_eq!(l.load("a", &m, ""), "LOAD_OK");
    let r = signed_load(&mut l, &sig_line(&k, "b", 0, None, &m), "b", &tampered(&m));
    assert!(r.starts_with("LOAD_ERR code=BAD_SIGNATURE"), "{r}");
}

#[test]
fn bad_options_are_refused() {
    for args in [
        &["--trusted-key", "abcd"][..],
        &["--signatures", "required"][..],
        &["--signatures", "maybe"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_wasmbed-agent-sim"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

fn wamrc() -> Option<PathBuf> {
    let cand = std::env::var_os("WAMRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/wamrc/wamrc")
        });
    if cand.exists() {
        Some(cand)
    } else {
        eprintln!(
            "SKIPPED: no wamrc at {} (set WAMRC or run tools/wamrc/build.sh)",
            cand.display()
        );
        None
    }
}

#[test]
fn aot_signature_names_its_target() {
    let Some(wamrc) = wamrc() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (wasm, out) = (dir.path().join("m.wasm"), dir.path().join("m.aot"));
    std::fs::write(&wasm, module("math_ops")).unwrap();
    let st = Command::new(wamrc)
        .args(["--target=x86_64", "--bounds-checks=1", "-o"])
        .arg(&out)
        .arg(&wasm)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let aot = std::fs::read(&out).unwrap();
    let k = key(1);
    let sim = Sim::tcp(&["--trusted-key", &pub_hex(&k)]);
    let mut l = sim.hello();
    let sim_target = AotTarget {
        arch: "x86_64".into(),
        cpu: "generic".into(),
        features: "none".into(),
        abi: "gnu".into(),
        aot_version: 6,
    };
    let board = AotTarget {
        arch: "thumbv7em".into(),
        cpu: "cortex-m4".into(),
        abi: "eabihf".into(),
        ..sim_target.clone()
    };
    // signed for a Cortex-M4 board: not valid here, even though the bytes are
    let r = signed_load(&mut l, &sig_line(&k, "m", 0, Some(&board), &aot), "m", &aot);
    assert!(r.starts_with("LOAD_ERR code=BAD_SIGNATURE"), "{r}");
    // an AOT signature is not a wasm signature of the same bytes
    let r = signed_load(
        &mut l,
        &sig_line(&k, "m", 0, None, &module("math_ops")),
        "m",
        &aot,
    );
    assert!(r.starts_with("LOAD_ERR code=BAD_SIGNATURE"), "{r}");
    assert!(l.ask("STATUS", "STATUS_OK").contains("modules=\"none\""));
    let r = signed_load(
        &mut l,
        &sig_line(&k, "m", 0, Some(&sim_target), &aot),
        "m",
        &aot,
    );
    assert_eq!(r, "LOAD_OK");
    let r = l.run(
        "START module_id=m func=add args=\"a0=2,a1=3\"",
        Duration::from_secs(5),
    );
    assert!(r.contains("ret_i32=5"), "{r}");
}
