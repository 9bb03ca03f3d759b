//! Faults the simulated board cannot produce on demand, against devices scripted step by step:
//! split replies, a Renode telnet prefix, console text, silence, a link dropped mid-upload,
//! reconnect backoff, a reboot mid-job, two hosts at once, legacy v1 firmware.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::net::TcpStream;
use wasmbed_gateway::device::{
    spawn_device, ConnectFailure, DeployRequest, DeviceError, DeviceHandle, DeviceOptions,
    OfflineReason, Outcome, Reply, Request, StartRequest,
};

/// `dev.call(req)` on a task of its own (while the test plays the device).
fn call_bg(dev: &DeviceHandle, req: Request) -> tokio::task::JoinHandle<Outcome> {
    let d = dev.clone();
    tokio::spawn(async move { d.call(req, None).await })
}

fn start_req(module_id: &str, func: &str, args: Vec<i32>, wait: bool) -> Request {
    Request::Start(StartRequest {
        module_id: module_id.into(),
        func: Some(func.into()),
        args,
        wait_result: wait,
        result_timeout: Duration::from_secs(5),
    })
}

/// Serves a chunked v2 LOAD of `wasm` as `module_id` (after the gateway's skip check STATUS).
async fn serve_chunked_load(c: &mut Conn<TcpStream>, module_id: &str, wasm: &[u8]) {
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;
    let crc = format!("{:08x}", crc32fast::hash(wasm));
    let load = c.line().await;
    assert_eq!(
        load,
        format!(
            "LOAD module_id={module_id} size={} crc32={crc} chunked=1 framed=1",
            wasm.len()
        )
    );
    c.say(&format!(
        "LOAD_READY module_id={module_id} size={} crc32={crc} chunk=64 offset=0 framed=1",
        wasm.len()
    ))
    .await;
    let mut off = 0;
    while off < wasm.len() {
        let n = 64.min(wasm.len() - off);
        let (o, d, _) = c.frame().await;
        assert_eq!((o, d), (off as u32, wasm[off..off + n].to_vec()));
        off += n;
        c.say(&format!("CHUNK_OK offset={off}")).await;
    }
    c.say("LOAD_OK").await;
}

fn deploy_req(module_id: &str, wasm: &[u8]) -> Request {
    Request::Deploy(DeployRequest {
        module_id: module_id.into(),
        bytes: std::sync::Arc::new(wasm.to_vec()),
        replace: false,
        replace_victim: None,
        force: false,
        version: 0,
        signature: None,
    })
}

/// Issue 11 case 1 (gateway side): during a framed chunk an unrelated line (`ERROR
/// code=UNKNOWN_COMMAND`) is not the chunk's answer, a chunk that gets no answer is sent again
/// after a lone `\n`, and an echoing link (every byte the gateway sends comes back) is harmless.
#[tokio::test(start_paused = true)]
async fn framed_upload_ignores_foreign_lines_and_echo_and_resends_a_silent_frame() {
    let (connector, mut links) = DuplexConnector::new(0);
    let dev = spawn_device(DeviceOptions::new("d", connector));
    let mut c = Conn::new(links.recv().await.unwrap());
    c.handshake_v2().await;
    let wasm = module_wasm("math_ops");
    let crc = format!("{:08x}", crc32fast::hash(&wasm));
    let h = call_bg(&dev, deploy_req("m", &wasm));
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;
    let load = c.expect("LOAD module_id=m ").await;
    c.say(&load).await; // echo
    c.say(&format!(
        "LOAD_READY module_id=m size={} crc32={crc} chunk=64 offset=0 framed=1",
        wasm.len()
    ))
    .await;
    let (off, data, raw) = c.frame().await;
    assert_eq!((off, data.as_slice()), (0, &wasm[..64]));
    c.send(&raw).await; // echo of the frame
    c.say("ERROR code=UNKNOWN_COMMAND").await;
    // no answer: after its deadline the gateway ends a partial frame and sends it again
    let t0 = tokio::time::Instant::now();
    assert_eq!(c.payload(1).await, b"\n");
    assert!(t0.elapsed() >= Duration::from_secs(3), "{:?}", t0.elapsed());
    let (off2, _, raw2) = c.frame().await;
    assert_eq!((off2, &raw2), (0, &raw));
    let mut off = 0;
    while off < wasm.len() {
        let n = 64.min(wasm.len() - off);
        off += n;
        c.say(&format!("CHUNK_OK offset={off}")).await;
        if off < wasm.len() {
            let (o, d, raw) = c.frame().await;
            assert_eq!(
                (o as usize, d.as_slice()),
                (off, &wasm[off..off + 64.min(wasm.len() - off)])
            );
            c.send(&raw).await; // echo
        }
    }
    c.say("LOAD_OK").await;
    let out = h.await.unwrap();
    assert!(out.result.is_ok(), "{:?}", out.result);
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;
}

