//! Emulated boards a gateway starts and supervises itself (`[devices.NAME] emulate = …`,
//! docs/FLEET.md): the emulator is a child process serving the board's UART on a loopback TCP
//! port, the device is registered on that port like any other `tcp:` device, the emulator is
//! started again when it dies (bounded exponential backoff from the `backon` crate) and killed
//! with its process group when the gateway stops.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::BackoffBuilder;

/// What emulates a board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emulate {
    /// `sim`: the POSIX simulated board (`wasmbed-agent-sim --listen`).
    Sim,
    /// `qemu:<machine>:<image>`: `qemu-system-arm -M <machine> -kernel <image>` with the
    /// machine's first UART on the TCP port (the project's bare-metal agent image on
    /// `mps2-an386`, built by `firmware-agent/ports/baremetal/build.sh`).
    Qemu {
        /// QEMU machine (`mps2-an386`).
        machine: String,
        /// Firmware image (ELF).
        image: PathBuf,
    },
}

impl std::str::FromStr for Emulate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "sim" {
            return Ok(Emulate::Sim);
        }
        if let Some(rest) = s.strip_prefix("qemu:") {
            let (machine, image) = rest.split_once(':').ok_or_else(|| {
                format!("`{s}`: write qemu:<machine>:<image>, e.g. qemu:mps2-an386:target/baremetal/build/agent.elf")
            })?;
            if machine.is_empty() || image.is_empty() {
                return Err(format!("`{s}`: qemu:<machine>:<image> needs both parts"));
            }
            return Ok(Emulate::Qemu {
                machine: machine.to_string(),
                image: PathBuf::from(image),
            });
        }
        if s.starts_with("renode:") {
            return Err(format!(
                "`{s}`: Renode boards are not started by the gateway in this version: start \
                 Renode yourself (renode/) and give its UART server as `endpoint = \"tcp:HOST:PORT\"`"
            ));
        }
        Err(format!("`{s}`: use `sim` or `qemu:<machine>:<image>`"))
    }
}

impl std::fmt::Display for Emulate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Emulate::Sim => write!(f, "sim"),
            Emulate::Qemu { machine, image } => write!(f, "qemu:{machine}:{}", image.display()),
        }
    }
}

/// Backoff between restarts: 200 ms doubling up to 10 s; back to 200 ms after a run of 30 s.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
const HEALTHY_RUN: Duration = Duration::from_secs(30);

fn backoff() -> backon::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(BACKOFF_MIN)
        .with_max_delay(BACKOFF_MAX)
        .with_factor(2.0)
        .without_max_times()
        .build()
}

/// A free loopback port for an emulator's UART (bound and released: the emulator binds it
/// again at once, and on every restart).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A supervised emulator; killed (its whole process group) when dropped.
#[derive(Debug)]
pub struct Emulator {
    /// The device it emulates.
    pub name: String,
    /// The loopback port of its UART.
    pub port: u16,
    pid: Arc<AtomicU32>,
    restarts: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Emulator {
    /// Starts `emulate` for device `name` with its UART on `port`, and keeps it running.
    /// `sim_bin` is the simulated board's binary (for [`Emulate::Sim`]).
    pub fn start(name: &str, emulate: &Emulate, port: u16, sim_bin: &Path) -> Emulator {
        let pid = Arc::new(AtomicU32::new(0));
        let restarts = Arc::new(AtomicU32::new(0));
        let task = tokio::spawn(supervise(
            name.to_string(),
            emulate.clone(),
            port,
            sim_bin.to_path_buf(),
            pid.clone(),
            restarts.clone(),
        ));
        Emulator {
            name: name.to_string(),
            port,
            pid,
            restarts,
            task,
        }
    }

    /// The emulator's process id now (`None` while it is being restarted).
    pub fn pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::SeqCst)).filter(|p| *p != 0)
    }

    /// How many times it was started again after dying.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::SeqCst)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(pid) = self.pid() {
            // The emulator leads its own process group: anything it started goes too.
            // SAFETY: killpg has no memory-safety preconditions.
            unsafe {
                libc::killpg(pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

fn command(emulate: &Emulate, port: u16, sim_bin: &Path) -> tokio::process::Command {
    let mut cmd = match emulate {
        Emulate::Sim => {
            let mut c = tokio::process::Command::new(sim_bin);
            c.args(["--listen", &format!("127.0.0.1:{port}")]);
            c
        }
        Emulate::Qemu { machine, image } => {
            let qemu = std::env::var_os("WASMBED_QEMU").unwrap_or_else(|| "qemu-system-arm".into());
            let mut c = tokio::process::Command::new(qemu);
            c.args(["-M", machine]);
            if machine == "mps2-an386" {
                c.args(["-m", "16M"]); // the only size this machine accepts
            }
            c.args(["-nographic", "-monitor", "none", "-serial"])
                .arg(format!(
                    "tcp:127.0.0.1:{port},server=on,wait=off,nodelay=on"
                ))
                .arg("-kernel")
                .arg(image);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true);
    crate::reaper::die_with_gateway(&mut cmd);
    cmd
}

async fn supervise(
    name: String,
    emulate: Emulate,
    port: u16,
    sim_bin: PathBuf,
    pid: Arc<AtomicU32>,
    restarts: Arc<AtomicU32>,
) {
    let mut delays = backoff();
    loop {
        let started = Instant::now();
        match command(&emulate, port, &sim_bin).spawn() {
            Ok(mut child) => {
                pid.store(child.id().unwrap_or(0), Ordering::SeqCst);
                tracing::info!(device = %name, pid = child.id(), "emulated board started ({emulate}, UART on 127.0.0.1:{port})");
                let status = child.wait().await;
                pid.store(0, Ordering::SeqCst);
                tracing::warn!(device = %name, "emulated board ({emulate}) exited ({status:?}): starting it again");
            }
            Err(e) => tracing::warn!(
                device = %name,
                "cannot start the emulated board ({emulate}): {e} (is it installed? \
                 `sim` needs wasmbed-agent-sim (WASMBED_AGENT_SIM), `qemu:` qemu-system-arm (WASMBED_QEMU))"
            ),
        }
        if started.elapsed() >= HEALTHY_RUN {
            delays = backoff();
        }
        let d = delays.next().unwrap_or(BACKOFF_MAX);
        tokio::time::sleep(d).await;
        restarts.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!("sim".parse::<Emulate>(), Ok(Emulate::Sim));
        assert_eq!(
            "qemu:mps2-an386:target/baremetal/build/agent.elf".parse::<Emulate>(),
            Ok(Emulate::Qemu {
                machine: "mps2-an386".into(),
                image: "target/baremetal/build/agent.elf".into()
            })
        );
        let e = "renode:x.resc".parse::<Emulate>().unwrap_err();
        assert!(e.contains("endpoint"), "{e}");
        assert!("qemu:mps2-an386".parse::<Emulate>().is_err());
        assert!("bochs".parse::<Emulate>().is_err());
    }

    #[test]
    fn backoff_is_bounded() {
        let d: Vec<Duration> = backoff().take(12).collect();
        assert_eq!(d[0], BACKOFF_MIN);
        assert!(d.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*d.last().unwrap(), BACKOFF_MAX);
    }
}
