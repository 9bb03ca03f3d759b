//! The fleet: many gateways joined through NATS JetStream (docs/FLEET.md).
//!
//! - [`member`]: a gateway in the fleet claims each of its devices in the claims bucket
//!   (create, then update with the expected revision on every heartbeat; the bucket's `max_age`
//!   expires the claims of a gateway that died), serves a claimed device's requests on
//!   `wasmbed.dev.<device>.req`, publishes its log on `wasmbed.evt.<device>.<kind>` and keeps the
//!   Gateway and Device records (Kubernetes-shaped) in KV.
//! - [`client`]: what hosts and other gateways use: list the fleet, send a request to the owner
//!   of a device.
//! - [`bridge`]: the JSON-lines host API served from the fleet (`wasmbed-host --fleet`) and the
//!   gateway's forwarding of requests for devices it does not serve.
//! - [`mirror`]: a KV bucket kept in memory from a watch (the reconcile pass reads these).
//! - [`harness`]: real `nats-server` processes for tests.
//!
//! Designed for nats-server 2.9 (Debian 12): no per-message TTL, no KV subject transforms.

pub mod accept;
pub mod aot;
pub mod apps;
pub mod bridge;
pub mod client;
pub mod harness;
pub mod member;
pub mod mirror;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use client::{FleetClient, FleetReply};
pub use member::{Fenced, Member};

/// `apiVersion` of every record.
pub const API_VERSION: &str = "wasmbed.dev/v1alpha1";
/// Claims (key: device name; value: [`Claim`]); `max_age` = the claim TTL.
pub const BUCKET_CLAIMS: &str = "wasmbed-claims";
/// Device records (kind `Device`, key: device name). Kept after the owner dies (shown offline).
pub const BUCKET_DEVICES: &str = "wasmbed-devices";
/// Gateway records (kind `Gateway`, key: gateway id).
pub const BUCKET_GATEWAYS: &str = "wasmbed-gateways";
/// Reply header: the fencing token (the claim's creation revision) the reply was served under.
pub const HDR_FENCE: &str = "Wasmbed-Fence";
/// Reply header: the id of the gateway that served the request.
pub const HDR_GATEWAY: &str = "Wasmbed-Gateway";
/// Header of the empty message an owner sends to the reply inbox first, once its fencing check
/// passed and before the request reaches the device: "accepted, the reply follows". A requester
/// that gets no acceptance within [`client::ACK_WAIT`] sends the request again (same inbox).
pub const HDR_ACCEPTED: &str = "Wasmbed-Accepted";
/// Default claim TTL (the claims bucket's `max_age`); heartbeats renew every third of it.
pub const DEFAULT_CLAIM_TTL: Duration = Duration::from_secs(15);

/// A device name as one subject token: `.` (allowed in names) would split the token.
pub fn subject_token(device: &str) -> String {
    device.replace('.', "~")
}

/// The subject a device's owner serves requests on.
pub fn request_subject(device: &str) -> String {
    format!("wasmbed.dev.{}.req", subject_token(device))
}

/// The subject of a device's events of one kind (`log`, `console`, `result`, `hello`,
/// `gateway`, `progress`).
pub fn event_subject(device: &str, kind: &str) -> String {
    format!("wasmbed.evt.{}.{kind}", subject_token(device))
}

/// How to reach the fleet and who this gateway is in it.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// NATS server URLs, comma-separated (`nats://a:4222,nats://b:4222`).
    pub url: String,
    /// This gateway's id (unique in the fleet; `[A-Za-z0-9_-]`).
    pub gateway_id: String,
    /// Credentials.
    pub auth: Auth,
    /// Claim TTL (the claims bucket's `max_age`, set by whoever creates the bucket first).
    pub claim_ttl: Duration,
    /// JetStream replicas of the buckets this gateway creates (3 on a 3-node cluster).
    pub replicas: usize,
    /// Labels per device name.
    pub labels: BTreeMap<String, BTreeMap<String, String>>,
}

