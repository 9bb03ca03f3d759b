//! End-to-end tests of the built binary against a scripted fake gateway (real TCP, port 0).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn start_ok(ret: i64) -> Value {
    ok(
        json!({"line": format!("RESULT status=OK module_id=math_ops func=add ret_i32={}", ret as u32),
              "status": "OK", "ret": ret, "ret_u32": ret as u32, "msg": null}),
    )
}

#[test]
fn start_wait_result_text_and_request_shape() {
    let gw = FakeGateway::start(|_, _| Some(vec![start_ok(226)]));
    let o = run_exit(
        0,
        &format!(
            "--gateway {} --device sim start --module-id math_ops --func add --args a=200,b=26 \
             --wait-result",
            gw.addr
        ),
        &[],
    );
    assert_e2e_line(&o);
    assert!(stdout(&o).contains("status=OK ret=226"), "{}", stdout(&o));
    let req = &gw.received()[0].request;
    assert_eq!(req["op"], "start");
    assert_eq!(req["device"], "sim");
    assert_eq!(req["module_id"], "math_ops");
    assert_eq!(req["func"], "add");
    assert_eq!(req["args"], json!([200, 26]));
    assert_eq!(req["wait_result"], true);
    assert_eq!(req["result_timeout_ms"], 10000);
}

#[test]
fn start_wait_result_json_snapshot() {
    let gw = FakeGateway::start(|_, _| Some(vec![start_ok(-5)]));
    let o = run_exit(
        0,
        &format!(
            "--gateway {} -d sim --json start --module-id math_ops --func add --args -10,5 \
             --wait-result",
            gw.addr
        ),
        &[],
    );
    let doc = json_doc(&o);
    assert_eq!(doc["ret"], -5, "signed ret");
    assert_eq!(doc["status"], "OK");
    assert!(doc["e2e_latency_ms"].as_f64().unwrap() >= 0.0);
    insta::assert_json_snapshot!(redact(doc));
}

#[test]
fn trap_and_stopped_exit_7() {
    let gw = FakeGateway::start(|req, _| {
        Some(vec![match req["module_id"].as_str() {
            Some("trap") => {
                json!({"ok": false, "error": {"code": "MODULE_TRAPPED", "message": "unreachable executed",
                "detail": {"line": "RESULT status=EXCEPTION module_id=trap func=boom msg=\"unreachable\""}}})
            }
            _ => ok(
                json!({"line": "RESULT status=STOPPED module_id=t", "status": "STOPPED", "ret": null}),
            ),
        }])
    });
    let o = run_exit(
        7,
        &format!(
            "--gateway {} -d sim --json start --module-id trap --wait-result",
            gw.addr
        ),
        &[],
    );
    let doc = json_doc(&o);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["status"], "EXCEPTION");
    assert_eq!(doc["ret"], Value::Null);
    assert_eq!(doc["error"]["code"], "MODULE_TRAPPED");
    assert_eq!(doc["exit_code"], 7);
    // The gateway said ok, but the module did not finish with OK: still a failure.
    let o = run_exit(
        7,
        &format!(
            "--gateway {} -d sim start --module-id t --wait-result",
            gw.addr
        ),
        &[],
    );
    assert_e2e_line(&o);
    assert!(stderr(&o).contains("STOPPED"), "{}", stderr(&o));
}

