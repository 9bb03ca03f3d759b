//! Gateway configuration: a TOML file (`--config`) overridden by command-line flags.
//!
//! ```toml
//! listen = "127.0.0.1:9000"
//! http = "127.0.0.1:8080"      # the dashboard and HTTP API (off when absent)
//! token_file = "/etc/wasmbed/token"
//! cache_dir = "/var/cache/wasmbed"
//! state_dir = "/var/lib/wasmbed"   # approved device identity keys (identities.json)
//! sim = true
//!
//! [identity]                   # docs/SECURITY.md "Device identity"
//! enrollment = "approve"       # or "tofu" (trust on first use)
//! allow_anonymous = true       # serve devices without an identity key (legacy v1 firmware)
//!
//! [compiler]
//! clang = "clang"
//! clang_flags = ["-O3"]
//! wamrc = "/opt/wamr/wamrc"
//!
//! [legacy]
//! path_dirs = ["/srv/wasmbed/modules"]   # legacy host.py gen. 1 may name files under these
//!
//! [devices.nucleo]
//! endpoint = "serial:/dev/ttyACM0?baud=115200"   # or usb:0483:374b[:SERIAL], tcp:host:port
//! aot_target = "thumbv7em"
//! aot_cpu = "cortex-m4"
//! aot_abi = "eabi"
//! health_interval_ms = 5000
//!
//! [devices.emu]                # a board the gateway emulates and supervises itself
//! emulate = "qemu:mps2-an386:target/baremetal/build/agent.elf"   # or "sim"; no endpoint
//!
//! [tls]                        # optional: TLS 1.3 on `listen` and `http` (docs/SECURITY.md)
//! cert = "/etc/wasmbed/gateway.crt"
//! key = "/etc/wasmbed/gateway.key"
//! client_ca = "/etc/wasmbed/clients.crt"   # optional: require client certificates (mTLS)
//!
//! [fleet]                      # optional: join a NATS JetStream fleet (docs/FLEET.md)
//! url = "nats://nats-a:4222,nats://nats-b:4222"
//! gateway_id = "lab-1"
//! token_file = "/etc/wasmbed/nats-token"   # or creds_file = "…", or user + password_file
//! claim_ttl_ms = 15000
//! replicas = 3
//!
//! [fleet.labels.nucleo]
//! board = "f446"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::endpoint::{Endpoint, EndpointError};

/// The default listen address (loopback only).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9000";

