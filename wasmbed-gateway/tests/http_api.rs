//! The HTTP API (`--http`) with a plain HTTP client against the real simulated board: the
//! Wasmbed operations over HTTP, upload progress and log lines as server-sent events, and the
//! refusals: no or wrong token, cross-origin state changes, foreign host names.

mod common;

use std::time::Duration;

use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use wasmbed_api as api;

use common::http::{client, http_gateway, json_of, send};
use common::*;
use wasmbed_gateway::config::Config;

/// Server-sent events of a response body, as (event, data JSON), until `done` says stop.
async fn events(
    mut resp: reqwest::Response,
    secs: u64,
    mut done: impl FnMut(&str, &Value) -> bool,
) -> Vec<(String, Value)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut name = "message".to_string();
            let mut data = String::new();
            for l in block.lines() {
                if let Some(n) = l.strip_prefix("event:") {
                    name = n.trim().to_string();
                } else if let Some(d) = l.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            if data.is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&data).unwrap();
            let stop = done(&name, &v);
            out.push((name, v));
            if stop {
                return out;
            }
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("events ended within {secs} s; got {out:?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("event stream closed; got {out:?}"));
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_progress_and_log_events() {
    let (gw, _dir) = http_gateway(None, None).await;
    let base = format!("http://{}", gw.http_addr.unwrap());
    let c = client();

    let v: Value = json_of(c.get(format!("{base}/api/devices"))).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["result"]["devices"][0]["name"], "sim", "{v}");
    assert_eq!(v["result"]["devices"][0]["online"], true, "{v}");

    let info: Value = json_of(c.get(format!("{base}/api/devices/sim/info"))).await;
    assert_eq!(info["result"]["board"], "sim", "{info}");

    // build_and_deploy as events: compile and upload progress, then the reply.
    let resp = send(
        c.post(format!(
            "{base}/api/devices/sim/deploy?module_id=math_ops&mode=wasm&replace=true"
        ))
        .header(header::ACCEPT, "text/event-stream")
        .body(module_source("math_ops")),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let evs = events(resp, 120, |name, _| name == "reply").await;
    let phases: Vec<&str> = evs
        .iter()
        .filter(|(n, _)| n == "progress")
        .map(|(_, v)| v["phase"].as_str().unwrap())
        .collect();
    assert!(
        phases.contains(&"compile") && phases.contains(&"upload"),
        "{evs:?}"
    );
    let (_, reply) = evs.last().unwrap();
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["result"]["module_id"], "math_ops");
    assert!(
        reply["latency"]["compile_ms"].as_f64().unwrap() > 0.0,
        "{reply}"
    );

    let resp = send(c.post(format!("{base}/api/devices/sim/start")).json(
        &json!({"module_id": "math_ops", "func": "add", "args": [200, 26], "wait_result": true}),
    ))
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    let r: api::StartResult = serde_json::from_value(v["result"].clone()).unwrap();
    assert_eq!(
        (r.status, r.ret),
        (Some(api::RunStatus::Ok), Some(226)),
        "{v}"
    );

    let st: Value = json_of(c.get(format!("{base}/api/devices/sim/status"))).await;
    assert!(
        st["result"]["slots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["module_id"] == "math_ops"),
        "{st}"
    );

    // Errors keep the Wasmbed codes, with a matching HTTP status.
    let resp = send(c.get(format!("{base}/api/devices/nope/status"))).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "DEVICE_UNKNOWN"
    );
    let resp = send(c.post(format!("{base}/api/devices/sim/start")).body("[1]")).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = send(
        c.post(format!("{base}/api/devices/sim/deploy?module_id=bad"))
            .body(&b"not wasm"[..]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "INVALID_MODULE"
    );

    // Module output arrives live on the device's event stream, told apart from console text.
    let stream = send(
        c.get(format!("{base}/api/devices/sim/events"))
            .header(header::ACCEPT, "text/event-stream"),
    )
    .await;
    assert_eq!(stream.status(), StatusCode::OK);
    let wasm = module_wasm("log_hello");
    let v: Value = json_of(
        c.post(format!(
            "{base}/api/devices/sim/deploy?module_id=hello&replace=true"
        ))
        .body(wasm),
    )
    .await;
    assert_eq!(v["ok"], true, "{v}");
    let v: Value = json_of(
        c.post(format!("{base}/api/devices/sim/start"))
            .json(&json!({"module_id": "hello", "func": "app_main", "wait_result": true})),
    )
    .await;
    assert_eq!(v["ok"], true, "{v}");
    let evs = events(stream, 20, |name, v| {
        name == "log"
            && v["kind"] == "log"
            && v["line"].as_str().unwrap().contains("hello from wasm")
    })
    .await;
    assert!(
        evs.iter().any(|(n, v)| n == "state" && v["name"] == "sim"),
        "{evs:?}"
    );

    // The gateway-wide stream starts with the device list (the `devices` op's summaries).
    let all = send(
        c.get(format!("{base}/api/events"))
            .header(header::ACCEPT, "text/event-stream"),
    )
    .await;
    let evs = events(all, 10, |name, _| name == "devices").await;
    let list: api::DevicesResult = serde_json::from_value(evs.last().unwrap().1.clone()).unwrap();
    assert_eq!(list.devices[0].name, "sim");
    assert_eq!(list.devices[0].slots_total, Some(2), "{list:?}");

    // The latency book counted these requests.
    let lat: Value = json_of(c.get(format!("{base}/api/latency"))).await;
    let rows = lat["latency"].as_array().unwrap();
    let start = rows
        .iter()
        .find(|r| r["op"] == "start" && r["device"] == "sim")
        .expect("start row");
    assert_eq!(start["total"]["count"], 2, "{start}");
    assert!(
        rows.iter()
            .any(|r| r["op"] == "build_and_deploy" && r["compile"]["count"] == 1),
        "{lat}"
    );

    // Without a fleet, the fleet's routes and pages say how to get one.
    for path in ["/api/apps", "/api/gateways", "/api/fleet/devices"] {
        let resp = send(c.get(format!("{base}{path}"))).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let e: Value = resp.json().await.unwrap();
        assert!(
            e["error"]["message"].as_str().unwrap().contains("--fleet"),
            "{path}: {e}"
        );
    }
    for path in ["/apps", "/gateways"] {
        let page = send(c.get(format!("{base}{path}")))
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("id=\"nofleet\""), "{path}: {page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_without_token() {
    let (gw, _dir) = http_gateway(None, None).await;
    let addr = gw.http_addr.unwrap();
    let base = format!("http://{addr}");
    let c = client();
    let start = json!({"module_id": "x"});

    // Another site's page posting to the gateway: refused before anything reaches the device.
    let resp = send(
        c.post(format!("{base}/api/devices/sim/unload"))
            .header(header::ORIGIN, "http://evil.example")
            .json(&start),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let e = resp.json::<Value>().await.unwrap();
    assert_eq!(e["error"]["code"], "UNAUTHORIZED", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cross-origin"),
        "{e}"
    );
    let resp = send(
        c.post(format!("{base}/api/devices/sim/unload"))
            .header("sec-fetch-site", "cross-site")
            .json(&start),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // The same request from the dashboard's own origin goes through (and the device answers).
    let resp = send(
        c.post(format!("{base}/api/devices/sim/unload"))
            .header(header::ORIGIN, format!("http://{addr}"))
            .json(&start),
    )
    .await;
    assert_ne!(resp.status(), StatusCode::FORBIDDEN);
    let e = resp.json::<Value>().await.unwrap();
    assert_eq!(
        e["error"]["code"], "DEVICE_REJECTED",
        "the device answered: {e}"
    );

    // DNS rebinding: a foreign name for 127.0.0.1 gets nothing.
    let resp = send(
        c.get(format!("{base}/api/devices"))
            .header(header::HOST, "evil.example"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::MISDIRECTED_REQUEST);
    let resp = send(c.get(format!("http://localhost:{}/api/devices", addr.port()))).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_required_when_configured() {
    let (gw, _dir) = http_gateway(Some("s3cret-token"), None).await;
    let addr = gw.http_addr.unwrap();
    let base = format!("http://{addr}");
    let c = client();

    for auth in [None, Some("Bearer wrong")] {
        let mut r = c.get(format!("{base}/api/devices"));
        if let Some(a) = auth {
            r = r.header(header::AUTHORIZATION, a);
        }
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"]["code"],
            "UNAUTHORIZED"
        );
    }
    let resp = send(c.get(format!("{base}/api/devices/sim/events"))).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = send(
        c.get(format!("{base}/api/devices"))
            .header(header::AUTHORIZATION, "Bearer s3cret-token"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);

    // A browser without the cookie is sent to the sign-in page, not shown the devices.
    let resp = send(c.get(format!("{base}/"))).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[header::LOCATION], "/login");
    let resp = send(c.get(format!("{base}/devices/sim"))).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let page = send(c.get(format!("{base}/login")))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Sign in") && !page.contains("id=\"devices\""),
        "{page}"
    );
    // Assets load without the token (the sign-in page needs them).
    assert_eq!(
        c.get(format!("{base}/assets/app.css"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let resp = send(c.post(format!("{base}/login")).form(&[("token", "wrong")])).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Login CSRF: another site cannot sign a visitor in.
    let resp = send(
        c.post(format!("{base}/login"))
            .header(header::ORIGIN, "http://evil.example")
            .form(&[("token", "s3cret-token")]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = send(
        c.post(format!("{base}/login"))
            .form(&[("token", "s3cret-token")]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = resp.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let resp = send(c.get(format!("{base}/")).header(header::COOKIE, &pair)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("data-device=\"sim\""));
    // With a token, any host name is fine (the token is the guard).
    let resp = send(
        c.get(format!("{base}/api/devices"))
            .header(header::HOST, "gateway.lan")
            .header(header::AUTHORIZATION, "Bearer s3cret-token"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `GET /api/latency` per time window: three batches of STATUS requests (and two failing
/// starts), each batch begun just after a window boundary (2 s windows), land in the windows
/// their requests ended in. Each request's window is known from the client's clock before and
/// after it (the gateway records between the two); a request that straddles a boundary may
/// count in either window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_per_time_window() {
    use api::latency::LatencyReport;
    use std::collections::BTreeMap;

    sim_bin();
    const W: u64 = 2;
    let gw = gateway_cfg(Config {
        sim: true,
        http: Some("127.0.0.1:0".parse().unwrap()),
        limits: wasmbed_gateway::config::Limits {
            latency_window_s: W,
            latency_windows: 30,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    wait_online(&gw, "sim").await;
    let base = format!("http://{}", gw.http_addr.unwrap());
    let c = client();

    // (op, window start) → (requests surely in that window, requests that may be in it).
    let mut expect: BTreeMap<(&str, u64), (u64, u64)> = BTreeMap::new();
    let window_of = |t: f64| (t as u64) - (t as u64) % W;
    let mut sent = BTreeMap::<&str, u64>::new();
    for batch in [5u64, 3, 7] {
        // Just after the next boundary.
        let now = unix_now();
        let next = (window_of(now) + W) as f64 + 0.05;
        tokio::time::sleep(Duration::from_secs_f64(next - now)).await;
        let mut ops = vec!["status"; batch as usize];
        if batch == 3 {
            ops.extend(["start", "start"]);
        }
        for op in ops {
            let before = unix_now();
            let resp = if op == "status" {
                c.get(format!("{base}/api/devices/sim/status")).send().await
            } else {
                c.post(format!("{base}/api/devices/sim/start"))
                    .json(&json!({"module_id": "not_loaded"}))
                    .send()
                    .await
            }
            .unwrap();
            let ok = resp.status().is_success();
            assert_eq!(ok, op == "status", "{op}: {}", resp.status());
            let after = unix_now();
            *sent.entry(op).or_default() += 1;
            let (a, b) = (window_of(before), window_of(after));
            if a == b {
                expect.entry((op, a)).or_default().0 += 1;
            } else {
                for w in [a, b] {
                    expect.entry((op, w)).or_default().1 += 1;
                }
            }
        }
    }

    let report: LatencyReport = c
        .get(format!("{base}/api/latency"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((report.window_s, report.windows_kept), (W, 30));
    for (op, n) in sent {
        let s = report
            .latency
            .iter()
            .find(|s| s.op == op && s.device == "sim")
            .unwrap_or_else(|| panic!("no {op} row: {report:?}"));
        assert_eq!(s.total.count, n, "{s:?}");
        let in_windows: u64 = s.windows.iter().map(|w| w.total.count).sum();
        assert_eq!(in_windows, n, "every {op} request in some window: {s:?}");
        let starts: Vec<u64> = s.windows.iter().map(|w| w.start).collect();
        assert!(
            starts.windows(2).all(|p| p[0] < p[1]),
            "oldest first: {starts:?}"
        );
        for w in &s.windows {
            let (sure, maybe) = expect.get(&(op, w.start)).copied().unwrap_or_default();
            assert!(
                sure <= w.total.count && w.total.count <= sure + maybe,
                "{op} window {}: {} requests, expected {sure} (+ up to {maybe} straddling)",
                w.start,
                w.total.count
            );
            let hist: u64 = w.histogram.iter().map(|b| b.count).sum();
            assert_eq!(hist, w.total.count, "{w:?}");
            assert!(w.total.p50 <= w.total.p95 && w.total.p95 <= w.total.p99);
            assert!(w.total.max <= s.total.max, "{w:?} vs {:?}", s.total);
            if op == "status" {
                // Each STATUS is one device round trip.
                assert_eq!(w.device_phase.map(|p| p.count), Some(w.total.count));
            }
            assert!(w.compile.is_none() && w.transfer.is_none());
            let errors = if op == "start" { w.total.count } else { 0 };
            assert_eq!(w.errors, errors, "{w:?}");
        }
        // The windows with requests surely in them are all there.
        for (&(o, start), &(sure, _)) in &expect {
            if o == op && sure > 0 {
                assert!(
                    starts.contains(&start),
                    "{op}: no window {start}: {starts:?}"
                );
            }
        }
    }
    let status = report.latency.iter().find(|s| s.op == "status").unwrap();
    // Three batches, each begun in a new window.
    assert!(status.windows.len() >= 3, "{status:?}");

    // The book keeps an entry per (operation, device) as long as the gateway runs: ops the host
    // made up add none (else every new name would grow it).
    let mut host = Client::connect(gw.addr).await;
    for i in 0..3 {
        let a = host
            .call(json!({"op": format!("no_such_op_{i}"), "device": "sim"}))
            .await;
        assert_eq!(a.err_code(), "UNKNOWN_OP");
    }
    let report: LatencyReport = c
        .get(format!("{base}/api/latency"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ops: Vec<&str> = report.latency.iter().map(|s| s.op.as_str()).collect();
    assert!(
        ops.iter().all(|op| api::Op::from_name(op).is_some()),
        "{ops:?}"
    );
}
