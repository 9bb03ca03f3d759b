//! The compiler as hostile sources see it, through the real gateway binary: confined by Landlock
//! (no reading files outside the toolchain and its temporary directory, by `#include`, `.incbin`
//! or a symlink), bounded in memory, time and concurrency, and leaving no process behind on
//! timeout, cancel or gateway shutdown.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::gwproc::{processes_mentioning, GwProc};
use common::Client;
use serde_json::json;

/// A device that is never there: compiles happen before the device is asked anything.
const OFFLINE: &str = "[devices.x]\nendpoint = \"tcp:127.0.0.1:1\"\n";

/// Builds `src` through `gw` and returns the reply (and events).
async fn build(gw: &GwProc, src: &str, secs: u64) -> common::Answer {
    build_at(gw.addr, src, secs).await
}

async fn build_at(addr: std::net::SocketAddr, src: &str, secs: u64) -> common::Answer {
    let mut c = Client::connect(addr).await;
    c.call_body(
        json!({"op": "build_and_deploy", "device": "x", "module_id": "m", "mode": "wasm",
               "size": src.len(), "crc32": format!("{:08x}", crc32fast::hash(src.as_bytes()))}),
        src.as_bytes(),
        secs,
    )
    .await
}

/// [`build`] of `SPINNER` on a task of its own, its connection open for up to 120 s (a host that
/// leaves would cancel the build itself).
fn spin_in_background(gw: &GwProc) -> tokio::task::JoinHandle<common::Answer> {
    let addr = gw.addr;
    tokio::spawn(async move { build_at(addr, SPINNER, 120).await })
}

