//! A START with `wait_result` (or a STOP with `wait`) holds the device's command queue only until
//! its first reply; its RESULT is awaited outside the queue. Against the real simulated board and
//! against scripted devices: other hosts' STATUS and STOP are answered at once, two waits on two
//! slots each get their own RESULT, a host that goes away while waiting delays nothing, a RESULT
//! that never comes is a TIMEOUT naming the phase.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use wasmbed_gateway::device::{
    spawn_device, DeviceError, DeviceOptions, Reply, Request, StartRequest, StopRequest,
};
use wasmbed_gateway::sim::SimLink;

/// How long a command that does not wait for a job may take while another host waits.
const PROMPT: Duration = Duration::from_millis(1500);

async fn sim_gateway() -> (
    wasmbed_gateway::sim::SimChild,
    wasmbed_gateway::run::Running,
) {
    let sim = start_sim(SimLink::Tcp).await;
    let gw = gateway(&[format!("board={}", sim.endpoint)]).await;
    wait_online(&gw, "board").await;
    (sim, gw)
}

/// Polls `status` from `c` until the job of `module` is running; every status must be prompt.
async fn wait_running(c: &mut Client, dev: &str, module: &str) -> serde_json::Value {
    for _ in 0..100 {
        let t0 = Instant::now();
        let a = c.call(json!({"op": "status", "device": dev})).await;
        assert!(t0.elapsed() < PROMPT, "status took {:?}", t0.elapsed());
        let r = a.ok().clone();
        let running = r["slots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["module_id"] == module && s["state"] == "RUNNING");
        if running && r["jobs"][module]["state"] == "running" {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{module} never ran");
}

/// The embedded engineer's case: `start --wait-result` of a busy loop in one terminal, `status`
/// and `stop` from another answered at once; the waiting start then ends with MODULE_STOPPED and
/// a device time covering START to RESULT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_status_and_stop_answered_while_a_start_waits() {
    let (sim, gw) = sim_gateway().await;
    let mut b = Client::connect(gw.addr).await;
    b.deploy("board", "busy", &module_wasm("busy_loop"), json!({}))
        .await
        .ok();
    b.build_and_deploy("board", "toggle", &module_source("toggle_forever"), "wasm")
        .await
        .ok();

    for (module, func) in [("busy", "busy_loop"), ("toggle", "toggle_forever")] {
        let mut a = Client::connect(gw.addr).await;
        let started = Instant::now();
        let waiting = tokio::spawn(async move {
            let r = a
                .call(
                    json!({"op": "start", "device": "board", "module_id": module,
                             "func": func, "wait_result": true, "result_timeout_ms": 30000}),
                )
                .await;
            (r, started.elapsed())
        });
        wait_running(&mut b, "board", module).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t0 = Instant::now();
        let s = b.call(json!({"op": "status", "device": "board"})).await;
        assert!(t0.elapsed() < PROMPT, "status took {:?}", t0.elapsed());
        assert_eq!(s.ok()["jobs"][module]["state"], "running", "{}", s.reply);

        let t0 = Instant::now();
        let st = b
            .call(
                json!({"op": "stop", "device": "board", "module_id": module, "wait": true,
                         "result_timeout_ms": 10000}),
            )
            .await;
        // A forced stop of the busy loop and a cooperative one (a toggle lasts 1 s) alike.
        assert!(
            t0.elapsed() < Duration::from_millis(3000),
            "stop took {:?}",
            t0.elapsed()
        );
        let r = st.ok();
        assert_eq!(r["status"], "STOPPED", "{r}");
        assert!(r["line"]
            .as_str()
            .unwrap()
            .starts_with(&format!("RESULT status=STOPPED module_id={module}")));

        let (ans, took) = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiting start ended right after the stop")
            .unwrap();
        assert_eq!(ans.err_code(), "MODULE_STOPPED", "{}", ans.reply);
        let line = ans.reply["error"]["detail"]["line"].as_str().unwrap();
        assert!(
            line.starts_with(&format!("RESULT status=STOPPED module_id={module}")),
            "{line}"
        );
        // device_ms runs from START to the RESULT: it covers the job's whole run.
        let device_ms = ans.reply["latency"]["device_ms"].as_f64().unwrap();
        assert!(device_ms >= 300.0, "{}", ans.reply);
        assert!(device_ms <= took.as_secs_f64() * 1e3 + 1.0, "{}", ans.reply);

        let s = b.call(json!({"op": "status", "device": "board"})).await;
        let job = &s.ok()["jobs"][module];
        assert_eq!(job["state"], "done", "{}", s.reply);
        assert_eq!(job["status"], "STOPPED");
        assert_eq!(job["late"], false, "the waiting start asked for it");
    }
    drop(sim);
}

/// Two modules on two slots started with `wait_result` from two connections: each gets its own
/// RESULT (toggle_n returns its argument after n seconds), the shorter one first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_two_waits_on_two_slots_get_their_own_results() {
    let (sim, gw) = sim_gateway().await;
    let mut c = Client::connect(gw.addr).await;
    let wasm = module_wasm("toggle_n");
    c.deploy("board", "ta", &wasm, json!({})).await.ok();
    c.deploy("board", "tb", &wasm, json!({})).await.ok();
    let t0 = Instant::now();
    let run = |module: &'static str, n: i32| {
        let addr = gw.addr;
        tokio::spawn(async move {
            let mut h = Client::connect(addr).await;
            let a = h
                .call(
                    json!({"op": "start", "device": "board", "module_id": module,
                             "func": "toggle_n", "args": [n], "wait_result": true}),
                )
                .await;
            (a, t0.elapsed())
        })
    };
    let long = run("ta", 3);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let short = run("tb", 1);
    let (b, b_took) = short.await.unwrap();
    let (a, a_took) = long.await.unwrap();
    assert_eq!(a.ok()["ret"], 3, "{}", a.reply);
    assert_eq!(b.ok()["ret"], 1, "{}", b.reply);
    assert!(a.ok()["line"]
        .as_str()
        .unwrap()
        .starts_with("RESULT status=OK module_id=ta"));
    assert!(b.ok()["line"]
        .as_str()
        .unwrap()
        .starts_with("RESULT status=OK module_id=tb"));
    // tb ran while ta waited: it did not queue behind ta's 3 s.
    assert!(
        b_took < Duration::from_millis(2500),
        "tb answered after {b_took:?}"
    );
    assert!(a_took >= Duration::from_secs(3), "{a_took:?}");
    assert!(a.reply["latency"]["device_ms"].as_f64().unwrap() >= 2900.0);
    drop(sim);
}

