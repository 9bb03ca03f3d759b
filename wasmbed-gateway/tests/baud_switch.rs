//! BAUD switching end to end (docs/PROTOCOL.md "Baud switching"): the real simulated board on a
//! PTY opened by the gateway as a serial port through tokio-serial. The simulated UART hears
//! nothing from (and is not heard by) a port set to another speed, so a switch only works if
//! the gateway really reprograms its port; `--test-baud-wrong` makes the board land at the wrong
//! speed, so the gateway's probe fails, it falls back and the board reverts by itself.
//! Compressed uploads (docs/PROTOCOL.md "Compressed uploads") ride the same paced links: the
//! gateway compresses only where the line speed makes it pay.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

/// `wasmbed-agent-sim --pty --baud 115200 [extra]`: the child (killed on drop) and its pty.
async fn pty_sim(extra: &[&str]) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(sim_bin())
        .args(["--pty", "--baud", "115200"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("the sim prints its pty within 10 s")
        .unwrap()
        .unwrap();
    let path = line.strip_prefix("pty ").expect("pty line").to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, path)
}

/// math_ops padded with a custom section to `size` bytes (still a valid module).
fn big_module(size: usize) -> Vec<u8> {
    let mut m = module_wasm("math_ops");
    let body = size - m.len() - 1 - 3; // section id + 3-byte LEB size
    let content = body - 4; // name length byte + "pad"
    m.push(0);
    m.extend_from_slice(&[
        (body & 0x7f) as u8 | 0x80,
        ((body >> 7) & 0x7f) as u8 | 0x80,
        (body >> 14) as u8,
    ]);
    m.push(3);
    m.extend_from_slice(b"pad");
    m.resize(m.len() + content, 0);
    assert_eq!(m.len(), size);
    m
}

/// The real simulated board on a pty (`sim_args`), a gateway opening it as device `uart` with
/// `query` (`?baud=…`), online, and a client of that gateway.
async fn pty_gateway(
    sim_args: &[&str],
    query: &str,
) -> (tokio::process::Child, wasmbed_gateway::run::Running, Client) {
    let (sim, pty) = pty_sim(sim_args).await;
    let gw = gateway(&[format!("uart=serial:{pty}{query}")]).await;
    wait_online(&gw, "uart").await;
    let c = Client::connect(gw.addr).await;
    (sim, gw, c)
}

/// Deploys `wasm` as `id` on `dev`, asserting `LOAD_OK`.
async fn deploy_ok(c: &mut Client, dev: &str, id: &str, wasm: &[u8]) {
    let a = c.deploy(dev, id, wasm, json!({})).await;
    assert!(
        a.ok()["line"].as_str().unwrap().starts_with("LOAD_OK"),
        "{}",
        a.reply
    );
}

async fn gateway_log(c: &mut Client, dev: &str) -> Vec<String> {
    let a = c.call(json!({"op": "logs", "device": dev})).await;
    a.ok()["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "gateway")
        .map(|e| e["line"].as_str().unwrap().to_string())
        .collect()
}

async fn add_200_26(c: &mut Client, dev: &str, id: &str) {
    let a = c
        .call(
            json!({"op": "start", "device": dev, "module_id": id, "func": "add",
                     "args": [200, 26], "wait_result": true}),
        )
        .await;
    assert_eq!(a.ok()["ret"], 226, "{}", a.reply);
}

fn info_baud(a: &Value) -> Option<u64> {
    a["baud"].as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_switches_to_921600_and_back() {
    let (_sim, gw, mut c) = pty_gateway(&[], "?baud=115200&max_baud=921600").await;
    deploy_ok(&mut c, "uart", "big", &big_module(64 * 1024)).await;
    add_200_26(&mut c, "uart", "big").await;
    let log = gateway_log(&mut c, "uart").await;
    let up = log
        .iter()
        .position(|l| l == "link switched from 115200 to 921600 baud");
    let down = log
        .iter()
        .position(|l| l == "link switched from 921600 to 115200 baud");
    assert!(matches!((up, down), (Some(u), Some(d)) if u < d), "{log:?}");
    // back at the speed a reconnecting gateway opens the port at: the board reports it
    let a = c.call(json!({"op": "info", "device": "uart"})).await;
    assert_eq!(info_baud(a.ok()), Some(115_200), "{}", a.reply);
    // a small module does not switch
    let small = module_wasm("math_ops");
    c.deploy("uart", "small", &small, json!({})).await.ok();
    let after = gateway_log(&mut c, "uart").await;
    assert!(
        !after[log.len()..].iter().any(|l| l.contains("switched")),
        "{after:?}"
    );
    drop(gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_switch_falls_back_and_the_board_reverts() {
    let (_sim, gw, mut c) =
        pty_gateway(&["--test-baud-wrong"], "?baud=115200&max_baud=921600").await;
    deploy_ok(&mut c, "uart", "big", &big_module(16 * 1024)).await;
    let log = gateway_log(&mut c, "uart").await;
    assert!(
        log.iter().any(|l| l
            .starts_with("BAUD rate=921600 acknowledged but no answer at 921600 baud")
            && l.ends_with("both sides back at 115200 baud")),
        "{log:?}"
    );
    assert!(
        !log.iter().any(|l| l.starts_with("link switched")),
        "{log:?}"
    );
    // the module went over at 115200 and runs; the board still answers at its boot speed
    add_200_26(&mut c, "uart", "big").await;
    let a = c.call(json!({"op": "info", "device": "uart"})).await;
    assert_eq!(info_baud(a.ok()), Some(115_200), "{}", a.reply);
    drop(gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ceiling_no_switch() {
    let (_sim, gw, mut c) = pty_gateway(&[], "?baud=115200").await;
    let wasm = big_module(8 * 1024);
    c.deploy("uart", "big", &wasm, json!({})).await.ok();
    add_200_26(&mut c, "uart", "big").await;
    let log = gateway_log(&mut c, "uart").await;
    assert!(
        !log.iter()
            .any(|l| l.contains("BAUD") || l.contains("switched")),
        "{log:?}"
    );
    drop(gw);
}

/// The module's padding (zeros) compresses to almost nothing: at 115200 baud the gateway sends the
/// deflate stream, the board inflates it and the module runs; over TCP (no line speed) the same
/// module goes uncompressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_links_get_compressed_uploads_instant_ones_do_not() {
    let (_sim, gw, mut c) = pty_gateway(&[], "?baud=115200").await;
    let wasm = big_module(32 * 1024);
    deploy_ok(&mut c, "uart", "big", &wasm).await;
    add_200_26(&mut c, "uart", "big").await;
    let log = gateway_log(&mut c, "uart").await;
    let want = format!("upload of big compressed: {} -> ", wasm.len());
    assert!(
        log.iter()
            .any(|l| l.starts_with(&want) && l.ends_with(" at 115200 baud")),
        "{log:?}"
    );
    drop(gw);

    let sim = start_sim(wasmbed_gateway::sim::SimLink::Tcp).await;
    let gw = gateway(&[format!("board={}", sim.endpoint)]).await;
    wait_online(&gw, "board").await;
    let mut c = Client::connect(gw.addr).await;
    deploy_ok(&mut c, "board", "big", &wasm).await;
    add_200_26(&mut c, "board", "big").await;
    let log = gateway_log(&mut c, "board").await;
    assert!(!log.iter().any(|l| l.contains("compressed")), "{log:?}");
    drop(gw);
}