/// The legacy GW-3 clang flags (C → wasm32): `modules/clang-flags.txt`, one a line, the one
/// definition (`modules/build.sh` and the benchmark read it too).
pub fn legacy_clang_flags() -> Vec<&'static str> {
    include_str!("../../modules/clang-flags.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Errors loading or combining the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a wrong key/value.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error including line, column and key.
        message: String,
    },
    /// A value is syntactically fine but unusable.
    #[error("config {origin}: key `{key}`: {message}")]
    Invalid {
        /// The file, or `command line`.
        origin: String,
        /// The offending key (`devices.nucleo.endpoint`, `listen`, ...).
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Compile options for the module pipeline.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompilerConfig {
    /// The clang executable.
    pub clang: PathBuf,
    /// Flags for C → wasm (default: the legacy GW-3 flags).
    pub clang_flags: Vec<String>,
    /// The wamrc executable; `None` = `<repo>/target/wamrc/wamrc` or `wamrc` on PATH.
    pub wamrc: Option<PathBuf>,
    /// Extra flags passed to wamrc in addition to target/cpu/abi (default: software bounds
    /// checks, since no Wasmbed agent relies on an MMU to catch out-of-bounds accesses).
    pub wamrc_flags: Vec<String>,
    /// Compile timeout in milliseconds.
    pub timeout_ms: u64,
    /// Address-space limit of each compiler process in MiB (`RLIMIT_AS`).
    pub max_memory_mb: u64,
    /// CPU-time limit of each compiler process in seconds (`RLIMIT_CPU`).
    pub max_cpu_secs: u64,
    /// Compiles run at once; more wait their turn (a `queued` progress event tells the host).
    pub max_concurrent: usize,
    /// Confine the compilers with Landlock (read only the toolchain, their temporary directory
    /// and the module API header). When the kernel lacks Landlock, compiles are refused; `false`
    /// runs them unconfined (only for a gateway whose hosts are trusted).
    pub confine: bool,
    /// Extra paths the confined compilers may read (e.g. a toolchain outside `/usr`).
    pub read_paths: Vec<PathBuf>,
}

impl Default for CompilerConfig {
    fn default() -> Self {
        Self {
            clang: PathBuf::from("clang"),
            clang_flags: legacy_clang_flags().into_iter().map(String::from).collect(),
            wamrc: None,
            wamrc_flags: vec!["--bounds-checks=1".to_string()],
            timeout_ms: 60_000,
            max_memory_mb: 1024,
            max_cpu_secs: 60,
            max_concurrent: 2,
            confine: true,
            read_paths: Vec::new(),
        }
    }
}

/// Bounds on what hosts may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Maximum request line in bytes.
    pub max_line: usize,
    /// Maximum upload body in bytes.
    pub max_body: usize,
    /// Lines kept per device log.
    pub log_lines: usize,
    /// Host connections served at once; more are answered `BUSY` and closed.
    pub max_connections: usize,
    /// Host connections served at once from one non-loopback IP address; more are answered
    /// `BUSY`.
    pub max_connections_per_peer: usize,
    /// Once a request line has started, the whole line must arrive within this (slowloris bound).
    pub line_timeout_ms: u64,
    /// Wait for the next request of an idle connection.
    pub idle_timeout_ms: u64,
    /// A new connection's first request line (its TLS handshake included) must be complete
    /// within this of the connection being accepted; else it is closed and the reason logged.
    pub first_request_timeout_ms: u64,
    /// Queued reply bytes of one connection above which it stops reading requests and its log
    /// followers skip lines.
    pub reply_queue_soft: usize,
    /// Queued reply bytes of one connection at which it is closed (the host does not read).
    pub reply_queue_max: usize,
    /// A host that takes no reply bytes for this long is disconnected.
    pub write_stall_ms: u64,
    /// Reply bytes queued gateway-wide above which every connection stops reading requests and
    /// log followers skip lines. Upload bodies being received or served count in it too, up to
    /// three quarters of it.
    pub buffer_budget: usize,
    /// An upload body that does not fit in `buffer_budget` waits this long for room, then is
    /// refused `BUSY`.
    pub body_wait_ms: u64,
    /// Length of one latency window of the dashboard (`GET /api/latency`), seconds.
    pub latency_window_s: u64,
    /// Latency windows kept per operation and device, the current one included.
    pub latency_windows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: 64 * 1024,
            max_body: 4 * 1024 * 1024,
            log_lines: 1000,
            max_connections: 1024,
            max_connections_per_peer: 64,
            line_timeout_ms: 10_000,
            idle_timeout_ms: 600_000,
            first_request_timeout_ms: 10_000,
            reply_queue_soft: 256 * 1024,
            reply_queue_max: 1024 * 1024,
            write_stall_ms: 30_000,
            buffer_budget: 16 * 1024 * 1024,
            body_wait_ms: 10_000,
            latency_window_s: crate::http::latency::WINDOW_S,
            latency_windows: crate::http::latency::WINDOWS,
        }
    }
}

/// The legacy dialect's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LegacyConfig {
    /// Directories whose files legacy generation-1 requests may name (`wasm_path`,
    /// `source_path`); empty (the default) refuses every path.
    pub path_dirs: Vec<PathBuf>,
}

