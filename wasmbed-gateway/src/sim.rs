//! `--sim`: the simulated board `wasmbed-agent-sim` as a child process, registered as device `sim`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::endpoint::Endpoint;

/// The running simulator; killed when dropped.
#[derive(Debug)]
pub struct SimChild {
    /// The child (spawned with kill-on-drop).
    pub child: Child,
    /// Where it listens.
    pub endpoint: Endpoint,
}

/// Finds `wasmbed-agent-sim`: explicit path, `WASMBED_AGENT_SIM`, next to this executable
/// (or its parent, for test binaries in `deps/`), or on PATH.
pub fn find_sim(configured: Option<&Path>) -> PathBuf {
    if let Some(p) = configured {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("WASMBED_AGENT_SIM") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let p = dir.join("wasmbed-agent-sim");
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from("wasmbed-agent-sim")
}

/// Starts the simulator on an ephemeral loopback port and waits for `listening on HOST:PORT`.
pub async fn start_sim(bin: &Path) -> std::io::Result<SimChild> {
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot start {}: {e}", bin.display()))
        })?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let wait = async {
        while let Some(line) = lines.next_line().await? {
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                return Ok(addr.to_string());
            }
        }
        Err(std::io::Error::other(
            "simulator exited before printing `listening on`",
        ))
    };
    let addr = tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .map_err(|_| {
            std::io::Error::other("simulator did not print `listening on` within 10 s")
        })??;
    // Keep draining its stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let endpoint: Endpoint = format!("tcp:{addr}")
        .parse()
        .map_err(|e| std::io::Error::other(format!("simulator printed a bad address: {e}")))?;
    Ok(SimChild { child, endpoint })
}
