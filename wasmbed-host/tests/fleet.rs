//! `wasmbed-host --fleet`: the host binary against a real nats-server and two gateways with
//! real simulated boards.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use wasmbed_gateway::config::Config;
use wasmbed_gateway::fleet::harness::NatsServer;
use wasmbed_gateway::fleet::{FleetClient, FleetConfig};
use wasmbed_gateway::sim::{find_sim, start_sim, SimLink};

async fn member(
    url: &str,
    id: &str,
    dev: &str,
    labels: &[(&str, &str)],
) -> (
    wasmbed_gateway::run::Running,
    wasmbed_gateway::sim::SimChild,
) {
    let sim_bin = find_sim(None);
    assert!(
        sim_bin.is_file(),
        "build wasmbed-agent-sim first: {}",
        sim_bin.display()
    );
    let sim = start_sim(&sim_bin, SimLink::Tcp).await.expect("sim starts");
    let mut cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        cache_dir: std::env::temp_dir().join("wasmbed-host-fleet-cache"),
        ..Default::default()
    };
    cfg.apply_device_flag(&format!("{dev}={}", sim.endpoint))
        .unwrap();
    let mut f = FleetConfig::new(url, id);
    f.claim_ttl = Duration::from_secs(3);
    f.labels.insert(
        dev.into(),
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    cfg.fleet = Some(f);
    (wasmbed_gateway::run::start(cfg).await.unwrap(), sim)
}

/// Runs the host binary (off the runtime's threads) and parses its JSON document.
async fn host(args: Vec<String>) -> (i32, Value) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_wasmbed-host"))
            .args(&args)
            .arg("--json")
            .env_remove("WASMBED_GATEWAY")
            .env_remove("WASMBED_DEVICE")
            .output()
            .expect("wasmbed-host runs");
        let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: not one JSON document ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), doc)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_sees_and_drives_devices_of_two_gateways() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let (_a, _sa) = member(&url, "gw-a", "alpha", &[("room", "lab")]).await;
    let (_b, _sb) = member(&url, "gw-b", "beta", &[("room", "office")]).await;
    let c = FleetClient::connect(&url, &Default::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let d = c.devices().await.unwrap();
        if d.iter().filter(|d| d["status"]["online"] == true).count() == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "devices online: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (code, doc) = host(vec!["--fleet".into(), url.clone(), "devices".into()]).await;
    assert_eq!(code, 0, "{doc}");
    let text = doc.to_string();
    assert!(
        text.contains("\"alpha\"") && text.contains("\"beta\""),
        "{doc}"
    );

    // A command finds the owner of its device.
    let (code, doc) = host(vec![
        "--fleet".into(),
        url.clone(),
        "info".into(),
        "-d".into(),
        "beta".into(),
    ])
    .await;
    assert_eq!(code, 0, "{doc}");
    assert!(doc.to_string().contains("\"sim\""), "{doc}");

    // --selector fans out to the matching devices only; --all to every device.
    let (code, doc) = host(vec![
        "--fleet".into(),
        url.clone(),
        "--selector".into(),
        "room=lab".into(),
        "status".into(),
    ])
    .await;
    assert_eq!(code, 0, "{doc}");
    let text = doc.to_string();
    assert!(text.contains("alpha") && !text.contains("beta"), "{doc}");
    let (code, doc) = host(vec![
        "--fleet".into(),
        url.clone(),
        "--all".into(),
        "status".into(),
    ])
    .await;
    assert_eq!(code, 0, "{doc}");
    let text = doc.to_string();
    assert!(text.contains("alpha") && text.contains("beta"), "{doc}");

    // An unowned device fails at once with the documented code (device: exit 4).
    let (code, doc) = host(vec![
        "--fleet".into(),
        url.clone(),
        "status".into(),
        "-d".into(),
        "ghost".into(),
    ])
    .await;
    assert_ne!(code, 0, "{doc}");
    assert!(doc.to_string().contains("DEVICE_UNKNOWN"), "{doc}");
}
