//! The real gateway binary as a child process: its memory read from /proc, its log kept.

use std::io::{BufRead, BufReader as StdBufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `wasmbed-gateway` with a config file; killed on drop.
pub struct GwProc {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
    pub dir: tempfile::TempDir,
}

impl GwProc {
    /// Starts the binary with `config` (TOML; `listen` and `cache_dir` are added) and `args`.
    pub fn start(config: &str, args: &[&str]) -> GwProc {
        Self::start_env(config, args, &[])
    }

    /// Like [`GwProc::start`] with extra environment variables.
    pub fn start_env(config: &str, args: &[&str], env: &[(&str, &Path)]) -> GwProc {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("gateway.toml");
        let full = format!(
            "listen = \"127.0.0.1:0\"\ncache_dir = \"{}\"\n{config}",
            dir.path().join("cache").display()
        );
        std::fs::write(&cfg_path, full).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmbed-gateway"));
        cmd.arg("--config")
            .arg(&cfg_path)
            .args(args)
            .env("RUST_LOG", "wasmbed_gateway=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let l = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in StdBufReader::new(stderr).lines().map_while(Result::ok) {
                let mut g = l.lock().unwrap();
                g.push_str(&line);
                g.push('\n');
            }
        });
        let mut out = StdBufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("gateway did not start: {first:?} {}", log.lock().unwrap()))
            .parse()
            .unwrap();
        std::thread::spawn(move || {
            let mut sink = String::new();
            while out.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        GwProc {
            child,
            addr,
            log,
            dir,
        }
    }

    /// Resident memory in KiB, from /proc/PID/status.
    pub fn rss_kib(&self) -> u64 {
        procfs::process::Process::new(self.child.id() as i32)
            .unwrap()
            .status()
            .unwrap()
            .vmrss
            .unwrap()
    }

    /// Waits until the log contains `text` (up to `secs`).
    pub fn wait_log(&self, text: &str, secs: u64) -> bool {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if self.log.lock().unwrap().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for GwProc {
    /// SIGTERM first, so the gateway stops what it started (its simulated board); SIGKILL only
    /// if it has not exited within 5 s.
    fn drop(&mut self) {
        // A child the test already waited for is not signalled: its pid may be reused.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: kill(2) on our own child's pid, not yet reaped; no memory is involved.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes (pid, command line) whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    procfs::process::all_processes()
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|p| {
            let cmd = p.cmdline().ok()?.join(" ");
            cmd.contains(needle).then_some((p.pid, cmd))
        })
        .collect()
}