/// One device as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceConfig {
    /// Logical name hosts use.
    pub name: String,
    /// Where it is reached.
    pub endpoint: Endpoint,
    /// AOT target override (`thumbv7em`, `x86_64`); INFO is used when absent.
    pub aot_target: Option<String>,
    /// AOT cpu override.
    pub aot_cpu: Option<String>,
    /// AOT ABI override.
    pub aot_abi: Option<String>,
    /// Periodic STATUS interval; `None` = no health polling (the link stays silent).
    pub health_interval_ms: Option<u64>,
    /// Line speed (`baud` key or the endpoint's `?baud=`), if given: the speed a serial port is
    /// opened at and deadlines assume. When absent, a speed the firmware reports in INFO is
    /// used, else [`crate::endpoint::DEFAULT_BAUD`].
    pub baud: Option<u32>,
    /// An emulated board the gateway starts and supervises (`emulate = …`); its `endpoint` is
    /// then the emulator's UART on a loopback port chosen at start.
    pub emulate: Option<crate::emulate::Emulate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    endpoint: Option<String>,
    emulate: Option<String>,
    aot_target: Option<String>,
    aot_cpu: Option<String>,
    aot_abi: Option<String>,
    health_interval_ms: Option<u64>,
    baud: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    http: Option<String>,
    token_file: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    sim: Option<bool>,
    sim_path: Option<PathBuf>,
    sim_pty: Option<bool>,
    #[serde(default)]
    compiler: CompilerConfig,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    legacy: LegacyConfig,
    #[serde(default)]
    identity: crate::identity::IdentityConfig,
    #[serde(default)]
    devices: BTreeMap<String, RawDevice>,
    fleet: Option<RawFleet>,
    tls: Option<crate::tls::TlsConfig>,
    #[serde(default)]
    signing: SigningConfig,
}

/// `[signing]`: the key the gateway signs uploads with (docs/SECURITY.md "Signed modules").
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// Private Ed25519 key file (`wasmbed-host keys generate`, mode 0600). Uploads to devices
    /// whose INFO has `sig=` are signed with it; `None`: the gateway signs nothing.
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    url: String,
    gateway_id: String,
    token_file: Option<PathBuf>,
    creds_file: Option<PathBuf>,
    user: Option<String>,
    password_file: Option<PathBuf>,
    claim_ttl_ms: Option<u64>,
    replicas: Option<usize>,
    #[serde(default)]
    labels: BTreeMap<String, BTreeMap<String, String>>,
}

/// The complete gateway configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Host API listen address.
    pub listen: SocketAddr,
    /// Dashboard and HTTP API address (`None`: not served).
    pub http: Option<SocketAddr>,
    /// Token file required for non-loopback listening.
    pub token_file: Option<PathBuf>,
    /// Compile cache directory.
    pub cache_dir: PathBuf,
    /// State directory: the approved device identity keys (`identities.json`).
    pub state_dir: PathBuf,
    /// Device identity enrollment policy.
    pub identity: crate::identity::IdentityConfig,
    /// Start the simulated board as device `sim`.
    pub sim: bool,
    /// Explicit path of the `wasmbed-agent-sim` binary.
    pub sim_path: Option<PathBuf>,
    /// Reach the simulated board over a PTY (the serial-port path) instead of TCP.
    pub sim_pty: bool,
    /// Compiler settings.
    pub compiler: CompilerConfig,
    /// Request bounds.
    pub limits: Limits,
    /// Legacy dialect settings.
    pub legacy: LegacyConfig,
    /// Devices in name order.
    pub devices: Vec<DeviceConfig>,
    /// Fleet membership (`None`: a standalone gateway).
    pub fleet: Option<crate::fleet::FleetConfig>,
    /// TLS on the host API and the HTTP listener (`None`: plaintext).
    pub tls: Option<crate::tls::TlsConfig>,
    /// Module signing.
    pub signing: SigningConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default"),
            http: None,
            token_file: None,
            cache_dir: default_cache_dir(),
            state_dir: default_state_dir(),
            identity: Default::default(),
            sim: false,
            sim_path: None,
            sim_pty: false,
            compiler: CompilerConfig::default(),
            limits: Limits::default(),
            legacy: LegacyConfig::default(),
            devices: Vec::new(),
            fleet: None,
            tls: None,
            signing: SigningConfig::default(),
        }
    }
}

