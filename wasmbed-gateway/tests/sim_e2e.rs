//! End to end against the real simulated board `wasmbed-agent-sim` (the C agent with WAMR):
//! over TCP started by `--sim`, over TCP given with `--device`, and over a PTY through the
//! serial-port path (tokio-serial), all with the Wasmbed dialect.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use wasmbed_gateway::config::Config;
use wasmbed_gateway::sim::SimLink;

fn latency_has(reply: &Value, keys: &[&str]) {
    for k in keys {
        let v = &reply["latency"][k];
        assert!(
            v.as_f64().is_some_and(|x| x >= 0.0),
            "latency.{k} missing: {reply}"
        );
    }
}

/// Waits until the device log holds a line matching `pred` (via the `logs` op).
async fn wait_log(c: &mut Client, dev: &str, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let a = c.call(json!({"op": "logs", "device": dev})).await;
        if let Some(e) = a.ok()["lines"].as_array().unwrap().iter().find(|e| pred(e)) {
            return e.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no such log line on {dev}");
}

/// The whole Wasmbed dialect against one simulated board reachable as `dev`.
/// `compressed`: the link reports a line speed (115200), so the gateway deflates the upload.
async fn scenario(addr: std::net::SocketAddr, dev: &str, compressed: bool) {
    let mut c = Client::connect(addr).await;

    // devices / info / status
    let a = c.call(json!({"op": "devices"})).await;
    let d = a.ok()["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == dev)
        .cloned()
        .unwrap();
    assert_eq!(d["online"], true, "{d}");
    assert_eq!(d["proto"], 2, "{d}");
    assert_eq!(d["board"], "sim", "{d}");
    assert_eq!(d["slots_total"], 2, "{d}");
    let a = c.call(json!({"op": "info", "device": dev})).await;
    let info = a.ok();
    assert!(
        a.reply["latency"]["device_ms"].as_f64().unwrap() > 0.0,
        "{}",
        a.reply
    );
    assert_eq!(info["proto"], 2);
    assert_eq!(info["aot_arch"], "x86_64");
    assert!(
        info["natives"]
            .as_array()
            .unwrap()
            .contains(&json!("log:(ii)")),
        "{info}"
    );
    let a = c.call(json!({"op": "status", "device": dev})).await;
    assert_eq!(a.ok()["slots"], json!([]), "{}", a.reply);
    assert!(a.ok()["memory"]["total"].as_u64().unwrap() > 0);
    latency_has(&a.reply, &["device_ms", "total_ms"]);

    // deploy a clang-compiled math_ops.wasm: chunked, progress, phase latencies
    let wasm = module_wasm("math_ops");
    let crc = format!("{:08x}", crc32fast::hash(&wasm));
    let a = c.deploy(dev, "math_ops", &wasm, json!({})).await;
    let r = a.ok();
    // The sim echoes `seq=` (INFO_OK … seq=1); the reply's line is the device's without it.
    assert_eq!(r["line"], "LOAD_OK", "{r}");
    let info_line = info["line"].as_str().unwrap();
    assert!(info_line.split(' ').any(|f| f == "seq=1"), "{info}");
    assert_eq!(r["skipped"], false);
    assert_eq!(r["chunked"], true);
    assert_eq!(r["size"], wasm.len());
    assert_eq!(r["crc32"], crc);
    let last = a.events.last().expect("progress events");
    assert_eq!(last["event"], "progress");
    assert_eq!(last["phase"], "upload");
    // Progress counts the bytes on the link: the deflate stream when the gateway compressed
    // (paced links that report a baud rate), else the module itself.
    assert_eq!(last["done"], last["total"], "{last}");
    let total = last["total"].as_u64().unwrap() as usize;
    if compressed {
        assert!(total > 0 && total < wasm.len(), "{last}");
    } else {
        assert_eq!(total, wasm.len(), "{last}");
    }
    latency_has(&a.reply, &["transfer_ms", "device_ms", "total_ms"]);

    // identical upload skipped, unless forced
    let a = c.deploy(dev, "math_ops", &wasm, json!({})).await;
    assert_eq!(a.ok()["skipped"], true, "{}", a.reply);
    assert!(a.events.is_empty(), "no upload progress: {:?}", a.events);
    let a = c
        .deploy(dev, "math_ops", &wasm, json!({"force": true}))
        .await;
    assert_eq!(a.ok()["skipped"], false, "{}", a.reply);
    assert!(a.ok()["line"].as_str().unwrap() == "LOAD_OK");

    let a = c.call(json!({"op": "status", "device": dev})).await;
    let slots = a.ok()["slots"].as_array().unwrap().clone();
    assert_eq!(slots.len(), 1, "{}", a.reply);
    assert_eq!(slots[0]["module_id"], "math_ops");
    assert_eq!(slots[0]["state"], "LOADED");
    assert_eq!(slots[0]["size"], wasm.len());
    assert_eq!(slots[0]["crc32"], crc);

    // start add(200, 26) → 226
    let a = c
        .call(
            json!({"op": "start", "device": dev, "module_id": "math_ops", "func": "add",
                     "args": [200, 26], "wait_result": true}),
        )
        .await;
    let r = a.ok();
    assert_eq!(r["status"], "OK", "{r}");
    assert_eq!(r["ret"], 226);
    assert_eq!(r["ret_u32"], 226);
    assert_eq!(
        r["line"],
        "RESULT status=OK module_id=math_ops func=add ret_i32=226"
    );
    latency_has(&a.reply, &["device_ms", "total_ms"]);
    // negative results come back signed
    let a = c
        .call(
            json!({"op": "start", "device": dev, "module_id": "math_ops", "func": "add",
                     "args": [-5, 2], "wait_result": true}),
        )
        .await;
    assert_eq!(a.ok()["ret"], -3, "{}", a.reply);
    assert_eq!(a.ok()["ret_u32"], 4294967293u64);

    // a late RESULT (start without waiting) is kept in the device log
    let a = c
        .call(
            json!({"op": "start", "device": dev, "module_id": "math_ops", "func": "sum_to_n",
                     "args": [10]}),
        )
        .await;
    assert!(
        a.ok()["line"].as_str().unwrap() == "START_OK",
        "{}",
        a.reply
    );
    let e = wait_log(&mut c, dev, |e| {
        e["kind"] == "result" && e["line"].as_str().unwrap().contains("ret_i32=55")
    })
    .await;
    assert_eq!(
        e["line"],
        "RESULT status=OK module_id=math_ops func=sum_to_n ret_i32=55"
    );
    let a = c.call(json!({"op": "status", "device": dev})).await;
    let job = &a.ok()["jobs"]["math_ops"];
    assert_eq!(job["state"], "done", "{}", a.reply);
    assert_eq!(job["late"], true);
    assert_eq!(job["log_seq"], e["seq"]);
    assert_eq!(job["result"], e["line"]);

    // build_and_deploy from C source (uses wasmbed.h), then a cooperative stop
    let a = c
        .build_and_deploy(dev, "toggle", &module_source("toggle_forever"), "wasm")
        .await;
    let r = a.ok();
    assert!(r["line"].as_str().unwrap() == "LOAD_OK", "{r}");
    assert!(
        a.events
            .iter()
            .any(|e| e["phase"] == "compile" && e["event"] == "progress"),
        "{:?}",
        a.events
    );
    assert!(a.events.iter().any(|e| e["phase"] == "upload"));
    latency_has(
        &a.reply,
        &["compile_ms", "transfer_ms", "device_ms", "total_ms"],
    );
    let a = c
        .call(
            json!({"op": "start", "device": dev, "module_id": "toggle", "func": "toggle_forever"}),
        )
        .await;
    assert!(
        a.ok()["line"].as_str().unwrap() == "START_OK",
        "{}",
        a.reply
    );
    let a = c.call(json!({"op": "status", "device": dev})).await;
    assert!(
        a.ok()["slots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["module_id"] == "toggle" && s["state"] == "RUNNING"),
        "{}",
        a.reply
    );
    let a = c
        .call(json!({"op": "stop", "device": dev, "module_id": "toggle", "wait": true}))
        .await;
    let r = a.ok();
    assert_eq!(r["status"], "STOPPED", "{r}");
    assert!(r["line"]
        .as_str()
        .unwrap()
        .starts_with("RESULT status=STOPPED module_id=toggle"));
    // stopping an idle module
    let a = c
        .call(json!({"op": "stop", "device": dev, "module_id": "toggle", "wait": true}))
        .await;
    assert_eq!(a.ok()["status"], "IDLE", "{}", a.reply);
    // stopping a module that is not loaded is an error, not "IDLE"
    let a = c
        .call(json!({"op": "stop", "device": dev, "module_id": "nosuch"}))
        .await;
    assert_eq!(a.err_code(), "DEVICE_REJECTED", "{}", a.reply);
    assert_eq!(
        a.reply["error"]["detail"]["status"], "NO_MODULE",
        "{}",
        a.reply
    );

    // both slots are used: a third module needs an unload first
    let busy = module_wasm("busy_loop");
    let a = c.deploy(dev, "busy", &busy, json!({})).await;
    assert_eq!(a.err_code(), "DEVICE_REJECTED", "{}", a.reply);
    assert!(a.reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("NO_SLOT"));
    let a = c
        .call(json!({"op": "unload", "device": dev, "module_id": "toggle"}))
        .await;
    assert_eq!(a.ok()["line"], "UNLOAD_OK module_id=toggle", "{}", a.reply);
    let a = c
        .call(json!({"op": "unload", "device": dev, "module_id": "toggle"}))
        .await;
    assert_eq!(a.err_code(), "DEVICE_REJECTED", "{}", a.reply);

    // a busy loop that calls nothing: only the forced stop ends it
    let a = c.deploy(dev, "busy", &busy, json!({})).await;
    assert!(a.ok()["line"].as_str().unwrap() == "LOAD_OK", "{}", a.reply);
    let a = c
        .call(json!({"op": "start", "device": dev, "module_id": "busy", "func": "busy_loop"}))
        .await;
    assert!(
        a.ok()["line"].as_str().unwrap() == "START_OK",
        "{}",
        a.reply
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let a = c
        .call(
            json!({"op": "stop", "device": dev, "module_id": "busy", "wait": true,
                     "result_timeout_ms": 10000}),
        )
        .await;
    assert_eq!(a.ok()["status"], "STOPPED", "{}", a.reply);
    let a = c
        .call(json!({"op": "unload", "device": dev, "module_id": "busy"}))
        .await;
    a.ok();

    // a trap is MODULE_TRAPPED with the device's line
    let a = c.deploy(dev, "trap", &module_wasm("trap"), json!({})).await;
    a.ok();
    let a = c
        .call(
            json!({"op": "start", "device": dev, "module_id": "trap", "func": "trap",
                     "wait_result": true}),
        )
        .await;
    assert_eq!(a.err_code(), "MODULE_TRAPPED", "{}", a.reply);
    let line = a.reply["error"]["detail"]["line"].as_str().unwrap();
    assert!(
        line.starts_with(
            "RESULT status=EXCEPTION module_id=trap func=trap msg=\"Exception: unreachable"
        ),
        "{line}"
    );
    // an unknown export never reaches the device (the gateway knows what it deployed)
    let a = c
        .call(
            json!({"op": "start", "device": dev, "module_id": "trap", "func": "nope",
                     "wait_result": true}),
        )
        .await;
    assert_eq!(a.err_code(), "INVALID_MODULE", "{}", a.reply);
    c.call(json!({"op": "unload", "device": dev, "module_id": "trap"}))
        .await
        .ok();

    // LOG lines and console text from a module end up in the device log
    let a = c
        .deploy(dev, "hello", &module_wasm("log_hello"), json!({}))
        .await;
    a.ok();
    let a = c
        .call(json!({"op": "start", "device": dev, "module_id": "hello", "wait_result": true}))
        .await;
    assert_eq!(a.ok()["ret"], 24, "{}", a.reply);
    let e = wait_log(&mut c, dev, |e| {
        e["kind"] == "log"
            && e["line"] == "LOG module_id=hello msg=\"hello from wasm \\\"quoted\\\"\""
    })
    .await;
    assert!(e["seq"].as_u64().unwrap() > 0);
    let e = wait_log(&mut c, dev, |e| {
        e["kind"] == "log" && e["line"] == "LOG module_id=hello msg=\"[wasm] uart hello\""
    })
    .await;
    assert!(e["seq"].as_u64().unwrap() > 0);

    // nothing is left running
    let a = c.call(json!({"op": "status", "device": dev})).await;
    assert!(a.ok()["slots"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["state"] == "LOADED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_flag_over_tcp() {
    let gw = gateway_cfg(Config {
        sim: true,
        ..Default::default()
    })
    .await;
    wait_online(&gw, "sim").await;
    scenario(gw.addr, "sim", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flag_over_tcp() {
    let sim = start_sim(SimLink::Tcp).await;
    let gw = gateway(&[format!("board={}", sim.endpoint)]).await;
    wait_online(&gw, "board").await;
    scenario(gw.addr, "board", false).await;
    drop(sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flag_over_pty_serial() {
    let sim = start_sim(SimLink::Pty { baud: 115_200 }).await;
    let ep = sim.endpoint.to_string();
    assert!(
        ep.starts_with("serial:/dev/pts/") && ep.ends_with("?baud=115200"),
        "{ep}"
    );
    let gw = gateway(&[format!("uart={ep}")]).await;
    wait_online(&gw, "uart").await;
    scenario(gw.addr, "uart", true).await;
    drop(sim);
}

/// build_and_deploy of math_ops (wasm) on device `sim`, then add(200, 26) gives 226.
async fn deploy_math_ops_and_add(c: &mut Client) {
    let a = c
        .build_and_deploy("sim", "math_ops", &module_source("math_ops"), "wasm")
        .await;
    a.ok();
    let a = c
        .call(
            json!({"op": "start", "device": "sim", "module_id": "math_ops", "func": "add",
                     "args": [200, 26], "wait_result": true}),
        )
        .await;
    assert_eq!(a.ok()["ret"], 226, "{}", a.reply);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_pty_flag() {
    let gw = gateway_cfg(Config {
        sim: true,
        sim_pty: true,
        ..Default::default()
    })
    .await;
    wait_online(&gw, "sim").await;
    assert!(gw.devices[0].endpoint.starts_with("serial:/dev/pts/"));
    let mut c = Client::connect(gw.addr).await;
    deploy_math_ops_and_add(&mut c).await;
}

/// The real binary: `wasmbed-gateway --sim --listen 127.0.0.1:0` serves a build_and_deploy and
/// add(200, 26).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_binary_with_sim() {
    use tokio::io::AsyncBufReadExt;
    sim_bin();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wasmbed-gateway"))
        .args(["--sim", "--listen", "127.0.0.1:0"])
        .env("WASMBED_AGENT_SIM", sim_bin())
        .env(
            "XDG_CACHE_HOME",
            std::env::temp_dir().join("wasmbed-gw-test-xdg"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if let Some(a) = l.strip_prefix("listening on ") {
                return a.parse::<std::net::SocketAddr>().unwrap();
            }
        }
        panic!("gateway exited without `listening on`");
    })
    .await
    .expect("gateway printed its address");
    let dev = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(dev.starts_with("device sim at tcp:127.0.0.1:"), "{dev}");
    let mut c = Client::connect(addr).await;
    let mut online = false;
    for _ in 0..100 {
        let a = c.call(json!({"op": "devices"})).await;
        if a.ok()["devices"][0]["online"] == true && a.ok()["devices"][0]["proto"] == 2 {
            online = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(online, "sim came online");
    deploy_math_ops_and_add(&mut c).await;
    // SIGTERM ends the gateway cleanly (and its simulated board with it).
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("gateway exits on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}
