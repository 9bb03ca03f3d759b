//! AOT built once per distinct target (docs/FLEET.md "AOT files: built once per target").
//!
//! An application whose module is C source with `mode = "aot"` needs one `.aot` file per
//! target its devices run. The first gateway that needs the file for a (source sha256, target)
//! builds it and stores it in the `wasmbed-modules` object store under
//! [`object_name`]; every other gateway whose device has the same target fetches it instead
//! of compiling.
//!
//! Concurrent builders: a gateway builds only while it holds the build lock, a key of the
//! `wasmbed-aot-builds` KV bucket taken with `create` (compare-and-set: one winner), renewed
//! every third of the bucket's `max_age` (the claim TTL of the gateway that created the
//! bucket) while the compiler runs, and deleted once the file is stored. The others wait
//! (their device shows `Pending`, the error naming the builder) and fetch the file on a later
//! pass. A builder that dies stops renewing: its lock expires with the bucket's `max_age` and
//! the next gateway that needs the file takes it. A builder that was frozen past the TTL may
//! find the file stored by its successor when it is done: it does not store its own again
//! (the files are the same build of the same inputs; the one stored wins).

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{kv, object_store};
use serde_json::json;
use tokio::io::AsyncReadExt;

use super::apps::{sha256_hex, AppStore, MODULE_MAX};
use super::member::bucket;
use super::{now_ms, FleetError, Member};
use crate::api::Gateway;
use crate::device::DeviceState;
use crate::pipeline::{AotTarget, BuildMode};

/// Build locks (KV, key = [`object_name`] of the file being built).
pub const BUCKET_AOT_BUILDS: &str = "wasmbed-aot-builds";

/// Object metadata keys of an AOT file in the object store.
pub mod meta {
    /// `aot`.
    pub const KIND: &str = "wasmbed-kind";
    /// The sha256 of the C source it was built from (the application's `spec.module.sha256`).
    pub const SOURCE: &str = "wasmbed-source-sha256";
    /// The target line ([`super::target_line`]).
    pub const TARGET: &str = "wasmbed-target";
    /// The sha256 of the AOT file itself.
    pub const SHA256: &str = "wasmbed-sha256";
    /// The gateway that built it.
    pub const BUILT_BY: &str = "wasmbed-built-by";
    /// That gateway's version.
    pub const GATEWAY_VERSION: &str = "wasmbed-gateway-version";
    /// `clang --version` (first line) of the builder.
    pub const CLANG: &str = "wasmbed-clang";
    /// `wamrc --version` (first line) of the builder.
    pub const WAMRC: &str = "wasmbed-wamrc";
    /// When it was built (ms since the epoch).
    pub const BUILT_MS: &str = "wasmbed-built-ms";
    /// The builder's signature of the file (`key=… ver=… sig=…`), when it signs uploads and
    /// the device checks signatures.
    pub const SIGNATURE: &str = "wasmbed-signature";
    /// What the signature covers: `MODULE_ID VER TARGET` (the signed message's fields besides
    /// the bytes); another gateway reuses it only for the same three.
    pub const SIGNED_AS: &str = "wasmbed-signed-as";
}

/// The build locks of a gateway in the fleet.
#[derive(Clone)]
pub struct AotBuilds {
    /// The `wasmbed-aot-builds` bucket.
    pub locks: kv::Store,
    ttl: Duration,
}

/// An AOT file ready for a device.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The file.
    pub bytes: bytes::Bytes,
    /// Its object name.
    pub name: String,
    /// The stored signature, if it covers this module id, version and the device's target.
    pub signature: Option<String>,
}

/// What [`artifact`] found.
#[derive(Debug)]
pub enum Fetched {
    /// The file, built here or fetched.
    Ready(Artifact),
    /// Another gateway is building it: try again later (the message says who).
    Waiting(String),
}

impl AotBuilds {
    /// Opens the lock bucket, creating it with `max_age` = `ttl` when absent.
    pub async fn open(
        js: &async_nats::jetstream::Context,
        replicas: usize,
        ttl: Duration,
    ) -> Result<AotBuilds, FleetError> {
        let locks = bucket(
            js,
            kv::Config {
                bucket: BUCKET_AOT_BUILDS.into(),
                description: "wasmbed AOT build locks (docs/FLEET.md)".into(),
                history: 1,
                max_age: ttl,
                num_replicas: replicas,
                ..Default::default()
            },
        )
        .await?;
        // The bucket's max_age is whoever created it first: renew by that.
        let ttl = match locks.status().await {
            Ok(s) if !s.max_age().is_zero() => s.max_age(),
            _ => ttl,
        };
        Ok(AotBuilds { locks, ttl })
    }
}

