//! The daily loop against the real gateway and simulated boards (real WAMR, real clang): `run`,
//! `test`, `watch`, `stop` semantics, Ctrl-C during an upload, waits that follow progress.
//! `wasmbed-gateway` and `wasmbed-agent-sim` must be built (`cargo build --workspace`).

mod common;

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::real::{gateway, lines_of, module, sibling_bin, wait_online, ChildGuard, Proc};
use common::*;
use serde_json::Value;

#[test]
fn run_deploys_streams_output_and_exits_with_the_result() {
    let gw = gateway(&[]);
    let g = &gw.addr;
    let src = module("log_hello.c");
    // Output lines come first, in order, then the result; the deploy note goes to stderr.
    let o = run_exit(
        0,
        &format!("--gateway {g} -d sim run --func app_main"),
        &[&src],
    );
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "[wasm] uart hello",
            "hello from wasm \"quoted\"",
            "status=OK ret=24",
            "line: RESULT status=OK module_id=log_hello func=app_main ret_i32=24"
        ],
        "{out}"
    );
    assert!(
        stderr(&o).contains("deployed log_hello to sim"),
        "{}",
        stderr(&o)
    );
    // Unchanged source: the gateway skips the upload; -q leaves only the module's output.
    let o = run_exit(
        0,
        &format!("--gateway {g} -d sim -q run --func log_hello"),
        &[&src],
    );
    assert_eq!(stdout(&o), "hello from wasm \"quoted\"\n");
    assert_eq!(stderr(&o), "");
    // JSON: one document with the output and the result.
    let o = run_exit(
        0,
        &format!("--gateway {g} -d sim --json run --func add --args 200,26"),
        &[&module("math_ops.c")],
    );
    let doc = json_doc(&o);
    assert_eq!(doc["ret"], 226, "{doc}");
    assert_eq!(doc["module_id"], "math_ops");
    assert_eq!(doc["output"], Value::Array(vec![]));
    assert!(doc["deploy"]["size"].as_u64().unwrap() > 0, "{doc}");
    // A trap is exit 7, an unknown function exit 5 (the board has two slots: free one).
    run_exit(
        0,
        &format!("--gateway {g} -d sim unload --module-id math_ops"),
        &[],
    );
    let o = run_exit(
        7,
        &format!("--gateway {g} -d sim run --func trap"),
        &[&module("trap.c")],
    );
    assert!(stdout(&o).contains("status=EXCEPTION"), "{}", stdout(&o));
    run_exit(
        5,
        &format!("--gateway {g} -d sim run --func nosuch"),
        &[&module("trap.c")],
    );
}

#[test]
fn compile_errors_point_at_the_users_file_and_list_natives() {
    let gw = gateway(&[]);
    let g = &gw.addr;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.c");
    std::fs::write(&bad, "int f(void) { return 1 }\n").unwrap();
    let bad = bad.to_str().unwrap();
    let o = run_exit(5, &format!("--gateway {g} -d sim run --func f"), &[bad]);
    let err = stderr(&o);
    assert!(err.contains(&format!("{bad}:1:")), "{err}");
    assert!(!err.contains("module.c"), "{err}");
    // The same for build-and-deploy.
    let o = run_exit(
        5,
        &format!("--gateway {g} -d sim build-and-deploy --module-id b --source"),
        &[bad],
    );
    assert!(stderr(&o).contains(&format!("{bad}:1:")), "{}", stderr(&o));
    let printf = dir.path().join("printf.c");
    std::fs::write(
        &printf,
        "int printf(const char *, ...);\n__attribute__((export_name(\"f\"))) int f(void) { return printf(\"hi\"); }\n",
    )
    .unwrap();
    let o = run_exit(
        5,
        &format!("--gateway {g} -d sim --json run --func f"),
        &[printf.to_str().unwrap()],
    );
    let doc = json_doc(&o);
    let help = doc["error"]["help"].as_str().unwrap();
    assert!(help.starts_with("printf is not on the device"), "{doc}");
    assert!(
        help.contains("uart_print") && help.contains("delay_ms"),
        "{doc}"
    );
}

