//! Starting a whole gateway from a [`Config`]: devices, optional simulator, API listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api::{serve, Gateway};
use crate::config::Config;
use crate::device::{spawn_device, DeviceHandle, DeviceOptions};
use crate::link::EndpointConnector;
use crate::pipeline::{AotTarget, Compiler};
use crate::sim::{find_sim, start_sim, SimChild, SimLink};

/// A running gateway.
pub struct Running {
    /// The API address actually bound.
    pub addr: SocketAddr,
    /// Device handles.
    pub devices: Vec<DeviceHandle>,
    /// The simulator child, if started (killed on drop).
    pub sim: Option<SimChild>,
    /// The API server task.
    pub server: tokio::task::JoinHandle<()>,
    /// Fleet membership, when the config has a fleet.
    pub fleet: Option<Arc<crate::fleet::Member>>,
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
    cfg.validate()?;
    let token = match &cfg.token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| {
                    StartError::Io(format!("cannot read token file {}: {e}", p.display()))
                })?
                .trim()
                .to_string(),
        )
        .filter(|t| !t.is_empty())
        .ok_or_else(|| StartError::Io(format!("token file {} is empty", p.display())))
        .map(Some)?,
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
        let child = start_sim(&find_sim(cfg.sim_path.as_deref()), link)
            .await
            .map_err(|e| StartError::Io(format!("--sim: {e} (build it with `cargo build -p wasmbed-agent-sim` or set WASMBED_AGENT_SIM)")))?;
        let mut o = DeviceOptions::new("sim", Arc::new(EndpointConnector(child.endpoint.clone())));
        o.log_lines = cfg.limits.log_lines;
        devices.push(spawn_device(o));
        sim = Some(child);
    }
    for d in &cfg.devices {
        let mut o = DeviceOptions::new(
            d.name.clone(),
            Arc::new(EndpointConnector(d.endpoint.clone())),
        );
        o.health_interval = d.health_interval_ms.map(Duration::from_millis);
        o.timeouts.link_bytes_per_sec = (d.baud / 10).max(1);
        o.log_lines = cfg.limits.log_lines;
        o.aot = d.aot_target.clone().map(|target| AotTarget {
            target,
            cpu: d.aot_cpu.clone(),
            abi: d.aot_abi.clone(),
        });
        devices.push(spawn_device(o));
    }
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| StartError::Io(format!("cannot listen on {}: {e}", cfg.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Io(e.to_string()))?;
    let compiler = Compiler::new(cfg.compiler.clone(), cfg.cache_dir.clone());
    let gw = Arc::new(Gateway::new(devices.clone(), compiler, cfg.limits, token));
    let fleet = match cfg.fleet {
        Some(f) => {
            let m = crate::fleet::Member::join(f, gw.clone()).await?;
            let _ = gw.fleet.set(m.clone());
            Some(m)
        }
        None => None,
    };
    let server = tokio::spawn(serve(listener, gw));
    Ok(Running {
        addr,
        devices,
        sim,
        server,
        fleet,
    })
}
