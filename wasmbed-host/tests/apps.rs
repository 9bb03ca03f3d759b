//! Applications (docs/FLEET.md): `wasmbed-host apply/get/describe/rollout status/delete` against
//! a real nats-server and two gateways with real simulated boards. Checks that an application
//! reaches exactly the matching devices, comes back after a board reboots (the simulator killed
//! and started again on its port), rolls a changed spec out one device at a time
//! (`maxUnavailable: 1`), and is stopped and unloaded everywhere when deleted.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use wasmbed_gateway::config::Config;
use wasmbed_gateway::fleet::harness::NatsServer;
use wasmbed_gateway::fleet::{FleetClient, FleetConfig};
use wasmbed_gateway::sim::find_sim;

/// Starts the simulator on `addr` (`127.0.0.1:0` for any port); returns it and its endpoint.
async fn sim_at(addr: &str) -> (tokio::process::Child, String) {
    let bin = find_sim(None);
    assert!(
        bin.is_file(),
        "build wasmbed-agent-sim first: {}",
        bin.display()
    );
    let mut child = tokio::process::Command::new(&bin)
        .args(["--listen", addr])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sim starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let at = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if let Some(a) = l.trim().strip_prefix("listening on ") {
                return a.to_string();
            }
        }
        panic!("sim exited before listening")
    })
    .await
    .expect("sim listens within 10 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, at)
}

/// Labels of a device: (key, value) pairs.
type Labels<'a> = &'a [(&'a str, &'a str)];
/// A device of a gateway: (name, endpoint, labels).
type Dev<'a> = (&'a str, &'a str, Labels<'a>);

/// An in-process gateway in the fleet with `devices` = (name, endpoint, labels).
async fn member(url: &str, id: &str, devices: &[Dev<'_>]) -> wasmbed_gateway::run::Running {
    let mut cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        cache_dir: std::env::temp_dir().join("wasmbed-host-apps-cache"),
        ..Default::default()
    };
    let mut f = FleetConfig::new(url, id);
    f.claim_ttl = Duration::from_secs(3);
    for (name, ep, labels) in devices {
        cfg.apply_device_flag(&format!("{name}=tcp:{ep}")).unwrap();
        f.labels.insert(
            name.to_string(),
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }
    cfg.fleet = Some(f);
    wasmbed_gateway::run::start(cfg).await.unwrap()
}

/// Runs the host binary (off the runtime's threads) and parses its JSON document.
async fn host(url: &str, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--fleet".to_string(), url.to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_wasmbed-host"))
            .args(&all)
            .arg("--json")
            .env_remove("WASMBED_GATEWAY")
            .env_remove("WASMBED_DEVICE")
            .env_remove("WASMBED_FLEET")
            .output()
            .expect("wasmbed-host runs");
        let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{all:?}: not one JSON document ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), doc)
    })
    .await
    .unwrap()
}

/// A module of `modules/` compiled by clang to `dir/NAME.wasm`.
fn wasm(dir: &Path, name: &str) {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../modules");
    let status = Command::new("clang")
        .args(wasmbed_gateway::config::legacy_clang_flags())
        .arg("-I")
        .arg(&modules)
        .arg(modules.join(format!("{name}.c")))
        .arg("-o")
        .arg(dir.join(format!("{name}.wasm")))
        .status()
        .expect("clang runs");
    assert!(status.success(), "clang failed on {name}.c");
}

/// `status` of a device through the fleet: its slots' module ids.
async fn slots(c: &FleetClient, dev: &str) -> Option<Vec<String>> {
    let r = c
        .request(
            &json!({"op": "status", "device": dev, "id": 1}),
            b"",
            |_| {},
        )
        .await
        .ok()?;
    let slots = r.reply["result"]["slots"].as_array()?;
    Some(
        slots
            .iter()
            .filter_map(|s| s["module_id"].as_str().map(str::to_string))
            .collect(),
    )
}