#[test]
fn gateway_error_codes_map_to_exit_codes() {
    for (code, exit) in [
        ("DEVICE_UNKNOWN", 4),
        ("DEVICE_OFFLINE", 4),
        ("LINK_LOST", 4),
        ("DEVICE_REJECTED", 5),
        ("INVALID_MODULE", 5),
        ("TIMEOUT", 6),
        ("BAD_REQUEST", 2),
        ("UNAUTHORIZED", 3),
        ("INTERNAL", 1),
    ] {
        let gw = FakeGateway::start(move |_, _| Some(vec![err(code, "it failed")]));
        let o = run_exit(
            exit,
            &format!("--gateway {} -d nucleo status", gw.addr),
            &[],
        );
        assert!(
            stderr(&o).contains(&format!("error[{code}]: it failed")),
            "{}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("help: a hint"));
    }
}

#[test]
fn dead_gateway_is_exit_3() {
    let addr = format!("127.0.0.1:{}", dead_port());
    let o = run_exit(3, &format!("--gateway {addr} -d sim --json status"), &[]);
    assert_eq!(json_doc(&o)["error"]["code"], "GATEWAY_UNREACHABLE");
    let o = run_env(&["-d", "sim", "status"], &[("WASMBED_GATEWAY", &addr)]);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains(&addr),
        "env var names the address: {}",
        stderr(&o)
    );
}

#[test]
fn gateway_closing_without_reply_is_exit_3() {
    let gw = FakeGateway::start(|_, _| None);
    let o = run_exit(3, &format!("--gateway {} -d sim status", gw.addr), &[]);
    assert!(stderr(&o).contains("closed"), "{}", stderr(&o));
}