// ---------------------------------------------------------------------------------------------
// Scripted devices.

fn start_json(module: &str, timeout_ms: u64) -> serde_json::Value {
    json!({"op": "start", "device": "d", "module_id": module, "func": "work",
           "wait_result": true, "result_timeout_ms": timeout_ms})
}

/// While one host waits, another's STATUS and STOP reach the device and are answered; the STOP
/// with `wait` and the waiting START both get the STOPPED RESULT.
#[tokio::test]
async fn status_and_stop_pass_a_waiting_start() {
    let (_dev, gw, mut c) = scripted("d").await;
    let mut a = Client::connect(gw.addr).await;
    let waiting = tokio::spawn(async move { a.call(start_json("m", 30_000)).await });
    c.expect("START module_id=m func=work").await;
    c.say("START_OK").await;

    let mut b = Client::connect(gw.addr).await;
    let status = tokio::spawn(async move {
        let r = b.call(json!({"op": "status", "device": "d"})).await;
        (r, b)
    });
    c.expect("STATUS").await;
    c.say("STATUS_OK modules=\"m:RUNNING:wasm=100:stack_free=3000:crc32=00000001\" low_stack=\"none\" wamr_total=1 wamr_free=1 wamr_used=0 wamr_highmark=0 rx_overflow=0 rx_too_long=0").await;
    let (s, mut b) = status.await.unwrap();
    assert_eq!(s.ok()["jobs"]["m"]["state"], "running", "{}", s.reply);

    let stop = tokio::spawn(async move {
        b.call(json!({"op": "stop", "device": "d", "module_id": "m", "wait": true}))
            .await
    });
    c.expect("STOP module_id=m").await;
    c.say("STOP_OK status=PENDING").await;
    // Meanwhile the queue is free again: a third host's STATUS goes out before the RESULT.
    let mut h3 = Client::connect(gw.addr).await;
    let third = tokio::spawn(async move { h3.call(json!({"op": "status", "device": "d"})).await });
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;
    third.await.unwrap().ok();
    c.say("RESULT status=STOPPED module_id=m func=work").await;

    let st = stop.await.unwrap();
    assert_eq!(st.ok()["status"], "STOPPED", "{}", st.reply);
    assert_eq!(
        st.ok()["line"],
        "RESULT status=STOPPED module_id=m func=work"
    );
    let w = waiting.await.unwrap();
    assert_eq!(w.err_code(), "MODULE_STOPPED", "{}", w.reply);
    assert_eq!(gw.devices[0].waiting(), 0);
    // Taken by its waiters: not a late RESULT in the log.
    assert!(!gw.devices[0]
        .log
        .since(0)
        .0
        .iter()
        .any(|e| e.line.starts_with("RESULT")));
}