/// Waits (up to 20 s) until a process mentions `needle` (a compiler in its `$TMPDIR`).
async fn compiler_started(needle: &str) {
    let end = Instant::now() + Duration::from_secs(20);
    while processes_mentioning(needle).is_empty() {
        assert!(Instant::now() < end, "the compiler never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `signal` to the gateway and waits for its exit.
fn signal(gw: &mut GwProc, signal: i32) -> std::process::ExitStatus {
    // SAFETY: kill(2) on our own child's pid, not yet waited for; no memory is involved.
    unsafe {
        libc::kill(gw.child.id() as i32, signal);
    }
    gw.child.wait().unwrap()
}

/// Process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    procfs::process::Process::new(pid)
        .and_then(|p| p.stat())
        .is_ok_and(|s| s.state != 'Z')
}

fn secret_file(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("secret.txt");
    std::fs::write(&p, "TOPSECRET_FIRST_LINE\n").unwrap();
    p
}

/// Waits (bounded) until no process mentions `needle`; returns what is left.
fn leftovers(needle: &str) -> Vec<(i32, String)> {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_mentioning(needle);
        if left.is_empty() || Instant::now() > end {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn sources_cannot_read_files_outside_by_include_or_incbin() {
    let gw = GwProc::start(OFFLINE, &[]);
    let outside = tempfile::tempdir().unwrap();
    let secret = secret_file(outside.path());
    assert!(
        std::fs::read_to_string(&secret).is_ok(),
        "the gateway's user can read it"
    );

    // The API header is there; ordinary sources build.
    let ok = build(
        &gw,
        "#include \"wasmbed.h\"\nWB_EXPORT(\"f\") int f(void) { return 1; }\n",
        60,
    )
    .await;
    assert!(
        ok.events
            .iter()
            .any(|e| e["phase"] == "compile" && e["done"] == e["total"]),
        "compile finished: {:?} {}",
        ok.events,
        ok.reply
    );

    for src in [
        format!("#include \"{}\"\nint x;\n", secret.display()),
        format!(
            "__asm__(\".section .data.s,\\\"\\\",@\\n.incbin \\\"{}\\\"\\n\");\nint x;\n",
            secret.display()
        ),
    ] {
        // Control: unconfined, the same source reads the file.
        let ctl = outside.path().join("ctl.c");
        std::fs::write(&ctl, &src).unwrap();
        let out = std::process::Command::new("clang")
            .args(["--target=wasm32-unknown-unknown", "-c", "-o"])
            .arg(outside.path().join("ctl.o"))
            .arg(&ctl)
            .output()
            .unwrap();
        let ctl_text = String::from_utf8_lossy(&out.stderr);
        assert!(
            ctl_text.contains("TOPSECRET") || out.status.success(),
            "control: {ctl_text}"
        );
        let a = build(&gw, &src, 60).await;
        assert_eq!(a.err_code(), "COMPILE_FAILED", "{src}: {}", a.reply);
        let text = a.reply.to_string();
        assert!(
            !text.contains("TOPSECRET"),
            "the file leaked into the reply: {text}"
        );
        assert!(
            text.contains("may read only its toolchain"),
            "a clear refusal for {src}: {text}"
        );
    }
}

#[tokio::test]
async fn a_symlink_in_the_temporary_directory_does_not_lead_outside() {
    use wasmbed_gateway::pipeline::confine::Confinement;
    let outside = tempfile::tempdir().unwrap();
    let secret = secret_file(outside.path());
    let work = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&secret, work.path().join("link.h")).unwrap();
    std::fs::write(
        work.path().join("module.c"),
        "#include \"link.h\"\nint x;\n",
    )
    .unwrap();
    let confinement = Confinement {
        landlock: true,
        read_paths: wasmbed_gateway::pipeline::confine::toolchain_dirs(Path::new("clang")),
        max_memory: 1 << 30,
        max_cpu_secs: 60,
    };
    let run = |confined: bool| {
        let mut cmd = tokio::process::Command::new("clang");
        cmd.args([
            "--target=wasm32-unknown-unknown",
            "-fsyntax-only",
            "module.c",
        ])
        .current_dir(work.path())
        .env("TMPDIR", work.path());
        if confined {
            confinement.apply(&mut cmd, work.path()).unwrap();
        }
        cmd.output()
    };
    // Unconfined, the symlink would hand the file to the compiler (its text shows in the error).
    let open = run(false).await.unwrap();
    assert!(
        String::from_utf8_lossy(&open.stderr).contains("TOPSECRET"),
        "control: {}",
        String::from_utf8_lossy(&open.stderr)
    );
    let out = run(true).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("TOPSECRET"), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
}

/// 4^14 copies of a 60-byte string: about 16 GB if nothing stops it (818 bytes of source in the
/// issue's report; this one is 441).
const MACRO_BOMB: &str =
    "#define A0 \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"
#define A1 A0 A0 A0 A0
#define A2 A1 A1 A1 A1
#define A3 A2 A2 A2 A2
#define A4 A3 A3 A3 A3
#define A5 A4 A4 A4 A4
#define A6 A5 A5 A5 A5
#define A7 A6 A6 A6 A6
#define A8 A7 A7 A7 A7
#define A9 A8 A8 A8 A8
#define A10 A9 A9 A9 A9
#define A11 A10 A10 A10 A10
#define A12 A11 A11 A11 A11
#define A13 A12 A12 A12 A12
#define A14 A13 A13 A13 A13
const char *bomb = A14;
";

/// 2^40 nested includes of itself: runs for ever in little memory.
const SPINNER: &str =
    "#if __INCLUDE_LEVEL__ < 40\n#include \"module.c\"\n#include \"module.c\"\n#endif\nint x;\n";

#[tokio::test]
async fn a_macro_bomb_is_stopped_by_the_memory_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = GwProc::start_env(
        &format!("[compiler]\nmax_memory_mb = 256\n{OFFLINE}"),
        &[],
        &[("TMPDIR", tmp.path())],
    );
    let a = build(&gw, MACRO_BOMB, 120).await;
    assert_eq!(a.err_code(), "COMPILE_FAILED", "{}", a.reply);
    let msg = a.reply["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("memory limit of 256 MiB (compiler.max_memory_mb)"),
        "{msg}"
    );
    let tmp_name = tmp.path().display().to_string();
    assert_eq!(leftovers(&tmp_name), vec![]);
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = GwProc::start_env(
        &format!("[compiler]\ntimeout_ms = 1500\n{OFFLINE}"),
        &[],
        &[("TMPDIR", tmp.path())],
    );
    let a = build(&gw, SPINNER, 60).await;
    assert_eq!(a.err_code(), "COMPILE_FAILED", "{}", a.reply);
    assert!(a.reply.to_string().contains("timed out"), "{}", a.reply);
    assert_eq!(leftovers(&tmp.path().display().to_string()), vec![]);
}

#[tokio::test]
async fn gateway_shutdown_kills_running_compilers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut gw = GwProc::start_env(OFFLINE, &[], &[("TMPDIR", tmp.path())]);
    let needle = tmp.path().display().to_string();
    let client = spin_in_background(&gw);
    compiler_started(&needle).await;
    let status = signal(&mut gw, libc::SIGTERM);
    assert!(status.success(), "{status}");
    assert_eq!(leftovers(&needle), vec![]);
    client.abort();
}

#[tokio::test]
async fn compiles_over_the_cap_are_queued_not_refused() {
    let gw = GwProc::start(
        &format!("[compiler]\nmax_concurrent = 1\ntimeout_ms = 3000\n{OFFLINE}"),
        &[],
    );
    let first = spin_in_background(&gw);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = build(&gw, "int y(void) { return 2; }\n", 60).await;
    let phases: Vec<&str> = second
        .events
        .iter()
        .filter_map(|e| e["phase"].as_str())
        .collect();
    let q = phases.iter().position(|p| *p == "queued");
    assert!(q.is_some(), "a queued event: {phases:?}");
    assert!(
        second
            .events
            .iter()
            .any(|e| e["phase"] == "compile" && e["done"] == e["total"] && e["total"] != 0),
        "then compiled: {:?} {}",
        second.events,
        second.reply
    );
    let first = first.await.unwrap();
    assert!(
        first.reply.to_string().contains("timed out"),
        "{}",
        first.reply
    );
}

#[tokio::test]
async fn a_dropped_build_leaves_no_process() {
    use wasmbed_gateway::config::CompilerConfig;
    use wasmbed_gateway::pipeline::{BuildMode, Compiler};
    let tmp = tempfile::tempdir().unwrap();
    let c = std::sync::Arc::new(Compiler::new(
        CompilerConfig::default(),
        tmp.path().join("cache"),
    ));
    // A marker in the source finds this build's compiler: its working directory holds module.c.
    let marker = format!("/* {} */", tmp.path().display());
    let src = format!("{marker}\n{SPINNER}");
    let task = {
        let c = c.clone();
        tokio::spawn(async move { c.build(src.as_bytes(), BuildMode::Wasm, None).await })
    };
    let mine = || -> Vec<i32> {
        procfs::process::all_processes()
            .unwrap()
            .filter_map(Result::ok)
            .filter(|p| {
                p.cwd()
                    .ok()
                    .and_then(|d| std::fs::read_to_string(d.join("module.c")).ok())
                    .is_some_and(|s| s.starts_with(&marker))
            })
            .map(|p| p.pid)
            .collect()
    };
    let end = Instant::now() + Duration::from_secs(20);
    let pids = loop {
        let p = mine();
        if !p.is_empty() {
            break p;
        }
        assert!(Instant::now() < end, "the compiler never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The request is dropped (a host that went away, a cancelled task).
    task.abort();
    let _ = task.await;
    let end = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left: Vec<i32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert_eq!(
        left,
        Vec::<i32>::new(),
        "compiler processes outlived the request"
    );
}

#[tokio::test]
async fn a_host_that_leaves_cancels_its_build() {
    use tokio::io::AsyncWriteExt;
    let tmp = tempfile::tempdir().unwrap();
    let gw = GwProc::start_env(OFFLINE, &[], &[("TMPDIR", tmp.path())]);
    let needle = tmp.path().display().to_string();
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let src = SPINNER;
    let req = json!({"op": "build_and_deploy", "id": 1, "device": "x", "module_id": "m",
                     "mode": "wasm", "size": src.len(),
                     "crc32": format!("{:08x}", crc32fast::hash(src.as_bytes()))});
    s.write_all(format!("{req}\n{src}").as_bytes())
        .await
        .unwrap();
    let pgrp = compiler_group(&gw, &needle).await;
    // The host goes away long before the 60 s compile timeout.
    drop(s);
    assert_eq!(group_left(pgrp).await, Vec::<i32>::new());
    assert_eq!(leftovers(&needle), vec![]);
}

/// Live (not zombie) processes of process group `pgrp`, from /proc.
fn group_members(pgrp: i32) -> Vec<i32> {
    procfs::process::all_processes()
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|p| p.stat().ok())
        .filter(|s| s.pgrp == pgrp && s.state != 'Z')
        .map(|s| s.pid)
        .collect()
}

/// Waits (up to 20 s) for a compiler whose command line mentions `needle` and returns its
/// process group (its own, not the gateway's), which has members then (the watcher included).
async fn compiler_group(gw: &GwProc, needle: &str) -> i32 {
    let gw_pid = gw.child.id() as i32;
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let found = processes_mentioning(needle)
            .into_iter()
            .find_map(|(pid, _)| {
                let st = procfs::process::Process::new(pid).ok()?.stat().ok()?;
                (st.pgrp != gw_pid && st.pgrp > 1).then_some(st.pgrp)
            });
        if let Some(g) = found {
            assert!(group_members(g).len() >= 2, "compiler and watcher");
            return g;
        }
        assert!(Instant::now() < end, "the compiler never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 10 s) until process group `pgrp` is empty; returns who is left.
async fn group_left(pgrp: i32) -> Vec<i32> {
    let end = Instant::now() + Duration::from_secs(10);
    while !group_members(pgrp).is_empty() && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    group_members(pgrp)
}

/// A legacy `{"cmd": "build_and_load"}` host that leaves while its source compiles cancels the
/// build: the compiler's whole process group is gone well before the 60 s compile timeout.
#[tokio::test]
async fn a_legacy_host_that_leaves_cancels_its_build() {
    use tokio::io::AsyncWriteExt;
    let tmp = tempfile::tempdir().unwrap();
    let gw = GwProc::start_env(OFFLINE, &[], &[("TMPDIR", tmp.path())]);
    let needle = tmp.path().display().to_string();
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let src = SPINNER;
    let req = json!({"cmd": "build_and_load", "device": "x", "module_id": "m", "mode": "wasm",
                     "source_size": src.len(), "source_name": "m.c",
                     "source_crc32": format!("{:08x}", crc32fast::hash(src.as_bytes()))});
    s.write_all(format!("{req}\n{src}").as_bytes())
        .await
        .unwrap();
    let pgrp = compiler_group(&gw, &needle).await;
    let t0 = Instant::now();
    drop(s);
    assert_eq!(
        group_left(pgrp).await,
        Vec::<i32>::new(),
        "the compiler's process group outlived the legacy host by {:?}",
        t0.elapsed()
    );
    assert_eq!(leftovers(&needle), vec![]);
    // The gateway still serves.
    let mut c = Client::connect(gw.addr).await;
    c.call(json!({"op": "devices"})).await.ok();
}

/// The parent of process `pid`, from /proc.
fn parent_of(pid: i32) -> Option<i32> {
    procfs::process::Process::new(pid)
        .and_then(|p| p.stat())
        .ok()
        .map(|s| s.ppid)
}

#[tokio::test]
async fn a_sigkilled_gateway_leaves_no_compiler_process_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let mut gw = GwProc::start_env(OFFLINE, &[], &[("TMPDIR", tmp.path())]);
    let needle = tmp.path().display().to_string();
    let client = spin_in_background(&gw);
    // Wait for a compiler process that is not the gateway's own child (clang's cc1 or linker):
    // PR_SET_PDEATHSIG on the driver alone does not reach it.
    let gw_pid = gw.child.id() as i32;
    let end = Instant::now() + Duration::from_secs(20);
    let grandchild = loop {
        let found = processes_mentioning(&needle)
            .into_iter()
            .find(|(pid, _)| parent_of(*pid).is_some_and(|pp| pp != gw_pid));
        if let Some(p) = found {
            break p;
        }
        assert!(
            Instant::now() < end,
            "no compiler grandchild started: {:?}",
            processes_mentioning(&needle)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("compiler grandchild: {grandchild:?}");
    signal(&mut gw, libc::SIGKILL);
    assert_eq!(
        leftovers(&needle),
        vec![],
        "compiler processes outlived the killed gateway"
    );
    client.abort();
}

/// Directories under `tmp` (two levels deep) whose name starts with `prefix`.
fn dirs_named(tmp: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut level = vec![tmp.to_path_buf()];
    for _ in 0..2 {
        let mut next = Vec::new();
        for d in level {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    if e.file_name().to_string_lossy().starts_with(prefix) {
                        found.push(p.clone());
                    }
                    next.push(p);
                }
            }
        }
        level = next;
    }
    found.sort();
    found
}

/// A gateway SIGKILLed mid-compile leaves its compile directory behind; the next gateway to start
/// on the same `$TMPDIR` removes it, but never the directory of a gateway that is still running.
#[tokio::test]
async fn a_sigkilled_gateways_compile_directory_is_removed_by_the_next_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    let needle = tmp.path().display().to_string();
    let mut first = GwProc::start_env(OFFLINE, &[], &[("TMPDIR", tmp.path())]);
    let client = spin_in_background(&first);
    compiler_started(&needle).await;
    let compiling = dirs_named(tmp.path(), "wasmbed-compile-");
    assert_eq!(compiling.len(), 1, "{compiling:?}");
    signal(&mut first, libc::SIGKILL);
    client.abort();
    assert_eq!(leftovers(&needle), vec![]);
    assert!(compiling[0].exists(), "SIGKILL left nothing to clean up?");

    let second = GwProc::start_env(OFFLINE, &[], &[("TMPDIR", tmp.path())]);
    assert_eq!(
        dirs_named(tmp.path(), "wasmbed-compile-"),
        Vec::<std::path::PathBuf>::new(),
        "the dead gateway's compile directory is still there: {}",
        second.log()
    );
    assert!(second.wait_log("compile directory of a gateway that is gone", 5));
    let live = dirs_named(tmp.path(), "wasmbed-gateway-");
    assert_eq!(live.len(), 1, "{live:?}");

    // A third gateway leaves the running second one's directory alone, and removes its own
    // when stopped.
    let third = GwProc::start_env(OFFLINE, &[], &[("TMPDIR", tmp.path())]);
    let both = dirs_named(tmp.path(), "wasmbed-gateway-");
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.contains(&live[0]));
    drop(third);
    assert_eq!(dirs_named(tmp.path(), "wasmbed-gateway-"), live);
    // The second still builds.
    let a = build(&second, "int x;\n", 60).await;
    assert_ne!(a.err_code(), "COMPILE_FAILED", "{}", a.reply);
    drop(second);
    assert_eq!(
        dirs_named(tmp.path(), "wasmbed-gateway-"),
        Vec::<std::path::PathBuf>::new()
    );
}

#[tokio::test]
async fn a_sigkilled_gateway_takes_its_simulated_board_down() {
    let mut gw = GwProc::start_env(
        "sim = true\n",
        &[],
        &[("WASMBED_AGENT_SIM", &common::sim_bin())],
    );
    let gw_pid = gw.child.id() as i32;
    let end = Instant::now() + Duration::from_secs(20);
    let sim = loop {
        let found = processes_mentioning("wasmbed-agent-sim")
            .into_iter()
            .find(|(pid, _)| parent_of(*pid) == Some(gw_pid));
        if let Some((pid, _)) = found {
            break pid;
        }
        assert!(Instant::now() < end, "the gateway started no simulator");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    signal(&mut gw, libc::SIGKILL);
    let end = Instant::now() + Duration::from_secs(5);
    while alive(sim) && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(sim), "simulator {sim} outlived the killed gateway");
}

/// A compiler that prints without end (a warning flood: a few lines of C can make clang print
/// hundreds of MB of diagnostics) must not grow the gateway: only the start of its output is
/// kept. The stand-in compiler prints 200 MB to stderr and fails.
#[tokio::test]
async fn a_flood_of_compiler_output_does_not_grow_the_gateway() {
    use std::os::unix::fs::PermissionsExt;
    let tools = tempfile::tempdir().unwrap();
    let fake = tools.path().join("clang");
    std::fs::write(
        &fake,
        "#!/bin/sh\n[ \"$1\" = --version ] && exec echo fake clang 1\n\
         yes 'module.c:1:1: warning: flood' | head -c 200000000 >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let gw = GwProc::start(
        &format!(
            "[compiler]\nclang = \"{}\"\ntimeout_ms = 60000\n{OFFLINE}",
            fake.display()
        ),
        &[],
    );
    // The peak (VmHWM): memory taken for the output is given back once the reply is sent.
    let hwm_kib = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", gw.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let before = hwm_kib();
    let a = build(&gw, "int x;\n", 120).await;
    let grown_mib = hwm_kib().saturating_sub(before) / 1024;
    assert_eq!(a.err_code(), "COMPILE_FAILED", "{}", a.reply);
    let stderr = a.reply["error"]["detail"]["stderr"].as_str().unwrap();
    assert!(stderr.len() < 70 * 1024, "{}", stderr.len());
    assert!(
        stderr.contains("more bytes of compiler output cut"),
        "{}",
        &stderr[stderr.len() - 100..]
    );
    assert!(
        grown_mib < 32,
        "the gateway grew by {grown_mib} MiB reading compiler output"
    );
}
