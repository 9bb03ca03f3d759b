//! The fleet seen from a host or another gateway: records, claims, and requests sent to the
//! owner of a device.

use std::time::Duration;

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::accept::{Acceptance, Seen};
use super::{
    connect, now_ms, request_subject, Auth, Claim, FleetError, BUCKET_CLAIMS, BUCKET_DEVICES,
    BUCKET_GATEWAYS, HDR_ACCEPTED, HDR_FENCE, HDR_GATEWAY,
};

/// How long a request may go without its reply, on top of its `result_timeout_ms`.
pub const REQUEST_SLACK: Duration = Duration::from_secs(120);
/// How long a requester waits for the owner's acceptance ([`HDR_ACCEPTED`]) before it sends
/// the request again: the owner accepts after one fencing check (a KV get, milliseconds).
pub const ACK_WAIT: Duration = Duration::from_secs(2);
/// How long a request is sent again while the device's subject has subscribers but none accepts
/// it (a claim changing hands: the old owner, stale, stays silent; the new one subscribes once
/// it claimed). Twice the default claim TTL: an owner frozen past its TTL is taken over by then.
/// With a longer claim TTL (the claims bucket's `max_age`) the window is that TTL plus
/// [`ACK_WAIT`]: an owner frozen for less than its TTL still serves when it wakes.
pub const ACCEPT_WINDOW: Duration = Duration::from_secs(30);
/// Most records listed (a bound on what `devices` reads).
pub const MAX_RECORDS: usize = 100_000;
/// KV reads in flight at once when a whole bucket is read.
pub const READS_IN_FLIGHT: usize = 64;

/// A connection to the fleet.
#[derive(Clone)]
pub struct FleetClient {
    pub(crate) nc: async_nats::Client,
    js: async_nats::jetstream::Context,
}

/// The final reply of a request sent through the fleet.
#[derive(Debug, Clone)]
pub struct FleetReply {
    /// The reply line (`{"id", "ok", ...}`).
    pub reply: Value,
    /// The gateway that served it (absent when no gateway did).
    pub gateway: Option<String>,
    /// The fencing token it was served under.
    pub fence: Option<u64>,
}