/// Module ids loaded on device `sim`, in slot order.
fn loaded(g: &str) -> Vec<String> {
    let doc = json_doc(&run_exit(
        0,
        &format!("--gateway {g} -d sim --json status"),
        &[],
    ));
    doc["result"]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["module_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn run_test_and_watch_evict_a_replace_victim_when_the_slots_are_full() {
    let gw = gateway(&[]);
    let g = &gw.addr;
    // The simulated board has two slots: fill them.
    for id in ["one", "two"] {
        run_exit(
            0,
            &format!("--gateway {g} -d sim build-and-deploy --module-id {id} --source"),
            &[&module("math_ops.c")],
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("third.c");
    std::fs::write(
        &src,
        "__attribute__((export_name(\"test_ok\"))) int test_ok(void) { return 0; }\n\
         __attribute__((export_name(\"f\"))) int f(void) { return 5; }\n",
    )
    .unwrap();
    let src = src.to_str().unwrap();
    // Without a victim the device has no room: the refusal says what to do.
    let o = run_exit(5, &format!("--gateway {g} -d sim run --func f"), &[src]);
    assert!(stderr(&o).contains("--replace-victim"), "{}", stderr(&o));
    assert_eq!(loaded(g), ["one", "two"]);
    // run: `one` makes room for `third`.
    let o = run_exit(
        0,
        &format!("--gateway {g} -d sim run --func f --replace-victim one"),
        &[src],
    );
    assert!(stdout(&o).contains("status=OK ret=5"), "{}", stdout(&o));
    let mut ids = loaded(g);
    ids.sort();
    assert_eq!(ids, ["third", "two"]);
    // test, under another id: `two` goes.
    let o = run_exit(
        0,
        &format!("--gateway {g} -d sim test --module-id t2 --replace-victim two"),
        &[src],
    );
    assert!(stdout(&o).contains("test test_ok ... ok"), "{}", stdout(&o));
    let mut ids = loaded(g);
    ids.sort();
    assert_eq!(ids, ["t2", "third"]);
    // watch, under a third id: `third` goes (watch runs once at start).
    let mut child = host_child(
        &["--gateway", g, "-d", "sim", "watch", src, "--func", "f"],
        &["--module-id", "w3", "--replace-victim", "third"],
        Stdio::piped(),
    );
    let rx = lines_of(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    wait_for_line(&rx, "status=OK ret=5", &mut seen);
    child.interrupt();
    let mut ids = loaded(g);
    ids.sort();
    assert_eq!(ids, ["t2", "w3"]);
}

const TESTS_C: &str = r#"#include "wasmbed.h"
static int runs;
/* Both pass only if each test gets a fresh instance. */
WB_EXPORT("test_fresh_a") int test_fresh_a(void) { return runs++; }
WB_EXPORT("test_fresh_b") int test_fresh_b(void) { return runs++; }
WB_EXPORT("test_returns_3") int test_returns_3(void) { wb_log("boom", 4); return 3; }
WB_EXPORT("test_traps") void test_traps(void) { __builtin_trap(); }
WB_EXPORT("helper") int helper(void) { return 1; }
"#;

#[test]
fn test_runs_each_test_in_a_fresh_instance_and_writes_junit() {
    let gw = gateway(&[]);
    let g = &gw.addr;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("unit.c");
    std::fs::write(&src, TESTS_C).unwrap();
    let src = src.to_str().unwrap();
    let junit = dir.path().join("junit.xml");
    let o = run_exit(
        7,
        &format!("--gateway {g} -d sim test"),
        &[src, "--junit", junit.to_str().unwrap()],
    );
    let out = stdout(&o);
    for want in [
        "running 4 tests\n",
        "test test_fresh_a ... ok\n",
        "test test_fresh_b ... ok\n",
        "test test_returns_3 ... FAILED\n",
        "test test_traps ... FAILED\n",
        "---- test_returns_3 ----\nboom\nreturned 3 (a test passes by returning 0)\n",
        "---- test_traps ----\nMODULE_TRAPPED: RESULT status=EXCEPTION",
        "failures:\n    test_returns_3\n    test_traps\n",
        "test result: FAILED. 2 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out;",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("helper"), "{out}");
    assert!(stderr(&o).contains("TESTS_FAILED"), "{}", stderr(&o));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"tests="4""#) && xml.contains(r#"failures="2""#),
        "{xml}"
    );
    assert!(xml.contains(r#"<testcase name="test_traps""#), "{xml}");
    // AOT has no exports to read: refused before anything is built or deployed.
    let o = run_exit(2, &format!("--gateway {g} -d sim test --mode aot"), &[src]);
    let err = stderr(&o);
    assert!(err.contains("reads from wasm only"), "{err}");
    assert!(!err.contains("deployed"), "{err}");
    // -q prints only the error, which still names the failed tests.
    let o = run_exit(7, &format!("--gateway {g} -d sim -q test"), &[src]);
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("2 of 4 tests failed: test_returns_3, test_traps"),
        "{}",
        stderr(&o)
    );
    // A filter: only the passing ones, exit 0.
    let o = run_exit(
        0,
        &format!("--gateway {g} -d sim --json test"),
        &[src, "fresh"],
    );
    let doc = json_doc(&o);
    assert_eq!(doc["passed"], 2, "{doc}");
    assert_eq!(doc["filtered_out"], 2, "{doc}");
}

/// `wasmbed-host ARGS MORE` running on its own (no WASMBED_GATEWAY / WASMBED_DEVICE from the
/// environment), its stdout to `stdout`, held in a [`ChildGuard`].
fn host_child(args: &[&str], more: &[&str], stdout: Stdio) -> ChildGuard {
    ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_wasmbed-host"))
            .args(args)
            .args(more)
            .env_remove("WASMBED_GATEWAY")
            .env_remove("WASMBED_DEVICE")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null()),
    )
    .unwrap()
}

fn wait_for_line(rx: &mpsc::Receiver<String>, want: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l == want => return,
            Ok(l) => seen.push(l),
            Err(_) => panic!("no line {want:?} within 60 s; saw {seen:?}"),
        }
    }
}

