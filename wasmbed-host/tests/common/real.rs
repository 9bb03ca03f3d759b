//! The real gateway (`wasmbed-gateway --sim`) and simulated boards (`wasmbed-agent-sim`) as child
//! processes, found next to the `wasmbed-host` test binary (`cargo build --workspace` puts them
//! there) or through `WASMBED_GATEWAY_BIN` / `WASMBED_AGENT_SIM`.

use std::io::{BufRead, BufReader, Read};
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Path of a workspace binary built beside `wasmbed-host`, or from `env_var`.
pub fn sibling_bin(name: &str, env_var: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        return PathBuf::from(p);
    }
    let host = PathBuf::from(env!("CARGO_BIN_EXE_wasmbed-host"));
    let p = host.with_file_name(name);
    assert!(
        p.is_file(),
        "{} not found: run `cargo build --workspace` first (or set {env_var})",
        p.display()
    );
    p
}

/// A child process interrupted when dropped (SIGINT, then SIGKILL after 5 s), so a test that
/// panics leaves no process behind. Derefs to the [`Child`].
pub struct ChildGuard(Child);

impl ChildGuard {
    /// Spawns `cmd` with SIGINT at its default action, as a terminal's Ctrl-C finds it: a test
    /// run started in the background by a non-interactive shell (as a CI runner may start it)
    /// inherits SIGINT ignored, and an ignored signal stays ignored across exec.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt;
        // SAFETY: signal(2) is async-signal-safe, as pre_exec requires.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        cmd.spawn().map(ChildGuard)
    }

    /// Ctrl-C: SIGINT, then waits up to 5 s for the exit (SIGKILL after that). A child that
    /// already exited is not signalled (its pid may be another process's by now).
    pub fn interrupt(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.0.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        self.0.wait().ok()
    }
}

impl Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.interrupt();
    }
}

/// The lines `from` (a child's stdout or stderr) yields, through a channel.
pub fn lines_of(from: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for l in BufReader::new(from).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// A gateway or simulated board, interrupted when dropped ([`ChildGuard`]).
pub struct Proc {
    child: ChildGuard,
    /// The address it printed after `listening on `.
    pub addr: String,
    /// The address it printed after `dashboard on `, once printed.
    dashboard: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl Proc {
    /// Spawns `bin args` and waits up to 30 s for a `listening on ADDR` line on stdout.
    pub fn spawn(bin: PathBuf, args: &[&str], env: &[(&str, String)]) -> Proc {
        let mut child = ChildGuard::spawn(
            Command::new(&bin)
                .args(args)
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        )
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let dashboard = std::sync::Arc::new(std::sync::Mutex::new(None));
        let seen = dashboard.clone();
        thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.trim().strip_prefix("dashboard on ") {
                    *seen.lock().unwrap() = Some(addr.to_string());
                }
                if let Some(addr) = line.trim().strip_prefix("listening on ") {
                    if !sent {
                        let _ = tx.send(addr.to_string());
                        sent = true;
                    }
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => Proc {
                child,
                addr,
                dashboard,
            },
            Err(_) => {
                child.interrupt();
                panic!(
                    "{} {args:?} did not print `listening on` within 30 s",
                    bin.display()
                );
            }
        }
    }
}

impl Proc {
    /// The `dashboard on ADDR` address (waits up to 10 s for the line).
    #[allow(dead_code)]
    pub fn dashboard(&self) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(a) = self.dashboard.lock().unwrap().clone() {
                return Some(a);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A simulated board listening on an ephemeral loopback port.
pub fn sim() -> Proc {
    Proc::spawn(
        sibling_bin("wasmbed-agent-sim", "WASMBED_AGENT_SIM"),
        &["--listen", "127.0.0.1:0"],
        &[],
    )
}

/// `wasmbed-gateway --sim --listen 127.0.0.1:0` plus `extra` flags; waits until device `sim`
/// is online.
pub fn gateway(extra: &[&str]) -> Proc {
    let sim_bin = sibling_bin("wasmbed-agent-sim", "WASMBED_AGENT_SIM");
    let sim_path = sim_bin.to_string_lossy().into_owned();
    let mut args = vec!["--sim", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let gw = Proc::spawn(
        sibling_bin("wasmbed-gateway", "WASMBED_GATEWAY_BIN"),
        &args,
        &[("WASMBED_AGENT_SIM", sim_path)],
    );
    wait_online(&gw.addr, "sim");
    gw
}

/// Polls `devices --json` until `device` is online (at most 20 s).
pub fn wait_online(gateway: &str, device: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = super::run(&["--gateway", gateway, "--json", "devices"]);
        if o.status.success() {
            let doc = super::json_doc(&o);
            let online = doc["result"]["devices"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|d| d["name"] == device && d["online"] == true);
            if online {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "device {device} not online within 20 s: {}",
            super::stdout(&o)
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Path of a module source in the repository's `modules/` (or `WASMBED_MODULES_DIR`).
pub fn module(name: &str) -> String {
    match std::env::var("WASMBED_MODULES_DIR") {
        Ok(dir) => format!("{dir}/{name}"),
        Err(_) => format!("{}/../modules/{name}", env!("CARGO_MANIFEST_DIR")),
    }
}
