//! Jobs: cooperative and forced STOP, both slots at once, STATUS while running, replace rules.

mod common;

use common::{module, Link, Sim};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

/// A grace period no loaded CI machine exceeds: tests of the cooperative stop (module or WAMR's
/// terminate) must not see the forced stop take over because a thread was not scheduled in time.
const NO_FORCED_STOP: &[&str] = &["--grace-ms", "20000"];

fn start(l: &mut Link, cmd: &str) {
    l.send(cmd);
    assert_eq!(l.line(), "START_OK", "{cmd}");
}

#[test]
fn toggle_forever_stops_cooperatively_and_leds_are_counted() {
    let sim = Sim::tcp(NO_FORCED_STOP);
    let mut l = sim.hello();
    l.load_ok("tf", &module("toggle_forever"));
    start(&mut l, "START module_id=tf func=toggle_forever");
    std::thread::sleep(Duration::from_millis(1500));
    let st = l.ask("STATUS", "STATUS_OK");
    assert!(st.contains("tf:RUNNING:"), "{st}");
    let toggles: u32 = Link::field(&st, "led_toggles").unwrap().parse().unwrap();
    assert!(toggles >= 2, "{st}");
    l.answers("STOP module_id=tf", "STOP_OK status=PENDING");
    let r = l.expect_within("RESULT", Duration::from_secs(15));
    // Ended by the module itself (or WAMR's terminate), not by the forced stop after the grace.
    assert!(!r.contains("forced=1"), "{r}");
    assert!(
        r.starts_with("RESULT status=STOPPED module_id=tf func=toggle_forever"),
        "{r}"
    );
    assert!(!r.contains("forced=1"), "{r}");
    l.answers("STOP module_id=tf", "STOP_OK status=IDLE");
    l.answers("STOP", "STOP_OK status=NO_JOB");
}

#[test]
fn busy_loop_stopped_by_terminate() {
    let sim = Sim::tcp(NO_FORCED_STOP);
    let mut l = sim.hello();
    l.load_ok("busy", &module("busy_loop"));
    start(&mut l, "START module_id=busy func=busy_loop");
    std::thread::sleep(Duration::from_millis(200));
    l.answers("STOP module_id=busy", "STOP_OK status=PENDING");
    assert_eq!(
        l.expect_within("RESULT", Duration::from_secs(15)),
        "RESULT status=STOPPED module_id=busy func=busy_loop msg=\"Exception: terminated by user\""
    );
}

#[test]
fn busy_loop_forced_stop_within_grace_and_slot_reusable() {
    // the fault knob makes STOP skip wasm_runtime_terminate: only the forced stop can end it
    let sim = Sim::tcp(&["--test-no-terminate"]);
    let mut l = sim.hello();
    l.load_ok("busy", &module("busy_loop"));
    for round in 0..2 {
        start(&mut l, "START module_id=busy func=busy_loop");
        std::thread::sleep(Duration::from_millis(200));
        let t0 = Instant::now();
        l.answers("STOP module_id=busy", "STOP_OK status=PENDING");
        let r = l.expect_within("RESULT", Duration::from_secs(4));
        let took = t0.elapsed();
        assert_eq!(
            r, "RESULT status=STOPPED forced=1 module_id=busy func=busy_loop",
            "round {round}"
        );
        assert!(
            took >= Duration::from_millis(1100) && took < Duration::from_millis(2500),
            "{took:?}"
        );
        let st = l.ask("STATUS", "STATUS_OK");
        assert!(st.contains("busy:LOADED:"), "{st}");
    }
    // the slot and the worker still work for other code
    l.load_ok("math", &module("math_ops"));
    assert_eq!(
        l.run(r#"START module_id=math func=add args="a=1,b=2""#, T),
        "RESULT status=OK module_id=math func=add ret_i32=3"
    );
}

#[test]
fn both_slots_run_at_once_and_status_answers_immediately() {
    let sim = Sim::tcp(NO_FORCED_STOP);
    let mut l = sim.hello();
    l.load_ok("a", &module("busy_loop"));
    l.load_ok("b", &module("toggle_forever"));
    start(&mut l, "START module_id=a");
    start(&mut l, "START module_id=b");
    l.answers("START module_id=a", "RESULT status=BUSY");
    // Both jobs run until stopped, so a STATUS_OK listing both as RUNNING was answered while
    // they ran (no timing assertion: this machine is noisy).
    let st = l.ask("STATUS", "STATUS_OK");
    assert!(
        st.contains("a:RUNNING:") && st.contains("b:RUNNING:"),
        "{st}"
    );
    // Each STOP ends its own job, by WAMR's terminate (the grace is long: never forced here).
    for id in ["a", "b"] {
        l.answers(&format!("STOP module_id={id}"), "STOP_OK status=PENDING");
        let r = l.expect("RESULT");
        assert!(!r.contains("forced=1"), "{r}");
        assert_eq!(Link::field(&r, "status"), Some("STOPPED"), "{r}");
        assert_eq!(Link::field(&r, "module_id"), Some(id), "{r}");
    }
}

#[test]
fn replace_and_victim_rules() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    let math = module("math_ops");
    let busy = module("busy_loop");
    l.load_ok("m1", &math);
    l.load_ok("m2", &busy);
    assert_eq!(
        l.load("m3", &math, ""),
        "LOAD_ERR code=NO_SLOT msg=\"MAX_MODULES reached\""
    );
    assert_eq!(
        l.load("m3", &math, " replace=1"),
        "LOAD_ERR code=FULL msg=\"NEED_VICTIM\""
    );
    assert_eq!(
        l.load("m3", &math, " replace=1 replace_victim=zz"),
        "LOAD_ERR code=BAD_VICTIM msg=\"NOT_FOUND\""
    );
    // same id again: reload in place, a named victim is ignored with a warning
    assert_eq!(
        l.load("m1", &math, " replace=1 replace_victim=m2"),
        "LOAD_OK warn=VICTIM_IGNORED replace_victim=m2"
    );
    // a running module is BUSY without replace=1
    start(&mut l, "START module_id=m2");
    assert_eq!(
        l.load("m2", &busy, ""),
        "LOAD_ERR code=BUSY msg=\"module running\""
    );
    // the running victim is evicted: no RESULT for the killed job
    assert_eq!(
        l.load("m3", &math, " replace=1 replace_victim=m2"),
        "LOAD_OK"
    );
    l.quiet("RESULT", Duration::from_millis(400));
    let st = l.ask("STATUS", "STATUS_OK");
    assert!(
        st.contains("m1:LOADED") && st.contains("m3:LOADED") && !st.contains("m2:"),
        "{st}"
    );
    assert_eq!(
        l.run(r#"START module_id=m3 func=add args="a=2,b=3""#, T),
        "RESULT status=OK module_id=m3 func=add ret_i32=5"
    );
    // replace=1 on a running id kills the job (no RESULT) and reloads it in place
    l.load_ok("m3", &busy);
    start(&mut l, "START module_id=m3");
    assert_eq!(l.load("m3", &math, " replace=1"), "LOAD_OK");
    l.quiet("RESULT", Duration::from_millis(400));
    assert_eq!(
        l.run(r#"START module_id=m3 func=add args="a=2,b=5""#, T),
        "RESULT status=OK module_id=m3 func=add ret_i32=7"
    );
}
