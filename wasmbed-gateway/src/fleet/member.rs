//! A gateway as a member of the fleet: device claims, per-device request serving, log events,
//! Gateway and Device records.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use async_nats::HeaderMap;
use futures_util::StreamExt;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::{
    connect, event_subject, now_ms, request_subject, wait_jetstream, Claim, FleetClient,
    FleetConfig, FleetError, API_VERSION, BUCKET_CLAIMS, BUCKET_DEVICES, BUCKET_GATEWAYS,
    HDR_ACCEPTED, HDR_FENCE, HDR_GATEWAY,
};
use crate::api::Gateway;
use crate::device::lease::FenceCheck;
use crate::device::DeviceHandle;

#[derive(Debug, Clone)]
struct Served {
    fence: u64,
    /// When the last successful renewal was sent (the claim lives `ttl` from then at least).
    renewed: Instant,
    /// Woken when a fencing check finds the claim gone or someone else's: the claim loop
    /// drops the subscription at once instead of at its next renewal.
    revoked: Arc<tokio::sync::Notify>,
}

/// A device operation refused because this gateway's fencing token is stale (or cannot be
/// checked): the request never reaches the device.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Fenced {
    /// The claim as read from the claims bucket, when it names another gateway (that gateway
    /// answers requests sent to the device's subject).
    pub holder: Option<Claim>,
    /// What happened and what to do.
    pub message: String,
}

/// This gateway's membership in the fleet.
pub struct Member {
    cfg: FleetConfig,
    client: FleetClient,
    claims: kv::Store,
    devices: kv::Store,
    gateways: kv::Store,
    served: Mutex<HashMap<String, Served>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Device operations refused by the fencing check since the start.
    fence_refusals: AtomicU64,
    /// AOT files this gateway built for the fleet, and fetched from it.
    aot_built: AtomicU64,
    aot_fetched: AtomicU64,
    /// Reply inboxes of the requests this gateway accepted lately (a requester that missed the
    /// acceptance sends the same request again to the same inbox: served once).
    accepted: Mutex<RecentInboxes>,
}

/// Most reply inboxes remembered by [`Member`] to serve a re-sent request once: a re-send
/// comes within the acceptance window (30 s or the claim TTL), so this covers over 2000
/// accepted requests a second; about 100 bytes each.
const RECENT_INBOXES: usize = 65_536;

/// A bounded set of reply inboxes, oldest forgotten first.
#[derive(Default)]
struct RecentInboxes {
    set: std::collections::HashSet<String>,
    order: std::collections::VecDeque<String>,
}

impl RecentInboxes {
    /// True when `inbox` was not seen yet (it is remembered from now on).
    fn first(&mut self, inbox: &str) -> bool {
        if self.set.contains(inbox) {
            return false;
        }
        if self.order.len() >= RECENT_INBOXES {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(inbox.to_string());
        self.order.push_back(inbox.to_string());
        true
    }
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("gateway_id", &self.cfg.gateway_id)
            .finish()
    }
}

fn heartbeat(ttl: Duration) -> Duration {
    ttl / 3
}

/// How long opening a bucket keeps retrying a JetStream that cannot answer yet (a cluster
/// electing its meta leader, servers starved of CPU): its API requests time out meanwhile.
const BUCKET_RETRY: Duration = Duration::from_secs(20);

/// Opens a KV bucket, creating it with `cfg` when absent. The bucket's stream is created
/// directly (the KV conventions: `KV_<bucket>`, `$KV.<bucket>.>`, one message per key,
/// rollups, direct get): async-nats's `create_key_value` first reads the account info, which
/// it cannot parse from a 2.9 server. A timed-out or unavailable JetStream is retried with
/// backoff (backon) for up to [`BUCKET_RETRY`]; other errors are returned at once.
pub(crate) async fn bucket(
    js: &async_nats::jetstream::Context,
    cfg: kv::Config,
) -> Result<kv::Store, FleetError> {
    use backon::BackoffBuilder;
    let deadline = tokio::time::Instant::now() + BUCKET_RETRY;
    let mut delays = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(2))
        .without_max_times()
        .build();
    loop {
        match open_or_create_bucket(js, &cfg).await {
            Ok(s) => return Ok(s),
            Err((true, e)) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(bucket = %cfg.bucket, "JetStream not ready, retrying: {e}");
                tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(2))).await;
            }
            Err((_, e)) => return Err(e),
        }
    }
}