#[test]
fn silent_gateway_times_out_with_exit_6() {
    let gw = FakeGateway::start(|_, _| Some(vec![]));
    let t0 = Instant::now();
    let o = run_exit(
        6,
        &format!(
            "--gateway {} -d sim --timeout 0.5 --json start --module-id m --wait-result",
            gw.addr
        ),
        &[],
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(json_doc(&o)["error"]["code"], "HOST_TIMEOUT");
}

#[test]
fn usage_errors_send_nothing() {
    let gw = FakeGateway::replying(json!({}));
    for args in [
        &["start", "--module-id", "m", "--args", "a=1,b=2,c=3,d=4,e=5"][..],
        &["start", "--module-id", "m", "--args", "a=x"],
        &["start", "--module-id", "bad id"],
        &["start", "--module-id", "m", "--func", "a=b"],
        &["start", "--module-id", &"m".repeat(32)],
        &[
            "deploy",
            "--module-id",
            "m",
            "--file",
            "/nonexistent/x.wasm",
        ],
        &["start"],
        &["--timeout", "-1", "status"],
    ] {
        let mut full = vec!["--gateway", &gw.addr, "-d", "sim"];
        full.extend_from_slice(args);
        let o = run(&full);
        assert_exit(&o, 2);
        assert!(!stderr(&o).is_empty(), "{args:?} explains itself");
    }
    // An unreadable file says what to do next.
    let o = run_exit(
        2,
        &format!(
            "--gateway {} -d sim deploy --module-id m --file /nonexistent/x.wasm",
            gw.addr
        ),
        &[],
    );
    assert!(
        stderr(&o).contains("cannot read /nonexistent/x.wasm")
            && stderr(&o).contains("help: check the path"),
        "{}",
        stderr(&o)
    );
    // No device at all.
    let o = run_exit(2, &format!("--gateway {} status", gw.addr), &[]);
    assert!(stderr(&o).contains("--device"), "{}", stderr(&o));
    // Several devices where one is required.
    run_exit(
        2,
        &format!("--gateway {} -d a,b start --module-id m", gw.addr),
        &[],
    );
    assert!(
        gw.received().is_empty(),
        "nothing may be sent: {:?}",
        gw.received()
    );
    // Usage errors with --json still print one JSON document.
    let o = run_exit(2, "--json start --args 1", &[]);
    assert_eq!(json_doc(&o)["error"]["code"], "USAGE");
}

#[test]
fn legacy_spellings_work() {
    let gw = FakeGateway::start(|req, _| {
        Some(vec![match req["op"].as_str().unwrap() {
            "start" => start_ok(3),
            _ => ok(
                json!({"line": "LOAD_OK", "module_id": req["module_id"], "size": req["size"], "crc32": req["crc32"],
                       "skipped": false, "chunked": false, "bytes_per_s": 1000.0}),
            ),
        }])
    });
    let port = gw.addr.rsplit_once(':').unwrap().1.to_string();
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("m.wasm");
    std::fs::write(&wasm, b"\0asm\x01\0\0\0").unwrap();
    let src = dir.path().join("m.c");
    std::fs::write(&src, "int add(int a, int b) { return a + b; }\n").unwrap();
    let legacy = format!("--gw-host 127.0.0.1 --gw-port {port} --device renode");
    run_exit(
        0,
        &format!(
            "{legacy} start --module-id math_ops --func-name add --func-args a=1,b=2 \
             --wait-result --result-timeout 2.5"
        ),
        &[],
    );
    run_exit(
        0,
        &format!("{legacy} load --module-id m --wasm"),
        &[wasm.to_str().unwrap(), "--replace-victim", "old"],
    );
    // The legacy flags in the other order.
    run_exit(
        0,
        &format!(
            "--gw-port {port} --gw-host 127.0.0.1 --device renode build_and_load --module-id m \
             --source"
        ),
        &[src.to_str().unwrap(), "--mode", "aot"],
    );
    let got = gw.received();
    assert_eq!(got[0].request["args"], json!([1, 2]));
    assert_eq!(got[0].request["func"], "add");
    assert_eq!(got[0].request["result_timeout_ms"], 2500);
    assert_eq!(got[1].request["op"], "deploy");
    assert_eq!(got[1].request["replace"], true, "a victim implies replace");
    assert_eq!(got[1].request["replace_victim"], "old");
    // No `name`: no gateway ever read it (docs/HOST-API.md, "API versions").
    assert!(got[1].request.get("name").is_none());
    assert_eq!(got[1].body, b"\0asm\x01\0\0\0");
    assert_eq!(got[2].request["op"], "build_and_deploy");
    assert_eq!(got[2].request["mode"], "aot");
    assert_eq!(got[2].body, std::fs::read(&src).unwrap());
}

#[test]
fn multi_device_deploy_runs_in_parallel_and_ends_with_one_table() {
    let gw = FakeGateway::start(|req, body| {
        let dev = req["device"].as_str().unwrap();
        if dev == "b" {
            return Some(vec![
                json!({"_delay_ms": 300, "ok": false, "error": {"code": "DEVICE_OFFLINE", "message": "device 'b' is offline"}}),
            ]);
        }
        Some(vec![
            json!({"event": "progress", "phase": "upload", "done": 0, "total": body.len()}),
            json!({"_delay_ms": 300, "event": "progress", "phase": "upload", "done": body.len(), "total": body.len()}),
            json!({"ok": true, "result": {"line": "LOAD_OK", "module_id": req["module_id"], "size": body.len(),
                   "crc32": req["crc32"], "skipped": false, "chunked": true, "bytes_per_s": 2048.0},
                   "latency": {"transfer_ms": 250.0, "device_ms": 260.0, "total_ms": 300.0}}),
        ])
    });
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("math_ops.wasm");
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    std::fs::write(&wasm, &data).unwrap();
    let t0 = Instant::now();
    let deploy = format!("--gateway {} --device a,b,c", gw.addr);
    let file = [
        "deploy",
        "--module-id",
        "math_ops",
        "--file",
        wasm.to_str().unwrap(),
    ];
    let o = run(&argv(&deploy, &file));
    let took = t0.elapsed();
    assert_exit(&o, 4);
    assert!(
        took < Duration::from_millis(850),
        "three 300 ms deploys took {took:?}: not parallel"
    );
    assert_e2e_line(&o);
    let text = stdout(&o);
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('│') && !l.contains("BUILD MS"))
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows[0].contains(" a ") && rows[0].contains("loaded (chunked)"),
        "{text}"
    );
    assert!(
        rows[1].contains(" b ") && rows[1].contains("FAILED DEVICE_OFFLINE"),
        "{text}"
    );
    assert!(
        rows[2].contains(" c ") && rows[2].contains("2048"),
        "{text}"
    );
    assert!(
        stderr(&o).contains("device b: error[DEVICE_OFFLINE]"),
        "{}",
        stderr(&o)
    );
    let got = gw.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.body == data));
    let expected_crc = format!("{:08x}", crc32fast::hash(&data));
    assert!(got
        .iter()
        .all(|r| r.request["crc32"] == json!(expected_crc)));
    let mut conns: Vec<usize> = got.iter().map(|r| r.connection).collect();
    conns.dedup();
    assert_eq!(conns.len(), 3, "one connection per device");

    let o = run_exit(4, &format!("{deploy} --json"), &file);
    insta::assert_json_snapshot!(redact(json_doc(&o)));
}

