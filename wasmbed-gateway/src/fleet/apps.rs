//! Applications in the fleet (docs/FLEET.md, "Applications"): where they are stored, and the
//! reconcile loop every gateway runs for the devices it owns.
//!
//! - `wasmbed-apps` (KV, key = application name): the [`Application`]s; `apply` raises
//!   `metadata.generation` when the spec changes.
//! - `wasmbed-modules` (object store, object name = sha256 of the bytes): the modules, stored
//!   once however many applications and devices use them; and the AOT files of C sources of
//!   mode `aot`, one per target (`aot/<source sha256>/<target id>`, built under a lock of
//!   `wasmbed-aot-builds` by the first gateway that needs one: [`super::aot`]).
//! - `wasmbed-app-status` (KV, key = `APP/DEVICE`): the reported state of an application on a
//!   device ([`AppDeviceStatus`]), written only by the gateway that owns the device. Readers
//!   aggregate them into the application's status ([`summarize`]).
//! - `wasmbed-rollout` (KV, key = `APP/slot-K`, `max_age` [`ROLLOUT_LEASE`]): the
//!   `maxUnavailable` rollout slots. A gateway updates a device that runs an older generation
//!   only while it holds one (taken with `create`, so at most `maxUnavailable` devices of the
//!   fleet are being updated at once; a dead gateway's slot expires).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{kv, object_store};
use serde_json::{json, Value};
use sha2::Digest;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use wasmbed_api::app::{
    AppDeviceStatus, AppPhase, AppStatus, AppSummary, Application, Condition, ModuleKind, Replicas,
    RestartPolicy,
};
use wasmbed_api::{JobState, OpResult, RunStatus, ServerMessage, StatusResult};

use super::aot::{AotBuilds, Fetched};
use super::client::{join_devices, read_bucket};
use super::member::bucket;
use super::mirror::Mirror;
use super::{now_ms, FleetError, Member, BUCKET_CLAIMS, BUCKET_DEVICES};
use crate::api::Gateway;

/// Applications (KV).
pub const BUCKET_APPS: &str = "wasmbed-apps";
/// Per-device reported state (KV, key `APP/DEVICE`).
pub const BUCKET_APP_STATUS: &str = "wasmbed-app-status";
/// Rollout slots (KV, key `APP/slot-K`).
pub const BUCKET_ROLLOUT: &str = "wasmbed-rollout";
/// Modules by sha256 (object store).
pub const OBJECT_STORE: &str = "wasmbed-modules";
/// How long a rollout slot lives if its holder dies mid-update.
pub const ROLLOUT_LEASE: Duration = Duration::from_secs(60);
/// Time between two reconcile passes of a gateway.
pub const RECONCILE_PERIOD: Duration = Duration::from_millis(1000);
/// Largest module read back from the object store.
pub const MODULE_MAX: usize = 4 * 1024 * 1024;
/// A failed deploy or start is retried after this long.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Deadline of one device request made by the reconciler.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Deadline of one JetStream read of the reconcile loop.
const JS_TIMEOUT: Duration = Duration::from_secs(10);
/// Modules kept in memory by a gateway.
const MODULE_CACHE: usize = 16;

/// The buckets and the object store of applications.
#[derive(Clone)]
pub struct AppStore {
    /// Applications.
    pub apps: kv::Store,
    /// Per-device status.
    pub status: kv::Store,
    /// Rollout slots.
    pub rollout: kv::Store,
    /// Modules.
    pub modules: object_store::ObjectStore,
}

fn js_err(what: &str, e: impl std::fmt::Display) -> FleetError {
    FleetError::JetStream(format!("{what}: {e}"))
}