#[tokio::test]
async fn split_bytes_telnet_prefix_and_console_text() {
    let dev = ScriptedTcp::bind().await;
    let gw = gateway(&[dev.flag("renode")]).await;
    let mut c = dev.accept().await;
    c.bytewise = true;
    // Renode's telnet negotiation at connect, then every reply one byte per write, with
    // console text between the replies.
    c.send(&[
        0xFF, 0xFD, 0x00, 0xFF, 0xFB, 0x01, 0xFF, 0xFB, 0x03, 0xFF, 0xFC, 0x22,
    ])
    .await;
    assert_eq!(c.line().await, "INFO");
    c.say("*** Booting Zephyr OS build v4.3.99 ***").await;
    c.say(INFO_V2).await;
    assert_eq!(c.line().await, "STATUS");
    c.say(STATUS_V2_EMPTY).await;
    wait_online(&gw, "renode").await;
    let s = gw.devices[0].snapshot();
    assert_eq!(s.proto, Some(2));
    assert_eq!(s.board.as_deref(), Some("fake"));

    let host = Client::connect(gw.addr).await;
    let call = host.spawn_call(
        json!({"op": "start", "device": "renode", "module_id": "math_ops",
               "func": "add", "args": [200, 26], "wait_result": true}),
    );
    assert_eq!(
        c.line().await,
        "START module_id=math_ops func=add args=\"a0=200,a1=26\""
    );
    c.say("START_OK").await;
    c.say("LED ON (thread 0x20001000)").await;
    c.say("RESULT status=OK module_id=math_ops func=add ret_i32=226")
        .await;
    let (a, mut host) = call.await.unwrap();
    assert_eq!(a.ok()["ret"], 226, "{}", a.reply);
    let logs = host.call(json!({"op": "logs", "device": "renode"})).await;
    let lines: Vec<String> = logs.ok()["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "console")
        .map(|e| e["line"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "*** Booting Zephyr OS build v4.3.99 ***",
            "LED ON (thread 0x20001000)"
        ]
    );
}

/// Silence: every wait ends in a TIMEOUT naming the phase and the last line heard. Paused clock,
/// in-memory link: the deadlines pass in virtual time.
#[tokio::test(start_paused = true)]
async fn silence_times_out_naming_phase_and_last_line() {
    let (connector, mut links) = DuplexConnector::new(0);
    let dev = spawn_device(DeviceOptions::new("d", connector));
    let mut c = Conn::new(links.recv().await.unwrap());
    c.handshake_v2().await;

    // STATUS: console text, then nothing.
    let t0 = tokio::time::Instant::now();
    let h = call_bg(&dev, Request::Status);
    c.expect("STATUS").await;
    c.say("uart: rx overrun").await;
    let out = h.await.unwrap();
    assert_eq!(
        out.result,
        Err(DeviceError::Timeout {
            phase: "waiting for STATUS_OK".into(),
            last_line: Some("uart: rx overrun".into()),
        })
    );
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_millis(2100),
        "{waited:?}"
    );

    // START with wait_result: START_OK, a console line, then the job never reports.
    let t0 = tokio::time::Instant::now();
    let h = call_bg(&dev, start_req("m", "f", vec![], true));
    c.expect("START module_id=m func=f").await;
    c.say("START_OK").await;
    c.say("LED ON (thread 0x1)").await;
    let out = h.await.unwrap();
    let err = out.result.unwrap_err();
    assert_eq!(
        err,
        DeviceError::Timeout {
            phase: "waiting for RESULT".into(),
            last_line: Some("LED ON (thread 0x1)".into()),
        }
    );
    assert!(err.to_string().contains("LED ON (thread 0x1)"), "{err}");
    assert!(t0.elapsed() >= Duration::from_secs(5));

    // START: not even START_OK.
    let h = call_bg(&dev, start_req("m", "f", vec![], false));
    c.expect("START").await;
    let err = h.await.unwrap().result.unwrap_err();
    assert_eq!(
        err,
        DeviceError::Timeout {
            phase: "waiting for START_OK/RESULT/ERROR".into(),
            last_line: None,
        }
    );

    // The device is still usable afterwards.
    let h = call_bg(&dev, Request::Status);
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;
    assert!(matches!(h.await.unwrap().result, Ok(Reply::Status { .. })));
}