/// One attempt of [`bucket`]; the error says whether it is worth retrying (JetStream timed out,
/// unavailable, or answered 503).
async fn open_or_create_bucket(
    js: &async_nats::jetstream::Context,
    cfg: &kv::Config,
) -> Result<kv::Store, (bool, FleetError)> {
    use async_nats::jetstream::context::CreateStreamErrorKind as Kind;
    if let Ok(s) = js.get_key_value(&cfg.bucket).await {
        return Ok(s);
    }
    let name = cfg.bucket.clone();
    let dup = Duration::from_secs(120);
    let stream = async_nats::jetstream::stream::Config {
        name: format!("KV_{name}"),
        description: Some(cfg.description.clone()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: cfg.history,
        max_age: cfg.max_age,
        duplicate_window: if cfg.max_age.is_zero() {
            dup
        } else {
            cfg.max_age.min(dup)
        },
        num_replicas: cfg.num_replicas,
        discard: async_nats::jetstream::stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    };
    if let Err(e) = js.create_stream(stream).await {
        // Another gateway may have created it meanwhile.
        if js.get_key_value(&name).await.is_err() {
            let transient = match e.kind() {
                Kind::TimedOut | Kind::JetStreamUnavailable => true,
                Kind::JetStream(ref j) => j.code() == 503,
                _ => false,
            };
            return Err((
                transient,
                FleetError::js(&format!("creating bucket {name}"), e),
            ));
        }
    }
    js.get_key_value(&name)
        .await
        .map_err(|e| (true, FleetError::js(&format!("opening bucket {name}"), e)))
}

impl Member {
    /// Joins the fleet: connects, opens (or creates) the buckets, and starts claiming every device
    /// of `gw`. Returns once connected; claims are taken in the background.
    pub async fn join(mut cfg: FleetConfig, gw: Arc<Gateway>) -> Result<Arc<Member>, FleetError> {
        check_id(&cfg.gateway_id)?;
        if cfg.claim_ttl < Duration::from_millis(300) {
            return Err(FleetError::Config(
                "the claim TTL must be at least 300 ms".into(),
            ));
        }
        let nc = connect(&cfg.url, &cfg.auth).await?;
        wait_jetstream(&nc, Duration::from_secs(30)).await?;
        let js = async_nats::jetstream::new(nc.clone());
        let claims = bucket(
            &js,
            kv::Config {
                bucket: BUCKET_CLAIMS.into(),
                description: "wasmbed device claims (docs/FLEET.md)".into(),
                history: 1,
                max_age: cfg.claim_ttl,
                num_replicas: cfg.replicas,
                ..Default::default()
            },
        )
        .await?;
        // A claim lives the bucket's `max_age` from its last write, whatever TTL this gateway
        // was given (the bucket may predate it): serving, and the device lease, must end
        // before the claim can expire, so a shorter bucket TTL is the one used.
        match tokio::time::timeout(Duration::from_secs(10), claims.status()).await {
            Ok(Ok(st)) if !st.max_age().is_zero() && st.max_age() < cfg.claim_ttl => {
                tracing::warn!(
                    "fleet: the claims bucket keeps claims {:?}, less than this gateway's claim \
                     TTL of {:?}: using {:?} (set --fleet-claim-ttl-ms to match the fleet)",
                    st.max_age(),
                    cfg.claim_ttl,
                    st.max_age()
                );
                cfg.claim_ttl = st.max_age();
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!("fleet: cannot read the claims bucket's TTL ({e}): using {:?}; check that every gateway of the fleet has the same --fleet-claim-ttl-ms", cfg.claim_ttl);
            }
            Err(_) => {
                tracing::warn!("fleet: cannot read the claims bucket's TTL (no answer within 10 s): using {:?}; check that every gateway of the fleet has the same --fleet-claim-ttl-ms", cfg.claim_ttl);
            }
        }
        let record = |name: &str, what: &str| kv::Config {
            bucket: name.into(),
            description: format!("wasmbed {what} records (docs/FLEET.md)"),
            history: 1,
            num_replicas: cfg.replicas,
            ..Default::default()
        };
        let devices = bucket(&js, record(BUCKET_DEVICES, "Device")).await?;
        let gateways = bucket(&js, record(BUCKET_GATEWAYS, "Gateway")).await?;
        let client = FleetClient::from_client(nc).await?;
        let member = Arc::new(Member {
            cfg,
            client,
            claims,
            devices,
            gateways,
            served: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            fence_refusals: AtomicU64::new(0),
            aot_built: AtomicU64::new(0),
            aot_fetched: AtomicU64::new(0),
            accepted: Mutex::default(),
        });
        let mut tasks = Vec::new();
        for dev in gw.devices.values() {
            tasks.push(tokio::spawn(claim_loop(
                member.clone(),
                gw.clone(),
                dev.clone(),
            )));
            tasks.push(tokio::spawn(publish_log(member.clone(), dev.clone())));
        }
        tasks.push(tokio::spawn(super::apps::reconcile_loop(
            member.clone(),
            gw.clone(),
        )));
        tasks.push(tokio::spawn(gateway_record_loop(
            member.clone(),
            gw.clone(),
        )));
        member.tasks.lock().expect("tasks").extend(tasks);
        Ok(member)
    }

    /// The fencing token this gateway serves `device` under, if it holds a live claim on it.
    pub fn serves(&self, device: &str) -> Option<u64> {
        let now = Instant::now();
        self.served
            .lock()
            .expect("served")
            .get(device)
            .filter(|s| now < self.serving_until(s.renewed))
            .map(|s| s.fence)
    }

    /// The time rule: a claim renewed (renewal sent) at `renewed` is served until 9/10 of the
    /// TTL later (it lives at least a TTL from then; the tenth is for clock rates and delays).
    fn serving_until(&self, renewed: Instant) -> Instant {
        let ttl = self.cfg.claim_ttl;
        renewed + (ttl - ttl / 10)
    }

    /// The fencing check made before every operation on a fleet-claimed device: the claim is
    /// read back from the claims bucket (not from this gateway's memory) and must name this
    /// gateway under the token it serves with. Otherwise the operation is refused, and a claim
    /// found gone or someone else's ends serving the device at once. `Ok(token)` when it holds.
    pub async fn check_fence(&self, device: &str) -> Result<u64, Fenced> {
        let id = &self.cfg.gateway_id;
        let refuse = |holder: Option<Claim>, message: String| {
            self.fence_refusals.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(device, "fleet: fencing: {message}");
            Err(Fenced { holder, message })
        };
        // Not served here (the common case of a forwarded request): no refusal to count.
        let Some(fence) = self.serves(device) else {
            return Err(Fenced {
                holder: None,
                message: format!("gateway {id} holds no live claim on {device}: the operation was not sent to it; retry, the request goes to its owner"),
            });
        };
        let read =
            tokio::time::timeout(heartbeat(self.cfg.claim_ttl), self.claims.entry(device)).await;
        let claim = match read {
            Ok(Ok(Some(e))) if e.operation == kv::Operation::Put => {
                serde_json::from_slice::<Claim>(&e.value).ok()
            }
            Ok(Ok(_)) => None,
            Ok(Err(e)) => {
                return refuse(
                    None,
                    format!("gateway {id} cannot check its fencing token {fence} for {device} ({e}): the operation was not sent; check the fleet's NATS servers and retry"),
                )
            }
            Err(_) => {
                return refuse(
                    None,
                    format!("gateway {id} cannot check its fencing token {fence} for {device} (no answer from the claims bucket): the operation was not sent; check the fleet's NATS servers and retry"),
                )
            }
        };
        if let Some(c) = &claim {
            if c.gateway == *id && c.fence == fence {
                return Ok(fence);
            }
        }
        // Stale: stop serving now (the claim loop drops the subscription and claims again
        // when the device is free).
        if let Some(s) = self.served.lock().expect("served").remove(device) {
            s.revoked.notify_one();
        }
        let now = match &claim {
            Some(c) => format!("gateway {} holds it under token {}", c.gateway, c.fence),
            None => "nobody holds it".into(),
        };
        let holder = claim.filter(|c| c.gateway != *id);
        refuse(
            holder,
            format!("stale fencing token: gateway {id} served {device} under token {fence}, but {now}; the operation was not sent to the device; retry, the request goes to the current owner"),
        )
    }

    /// Device operations refused by [`Member::check_fence`] since the gateway started.
    pub fn fence_refusals(&self) -> u64 {
        self.fence_refusals.load(Ordering::Relaxed)
    }

    /// Counts an AOT file this gateway built and stored for the fleet
    /// (`status.aot.built` of its Gateway record).
    pub fn count_aot_build(&self) {
        self.aot_built.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an AOT file this gateway took from the object store instead of building it
    /// (`status.aot.fetched`).
    pub fn count_aot_fetch(&self) {
        self.aot_fetched.fetch_add(1, Ordering::Relaxed);
    }

    /// The claim TTL this gateway was configured with.
    pub fn claim_ttl(&self) -> Duration {
        self.cfg.claim_ttl
    }

    /// The devices this gateway serves now, with their fencing tokens.
    pub fn served(&self) -> Vec<(String, u64)> {
        let mut v: Vec<_> = self
            .served
            .lock()
            .expect("served")
            .iter()
            .map(|(k, s)| (k.clone(), s.fence))
            .collect();
        v.sort();
        v
    }

    /// The client side (for forwarding).
    pub fn client(&self) -> &FleetClient {
        &self.client
    }

    /// JetStream replicas of the buckets this gateway creates.
    pub fn replicas(&self) -> usize {
        self.cfg.replicas
    }

    /// This gateway's id.
    pub fn gateway_id(&self) -> &str {
        &self.cfg.gateway_id
    }

    /// Leaves the fleet: stops serving, deletes this gateway's claims (others may take the
    /// devices at once) and marks its records offline.
    pub async fn leave(&self) {
        for t in self.tasks.lock().expect("tasks").drain(..) {
            t.abort();
        }
        let held: Vec<String> = self
            .served
            .lock()
            .expect("served")
            .drain()
            .map(|(k, _)| k)
            .collect();
        for dev in held {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.claims.delete(&dev)).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.nc.flush()).await;
    }
}

fn check_id(id: &str) -> Result<(), FleetError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(FleetError::Config(format!(
            "gateway id `{id}`: use 1..64 of [A-Za-z0-9_-]"
        )))
    }
}

