//! `--fleet nats://…`: the host reaches every device of a fleet (docs/FLEET.md).
//!
//! A bridge thread connects to the fleet and serves the gateway's Wasmbed dialect on a loopback
//! port ([`wasmbed_gateway::fleet::bridge`]): `devices` lists every device of every gateway,
//! each request goes to the subject of its device and so to the gateway that owns it. Every
//! command then runs unchanged against that port; `--all` and `--selector` fan out over the
//! fleet's devices with the commands' own per-device output.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use wasmbed_gateway::fleet::{Auth, FleetClient};

use crate::cli::{Globals, Targets};
use crate::error::HostError;

/// How long connecting to the fleet (and resolving a selector) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A running bridge to the fleet.
pub struct Bridge {
    /// The loopback address the commands talk to.
    pub addr: SocketAddr,
    /// `--selector`: the matching devices.
    pub selected: Option<Vec<String>>,
}

/// Parses `k=v[,k=v…]`.
pub fn parse_selector(s: &str) -> Result<BTreeMap<String, String>, HostError> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| HostError::Usage(format!("--selector: `{p}` is not KEY=VALUE")))
        })
        .collect()
}

/// Whether a Device record's labels hold every pair of `sel`.
pub fn matches(device: &serde_json::Value, sel: &BTreeMap<String, String>) -> bool {
    sel.iter()
        .all(|(k, v)| device["metadata"]["labels"][k].as_str() == Some(v.as_str()))
}

fn auth_from_env() -> Result<Auth, HostError> {
    let mut auth = Auth::default();
    if let Some(p) = std::env::var_os("WASMBED_FLEET_TOKEN_FILE") {
        let t = std::fs::read_to_string(&p).map_err(|source| HostError::ReadFile {
            path: std::path::PathBuf::from(&p).display().to_string(),
            source,
        })?;
        auth.token = Some(t.trim().to_string());
    }
    auth.creds_file = std::env::var_os("WASMBED_FLEET_CREDS").map(Into::into);
    Ok(auth)
}

impl Bridge {
    /// Connects to the fleet at `url` and serves the bridge on a thread of its own.
    pub fn start(url: &str, selector: Option<&str>) -> Result<Bridge, HostError> {
        let sel = selector.map(parse_selector).transpose()?;
        let auth = auth_from_env()?;
        let unreachable = |reason: String| HostError::Unreachable {
            addr: url.to_string(),
            reason,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let url_owned = url.to_string();
        std::thread::Builder::new()
            .name("fleet-bridge".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let setup = async {
                        let client = FleetClient::connect(&url_owned, &auth)
                            .await
                            .map_err(|e| e.to_string())?;
                        let selected = match &sel {
                            Some(sel) => Some(
                                client
                                    .devices()
                                    .await
                                    .map_err(|e| e.to_string())?
                                    .into_iter()
                                    .filter(|d| matches(d, sel))
                                    .filter_map(|d| {
                                        d["metadata"]["name"].as_str().map(str::to_string)
                                    })
                                    .collect::<Vec<_>>(),
                            ),
                            None => None,
                        };
                        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                            .await
                            .map_err(|e| format!("bridge listener: {e}"))?;
                        let addr = listener.local_addr().map_err(|e| e.to_string())?;
                        Ok::<_, String>((client, listener, addr, selected))
                    };
                    match tokio::time::timeout(CONNECT_TIMEOUT, setup).await {
                        Ok(Ok((client, listener, addr, selected))) => {
                            let _ = tx.send(Ok((addr, selected)));
                            wasmbed_gateway::fleet::bridge::serve(listener, client).await;
                        }
                        Ok(Err(e)) => {
                            let _ = tx.send(Err(e));
                        }
                        Err(_) => {
                            let _ = tx.send(Err(format!("no answer within {CONNECT_TIMEOUT:?}")));
                        }
                    }
                });
            })
            .map_err(|e| unreachable(e.to_string()))?;
        let (addr, selected) = rx
            .recv_timeout(CONNECT_TIMEOUT + Duration::from_secs(5))
            .map_err(|_| unreachable("the fleet bridge did not start".into()))?
            .map_err(unreachable)?;
        if let Some(s) = &selected {
            if s.is_empty() {
                return Err(HostError::Usage(format!(
                    "--selector {}: no device of the fleet has these labels (see `wasmbed-host --fleet … devices --json`)",
                    selector.unwrap_or_default()
                )));
            }
        }
        Ok(Bridge { addr, selected })
    }

    /// Points the commands at the bridge and, with `--selector`, at the matching devices.
    pub fn apply(&self, g: &mut Globals) {
        g.gateway = self.addr.to_string();
        g.default_slack = wasmbed_gateway::fleet::client::ACCEPT_WINDOW;
        if let Some(names) = &self.selected {
            g.targets = Targets::Named(names.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors() {
        let sel = parse_selector("room=lab, board=sim").unwrap();
        let d = json!({"metadata": {"labels": {"room": "lab", "board": "sim", "x": "y"}}});
        assert!(matches(&d, &sel));
        let d = json!({"metadata": {"labels": {"room": "lab"}}});
        assert!(!matches(&d, &sel));
        assert!(parse_selector("room").is_err());
        assert!(parse_selector("=x").is_err());
    }
}