/// Polls `describe app NAME` until `ok` holds on its JSON, within `secs`.
async fn until_app(
    url: &str,
    name: &str,
    secs: u64,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let (_, doc) = host(url, &["describe", "app", name]).await;
        if ok(&doc["application"]) {
            return doc["application"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {secs} s: {doc:#}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn device<'a>(app: &'a Value, dev: &str) -> Option<&'a Value> {
    app["status"]["devices"]
        .as_array()?
        .iter()
        .find(|d| d["device"] == dev)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_reboot_rollout_delete() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let (sim_a, ep_a) = sim_at("127.0.0.1:0").await;
    let (_sim_b, ep_b) = sim_at("127.0.0.1:0").await;
    let (_sim_c, ep_c) = sim_at("127.0.0.1:0").await;
    let lab: &[(&str, &str)] = &[("room", "lab")];
    let office: &[(&str, &str)] = &[("room", "office")];
    let _a = member(&url, "gw-a", &[("alpha", &ep_a, lab)]).await;
    let _b = member(
        &url,
        "gw-b",
        &[("beta", &ep_b, lab), ("gamma", &ep_c, office)],
    )
    .await;
    let c = FleetClient::connect(&url, &Default::default())
        .await
        .unwrap();
    for d in ["alpha", "beta", "gamma"] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while slots(&c, d).await.is_none() {
            assert!(tokio::time::Instant::now() < deadline, "{d} not served");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let dir = tempfile::tempdir().unwrap();
    wasm(dir.path(), "toggle_forever");
    wasm(dir.path(), "math_ops");
    let file = dir.path().join("blink.toml");
    std::fs::write(
        &file,
        r#"apiVersion = "wasmbed.dev/v1alpha1"
kind = "Application"
[metadata]
name = "blink"
[spec]
function = "app_main"
restartPolicy = "Always"
[spec.module]
path = "toggle_forever.wasm"
[spec.selector.matchLabels]
room = "lab"
[spec.strategy]
maxUnavailable = 1
"#,
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let (code, doc) = host(&url, &["apply", "-f", f]).await;
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["application"]["metadata"]["generation"], 1, "{doc}");
    let sha1 = doc["application"]["spec"]["module"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    // Applying the same file again changes nothing.
    let (code, doc) = host(&url, &["apply", "-f", f]).await;
    assert_eq!((code, &doc["changed"]), (0, &json!(false)), "{doc}");

    // Converges on the two lab devices, not on the office one.
    let (code, doc) = host(&url, &["--timeout", "60", "rollout", "status", "blink"]).await;
    assert_eq!(code, 0, "{doc}");
    let app = &doc["application"];
    assert_eq!(app["status"]["desired"], 2, "{doc}");
    for d in ["alpha", "beta"] {
        let s = device(app, d).unwrap_or_else(|| panic!("{d}: {doc}"));
        assert_eq!(s["phase"], "Running", "{d}: {s}");
        assert_eq!(s["deployedSha256"], sha1.as_str(), "{d}: {s}");
        assert!(
            slots(&c, d).await.unwrap().contains(&"blink".to_string()),
            "{d}"
        );
    }
    assert!(device(app, "gamma").is_none(), "{doc}");
    assert!(!slots(&c, "gamma")
        .await
        .unwrap()
        .contains(&"blink".to_string()));
    let (code, doc) = host(&url, &["get", "apps"]).await;
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["apps"][0]["status"]["ready"], 2, "{doc}");

    // alpha reboots (its simulator killed and started again on the same port): the gateway
    // sees the module gone and deploys and starts it again on its own.
    let restarts0 = device(app, "alpha").unwrap()["restarts"].as_u64().unwrap();
    drop(sim_a);
    let (_sim_a2, ep_a2) = sim_at(&ep_a).await;
    assert_eq!(ep_a2, ep_a);
    let app = until_app(
        &url,
        "blink",
        60,
        "blink back on alpha after its reboot",
        |a| {
            device(a, "alpha").is_some_and(|s| {
                s["phase"] == "Running" && s["restarts"].as_u64().unwrap_or(0) > restarts0
            }) && a["status"]["converged"] == true
        },
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if slots(&c, "alpha")
            .await
            .is_some_and(|s| s.contains(&"blink".to_string()))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alpha holds no blink after reboot: {app}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A changed spec (another module, another function) rolls out one device at a time.
    let v2 = std::fs::read_to_string(&file)
        .unwrap()
        .replace("toggle_forever.wasm", "math_ops.wasm")
        .replace(
            "function = \"app_main\"\nrestartPolicy = \"Always\"",
            "function = \"add\"\nargs = [20, 22]\nrestartPolicy = \"Never\"",
        );
    std::fs::write(&file, v2).unwrap();
    let (code, doc) = host(&url, &["apply", "-f", f]).await;
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["application"]["metadata"]["generation"], 2, "{doc}");
    let sha2 = doc["application"]["spec"]["module"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(sha1, sha2);
    let (code, doc) = host(&url, &["--timeout", "90", "rollout", "status", "blink"]).await;
    assert_eq!(code, 0, "{doc}");
    // `add` returns at once: both devices end up Completed with its result.
    let app = &until_app(&url, "blink", 30, "add(20, 22) completed on both", |a| {
        ["alpha", "beta"]
            .iter()
            .all(|d| device(a, d).is_some_and(|s| s["phase"] == "Completed"))
    })
    .await;
    let mut windows = Vec::new();
    for d in ["alpha", "beta"] {
        let s = device(app, d).unwrap();
        assert_eq!(s["phase"], "Completed", "{d}: {s}");
        assert_eq!(s["deployedSha256"], sha2.as_str(), "{d}: {s}");
        assert!(s["lastResult"].to_string().contains("42"), "{d}: {s}");
        windows.push((
            s["updateStartedMs"].as_u64().unwrap(),
            s["updateDoneMs"].as_u64().unwrap(),
        ));
    }
    windows.sort();
    assert!(
        windows[0].1 <= windows[1].0,
        "maxUnavailable 1: the two updates overlapped: {windows:?}"
    );

    // Describe in text names both devices.
    let out = Command::new(env!("CARGO_BIN_EXE_wasmbed-host"))
        .args(["--fleet", &url, "describe", "app", "blink"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("alpha") && text.contains("Completed"),
        "{text}"
    );

    // Delete: unloaded everywhere, records gone.
    let (code, doc) = host(&url, &["delete", "app", "blink"]).await;
    assert_eq!(code, 0, "{doc}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for d in ["alpha", "beta"] {
        loop {
            if slots(&c, d)
                .await
                .is_some_and(|s| !s.contains(&"blink".to_string()))
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "blink still loaded on {d}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let (code, doc) = host(&url, &["describe", "app", "blink"]).await;
    assert_eq!(code, 2, "{doc}");
    let (code, doc) = host(&url, &["delete", "app", "blink"]).await;
    assert_eq!(code, 2, "{doc}");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Scale figures (docs/benchmarks.md): `WASMBED_FLEET_SCALE=N` simulated boards (default 20)
/// across 4 in-process gateways; prints the time for one `apply` to converge on all of them and
/// `status` p50/p99 through the fleet against a direct gateway connection. Run with
/// `WASMBED_FLEET_SCALE=100 cargo test -p wasmbed-host --test apps -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale figures: run with --ignored (WASMBED_FLEET_SCALE=N boards)"]
async fn fleet_scale() {
    let n: usize = std::env::var("WASMBED_FLEET_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let mut sims = Vec::new();
    for _ in 0..n {
        sims.push(sim_at("127.0.0.1:0").await);
    }
    let scale: &[(&str, &str)] = &[("scale", "yes")];
    let names: Vec<String> = (0..n).map(|i| format!("b{i:04}")).collect();
    let mut gateways = Vec::new();
    for g in 0..4 {
        let devs: Vec<Dev<'_>> = (0..n)
            .filter(|i| i % 4 == g)
            .map(|i| (names[i].as_str(), sims[i].1.as_str(), scale))
            .collect();
        gateways.push(member(&url, &format!("gw-{g}"), &devs).await);
    }
    let c = FleetClient::connect(&url, &Default::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60 + n as u64);
    loop {
        let online = c
            .devices()
            .await
            .unwrap()
            .iter()
            .filter(|d| d["status"]["online"] == true)
            .count();
        if online == n {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{online} of {n} online"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    wasm(dir.path(), "toggle_forever");
    let file = dir.path().join("scale.json");
    std::fs::write(
        &file,
        json!({"apiVersion": "wasmbed.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": "scale"},
            "spec": {"module": {"path": "toggle_forever.wasm"}, "function": "app_main",
                     "restartPolicy": "Always", "selector": {"matchLabels": {"scale": "yes"}}}})
        .to_string(),
    )
    .unwrap();
    let t0 = std::time::Instant::now();
    let (code, doc) = host(&url, &["apply", "-f", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{doc}");
    let (code, doc) = host(&url, &["--timeout", "3600", "rollout", "status", "scale"]).await;
    assert_eq!(code, 0, "{doc}");
    let converge = t0.elapsed();
    let mut fleet = Vec::new();
    let mut direct = Vec::new();
    for i in 0..50.min(n * 5) {
        let dev = &names[i % n];
        let t = std::time::Instant::now();
        let r = c
            .request(
                &json!({"op": "status", "device": dev, "id": i}),
                b"",
                |_| {},
            )
            .await
            .unwrap();
        assert_eq!(r.reply["ok"], true, "{}", r.reply);
        fleet.push(t.elapsed().as_secs_f64() * 1e3);
        let gw = &gateways[(i % n) % 4];
        let t = std::time::Instant::now();
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        s.write_all(format!("{}\n", json!({"op": "status", "device": dev, "id": i})).as_bytes())
            .await
            .unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).await.unwrap();
        assert!(line.contains("\"ok\":true"), "{line}");
        direct.push(t.elapsed().as_secs_f64() * 1e3);
    }
    fleet.sort_by(f64::total_cmp);
    direct.sort_by(f64::total_cmp);
    println!(
        "fleet scale: boards={n} gateways=4 apply_to_converged_s={:.1} status_fleet_ms p50={:.2} p99={:.2} status_direct_ms p50={:.2} p99={:.2}",
        converge.as_secs_f64(),
        percentile(&fleet, 0.5),
        percentile(&fleet, 0.99),
        percentile(&direct, 0.5),
        percentile(&direct, 0.99),
    );
}
