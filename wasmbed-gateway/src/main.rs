//! `wasmbed-gateway`: parses flags, loads the config and runs the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use wasmbed_gateway::config::Config;

/// The Wasmbed gateway: owns device links, compiles and validates modules, serves hosts.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "WASMBED_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// A device as NAME=ENDPOINT; repeatable. ENDPOINT is serial:PATH (serial:/dev/ttyACM0), a
    /// bare port name (/dev/ttyUSB0, COM3), usb:VID:PID[:SERIAL] (4-digit hex ids as
    /// `wasmbed-host ports` prints them, e.g. usb:0483:374b; found again after a replug),
    /// tcp:HOST:PORT or tcp:PORT (localhost). All but bare names take ?baud=N and ?max_baud=N
    /// (joined by &): serial:/dev/ttyACM0?baud=115200.
    #[arg(long = "device", value_name = "NAME=ENDPOINT")]
    devices: Vec<String>,
    /// Host API address (non-loopback needs --token-file or --tls-client-ca).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Serve the dashboard and the HTTP API on this address (non-loopback needs --token-file).
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// File holding the token hosts must send.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Serve TLS 1.3 on the host API and HTTP listeners with this PEM certificate chain
    /// (needs --tls-key; docs/SECURITY.md).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (mode 0600).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by the CA(s) in this PEM file (mutual TLS).
    #[arg(long, value_name = "FILE")]
    tls_client_ca: Option<PathBuf>,
    /// Let legacy host.py generation-1 requests name files under DIR (wasm_path, source_path);
    /// repeatable, adds to the config's `legacy.path_dirs`. Off by default.
    #[arg(long = "legacy-path-dir", value_name = "DIR")]
    legacy_path_dirs: Vec<PathBuf>,
    /// State directory: approved device identity keys (default $XDG_STATE_HOME/wasmbed-gateway).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Enrollment of devices with a new identity key: `approve` (pending until
    /// `wasmbed-host devices approve NAME`) or `tofu` (trust on first use).
    #[arg(long, value_name = "MODE")]
    enrollment: Option<wasmbed_gateway::identity::Enrollment>,
    /// Refuse commands to devices without an identity key (legacy v1 firmware included).
    #[arg(long)]
    require_identity: bool,
    /// Start the simulated board as device `sim`.
    #[arg(long)]
    sim: bool,
    /// Like --sim, but reach the simulated board over a pseudo-terminal at 115200 baud (the
    /// serial-port path) instead of TCP.
    #[arg(long)]
    sim_pty: bool,
    /// Runtime threads: 1 (default) runs every task on one thread, N > 1 on N worker threads,
    /// 0 one per CPU. One thread answers fastest (no wake-ups across threads: ~0.05 ms less per
    /// request, docs/benchmarks.md) and serves 1000 boards; more threads only help when the
    /// gateway itself is CPU-bound.
    #[arg(long, env = "WASMBED_GATEWAY_THREADS", default_value_t = 1)]
    threads: usize,
    /// Join a fleet: NATS server URL(s), comma-separated (docs/FLEET.md). Needs --gateway-id.
    #[arg(long, env = "WASMBED_FLEET", value_name = "nats://HOST:PORT[,…]")]
    fleet: Option<String>,
    /// This gateway's id in the fleet.
    #[arg(long, env = "WASMBED_GATEWAY_ID")]
    gateway_id: Option<String>,
    /// File holding the NATS token of the fleet.
    #[arg(long)]
    fleet_token_file: Option<PathBuf>,
    /// NATS credentials file (.creds) of the fleet.
    #[arg(long)]
    fleet_creds: Option<PathBuf>,
    /// Claim TTL in milliseconds (a dead gateway's devices show offline after it).
    #[arg(long)]
    fleet_claim_ttl_ms: Option<u64>,
    /// JetStream replicas of the fleet's buckets when this gateway creates them (3 on a 3-node
    /// cluster).
    #[arg(long)]
    fleet_replicas: Option<usize>,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or the journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let rt = match cli.threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wasmbed-gateway: cannot start the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasmbed-gateway: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = match &cli.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    for d in &cli.devices {
        cfg.apply_device_flag(d)?;
    }
    if let Some(l) = cli.listen {
        cfg.listen = l;
    }
    if cli.http.is_some() {
        cfg.http = cli.http;
    }
    if cli.token_file.is_some() {
        cfg.token_file = cli.token_file;
    }
    if let (Some(cert), Some(key)) = (&cli.tls_cert, &cli.tls_key) {
        let t = cfg
            .tls
            .get_or_insert_with(|| wasmbed_gateway::tls::TlsConfig {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: None,
                plaintext_loopback: false,
            });
        t.cert = cert.clone();
        t.key = key.clone();
    }
    if let Some(ca) = &cli.tls_client_ca {
        cfg.tls
            .as_mut()
            .ok_or("--tls-client-ca needs --tls-cert and --tls-key (or [tls] in the config)")?
            .client_ca = Some(ca.clone());
    }
    if let Some(url) = &cli.fleet {
        let id = cli
            .gateway_id
            .clone()
            .or_else(|| cfg.fleet.as_ref().map(|f| f.gateway_id.clone()))
            .ok_or("--fleet needs --gateway-id ID (unique in the fleet)")?;
        let mut f = cfg
            .fleet
            .take()
            .unwrap_or_else(|| wasmbed_gateway::fleet::FleetConfig::new(url.clone(), id.clone()));
        f.url = url.clone();
        f.gateway_id = id;
        cfg.fleet = Some(f);
    } else if let (Some(id), Some(f)) = (&cli.gateway_id, cfg.fleet.as_mut()) {
        f.gateway_id = id.clone();
    }
    if let Some(f) = cfg.fleet.as_mut() {
        if let Some(p) = &cli.fleet_token_file {
            f.auth.token = Some(wasmbed_gateway::config::read_secret(
                "command line",
                "--fleet-token-file",
                p,
            )?);
        }
        if cli.fleet_creds.is_some() {
            f.auth.creds_file = cli.fleet_creds.clone();
        }
        if let Some(ms) = cli.fleet_claim_ttl_ms {
            f.claim_ttl = std::time::Duration::from_millis(ms);
        }
        if let Some(r) = cli.fleet_replicas {
            f.replicas = r;
        }
    } else if cli.gateway_id.is_some() {
        return Err("--gateway-id needs --fleet nats://… (or [fleet] in the config)".into());
    }
    cfg.legacy.path_dirs.extend(cli.legacy_path_dirs);
    if let Some(d) = cli.state_dir {
        cfg.state_dir = d;
    }
    if let Some(e) = cli.enrollment {
        cfg.identity.enrollment = e;
    }
    if cli.require_identity {
        cfg.identity.allow_anonymous = false;
    }
    cfg.sim |= cli.sim || cli.sim_pty;
    cfg.sim_pty |= cli.sim_pty;
    // Handled from before "listening on": a SIGTERM right after start still cleans up.
    #[cfg(unix)]
    let (mut term, mut int) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        )
    };
    let running = wasmbed_gateway::run::start(cfg).await?;
    let scheme = if running.tls { "tls://" } else { "" };
    println!("listening on {scheme}{}", running.addr);
    if let Some(a) = running.http_addr {
        let scheme = if running.tls { "https" } else { "http" };
        println!("dashboard on {scheme}://{a}/");
    }
    for d in &running.devices {
        println!("device {} at {}", d.name, d.endpoint);
    }
    if let Some(m) = &running.fleet {
        println!("fleet member {}", m.gateway_id());
    }
    // SIGINT or SIGTERM: stop, and take the simulated board down with us (kill on drop).
    #[cfg(unix)]
    {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    if let Some(m) = &running.fleet {
        m.leave().await;
    }
    drop(running.sim);
    // Compilers run in their own process groups: take them down too.
    wasmbed_gateway::pipeline::confine::kill_all();
    // And their directories (a gateway that died without this is cleaned up by the next one).
    wasmbed_gateway::pipeline::workdirs::remove_own();
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use wasmbed_gateway::endpoint::Endpoint;

    use super::Cli;

    /// `--device`'s help names every endpoint form the parser takes, and its examples parse.
    #[test]
    fn the_device_help_lists_every_endpoint_form() {
        let cmd = Cli::command();
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_id() == "devices")
            .expect("--device");
        let help = arg.get_help().expect("help").to_string();
        let examples = [
            "serial:/dev/ttyACM0",
            "/dev/ttyUSB0",
            "COM3",
            "usb:0483:374b",
            "serial:/dev/ttyACM0?baud=115200",
        ];
        for form in [
            "serial:PATH",
            "usb:VID:PID[:SERIAL]",
            "tcp:HOST:PORT",
            "tcp:PORT",
            "?baud=N",
            "?max_baud=N",
        ]
        .iter()
        .chain(&examples)
        {
            assert!(help.contains(form), "`{form}` missing from: {help}");
        }
        for e in examples {
            e.parse::<Endpoint>()
                .unwrap_or_else(|err| panic!("{e}: {err}"));
        }
        let usb = "usb:0483:374b:066DFF?baud=9600&max_baud=921600";
        assert!(matches!(usb.parse(), Ok(Endpoint::Usb { .. })), "{usb}");
        for tcp in ["tcp:localhost:3456", "tcp:3456"] {
            assert!(matches!(tcp.parse(), Ok(Endpoint::Tcp { .. })), "{tcp}");
        }
    }
}