#[test]
fn watch_reruns_its_slot_on_save_while_other_slots_keep_running() {
    let gw = gateway(&[]);
    let g = &gw.addr;
    run_exit(
        0,
        &format!("--gateway {g} -d sim build-and-deploy --module-id bg --source"),
        &[&module("toggle_forever.c")],
    );
    run_exit(
        0,
        &format!("--gateway {g} -d sim start --module-id bg --func toggle_forever"),
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("w.c");
    let write = |v: i32| {
        let text = format!("__attribute__((export_name(\"f\"))) int f(void) {{ return {v}; }}\n");
        std::fs::write(&src, text).unwrap();
    };
    write(1);
    let mut child = host_child(
        &["--gateway", g, "-d", "sim", "watch", src.to_str().unwrap()],
        &["--func", "f"],
        Stdio::piped(),
    );
    let rx = lines_of(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    wait_for_line(&rx, "status=OK ret=1", &mut seen);
    write(2);
    wait_for_line(&rx, "status=OK ret=2", &mut seen);
    write(3);
    wait_for_line(&rx, "status=OK ret=3", &mut seen);
    child.interrupt();
    let o = run_exit(0, &format!("--gateway {g} -d sim --json status"), &[]);
    let doc = json_doc(&o);
    let slots = doc["result"]["slots"].as_array().unwrap();
    let state = |id: &str| {
        slots
            .iter()
            .find(|s| s["module_id"] == id)
            .map(|s| s["state"].clone())
    };
    assert_eq!(state("bg"), Some("RUNNING".into()), "{doc}");
    assert_eq!(state("w"), Some("LOADED".into()), "{doc}");
    run_exit(0, &format!("--gateway {g} -d sim stop --module-id bg"), &[]);
}

#[test]
fn stop_waits_by_default_refuses_unknown_modules_and_busy_says_what_to_do() {
    let gw = gateway(&[]);
    let g = &gw.addr;
    run_exit(
        0,
        &format!("--gateway {g} -d sim build-and-deploy --module-id toggle --source"),
        &[&module("toggle_forever.c")],
    );
    // Nothing loaded under that id: an error, not "stopped".
    let o = run_exit(
        5,
        &format!("--gateway {g} -d sim stop --module-id nosuch"),
        &[],
    );
    let err = stderr(&o);
    assert!(err.contains("nothing is loaded as nosuch"), "{err}");
    assert!(err.contains("loaded modules: toggle"), "{err}");
    // Starting it is refused too, and the help names the module, not a placeholder.
    let o = run_exit(
        5,
        &format!("--gateway {g} -d sim start --module-id nosuch --func f"),
        &[],
    );
    let err = stderr(&o);
    assert!(
        err.contains("help: nothing is loaded as nosuch on device sim"),
        "{err}"
    );
    // Loaded but idle: fine.
    let o = run_exit(
        0,
        &format!("--gateway {g} -d sim stop --module-id toggle"),
        &[],
    );
    assert!(
        stdout(&o).contains("nothing to stop for toggle: status=IDLE"),
        "{}",
        stdout(&o)
    );
    let start = "start --module-id toggle --func toggle_forever";
    run_exit(0, &format!("--gateway {g} -d sim {start}"), &[]);
    // BUSY names the job and the command that frees the slot.
    let o = run_exit(5, &format!("--gateway {g} -d sim {start}"), &[]);
    let err = stderr(&o);
    assert!(
        err.contains("toggle is busy running its job toggle_forever"),
        "{err}"
    );
    assert!(
        err.contains("wasmbed-host stop --module-id toggle"),
        "{err}"
    );
    // stop waits for the job's end by default.
    let o = run_exit(
        0,
        &format!("--gateway {g} -d sim --json stop --module-id toggle"),
        &[],
    );
    assert_eq!(json_doc(&o)["result"]["status"], "STOPPED");
    // --no-wait returns at STOP_OK.
    run_exit(0, &format!("--gateway {g} -d sim {start}"), &[]);
    let o = run_exit(
        0,
        &format!("--gateway {g} -d sim --json stop --module-id toggle --no-wait"),
        &[],
    );
    assert_eq!(json_doc(&o)["result"]["status"], "PENDING");
    let o = run_exit(0, &format!("--gateway {g} -d sim --json status"), &[]);
    let doc = json_doc(&o);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut doc = doc;
    while doc["result"]["jobs"]["toggle"]["state"] != "done" {
        assert!(Instant::now() < deadline, "job never ended: {doc}");
        thread::sleep(Duration::from_millis(100));
        doc = json_doc(&run_exit(
            0,
            &format!("--gateway {g} -d sim --json status"),
            &[],
        ));
    }
}

/// A valid wasm module of `size` bytes: an empty module padded by a custom section.
fn padded_module(size: usize) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    let name = b"pad";
    // id 0, size as a 5-byte LEB128, name length, name, padding.
    let payload = size - m.len() - 1 - 5;
    m.push(0);
    let mut n = payload as u32;
    for i in 0..5 {
        let mut b = (n & 0x7f) as u8;
        n >>= 7;
        if i < 4 {
            b |= 0x80;
        }
        m.push(b);
    }
    m.push(name.len() as u8);
    m.extend_from_slice(name);
    // Incompressible padding (xorshift), so the gateway's deflate on paced links does not
    // shorten the transfer these tests time against the line rate.
    let mut x: u32 = 0x9e37_79b9;
    while m.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        m.push(x as u8);
    }
    m
}