/// Silence through the host API: the JSON error carries the phase and the last line.
#[tokio::test]
async fn silence_through_the_api() {
    let (_dev, gw, mut c) = scripted("d").await;
    let call = Client::connect(gw.addr).await.spawn_call(
        json!({"op": "start", "device": "d", "module_id": "m", "func": "f",
               "wait_result": true, "result_timeout_ms": 300}),
    );
    c.expect("START module_id=m func=f").await;
    c.say("START_OK").await;
    c.say("[A] hello").await;
    let (a, _) = call.await.unwrap();
    assert_eq!(a.err_code(), "TIMEOUT", "{}", a.reply);
    let detail = &a.reply["error"]["detail"];
    assert_eq!(detail["phase"], "waiting for RESULT");
    assert_eq!(detail["last_line"], "[A] hello");
    assert!(a.reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("[A] hello"));
}

/// A device that never answers INFO: the handshake stops there (no STATUS to a device that did
/// not answer INFO), `devices` says INFO went unanswered and what to do, and a command asks INFO
/// again first and fails naming INFO, not its own reply.
#[tokio::test(start_paused = true)]
async fn a_device_that_never_answers_info_is_reported_as_such() {
    let (connector, mut links) = DuplexConnector::new(0);
    let dev = spawn_device(DeviceOptions::new("d", connector));
    let mut c = Conn::new(links.recv().await.unwrap());
    c.expect("INFO").await;
    // INFO's deadline (3 s) passes; nothing more is sent.
    c.quiet_for(10_000).await;
    let s = dev.snapshot();
    assert!(!s.online && !s.handshake, "{s:?}");
    let why = s.offline_reason.unwrap();
    assert!(
        why.starts_with("not answering: timeout waiting for INFO_OK")
            && why.contains("check that it runs the Wasmbed agent"),
        "{why}"
    );
    assert!(!why.contains("STATUS"), "{why}");

    // STATUS from a host: INFO again first; still silent, so the error is INFO's.
    let h = call_bg(&dev, Request::Status);
    c.expect("INFO").await;
    let err = h.await.unwrap().result.unwrap_err();
    assert_eq!(
        err,
        DeviceError::Timeout {
            phase: "waiting for INFO_OK/ERROR".into(),
            last_line: None,
        }
    );
    assert!(err.to_string().contains("INFO"), "{err}");
    let help = err.help().unwrap();
    assert!(help.contains("did not answer INFO"), "{help}");
    c.quiet_for(5_000).await;

    // It answers at last: the command runs after the handshake.
    let h = call_bg(&dev, Request::Status);
    c.handshake_v2().await;
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;
    assert!(matches!(h.await.unwrap().result, Ok(Reply::Status { .. })));
    assert!(dev.snapshot().online);
}

/// The same through the host API: `TIMEOUT` naming INFO, with a help that says what to do.
#[tokio::test]
async fn a_device_that_never_answers_info_through_the_api() {
    let dev = ScriptedTcp::bind().await;
    let gw = gateway(&[dev.flag("mute")]).await;
    let mut c = dev.accept().await;
    c.expect("INFO").await;
    let call = Client::connect(gw.addr)
        .await
        .spawn_call(json!({"op": "status", "device": "mute"}));
    // The connect-time INFO times out, then the command's INFO.
    c.expect("INFO").await;
    let (a, _) = call.await.unwrap();
    assert_eq!(a.err_code(), "TIMEOUT", "{}", a.reply);
    let e = &a.reply["error"];
    assert_eq!(e["detail"]["phase"], "waiting for INFO_OK/ERROR", "{e}");
    assert!(e["message"].as_str().unwrap().contains("INFO"), "{e}");
    assert!(!e["message"].as_str().unwrap().contains("STATUS"), "{e}");
    assert!(
        e["help"].as_str().unwrap().contains("did not answer INFO"),
        "{e}"
    );
}

