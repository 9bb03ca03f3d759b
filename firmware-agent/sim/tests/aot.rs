//! x86_64 AOT modules on the simulated board (needs the project's `wamrc`: `$WAMRC`, or
//! `target/wamrc/wamrc` from `tools/wamrc/build.sh`; without it these tests say so and pass).
//! The sim runs WAMR without hardware bounds checks, so AOT files for it are compiled with
//! `--bounds-checks=1`.

mod common;

use common::{module, Sim};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

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

fn aot(wamrc: &PathBuf, name: &str) -> Vec<u8> {
    aot_with(wamrc, name, &["--target=x86_64", "--bounds-checks=1"])
}

fn aot_with(wamrc: &PathBuf, name: &str, flags: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join(format!("{name}.wasm"));
    let out = dir.path().join(format!("{name}.aot"));
    std::fs::write(&wasm, module(name)).unwrap();
    let st = Command::new(wamrc)
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&wasm)
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "wamrc {name}");
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..4], b"\0aot");
    bytes
}

#[test]
fn aot_modules_run_and_stop() {
    let Some(wamrc) = wamrc() else { return };
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    l.load_ok("math", &aot(&wamrc, "math_ops"));
    assert_eq!(
        l.run(
            r#"START module_id=math func=add args="a=200,b=26""#,
            Duration::from_secs(5)
        ),
        "RESULT status=OK module_id=math func=add ret_i32=226"
    );
    l.load_ok("busy", &aot(&wamrc, "busy_loop"));
    for _ in 0..2 {
        l.send("START module_id=busy");
        assert_eq!(l.line(), "START_OK");
        std::thread::sleep(Duration::from_millis(200));
        let t0 = Instant::now();
        l.answers("STOP module_id=busy", "STOP_OK status=PENDING");
        let r = l.expect_within("RESULT", Duration::from_secs(4));
        assert!(r.starts_with("RESULT status=STOPPED "), "{r}");
        assert!(
            t0.elapsed() < Duration::from_millis(2500),
            "{:?}",
            t0.elapsed()
        );
    }
    assert_eq!(
        l.run(
            r#"START module_id=math func=sum_to_n args="n=10""#,
            Duration::from_secs(5)
        ),
        "RESULT status=OK module_id=math func=sum_to_n ret_i32=55"
    );
}

#[test]
fn aot_fft_matches_the_interpreter() {
    let Some(wamrc) = wamrc() else { return };
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    l.load_ok("fa", &aot(&wamrc, "fft_bench"));
    l.load_ok("fi", &module("fft_bench"));
    let a = l.run(
        r#"START module_id=fa func=fft_bench args="i=20""#,
        Duration::from_secs(30),
    );
    let i = l.run(
        r#"START module_id=fi func=fft_bench args="i=2""#,
        Duration::from_secs(30),
    );
    assert_eq!(
        a,
        "RESULT status=OK module_id=fa func=fft_bench ret_i32=1536"
    );
    assert_eq!(
        i,
        "RESULT status=OK module_id=fi func=fft_bench ret_i32=1536"
    );
}

/// The Wasmbed target descriptor wamrc appends: the `key=value` text after the last
/// `u32 100, u32 size, u32 "TABW"` section header.
fn without_descriptor(aot: &[u8]) -> Vec<u8> {
    let tag = 0x5742_4154u32.to_le_bytes();
    let at = aot
        .windows(4)
        .rposition(|w| w == tag)
        .expect("a descriptor in wamrc's output");
    let section = at - 8;
    assert_eq!(&aot[section..section + 4], &100u32.to_le_bytes());
    aot[..section].to_vec()
}

#[test]
fn info_names_the_aot_target() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    let info = l.ask("INFO", "INFO_OK");
    for f in [
        "aot_arch=x86_64",
        "aot_cpu=generic",
        "aot_abi=gnu",
        "aot_version=6",
        "aot_features=none",
        "aot_bounds_checks=required",
    ] {
        assert!(info.split(' ').any(|t| t == f), "{f} missing: {info}");
    }
}

/// Issue 11 part 4: an AOT file without software bounds checks read outside its module and a
/// second call crashed the sim; one for another target ran until it faulted.
#[test]
fn aot_for_another_target_or_without_bounds_checks_is_refused() {
    let Some(wamrc) = wamrc() else { return };
    let mut sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    assert_eq!(
        l.load(
            "nobc",
            &aot_with(
                &wamrc,
                "math_ops",
                &["--target=x86_64", "--bounds-checks=0"]
            ),
            ""
        ),
        "LOAD_ERR code=AOT_NO_BOUNDS_CHECKS msg=\"AOT file built without bounds checks; this \
         device has no hardware bounds checks: rebuild with wamrc --bounds-checks=1\""
    );
    assert_eq!(
        l.load(
            "cpu",
            &aot_with(
                &wamrc,
                "math_ops",
                &["--target=x86_64", "--cpu=skylake", "--bounds-checks=1"]
            ),
            ""
        ),
        "LOAD_ERR code=AOT_TARGET msg=\"AOT file built for x86_64/skylake/none/gnu v6, this \
         device runs x86_64/generic/none/gnu v6 (arch/cpu/features/abi AOT version)\""
    );
    let reply = l.load("bare", &without_descriptor(&aot(&wamrc, "math_ops")), "");
    assert!(
        reply.starts_with(
            "LOAD_ERR code=AOT_TARGET msg=\"AOT file without a Wasmbed target descriptor"
        ),
        "{reply}"
    );
    // nothing of that took a slot; a matching file loads and runs
    assert!(l
        .ask("STATUS", "STATUS_OK")
        .starts_with("STATUS_OK modules=\"none\""));
    l.load_ok("math", &aot(&wamrc, "math_ops"));
    assert_eq!(
        l.run(
            r#"START module_id=math func=add args="a=1,b=2""#,
            Duration::from_secs(5)
        ),
        "RESULT status=OK module_id=math func=add ret_i32=3"
    );
    assert!(sim.alive());
}
