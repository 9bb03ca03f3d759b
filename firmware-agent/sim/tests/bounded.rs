//! Module code is always bounded (issue 11 part 3): a start function that never returns is
//! terminated like a job (`start_timeout_ms`, then the forced stop), LOAD answers
//! `LOAD_ERR code=START_TIMEOUT`, the slot and the pool are freed, the other slot keeps running,
//! STATUS is answered meanwhile, and the sim exits on SIGTERM in every state.

mod common;

use common::{crc32, module, wat, Link, Sim};
use std::time::{Duration, Instant};

/// `(start)` spins forever.
const SPIN_START: &str = r#"(module
  (memory 1)
  (func $spin (loop $l (br $l)))
  (func (export "ping") (result i32) i32.const 7)
  (start $spin))"#;

/// `(start)` loops over a native (delay_ms) forever.
const NATIVE_START: &str = r#"(module
  (import "env" "delay_ms" (func $delay (param i32)))
  (memory 1)
  (func $wait (loop $l (call $delay (i32.const 50)) (br $l)))
  (start $wait))"#;

/// Send LOAD and its payload; returns without waiting for the final answer.
fn load_begin(l: &mut Link, id: &str, bytes: &[u8]) {
    l.send(&format!(
        "LOAD module_id={id} size={} crc32={:08x}",
        bytes.len(),
        crc32(bytes)
    ));
    assert!(l.expect("LOAD_").starts_with("LOAD_READY"));
    l.send_raw(bytes);
}

fn status(l: &mut Link) -> String {
    l.ask("STATUS", "STATUS_OK")
}

fn wamr_used(status: &str) -> u64 {
    Link::field(status, "wamr_used").unwrap().parse().unwrap()
}

fn endless_start_is_refused(start_src: &str) {
    let mut sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    // the other slot runs a job all along
    l.load_ok("busy", &module("toggle_forever"));
    l.answers("START module_id=busy", "START_OK");
    let before = wamr_used(&status(&mut l));

    let t0 = Instant::now();
    load_begin(&mut l, "spin", &wat(start_src));
    // answered while the start function runs
    let st = status(&mut l);
    assert!(st.contains("busy:RUNNING"), "{st}");
    let reply = l.expect_within("LOAD_", Duration::from_secs(6));
    assert!(
        reply.starts_with(
            "LOAD_ERR code=START_TIMEOUT msg=\"start function did not return within 1000 ms"
        ),
        "{reply}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "bound exceeded");

    // slot and pool freed; the other job unaffected
    let st = status(&mut l);
    assert!(st.contains("modules=\"busy:RUNNING:"), "{st}");
    assert!(!st.contains("spin"), "{st}");
    assert_eq!(wamr_used(&st), before, "pool not freed: {st}");
    l.answers("START module_id=spin", "RESULT status=NO_MODULE");
    // a good module takes the freed slot
    l.load_ok("math", &module("math_ops"));
    assert_eq!(
        l.run(
            r#"START module_id=math func=add args="a=2,b=3""#,
            Duration::from_secs(5)
        ),
        "RESULT status=OK module_id=math func=add ret_i32=5"
    );
    l.answers("STOP module_id=busy", "STOP_OK status=PENDING");
    assert!(l.expect("RESULT ").contains("module_id=busy"));
    assert_eq!(sim.terminate(), Some(0), "sim did not exit on SIGTERM");
}

#[test]
fn endless_start_function_is_terminated() {
    endless_start_is_refused(SPIN_START);
}

#[test]
fn endless_start_function_in_a_native_is_terminated() {
    endless_start_is_refused(NATIVE_START);
}

/// SIGTERM lands anywhere from instantiation to the spinning start function: the forced stop
/// on the way out must never abandon the worker inside WAMR's pool allocator (its lock would
/// stay held and the exit hang; it did about once in 30 runs before the lock-aware abort).
#[test]
fn sigterm_ends_the_sim_while_a_start_function_runs() {
    for i in 0..60u64 {
        let mut sim = Sim::tcp(&["--grace-ms", "60000"]);
        let mut l = sim.hello();
        load_begin(&mut l, "spin", &wat(SPIN_START));
        status(&mut l);
        if i % 3 == 1 {
            std::thread::sleep(Duration::from_micros(300 * (i % 7)));
        }
        assert_eq!(
            sim.terminate(),
            Some(0),
            "sim did not exit on SIGTERM (run {i})"
        );
    }
}

/// `grow` asks for one more page forever: once the pool is full every memory.grow fails inside
/// the pool allocator, so a forced stop mostly lands there.
const GROW_FOREVER: &str = r#"(module
  (memory 1)
  (func (export "grow") (loop $l (drop (memory.grow (i32.const 1))) (br $l))))"#;