/// `stop` without `wait` answers at `STOP_OK status=PENDING`; the RESULT then ends the waiting
/// START.
#[tokio::test]
async fn stop_without_wait_answers_at_pending() {
    let (_dev, gw, mut c) = scripted("d").await;
    let mut a = Client::connect(gw.addr).await;
    let waiting = tokio::spawn(async move { a.call(start_json("m", 30_000)).await });
    c.expect("START module_id=m").await;
    c.say("START_OK").await;
    let mut b = Client::connect(gw.addr).await;
    let stop = tokio::spawn(async move {
        b.call(json!({"op": "stop", "device": "d", "module_id": "m"}))
            .await
    });
    c.expect("STOP module_id=m").await;
    c.say("STOP_OK status=PENDING").await;
    let st = tokio::time::timeout(PROMPT, stop)
        .await
        .expect("stop answered at PENDING")
        .unwrap();
    assert_eq!(st.ok()["status"], "PENDING", "{}", st.reply);
    assert_eq!(st.ok()["line"], "STOP_OK status=PENDING");
    c.say("RESULT status=STOPPED module_id=m func=work").await;
    let w = waiting.await.unwrap();
    assert_eq!(w.err_code(), "MODULE_STOPPED", "{}", w.reply);
}

/// RESULTs are routed by module: B's never completes A's waiter, whatever the order. A RESULT
/// without `module_id` (FW-A) completes the only module waited on, and nobody's when two are.
#[tokio::test]
async fn results_go_to_their_own_waiters() {
    let (_dev, gw, mut c) = scripted("d").await;
    let wait = |module: &'static str, timeout_ms: u64| {
        let addr = gw.addr;
        tokio::spawn(async move {
            let mut h = Client::connect(addr).await;
            h.call(start_json(module, timeout_ms)).await
        })
    };
    let wa = wait("ma", 30_000);
    c.expect("START module_id=ma").await;
    c.say("START_OK").await;
    let wb = wait("mb", 30_000);
    c.expect("START module_id=mb").await;
    c.say("START_OK").await;
    c.say("RESULT status=OK module_id=mb func=work ret_i32=2")
        .await;
    let b = wb.await.unwrap();
    assert_eq!(b.ok()["ret"], 2, "{}", b.reply);
    assert!(!wa.is_finished());
    c.say("RESULT status=OK module_id=ma func=work ret_i32=1")
        .await;
    let a = wa.await.unwrap();
    assert_eq!(a.ok()["ret"], 1, "{}", a.reply);

    // FW-A style, one module waited on: it is that module's RESULT.
    let wa = wait("ma", 30_000);
    c.expect("START module_id=ma").await;
    c.say("START_OK").await;
    c.say("RESULT status=OK ret_i32=5").await;
    let a = wa.await.unwrap();
    assert_eq!(a.ok()["ret"], 5, "{}", a.reply);

    // FW-A style, two modules waited on: ambiguous, so it completes neither (both time out).
    let wa = wait("ma", 600);
    c.expect("START module_id=ma").await;
    c.say("START_OK").await;
    let wb = wait("mb", 600);
    c.expect("START module_id=mb").await;
    c.say("START_OK").await;
    c.say("RESULT status=OK ret_i32=9").await;
    for w in [wa, wb] {
        let r = w.await.unwrap();
        assert_eq!(r.err_code(), "TIMEOUT", "{}", r.reply);
        assert_eq!(r.reply["error"]["detail"]["phase"], "waiting for RESULT");
    }
    assert_eq!(gw.devices[0].waiting(), 0);
}