fn used(gw: &str) -> (u64, Value) {
    let o = run_exit(
        0,
        &format!("--gateway {gw} -d slow --timeout 5 --json status"),
        &[],
    );
    let doc = json_doc(&o);
    (doc["result"]["memory"]["used"].as_u64().unwrap(), doc)
}

#[test]
fn slow_link_uploads_outlast_the_host_wait_and_ctrl_c_cancels_them() {
    // A 9600-baud board: 960 B/s, so a 12 KB module takes ~13 s.
    let sim = Proc::spawn(
        sibling_bin("wasmbed-agent-sim", "WASMBED_AGENT_SIM"),
        &["--listen", "127.0.0.1:0", "--baud", "9600"],
        &[],
    );
    let gw = gateway(&["--device", &format!("slow=tcp:{}?baud=9600", sim.addr)]);
    let g = &gw.addr;
    wait_online(g, "slow");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pad.wasm");
    std::fs::write(&file, padded_module(12 * 1024)).unwrap();
    let file = file.to_str().unwrap();
    // The host waits 3 s without news, but progress comes twice a second: no timeout.
    let t0 = Instant::now();
    run_exit(
        0,
        &format!("--gateway {g} -d slow --timeout 3 deploy --module-id pad --file"),
        &[file],
    );
    eprintln!(
        "12 KiB at 9600 baud took {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    run_exit(
        0,
        &format!("--gateway {g} -d slow unload --module-id pad"),
        &[],
    );
    let (before, _) = used(g);

    // Ctrl-C in the middle of a 30 KB upload (~32 s at this speed).
    std::fs::write(dir.path().join("big.wasm"), padded_module(30 * 1024)).unwrap();
    let big = dir.path().join("big.wasm");
    let mut host = host_child(
        &["--gateway", g, "-d", "slow", "deploy", "--module-id", "big"],
        &["--file", big.to_str().unwrap()],
        Stdio::null(),
    );
    thread::sleep(Duration::from_secs(4));
    let status = host.interrupt().expect("the host exited");
    assert!(!status.success(), "{status:?}");
    // It ended on the SIGINT, not on the guard's SIGKILL after 5 s.
    use std::os::unix::process::ExitStatusExt;
    assert_ne!(status.signal(), Some(9), "the host ignored Ctrl-C");
    // The gateway stopped at once: status answers within its 5 s, and the partial module is
    // gone (no slot, its pool memory freed).
    let (after, doc) = used(g);
    let slots = doc["result"]["slots"].as_array().unwrap();
    assert!(slots.iter().all(|s| s["module_id"] != "big"), "{doc}");
    assert_eq!(
        after, before,
        "pool use before the upload {before}, after the cancel {after}: {doc}"
    );
    // The board is usable: the next upload works.
    run_exit(
        0,
        &format!("--gateway {g} -d slow --timeout 3 deploy --module-id pad --file"),
        &[file],
    );
}

