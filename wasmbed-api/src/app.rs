//! Applications: desired state for a fleet (docs/FLEET.md), in Kubernetes' vocabulary.
//!
//! An [`Application`] says which module runs on which devices: the module (by the sha256 of
//! its bytes in the fleet's object store), the module id it takes on the device, the function
//! and arguments to start, a selector over device labels (and/or names), how many devices
//! (`replicas`, or every matching one), the restart policy and the rollout strategy. Each
//! gateway reconciles the devices it owns and writes one [`AppDeviceStatus`] per device; the
//! application's status is the aggregate of those ([`AppSummary`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `apiVersion` of applications (and of the fleet's other records).
pub const APP_API_VERSION: &str = "wasmbed.dev/v1alpha1";
/// `kind` of an application.
pub const APP_KIND: &str = "Application";
/// Longest application name (a Kubernetes DNS label).
pub const APP_NAME_MAX: usize = 63;

/// An application: what should run where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// [`APP_API_VERSION`].
    #[serde(default = "api_version")]
    pub api_version: String,
    /// [`APP_KIND`].
    #[serde(default = "kind")]
    pub kind: String,
    /// Name, labels, generation.
    pub metadata: AppMetadata,
    /// The desired state.
    pub spec: AppSpec,
}

fn api_version() -> String {
    APP_API_VERSION.into()
}
fn kind() -> String {
    APP_KIND.into()
}

/// `metadata` of an application.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppMetadata {
    /// Unique name in the fleet: 1..=63 of `[a-z0-9-]`, starting and ending alphanumeric.
    pub name: String,
    /// Free labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Raised by every `apply` that changes the spec (set by the fleet, not by the file).
    #[serde(default)]
    pub generation: u64,
}

/// `spec` of an application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppSpec {
    /// The module.
    pub module: ModuleRef,
    /// Module id on the device (default: the application's name, which must then be at most
    /// 31 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_id: Option<String>,
    /// Export to start after deploying (`None`: deploy only, start nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Up to 4 i32 arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<i32>,
    /// Which devices.
    #[serde(default)]
    pub selector: Selector,
    /// How many of the matching devices.
    #[serde(default)]
    pub replicas: Replicas,
    /// When a job that ended is started again.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// How a changed spec reaches the devices.
    #[serde(default)]
    pub strategy: Strategy,
}

/// The module of an application.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModuleRef {
    /// A file on the host running `apply` (`.wasm`, `.aot` or `.c`), relative to the
    /// application file; `apply` stores it in the object store and fills `sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The sha256 (64 hex digits) of the module's bytes in the fleet's object store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// What the bytes are.
    #[serde(default)]
    pub kind: ModuleKind,
    /// `kind = "c"`: build to interpreted wasm (default) or to AOT (per device target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::BuildMode>,
    /// Size in bytes (filled by `apply`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// What a module's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleKind {
    /// A `.wasm` or `.aot` image, deployed as is.
    #[default]
    Wasm,
    /// An AOT image, deployed as is.
    Aot,
    /// A C source: mode `wasm` is built by each device's gateway (`build_and_deploy`); mode
    /// `aot` once per device target in the fleet, the file shared (docs/FLEET.md).
    C,
}

impl ModuleKind {
    /// The kind a file name suggests (`.c` → C, `.aot` → AOT, else wasm).
    pub fn from_path(path: &str) -> ModuleKind {
        if path.ends_with(".c") {
            ModuleKind::C
        } else if path.ends_with(".aot") {
            ModuleKind::Aot
        } else {
            ModuleKind::Wasm
        }
    }
}

/// Which devices an application targets: every device whose labels hold all of
/// `matchLabels` and, when `devices` is not empty, whose name is listed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selector {
    /// Labels a device must have.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Device names (empty: any name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
}

impl Selector {
    /// Whether a device with this name and these labels is selected.
    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        (self.devices.is_empty() || self.devices.iter().any(|d| d == name))
            && self
                .match_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// How many matching devices run the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Replicas {
    /// Every matching device (written `"all"`).
    #[default]
    All,
    /// This many: the first N matching online devices by name.
    Count(u32),
}

impl Serialize for Replicas {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Replicas::All => s.serialize_str("all"),
            Replicas::Count(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Replicas {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u32),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Replicas::Count(n)),
            Raw::S(s) if s == "all" => Ok(Replicas::All),
            Raw::S(s) => Err(serde::de::Error::custom(format!(
                "replicas: `{s}` is neither a number nor \"all\""
            ))),
        }
    }
}

