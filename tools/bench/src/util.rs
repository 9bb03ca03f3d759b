//! Child processes (killed on drop), /proc readings, statistics, paths.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A boxed error with a message; the harness reports and stops.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// The harness's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Builds an [`Error`] from text.
pub fn err(msg: impl Into<String>) -> Error {
    msg.into().into()
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A workspace binary: `$ENV` if set, else next to this executable.
pub fn binary(name: &str, env: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let p = exe.parent().expect("exe dir").join(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(err(format!(
            "{} not found next to {} (build it: tools/bench/run.sh does; or set {env})",
            name,
            exe.display()
        )))
    }
}

/// Where child processes' stderr goes (`$TMPDIR/wasmbed-bench/<name>.log`).
pub fn log_dir() -> PathBuf {
    let d = std::env::temp_dir().join("wasmbed-bench");
    let _ = std::fs::create_dir_all(&d);
    d
}

/// A child process that is terminated (SIGTERM, then SIGKILL after 2 s) when dropped.
pub struct Proc {
    child: Child,
    /// Lines the child printed on stdout.
    pub lines: mpsc::Receiver<String>,
    /// Short name for messages.
    pub name: String,
}

impl Proc {
    /// Starts `cmd` with stdout piped (read line by line) and stderr to a log file.
    pub fn spawn(name: &str, mut cmd: Command) -> Result<Proc> {
        let log = std::fs::File::create(log_dir().join(format!("{name}.log")))?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| err(format!("cannot start {name}: {e}")))?;
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Proc {
            child,
            lines: rx,
            name: name.to_string(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next stdout line starting with `prefix` (others are skipped).
    pub fn wait_line(&self, prefix: &str, timeout: Duration) -> Result<String> {
        let until = Instant::now() + timeout;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return Ok(l),
                Ok(_) => continue,
                Err(_) => {
                    return Err(err(format!(
                        "{}: no `{prefix}` line within {timeout:?} (log: {})",
                        self.name,
                        log_dir().join(format!("{}.log", self.name)).display()
                    )))
                }
            }
        }
    }

    /// CPU time (user + system, all threads) so far, from /proc/PID/stat.
    pub fn cpu_time(&self) -> Result<Duration> {
        cpu_time(self.pid())
    }

    /// Resident set size in bytes, from /proc/PID/status.
    pub fn rss(&self) -> Result<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        for l in s.lines() {
            if let Some(v) = l.strip_prefix("VmRSS:") {
                let kb: u64 = v.trim().trim_end_matches("kB").trim().parse()?;
                return Ok(kb * 1024);
            }
        }
        Err(err("no VmRSS"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: plain kill(2) of our own child by its pid.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Clock ticks per second for /proc/PID/stat.
fn ticks_per_s() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// CPU time of a process: utime + stime from /proc/PID/stat (all threads, tick resolution),
/// refined with the per-thread nanosecond counters of /proc/PID/task/*/schedstat when readable.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let mut ns = 0u64;
    let mut ok = true;
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in dir.flatten() {
            match std::fs::read_to_string(t.path().join("schedstat")) {
                Ok(s) => ns += s.split_whitespace().next().unwrap_or("0").parse::<u64>()?,
                Err(_) => ok = false,
            }
        }
    } else {
        ok = false;
    }
    if ok && ns > 0 {
        return Ok(Duration::from_nanos(ns));
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &s[s.rfind(')').ok_or_else(|| err("bad stat"))? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / ticks_per_s()))
}

pub use wasmbed_host::bench::Stats;

/// The statistics as the harness writes them to `results.json`.
pub trait StatsJson {
    /// JSON object of the statistics, rounded to 3 decimals.
    fn json(&self) -> Value;
}

impl StatsJson for Stats {
    fn json(&self) -> Value {
        json!({"n": self.n, "min": r3(self.min), "p50": r3(self.p50), "p95": r3(self.p95),
               "p99": r3(self.p99), "max": r3(self.max), "mean": r3(self.mean)})
    }
}

/// Statistics JSON of samples (null when empty).
pub fn stats_json(samples: &[f64]) -> Value {
    Stats::of(samples).map_or(Value::Null, |s| s.json())
}

/// Rounds to 3 decimals (keeps the JSON readable).
pub fn r3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Milliseconds of a duration as f64.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A valid empty module of exactly `size` (≥ 28) bytes whose padding depends on `seed`.
pub fn padded_module(size: usize, seed: u32) -> Vec<u8> {
    wasmbed_host::bench::padded_module(size, seed).expect("bench modules are at least 28 bytes")
}

/// Raises the open-file limit to the hard limit (1000 boards need ~4000 descriptors).
pub fn raise_nofile() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// A short description of the machine: CPU model, cores, kernel, load average.
pub fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    json!({"cpu": cpu, "cores": cores, "kernel": kernel, "loadavg_at_start": load})
}