/// Reconnects back off 200 ms, 400 ms, 800 ms…; commands while offline fail at once with
/// DEVICE_OFFLINE; after a link loss the next connect is immediate.
#[tokio::test(start_paused = true)]
async fn reconnect_with_backoff() {
    let (connector, mut links) = DuplexConnector::new(3);
    let attempts = connector.attempts.clone();
    let dev = spawn_device(DeviceOptions::new("d", connector));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let out = dev.call(Request::Status, None).await;
    assert!(
        matches!(&out.result, Err(DeviceError::Offline(OfflineReason::CannotConnect {
            cause: ConnectFailure::Failed(e), ..
        })) if e.to_string().contains("scripted connect failure")),
        "{:?}",
        out.result
    );
    let mut c = Conn::new(links.recv().await.unwrap());
    let times = attempts.lock().unwrap().clone();
    assert_eq!(times.len(), 4);
    let gaps: Vec<u128> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    assert_eq!(gaps, [200, 400, 800]);
    c.handshake_v2().await;
    let h = call_bg(&dev, Request::Status);
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;
    assert!(h.await.unwrap().result.is_ok());
    assert!(dev.snapshot().online);

    // The device end goes away: offline, then an immediate reconnect.
    let lost_at = tokio::time::Instant::now();
    drop(c);
    let mut c = Conn::new(links.recv().await.unwrap());
    let times = attempts.lock().unwrap().clone();
    assert_eq!(times.len(), 5);
    assert!(times[4] - lost_at < Duration::from_millis(10));
    c.handshake_v2().await;
    let log = dev.log.since(0).0;
    assert!(
        log.iter().any(|e| e.line.starts_with("link down:")),
        "{log:?}"
    );
}