/// Reads a secret file (token, password), trimmed.
pub fn read_secret(origin: &str, key: &str, path: &Path) -> Result<String, ConfigError> {
    let t = std::fs::read_to_string(path)
        .map_err(|e| invalid(origin, key, format!("cannot read {}: {e}", path.display())))?;
    let t = t.trim().to_string();
    if t.is_empty() {
        return Err(invalid(origin, key, format!("{} is empty", path.display())));
    }
    Ok(t)
}

fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("wasmbed-gateway")
}

fn default_state_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("wasmbed-gateway")
}

/// Longest `limits.latency_window_s`: a day.
pub const MAX_LATENCY_WINDOW_S: u64 = 86_400;

/// Most `limits.latency_windows`: a day of minute windows (each closed one holds its
/// percentiles and buckets, under a kilobyte, per operation and device).
pub const MAX_LATENCY_WINDOWS: usize = 1440;

fn invalid(origin: &str, key: &str, message: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_string(),
        key: key.to_string(),
        message: message.to_string(),
    }
}

fn check_name(origin: &str, key: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            origin,
            key,
            "device names are 1..64 of [A-Za-z0-9_.-]",
        ))
    }
}

impl Config {
    /// Reads a TOML config file. Errors name the file, and the key with line and column.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses TOML text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: describe_toml_error(text, &e),
        })?;
        let origin = path.display().to_string();
        let mut cfg = Config::default();
        if let Some(listen) = raw.listen {
            cfg.listen = listen
                .parse()
                .map_err(|e| invalid(&origin, "listen", format!("`{listen}`: {e}")))?;
        }
        if let Some(http) = raw.http {
            cfg.http = Some(
                http.parse()
                    .map_err(|e| invalid(&origin, "http", format!("`{http}`: {e}")))?,
            );
        }
        cfg.token_file = raw.token_file;
        if let Some(dir) = raw.cache_dir {
            cfg.cache_dir = dir;
        }
        if let Some(dir) = raw.state_dir {
            cfg.state_dir = dir;
        }
        cfg.identity = raw.identity;
        cfg.sim = raw.sim.unwrap_or(false);
        cfg.sim_path = raw.sim_path;
        cfg.sim_pty = raw.sim_pty.unwrap_or(false);
        cfg.compiler = raw.compiler;
        cfg.limits = raw.limits;
        let l = &cfg.limits;
        if !(1..=MAX_LATENCY_WINDOW_S).contains(&l.latency_window_s) {
            return Err(invalid(
                &origin,
                "limits.latency_window_s",
                format!(
                    "{} s: must be 1..={MAX_LATENCY_WINDOW_S} (seconds per latency window of the \
                     dashboard; default {})",
                    l.latency_window_s,
                    crate::http::latency::WINDOW_S
                ),
            ));
        }
        if !(1..=MAX_LATENCY_WINDOWS).contains(&l.latency_windows) {
            return Err(invalid(
                &origin,
                "limits.latency_windows",
                format!(
                    "{}: must be 1..={MAX_LATENCY_WINDOWS} (latency windows kept per operation and \
                     device, the current one included; default {})",
                    l.latency_windows,
                    crate::http::latency::WINDOWS
                ),
            ));
        }
        if let Some(f) = raw.fleet {
            let mut fc = crate::fleet::FleetConfig::new(f.url, f.gateway_id);
            if let Some(p) = &f.token_file {
                fc.auth.token = Some(read_secret(&origin, "fleet.token_file", p)?);
            }
            fc.auth.creds_file = f.creds_file;
            fc.auth.user = f.user;
            if let Some(p) = &f.password_file {
                fc.auth.password = Some(read_secret(&origin, "fleet.password_file", p)?);
            }
            if let Some(ms) = f.claim_ttl_ms {
                fc.claim_ttl = std::time::Duration::from_millis(ms);
            }
            if let Some(r) = f.replicas {
                if !(1..=5).contains(&r) {
                    return Err(invalid(&origin, "fleet.replicas", "must be 1..5"));
                }
                fc.replicas = r;
            }
            fc.labels = f.labels;
            cfg.fleet = Some(fc);
        }
        cfg.legacy = raw.legacy;
        cfg.tls = raw.tls;
        cfg.signing = raw.signing;
        for (name, dev) in raw.devices {
            let key = format!("devices.{name}");
            check_name(&origin, &key, &name)?;
            let emulate = match &dev.emulate {
                Some(e) => Some(
                    e.parse::<crate::emulate::Emulate>()
                        .map_err(|m| invalid(&origin, &format!("{key}.emulate"), m))?,
                ),
                None => None,
            };
            let endpoint = match (&dev.endpoint, &emulate) {
                (Some(e), None) => e.as_str(),
                // Replaced by the emulator's port when the gateway starts it.
                (None, Some(_)) => "tcp:127.0.0.1:1",
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        &origin,
                        &format!("{key}.emulate"),
                        "an emulated board has no `endpoint` (the gateway picks its port): remove one of the two",
                    ))
                }
                (None, None) => {
                    return Err(invalid(
                        &origin,
                        &format!("{key}.endpoint"),
                        "missing: give `endpoint = \"serial:…\"`/`tcp:…`, or `emulate = \"sim\"`/`\"qemu:<machine>:<image>\"`",
                    ))
                }
            };
            let mut endpoint: Endpoint = endpoint
                .parse()
                .map_err(|e: EndpointError| invalid(&origin, &format!("{key}.endpoint"), e))?;
            if dev.health_interval_ms == Some(0) {
                return Err(invalid(
                    &origin,
                    &format!("{key}.health_interval_ms"),
                    "must be > 0 (omit it to disable health polling)",
                ));
            }
            match (dev.baud, endpoint.baud()) {
                (Some(0), _) => {
                    return Err(invalid(&origin, &format!("{key}.baud"), "must be > 0"));
                }
                (Some(b), Some(e)) if b != e => {
                    return Err(invalid(
                        &origin,
                        &format!("{key}.baud"),
                        format!("{b} contradicts the endpoint's ?baud={e}: give the speed once"),
                    ));
                }
                (Some(b), _) => endpoint.set_baud(b),
                (None, _) => {}
            }
            let baud = endpoint.baud();
            cfg.devices.push(DeviceConfig {
                name,
                endpoint,
                aot_target: dev.aot_target,
                aot_cpu: dev.aot_cpu,
                aot_abi: dev.aot_abi,
                health_interval_ms: dev.health_interval_ms,
                baud,
                emulate,
            });
        }
        Ok(cfg)
    }

    /// Adds or replaces a device from a `NAME=ENDPOINT` flag.
    pub fn apply_device_flag(&mut self, flag: &str) -> Result<(), ConfigError> {
        let origin = "command line";
        let (name, endpoint) = flag
            .split_once('=')
            .ok_or_else(|| invalid(origin, "--device", format!("`{flag}` is not NAME=ENDPOINT")))?;
        check_name(origin, "--device", name)?;
        let endpoint: Endpoint = endpoint
            .parse()
            .map_err(|e: EndpointError| invalid(origin, "--device", e))?;
        let baud = endpoint.baud();
        let dev = DeviceConfig {
            name: name.to_string(),
            endpoint,
            aot_target: None,
            aot_cpu: None,
            aot_abi: None,
            health_interval_ms: None,
            baud,
            emulate: None,
        };
        match self.devices.iter_mut().find(|d| d.name == name) {
            Some(existing) => {
                // A config file's `baud` still applies to a flag's endpoint without `?baud=`.
                let mut endpoint = dev.endpoint;
                match (endpoint.baud(), existing.baud) {
                    (None, Some(b)) => endpoint.set_baud(b),
                    (b, _) => existing.baud = b,
                }
                existing.endpoint = endpoint;
                existing.emulate = None;
            }
            None => self.devices.push(dev),
        }
        Ok(())
    }

    /// Checks the combination of settings. Off loopback the gateway authenticates its hosts:
    /// a non-loopback `listen` needs a token file or mutual TLS (`tls.client_ca`); a
    /// non-loopback `http` needs a token file (the dashboard's login).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mutual = self.tls.as_ref().is_some_and(|t| t.mutual());
        if !self.listen.ip().is_loopback() && self.token_file.is_none() && !mutual {
            return Err(invalid(
                "",
                "listen",
                format!(
                    "{} is not a loopback address: set `token_file` (or --token-file) or \
                     `tls.client_ca` (or --tls-client-ca, mutual TLS) to require \
                     authentication, or listen on 127.0.0.1",
                    self.listen
                ),
            ));
        }
        if let Some(http) = self.http.filter(|a| !a.ip().is_loopback()) {
            if self.token_file.is_none() {
                return Err(invalid(
                    "",
                    "http",
                    format!(
                        "{http} is not a loopback address: set `token_file` (or --token-file) to \
                         require authentication, or serve HTTP on 127.0.0.1"
                    ),
                ));
            }
        }
        if let Some(t) = self
            .tls
            .as_ref()
            .filter(|t| t.plaintext_loopback && t.mutual())
        {
            if self.token_file.is_none() {
                return Err(invalid(
                    "",
                    "tls.plaintext_loopback",
                    format!(
                        "plaintext on loopback bypasses the client certificates of {}: \
                         set `token_file` too, or drop `plaintext_loopback`",
                        t.client_ca.as_deref().unwrap_or(Path::new("")).display()
                    ),
                ));
            }
        }
        if self.sim && self.devices.iter().any(|d| d.name == "sim") {
            return Err(invalid(
                "",
                "devices.sim",
                "the name `sim` is taken by --sim",
            ));
        }
        Ok(())
    }
}