impl FleetConfig {
    /// A config with defaults for everything but the URL and the id.
    pub fn new(url: impl Into<String>, gateway_id: impl Into<String>) -> Self {
        FleetConfig {
            url: url.into(),
            gateway_id: gateway_id.into(),
            auth: Auth::default(),
            claim_ttl: DEFAULT_CLAIM_TTL,
            replicas: 1,
            labels: BTreeMap::new(),
        }
    }
}

/// NATS credentials (at most one kind is used: creds file, then token, then user/password).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Auth {
    /// A `.creds` file (JWT + NKey).
    pub creds_file: Option<PathBuf>,
    /// A token.
    pub token: Option<String>,
    /// User name (with `password`).
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
}

/// Fleet errors: each says what to check.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The NATS servers could not be reached or refused the credentials.
    #[error("cannot reach the fleet at {url}: {message} (is nats-server running with -js, and are the credentials right?)")]
    Connect {
        /// The URL(s).
        url: String,
        /// What failed.
        message: String,
    },
    /// A JetStream call failed.
    #[error("fleet: {0}")]
    JetStream(String),
    /// An invalid setting.
    #[error("fleet config: {0}")]
    Config(String),
}

impl FleetError {
    fn js(what: &str, e: impl std::fmt::Display) -> Self {
        FleetError::JetStream(format!("{what}: {e}"))
    }
}

/// Connects to the fleet's NATS servers.
pub async fn connect(url: &str, auth: &Auth) -> Result<async_nats::Client, FleetError> {
    let err = |message: String| FleetError::Connect {
        url: url.to_string(),
        message,
    };
    let mut opts = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect();
    if let Some(f) = &auth.creds_file {
        opts = opts
            .credentials_file(f)
            .await
            .map_err(|e| err(format!("credentials file {}: {e}", f.display())))?;
    } else if let Some(t) = &auth.token {
        opts = opts.token(t.clone());
    } else if let (Some(u), Some(p)) = (&auth.user, &auth.password) {
        opts = opts.user_and_password(u.clone(), p.clone());
    }
    let urls: Vec<&str> = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        return Err(err("no URL given".into()));
    }
    // retry_on_initial_connect makes connect return at once; wait (bounded) for the first
    // connection so a wrong URL fails here, not at the first request.
    let client = opts
        .connect(urls.as_slice())
        .await
        .map_err(|e| err(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.connection_state() != async_nats::connection::State::Connected {
        if tokio::time::Instant::now() > deadline {
            return Err(err("no server answered within 10 s".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(client)
}

/// Asks JetStream for the account info (raw `$JS.API.INFO`: async-nats's typed account info
/// does not parse a 2.9 server's answer). `Ok(())` when JetStream is enabled and has a leader.
pub async fn jetstream_info(client: &async_nats::Client) -> Result<(), FleetError> {
    let msg = tokio::time::timeout(
        Duration::from_secs(2),
        client.request("$JS.API.INFO", bytes::Bytes::new()),
    )
    .await
    .map_err(|_| FleetError::JetStream("no JetStream answer within 2 s".into()))?
    .map_err(|e| FleetError::js("JetStream", e))?;
    let v: serde_json::Value = serde_json::from_slice(&msg.payload)
        .map_err(|e| FleetError::js("JetStream account info", e))?;
    match v.get("error") {
        None => Ok(()),
        Some(e) => Err(FleetError::JetStream(format!(
            "{} (is nats-server started with -js?)",
            e.get("description")
                .and_then(|d| d.as_str())
                .unwrap_or("error")
        ))),
    }
}

/// Waits (bounded) until JetStream answers on this connection: a fresh cluster needs a few
/// seconds to elect its meta leader.
pub async fn wait_jetstream(
    client: &async_nats::Client,
    within: Duration,
) -> Result<(), FleetError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match jetstream_info(client).await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() > deadline => {
                return Err(FleetError::JetStream(format!(
                    "JetStream not ready within {within:?}: {e}"
                )))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A claim's value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Claim {
    /// The owning gateway.
    pub gateway: String,
    /// Fencing token: the revision that created this claim (0 in the creating write itself).
    pub fence: u64,
    /// When the owner last renewed it (unix ms).
    pub renewed_ms: u64,
}