#[tokio::test]
async fn link_dropped_mid_upload_is_link_lost_and_recovers() {
    let (dev, gw, mut c) = scripted("d").await;
    let wasm = module_wasm("math_ops");
    assert!(wasm.len() > 128);
    let crc = format!("{:08x}", crc32fast::hash(&wasm));

    let host = Client::connect(gw.addr).await;
    let call = host.spawn_deploy("d", "math_ops", &wasm);
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;
    c.expect("LOAD module_id=math_ops").await;
    c.say(&format!(
        "LOAD_READY module_id=math_ops size={} crc32={crc} chunk=64 offset=0",
        wasm.len()
    ))
    .await;
    c.expect("CHUNK offset=0 size=64").await;
    c.payload(64).await;
    c.say("CHUNK_OK offset=64").await;
    c.expect("CHUNK offset=64 size=64").await;
    c.payload(64).await;
    c.hang_up(); // the cable is pulled
    let (a, host) = call.await.unwrap();
    assert_eq!(a.err_code(), "LINK_LOST", "{}", a.reply);
    assert_eq!(a.reply["error"]["detail"]["phase"], "LOAD");
    // Progress was reported for the acknowledged chunk.
    assert!(a.events.iter().any(|e| e["done"] == 64), "{:?}", a.events);

    // The link comes back by itself and the next commands work.
    let mut c = dev.accept().await;
    c.handshake_v2().await;
    wait_online(&gw, "d").await;
    let call = host.spawn_deploy("d", "math_ops", &wasm);
    serve_chunked_load(&mut c, "math_ops", &wasm).await;
    let (a, mut host) = call.await.unwrap();
    assert_eq!(a.ok()["line"], "LOAD_OK", "{}", a.reply);
    assert_eq!(a.ok()["chunked"], true);
    // After a LOAD the gateway re-reads STATUS, so `devices` shows the slot in use.
    c.expect("STATUS").await;
    c.say(&format!(
        "STATUS_OK modules=\"math_ops:LOADED:wasm={}:stack_free=4000:crc32={:08x}\" low_stack=\"none\" wamr_total=131072 wamr_free=100000 wamr_used=31072 wamr_highmark=31072 rx_overflow=0 rx_too_long=0",
        wasm.len(),
        crc32fast::hash(&wasm)
    ))
    .await;
    let mut used = serde_json::Value::Null;
    for _ in 0..50 {
        let a = host.call(json!({"op": "devices"})).await;
        used = a.ok()["devices"][0]["slots_used"].clone();
        if used == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(used, 1);
}

#[tokio::test]
async fn reboot_mid_job_fails_the_job_and_rereads_state() {
    let (_dev, gw, mut c) = scripted("d").await;
    let call = Client::connect(gw.addr).await.spawn_call(
        json!({"op": "start", "device": "d", "module_id": "m", "func": "f",
               "wait_result": true}),
    );
    c.expect("START module_id=m func=f").await;
    c.say("START_OK").await;
    c.say(HELLO_V2).await;
    // The gateway re-reads what the rebooted device is and holds.
    c.handshake_v2().await;
    let (a, host) = call.await.unwrap();
    assert_eq!(a.err_code(), "LINK_LOST", "{}", a.reply);
    let msg = a.reply["error"]["message"].as_str().unwrap();
    assert!(msg.contains("rebooted") && msg.contains("START"), "{msg}");
    assert_eq!(a.reply["error"]["detail"]["line"], HELLO_V2);

    // A HELLO between commands is noticed too.
    c.say(HELLO_V2).await;
    c.handshake_v2().await;

    let call = host.spawn_call(json!({"op": "status", "device": "d"}));
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;
    call.await.unwrap().0.ok();
    let hellos = gw.devices[0]
        .log
        .since(0)
        .0
        .into_iter()
        .filter(|e| e.line == HELLO_V2)
        .count();
    assert_eq!(hellos, 2);
}

#[tokio::test]
async fn two_hosts_on_one_device_are_served_in_order() {
    let (_dev, gw, mut c) = scripted("d").await;
    let addr = gw.addr;
    let host = |module: &'static str, a: i32| {
        tokio::spawn(async move {
            let mut h = Client::connect(addr).await;
            h.call(
                json!({"op": "start", "device": "d", "module_id": module, "func": "add",
                          "args": [a, 0], "wait_result": true}),
            )
            .await
        })
    };
    let first = host("ma", 1);
    assert_eq!(
        c.line().await,
        "START module_id=ma func=add args=\"a0=1,a1=0\""
    );
    let second = host("mb", 2);
    // Until the first START is answered, nothing of the second reaches the device (its wait
    // for the RESULT then happens outside the queue).
    c.quiet_for(300).await;
    c.say("START_OK").await;
    c.say("RESULT status=OK module_id=ma func=add ret_i32=1")
        .await;
    assert_eq!(
        c.line().await,
        "START module_id=mb func=add args=\"a0=2,a1=0\""
    );
    c.say("START_OK").await;
    c.say("RESULT status=OK module_id=mb func=add ret_i32=2")
        .await;
    let a = first.await.unwrap();
    let b = second.await.unwrap();
    assert_eq!(a.ok()["ret"], 1, "{}", a.reply);
    assert_eq!(b.ok()["ret"], 2, "{}", b.reply);
    assert!(a.ok()["line"].as_str().unwrap().contains("module_id=ma"));
    assert!(b.ok()["line"].as_str().unwrap().contains("module_id=mb"));
}

