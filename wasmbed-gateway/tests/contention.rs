//! Correctness under contention against the real simulated board (the benchmark's item 5 as a
//! test): K host connections hammer one device with a mix of `status`, `start add`, `start
//! sum_to_n` (both with `wait_result`) and `deploy`, on the same module ids and on both slots.
//! Every answer is checked: a start returns exactly its own function's value for its own
//! arguments, or an honest `RESULT status=BUSY`; a deploy loads or is refused with
//! `LOAD_ERR code=BUSY` (its module was running); nothing is lost (every request is answered
//! within its deadline and no waiter is left behind).
//!
//! RESULT lines carry no request id: before the fix, a START awaiting its first reply took the
//! RESULT of another host's job of the same module, and the agent's id-less `BUSY` completed
//! another host's parked waiter.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use wasmbed_gateway::sim::SimLink;

const HOSTS: usize = 8;
const REQUESTS: usize = 40;
const SLOTS: [&str; 2] = ["math", "math2"];

fn sum_to_n(n: i32) -> i32 {
    (1..=n).sum()
}

/// An honest refusal: exactly the device's line, as every firmware writes it (a firmware that
/// echoes `seq=` gets it dropped by the gateway; a seq left in the line once made 7 of 320 honest
/// BUSYs look wrong).
fn is_busy(reply: &Value, line: &str) -> bool {
    reply["ok"] == false && reply["error"]["detail"]["line"] == line
}

/// One host's request loop; returns the wrong answers it got and how many honest BUSYs.
async fn host(
    addr: std::net::SocketAddr,
    dev: String,
    h: usize,
    wasm: Vec<u8>,
) -> (Vec<String>, usize) {
    let mut c = Client::connect(addr).await;
    let mut wrong = Vec::new();
    let mut busy = 0;
    for i in 0..REQUESTS {
        let module = SLOTS[(h + i) % 2];
        let (req, reply, good) = match (i + h) % 4 {
            0 => {
                let req = json!({"op": "status", "device": dev});
                let a = c.call_body(req.clone(), b"", 20).await;
                let line = a.reply["result"]["line"].as_str().unwrap_or("").to_string();
                let good = a.reply["ok"] == true
                    && line.starts_with("STATUS_OK")
                    && SLOTS.iter().all(|m| line.contains(&format!("{m}:")));
                (req, a.reply, good)
            }
            k @ (1 | 2) => {
                let (func, args, want) = if k == 1 {
                    let (a, b) = (h as i32 * 1000, i as i32);
                    ("add", vec![a, b], a + b)
                } else {
                    let n = (h * REQUESTS + i) as i32 % 2000;
                    ("sum_to_n", vec![n], sum_to_n(n))
                };
                let req = json!({"op": "start", "device": dev, "module_id": module, "func": func,
                    "args": args, "wait_result": true, "result_timeout_ms": 10000});
                let a = c.call_body(req.clone(), b"", 20).await;
                let ok = a.reply["ok"] == true
                    && a.reply["result"]["status"] == "OK"
                    && a.reply["result"]["ret"] == json!(want);
                let b = is_busy(&a.reply, "RESULT status=BUSY");
                busy += usize::from(b);
                (req, a.reply, ok || b)
            }
            _ => {
                let a = c.deploy(&dev, module, &wasm, json!({"force": true})).await;
                let ok = a.reply["ok"] == true
                    && a.reply["result"]["skipped"] == false
                    && a.reply["result"]["size"] == json!(wasm.len());
                let b = is_busy(&a.reply, "LOAD_ERR code=BUSY msg=\"module running\"");
                busy += usize::from(b);
                (
                    json!({"op": "deploy", "module_id": module}),
                    a.reply,
                    ok || b,
                )
            }
        };
        if !good {
            wrong.push(format!("host {h} request {i}: {req} -> {reply}"));
        }
    }
    (wrong, busy)
}

async fn hammer(addr: std::net::SocketAddr, dev: &str, gw: &wasmbed_gateway::run::Running) {
    let wasm = module_wasm("math_ops");
    let mut c = Client::connect(addr).await;
    for m in SLOTS {
        c.deploy(dev, m, &wasm, json!({})).await.ok();
    }
    let tasks: Vec<_> = (0..HOSTS)
        .map(|h| tokio::spawn(host(addr, dev.to_string(), h, wasm.clone())))
        .collect();
    let mut wrong = Vec::new();
    let mut busy = 0;
    for t in tasks {
        let (w, b) = tokio::time::timeout(Duration::from_secs(300), t)
            .await
            .expect("every host finished within 300 s")
            .expect("host task");
        wrong.extend(w);
        busy += b;
    }
    assert!(
        wrong.is_empty(),
        "{} wrong answers of {} ({busy} BUSY):\n{}",
        wrong.len(),
        HOSTS * REQUESTS,
        wrong.join("\n")
    );
    // Nothing left behind: no parked waiter, and the device answers normally.
    let handle = gw.devices.iter().find(|d| d.name == dev).unwrap();
    assert_eq!(handle.waiting(), 0, "waiters left behind");
    let a = c
        .call(
            json!({"op": "start", "device": dev, "module_id": "math", "func": "add",
            "args": [40, 2], "wait_result": true}),
        )
        .await;
    assert_eq!(a.ok()["ret"], 42, "{}", a.reply);
    eprintln!(
        "{dev}: {} answers, 0 wrong, {busy} honest BUSY",
        HOSTS * REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contention_over_tcp_every_answer_is_right() {
    let sim = start_sim(SimLink::Tcp).await;
    let gw = gateway(&[format!("board={}", sim.endpoint)]).await;
    wait_online(&gw, "board").await;
    hammer(gw.addr, "board", &gw).await;
    drop(sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contention_over_pty_every_answer_is_right() {
    let sim = start_sim(SimLink::Pty { baud: 921_600 }).await;
    let gw = gateway(&[format!("uart={}", sim.endpoint)]).await;
    wait_online(&gw, "uart").await;
    hammer(gw.addr, "uart", &gw).await;
    drop(sim);
}
