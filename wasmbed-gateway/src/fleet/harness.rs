//! Real `nats-server` processes on free loopback ports, for tests and local trials: one node, or
//! a JetStream cluster of several nodes joined by routes. Every server is killed (SIGKILL) and
//! its store directory removed on drop; every wait is bounded.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections, and a cluster to elect its JetStream leader.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The `nats-server` executable: `$WASMBED_NATS_SERVER`, else `nats-server` on PATH (Debian
/// installs it in /usr/sbin, which is added when absent from PATH).
pub fn nats_server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WASMBED_NATS_SERVER") {
        return PathBuf::from(p);
    }
    for dir in std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
    {
        let p = dir.join("nats-server");
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from("nats-server")
}

/// One running `nats-server`.
pub struct NatsServer {
    /// Server name (`n0`, `n1`, …).
    pub name: String,
    /// Client port on 127.0.0.1.
    pub port: u16,
    /// HTTP monitoring port on 127.0.0.1 (`/varz`, `/jsz`: message counts, memory).
    pub monitor_port: u16,
    child: Option<Child>,
    /// The command line it was started with (a restart runs it again).
    args: Vec<std::ffi::OsString>,
    _store: tempfile::TempDir,
}

impl NatsServer {
    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server (SIGKILL) and starts it again on the same ports and store directory, as
    /// a crash and a supervisor's restart would; returns once it listens.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        let child = Command::new(nats_server_bin())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("WASMBED_NATS_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()?;
        self.child = Some(child);
        self.wait_listening(Instant::now() + READY_TIMEOUT)
    }

    fn spawn(name: &str, port: u16, cluster: Option<(&str, u16, &[u16])>) -> std::io::Result<Self> {
        let store = tempfile::Builder::new().prefix("wasmbed-nats-").tempdir()?;
        let monitor_port = free_port()?;
        let mut cmd = Command::new(nats_server_bin());
        cmd.args([
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-n",
            name,
            "-m",
            &monitor_port.to_string(),
            "-js",
            "-sd",
        ])
        .arg(store.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("WASMBED_NATS_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
        if let Some((cluster_name, cport, routes)) = cluster {
            let routes: Vec<String> = routes
                .iter()
                .filter(|p| **p != cport)
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect();
            cmd.args(["--cluster_name", cluster_name])
                .arg("--cluster")
                .arg(format!("nats://127.0.0.1:{cport}"))
                .arg("--routes")
                .arg(routes.join(","));
        }
        let args = cmd.get_args().map(|a| a.to_os_string()).collect();
        let child = cmd.spawn().map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot run {}: {e} (install Debian's nats-server: scripts/setup.sh, or set WASMBED_NATS_SERVER)",
                    nats_server_bin().display()
                ),
            )
        })?;
        Ok(NatsServer {
            name: name.to_string(),
            port,
            monitor_port,
            child: Some(child),
            args,
            _store: store,
        })
    }

    /// Waits until the client port accepts connections.
    fn wait_listening(&mut self, deadline: Instant) -> std::io::Result<()> {
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Some(st) = c.try_wait()? {
                    return Err(std::io::Error::other(format!(
                        "nats-server {} exited with {st} before listening (set WASMBED_NATS_LOG=1 to see why)",
                        self.name
                    )));
                }
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "nats-server {} not listening on port {} after {READY_TIMEOUT:?}",
                    self.name, self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A single JetStream server.
    pub fn start() -> std::io::Result<Self> {
        let mut s = Self::spawn("n0", free_port()?, None)?;
        s.wait_listening(Instant::now() + READY_TIMEOUT)?;
        Ok(s)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A JetStream cluster of `n` servers on loopback, routed to each other.
pub struct NatsCluster {
    /// The servers, `n0`… in order.
    pub servers: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `n` servers and waits until each listens (JetStream readiness is the caller's
    /// [`crate::fleet::wait_jetstream`]).
    pub fn start(n: usize) -> std::io::Result<Self> {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect::<Result<_, _>>()?;
        let cports: Vec<u16> = (0..n).map(|_| free_port()).collect::<Result<_, _>>()?;
        let mut servers = Vec::new();
        for i in 0..n {
            servers.push(NatsServer::spawn(
                &format!("n{i}"),
                ports[i],
                Some(("wasmbed", cports[i], &cports)),
            )?);
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        for s in &mut servers {
            s.wait_listening(deadline)?;
        }
        Ok(NatsCluster { servers })
    }

    /// Every server's URL, comma-separated (what `--fleet` takes for a cluster).
    pub fn urls(&self) -> String {
        self.servers
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}
