//! Starting a whole gateway from a [`Config`]: devices, optional simulator, API listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api::legacy_paths::PathPolicy;
use crate::api::{serve, Gateway};
use crate::config::Config;
use crate::device::{spawn_device, DeviceHandle, DeviceOptions};
use crate::link::EndpointConnector;
use crate::pipeline::{AotTarget, Compiler};
use crate::sim::{find_sim, start_sim, SimChild, SimLink};
use wasmbed_ports::{PortLister, SystemPorts};

/// A running gateway.
pub struct Running {
    /// The API address actually bound.
    pub addr: SocketAddr,
    /// Device handles.
    pub devices: Vec<DeviceHandle>,
    /// The simulator child, if started (killed on drop).
    pub sim: Option<SimChild>,
    /// Emulated boards the gateway supervises (`emulate = …`; killed on drop).
    pub emulators: Vec<crate::emulate::Emulator>,
    /// The API server task.
    pub server: tokio::task::JoinHandle<()>,
    /// Fleet membership, when the config has a fleet.
    pub fleet: Option<Arc<crate::fleet::Member>>,
    /// The dashboard / HTTP API address actually bound (with `cfg.http`).
    pub http_addr: Option<SocketAddr>,
    /// The HTTP server task.
    pub http_server: Option<tokio::task::JoinHandle<()>>,
    /// The listeners speak TLS (`[tls]`).
    pub tls: bool,
}

/// Errors starting a gateway.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// IO (bind, token file, simulator).
    #[error("{0}")]
    Io(String),
    /// Joining the fleet failed.
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetError),
}

/// Starts devices, the simulator (with `cfg.sim`) and the API listener.
pub async fn start(cfg: Config) -> Result<Running, StartError> {
    start_with_ports(cfg, Arc::new(SystemPorts)).await
}