#[tokio::test]
async fn legacy_v1_firmware_gets_raw_load() {
    let dev = ScriptedTcp::bind().await;
    let gw = gateway(&[dev.flag("nucleo")]).await;
    let mut c = dev.accept().await;
    c.handshake_v1().await;
    wait_online(&gw, "nucleo").await;
    let mut host = Client::connect(gw.addr).await;
    let a = host.call(json!({"op": "devices"})).await;
    assert_eq!(a.ok()["devices"][0]["proto"], 1, "{}", a.reply);
    // `info` re-asks the device (INFO, falling back to v1, and STATUS).
    let call = host.spawn_call(json!({"op": "info", "device": "nucleo"}));
    c.handshake_v1().await;
    let (a, host) = call.await.unwrap();
    assert_eq!(a.ok()["proto"], 1, "{}", a.reply);

    let wasm = module_wasm("math_ops");
    let crc = format!("{:08x}", crc32fast::hash(&wasm));
    let call = host.spawn_deploy("nucleo", "math_ops", &wasm);
    c.expect("STATUS").await;
    c.say(STATUS_V1_EMPTY).await;
    assert_eq!(
        c.line().await,
        format!("LOAD module_id=math_ops size={} crc32={crc}", wasm.len())
    );
    c.say(&format!(
        "LOAD_READY module_id=math_ops size={} crc32={crc}",
        wasm.len()
    ))
    .await;
    assert_eq!(c.payload(wasm.len()).await, wasm);
    c.say("LOAD_OK").await;
    let (a, mut host) = call.await.unwrap();
    let r = a.ok();
    assert_eq!(r["line"], "LOAD_OK", "{r}");
    assert_eq!(r["chunked"], false);
    // The gateway re-reads STATUS after a LOAD.
    c.expect("STATUS").await;
    c.say(STATUS_V1_EMPTY).await;

    // UNLOAD does not exist in v1: refused without a byte on the wire.
    let a = host
        .call(json!({"op": "unload", "device": "nucleo", "module_id": "math_ops"}))
        .await;
    assert_eq!(a.err_code(), "DEVICE_REJECTED", "{}", a.reply);
    c.quiet_for(100).await;
}

/// A RESULT that arrives after START was answered completes that module's job record (status)
/// and stays in the log; a reboot marks running jobs lost.
#[tokio::test]
async fn late_results_complete_the_job_record() {
    let (_dev, gw, mut c) = scripted("d").await;
    let host = Client::connect(gw.addr).await;
    let start = json!({"op": "start", "device": "d", "module_id": "slow", "func": "work"});
    let status = json!({"op": "status", "device": "d"});

    let call = host.spawn_call(start.clone());
    c.expect("START module_id=slow func=work").await;
    c.say("START_OK").await;
    let (a, host) = call.await.unwrap();
    assert_eq!(a.ok()["line"], "START_OK");

    let running = "STATUS_OK modules=\"slow:RUNNING:wasm=100:stack_free=3000:crc32=00000001\" low_stack=\"none\" wamr_total=1 wamr_free=1 wamr_used=0 wamr_highmark=0 rx_overflow=0 rx_too_long=0";
    let call = host.spawn_call(status.clone());
    c.expect("STATUS").await;
    c.say(running).await;
    let (a, host) = call.await.unwrap();
    let job = &a.ok()["jobs"]["slow"];
    assert_eq!(job["state"], "running", "{}", a.reply);
    assert_eq!(job["func"], "work");
    assert_eq!(job["result"], serde_json::Value::Null);

    // The job ends while nobody is asking.
    let result = "RESULT status=OK module_id=slow func=work ret_i32=7";
    c.say(result).await;
    let seq = wait_logged(&gw.devices[0].log, result)
        .await
        .expect("late RESULT logged");
    let call = host.spawn_call(status.clone());
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;
    let (a, mut host) = call.await.unwrap();
    let job = &a.ok()["jobs"]["slow"];
    assert_eq!(job["state"], "done", "{}", a.reply);
    assert_eq!(job["status"], "OK");
    assert_eq!(job["result"], result);
    assert_eq!(job["late"], true);
    assert_eq!(job["log_seq"], seq);
    assert!(job["duration_ms"].as_u64().is_some(), "{job}");
    let logs = host.call(json!({"op": "logs", "device": "d"})).await;
    assert!(logs.ok()["lines"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["seq"] == seq && e["kind"] == "result" && e["line"] == result));

    // A second job, then a reboot: it will never report.
    let call = host.spawn_call(start);
    c.expect("START").await;
    c.say("START_OK").await;
    let (_, host) = call.await.unwrap();
    c.say(HELLO_V2).await;
    c.handshake_v2().await;
    let call = host.spawn_call(status);
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;
    let (a, _) = call.await.unwrap();
    assert_eq!(a.ok()["jobs"]["slow"]["state"], "lost", "{}", a.reply);
}