#[test]
fn deploy_to_all_devices() {
    let gw = FakeGateway::start(|req, _| {
        Some(vec![match req["op"].as_str().unwrap() {
            "devices" => ok(json!({"devices": [{"name": "x"}, {"name": "y"}]})),
            _ => ok(
                json!({"line": "LOAD_OK", "module_id": "m", "size": 8, "crc32": req["crc32"], "skipped": true, "chunked": false, "bytes_per_s": 0.0}),
            ),
        }])
    });
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("m.wasm");
    std::fs::write(&wasm, b"\0asm\x01\0\0\0").unwrap();
    let o = run_exit(
        0,
        &format!(
            "--gateway {} --all --json deploy --module-id m --file",
            gw.addr
        ),
        &[wasm.to_str().unwrap(), "--force"],
    );
    let doc = json_doc(&o);
    let devices: Vec<&str> = doc["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device"].as_str().unwrap())
        .collect();
    assert_eq!(devices, ["x", "y"]);
    assert!(gw
        .received()
        .iter()
        .filter(|r| r.request["op"] == "deploy")
        .all(|r| r.request["force"] == true));
}

#[test]
fn compile_failure_is_exit_5_with_stderr() {
    let gw = FakeGateway::start(|_, _| {
        Some(vec![
            json!({"event": "progress", "phase": "compile", "done": 0, "total": 2}),
            json!({"ok": false, "error": {"code": "COMPILE_FAILED", "message": "clang failed",
               "detail": {"stderr": "m.c:1:5: error: expected ';'"}}, "latency": {"compile_ms": 40.0}}),
        ])
    });
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("m.c");
    std::fs::write(&src, "int x(\n").unwrap();
    let o = run_exit(
        5,
        &format!(
            "--gateway {} -d sim build-and-deploy --module-id m --source",
            gw.addr
        ),
        &[src.to_str().unwrap()],
    );
    assert!(stderr(&o).contains("expected ';'"), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("FAILED COMPILE_FAILED"),
        "{}",
        stdout(&o)
    );
    assert_eq!(gw.received()[0].request["mode"], "wasm");
}

#[test]
fn devices_and_status_tables() {
    let gw = FakeGateway::start(|req, _| {
        Some(vec![match req["op"].as_str().unwrap() {
            "devices" => ok(
                json!({"devices": [{"name": "sim", "endpoint": "sim", "online": true, "last_seen_ms_ago": 5,
            "board": "posix", "firmware": "0.1.0", "proto": 2, "slots_used": 0, "slots_total": 2}]}),
            ),
            _ => ok(
                json!({"line": "STATUS_OK modules=\"\"", "slots": [], "memory": {"total": 1, "free": 1, "used": 0, "highmark": 0}}),
            ),
        }])
    });
    let o = run_exit(0, &format!("--gateway {} devices", gw.addr), &[]);
    let text = stdout(&o);
    let body = text.split_once('\n').unwrap().1;
    insta::assert_snapshot!(body);
    let o = run_exit(0, &format!("--gateway {} -d sim status", gw.addr), &[]);
    assert!(stdout(&o).contains("no modules loaded"));
    assert!(stdout(&o).contains("memory: total=1 used=0 free=1 highmark=0"));
}

#[test]
fn token_file_is_sent_with_the_first_request() {
    let gw = FakeGateway::replying(json!({"devices": []}));
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    run_exit(
        0,
        &format!("--gateway {} --token-file", gw.addr),
        &[token.to_str().unwrap(), "devices"],
    );
    assert_eq!(gw.received()[0].request["token"], "s3cret");
}

