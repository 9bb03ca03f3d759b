//! AOT built once per distinct target (docs/FLEET.md "AOT files: built once per target"): a
//! C application of mode `aot` on three simulated boards behind two gateways, two boards of one
//! AOT target (x86_64, cpu generic) and one of another (cpu x86-64, the sim's `--aot-cpu`).
//! Every wamrc run of both gateways is counted by a wrapper script around the real wamrc:
//! exactly one per target. The build lock of the shared target is first held by a gateway that
//! does not exist (a builder that died): nobody builds until it expires, then one gateway does.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::polling::{slot_state, until};
use common::*;
use serde_json::{json, Value};
use wasmbed_api::app::{AppPhase, Application};
use wasmbed_gateway::config::Config;
use wasmbed_gateway::fleet::aot::{self, AotBuilds};
use wasmbed_gateway::fleet::apps::AppStore;
use wasmbed_gateway::fleet::harness::NatsServer;
use wasmbed_gateway::fleet::{FleetClient, FleetConfig};
use wasmbed_gateway::sim::SimLink;

const TTL_MS: u64 = 3000;

/// The project's wamrc (`$WAMRC`, or what tools/wamrc/build.sh made); `None`: SKIPPED.
fn wamrc() -> Option<PathBuf> {
    let p = std::env::var_os("WAMRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| wasmbed_gateway::pipeline::find_wamrc(None));
    if p.is_file() {
        return Some(p);
    }
    eprintln!(
        "SKIPPED: no wamrc at {} (set WAMRC or run tools/wamrc/build.sh; scripts/test.sh does)",
        p.display()
    );
    None
}

/// An executable script that appends its arguments to `log` when it compiles (`-o`), then
/// runs `real`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn compiles(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

async fn gateway(
    url: &str,
    id: &str,
    devices: &[(&str, String)],
    wamrc: &Path,
    cache: PathBuf,
) -> wasmbed_gateway::run::Running {
    gateway_keyed(url, id, devices, wamrc, cache, None).await
}

async fn gateway_keyed(
    url: &str,
    id: &str,
    devices: &[(&str, String)],
    wamrc: &Path,
    cache: PathBuf,
    key_file: Option<PathBuf>,
) -> wasmbed_gateway::run::Running {
    let mut cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        // Each gateway its own build cache: a second build would run wamrc again.
        cache_dir: cache,
        ..Default::default()
    };
    cfg.compiler.wamrc = Some(wamrc.to_path_buf());
    // The counting wrapper writes outside the compile directory.
    cfg.compiler.confine = false;
    cfg.signing.key_file = key_file;
    for (name, endpoint) in devices {
        cfg.apply_device_flag(&format!("{name}={endpoint}"))
            .unwrap();
    }
    let mut f = FleetConfig::new(url, id);
    f.claim_ttl = Duration::from_millis(TTL_MS);
    cfg.fleet = Some(f);
    wasmbed_gateway::run::start(cfg).await.unwrap()
}