fn claim_value(m: &Member, fence: u64) -> bytes::Bytes {
    serde_json::to_vec(&Claim {
        gateway: m.cfg.gateway_id.clone(),
        fence,
        renewed_ms: now_ms(),
    })
    .expect("claim serializes")
    .into()
}

/// Takes the claim on `dev` when free, serves it while the claim is renewed, and starts over
/// when a renewal fails (another gateway may have it by then).
async fn claim_loop(m: Arc<Member>, gw: Arc<Gateway>, dev: DeviceHandle) {
    let hb = heartbeat(m.cfg.claim_ttl);
    let key = dev.name.clone();
    // The device task writes a job's commands only after this check and while the claim's
    // renewal is live (device/lease.rs).
    let check: FenceCheck = {
        let (m, key) = (Arc::downgrade(&m), key.clone());
        Arc::new(move || {
            let (m, key) = (m.clone(), key.clone());
            Box::pin(async move {
                let Some(m) = m.upgrade() else {
                    return Err("the gateway left the fleet".into());
                };
                m.check_fence(&key).await.map(|_| ()).map_err(|f| f.message)
            })
        })
    };
    dev.lease.install(check);
    let lease_until =
        |m: &Member, sent: Instant| tokio::time::Instant::from_std(m.serving_until(sent));
    loop {
        // Only a gateway that reaches the device claims it: a board on a TCP bridge that
        // accepts one connection at a time is claimed by the gateway holding its link.
        if !dev.snapshot().online {
            tokio::time::sleep(hb).await;
            continue;
        }
        let sent = Instant::now();
        let created = tokio::time::timeout(hb, m.claims.create(&key, claim_value(&m, 0))).await;
        let Ok(Ok(rev0)) = created else {
            tokio::time::sleep(hb).await;
            continue;
        };
        // Stamp the fencing token (the creating revision) into the claim.
        let Ok(Ok(mut rev)) =
            tokio::time::timeout(hb, m.claims.update(&key, claim_value(&m, rev0), rev0)).await
        else {
            continue;
        };
        let sub = match m.client.nc.subscribe(request_subject(&key)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(device = %key, "fleet: cannot subscribe: {e}");
                let _ = m.claims.delete(&key).await;
                tokio::time::sleep(hb).await;
                continue;
            }
        };
        let revoked = Arc::new(tokio::sync::Notify::new());
        m.served.lock().expect("served").insert(
            key.clone(),
            Served {
                fence: rev0,
                renewed: sent,
                revoked: revoked.clone(),
            },
        );
        dev.lease.renewed(lease_until(&m, sent));
        tracing::info!(device = %key, fence = rev0, "fleet: claimed");
        let server = tokio::spawn(serve_device(m.clone(), gw.clone(), key.clone(), sub));
        write_device_record(&m, &dev, rev0).await;
        let mut up = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(hb) => {}
                _ = revoked.notified() => {
                    tracing::warn!(device = %key, fence = rev0, "fleet: fencing check found the claim stale: stopped serving");
                    break;
                }
            }
            if dev.snapshot().online {
                up = Instant::now();
            } else if up.elapsed() >= m.cfg.claim_ttl {
                // Down for a whole TTL: let a gateway that reaches the device take it.
                tracing::warn!(device = %key, "fleet: link down for {:?}: released the claim", m.cfg.claim_ttl);
                m.served.lock().expect("served").remove(&key);
                dev.lease.revoke();
                let _ = tokio::time::timeout(hb, m.claims.delete(&key)).await;
                write_device_record(&m, &dev, rev0).await;
                break;
            }
            let sent = Instant::now();
            let renewed =
                tokio::time::timeout(hb, m.claims.update(&key, claim_value(&m, rev0), rev)).await;
            match renewed {
                Ok(Ok(r)) => {
                    rev = r;
                    if let Some(s) = m.served.lock().expect("served").get_mut(&key) {
                        s.renewed = sent;
                        dev.lease.renewed(lease_until(&m, sent));
                    }
                    write_device_record(&m, &dev, rev0).await;
                }
                other => {
                    let why = match other {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no answer within {hb:?}"),
                    };
                    tracing::warn!(device = %key, "fleet: lost the claim ({why}): stopped serving");
                    break;
                }
            }
        }
        m.served.lock().expect("served").remove(&key);
        dev.lease.revoke();
        server.abort();
    }
}