/// `logs` with `follow` streams new lines and stops as soon as the host goes away.
#[tokio::test]
async fn log_follow_ends_when_the_host_disconnects() {
    let (_dev, gw, mut c) = scripted("d").await;
    c.say("before").await;
    let log = gw.devices[0].log.clone();
    wait_logged(&log, "before").await;
    let mut host = Client::connect(gw.addr).await;
    let a = host
        .call(json!({"op": "logs", "device": "d", "follow": true}))
        .await;
    let held: Vec<_> = a.ok()["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_str().unwrap().to_string())
        .collect();
    assert!(held.contains(&"before".to_string()), "{held:?}");
    assert_eq!(log.followers(), 1);
    c.say("LOG module_id=m msg=\"tick\"").await;
    let ev = host.next(5).await.expect("a followed line");
    assert_eq!(ev["event"], "log");
    assert_eq!(ev["kind"], "log");
    assert_eq!(ev["line"], "LOG module_id=m msg=\"tick\"");
    assert_eq!(ev["device"], "d");

    drop(host);
    let t0 = std::time::Instant::now();
    while log.followers() > 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "the follower outlived its host"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Issue 11 case 5 (legacy side): a START that times out on v1 firmware, whose START_OK comes
/// late, is followed by the resynchronisation marker before the next command; the late START_OK
/// is discarded with everything before the marker's answer, so the next START gets its own
/// answer (`RESULT status=NO_MODULE`), not the stale "started". A marker swallowed whole (the
/// device still reading a payload) is sent again.
#[tokio::test]
async fn legacy_timeout_resyncs_before_the_next_command() {
    let (connector, mut links) = DuplexConnector::new(0);
    let dev = spawn_device(DeviceOptions::new("d", connector));
    let mut c = Conn::new(links.recv().await.unwrap());
    c.handshake_v1().await;

    let h = call_bg(&dev, start_req("slow", "f", vec![], false));
    c.expect("START module_id=slow func=f").await;
    let err = h.await.unwrap().result.unwrap_err();
    assert!(matches!(err, DeviceError::Timeout { .. }), "{err:?}");

    // The marker: a newline, the unknown command, STATUS; the device answers late first.
    assert_eq!(c.line().await, "");
    assert_eq!(c.line().await, "WASMBED_RESYNC");
    assert_eq!(c.line().await, "STATUS");
    // Nothing else goes out until the device has answered the marker.
    c.quiet_for(300).await;
    c.say("START_OK").await; // the late answer to the timed-out START
    c.say("ERROR code=UNKNOWN_COMMAND").await;
    c.say(STATUS_V1_EMPTY).await;

    let h = call_bg(&dev, start_req("absent", "f", vec![], false));
    c.expect("START module_id=absent func=f").await;
    c.say("RESULT status=NO_MODULE").await;
    let err = h.await.unwrap().result.unwrap_err();
    assert!(
        err.to_string().contains("NO_MODULE"),
        "the next START got its own answer, not the stale START_OK: {err}"
    );

    // A timeout again; this time the first marker is swallowed (no answer within STATUS's 2 s):
    // the gateway sends it again and syncs on the second.
    let h = call_bg(&dev, Request::Status);
    c.expect("STATUS").await;
    assert!(matches!(
        h.await.unwrap().result,
        Err(DeviceError::Timeout { .. })
    ));
    for _ in 0..2 {
        assert_eq!(c.line().await, "");
        assert_eq!(c.line().await, "WASMBED_RESYNC");
        assert_eq!(c.line().await, "STATUS");
    }
    c.say("ERROR code=UNKNOWN_COMMAND").await;
    c.say(STATUS_V1_EMPTY).await;
    // After a second marker the pair must stay unchallenged for a moment, then the link is
    // in sync again.
    let h = call_bg(&dev, Request::Status);
    c.expect("STATUS").await;
    c.say(STATUS_V1_EMPTY).await;
    assert!(matches!(h.await.unwrap().result, Ok(Reply::Status { .. })));
}
