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

/// How the gateway reaches the simulated board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimLink {
    /// A raw TCP server on an ephemeral loopback port (`--listen 127.0.0.1:0`).
    #[default]
    Tcp,
    /// A pseudo-terminal (`--pty`), opened as a serial port at this baud rate; the simulator
    /// paces its side like a UART of that speed.
    Pty {
        /// Line speed.
        baud: u32,
    },
}

/// Starts the simulator and waits for it to say where it is: `listening on HOST:PORT` (TCP) or
/// `pty /dev/pts/N` (PTY).
pub async fn start_sim(bin: &Path, link: SimLink) -> std::io::Result<SimChild> {
    let args: Vec<String> = match link {
        SimLink::Tcp => vec!["--listen".into(), "127.0.0.1:0".into()],
        SimLink::Pty { baud } => vec!["--pty".into(), "--baud".into(), baud.to_string()],
    };
    let mut cmd = Command::new(bin);
    // A single process: PR_SET_PDEATHSIG takes it down with a killed gateway.
    crate::reaper::die_with_gateway(&mut cmd);
    let mut child = cmd
        .args(&args)
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
            let line = line.trim();
            match link {
                SimLink::Tcp => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        return Ok(format!("tcp:{addr}"));
                    }
                }
                SimLink::Pty { baud } => {
                    if let Some(path) = line.strip_prefix("pty ") {
                        return Ok(format!("serial:{path}?baud={baud}"));
                    }
                }
            }
        }
        Err(std::io::Error::other(
            "simulator exited before saying where it listens",
        ))
    };
    let addr = tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .map_err(|_| {
            std::io::Error::other(
                "simulator did not print `listening on HOST:PORT` / `pty PATH` within 10 s",
            )
        })??;
    // Keep draining its stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let endpoint: Endpoint = addr
        .parse()
        .map_err(|e| std::io::Error::other(format!("simulator printed a bad address: {e}")))?;
    Ok(SimChild { child, endpoint })
}