/// Renders a toml error with line/column of its span.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let upto = &text[..span.start.min(text.len())];
            let line = upto.matches('\n').count() + 1;
            let col = upto.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let snippet = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}, column {col} (`{snippet}`): {msg}")
        }
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("gw.toml"))
    }

    #[test]
    fn latency_windows_out_of_range_are_refused() {
        let cfg = parse("[limits]\nlatency_window_s = 10\nlatency_windows = 6\n").unwrap();
        assert_eq!(
            (cfg.limits.latency_window_s, cfg.limits.latency_windows),
            (10, 6)
        );
        for (text, key) in [
            ("latency_window_s = 0", "limits.latency_window_s"),
            ("latency_window_s = 86401", "limits.latency_window_s"),
            (
                "latency_window_s = 9223372036854775807",
                "limits.latency_window_s",
            ),
            ("latency_windows = 0", "limits.latency_windows"),
            ("latency_windows = 1000000000", "limits.latency_windows"),
        ] {
            let e = parse(&format!("[limits]\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key) && e.contains("must be 1..="), "{text}: {e}");
        }
    }

    #[test]
    fn full_config() {
        let cfg = parse(
            r#"
listen = "127.0.0.1:9100"
cache_dir = "/tmp/c"
state_dir = "/tmp/s"
sim = true
[identity]
enrollment = "tofu"
allow_anonymous = false
[compiler]
clang = "/usr/bin/clang-14"
max_memory_mb = 300
confine = false
[limits]
max_body = 1000
max_connections = 5
write_stall_ms = 100
[legacy]
path_dirs = ["/srv/wasmbed/modules"]
[devices.nucleo]
endpoint = "serial:/dev/ttyACM0?baud=9600"
aot_target = "thumbv7em"
health_interval_ms = 500
[devices.renode]
endpoint = "tcp:3456"
"#,
        )
        .unwrap();
        assert_eq!(cfg.listen.port(), 9100);
        assert!(cfg.sim);
        assert_eq!(cfg.state_dir, PathBuf::from("/tmp/s"));
        assert_eq!(cfg.identity.enrollment, crate::identity::Enrollment::Tofu);
        assert!(!cfg.identity.allow_anonymous);
        assert!(parse("").unwrap().identity.allow_anonymous);
        let e = parse("[identity]\nenrollment = \"trust\"\n").unwrap_err();
        assert!(e.to_string().contains("enrollment"), "{e}");
        assert_eq!(cfg.compiler.clang, PathBuf::from("/usr/bin/clang-14"));
        assert_eq!(cfg.compiler.clang_flags, legacy_clang_flags());
        assert!(legacy_clang_flags().contains(&"--target=wasm32-unknown-unknown"));
        assert_eq!(cfg.limits.max_body, 1000);
        assert_eq!(
            cfg.legacy.path_dirs,
            [PathBuf::from("/srv/wasmbed/modules")]
        );
        assert!(parse("").unwrap().legacy.path_dirs.is_empty());
        assert_eq!(cfg.limits.max_line, Limits::default().max_line);
        assert_eq!(cfg.limits.max_connections, 5);
        assert_eq!(cfg.limits.write_stall_ms, 100);
        assert_eq!(cfg.limits.buffer_budget, Limits::default().buffer_budget);
        assert_eq!(cfg.compiler.max_memory_mb, 300);
        assert!(!cfg.compiler.confine);
        assert_eq!(cfg.compiler.max_concurrent, 2);
        assert_eq!(cfg.devices.len(), 2);
        assert_eq!(cfg.devices[0].name, "nucleo");
        assert_eq!(cfg.devices[0].baud, Some(9600));
        assert_eq!(cfg.devices[1].baud, None);
        assert_eq!(cfg.devices[0].health_interval_ms, Some(500));
        assert_eq!(cfg.devices[1].endpoint.to_string(), "tcp:localhost:3456");
    }

    #[test]
    fn errors_name_file_and_key() {
        let e = parse("[devices.x]\nendpoint = \"tcp:1\"\nbaud = \"fast\"\n").unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("gw.toml") && s.contains("line 3") && s.contains("baud"),
            "{s}"
        );

        let e = parse("[devices.x]\nendpoint = \"tcp:nope\"\n").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("devices.x.endpoint"), "{s}");

        let e = parse("lisen = \"1.2.3.4:1\"\n").unwrap_err();
        assert!(e.to_string().contains("lisen"), "{e}");

        let e = parse("listen = \"nope\"\n").unwrap_err();
        assert!(e.to_string().contains("`listen`"), "{e}");
    }

    #[test]
    fn fleet_section() {
        let dir = tempfile::tempdir().unwrap();
        let tok = dir.path().join("tok");
        std::fs::write(&tok, "s3cret\n").unwrap();
        let text = format!(
            "[fleet]\nurl = \"nats://a:4222,nats://b:4222\"\ngateway_id = \"lab-1\"\ntoken_file = {:?}\nclaim_ttl_ms = 6000\nreplicas = 3\n[fleet.labels.nucleo]\nroom = \"lab\"\n",
            tok.display().to_string()
        );
        let f = parse(&text).unwrap().fleet.unwrap();
        assert_eq!(f.url, "nats://a:4222,nats://b:4222");
        assert_eq!(f.gateway_id, "lab-1");
        assert_eq!(f.auth.token.as_deref(), Some("s3cret"));
        assert_eq!(f.claim_ttl, std::time::Duration::from_millis(6000));
        assert_eq!(f.replicas, 3);
        assert_eq!(f.labels["nucleo"]["room"], "lab");
        assert!(parse("").unwrap().fleet.is_none());
        let e =
            parse("[fleet]\nurl = \"nats://a\"\ngateway_id = \"x\"\nreplicas = 9\n").unwrap_err();
        assert!(e.to_string().contains("fleet.replicas"), "{e}");
    }

    #[test]
    fn baud_key_and_query_combine() {
        let cfg = parse("[devices.a]\nendpoint = \"tcp:1\"\nbaud = 9600\n").unwrap();
        assert_eq!(cfg.devices[0].baud, Some(9600));
        assert_eq!(
            cfg.devices[0].endpoint.to_string(),
            "tcp:localhost:1?baud=9600"
        );
        let cfg = parse("[devices.a]\nendpoint = \"usb:0483:374b?baud=9600\"\n").unwrap();
        assert_eq!(cfg.devices[0].baud, Some(9600));
        let e = parse("[devices.a]\nendpoint = \"tcp:1?baud=9600\"\nbaud = 115200\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("devices.a.baud") && e.contains("once"), "{e}");
        let mut cfg = parse("[devices.a]\nendpoint = \"tcp:1\"\nbaud = 9600\n").unwrap();
        cfg.apply_device_flag("a=serial:/dev/ttyACM1").unwrap();
        assert_eq!(
            cfg.devices[0].endpoint.to_string(),
            "serial:/dev/ttyACM1?baud=9600"
        );
        cfg.apply_device_flag("a=tcp:2?baud=300").unwrap();
        assert_eq!(cfg.devices[0].baud, Some(300));
    }

    #[test]
    fn device_flags_override() {
        let mut cfg = parse("[devices.a]\nendpoint = \"tcp:1\"\nhealth_interval_ms = 9\n").unwrap();
        cfg.apply_device_flag("a=tcp:2").unwrap();
        cfg.apply_device_flag("b=/dev/ttyUSB0").unwrap();
        assert_eq!(cfg.devices[0].endpoint.to_string(), "tcp:localhost:2");
        assert_eq!(cfg.devices[0].health_interval_ms, Some(9));
        assert_eq!(cfg.devices[1].name, "b");
        assert!(cfg.apply_device_flag("noequals").is_err());
        assert!(cfg.apply_device_flag("bad name=tcp:1").is_err());
    }

    #[test]
    fn non_loopback_needs_token_or_mutual_tls() {
        let tls = |ca: bool| crate::tls::TlsConfig {
            cert: "/c".into(),
            key: "/k".into(),
            client_ca: ca.then(|| "/ca".into()),
            plaintext_loopback: false,
        };
        let mut cfg = parse("listen = \"0.0.0.0:9000\"\n").unwrap();
        cfg.tls = Some(tls(false));
        let e = cfg.validate().unwrap_err().to_string();
        assert!(
            e.contains("tls.client_ca") && e.contains("token_file"),
            "{e}"
        );
        cfg.tls = Some(tls(true));
        cfg.validate().unwrap();
        let mut t = tls(true);
        t.plaintext_loopback = true;
        cfg.tls = Some(t);
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("plaintext_loopback"), "{e}");
        let cfg =
            parse("[tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\nclient_ca = \"/ca.pem\"\n").unwrap();
        assert_eq!(
            cfg.tls.as_ref().unwrap().client_ca.as_deref(),
            Some(Path::new("/ca.pem"))
        );
    }

    #[test]
    fn non_loopback_needs_token() {
        let mut cfg = parse("listen = \"0.0.0.0:9000\"\n").unwrap();
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("token_file"));
        cfg.token_file = Some("/tmp/t".into());
        cfg.validate().unwrap();

        let mut cfg = parse("http = \"0.0.0.0:8080\"\n").unwrap();
        assert_eq!(cfg.http, Some("0.0.0.0:8080".parse().unwrap()));
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("`http`") && e.contains("token_file"), "{e}");
        cfg.token_file = Some("/tmp/t".into());
        cfg.validate().unwrap();
        assert!(parse("http = \"nope\"\n")
            .unwrap_err()
            .to_string()
            .contains("`http`"));
    }

    #[test]
    fn emulated_devices() {
        let cfg = parse("[devices.q]\nemulate = \"qemu:mps2-an386:a.elf\"\n").unwrap();
        assert_eq!(
            cfg.devices[0]
                .emulate
                .as_ref()
                .map(|e| e.to_string())
                .as_deref(),
            Some("qemu:mps2-an386:a.elf")
        );
        let e = parse("[devices.q]\nemulate = \"sim\"\nendpoint = \"tcp:h:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("devices.q.emulate") && e.contains("endpoint"),
            "{e}"
        );
        let e = parse("[devices.q]\n").unwrap_err().to_string();
        assert!(
            e.contains("devices.q.endpoint") && e.contains("emulate"),
            "{e}"
        );
        let e = parse("[devices.q]\nemulate = \"renode:x.resc\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("devices.q.emulate") && e.contains("Renode"),
            "{e}"
        );
    }
}