/// `status.aot` of a gateway's record: (built, fetched).
async fn aot_counts(c: &FleetClient, id: &str) -> (u64, u64) {
    let gws = c.gateways().await.unwrap();
    let g = gws
        .iter()
        .find(|g| g["metadata"]["name"] == id)
        .unwrap_or_else(|| panic!("no Gateway record {id}: {gws:?}"));
    let n = |k: &str| g["status"]["aot"][k].as_u64().unwrap_or(0);
    (n("built"), n("fetched"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aot_built_once_per_target_and_shared() {
    let Some(real) = wamrc() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("wamrc-runs.log");
    let counting = script(
        dir.path(),
        "wamrc",
        &format!(
            "case \" $* \" in *\" -o \"*) echo \"$*\" >> '{}';; esac\nexec '{}' \"$@\"",
            log.display(),
            real.display()
        ),
    );
    // A board of another AOT target: the same simulator, reporting cpu x86-64.
    let other_sim = script(
        dir.path(),
        "sim-x86-64",
        &format!(
            "exec '{}' --aot-cpu x86-64 \"$@\"",
            wasmbed_gateway::sim::find_sim(None).display()
        ),
    );
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let alpha = start_sim(SimLink::Tcp).await;
    let beta = start_sim(SimLink::Tcp).await;
    let gamma = wasmbed_gateway::sim::start_sim(&other_sim, SimLink::Tcp)
        .await
        .expect("simulated board with --aot-cpu starts");

    let gw_a = gateway(
        &url,
        "gw-a",
        &[("alpha", alpha.endpoint.to_string())],
        &counting,
        dir.path().join("cache-a"),
    )
    .await;
    let gw_b = gateway(
        &url,
        "gw-b",
        &[
            ("beta", beta.endpoint.to_string()),
            ("gamma", gamma.endpoint.to_string()),
        ],
        &counting,
        dir.path().join("cache-b"),
    )
    .await;
    let c = FleetClient::connect(&url, &Default::default())
        .await
        .unwrap();
    for (dev, gw) in [("alpha", "gw-a"), ("beta", "gw-b"), ("gamma", "gw-b")] {
        until(
            &format!("{gw} owns {dev} and knows its target"),
            30,
            || async {
                let claimed = c
                    .claim(dev)
                    .await
                    .unwrap()
                    .is_some_and(|cl| cl.gateway == gw);
                let running = if gw == "gw-a" { &gw_a } else { &gw_b };
                let known = running
                    .devices
                    .iter()
                    .find(|d| d.name == dev)
                    .is_some_and(|d| d.snapshot().info.is_some());
                (claimed && known).then_some(())
            },
        )
        .await;
    }

    // The AOT files' names, from what each device reported.
    let flags = wasmbed_gateway::config::CompilerConfig::default().wamrc_flags;
    let line_of = |r: &wasmbed_gateway::run::Running, dev: &str| {
        let d = r.devices.iter().find(|d| d.name == dev).unwrap();
        aot::target_line(&d.snapshot(), &flags).expect("the sim reports an AOT target")
    };
    let (generic, other) = (line_of(&gw_a, "alpha"), line_of(&gw_b, "gamma"));
    assert_eq!(line_of(&gw_b, "beta"), generic);
    assert_ne!(generic, other);
    assert!(other.contains("cpu=x86-64"), "{other}");

    let js = c.jetstream();
    let store = AppStore::open(&js, 1).await.unwrap();
    let source = module_source("toggle_forever");
    let sha = store.put_module(&source, "test").await.unwrap();
    let (shared, own) = (
        aot::object_name(&sha, &generic),
        aot::object_name(&sha, &other),
    );
    // A builder of the shared file (gw-dead) holds its lock, renewing it like a gateway does,
    // until it "dies" below: then its lock lives until the bucket's max_age.
    let builds = AotBuilds::open(&js, 1, Duration::from_millis(TTL_MS))
        .await
        .unwrap();
    let held: bytes::Bytes = json!({"gateway": "gw-dead", "startedMs": 0})
        .to_string()
        .into();
    let mut rev = builds.locks.create(&shared, held.clone()).await.unwrap();
    let renewer = {
        let (locks, key) = (builds.locks.clone(), shared.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(TTL_MS / 3)).await;
                rev = locks.update(&key, held.clone(), rev).await.unwrap();
            }
        })
    };

    let app: Application = serde_json::from_value(json!({
        "apiVersion": "wasmbed.dev/v1alpha1", "kind": "Application",
        "metadata": {"name": "blink"},
        "spec": {"module": {"sha256": sha, "kind": "c", "mode": "aot"},
                 "function": "app_main", "restartPolicy": "Always",
                 "selector": {"devices": ["alpha", "beta", "gamma"]}}
    }))
    .unwrap();
    store.apply(app).await.unwrap();

    // While gw-dead's lock lives, alpha and beta wait for it (and nobody builds their file).
    let waiting = until("alpha waits for gw-dead's build", 60, || async {
        store
            .statuses(Some("blink"))
            .await
            .unwrap()
            .into_iter()
            .find(|s| {
                s.device == "alpha"
                    && s.phase == AppPhase::Pending
                    && s.error.as_deref().is_some_and(|e| e.contains("gw-dead"))
            })
    })
    .await;
    assert!(
        waiting.error.as_deref().unwrap().contains(&shared),
        "{waiting:?}"
    );
    assert!(compiles(&log).iter().all(|r| r.contains("--cpu=x86-64")));
    renewer.abort();

    // Then everything runs: the lock expired and one gateway built the shared file.
    let all = until("blink running on alpha, beta and gamma", 120, || async {
        let s = store.statuses(Some("blink")).await.unwrap();
        let running: Vec<_> = s
            .iter()
            .filter(|s| {
                s.phase == AppPhase::Running && s.deployed_sha256.as_deref() == Some(sha.as_str())
            })
            .collect();
        (running.len() == 3).then_some(s)
    })
    .await;
    for dev in ["alpha", "beta", "gamma"] {
        let state = slot_state(&c, dev, "blink").await;
        assert!(
            state
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("running")),
            "{dev}: {state:?} ({all:?})"
        );
    }

    // Exactly one compile per target, across both gateways.
    let runs = compiles(&log);
    assert_eq!(runs.len(), 2, "wamrc runs: {runs:#?}");
    assert_eq!(
        runs.iter().filter(|r| r.contains("--cpu=x86-64")).count(),
        1,
        "{runs:#?}"
    );

    // Both files in the object store, with their target and provenance.
    for (name, line) in [(&shared, &generic), (&own, &other)] {
        let info = store.modules.info(name.as_str()).await.unwrap();
        let md = &info.metadata;
        assert_eq!(md[aot::meta::KIND], "aot");
        assert_eq!(md[aot::meta::SOURCE], sha);
        assert_eq!(&md[aot::meta::TARGET], line);
        assert!(md[aot::meta::WAMRC].contains("wamrc"), "{md:?}");
        assert_ne!(md[aot::meta::BUILT_BY], "gw-dead");
    }
    let own_info = store.modules.info(own.as_str()).await.unwrap();
    assert_eq!(own_info.metadata[aot::meta::BUILT_BY], "gw-b");
    let builder =
        store.modules.info(shared.as_str()).await.unwrap().metadata[aot::meta::BUILT_BY].clone();

    // The gateways' records count the same: two builds in all, the shared file fetched by the
    // gateway that did not build it.
    // (Records are rewritten every TTL/3: wait for the fetch to show.)
    let fetcher = if builder == "gw-a" { "gw-b" } else { "gw-a" };
    until("the fetcher's record counts its fetch", 20, || async {
        (aot_counts(&c, fetcher).await.1 >= 1).then_some(())
    })
    .await;
    let (a_built, a_fetched) = aot_counts(&c, "gw-a").await;
    let (b_built, b_fetched) = aot_counts(&c, "gw-b").await;
    let records: Value = json!({"gw-a": [a_built, a_fetched], "gw-b": [b_built, b_fetched]});
    assert_eq!(a_built + b_built, 2, "{records}");
    assert_eq!(
        if builder == "gw-a" { a_built } else { b_built },
        if builder == "gw-b" { 2 } else { 1 },
        "builder {builder}: {records}"
    );
    // The lock is released once the files are stored.
    assert!(builds.locks.get(&shared).await.unwrap().is_none());

    drop(gw_a);
    drop(gw_b);
}