#[test]
fn logs_and_follow() {
    let gw = FakeGateway::start(|req, _| {
        if req["follow"] == true {
            return Some(vec![
                json!({"event": "log", "seq": 1, "device": "sim", "kind": "log", "line": "LOG module_id=m msg=\"one\""}),
                json!({"_delay_ms": 100, "event": "log", "seq": 2, "device": "sim", "kind": "result", "line": "RESULT status=OK"}),
            ]);
        }
        Some(vec![ok(
            json!({"lines": [{"seq": 7, "kind": "console", "line": "hello"}]}),
        )])
    });
    let o = run_exit(
        0,
        &format!("--gateway {} -d sim logs --since 6", gw.addr),
        &[],
    );
    assert!(stdout(&o).contains("[7] console hello"), "{}", stdout(&o));
    assert_eq!(gw.received()[0].request["since"], 6);
    let o = run_exit(
        0,
        &format!(
            "--gateway {} -d sim --timeout 1 --json logs --follow",
            gw.addr
        ),
        &[],
    );
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", stdout(&o));
    assert_eq!(lines[1]["line"], "RESULT status=OK");
}

#[test]
fn bench_status_reuses_one_connection() {
    let gw = FakeGateway::replying(json!({"line": "STATUS_OK", "slots": []}));
    let o = run_exit(
        0,
        &format!("--gateway {} -d sim --json bench status --count 5", gw.addr),
        &[],
    );
    let doc = json_doc(&o);
    assert_eq!(doc["count"], 5);
    assert_eq!(doc["stats"]["e2e_ms"]["n"], 5);
    assert_eq!(doc["stats"]["device_ms"]["p50"], 1.25);
    let got = gw.received();
    assert_eq!(got.len(), 6, "1 warm-up + 5 measured");
    assert!(got.iter().all(|r| r.connection == got[0].connection));
    let ids: Vec<&Value> = got.iter().map(|r| &r.request["id"]).collect();
    assert!(ids.windows(2).all(|w| w[0] != w[1]), "distinct request ids");
}

#[test]
fn bench_deploy_sends_valid_padded_modules() {
    let gw = FakeGateway::start(|req, body| {
        Some(vec![ok(
            json!({"line": "LOAD_OK", "module_id": req["module_id"],
        "size": body.len(), "crc32": req["crc32"], "skipped": false, "chunked": true, "bytes_per_s": 10000.0}),
        )])
    });
    let o = run_exit(
        0,
        &format!(
            "--gateway {} -d sim bench deploy --size 3000 -n 3 --warmup 0",
            gw.addr
        ),
        &[],
    );
    assert!(stdout(&o).contains("upload (bytes/s)"), "{}", stdout(&o));
    let got = gw.received();
    assert_eq!(got.len(), 3);
    assert!(got
        .iter()
        .all(|r| r.body.len() == 3000 && r.body.starts_with(b"\0asm")));
    assert!(got
        .iter()
        .all(|r| r.request["force"] == true && r.request["replace"] == true));
}

#[test]
fn completions_are_generated() {
    let o = run_exit(0, "completions bash", &[]);
    assert!(stdout(&o).contains("build-and-deploy"));
}

#[test]
fn device_and_gateway_from_environment() {
    let gw = FakeGateway::replying(json!({"line": "STATUS_OK", "slots": []}));
    let o = run_env(
        &["--json", "status"],
        &[("WASMBED_GATEWAY", &gw.addr), ("WASMBED_DEVICE", "a,b")],
    );
    assert_exit(&o, 0);
    let doc = json_doc(&o);
    assert_eq!(doc["devices"][1]["device"], "b");
    let mut asked: Vec<String> = gw
        .received()
        .iter()
        .map(|r| r.request["device"].as_str().unwrap().to_string())
        .collect();
    asked.sort();
    assert_eq!(asked, ["a", "b"]);
}