impl AppStore {
    /// Opens the buckets, creating the absent ones with `replicas` (a gateway joining does;
    /// `wasmbed-host apply` does too, with `replicas` 1, when no gateway created them yet).
    pub async fn open(
        js: &async_nats::jetstream::Context,
        replicas: usize,
    ) -> Result<AppStore, FleetError> {
        let record = |name: &str, what: &str, max_age: Duration| kv::Config {
            bucket: name.into(),
            description: format!("wasmbed {what} (docs/FLEET.md)"),
            history: 1,
            max_age,
            num_replicas: replicas,
            ..Default::default()
        };
        let apps = bucket(js, record(BUCKET_APPS, "applications", Duration::ZERO)).await?;
        let status = bucket(
            js,
            record(BUCKET_APP_STATUS, "application status", Duration::ZERO),
        )
        .await?;
        let rollout = bucket(js, record(BUCKET_ROLLOUT, "rollout slots", ROLLOUT_LEASE)).await?;
        let modules = match js.get_object_store(OBJECT_STORE).await {
            Ok(s) => s,
            Err(_) => match js
                .create_object_store(object_store::Config {
                    bucket: OBJECT_STORE.into(),
                    description: Some("wasmbed modules by sha256 (docs/FLEET.md)".into()),
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
            {
                Ok(s) => s,
                Err(e) => js
                    .get_object_store(OBJECT_STORE)
                    .await
                    .map_err(|_| js_err("creating the module store", e))?,
            },
        };
        Ok(AppStore {
            apps,
            status,
            rollout,
            modules,
        })
    }

    /// Stores a module under its sha256 (once: an existing object is kept) and returns the
    /// sha256.
    pub async fn put_module(&self, bytes: &[u8], provenance: &str) -> Result<String, FleetError> {
        let sha = sha256_hex(bytes);
        if self.modules.info(&sha).await.is_ok() {
            return Ok(sha);
        }
        let meta = object_store::ObjectMetadata {
            name: sha.clone(),
            description: Some(provenance.to_string()),
            ..Default::default()
        };
        let mut reader = std::io::Cursor::new(bytes.to_vec());
        self.modules
            .put(meta, &mut reader)
            .await
            .map_err(|e| js_err("storing the module", e))?;
        Ok(sha)
    }

    /// Reads a module back and checks its sha256.
    pub async fn get_module(&self, sha: &str) -> Result<Vec<u8>, FleetError> {
        let mut obj = self
            .modules
            .get(sha)
            .await
            .map_err(|e| js_err(&format!("module {sha} of the object store"), e))?;
        let mut out = Vec::new();
        (&mut obj)
            .take(MODULE_MAX as u64 + 1)
            .read_to_end(&mut out)
            .await
            .map_err(|e| js_err(&format!("reading module {sha}"), e))?;
        if out.len() > MODULE_MAX {
            return Err(FleetError::JetStream(format!(
                "module {sha} is over {MODULE_MAX} bytes"
            )));
        }
        let got = sha256_hex(&out);
        if got != sha {
            return Err(FleetError::JetStream(format!(
                "module {sha} read back with sha256 {got}: the object store is damaged (apply it again)"
            )));
        }
        Ok(out)
    }

    /// Stores `app` (its module already stored, `spec.module.sha256` set). The generation is
    /// raised when the spec differs from the stored one. Returns the stored application and
    /// whether it changed.
    pub async fn apply(&self, mut app: Application) -> Result<(Application, bool), FleetError> {
        app.validate(true)
            .map_err(|e| FleetError::Config(e.to_string()))?;
        let name = app.metadata.name.clone();
        for _ in 0..10 {
            let entry = self
                .apps
                .entry(&name)
                .await
                .map_err(|e| js_err("reading the application", e))?
                .filter(|e| e.operation == kv::Operation::Put);
            let old: Option<Application> = entry
                .as_ref()
                .and_then(|e| serde_json::from_slice(&e.value).ok());
            if let Some(old) = &old {
                if old.spec == app.spec && old.metadata.labels == app.metadata.labels {
                    return Ok((old.clone(), false));
                }
            }
            app.metadata.generation = old.as_ref().map_or(0, |o| o.metadata.generation) + 1;
            let value: bytes::Bytes = serde_json::to_vec(&app).expect("JSON").into();
            let written = match &entry {
                Some(e) => self.apps.update(&name, value, e.revision).await.is_ok(),
                None => self.apps.create(&name, value).await.is_ok(),
            };
            if written {
                return Ok((app, true));
            }
        }
        Err(FleetError::JetStream(format!(
            "application {name} kept changing while applying it: try again"
        )))
    }

    /// Every application, by name.
    pub async fn list(&self) -> Result<Vec<Application>, FleetError> {
        Ok(read_bucket(&self.apps, BUCKET_APPS, |_| true)
            .await?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }

    /// One application.
    pub async fn get(&self, name: &str) -> Result<Option<Application>, FleetError> {
        match self.apps.get(name).await {
            Ok(Some(v)) => Ok(serde_json::from_slice(&v).ok()),
            Ok(None) => Ok(None),
            Err(e) => Err(js_err(&format!("application {name}"), e)),
        }
    }

    /// Deletes an application; the gateways stop and unload it. `false` when there was none.
    pub async fn delete(&self, name: &str) -> Result<bool, FleetError> {
        if self.get(name).await?.is_none() {
            return Ok(false);
        }
        self.apps
            .delete(name)
            .await
            .map_err(|e| js_err(&format!("deleting application {name}"), e))?;
        Ok(true)
    }

    /// Every per-device status record (of one application, or all).
    pub async fn statuses(&self, app: Option<&str>) -> Result<Vec<AppDeviceStatus>, FleetError> {
        let prefix = app.map(|a| format!("{a}/"));
        self.statuses_where(|k| prefix.as_ref().is_none_or(|p| k.starts_with(p.as_str())))
            .await
    }

    /// The per-device status records whose key (`APP/DEVICE`) `keep` accepts.
    pub async fn statuses_where(
        &self,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<AppDeviceStatus>, FleetError> {
        Ok(read_bucket(&self.status, BUCKET_APP_STATUS, keep)
            .await?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }
}

/// The sha256 of `bytes` in lowercase hex (the module's name in the object store).
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn status_key(app: &str, device: &str) -> String {
    format!("{app}/{device}")
}

/// A device as the targeting rule sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Online (a live claim and a link up).
    pub online: bool,
}

/// Candidates from Device records (as [`super::FleetClient::devices`] returns them).
pub fn candidates(devices: &[Value]) -> Vec<Candidate> {
    devices
        .iter()
        .filter_map(|d| {
            Some(Candidate {
                name: d["metadata"]["name"].as_str()?.to_string(),
                labels: serde_json::from_value(d["metadata"]["labels"].clone()).unwrap_or_default(),
                online: d["status"]["online"] == true,
            })
        })
        .collect()
}

/// The devices `app` targets now: the online devices its selector matches, by name, the first
/// `replicas` of them. Every gateway and reader computes the same set from the same records.
pub fn targets(app: &Application, devices: &[Candidate]) -> Vec<String> {
    let mut names: Vec<String> = devices
        .iter()
        .filter(|d| d.online && app.spec.selector.matches(&d.name, &d.labels))
        .map(|d| d.name.clone())
        .collect();
    names.sort();
    names.dedup();
    if let Replicas::Count(n) = app.spec.replicas {
        names.truncate(n as usize);
    }
    names
}

/// An application with its aggregate status, from the per-device records.
pub fn summarize(
    app: &Application,
    devices: &[Candidate],
    statuses: &[AppDeviceStatus],
) -> AppSummary {
    let gen = app.metadata.generation;
    let want = targets(app, devices);
    let mine: Vec<AppDeviceStatus> = statuses
        .iter()
        .filter(|s| s.app == app.metadata.name)
        .cloned()
        .collect();
    let of = |d: &str| mine.iter().find(|s| s.device == d);
    let ready = want
        .iter()
        .filter(|d| of(d).is_some_and(|s| s.ready_at(gen)))
        .count() as u32;
    let updated = want
        .iter()
        .filter(|d| {
            of(d).is_some_and(|s| s.ready_at(gen) && s.deployed_sha256 == app.spec.module.sha256)
        })
        .count() as u32;
    let observed = want
        .iter()
        .map(|d| of(d).map_or(0, |s| s.observed_generation))
        .min()
        .unwrap_or(gen);
    let stray = mine.iter().any(|s| !want.contains(&s.device));
    AppSummary {
        app: app.clone(),
        status: AppStatus {
            desired: want.len() as u32,
            ready,
            updated,
            observed_generation: observed,
            converged: ready == want.len() as u32 && observed == gen && !stray,
            devices: mine,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The reconcile loop of a gateway.

/// What a gateway remembers between passes about one application on one device.
struct Local {
    status: AppDeviceStatus,
    /// When a failed deploy/start may be retried.
    retry_at: Option<std::time::Instant>,
}

/// Runs forever in every gateway of a fleet: each [`RECONCILE_PERIOD`] (and at once when an
/// application changes), brings the devices this gateway serves to the applications' spec.
pub async fn reconcile_loop(m: Arc<Member>, gw: Arc<Gateway>) {
    let js = async_nats::jetstream::new(m.client().nc.clone());
    let store = loop {
        match AppStore::open(&js, m.replicas()).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!("fleet: application buckets: {e}; retrying");
                tokio::time::sleep(RECONCILE_PERIOD).await;
            }
        }
    };
    // The buckets every pass reads, kept in memory from watches; a change of an application
    // wakes the loop at once.
    let mirrors = Mirrors {
        apps: Mirror::spawn(js.clone(), BUCKET_APPS),
        devices: Mirror::spawn(js.clone(), BUCKET_DEVICES),
        claims: Mirror::spawn(js.clone(), BUCKET_CLAIMS),
    };
    let mut wake = mirrors.apps.changes();
    let builds = loop {
        match AotBuilds::open(&js, m.replicas(), m.claim_ttl()).await {
            Ok(b) => break b,
            Err(e) => {
                tracing::warn!("fleet: AOT build locks: {e}; retrying");
                tokio::time::sleep(RECONCILE_PERIOD).await;
            }
        }
    };
    let mut local: HashMap<String, Local> = HashMap::new();
    let mut modules: HashMap<String, bytes::Bytes> = HashMap::new();
    loop {
        let pass = reconcile_once(
            &m,
            &gw,
            (&store, &mirrors),
            &builds,
            &mut local,
            &mut modules,
        );
        if let Err(e) = pass.await {
            tracing::warn!("fleet: reconcile: {e}");
        }
        let _ = tokio::time::timeout(RECONCILE_PERIOD, wake.changed()).await;
    }
}

/// The buckets a reconcile pass reads, kept in memory ([`Mirror`]).
struct Mirrors {
    apps: Mirror,
    devices: Mirror,
    claims: Mirror,
}

impl Mirrors {
    /// Every application, from the mirror once it is synced, else read from the bucket.
    async fn apps(&self, store: &AppStore) -> Result<Vec<Application>, FleetError> {
        if let Some(apps) = self.apps.snapshot() {
            return Ok(apps
                .into_iter()
                .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
                .collect());
        }
        tracing::debug!("fleet: application mirror not synced, reading the bucket");
        tokio::time::timeout(JS_TIMEOUT, store.list())
            .await
            .map_err(|_| no_answer("listing the applications"))?
    }

    /// Every Device record as [`super::FleetClient::devices`] returns it, from the mirrors once
    /// both are synced, else read from the buckets.
    async fn devices(&self, m: &Member) -> Result<Vec<Value>, FleetError> {
        let json = |kv: Vec<(String, bytes::Bytes)>| -> Vec<(String, Value)> {
            kv.into_iter()
                .filter_map(|(k, v)| serde_json::from_slice(&v).ok().map(|v| (k, v)))
                .collect()
        };
        if let (Some(devices), Some(claims)) = (self.devices.snapshot(), self.claims.snapshot()) {
            let devices = json(devices).into_iter().map(|(_, v)| v).collect();
            return Ok(join_devices(devices, json(claims)));
        }
        tracing::debug!("fleet: device mirrors not synced, reading the buckets");
        tokio::time::timeout(JS_TIMEOUT, m.client().devices())
            .await
            .map_err(|_| no_answer("listing the devices"))?
    }
}

fn no_answer(what: &str) -> FleetError {
    FleetError::JetStream(format!("{what}: no answer within {JS_TIMEOUT:?}"))
}

async fn reconcile_once(
    m: &Arc<Member>,
    gw: &Arc<Gateway>,
    (store, mirrors): (&AppStore, &Mirrors),
    builds: &AotBuilds,
    local: &mut HashMap<String, Local>,
    modules: &mut HashMap<String, bytes::Bytes>,
) -> Result<(), FleetError> {
    let served: Vec<String> = m.served().into_iter().map(|(d, _)| d).collect();
    if served.is_empty() {
        return Ok(());
    }
    let bounded = |what: &'static str| {
        move |_| FleetError::JetStream(format!("{what}: no answer within {JS_TIMEOUT:?}"))
    };
    let apps = mirrors.apps(store).await?;
    let devices = candidates(&mirrors.devices(m).await?);
    let mut wanted: Vec<(String, Application)> = Vec::new();
    for app in &apps {
        for d in targets(app, &devices) {
            if served.contains(&d) {
                wanted.push((d, app.clone()));
            }
        }
    }
    // Fetch the modules needed (once per sha256).
    for (_, app) in &wanted {
        let Some(sha) = &app.spec.module.sha256 else {
            continue;
        };
        if !modules.contains_key(sha) {
            if modules.len() >= MODULE_CACHE {
                modules.clear();
            }
            match tokio::time::timeout(JS_TIMEOUT * 3, store.get_module(sha)).await {
                Ok(Ok(b)) => {
                    modules.insert(sha.clone(), b.into());
                }
                Ok(Err(e)) => tracing::warn!(app = %app.metadata.name, "fleet: {e}"),
                Err(_) => {
                    tracing::warn!(app = %app.metadata.name, "fleet: module {sha}: no answer within {:?}", JS_TIMEOUT * 3)
                }
            }
        }
    }
    // Devices in parallel, the applications of one device in order.
    let mut per_device: BTreeMap<String, Vec<Application>> = BTreeMap::new();
    for (d, a) in wanted {
        per_device.entry(d).or_default().push(a);
    }
    // What the fleet recorded for the pairs this gateway has no state of (after it started or
    // took a device over), read together: one at a time, 250 devices took longer than a pass
    // may (docs/benchmarks.md item 11).
    let unknown: std::collections::HashSet<String> = per_device
        .iter()
        .flat_map(|(dev, apps)| apps.iter().map(move |a| status_key(&a.metadata.name, dev)))
        .filter(|k| !local.contains_key(k))
        .collect();
    let mut recorded: HashMap<String, AppDeviceStatus> = HashMap::new();
    if !unknown.is_empty() {
        let records =
            tokio::time::timeout(JS_TIMEOUT, store.statuses_where(|k| unknown.contains(k)))
                .await
                .map_err(bounded("reading the application status"))??;
        for s in records {
            recorded.insert(status_key(&s.app, &s.device), s);
        }
    }
    let mut work = Vec::new();
    let mut taken: HashMap<String, Local> = HashMap::new();
    for (dev, apps) in &per_device {
        for a in apps {
            let k = status_key(&a.metadata.name, dev);
            let l = local.remove(&k).or_else(|| {
                recorded.remove(&k).map(|status| Local {
                    status,
                    retry_at: None,
                })
            });
            if let Some(l) = l {
                taken.insert(k, l);
            }
        }
    }
    let taken = Arc::new(tokio::sync::Mutex::new(taken));
    for (dev, apps) in per_device.clone() {
        let (m, gw, store, taken) = (m.clone(), gw.clone(), store.clone(), taken.clone());
        let builds = builds.clone();
        let modules = modules.clone();
        work.push(async move {
            for app in apps {
                let k = status_key(&app.metadata.name, &dev);
                let prev = taken.lock().await.remove(&k);
                let next =
                    reconcile_device(&m, &gw, (&store, &builds), &app, &dev, prev, &modules).await;
                taken.lock().await.insert(k, next);
            }
        });
    }
    futures_util::future::join_all(work).await;
    local.extend(
        Arc::try_unwrap(taken)
            .ok()
            .map(|t| t.into_inner())
            .unwrap_or_default(),
    );

    // Clean up: records of served devices that no application targets any more.
    let served_set: std::collections::HashSet<&str> = served.iter().map(String::as_str).collect();
    let of_served = |k: &str| {
        k.split_once('/')
            .is_some_and(|(_, d)| served_set.contains(d))
    };
    let records = tokio::time::timeout(JS_TIMEOUT, store.statuses_where(of_served))
        .await
        .map_err(bounded("listing the application status"))??;
    for s in records {
        if !served.contains(&s.device) {
            continue;
        }
        let still = per_device
            .get(&s.device)
            .is_some_and(|apps| apps.iter().any(|a| a.metadata.name == s.app));
        if still {
            continue;
        }
        let Some(fence) = m.serves(&s.device) else {
            continue;
        };
        let module_id = s.module_id.clone().unwrap_or_else(|| s.app.clone());
        tracing::info!(app = %s.app, device = %s.device, fence, "fleet: removing the application");
        let _ = call(
            gw,
            json!({"op": "stop", "device": s.device, "module_id": module_id}),
            None,
        )
        .await;
        let unloaded = call(
            gw,
            json!({"op": "unload", "device": s.device, "module_id": module_id}),
            None,
        )
        .await;
        // Gone from the slots (unloaded now, or already): the record goes too.
        let gone = match call(gw, json!({"op": "status", "device": s.device}), None).await {
            Ok(OpResult::Status(st)) => !st.slots.iter().any(|x| x.module_id == module_id),
            _ => false,
        };
        if !gone {
            tracing::warn!(app = %s.app, device = %s.device, "fleet: cannot unload the application ({unloaded:?}); retrying");
            continue;
        }
        let k = status_key(&s.app, &s.device);
        let _ = store.status.purge(&k).await;
        local.remove(&k);
    }
    Ok(())
}

/// One request to a device of this gateway; `Ok(result)` or `Err("CODE: message")`.
async fn call(gw: &Gateway, req: Value, body: Option<bytes::Bytes>) -> Result<OpResult, String> {
    let Value::Object(mut map) = req else {
        return Err("internal: a request is an object".into());
    };
    map.insert("id".into(), json!(1));
    // Fencing: the claim is re-read before every operation on the device.
    if let (Some(m), Some(dev)) = (gw.fleet.get(), map.get("device").and_then(Value::as_str)) {
        m.check_fence(dev)
            .await
            .map_err(|e| format!("DEVICE_OFFLINE: {e}"))?;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let op = map
        .get("op")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let serve = async {
        let body = body.unwrap_or_default();
        let mut reader = tokio::io::BufReader::new(std::io::Cursor::new(body));
        crate::api::handle_request(gw, map, &mut reader, &tx).await;
        drop(tx);
    };
    let collect = async {
        let mut last = None;
        while let Some(v) = rx.recv().await {
            if v.get("event").is_none() {
                last = Some(v);
            }
        }
        last
    };
    let out = tokio::time::timeout(CALL_TIMEOUT, async { tokio::join!(serve, collect).1 })
        .await
        .map_err(|_| format!("{op}: no reply within {CALL_TIMEOUT:?}"))?
        .ok_or_else(|| format!("{op}: no reply"))?;
    let typed_op = wasmbed_api::Op::from_name(&op).ok_or_else(|| format!("unknown op {op}"))?;
    match ServerMessage::parse(&out.to_string(), typed_op, None) {
        Ok(ServerMessage::Reply(r)) => r
            .outcome
            .map_err(|e| format!("{op}: {}: {}", e.code, e.message)),
        Ok(_) => Err(format!("{op}: not a reply: {out}")),
        Err(e) => Err(format!("{op}: unreadable reply {out}: {e}")),
    }
}

fn fresh(app: &Application, dev: &str, m: &Member) -> AppDeviceStatus {
    AppDeviceStatus {
        app: app.metadata.name.clone(),
        device: dev.to_string(),
        gateway: m.gateway_id().to_string(),
        module_id: Some(app.module_id().to_string()),
        observed_generation: 0,
        deployed_sha256: None,
        deployed_generation: 0,
        phase: AppPhase::Pending,
        job_state: None,
        last_result: None,
        error: None,
        restarts: 0,
        update_started_ms: None,
        update_done_ms: None,
        conditions: Vec::new(),
        updated_ms: 0,
        fence: None,
    }
}

/// Brings `app` on `dev` one step towards its spec and writes the status when it changed.
async fn reconcile_device(
    m: &Member,
    gw: &Gateway,
    (store, builds): (&AppStore, &AotBuilds),
    app: &Application,
    dev: &str,
    prev: Option<Local>,
    modules: &HashMap<String, bytes::Bytes>,
) -> Local {
    let mut l = prev.unwrap_or_else(|| Local {
        status: fresh(app, dev, m),
        retry_at: None,
    });
    let before = l.status.clone();
    step(m, gw, (store, builds), app, dev, &mut l, modules).await;
    let s = &mut l.status;
    s.app = app.metadata.name.clone();
    s.device = dev.to_string();
    s.gateway = m.gateway_id().to_string();
    s.module_id = Some(app.module_id().to_string());
    s.observed_generation = app.metadata.generation;
    s.fence = m.serves(dev);
    let gen = app.metadata.generation;
    let deployed = s.deployed_generation == gen && s.deployed_sha256.is_some();
    let started = app.spec.function.is_none() || s.job_state.is_some();
    s.conditions = vec![
        Condition::new(
            "Deployed",
            deployed,
            if deployed {
                "ModuleLoaded"
            } else {
                "NotDeployed"
            },
            s.deployed_sha256.clone().unwrap_or_default(),
        ),
        Condition::new(
            "Started",
            started,
            if started { "JobStarted" } else { "NotStarted" },
            s.job_state.clone().unwrap_or_default(),
        ),
        Condition::new(
            "Ready",
            s.ready_at(gen),
            &format!("{:?}", s.phase),
            s.error.clone().unwrap_or_default(),
        ),
    ];
    let mut cmp = before.clone();
    cmp.updated_ms = s.updated_ms;
    if cmp != *s || now_ms().saturating_sub(s.updated_ms) > 30_000 {
        s.updated_ms = now_ms();
        if m.serves(dev).is_some() {
            let v: bytes::Bytes = serde_json::to_vec(&*s).expect("JSON").into();
            match tokio::time::timeout(JS_TIMEOUT, store.status.put(status_key(&s.app, dev), v))
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(app = %s.app, device = dev, "fleet: cannot write the status: {e}")
                }
                Err(_) => {
                    tracing::warn!(app = %s.app, device = dev, "fleet: status write unanswered within {JS_TIMEOUT:?}")
                }
            }
        }
    }
    l
}

fn failed(l: &mut Local, e: String) {
    l.status.phase = AppPhase::Failed;
    l.status.error = Some(e);
    l.retry_at = Some(std::time::Instant::now() + RETRY_AFTER);
}

fn deploy_request(app: &Application, dev: &str, body: &[u8]) -> Value {
    let crc = format!("{:08x}", crc32fast::hash(body));
    let mut r = json!({"device": dev, "module_id": app.module_id(), "size": body.len(),
        "crc32": crc, "replace": true});
    match app.spec.module.kind {
        ModuleKind::C => {
            r["op"] = "build_and_deploy".into();
            r["mode"] = app.spec.module.mode.map_or("wasm", |m| m.as_str()).into();
        }
        ModuleKind::Wasm | ModuleKind::Aot => r["op"] = "deploy".into(),
    }
    r
}

/// What to do to deploy an application's module on a device.
enum Deploy {
    /// Send this request with this body.
    Send(Value, bytes::Bytes),
    /// Wait (why: another gateway builds the AOT file).
    Wait(String),
}

/// The deploy request and body of `app` on `dev`. A C source of mode `aot` is deployed as the
/// fleet's AOT file for the device's target (built here once, or fetched: [`super::aot`]);
/// [`Deploy::Wait`] while another gateway builds it.
async fn deploy_of(
    m: &Member,
    gw: &Gateway,
    (store, builds): (&AppStore, &AotBuilds),
    app: &Application,
    dev: &str,
    sha: &str,
    body: &bytes::Bytes,
) -> Result<Deploy, String> {
    let aot = app.spec.module.kind == ModuleKind::C
        && app.spec.module.mode == Some(wasmbed_api::BuildMode::Aot);
    if !aot {
        return Ok(Deploy::Send(deploy_request(app, dev, body), body.clone()));
    }
    match super::aot::artifact(m, gw, (store, builds), sha, body, dev, app.module_id()).await? {
        Fetched::Ready(a) => {
            let crc = format!("{:08x}", crc32fast::hash(&a.bytes));
            let mut r = json!({"op": "deploy", "device": dev, "module_id": app.module_id(),
                "size": a.bytes.len(), "crc32": crc, "replace": true});
            if let Some(sig) = a.signature {
                r["signature"] = sig.into();
            }
            tracing::debug!(app = %app.metadata.name, device = dev, object = %a.name, "fleet: deploying the fleet's AOT file");
            Ok(Deploy::Send(r, a.bytes))
        }
        Fetched::Waiting(why) => Ok(Deploy::Wait(why)),
    }
}

fn start_request(app: &Application, dev: &str) -> Value {
    json!({"op": "start", "device": dev, "module_id": app.module_id(),
        "func": app.spec.function, "args": app.spec.args})
}

async fn start(gw: &Gateway, app: &Application, dev: &str, l: &mut Local) -> bool {
    match call(gw, start_request(app, dev), None).await {
        Ok(_) => {
            l.status.job_state = Some("running".into());
            l.status.phase = AppPhase::Running;
            l.status.error = None;
            true
        }
        Err(e) => {
            failed(l, e);
            false
        }
    }
}

/// Takes a rollout slot of `app` for `dev` (or finds the one it already holds).
async fn take_slot(store: &AppStore, app: &Application, dev: &str) -> Option<String> {
    for k in 0..app.spec.strategy.max_unavailable {
        let key = format!("{}/slot-{k}", app.metadata.name);
        if let Ok(Some(v)) = store.rollout.get(&key).await {
            if v.as_ref() == dev.as_bytes() {
                return Some(key);
            }
            continue;
        }
        if store
            .rollout
            .create(&key, dev.to_string().into())
            .await
            .is_ok()
        {
            return Some(key);
        }
    }
    None
}

async fn step(
    m: &Member,
    gw: &Gateway,
    (store, builds): (&AppStore, &AotBuilds),
    app: &Application,
    dev: &str,
    l: &mut Local,
    modules: &HashMap<String, bytes::Bytes>,
) {
    if m.serves(dev).is_none() {
        return;
    }
    if l.retry_at.is_some_and(|t| std::time::Instant::now() < t) {
        return;
    }
    l.retry_at = None;
    let gen = app.metadata.generation;
    let Some(sha) = app.spec.module.sha256.clone() else {
        return;
    };
    let Some(body) = modules.get(&sha) else {
        failed(
            l,
            format!("module {sha} is not in the object store (apply it again)"),
        );
        return;
    };
    let status: StatusResult = match call(gw, json!({"op": "status", "device": dev}), None).await {
        Ok(OpResult::Status(s)) => s,
        Ok(other) => {
            failed(l, format!("status: unexpected reply {other:?}"));
            return;
        }
        Err(e) => {
            l.status.error = Some(e);
            l.status.phase = AppPhase::Pending;
            return;
        }
    };
    let mid = app.module_id();
    let slot = status.slots.iter().find(|s| s.module_id == mid);
    let running_on_device = slot.is_some_and(|s| s.state.eq_ignore_ascii_case("running"));
    // What is deployed: our record, as long as the device still holds the module.
    if slot.is_none() && l.status.deployed_sha256.is_some() {
        tracing::info!(app = %app.metadata.name, device = dev, "fleet: the device lost the module (rebooted?): redeploying");
        l.status.deployed_sha256 = None;
        l.status.job_state = None;
        l.status.restarts += 1;
    }
    let current = l.status.deployed_sha256.as_deref() == Some(sha.as_str())
        && l.status.deployed_generation == gen;
    if !current {
        let same_module = l.status.deployed_sha256.as_deref() == Some(sha.as_str());
        // What to upload, before any rollout slot is taken: an AOT file may first have to be
        // built (here or by another gateway).
        let payload = if same_module {
            None
        } else {
            match deploy_of(m, gw, (store, builds), app, dev, &sha, body).await {
                Ok(Deploy::Send(req, upload)) => Some((req, upload)),
                Ok(Deploy::Wait(why)) => {
                    // Another gateway builds the AOT file: try again next pass.
                    l.status.phase = AppPhase::Pending;
                    l.status.error = Some(why);
                    return;
                }
                Err(e) => {
                    failed(l, e);
                    return;
                }
            }
        };
        // An update replaces a module of an older generation: it takes a rollout slot.
        let update = l.status.deployed_sha256.is_some();
        let slot_key = if update {
            match take_slot(store, app, dev).await {
                Some(k) => Some(k),
                None => {
                    l.status.phase = AppPhase::Waiting;
                    return;
                }
            }
        } else {
            None
        };
        if update {
            l.status.phase = AppPhase::Updating;
            l.status.update_started_ms = Some(now_ms());
            l.status.update_done_ms = None;
        }
        let mut ok = true;
        if let Some((req, upload)) = payload {
            match call(gw, req, Some(upload)).await {
                Ok(_) => {
                    l.status.deployed_sha256 = Some(sha.clone());
                    l.status.job_state = None;
                    l.status.last_result = None;
                }
                Err(e) => {
                    failed(l, e);
                    ok = false;
                }
            }
        } else {
            // Only the function or its arguments changed: stop the old job.
            if running_on_device {
                let _ = call(
                    gw,
                    json!({"op": "stop", "device": dev, "module_id": mid, "wait": true}),
                    None,
                )
                .await;
            }
        }
        if ok {
            l.status.deployed_generation = gen;
            l.status.error = None;
            l.status.phase = AppPhase::Running;
            if app.spec.function.is_some() {
                ok = start(gw, app, dev, l).await;
            }
        }
        if update && ok {
            l.status.update_done_ms = Some(now_ms());
        }
        if let Some(k) = slot_key {
            let _ = store.rollout.purge(&k).await;
        }
        return;
    }
    if app.spec.function.is_none() {
        l.status.phase = AppPhase::Running;
        return;
    }
    let job = status.jobs.get(mid);
    if running_on_device || job.is_some_and(|j| j.state == JobState::Running) {
        l.status.phase = AppPhase::Running;
        l.status.job_state = Some("running".into());
        return;
    }
    let (ended_ok, result) = match job {
        Some(j) if j.state == JobState::Done => (
            j.status == Some(RunStatus::Ok),
            j.result
                .clone()
                .or_else(|| j.status.as_ref().map(|s| format!("{s:?}"))),
        ),
        Some(_) => (false, Some("lost".into())),
        // No job known to this gateway (it restarted) and the slot is idle: the job ended
        // while nobody watched; the record says how it ended, if it does.
        None => match l.status.phase {
            AppPhase::Completed => (true, l.status.last_result.clone()),
            AppPhase::Failed => (false, l.status.last_result.clone()),
            _ => (true, Some("ended while no gateway watched it".into())),
        },
    };
    if result.is_some() {
        l.status.last_result = result;
    }
    l.status.job_state = job.map(|j| format!("{:?}", j.state).to_lowercase());
    let restart = match app.spec.restart_policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => !ended_ok,
        RestartPolicy::Never => false,
    };
    if restart {
        if l.status.job_state.is_some() {
            l.status.restarts += 1;
        }
        start(gw, app, dev, l).await;
    } else {
        l.status.phase = if ended_ok {
            AppPhase::Completed
        } else {
            AppPhase::Failed
        };
    }
}