/// When a job that ended is started again (a redeploy after a reboot always starts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RestartPolicy {
    /// Whenever it ended.
    Always,
    /// When it trapped or could not start.
    OnFailure,
    /// Never: a job that returned stays `Completed`.
    #[default]
    Never,
}

/// The rollout strategy of a changed spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Strategy {
    /// At most this many devices are being updated at once, across the fleet.
    #[serde(default = "one")]
    pub max_unavailable: u32,
}

fn one() -> u32 {
    1
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy { max_unavailable: 1 }
    }
}

/// An invalid application.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("application: {0}")]
pub struct AppError(pub String);

impl Application {
    /// The module id the application takes on its devices.
    pub fn module_id(&self) -> &str {
        self.spec
            .module_id
            .as_deref()
            .unwrap_or(&self.metadata.name)
    }

    /// Checks names, identifiers, the module reference and bounds; `need_sha` when the module
    /// must already be in the object store (what the fleet stores).
    pub fn validate(&self, need_sha: bool) -> Result<(), AppError> {
        let e = |m: String| Err(AppError(m));
        if self.api_version != APP_API_VERSION {
            return e(format!(
                "apiVersion `{}`: use `{APP_API_VERSION}`",
                self.api_version
            ));
        }
        if self.kind != APP_KIND {
            return e(format!("kind `{}`: use `{APP_KIND}`", self.kind));
        }
        let n = &self.metadata.name;
        let ok = !n.is_empty()
            && n.len() <= APP_NAME_MAX
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !n.starts_with('-')
            && !n.ends_with('-');
        if !ok {
            return e(format!(
                "metadata.name `{n}`: use 1..{APP_NAME_MAX} of [a-z0-9-], starting and ending with a letter or digit"
            ));
        }
        wasmbed_agent_proto::ident::validate_ident(
            "module_id",
            self.module_id(),
            wasmbed_agent_proto::ident::MODULE_ID_MAX,
        )
        .map_err(|x| {
            AppError(format!(
                "{x} (set spec.moduleId when the name is longer than 31 characters)"
            ))
        })?;
        if let Some(f) = &self.spec.function {
            wasmbed_agent_proto::ident::validate_ident(
                "function",
                f,
                wasmbed_agent_proto::ident::FUNC_MAX,
            )
            .map_err(|x| AppError(x.to_string()))?;
        }
        if self.spec.args.len() > crate::ARGS_MAX {
            return e(format!("spec.args: at most {} arguments", crate::ARGS_MAX));
        }
        match (&self.spec.module.sha256, &self.spec.module.path) {
            (Some(s), _) if !is_sha256(s) => {
                return e(format!("spec.module.sha256 `{s}`: 64 lowercase hex digits"))
            }
            (None, _) if need_sha => return e("spec.module.sha256 is missing".into()),
            (None, None) => {
                return e("spec.module: give `path` (a file) or `sha256` (a stored module)".into())
            }
            _ => {}
        }
        if self.spec.module.mode.is_some() && self.spec.module.kind != ModuleKind::C {
            return e("spec.module.mode applies to kind = \"c\" only".into());
        }
        if self.spec.strategy.max_unavailable == 0 {
            return e("spec.strategy.maxUnavailable must be at least 1".into());
        }
        Ok(())
    }
}

/// Whether `s` is 64 lowercase hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Where an application stands on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppPhase {
    /// Not deployed yet (or being deployed).
    Pending,
    /// Waiting for a rollout slot (`maxUnavailable` devices are being updated).
    Waiting,
    /// Being updated to a new generation (holds a rollout slot).
    Updating,
    /// Deployed; its job runs (or nothing is to run).
    Running,
    /// Deployed; its job returned and the restart policy keeps it ended.
    Completed,
    /// Deploying or starting failed, or the job trapped and is not restarted.
    Failed,
}