/// Signing on: boards that require signatures by one key; only gw-a holds it. gw-a builds the
/// AOT file for its board and stores it with its signature; gw-b, with no key, deploys the
/// fetched file with that signature, and its board (which refuses unsigned modules) runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aot_signature_stored_and_reused_by_a_gateway_without_the_key() {
    let Some(wamrc) = wamrc() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("module.key");
    let key = wasmbed_gateway::signing::ModuleKey::generate(&key_file).unwrap();
    let signed_sim = script(
        dir.path(),
        "sim-signed",
        &format!(
            "exec '{}' --trusted-key {} --signatures required \"$@\"",
            wasmbed_gateway::sim::find_sim(None).display(),
            key.public_hex()
        ),
    );
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let alpha = wasmbed_gateway::sim::start_sim(&signed_sim, SimLink::Tcp)
        .await
        .expect("signed simulated board starts");
    let beta = wasmbed_gateway::sim::start_sim(&signed_sim, SimLink::Tcp)
        .await
        .expect("signed simulated board starts");
    let _gw_a = gateway_keyed(
        &url,
        "gw-a",
        &[("alpha", alpha.endpoint.to_string())],
        &wamrc,
        dir.path().join("cache-a"),
        Some(key_file),
    )
    .await;
    let _gw_b = gateway(
        &url,
        "gw-b",
        &[("beta", beta.endpoint.to_string())],
        &wamrc,
        dir.path().join("cache-b"),
    )
    .await;
    let c = FleetClient::connect(&url, &Default::default())
        .await
        .unwrap();
    for (dev, gw) in [("alpha", "gw-a"), ("beta", "gw-b")] {
        until(&format!("{gw} owns {dev}"), 30, || async {
            c.claim(dev).await.unwrap().filter(|cl| cl.gateway == gw)
        })
        .await;
    }
    let store = AppStore::open(&c.jetstream(), 1).await.unwrap();
    let sha = store
        .put_module(&module_source("toggle_forever"), "test")
        .await
        .unwrap();
    let app = |devices: &[&str]| -> Application {
        serde_json::from_value(json!({
            "apiVersion": "wasmbed.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": "blink"},
            "spec": {"module": {"sha256": sha, "kind": "c", "mode": "aot"},
                     "function": "app_main", "restartPolicy": "Always",
                     "selector": {"devices": devices}}
        }))
        .unwrap()
    };
    let running = |dev: &'static str| {
        let store = store.clone();
        async move {
            store
                .statuses(Some("blink"))
                .await
                .unwrap()
                .into_iter()
                .find(|s| s.device == dev && s.phase == AppPhase::Running)
        }
    };
    // First only alpha: gw-a builds and signs.
    store.apply(app(&["alpha"])).await.unwrap();
    until("blink running on alpha", 60, || running("alpha")).await;
    let objects: Vec<String> = {
        use futures_util::StreamExt;
        let mut l = store.modules.list().await.unwrap();
        let mut v = Vec::new();
        while let Some(o) = l.next().await {
            v.push(o.unwrap().name);
        }
        v
    };
    let name = objects
        .iter()
        .find(|n| n.starts_with(&format!("aot/{sha}/")))
        .unwrap_or_else(|| panic!("no AOT file of {sha}: {objects:?}"))
        .clone();
    let md = store.modules.info(name.as_str()).await.unwrap().metadata;
    assert_eq!(md[aot::meta::BUILT_BY], "gw-a");
    let sig = &md[aot::meta::SIGNATURE];
    assert!(sig.contains(&format!("key={}", key.key_id())), "{md:?}");
    assert!(md[aot::meta::SIGNED_AS].starts_with("blink 0 "), "{md:?}");

    // Then beta too: gw-b has no key; only the stored signature gets the file onto beta.
    store.apply(app(&["alpha", "beta"])).await.unwrap();
    let on_beta = until("blink running on beta", 60, || running("beta")).await;
    assert_eq!(on_beta.gateway, "gw-b");
    let state = slot_state(&c, "beta", "blink").await;
    assert!(
        state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("running")),
        "{state:?}"
    );
    until("gw-b's record counts its fetch", 20, || async {
        let (built, fetched) = aot_counts(&c, "gw-b").await;
        (built == 0 && fetched >= 1).then_some(())
    })
    .await;
}