/// A host that disconnects while waiting: its waiter is dropped at once and the next command is
/// not delayed.
#[tokio::test]
async fn a_host_gone_while_waiting_delays_nothing() {
    let (_dev, gw, mut c) = scripted("d").await;
    let mut a = Client::connect(gw.addr).await;
    let waiting = tokio::spawn(async move {
        // Never answered: the host gives up after 300 ms and goes away.
        let _ =
            tokio::time::timeout(Duration::from_millis(300), a.call(start_json("m", 60_000))).await;
    });
    c.expect("START module_id=m").await;
    c.say("START_OK").await;
    waiting.await.unwrap();
    let t0 = Instant::now();
    while gw.devices[0].waiting() > 0 {
        assert!(
            t0.elapsed() < PROMPT,
            "the waiter outlived its host by {:?}",
            t0.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut b = Client::connect(gw.addr).await;
    let t0 = Instant::now();
    let status = tokio::spawn(async move { b.call(json!({"op": "status", "device": "d"})).await });
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;
    status.await.unwrap().ok();
    assert!(t0.elapsed() < PROMPT, "status took {:?}", t0.elapsed());
    // The job itself still ends normally: its RESULT goes to the job record (late).
    c.say("RESULT status=OK module_id=m func=work ret_i32=3")
        .await;
    let t0 = Instant::now();
    loop {
        let s = gw.devices[0].snapshot();
        if s.jobs.get("m").is_some_and(|j| j.status.is_some()) {
            assert!(s.jobs["m"].late);
            break;
        }
        assert!(t0.elapsed() < PROMPT, "RESULT not recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The legacy dialect (one request per connection) takes the same path: a legacy `status`
/// passes a legacy `start` waiting for its result.
#[tokio::test]
async fn legacy_status_passes_a_legacy_waiting_start() {
    let (_dev, gw, mut c) = scripted("d").await;
    let addr = gw.addr;
    let waiting = tokio::spawn(async move {
        host_raw(
            addr,
            b"{\"cmd\": \"start\", \"device\": \"d\", \"module_id\": \"m\", \"func_name\": \"work\", \"wait_result\": true, \"result_timeout\": 30}\n",
        )
        .await
    });
    c.expect("START module_id=m func=work").await;
    c.say("START_OK").await;
    let status =
        tokio::spawn(
            async move { host_raw(addr, b"{\"cmd\": \"status\", \"device\": \"d\"}\n").await },
        );
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;
    let s = tokio::time::timeout(PROMPT, status)
        .await
        .expect("legacy status answered while the start waits")
        .unwrap();
    assert!(s.contains("\"ok\": true"), "{s}");
    c.say("RESULT status=OK module_id=m func=work ret_i32=4")
        .await;
    let w = waiting.await.unwrap();
    assert_eq!(
        w,
        "{\"ok\": true, \"detail\": \"RESULT status=OK module_id=m func=work ret_i32=4\"}\n"
    );
}

// ---------------------------------------------------------------------------------------------
// The device task directly, on a paused clock.

fn start_req(module_id: &str, timeout: Duration) -> Request {
    Request::Start(StartRequest {
        module_id: module_id.into(),
        func: Some("work".into()),
        args: vec![],
        wait_result: true,
        result_timeout: timeout,
    })
}

/// A RESULT that never comes: TIMEOUT naming the phase and the last line heard, at
/// `result_timeout` after START_OK, while other commands were served meanwhile. A lost link
/// fails a waiter with LINK_LOST.
#[tokio::test(start_paused = true)]
async fn waiting_start_times_out_naming_the_phase() {
    let (connector, mut links) = DuplexConnector::new(0);
    let dev = spawn_device(DeviceOptions::new("d", connector));
    let mut c = Conn::new(links.recv().await.unwrap());
    c.handshake_v2().await;

    let d = dev.clone();
    let h = tokio::spawn(async move { d.call(start_req("m", Duration::from_secs(5)), None).await });
    c.expect("START module_id=m func=work").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.say("START_OK").await;
    let started = tokio::time::Instant::now();
    // Served while the START waits.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let d = dev.clone();
    let s = tokio::spawn(async move { d.call(Request::Status, None).await });
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;
    assert!(matches!(s.await.unwrap().result, Ok(Reply::Status { .. })));
    assert!(!h.is_finished());
    c.say("LOG module_id=m msg=\"still busy\"").await;
    let out = h.await.unwrap();
    assert_eq!(
        out.result,
        Err(DeviceError::Timeout {
            phase: "waiting for RESULT".into(),
            last_line: Some("LOG module_id=m msg=\"still busy\"".into()),
        })
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_millis(5100),
        "{waited:?}"
    );
    // START to the deadline.
    assert!(out.device_time >= Duration::from_millis(5200), "{out:?}");
    assert_eq!(dev.waiting(), 0);

    // A STOP with `wait` parked like a START; the link drops: LINK_LOST for it.
    let d = dev.clone();
    let h = tokio::spawn(async move {
        d.call(
            Request::Stop(StopRequest {
                module_id: "m".into(),
                wait: true,
                result_timeout: Duration::from_secs(30),
            }),
            None,
        )
        .await
    });
    c.expect("STOP module_id=m").await;
    c.say("STOP_OK status=PENDING").await;
    while dev.waiting() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    c.hang_up();
    let out = h.await.unwrap();
    assert!(
        matches!(&out.result, Err(DeviceError::LinkLost { phase, .. }) if phase == "STOP"),
        "{out:?}"
    );
    assert_eq!(dev.waiting(), 0);
}