async fn serve_device(
    m: Arc<Member>,
    gw: Arc<Gateway>,
    dev: String,
    mut sub: async_nats::Subscriber,
) {
    while let Some(msg) = sub.next().await {
        tokio::spawn(serve_message(m.clone(), gw.clone(), dev.clone(), msg));
    }
}

fn headers(m: &Member, fence: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(HDR_GATEWAY, m.cfg.gateway_id.as_str());
    h.insert(HDR_FENCE, fence.to_string().as_str());
    h
}

fn error_reply(id: Value, code: &str, message: String, help: &str) -> Value {
    json!({"id": id, "ok": false, "error": {"code": code, "message": message, "help": help}})
}

async fn serve_message(m: Arc<Member>, gw: Arc<Gateway>, dev: String, msg: async_nats::Message) {
    let Some(inbox) = msg.reply.clone() else {
        return;
    };
    let nc = &m.client.nc;
    let payload = msg.payload;
    let (line, body) = match payload.iter().position(|b| *b == b'\n') {
        Some(i) => (payload.slice(..i), payload.slice(i + 1..)),
        None => (payload.clone(), bytes::Bytes::new()),
    };
    let parsed: Result<Map<String, Value>, String> = serde_json::from_slice::<Value>(&line)
        .map_err(|e| format!("malformed JSON: {e}"))
        .and_then(|v| {
            let typed =
                wasmbed_api::RequestLine::from_value(v.clone()).map_err(|e| e.to_string())?;
            if typed.request.device() != Some(dev.as_str()) {
                return Err(format!(
                    "request for device {:?} sent to the subject of {dev}",
                    typed.request.device()
                ));
            }
            match v {
                Value::Object(o) => Ok(o),
                _ => Err("a request must be a JSON object".into()),
            }
        });
    let id = serde_json::from_slice::<Value>(&line)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(Value::Null);
    let fence = match m.check_fence(&dev).await {
        Ok(f) => f,
        // The claim's holder is subscribed to the same subject and answers (the requester sends
        // the request again when nobody accepts it): stay silent.
        Err(Fenced {
            holder: Some(_), ..
        }) => return,
        Err(e) => {
            let r = error_reply(
                id,
                "DEVICE_OFFLINE",
                e.message,
                "retry: the request goes to the device's owner",
            );
            let _ = nc.publish(inbox, r.to_string().into()).await;
            return;
        }
    };
    // A request sent again because our acceptance came late is served once.
    if !m.accepted.lock().unwrap().first(inbox.as_str()) {
        return;
    }
    let mut ack = headers(&m, fence);
    ack.insert(HDR_ACCEPTED, "1");
    let _ = nc
        .publish_with_headers(inbox.clone(), ack, bytes::Bytes::new())
        .await;
    let req = match parsed {
        Ok(r) => r,
        Err(e) => {
            let r = error_reply(id, "BAD_REQUEST", e, "send a request of docs/HOST-API.md");
            let _ = nc
                .publish_with_headers(inbox, headers(&m, fence), r.to_string().into())
                .await;
            return;
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let serve = async {
        let mut reader = tokio::io::BufReader::new(std::io::Cursor::new(body));
        crate::api::handle_request(&gw, req, &mut reader, &tx).await;
        drop(tx);
    };
    let relay = async {
        while let Some(v) = rx.recv().await {
            if v.get("event").and_then(Value::as_str) == Some("progress") {
                let _ = nc
                    .publish(event_subject(&dev, "progress"), v.to_string().into())
                    .await;
            }
            let _ = nc
                .publish_with_headers(inbox.clone(), headers(&m, fence), v.to_string().into())
                .await;
        }
        let _ = nc.flush().await;
    };
    tokio::join!(serve, relay);
}

/// Publishes every new log line of `dev` on `wasmbed.evt.<dev>.<kind>` while this gateway serves
/// it (`result` lines are the RESULTs nobody waited for).
async fn publish_log(m: Arc<Member>, dev: DeviceHandle) {
    let (_, mut rx) = dev.log.since(u64::MAX);
    loop {
        match rx.recv().await {
            Ok(e) => {
                let Some(fence) = m.serves(&dev.name) else {
                    continue;
                };
                let kind = serde_json::to_value(e.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "log".into());
                let v = json!({"event": "log", "seq": e.seq, "device": dev.name,
                    "line": e.line, "kind": kind});
                let _ = m
                    .client
                    .nc
                    .publish_with_headers(
                        event_subject(&dev.name, &kind),
                        headers(&m, fence),
                        v.to_string().into(),
                    )
                    .await;
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The Device record of `dev` (kind `Device`), as this gateway sees it.
pub fn device_record(m: &Member, dev: &DeviceHandle, fence: u64) -> Value {
    let s = dev.snapshot();
    let now = now_ms();
    let labels = m.cfg.labels.get(&dev.name).cloned().unwrap_or_default();
    json!({
        "apiVersion": API_VERSION,
        "kind": "Device",
        "metadata": {"name": dev.name, "labels": labels},
        "spec": {"endpoint": dev.endpoint, "gateway": m.cfg.gateway_id},
        "status": {
            "online": s.online,
            "lastSeenMs": s.last_seen.map(|t| now.saturating_sub(t.elapsed().as_millis() as u64)),
            "board": s.board,
            "firmware": s.firmware,
            "proto": s.proto,
            "slotsUsed": s.slots_used,
            "slotsTotal": s.slots_total,
            "info": s.info,
            "gateway": m.cfg.gateway_id,
            "fence": fence,
            "updatedMs": now,
        }
    })
}

async fn write_device_record(m: &Member, dev: &DeviceHandle, fence: u64) {
    let v = device_record(m, dev, fence);
    let hb = heartbeat(m.cfg.claim_ttl);
    if let Ok(Err(e)) =
        tokio::time::timeout(hb, m.devices.put(&dev.name, v.to_string().into())).await
    {
        tracing::warn!(device = %dev.name, "fleet: cannot write the device record: {e}");
    }
}

async fn gateway_record_loop(m: Arc<Member>, gw: Arc<Gateway>) {
    let hb = heartbeat(m.cfg.claim_ttl);
    loop {
        let served = m.served();
        let waiting: usize = gw.devices.values().map(|d| d.waiting()).sum();
        let v = json!({
            "apiVersion": API_VERSION,
            "kind": "Gateway",
            "metadata": {"name": m.cfg.gateway_id},
            "spec": {"devices": gw.devices.keys().collect::<Vec<_>>()},
            "status": {
                "version": env!("CARGO_PKG_VERSION"),
                "serving": served.iter().map(|(d, _)| d).collect::<Vec<_>>(),
                "load": {"devicesServed": served.len(), "requestsWaiting": waiting},
                "fenceRefusals": m.fence_refusals(),
                "aot": {
                    "built": m.aot_built.load(Ordering::Relaxed),
                    "fetched": m.aot_fetched.load(Ordering::Relaxed),
                },
                "lastSeenMs": now_ms(),
                "claimTtlMs": m.cfg.claim_ttl.as_millis() as u64,
            }
        });
        let _ =
            tokio::time::timeout(hb, m.gateways.put(&m.cfg.gateway_id, v.to_string().into())).await;
        tokio::time::sleep(hb).await;
    }
}
