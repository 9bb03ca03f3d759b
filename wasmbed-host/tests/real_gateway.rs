//! End-to-end tests against the real gateway with the simulated board (real WAMR, real clang):
//! `wasmbed-gateway --sim` and `wasmbed-agent-sim` must be built (`cargo build --workspace`).

mod common;

use std::time::{Duration, Instant};

use common::real::{gateway, module, sim};
use common::*;

fn build_and_deploy(gw: &str, device: &str, id: &str, source: &str) {
    run_exit(
        0,
        &format!("--gateway {gw} --device {device} build-and-deploy --module-id {id} --source"),
        &[&module(source)],
    );
}

#[test]
fn math_ops_add_gives_226_in_text_and_json() {
    let gw = gateway(&[]);
    let g = &gw.addr;
    let o = run_exit(
        0,
        &format!("--gateway {g} --device sim build-and-deploy --module-id math_ops --source"),
        &[&module("math_ops.c"), "--mode", "wasm"],
    );
    assert_e2e_line(&o);
    assert!(
        stdout(&o).contains("math_ops") && stdout(&o).contains("loaded"),
        "{}",
        stdout(&o)
    );

    let add = "start --module-id math_ops --func add --args a=200,b=26 --wait-result";
    let o = run_exit(0, &format!("--gateway {g} --device sim {add}"), &[]);
    assert_e2e_line(&o);
    assert!(stdout(&o).contains("status=OK ret=226"), "{}", stdout(&o));

    let o = run_exit(0, &format!("--gateway {g} --device sim --json {add}"), &[]);
    let doc = json_doc(&o);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["status"], "OK");
    assert_eq!(doc["ret"], 226);
    assert!(doc["e2e_latency_ms"].as_f64().unwrap() > 0.0);
    assert!(doc["latency"]["device_ms"].as_f64().is_some(), "{doc}");

    // Negative results come back signed.
    let o = run_exit(
        0,
        &format!(
            "--gateway {g} -d sim --json start --module-id math_ops --func add --args -300,26 \
             --wait-result"
        ),
        &[],
    );
    assert_eq!(json_doc(&o)["ret"], -274);

    let o = run_exit(0, &format!("--gateway {g} -d sim status"), &[]);
    assert!(stdout(&o).contains("math_ops"), "{}", stdout(&o));
    run_exit(
        0,
        &format!("--gateway {g} -d sim unload --module-id math_ops"),
        &[],
    );
    run_exit(
        5,
        &format!("--gateway {g} -d sim start --module-id math_ops --wait-result"),
        &[],
    );
}

#[test]
fn toggle_forever_then_stop() {
    let gw = gateway(&[]);
    let g = &gw.addr;
    build_and_deploy(g, "sim", "toggle", "toggle_forever.c");
    let start = "start --module-id toggle --func toggle_forever";
    // The host gives up first: exit 6, the job keeps running.
    let t0 = Instant::now();
    run_exit(
        6,
        &format!("--gateway {g} -d sim --timeout 1 {start} --wait-result"),
        &[],
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    // A second start of the running job is refused by the device.
    let o = run_exit(5, &format!("--gateway {g} -d sim {start}"), &[]);
    assert!(stdout(&o).contains("status=BUSY"), "{}", stdout(&o));
    let o = run_exit(
        0,
        &format!("--gateway {g} -d sim --json stop --module-id toggle --wait"),
        &[],
    );
    let doc = json_doc(&o);
    assert_eq!(doc["result"]["status"], "STOPPED", "{doc}");
    let o = run(&argv(&format!("--gateway {g} -d sim status"), &[]));
    assert!(!stdout(&o).contains("RUNNING"), "{}", stdout(&o));
}

#[test]
fn gateway_side_result_timeout_is_exit_6() {
    let gw = gateway(&[]);
    let g = &gw.addr;
    build_and_deploy(g, "sim", "toggle", "toggle_forever.c");
    let o = run_exit(
        6,
        &format!(
            "--gateway {g} -d sim --json start --module-id toggle --func toggle_forever \
             --wait-result --result-timeout 1"
        ),
        &[],
    );
    assert_eq!(json_doc(&o)["error"]["code"], "TIMEOUT");
    run_exit(
        0,
        &format!("--gateway {g} -d sim stop --module-id toggle --wait"),
        &[],
    );
}

#[test]
fn trap_is_exit_7() {
    let gw = gateway(&[]);
    let g = &gw.addr;
    build_and_deploy(g, "sim", "trap", "trap.c");
    let start = "start --module-id trap --func trap --wait-result";
    let o = run_exit(7, &format!("--gateway {g} -d sim --json {start}"), &[]);
    let doc = json_doc(&o);
    assert_eq!(doc["status"], "EXCEPTION", "{doc}");
    assert_eq!(doc["ok"], false);
    let o = run_exit(7, &format!("--gateway {g} -d sim {start}"), &[]);
    assert_e2e_line(&o);
}

#[test]
fn unknown_device_dead_gateway_and_bad_module() {
    let gw = gateway(&[]);
    let g = &gw.addr;
    let o = run_exit(4, &format!("--gateway {g} -d nucleo status"), &[]);
    assert!(stderr(&o).contains("DEVICE_UNKNOWN"), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"this is not wasm").unwrap();
    run_exit(
        5,
        &format!("--gateway {g} -d sim deploy --module-id junk --file"),
        &[junk.to_str().unwrap()],
    );
    let bad_c = dir.path().join("bad.c");
    std::fs::write(&bad_c, "int broken( {\n").unwrap();
    let o = run_exit(
        5,
        &format!("--gateway {g} -d sim build-and-deploy --module-id bad --source"),
        &[bad_c.to_str().unwrap()],
    );
    assert!(
        stderr(&o).contains("bad.c") || stderr(&o).contains("error"),
        "{}",
        stderr(&o)
    );
    let addr = format!("127.0.0.1:{}", dead_port());
    run_exit(3, &format!("--gateway {addr} -d sim status"), &[]);
}

#[test]
fn multi_device_deploy_and_legacy_flags() {
    let second = sim();
    let gw = gateway(&["--device", &format!("sim2=tcp:{}", second.addr)]);
    common::real::wait_online(&gw.addr, "sim2");
    let port = gw.addr.rsplit_once(':').unwrap().1.to_string();
    let legacy = format!("--gw-host 127.0.0.1 --gw-port {port}");
    let o = run_exit(
        0,
        &format!("{legacy} --device sim,sim2 build_and_load --module-id math_ops --source"),
        &[&module("math_ops.c")],
    );
    let text = stdout(&o);
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("math_ops")).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows.iter()
            .all(|r| r.contains("loaded") || r.contains("skipped")),
        "{text}"
    );
    for dev in ["sim", "sim2"] {
        let o = run_exit(
            0,
            &format!(
                "{legacy} --device {dev} start --module-id math_ops --func-name add \
                 --func-args a=200,b=26 --wait-result"
            ),
            &[],
        );
        assert!(stdout(&o).contains("ret=226"), "{dev}: {}", stdout(&o));
    }
    let o = run_exit(
        0,
        &format!("--gateway {} --all --json status", gw.addr),
        &[],
    );
    assert_eq!(json_doc(&o)["devices"].as_array().unwrap().len(), 2);
}