/// A condition of an application on a device (Kubernetes style).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Deployed`, `Started`, `Ready`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `"True"` or `"False"`.
    pub status: String,
    /// Why, in one word.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Details.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl Condition {
    /// A condition.
    pub fn new(kind: &str, ok: bool, reason: &str, message: impl Into<String>) -> Condition {
        Condition {
            kind: kind.into(),
            status: if ok { "True" } else { "False" }.into(),
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The reported state of an application on one device, written by the gateway owning it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDeviceStatus {
    /// The application.
    pub app: String,
    /// The device.
    pub device: String,
    /// The gateway that reconciled it last.
    pub gateway: String,
    /// The module id it has on the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_id: Option<String>,
    /// The application generation this status was computed for.
    pub observed_generation: u64,
    /// The sha256 of the module deployed (`None`: nothing deployed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_sha256: Option<String>,
    /// The generation the deployed module and its job belong to.
    #[serde(default)]
    pub deployed_generation: u64,
    /// Where it stands.
    pub phase: AppPhase,
    /// The job's state (`running`, `done`, `lost`), if one was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_state: Option<String>,
    /// The last RESULT heard (`OK ret=…`, `EXCEPTION …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
    /// The last error (deploy or start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Jobs started again by the restart policy, and deploys after a device lost the module.
    #[serde(default)]
    pub restarts: u32,
    /// When the last update of this device began and ended (unix ms), for rollouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_started_ms: Option<u64>,
    /// See `update_started_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_done_ms: Option<u64>,
    /// Conditions `Deployed`, `Started`, `Ready`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// When written (unix ms).
    pub updated_ms: u64,
    /// The fencing token (the device's claim revision) the writing gateway held: it only grows
    /// across owners of the device (docs/FLEET.md, "Claims and fencing").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<u64>,
}

impl AppDeviceStatus {
    /// Ready at `generation`: deployed and running (or completed) for it.
    pub fn ready_at(&self, generation: u64) -> bool {
        self.observed_generation == generation
            && self.deployed_generation == generation
            && matches!(self.phase, AppPhase::Running | AppPhase::Completed)
    }
}

/// An application with the aggregate of its devices' reported state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSummary {
    /// The application as stored.
    #[serde(flatten)]
    pub app: Application,
    /// The aggregate.
    pub status: AppStatus,
}

/// `status` of an application: computed by readers from the per-device records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    /// Devices the application targets now (selector, replicas, online).
    pub desired: u32,
    /// Of those, ready at the current generation.
    pub ready: u32,
    /// Of those, ready at the current generation with the current module.
    pub updated: u32,
    /// The lowest generation any targeted device observed (the application's
    /// `observedGeneration`).
    pub observed_generation: u64,
    /// `desired == ready` and every targeted device observed the current generation.
    pub converged: bool,
    /// Per device.
    pub devices: Vec<AppDeviceStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let a: Application = serde_json::from_value(serde_json::json!({
            "apiVersion": "wasmbed.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": "blink"},
            "spec": {"module": {"path": "blink.wasm"}, "function": "app_main",
                     "selector": {"matchLabels": {"room": "lab"}}, "replicas": 2,
                     "restartPolicy": "OnFailure", "strategy": {"maxUnavailable": 2}}
        }))
        .unwrap();
        assert_eq!(a.spec.replicas, Replicas::Count(2));
        assert_eq!(a.spec.restart_policy, RestartPolicy::OnFailure);
        assert_eq!(a.module_id(), "blink");
        a.validate(false).unwrap();
        assert!(a.validate(true).is_err(), "no sha256 yet");
        let mut b = a.clone();
        b.metadata.name = "Blink".into();
        assert!(b.validate(false).is_err());
        let mut b = a.clone();
        b.metadata.name = "a".repeat(40);
        assert!(b.validate(false).unwrap_err().0.contains("moduleId"));
        let mut b = a.clone();
        b.spec.module.sha256 = Some("ab".into());
        assert!(b.validate(false).is_err());
        let s: Replicas = serde_json::from_str("\"all\"").unwrap();
        assert_eq!(s, Replicas::All);
        assert!(serde_json::from_str::<Replicas>("\"most\"").is_err());
        assert!(serde_json::from_value::<AppSpec>(
            serde_json::json!({"module": {"path": "x"}, "replica": 2})
        )
        .is_err());
    }

    #[test]
    fn selector_matches() {
        let sel = Selector {
            match_labels: [("room".to_string(), "lab".to_string())].into(),
            devices: vec![],
        };
        let lab = [("room".to_string(), "lab".to_string())].into();
        assert!(sel.matches("a", &lab));
        assert!(!sel.matches("a", &BTreeMap::new()));
        let named = Selector {
            devices: vec!["b".into()],
            ..sel
        };
        assert!(!named.matches("a", &lab));
        assert!(named.matches("b", &lab));
    }
}