#[test]
fn json_usage_errors_name_the_argument_and_quiet_prints_only_errors() {
    let o = run(&["--json", "status", "--frobnicate"]);
    assert_exit(&o, 2);
    let doc = json_doc(&o);
    assert_eq!(
        doc["error"]["message"], "unexpected argument '--frobnicate' found",
        "{doc}"
    );
    let o = run(&["--json", "start", "--module-id"]);
    let msg = json_doc(&o)["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("'--module-id <ID>'"), "{msg}");

    let gw = gateway(&[]);
    let g = &gw.addr;
    let o = run_exit(0, &format!("--gateway {g} -d sim -q status"), &[]);
    assert_eq!(stdout(&o), "");
    assert_eq!(stderr(&o), "");
    let o = run_exit(4, &format!("--gateway {g} -d nosuch -q status"), &[]);
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains("DEVICE_UNKNOWN"), "{}", stderr(&o));
}

#[test]
fn the_gateway_logs_the_hosts_ports_at_start_and_why_a_board_is_offline() {
    let host = json_doc(&run_exit(0, "--json ports", &[]));
    let paths: Vec<String> = host["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_string())
        .collect();
    // Killed when dropped: a failing assertion below leaves no gateway behind.
    let mut gw = ChildGuard::spawn(
        Command::new(sibling_bin("wasmbed-gateway", "WASMBED_GATEWAY_BIN"))
            .args(["--listen", "127.0.0.1:0"])
            .args(["--device", "nucleo=serial:/dev/wasmbed-no-such-port"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let rx = lines_of(gw.stderr.take().unwrap());
    // The ports are logged before the gateway says `listening on` (stdout).
    let listening = lines_of(gw.stdout.take().unwrap());
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match listening.recv_timeout(left) {
            Ok(l) if l.starts_with("listening on ") => break,
            Ok(l) => seen.push(l),
            Err(_) => panic!("the gateway did not listen within 30 s: {seen:?}"),
        }
    }
    // Then why the device is offline, and the USB ports that could be it: every USB port the
    // host lists, or that there is none.
    let usb: Vec<String> = host["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["usb"].is_null())
        .map(|p| p["path"].as_str().unwrap().to_string())
        .collect();
    let why = "offline, cannot open serial:/dev/wasmbed-no-such-port: ";
    let explained = |log: &[String]| {
        let Some(at) = log.iter().position(|l| l.contains(why)) else {
            return false;
        };
        let after = &log[at + 1..];
        if usb.is_empty() {
            after
                .iter()
                .any(|l| l.contains("no USB serial port is present"))
        } else {
            usb.iter().all(|path| {
                after
                    .iter()
                    .any(|l| l.contains(&format!("candidate port: {path} ")))
            })
        }
    };
    let mut log = Vec::new();
    while !explained(&log) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => log.push(l),
            Err(_) => panic!("the gateway's log does not say why nucleo is offline (and which USB ports {usb:?} could be it): {log:#?}"),
        }
    }
    // The gateway keeps retrying (backoff from 200 ms): an unchanged cause is not warned again.
    let quiet_until = Instant::now() + Duration::from_secs(4);
    while let Ok(l) = rx.recv_timeout(quiet_until.saturating_duration_since(Instant::now())) {
        log.push(l);
    }
    let warned = log.iter().filter(|l| l.contains(why)).count();
    assert_eq!(
        warned, 1,
        "the unchanged offline cause was warned again on retries: {log:#?}"
    );
    drop(gw);
    // Written to a pipe (a file, the journal), the log has no terminal colour codes.
    assert!(
        log.iter().all(|l| !l.contains('\x1b')),
        "colour codes in the piped log: {log:?}"
    );
    let logged: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(" serial port: ") || l.contains(" serial ports: "))
        .collect();
    if paths.is_empty() {
        assert!(
            logged.iter().any(|l| l.contains("serial ports: none")),
            "{log:#?}"
        );
    } else {
        for p in &paths {
            assert!(
                logged
                    .iter()
                    .any(|l| l.contains(&format!("serial port: {p} "))),
                "{p} not in the gateway's log: {log:#?}"
            );
        }
        assert_eq!(logged.len(), paths.len(), "{log:#?}");
    }
}

/// The guard the tests above hold their children in: a test that panics leaves no process.
#[test]
fn a_panicking_test_leaves_no_child_process_behind() {
    let (tx, rx) = mpsc::channel();
    let panicked = thread::spawn(move || {
        let child =
            ChildGuard::spawn(Command::new("sleep").arg("600").stdin(Stdio::null())).unwrap();
        tx.send(child.id()).unwrap();
        panic!("a failing assertion");
    })
    .join();
    assert!(panicked.is_err());
    let pid = rx.recv().unwrap();
    // Reaped, not a zombie: no /proc entry (a pid reused this fast would be a coincidence).
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "sleep {pid} outlived the panicking test"
    );
}
