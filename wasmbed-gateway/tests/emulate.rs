//! Emulated boards supervised by the gateway (`[devices.NAME] emulate = …`): the gateway starts
//! the emulator, registers the board, deploys and runs a module on it, starts the emulator again
//! when it is killed, and kills it when the gateway stops. `sim` with the real simulated board;
//! `qemu:` with the project's bare-metal agent image (built by scripts/test.sh before
//! `cargo test`; `WASMBED_AGENT_ELF` names another image).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::json;
use wasmbed_gateway::config::Config;

async fn emulated_gateway(emulate: &str) -> wasmbed_gateway::run::Running {
    let toml = format!(
        "sim_path = \"{}\"\n[devices.emu]\nemulate = \"{emulate}\"\n",
        sim_bin().display()
    );
    let cfg = Config::parse(&toml, Path::new("emulate-test.toml")).expect("config parses");
    gateway_cfg(cfg).await
}

/// Waits (bounded) until `emu` answers `status`.
async fn until_online(gw: &wasmbed_gateway::run::Running, secs: u64) {
    let dev = gw.devices.iter().find(|d| d.name == "emu").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !(dev.snapshot().online && dev.snapshot().proto.is_some()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the emulated board did not come online within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// Deploys math_ops and runs add(200, 26) on `emu`.
async fn deploy_and_run(gw: &wasmbed_gateway::run::Running) {
    let mut c = Client::connect(gw.addr).await;
    let a = c
        .deploy(
            "emu",
            "math_ops",
            &module_wasm("math_ops"),
            json!({"replace": true}),
        )
        .await;
    a.ok();
    let a = c
        .call(
            json!({"op": "start", "device": "emu", "module_id": "math_ops", "func": "add",
                     "args": [200, 26], "wait_result": true}),
        )
        .await;
    assert_eq!(a.ok()["ret"], 226, "{}", a.reply);
}

/// Kills the emulator with SIGKILL and waits until another one serves the board again.
async fn kill_and_recover(gw: &wasmbed_gateway::run::Running, secs: u64) {
    let emu = &gw.emulators[0];
    let pid = emu.pid().expect("the emulator runs");
    // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while emu.pid().is_none_or(|p| p == pid) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the emulator was not started again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(emu.restarts(), 1);
    // The link goes down with the old emulator and comes back on the new one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    until_online(gw, secs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_board_supervised_restarted_and_killed_with_the_gateway() {
    let gw = emulated_gateway("sim").await;
    assert_eq!(gw.emulators.len(), 1);
    until_online(&gw, 30).await;
    deploy_and_run(&gw).await;
    kill_and_recover(&gw, 30).await;
    // A fresh board: the module is gone; deploy again and run.
    deploy_and_run(&gw).await;
    let pid = gw.emulators[0].pid().unwrap();
    assert!(alive(pid));
    drop(gw);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    // Reaped by tokio's orphan reaper, or gone: either way no longer signalable as a live
    // process (a zombie still answers kill 0, so look at its state).
    while std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the emulator outlived its gateway"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn agent_elf() -> Option<PathBuf> {
    let p = std::env::var_os("WASMBED_AGENT_ELF")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/baremetal/build/agent.elf")
        });
    p.is_file().then_some(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_board_supervised_and_restarted() {
    let Some(elf) = agent_elf() else {
        // scripts/test.sh builds the image before `cargo test --workspace`, so CI runs this;
        // there (WASMBED_REQUIRE_QEMU=1) a missing image is a failure, not a skip.
        assert!(
            std::env::var_os("WASMBED_REQUIRE_QEMU").is_none(),
            "no bare-metal agent image although WASMBED_REQUIRE_QEMU is set: \
             scripts/test.sh must build it before cargo test"
        );
        eprintln!(
            "SKIPPED: no bare-metal agent image (run firmware-agent/ports/baremetal/build.sh \
             or set WASMBED_AGENT_ELF)"
        );
        return;
    };
    let gw = emulated_gateway(&format!("qemu:mps2-an386:{}", elf.display())).await;
    until_online(&gw, 60).await;
    let board = gw.devices[0].snapshot().board;
    assert!(board.is_some_and(|b| b != "sim"), "not the QEMU board");
    deploy_and_run(&gw).await;
    kill_and_recover(&gw, 60).await;
    deploy_and_run(&gw).await;
}