/// A forced stop that lands inside memory.grow or the pool allocator waits until the worker is
/// out of it: the pool is not left locked (the next allocation would hang the board) and the
/// instance does not keep a block the allocator already freed.
#[test]
fn forced_stop_inside_memory_grow_leaves_the_board_usable() {
    // the fault knob makes STOP skip wasm_runtime_terminate: only the forced stop can end it
    let mut sim = Sim::tcp(&["--test-no-terminate", "--grace-ms", "50"]);
    let mut l = sim.hello();
    let before = wamr_used(&status(&mut l));
    l.load_ok("grow", &wat(GROW_FOREVER));
    for round in 0..12u64 {
        l.answers("START module_id=grow func=grow", "START_OK");
        std::thread::sleep(Duration::from_millis(5 * (round % 4)));
        l.answers("STOP module_id=grow", "STOP_OK status=PENDING");
        assert_eq!(
            l.expect_within("RESULT", Duration::from_secs(6)),
            "RESULT status=STOPPED forced=1 module_id=grow func=grow",
            "round {round}"
        );
    }
    l.answers("UNLOAD module_id=grow", "UNLOAD_OK module_id=grow");
    assert_eq!(wamr_used(&status(&mut l)), before, "pool not returned");
    l.load_ok("math", &module("math_ops"));
    assert_eq!(
        l.run(
            r#"START module_id=math func=add args="a=2,b=3""#,
            Duration::from_secs(5)
        ),
        "RESULT status=OK module_id=math func=add ret_i32=5"
    );
    assert_eq!(sim.terminate(), Some(0), "sim did not exit on SIGTERM");
}

#[test]
fn sigterm_ends_the_sim_while_a_job_runs() {
    let mut sim = Sim::tcp(&["--grace-ms", "60000"]);
    let mut l = sim.hello();
    l.load_ok("busy", &module("busy_loop"));
    l.send("START module_id=busy");
    l.expect("START_OK");
    assert_eq!(sim.terminate(), Some(0), "sim did not exit on SIGTERM");
}

/// Module memory comes from the pool (issue 11 part 5): STATUS counts it, and what a 2 MiB
/// board cannot hold is refused (instantiation) or fails (memory.grow returns -1).
#[test]
fn module_memory_is_bounded_by_the_pool() {
    let sim = Sim::tcp(&[]); // 2 MiB pool
    let mut l = sim.hello();
    let before = wamr_used(&status(&mut l));
    // 8 pages = 512 KiB of linear memory, counted in the pool
    l.load_ok(
        "mem8",
        &wat(r#"(module (memory 8) (func (export "f") (result i32) memory.size))"#),
    );
    let used = wamr_used(&status(&mut l));
    assert!(
        used >= before + 8 * 65536,
        "linear memory not in the pool: {before} -> {used}"
    );
    l.answers("UNLOAD module_id=mem8", "UNLOAD_OK module_id=mem8");
    assert_eq!(
        wamr_used(&status(&mut l)),
        before,
        "linear memory not returned"
    );

    // 64 pages = 4 MiB: more than the pool
    let reply = l.load(
        "big",
        &wat(r#"(module (memory 64) (func (export "f") (result i32) memory.size))"#),
        "",
    );
    assert!(
        reply.starts_with("LOAD_ERR code=INSTANTIATE_FAIL"),
        "{reply}"
    );

    // growing past the pool fails inside the module; growing within it works
    l.load_ok(
        "grow",
        &wat(r#"(module (memory 1 65536)
          (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#),
    );
    assert_eq!(
        l.run(
            r#"START module_id=grow func=grow args="n=16384""#,
            Duration::from_secs(5)
        ),
        "RESULT status=OK module_id=grow func=grow ret_i32=4294967295"
    );
    assert_eq!(
        l.run(
            r#"START module_id=grow func=grow args="n=4""#,
            Duration::from_secs(5)
        ),
        "RESULT status=OK module_id=grow func=grow ret_i32=1"
    );
    let st = status(&mut l);
    assert!(wamr_used(&st) >= before + 5 * 65536, "{st}");
}