/// The exact target an AOT file is built for, one line: the build target (the device
/// config's `aot_target`/`aot_cpu`/`aot_abi`, else INFO's), the features and bounds-check need
/// and AOT format version INFO reports, the device's WAMR version, and the builder's extra
/// wamrc flags. Devices with the same line take the same file. `None` without a build target.
pub fn target_line(state: &DeviceState, wamrc_flags: &[String]) -> Option<String> {
    let t = state.aot.as_ref().filter(|t| !t.target.is_empty())?;
    let info = state.info.as_ref();
    let exact = state.caps.aot_exact.as_ref();
    Some(format!(
        "arch={} cpu={} abi={} features={} bounds={} aot_version={} wamr={} flags={}",
        t.target,
        t.cpu.as_deref().unwrap_or("generic"),
        t.abi.as_deref().unwrap_or("-"),
        exact.map_or("-", |e| e.features.as_str()),
        exact.map_or("-", |e| {
            if e.bounds_required {
                "required"
            } else {
                "optional"
            }
        }),
        state
            .caps
            .aot_version
            .map_or_else(|| "-".to_string(), |v| v.to_string()),
        info.and_then(|i| i.wamr.as_deref()).unwrap_or("-"),
        wamrc_flags.join(","),
    ))
}

/// The object name of the AOT file of `source_sha` for `target` (a [`target_line`]):
/// `aot/<source sha256>/<first 16 hex digits of the line's sha256>`. Also the lock's key.
pub fn object_name(source_sha: &str, target: &str) -> String {
    format!("aot/{source_sha}/{}", &sha256_hex(target.as_bytes())[..16])
}

/// Reads an AOT file back, checking its sha256 against its metadata; `None` when absent.
async fn fetch(store: &AppStore, name: &str) -> Result<Option<(Vec<u8>, ObjectMeta)>, String> {
    let info = match store.modules.info(name).await {
        Ok(i) if !i.deleted => i,
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("AOT file {name} of the object store: {e}")),
    };
    let mut obj = store
        .modules
        .get(name)
        .await
        .map_err(|e| format!("AOT file {name} of the object store: {e}"))?;
    let mut out = Vec::new();
    (&mut obj)
        .take(MODULE_MAX as u64 + 1)
        .read_to_end(&mut out)
        .await
        .map_err(|e| format!("reading AOT file {name}: {e}"))?;
    if out.len() > MODULE_MAX {
        return Err(format!("AOT file {name} is over {MODULE_MAX} bytes"));
    }
    let want = info.metadata.get(meta::SHA256).cloned().unwrap_or_default();
    let got = sha256_hex(&out);
    if got != want {
        return Err(format!(
            "AOT file {name} read back with sha256 {got}, its metadata says {want:?} \
             (being replaced, or damaged: delete it with `nats object rm wasmbed-modules {name}` \
             and it is built again)"
        ));
    }
    Ok(Some((out, info.metadata)))
}

type ObjectMeta = HashMap<String, String>;

/// The signature stored with a file, if it covers `signed_as`.
fn reuse_signature(meta: &ObjectMeta, signed_as: Option<&str>) -> Option<String> {
    let s = meta.get(meta::SIGNATURE)?;
    (meta.get(meta::SIGNED_AS).map(String::as_str) == signed_as && signed_as.is_some())
        .then(|| s.clone())
}

/// What a signature for `dev` would cover (`MODULE_ID VER TARGET`), when it checks them.
fn signed_as(state: &DeviceState, module_id: &str, ver: u32) -> Option<String> {
    state.sig_mode.as_ref()?;
    let t = state.sig_target.as_ref()?;
    Some(format!("{module_id} {ver} {t}"))
}

