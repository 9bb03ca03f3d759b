//! The WAMR 2.4.4 / 2.4.5 security fixes that `firmware-agent/README.md` ("WAMR security fixes")
//! assesses as not applicable rely on features our WAMR build leaves out. These tests fail if a
//! build change brings one of them back (then the assessment, and a patch, are due).

mod common;

use common::{wat, Sim};

/// CVE-2025-64704 (v128.store): SIMD is not compiled in, so a SIMD module never loads.
#[test]
fn simd_modules_are_refused() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    let simd = wat(r#"(module (memory 1)
      (func (export "f") (v128.store (i32.const 0) (v128.const i64x2 1 2))))"#);
    let reply = l.load("simd", &simd, "");
    assert!(reply.starts_with("LOAD_ERR code=LOAD_FAIL"), "{reply}");
}

/// CVE-2026-54914 (WASI poll_oneoff): WASI is not compiled in, so its imports never resolve.
#[test]
fn wasi_imports_are_refused() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    let wasi = wat(r#"(module
      (import "wasi_snapshot_preview1" "poll_oneoff" (func (param i32 i32 i32 i32) (result i32)))
      (memory 1))"#);
    assert_eq!(
        l.load("wasi", &wasi, ""),
        "LOAD_ERR code=LOAD_FAIL msg=\"unresolved import wasi_snapshot_preview1.poll_oneoff\""
    );
}

/// CVE-2025-64713 and CVE-2026-54912 are in the fast interpreter (its loader's operand-offset
/// bookkeeping), which no agent build compiles: the shared feature set picks the classic one
/// and leaves WASI and SIMD out. Nothing a module can send tells the two interpreters apart,
/// so this checks the one place the choice is made.
#[test]
fn every_agent_build_uses_the_classic_interpreter_without_wasi() {
    let cmake = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../wamr/agent-wamr.cmake"
    ))
    .unwrap();
    let set = |key: &str| {
        cmake
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("set({key} ")))
            .and_then(|rest| rest.split(')').next())
            .map(str::trim)
            .unwrap_or_else(|| panic!("{key} not set in agent-wamr.cmake"))
            .to_string()
    };
    assert_eq!(set("WAMR_BUILD_INTERP"), "1");
    assert_eq!(
        set("WAMR_BUILD_FAST_INTERP"),
        "0",
        "CVE-2025-64713, CVE-2026-54912 apply"
    );
    assert_eq!(set("WAMR_BUILD_LIBC_WASI"), "0", "CVE-2026-54914 applies");
    assert!(
        !cmake.contains("set(WAMR_BUILD_SIMD 1"),
        "CVE-2025-64704 needs re-assessing"
    );
}