/// Like [`start`], listing serial ports (the log at start, `usb:` endpoints, candidate ports of
/// an offline device) through `ports`: tests inject a fake enumeration.
pub async fn start_with_ports(
    cfg: Config,
    ports: Arc<dyn PortLister>,
) -> Result<Running, StartError> {
    cfg.validate()?;
    log_ports(ports.as_ref());
    let token = match &cfg.token_file {
        Some(p) => Some(read_token(p)?),
        None => None,
    };
    let tls = match &cfg.tls {
        Some(t) => Some(crate::tls::Tls::load(t).map_err(StartError::Io)?),
        None => None,
    };
    if !cfg.listen.ip().is_loopback() && tls.is_none() {
        tracing::warn!(
            "{} is not a loopback address and [tls] is not set: the token and all requests \
             cross the network in clear (docs/SECURITY.md)",
            cfg.listen
        );
    }
    let identity = Arc::new(
        crate::identity::IdentityStore::open(cfg.identity, &cfg.state_dir)
            .map_err(|e| StartError::Io(format!("device identity: {e}")))?,
    );
    let signing_key = match &cfg.signing.key_file {
        Some(p) => Some(Arc::new(
            crate::signing::ModuleKey::load(p)
                .map_err(|e| StartError::Io(format!("[signing] key_file: {e}")))?,
        )),
        None => None,
    };
    let mut devices = Vec::new();
    let mut sim = None;
    if cfg.sim {
        let link = if cfg.sim_pty {
            SimLink::Pty {
                baud: crate::endpoint::DEFAULT_BAUD,
            }
        } else {
            SimLink::Tcp
        };
        let unpaced = matches!(link, SimLink::Tcp);
        let child = start_sim(&find_sim(cfg.sim_path.as_deref()), link)
            .await
            .map_err(|e| StartError::Io(format!("--sim: {e} (build it with `cargo build -p wasmbed-agent-sim` or set WASMBED_AGENT_SIM)")))?;
        let mut o = DeviceOptions::new(
            "sim",
            Arc::new(EndpointConnector::new(child.endpoint.clone())),
        );
        o.log_lines = cfg.limits.log_lines;
        o.identity = identity.clone();
        o.signing_key = signing_key.clone();
        o.unpaced = unpaced;
        devices.push(spawn_device(o));
        sim = Some(child);
    }
    let mut emulators = Vec::new();
    for d in &cfg.devices {
        let mut d = d.clone();
        if let Some(emu) = &d.emulate {
            let port = crate::emulate::free_port().map_err(|e| {
                StartError::Io(format!(
                    "devices.{}: no free loopback port for its emulator: {e}",
                    d.name
                ))
            })?;
            emulators.push(crate::emulate::Emulator::start(
                &d.name,
                emu,
                port,
                &find_sim(cfg.sim_path.as_deref()),
            ));
            d.endpoint = format!("tcp:127.0.0.1:{port}")
                .parse()
                .expect("a loopback endpoint parses");
        }
        let d = &d;
        let connector = EndpointConnector::with_ports(d.endpoint.clone(), ports.clone());
        let mut o = DeviceOptions::new(d.name.clone(), Arc::new(connector));
        o.health_interval = d.health_interval_ms.map(Duration::from_millis);
        o.timeouts.link_bytes_per_sec = (d.endpoint.line_baud() / 10).max(1);
        o.baud = d.endpoint.baud();
        o.unpaced = matches!(
            d.endpoint,
            crate::endpoint::Endpoint::Tcp { baud: None, .. }
        );
        o.max_baud = d.endpoint.max_baud();
        o.log_lines = cfg.limits.log_lines;
        o.identity = identity.clone();
        o.aot = d.aot_target.clone().map(|target| AotTarget {
            target,
            cpu: d.aot_cpu.clone(),
            features: None, // a configured target names no cpu features
            abi: d.aot_abi.clone(),
        });
        o.signing_key = signing_key.clone();
        devices.push(spawn_device(o));
    }
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| StartError::Io(format!("cannot listen on {}: {e}", cfg.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Io(e.to_string()))?;
    if cfg.compiler.confine {
        // Said at start, not only at the first build: compiles will be refused.
        if let Err(e) = crate::pipeline::confine::check_available() {
            tracing::warn!("{e}");
        }
    } else {
        tracing::warn!("compiler.confine = false: compilers can read every file the gateway can");
    }
    let compiler = Compiler::new(cfg.compiler.clone(), cfg.cache_dir.clone());
    let mut gw = Gateway::new(devices.clone(), compiler, cfg.limits, token);
    gw.tls = tls.clone();
    gw.signing_key = signing_key.clone();
    gw.legacy_paths = PathPolicy::new(&cfg.legacy.path_dirs)
        .map_err(|e| StartError::Io(format!("config key `legacy.path_dirs`: {e}")))?;
    if gw.legacy_paths.enabled() {
        tracing::info!(
            "legacy requests may name files under {}",
            cfg.legacy
                .path_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let gw = Arc::new(gw);
    let fleet = match cfg.fleet {
        Some(f) => {
            let m = crate::fleet::Member::join(f, gw.clone()).await?;
            let _ = gw.fleet.set(m.clone());
            Some(m)
        }
        None => None,
    };
    let (http_addr, http_server) = match cfg.http {
        Some(a) => {
            let l = TcpListener::bind(a)
                .await
                .map_err(|e| StartError::Io(format!("cannot serve HTTP on {a}: {e}")))?;
            let bound = l.local_addr().map_err(|e| StartError::Io(e.to_string()))?;
            let http = crate::http::Http::new(gw.clone());
            let task = match &tls {
                Some(t) => {
                    let l = crate::tls::HttpListener::new(
                        l,
                        t.clone(),
                        Duration::from_millis(cfg.limits.line_timeout_ms),
                        cfg.limits.max_connections,
                    )
                    .map_err(|e| StartError::Io(e.to_string()))?;
                    tokio::spawn(crate::http::serve_tls(l, http))
                }
                None => tokio::spawn(crate::http::serve(l, http)),
            };
            (Some(bound), Some(task))
        }
        None => (None, None),
    };
    let server = tokio::spawn(serve(listener, gw));
    Ok(Running {
        addr,
        devices,
        sim,
        emulators,
        server,
        fleet,
        http_addr,
        http_server,
        tls: tls.is_some(),
    })
}

/// Logs the serial ports of this machine (what `wasmbed-host ports` shows on it).
fn log_ports(ports: &dyn PortLister) {
    match ports.ports() {
        Ok(list) if list.is_empty() => tracing::info!("serial ports: none"),
        Ok(list) => {
            for p in &list {
                match p.selector() {
                    Some(sel) => {
                        tracing::info!("serial port: {} (endpoint usb:{sel})", p.summary())
                    }
                    None => tracing::info!("serial port: {}", p.summary()),
                }
            }
        }
        Err(e) => tracing::warn!("{e}"),
    }
}

/// Refuses a secret file (token, TLS key) that is not the gateway's user's own, or that users
/// other than its owner could read or change, naming the fix.
pub fn check_private(p: &std::path::Path, what: &str) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta =
        std::fs::metadata(p).map_err(|e| format!("cannot read {what} {}: {e}", p.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        // Its owner can change or replace it whatever its mode says.
        let user = user_name(me).unwrap_or_else(|| me.to_string());
        return Err(format!(
            "{what} {} is owned by uid {}, not by the gateway's user {user} (uid {me}): \
             whoever owns it can change it; make it the gateway's own with \
             `chown {user} {}` and `chmod 600 {}`",
            p.display(),
            meta.uid(),
            p.display(),
            p.display()
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{what} {} has mode {mode:03o}: group and others may {} it; make it private \
             with `chmod 600 {}`",
            p.display(),
            match (mode & 0o044 != 0, mode & 0o022 != 0) {
                (true, true) => "read and write",
                (true, false) => "read",
                _ => "write",
            },
            p.display()
        ));
    }
    Ok(())
}

/// The login name of `uid`, from the password database.
fn user_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: all-zero is a valid `passwd` (integers and null pointers).
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into `pw` and `buf` (of the length given) and sets `found`.
    let r = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) };
    if r != 0 || found.is_null() || pw.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// Reads the token file, refusing one that other users could read or change.
pub fn read_token(p: &std::path::Path) -> Result<String, StartError> {
    check_private(p, "token file").map_err(StartError::Io)?;
    let token = std::fs::read_to_string(p)
        .map_err(|e| StartError::Io(format!("cannot read token file {}: {e}", p.display())))?
        .trim()
        .to_string();
    if token.is_empty() {
        return Err(StartError::Io(format!(
            "token file {} is empty",
            p.display()
        )));
    }
    Ok(token)
}