/// The AOT file of C `source` (sha256 `source_sha`) for device `dev`: fetched from the
/// object store, or built here (under the build lock) and stored, or [`Fetched::Waiting`]
/// while another gateway builds it. `Err` says what failed.
pub async fn artifact(
    m: &Member,
    gw: &Gateway,
    (store, builds): (&AppStore, &AotBuilds),
    source_sha: &str,
    source: &[u8],
    dev: &str,
    module_id: &str,
) -> Result<Fetched, String> {
    let handle = gw
        .devices
        .get(dev)
        .ok_or_else(|| format!("device {dev} is not configured on this gateway"))?;
    let state = handle.snapshot();
    let flags = gw.compiler.wamrc_flags();
    let Some(line) = target_line(&state, flags) else {
        return Err(format!(
            "no AOT target for {dev} (its INFO reports none): set aot_target in the device's \
             config, or deploy the application with mode wasm"
        ));
    };
    let target = state.aot.clone().expect("target_line needs one");
    let name = object_name(source_sha, &line);
    let signed_as = signed_as(&state, module_id, 0);
    if let Some((bytes, meta)) = fetch(store, &name).await? {
        m.count_aot_fetch();
        return Ok(Fetched::Ready(Artifact {
            bytes: bytes.into(),
            signature: reuse_signature(&meta, signed_as.as_deref()),
            name,
        }));
    }
    // The lock, then (a builder may have finished since) the store again.
    let lock = json!({"gateway": m.gateway_id(), "startedMs": now_ms(), "target": line});
    let lock: bytes::Bytes = lock.to_string().into();
    let mut revision = match builds.locks.create(&name, lock.clone()).await {
        Ok(r) => r,
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
            let holder = match builds.locks.get(&name).await {
                Ok(Some(v)) => serde_json::from_slice::<serde_json::Value>(&v)
                    .ok()
                    .and_then(|v| v["gateway"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "another gateway".into()),
                _ => "another gateway".into(),
            };
            return Ok(Fetched::Waiting(format!(
                "waiting for gateway {holder} to build the AOT file {name} ({line}); if it \
                 died, its lock in {BUCKET_AOT_BUILDS} expires after {:?} and this gateway \
                 builds it",
                builds.ttl
            )));
        }
        Err(e) => return Err(format!("taking the build lock {name}: {e}")),
    };
    match fetch(store, &name).await {
        Ok(Some((bytes, meta))) => {
            release(builds, &name, revision).await;
            m.count_aot_fetch();
            return Ok(Fetched::Ready(Artifact {
                bytes: bytes.into(),
                signature: reuse_signature(&meta, signed_as.as_deref()),
                name,
            }));
        }
        Ok(None) => {}
        Err(e) => {
            release(builds, &name, revision).await;
            return Err(e);
        }
    }
    let built = build_renewing(gw, builds, &name, lock, &mut revision, source, &target).await;
    let bytes = match built {
        Ok(b) => b,
        Err(e) => {
            release(builds, &name, revision).await;
            return Err(e);
        }
    };
    m.count_aot_build();
    tracing::info!(device = dev, object = %name, target = %line, "fleet: built the AOT file for the fleet");
    let signature = match (&signed_as, gw.signing_key.as_deref(), &state.sig_target) {
        (Some(_), Some(key), Some(t)) => key
            .sign(
                &wasmbed_agent_proto::ModuleId::new(module_id)
                    .map_err(|e| format!("module id {module_id}: {e}"))?,
                0,
                Some(t),
                &bytes,
            )
            .ok()
            .map(|s| s.to_string()),
        _ => None,
    };
    let stored = put_once(
        m,
        gw,
        store,
        &name,
        source_sha,
        &line,
        &bytes,
        signature.as_deref().zip(signed_as.as_deref()),
    )
    .await;
    release(builds, &name, revision).await;
    stored?;
    Ok(Fetched::Ready(Artifact {
        bytes: bytes.into(),
        signature,
        name,
    }))
}

/// Builds while renewing the lock every third of its TTL (a lost renewal is logged: the
/// build goes on, and [`put_once`] keeps the file a successor may have stored first).
async fn build_renewing(
    gw: &Gateway,
    builds: &AotBuilds,
    name: &str,
    lock: bytes::Bytes,
    revision: &mut u64,
    source: &[u8],
    target: &AotTarget,
) -> Result<Vec<u8>, String> {
    let build = gw.compiler.build(source, BuildMode::Aot, Some(target));
    tokio::pin!(build);
    let every = builds.ttl / 3;
    loop {
        tokio::select! {
            built = &mut build => {
                return built.map(|b| b.bytes).map_err(|e| match &e {
                    crate::pipeline::CompileError::Failed { stderr, .. } => {
                        format!("building the AOT file {name}: {e}: {stderr}")
                    }
                    _ => format!("building the AOT file {name}: {e}"),
                });
            }
            _ = tokio::time::sleep(every) => {
                match builds.locks.update(name, lock.clone(), *revision).await {
                    Ok(r) => *revision = r,
                    Err(e) => tracing::warn!(object = name, "fleet: cannot renew the AOT build lock ({e}); building on"),
                }
            }
        }
    }
}

