//! Applications across a gateway's death (docs/FLEET.md): a board running an application under
//! gateway A, A killed with SIGKILL, gateway B (configured with the same board) takes the claim
//! over and keeps the application running there, without redeploying it, and reports it.

mod common;

use std::time::Duration;

use common::polling::{slot_state, until};
use common::*;
use serde_json::{json, Value};
use wasmbed_api::app::{AppPhase, Application};
use wasmbed_gateway::fleet::apps::AppStore;
use wasmbed_gateway::fleet::harness::NatsServer;
use wasmbed_gateway::fleet::FleetClient;
use wasmbed_gateway::sim::SimLink;

const TTL_MS: u64 = 3000;

fn spawn_gateway(url: &str, id: &str, device: &str) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_wasmbed-gateway"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--fleet",
            url,
            "--gateway-id",
            id,
        ])
        .args(["--fleet-claim-ttl-ms", &TTL_MS.to_string()])
        .args(["--device", device])
        .env_remove("WASMBED_GATEWAY_CONFIG")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("gateway binary starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_survives_its_gateway_sigkill() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let board = start_sim(SimLink::Tcp).await;
    let dev = format!("shared={}", board.endpoint);
    let mut a = spawn_gateway(&url, "gw-a", &dev);
    let c = FleetClient::connect(&url, &Default::default())
        .await
        .unwrap();
    until("gw-a owns shared", 30, || async {
        c.claim("shared")
            .await
            .unwrap()
            .filter(|cl| cl.gateway == "gw-a")
    })
    .await;

    let store = AppStore::open(&c.jetstream(), 1).await.unwrap();
    let sha = store
        .put_module(&module_wasm("toggle_forever"), "test")
        .await
        .unwrap();
    let app: Application = serde_json::from_value(json!({
        "apiVersion": "wasmbed.dev/v1alpha1", "kind": "Application",
        "metadata": {"name": "blink"},
        "spec": {"module": {"sha256": sha}, "function": "app_main", "restartPolicy": "Always",
                 "selector": {"devices": ["shared"]}}
    }))
    .unwrap();
    store.apply(app).await.unwrap();
    let first = until("blink running on shared under gw-a", 60, || async {
        store
            .statuses(Some("blink"))
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.device == "shared" && s.phase == AppPhase::Running && s.gateway == "gw-a")
    })
    .await;
    assert_eq!(first.deployed_sha256.as_deref(), Some(sha.as_str()));
    let state = slot_state(&c, "shared", "blink").await;
    assert!(
        state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("running")),
        "{state:?}"
    );

    // gw-b is configured with the same board (its bridge takes one link: gw-b waits).
    let _b = spawn_gateway(&url, "gw-b", &dev);
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.start_kill().unwrap();
    a.wait().await.unwrap();
    let taken = until(
        "gw-b reports blink on shared",
        TTL_MS / 1000 + 60,
        || async {
            store
                .statuses(Some("blink"))
                .await
                .unwrap()
                .into_iter()
                .find(|s| {
                    s.device == "shared" && s.gateway == "gw-b" && s.phase == AppPhase::Running
                })
        },
    )
    .await;
    // Still the module gw-a deployed, still running: taken over, not redeployed.
    assert_eq!(taken.deployed_sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(taken.restarts, first.restarts, "{taken:?}");
    let state = slot_state(&c, "shared", "blink").await;
    assert!(
        state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("running")),
        "{state:?}"
    );
    let v: Value = serde_json::to_value(&taken).unwrap();
    assert!(v["conditions"].to_string().contains("Ready"), "{v}");
}

/// `logs --follow` through the fleet (the host's bridge): the held lines, then the module's
/// output as the device prints it, relayed from the owner's event subjects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_through_the_fleet() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let board = start_sim(SimLink::Tcp).await;
    let mut cfg = wasmbed_gateway::config::Config::default();
    cfg.apply_device_flag(&format!("talker={}", board.endpoint))
        .unwrap();
    let mut f = wasmbed_gateway::fleet::FleetConfig::new(&url, "gw-log");
    f.claim_ttl = Duration::from_millis(TTL_MS);
    cfg.fleet = Some(f);
    let gw = gateway_cfg(cfg).await;
    let c = FleetClient::connect(&url, &Default::default())
        .await
        .unwrap();
    until("gw-log owns talker", 30, || async {
        c.claim("talker").await.unwrap()
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bridge_addr = listener.local_addr().unwrap();
    tokio::spawn(wasmbed_gateway::fleet::bridge::serve(listener, c.clone()));

    let mut follower = Client::connect(bridge_addr).await;
    let held = follower
        .call(json!({"op": "logs", "device": "talker", "follow": true}))
        .await;
    held.ok();
    // The module prints through its gateway's own API; the follower sees it through NATS.
    let mut direct = Client::connect(gw.addr).await;
    direct
        .deploy("talker", "talk", &module_wasm("log_hello"), json!({}))
        .await
        .ok();
    direct
        .call(
            json!({"op": "start", "device": "talker", "module_id": "talk",
            "func": "log_hello", "wait_result": true}),
        )
        .await
        .ok();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ev = follower
            .next(20)
            .await
            .expect("a log event through the fleet within 20 s");
        assert_eq!(ev["event"], "log", "{ev}");
        assert_eq!(ev["device"], "talker", "{ev}");
        if ev["line"]
            .as_str()
            .unwrap_or("")
            .contains("hello from wasm")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no module output: last {ev}"
        );
    }
}
