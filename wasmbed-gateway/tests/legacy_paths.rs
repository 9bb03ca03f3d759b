//! Legacy generation-1 requests name files on the gateway's disk (`wasm_path`, `source_path`):
//! refused by default, allowed under `legacy.path_dirs` only (no `..` or symlink escapes).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use wasmbed_gateway::config::Config;

struct Dirs {
    _root: tempfile::TempDir,
    allowed: PathBuf,
    outside: PathBuf,
}

/// `allowed/math_ops.wasm`, `allowed/add.c`, `outside/secret.wasm`, and
/// `allowed/escape.wasm` -> `outside/secret.wasm`.
fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let allowed = root.path().join("allowed");
    let outside = root.path().join("outside");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let wasm = module_wasm("math_ops");
    std::fs::write(allowed.join("math_ops.wasm"), &wasm).unwrap();
    std::fs::write(outside.join("secret.wasm"), &wasm).unwrap();
    std::fs::write(
        allowed.join("add.c"),
        b"__attribute__((export_name(\"add\"))) int add(int a, int b) { return a + b; }\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.join("secret.wasm"), allowed.join("escape.wasm")).unwrap();
    Dirs {
        _root: root,
        allowed,
        outside,
    }
}

fn deploy_req(path: &Path) -> Vec<u8> {
    format!(
        "{}\n",
        serde_json::json!({"cmd": "deploy", "device": "renode", "module_id": "math_ops",
                           "wasm_path": path.to_str().unwrap()})
    )
    .into_bytes()
}

async fn gateway_with(dev: &FakeDevice, path_dirs: Vec<PathBuf>) -> wasmbed_gateway::run::Running {
    let mut cfg = Config::default();
    cfg.legacy.path_dirs = path_dirs;
    cfg.apply_device_flag(&format!("renode=tcp:127.0.0.1:{}", dev.port))
        .unwrap();
    let gw = gateway_cfg(cfg).await;
    wait_online(&gw, "renode").await;
    gw
}

fn loads(dev: &FakeDevice) -> usize {
    dev.heard()
        .iter()
        .filter(|l| l.starts_with("LOAD "))
        .count()
}

#[tokio::test]
async fn paths_are_refused_by_default() {
    let d = dirs();
    let dev = FakeDevice::start(v1_loader()).await;
    let gw = gateway_with(&dev, vec![]).await;
    let reply = host_raw(gw.addr, &deploy_req(&d.allowed.join("math_ops.wasm"))).await;
    assert!(
        reply.starts_with(
            "{\"ok\": false, \"error\": \"paths on the gateway's disk are not accepted"
        ),
        "{reply}"
    );
    assert!(reply.contains("legacy.path_dirs"), "{reply}");
    assert_eq!(loads(&dev), 0);
}

#[tokio::test]
async fn only_files_under_the_allowed_directories() {
    let d = dirs();
    let dev = FakeDevice::start(v1_loader()).await;
    let gw = gateway_with(&dev, vec![d.allowed.clone()]).await;

    // Inside: uploaded like the bytes had been sent.
    let reply = host_raw(gw.addr, &deploy_req(&d.allowed.join("math_ops.wasm"))).await;
    assert_eq!(reply, "{\"ok\": true, \"detail\": \"LOAD_OK\"}\n");
    let size = std::fs::metadata(d.allowed.join("math_ops.wasm"))
        .unwrap()
        .len();
    assert!(
        dev.heard()
            .iter()
            .any(|l| l.starts_with(&format!("LOAD module_id=math_ops size={size} "))),
        "{:?}",
        dev.heard()
    );
    assert_eq!(loads(&dev), 1);

    // Outside, `..` out of it, a symlink out of it: refused, nothing sent.
    for path in [
        d.outside.join("secret.wasm"),
        d.allowed.join("../outside/secret.wasm"),
        d.allowed.join("escape.wasm"),
    ] {
        let reply = host_raw(gw.addr, &deploy_req(&path)).await;
        assert!(
            reply.starts_with("{\"ok\": false, \"error\": ")
                && reply.contains("outside the directories"),
            "{}: {reply}",
            path.display()
        );
    }
    assert_eq!(loads(&dev), 1);

    // A missing file gets the legacy gateway's words.
    let missing = d.allowed.join("nope.wasm");
    let reply = host_raw(gw.addr, &deploy_req(&missing)).await;
    assert_eq!(
        reply,
        format!(
            "{{\"ok\": false, \"error\": \"file non trovato: {}\"}}\n",
            missing.display()
        )
    );

    // build_and_deploy with source_path compiles the file on the gateway.
    let req = format!(
        "{}\n",
        serde_json::json!({"cmd": "build_and_deploy", "device": "renode", "module_id": "m2",
                           "source_path": d.allowed.join("add.c").to_str().unwrap(), "mode": "wasm"})
    );
    let reply = host_raw(gw.addr, req.as_bytes()).await;
    assert_eq!(
        reply,
        "{\"step\": \"deploy\", \"wasm_path\": \"m2.wasm\", \"ok\": true, \"detail\": \"LOAD_OK\"}\n"
    );
    assert_eq!(loads(&dev), 2);
}