/// Deletes the build lock if it is still this gateway's (at `revision`).
async fn release(builds: &AotBuilds, name: &str, revision: u64) {
    if let Err(e) = builds
        .locks
        .delete_expect_revision(name, Some(revision))
        .await
    {
        tracing::debug!(object = name, "fleet: releasing the AOT build lock: {e}");
    }
}

/// Stores a built file unless one is stored already (a frozen builder's successor).
#[allow(clippy::too_many_arguments)]
async fn put_once(
    m: &Member,
    gw: &Gateway,
    store: &AppStore,
    name: &str,
    source_sha: &str,
    line: &str,
    bytes: &[u8],
    signature: Option<(&str, &str)>,
) -> Result<(), String> {
    if matches!(store.modules.info(name).await, Ok(i) if !i.deleted) {
        tracing::info!(
            object = name,
            "fleet: the AOT file was stored meanwhile: keeping that one"
        );
        return Ok(());
    }
    let (clang, wamrc) = gw.compiler.tool_versions().await;
    let mut md = HashMap::from([
        (meta::KIND.to_string(), "aot".to_string()),
        (meta::SOURCE.to_string(), source_sha.to_string()),
        (meta::TARGET.to_string(), line.to_string()),
        (meta::SHA256.to_string(), sha256_hex(bytes)),
        (meta::BUILT_BY.to_string(), m.gateway_id().to_string()),
        (
            meta::GATEWAY_VERSION.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (meta::CLANG.to_string(), clang),
        (meta::WAMRC.to_string(), wamrc),
        (meta::BUILT_MS.to_string(), now_ms().to_string()),
    ]);
    if let Some((sig, signed_as)) = signature {
        md.insert(meta::SIGNATURE.to_string(), sig.to_string());
        md.insert(meta::SIGNED_AS.to_string(), signed_as.to_string());
    }
    let obj = object_store::ObjectMetadata {
        name: name.to_string(),
        description: Some(format!(
            "AOT file of source {source_sha} for {line}, built by {}",
            m.gateway_id()
        )),
        metadata: md,
        ..Default::default()
    };
    let mut reader = std::io::Cursor::new(bytes.to_vec());
    store
        .modules
        .put(obj, &mut reader)
        .await
        .map_err(|e| format!("storing the AOT file {name}: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{AotExact, DeviceCaps};

    fn state(cpu: Option<&str>) -> DeviceState {
        DeviceState {
            aot: Some(AotTarget {
                target: "x86_64".into(),
                cpu: cpu.map(str::to_string),
                abi: Some("gnu".into()),
            }),
            caps: DeviceCaps {
                aot_version: Some(6),
                aot_exact: Some(AotExact {
                    cpu: cpu.unwrap_or("generic").into(),
                    features: "none".into(),
                    abi: "gnu".into(),
                    bounds_required: true,
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_target_line_names_everything_the_file_depends_on() {
        let flags = vec!["--bounds-checks=1".to_string()];
        let generic = target_line(&state(None), &flags).unwrap();
        assert_eq!(
            generic,
            "arch=x86_64 cpu=generic abi=gnu features=none bounds=required aot_version=6 wamr=- flags=--bounds-checks=1"
        );
        let other = target_line(&state(Some("x86-64")), &flags).unwrap();
        assert_ne!(object_name("ab", &generic), object_name("ab", &other));
        assert_eq!(object_name("ab", &generic), object_name("ab", &generic));
        assert!(object_name("ab", &generic).starts_with("aot/ab/"));
        assert_ne!(target_line(&state(None), &[]).unwrap(), generic);
        assert_eq!(target_line(&DeviceState::default(), &flags), None);
    }

    #[test]
    fn a_stored_signature_is_reused_only_for_what_it_covers() {
        let md: ObjectMeta = HashMap::from([
            (meta::SIGNATURE.to_string(), "key=1 ver=0 sig=2".to_string()),
            (
                meta::SIGNED_AS.to_string(),
                "blink 0 x86_64/generic".to_string(),
            ),
        ]);
        assert_eq!(
            reuse_signature(&md, Some("blink 0 x86_64/generic")).as_deref(),
            Some("key=1 ver=0 sig=2")
        );
        assert_eq!(reuse_signature(&md, Some("other 0 x86_64/generic")), None);
        assert_eq!(reuse_signature(&md, None), None);
    }
}