/// Every `(key, value)` of `b` whose key `keep` accepts, sorted by key: one key listing, then the
/// values read [`READS_IN_FLIGHT`] at a time (one at a time, 1000 boards' records took longer
/// than a reconcile pass may: docs/benchmarks.md item 11). Keys deleted meanwhile are left out;
/// `what` names the bucket in errors.
pub(crate) async fn read_bucket(
    b: &kv::Store,
    what: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<(String, bytes::Bytes)>, FleetError> {
    let listing = |e: &dyn std::fmt::Display| FleetError::js(&format!("listing {what}"), e);
    let mut keys = b.keys().await.map_err(|e| listing(&e))?.take(MAX_RECORDS);
    let mut names = Vec::new();
    while let Some(k) = keys.next().await {
        let k = k.map_err(|e| listing(&e))?;
        if keep(&k) {
            names.push(k);
        }
    }
    names.sort();
    let values: Vec<_> = futures_util::stream::iter(names)
        .map(|k| {
            let b = b.clone();
            async move {
                let v = b.get(&k).await;
                (k, v)
            }
        })
        .buffered(READS_IN_FLIGHT)
        .collect()
        .await;
    Ok(values
        .into_iter()
        .filter_map(|(k, v)| match v {
            Ok(Some(v)) => Some((k, v)),
            _ => None,
        })
        .collect())
}

/// The Device records with `status.online` (owned by the gateway of a live claim and reported
/// up) and `status.claimed` set from the `(device, claim)` entries of the claims bucket.
pub(crate) fn join_devices(devices: Vec<Value>, claims: Vec<(String, Value)>) -> Vec<Value> {
    let claims: std::collections::HashMap<String, Claim> = claims
        .into_iter()
        .filter_map(|(k, v)| serde_json::from_value(v).ok().map(|c| (k, c)))
        .collect();
    let mut out = Vec::with_capacity(devices.len());
    for mut d in devices {
        let name = d["metadata"]["name"].as_str().unwrap_or_default();
        let owner = claims.get(name);
        let owned = owner
            .as_ref()
            .is_some_and(|c| Some(c.gateway.as_str()) == d["status"]["gateway"].as_str());
        let online = owned && d["status"]["online"] == true;
        d["status"]["online"] = online.into();
        d["status"]["claimed"] = owner.is_some().into();
        out.push(d);
    }
    out
}

fn error_reply(id: &Value, code: &str, message: String, help: &str) -> Value {
    json!({"id": id, "ok": false, "error": {"code": code, "message": message, "help": help}})
}

impl FleetClient {
    /// Connects to the fleet's servers.
    pub async fn connect(url: &str, auth: &Auth) -> Result<Self, FleetError> {
        Self::from_client(connect(url, auth).await?).await
    }

    /// Wraps an existing connection.
    pub async fn from_client(nc: async_nats::Client) -> Result<Self, FleetError> {
        let js = async_nats::jetstream::new(nc.clone());
        Ok(FleetClient { nc, js })
    }

    /// The JetStream context of this connection.
    pub fn jetstream(&self) -> async_nats::jetstream::Context {
        self.js.clone()
    }

    async fn bucket(&self, name: &str) -> Result<Option<kv::Store>, FleetError> {
        match self.js.get_key_value(name).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == async_nats::jetstream::context::KeyValueErrorKind::GetBucket => {
                // Absent bucket (no gateway joined yet) or JetStream unreachable: tell apart.
                super::jetstream_info(&self.nc).await.map(|()| None)
            }
            Err(e) => Err(FleetError::js(name, e)),
        }
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Value>, FleetError> {
        let Some(b) = self.bucket(bucket).await? else {
            return Ok(None);
        };
        match b.get(key).await {
            Ok(Some(v)) => Ok(serde_json::from_slice(&v).ok()),
            Ok(None) => Ok(None),
            Err(e) => Err(FleetError::js(&format!("{bucket}/{key}"), e)),
        }
    }

    async fn all(&self, bucket: &str) -> Result<Vec<Value>, FleetError> {
        Ok(self
            .entries(bucket)
            .await?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Every `(key, JSON value)` of `bucket`, sorted by key ([`read_bucket`]). Values that are
    /// not JSON are left out.
    async fn entries(&self, bucket: &str) -> Result<Vec<(String, Value)>, FleetError> {
        let Some(b) = self.bucket(bucket).await? else {
            return Ok(Vec::new());
        };
        Ok(read_bucket(&b, bucket, |_| true)
            .await?
            .into_iter()
            .filter_map(|(k, v)| serde_json::from_slice(&v).ok().map(|v| (k, v)))
            .collect())
    }

    /// The live claim on `device`, if any. A claim being taken (its creating write, token 0,
    /// before the update that stamps the token: nobody serves the device yet) is not one.
    pub async fn claim(&self, device: &str) -> Result<Option<Claim>, FleetError> {
        Ok(self
            .get(BUCKET_CLAIMS, device)
            .await?
            .and_then(|v| serde_json::from_value::<Claim>(v).ok())
            .filter(|c| c.fence > 0))
    }

    /// Every Device record; `status.online` is true only while its gateway holds a live claim
    /// and reported the link up (a dead gateway's claims expire with the bucket's `max_age`).
    pub async fn devices(&self) -> Result<Vec<Value>, FleetError> {
        let claims = self.entries(BUCKET_CLAIMS).await?;
        Ok(join_devices(self.all(BUCKET_DEVICES).await?, claims))
    }

    /// Every Gateway record; `status.online` is true while its last heartbeat is younger than
    /// its claim TTL.
    pub async fn gateways(&self) -> Result<Vec<Value>, FleetError> {
        let now = now_ms();
        let mut out = self.all(BUCKET_GATEWAYS).await?;
        for g in &mut out {
            let seen = g["status"]["lastSeenMs"].as_u64().unwrap_or(0);
            let ttl = g["status"]["claimTtlMs"].as_u64().unwrap_or(0);
            g["status"]["online"] = (now.saturating_sub(seen) < ttl).into();
        }
        Ok(out)
    }

    /// The `devices` op result over the whole fleet (`gateway` and `labels` added per device).
    pub async fn devices_result(&self) -> Result<Value, FleetError> {
        let now = now_ms();
        let devices: Vec<Value> = self
            .devices()
            .await?
            .into_iter()
            .map(|d| {
                let s = &d["status"];
                json!({
                    "name": d["metadata"]["name"],
                    "endpoint": d["spec"]["endpoint"],
                    "online": s["online"],
                    "last_seen_ms_ago": s["lastSeenMs"].as_u64().map(|t| now.saturating_sub(t)),
                    "board": s["board"],
                    "firmware": s["firmware"],
                    "proto": s["proto"],
                    "slots_used": s["slotsUsed"],
                    "slots_total": s["slotsTotal"],
                    "gateway": s["gateway"],
                    "labels": d["metadata"]["labels"],
                })
            })
            .collect();
        Ok(json!({"api_version": wasmbed_api::API_VERSION, "devices": devices}))
    }

    /// How long a claim lives without renewal (the claims bucket's `max_age`), when known.
    async fn claims_ttl(&self) -> Option<Duration> {
        let b = self.bucket(BUCKET_CLAIMS).await.ok()??;
        let age = b.stream.cached_info().config.max_age;
        (!age.is_zero()).then_some(age)
    }

    /// The error reply for a request on `dev` when no gateway holds its claim (`DEVICE_UNKNOWN`
    /// without a Device record, `DEVICE_OFFLINE` with one); `None` when it is claimed.
    async fn unclaimed_reply(&self, dev: &str, id: &Value) -> Result<Option<Value>, FleetError> {
        if self.claim(dev).await?.is_some() {
            return Ok(None);
        }
        let known = self.get(BUCKET_DEVICES, dev).await?.is_some();
        let (code, help) = if known {
            ("DEVICE_OFFLINE", "no gateway holds its claim now: check the gateway that owned it (`wasmbed-host --fleet … devices`)")
        } else {
            (
                "DEVICE_UNKNOWN",
                "list the fleet's devices with `wasmbed-host --fleet … devices`",
            )
        };
        Ok(Some(error_reply(
            id,
            code,
            format!("no gateway of the fleet owns device {dev}"),
            help,
        )))
    }

    /// Sends one request (`req` with `device` and `id`, `body` its upload bytes) to the owner
    /// of the device; `on_event` gets its events. Fails at once, with a reply, when nobody owns
    /// the device or nobody serves its subject.
    pub async fn request(
        &self,
        req: &Value,
        body: &[u8],
        mut on_event: impl FnMut(Value),
    ) -> Result<FleetReply, FleetError> {
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        let no_reply = |reply| FleetReply {
            reply,
            gateway: None,
            fence: None,
        };
        let Some(dev) = req.get("device").and_then(Value::as_str) else {
            return Ok(no_reply(error_reply(
                &id,
                "BAD_REQUEST",
                "a fleet request needs `device`".into(),
                "name the device",
            )));
        };
        if let Some(r) = self.unclaimed_reply(dev, &id).await? {
            return Ok(no_reply(r));
        }
        let inbox = self.nc.new_inbox();
        let mut sub = self
            .nc
            .subscribe(inbox.clone())
            .await
            .map_err(|e| FleetError::js("subscribe", e))?;
        let mut payload = serde_json::to_vec(req).expect("JSON");
        payload.push(b'\n');
        payload.extend_from_slice(body);
        let max = self.nc.server_info().max_payload;
        if payload.len() > max {
            return Ok(no_reply(error_reply(
                &id,
                "TOO_LARGE",
                format!(
                    "request of {} bytes over the fleet's max_payload of {max} bytes",
                    payload.len()
                ),
                "raise max_payload in the nats-server configuration, or deploy through the device's gateway directly",
            )));
        }
        let payload = bytes::Bytes::from(payload);
        let publish = || async {
            self.nc
                .publish_with_reply(request_subject(dev), inbox.clone(), payload.clone())
                .await
                .map_err(|e| FleetError::js("publish", e))
        };
        publish().await?;
        let wait_ms = req
            .get("result_timeout_ms")
            .and_then(Value::as_u64)
            .unwrap_or(wasmbed_api::RESULT_TIMEOUT_DEFAULT_MS)
            .min(wasmbed_api::RESULT_TIMEOUT_MAX_MS);
        let reply_within = REQUEST_SLACK + Duration::from_millis(wait_ms);
        // Until an owner accepts, the request is sent again (same inbox: an owner that accepted
        // late serves it once) with backoff, for up to ACCEPT_WINDOW, or the claim TTL when
        // longer (looked up once the window is over): an owner frozen for less than its TTL
        // still serves the copies it finds when it wakes, so until then "not run" is not known.
        let sent_at = tokio::time::Instant::now();
        let mut accept_by = sent_at + ACCEPT_WINDOW;
        let mut window_checked = false;
        let mut resend_in = {
            use backon::BackoffBuilder;
            backon::ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(1))
                .without_max_times()
                .build()
        };
        // Which lines count: fleet/accept.rs.
        let mut inbox_state = Acceptance::default();
        let mut deadline = tokio::time::Instant::now() + ACK_WAIT;
        loop {
            let msg = match tokio::time::timeout_at(deadline, sub.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(FleetError::JetStream("connection closed".into())),
                Err(_)
                    if !inbox_state.is_accepted() && !window_checked && {
                        tokio::time::Instant::now() >= accept_by
                    } =>
                {
                    window_checked = true;
                    if let Some(ttl) = self.claims_ttl().await {
                        accept_by = accept_by.max(sent_at + ttl + ACK_WAIT);
                    }
                    deadline = tokio::time::Instant::now();
                    continue;
                }
                Err(_) if !inbox_state.is_accepted() && tokio::time::Instant::now() < accept_by => {
                    if let Some(r) = self.unclaimed_reply(dev, &id).await? {
                        return Ok(no_reply(r));
                    }
                    tokio::time::sleep(resend_in.next().unwrap_or(Duration::from_secs(1))).await;
                    tracing::debug!(
                        device = dev,
                        "fleet: request not accepted yet, sending again"
                    );
                    publish().await?;
                    deadline = tokio::time::Instant::now() + ACK_WAIT;
                    continue;
                }
                Err(_) if !inbox_state.is_accepted() => {
                    let holder = match self.claim(dev).await {
                        Ok(Some(c)) => format!(" (its claim names gateway {})", c.gateway),
                        _ => String::new(),
                    };
                    let refusal = inbox_state
                        .last_refusal()
                        .map(|r| format!("; last refusal: {r}"))
                        .unwrap_or_default();
                    return Ok(no_reply(error_reply(
                        &id,
                        "TIMEOUT",
                        format!(
                            "no gateway accepted the request for {dev} within {} s{holder}{refusal}",
                            (accept_by - sent_at).as_secs()
                        ),
                        "check the owning gateway (`wasmbed-host --fleet … gateways`); the request was not run",
                    )));
                }
                Err(_) => {
                    return Ok(no_reply(error_reply(
                        &id,
                        "TIMEOUT",
                        format!("no reply from the owner of {dev}"),
                        "check the owning gateway (`wasmbed-host --fleet … gateways`)",
                    )))
                }
            };
            if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                return Ok(no_reply(error_reply(
                    &id,
                    "DEVICE_OFFLINE",
                    format!("device {dev} is claimed but no gateway serves it now"),
                    "retry in a moment: its claim is being taken over or expires",
                )));
            }
            let header = |k: &str| {
                msg.headers
                    .as_ref()
                    .and_then(|h| h.get(k))
                    .map(|v| v.as_str().to_string())
            };
            let was_accepted = inbox_state.is_accepted();
            let seen = inbox_state.on_message(
                (header(HDR_GATEWAY), header(HDR_FENCE)),
                header(HDR_ACCEPTED).is_some(),
                &msg.payload,
            );
            if !was_accepted && inbox_state.is_accepted() {
                deadline = tokio::time::Instant::now() + reply_within;
            }
            let v = match seen {
                Seen::Nothing => continue,
                Seen::Event(v) => {
                    on_event(v);
                    continue;
                }
                Seen::Reply(v) => v,
            };
            return Ok(FleetReply {
                reply: v,
                gateway: header(HDR_GATEWAY),
                fence: header(HDR_FENCE).and_then(|f| f.parse().ok()),
            });
        }
    }
}
