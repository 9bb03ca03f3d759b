//! Device identity and enrollment (docs/SECURITY.md "Device identity"): which identity key is
//! pinned for each device name, the enrollment policy, and what a device's identity allows.
//!
//! The device task challenges a device on every (re)connect (`device/task/identify.rs`) and
//! records what it saw ([`Seen`]); everything else is decided here, from that and the pins:
//! the state the host API shows ([`IdentityStore::view`]), whether a command may run
//! ([`IdentityStore::gate`]), trust on first use, and `approve` / `forget`.
//!
//! Pins are kept in `<state_dir>/identities.json` (mode 0600, written whole and renamed into
//! place), one entry per device name: the fingerprint and key of the approved identity key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use wasmbed_agent_proto::identity::{self, Verified};
use wasmbed_api::{DeviceIdentity, IdentityState};

/// How devices with an identity key not pinned yet are enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Enrollment {
    /// New keys stay `pending` (commands refused) until `wasmbed-host devices approve NAME`.
    #[default]
    Approve,
    /// Trust on first use: the first key a device name proves is pinned at once.
    Tofu,
}

impl std::str::FromStr for Enrollment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "approve" => Ok(Enrollment::Approve),
            "tofu" => Ok(Enrollment::Tofu),
            other => Err(format!(
                "`{other}` is not an enrollment mode: approve or tofu"
            )),
        }
    }
}

/// The `[identity]` table of the gateway config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Enrollment of new keys (default `approve`).
    pub enrollment: Enrollment,
    /// Serve devices that have no identity key (legacy v1 firmware, firmware built without a
    /// key) as long as no key is pinned for their name (default true). A device name with a
    /// pinned key that shows up without one is a `mismatch` either way.
    pub allow_anonymous: bool,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            enrollment: Enrollment::Approve,
            allow_anonymous: true,
        }
    }
}

/// What a device showed of its identity on its current link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Seen {
    /// Not checked on this link yet.
    #[default]
    Unknown,
    /// No identity key: why (legacy firmware, `identity=none`, ...).
    Anonymous(String),
    /// It proved it holds this key (a fresh `IDENT` challenge verified).
    Proved(Verified),
    /// It announced a key but did not prove it.
    Failed {
        /// The fingerprint INFO announced, if any.
        announced: Option<String>,
        /// What went wrong (bad or replayed signature, no answer, an unknown scheme).
        reason: String,
    },
}

/// Why the identity refuses a command; the host API code follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A key that is not approved: `DEVICE_PENDING`.
    Pending,
    /// Another key than the pinned one, or a failed proof: `IDENTITY_MISMATCH`.
    Mismatch,
    /// No identity key while the gateway requires one: `DEVICE_PENDING`.
    Anonymous,
    /// Not checked on this link yet: `DEVICE_OFFLINE`.
    Unverified,
}

/// A refused command: the kind, a message and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The kind.
    pub kind: Refusal,
    /// What is wrong.
    pub message: String,
    /// What to do next.
    pub help: String,
}

/// An `approve`/`forget` that cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollError {
    /// The fingerprint given is not the key the device proved.
    #[error("{device} proved key {proved}, not {given}")]
    NotPresented {
        /// Device.
        device: String,
        /// Its key's fingerprint.
        proved: String,
        /// The fingerprint given.
        given: String,
    },
    /// The device proved a key other than the pinned one and no fingerprint was given.
    #[error("{device} proved key {proved}, but {pinned} is pinned: another board answers at its endpoint")]
    NeedsFingerprint {
        /// Device.
        device: String,
        /// Its key's fingerprint.
        proved: String,
        /// The pinned fingerprint.
        pinned: String,
    },
    /// Nothing to approve: the device has not proved a key and no full fingerprint was given.
    #[error("{device} has not proved an identity key on its current link ({state})")]
    NothingToApprove {
        /// Device.
        device: String,
        /// Its identity state.
        state: IdentityState,
    },
    /// The pins could not be saved.
    #[error("cannot save {path}: {reason}")]
    Save {
        /// The file.
        path: String,
        /// The IO error.
        reason: String,
    },
}

impl EnrollError {
    /// What to do next.
    pub fn help(&self) -> String {
        match self {
            EnrollError::NotPresented { .. } => {
                "the fingerprint must be the key the device proved \
                (`wasmbed-host devices` shows it); pinning another key would lock the device out"
                    .into()
            }
            EnrollError::NeedsFingerprint { device, proved, .. } => format!(
                "if the board was replaced on purpose, accept its key with `wasmbed-host devices \
                 approve {device} --fingerprint {proved}`; otherwise put the enrolled board back"
            ),
            EnrollError::NothingToApprove { device, .. } => format!(
                "wait until `wasmbed-host devices` shows {device} pending, or pin a key ahead of \
                 its first connect with `--fingerprint` and all 32 digits"
            ),
            EnrollError::Save { .. } => {
                "check the gateway's `state_dir` (permissions, free space)".into()
            }
        }
    }
}

/// One approved identity key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// Its fingerprint (32 hex digits).
    pub fingerprint: String,
    /// The key (64 hex digits), when it was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `operator` (approve) or `tofu` (trust on first use).
    pub approved_by: String,
    /// When, in seconds since the Unix epoch.
    pub approved_unix: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinFile {
    #[serde(default)]
    devices: BTreeMap<String, Pin>,
}

/// The pinned keys and the policy; shared by every device of a gateway.
#[derive(Debug)]
pub struct IdentityStore {
    policy: IdentityConfig,
    path: Option<PathBuf>,
    pins: Mutex<BTreeMap<String, Pin>>,
}

/// The file name of the pins under the state dir.
pub const PIN_FILE: &str = "identities.json";

impl IdentityStore {
    /// A store that keeps its pins in memory only (library use and tests).
    pub fn in_memory(policy: IdentityConfig) -> Self {
        Self {
            policy,
            path: None,
            pins: Mutex::new(BTreeMap::new()),
        }
    }

    /// Opens `<state_dir>/identities.json` (absent: no pins yet; created at the first pin).
    pub fn open(policy: IdentityConfig, state_dir: &Path) -> Result<Self, String> {
        let path = state_dir.join(PIN_FILE);
        let pins = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file: PinFile = serde_json::from_str(&text).map_err(|e| {
                    format!(
                        "{}: {e} (fix it, or move it away to forget every approved device)",
                        path.display()
                    )
                })?;
                for (name, pin) in &file.devices {
                    if !identity::is_fingerprint(&pin.fingerprint) {
                        return Err(format!(
                            "{}: device `{name}`: fingerprint `{}` is not 32 hex digits",
                            path.display(),
                            pin.fingerprint
                        ));
                    }
                }
                file.devices
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(Self {
            policy,
            path: Some(path),
            pins: Mutex::new(pins),
        })
    }

    /// The policy.
    pub fn policy(&self) -> IdentityConfig {
        self.policy
    }

    /// The pin of a device name.
    pub fn pinned(&self, device: &str) -> Option<Pin> {
        self.pins.lock().expect("pins lock").get(device).cloned()
    }

    /// Records what a device proved on a new link: with `tofu`, a first key is pinned now.
    /// Returns the resulting view.
    pub fn record(&self, device: &str, seen: &Seen) -> Result<DeviceIdentity, EnrollError> {
        if let (Seen::Proved(v), Enrollment::Tofu) = (seen, self.policy.enrollment) {
            let mut pins = self.pins.lock().expect("pins lock");
            if !pins.contains_key(device) {
                pins.insert(device.to_string(), pin_of(v, "tofu"));
                self.save(&pins)?;
                tracing::warn!(
                    device,
                    "trust on first use: pinned identity key {}",
                    v.fingerprint
                );
            }
        }
        Ok(self.view(device, seen))
    }

    /// The identity of `device` as the host API shows it.
    pub fn view(&self, device: &str, seen: &Seen) -> DeviceIdentity {
        let pin = self.pinned(device).map(|p| p.fingerprint);
        let (state, fingerprint, reason) = match seen {
            Seen::Unknown => (IdentityState::Unknown, None, None),
            Seen::Anonymous(why) => match &pin {
                Some(p) => (
                    IdentityState::Mismatch,
                    None,
                    Some(format!(
                        "key {p} is pinned, but the device has none ({why})"
                    )),
                ),
                None => (IdentityState::None, None, Some(why.clone())),
            },
            Seen::Proved(v) => {
                let fp = Some(v.fingerprint.clone());
                match &pin {
                    None => (IdentityState::Pending, fp, None),
                    Some(p) if *p == v.fingerprint => (IdentityState::Approved, fp, None),
                    Some(p) => (
                        IdentityState::Mismatch,
                        fp,
                        Some(format!(
                            "the device proved key {}, the pinned key is {p}",
                            v.fingerprint
                        )),
                    ),
                }
            }
            Seen::Failed { announced, reason } => (
                IdentityState::Failed,
                announced.clone(),
                Some(reason.clone()),
            ),
        };
        let allowed = match state {
            IdentityState::Approved => true,
            IdentityState::None => self.policy.allow_anonymous,
            // Not checked yet and nothing pinned: as before identity existed.
            IdentityState::Unknown => pin.is_none() && self.policy.allow_anonymous,
            _ => false,
        };
        DeviceIdentity {
            state,
            fingerprint,
            pinned: pin,
            reason,
            allowed,
        }
    }

    /// Whether a command that loads, runs or changes code may go to `device` now.
    pub fn gate(&self, device: &str, seen: &Seen) -> Result<(), Refused> {
        let v = self.view(device, seen);
        if v.allowed {
            return Ok(());
        }
        let fp = v.fingerprint.as_deref().unwrap_or("?");
        let reason = v.reason.as_deref().unwrap_or("");
        let (kind, message, help) = match v.state {
            IdentityState::Pending => (
                Refusal::Pending,
                format!("{device} is pending: its identity key {fp} is not approved"),
                format!(
                    "check that {} is the board's key (its provisioning record, or the sim's \
                     state file), then `wasmbed-host devices approve {device}`",
                    identity::short(fp)
                ),
            ),
            IdentityState::Mismatch => (
                Refusal::Mismatch,
                format!("{device}: identity mismatch: {reason}"),
                format!(
                    "another board answers at {device}'s endpoint: put the enrolled board back, \
                     or accept this one with `wasmbed-host devices approve {device} \
                     --fingerprint {fp}`"
                ),
            ),
            IdentityState::Failed => (
                Refusal::Mismatch,
                format!("{device} did not prove its identity key: {reason}"),
                "a replayed or forged answer, or a broken board: check what is connected to the \
                 endpoint; the gateway challenges the device again when it reconnects \
                 (`wasmbed-host info` asks again now)"
                    .to_string(),
            ),
            IdentityState::None => (
                Refusal::Anonymous,
                format!("{device} has no identity key ({reason}) and this gateway requires one"),
                "provision the board with an identity key (docs/SECURITY.md \"Device \
                 identity\"), or set `allow_anonymous = true` in the gateway's [identity] table"
                    .to_string(),
            ),
            IdentityState::Unknown | IdentityState::Approved => (
                Refusal::Unverified,
                format!("{device}'s identity is not verified on its current link yet"),
                "wait until the device answers (`wasmbed-host devices`), then retry".to_string(),
            ),
        };
        Err(Refused {
            kind,
            message,
            help,
        })
    }

    /// `approve`: pins the key the device proved (or `fingerprint`, see docs/HOST-API.md).
    pub fn approve(
        &self,
        device: &str,
        seen: &Seen,
        fingerprint: Option<&str>,
    ) -> Result<DeviceIdentity, EnrollError> {
        let given = fingerprint.map(str::to_ascii_lowercase);
        let mut pins = self.pins.lock().expect("pins lock");
        let pin = match (seen, given) {
            (Seen::Proved(v), Some(g)) if v.fingerprint.starts_with(&g) => pin_of(v, "operator"),
            (Seen::Proved(v), Some(g)) => {
                return Err(EnrollError::NotPresented {
                    device: device.into(),
                    proved: v.fingerprint.clone(),
                    given: g,
                })
            }
            (Seen::Proved(v), None) => match pins.get(device) {
                Some(p) if p.fingerprint != v.fingerprint => {
                    return Err(EnrollError::NeedsFingerprint {
                        device: device.into(),
                        proved: v.fingerprint.clone(),
                        pinned: p.fingerprint.clone(),
                    })
                }
                _ => pin_of(v, "operator"),
            },
            (_, Some(g)) if identity::is_fingerprint(&g) => Pin {
                fingerprint: g,
                key: None,
                approved_by: "operator".into(),
                approved_unix: now_unix(),
            },
            (_, _) => {
                drop(pins);
                return Err(EnrollError::NothingToApprove {
                    device: device.into(),
                    state: self.view(device, seen).state,
                });
            }
        };
        tracing::info!(device, "identity key {} approved", pin.fingerprint);
        pins.insert(device.to_string(), pin);
        self.save(&pins)?;
        drop(pins);
        Ok(self.view(device, seen))
    }

    /// `forget`: removes the pin of `device` (with `tofu`, the key it proves next is pinned
    /// again at its next connect).
    pub fn forget(&self, device: &str, seen: &Seen) -> Result<DeviceIdentity, EnrollError> {
        let mut pins = self.pins.lock().expect("pins lock");
        if pins.remove(device).is_some() {
            tracing::info!(device, "identity key forgotten");
            self.save(&pins)?;
        }
        drop(pins);
        Ok(self.view(device, seen))
    }

    /// Writes the pins (a temporary file, mode 0600, renamed over the old one).
    fn save(&self, pins: &BTreeMap<String, Pin>) -> Result<(), EnrollError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let err = |e: std::io::Error| EnrollError::Save {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
        }
        let file = PinFile {
            devices: pins.clone(),
        };
        let text = serde_json::to_string_pretty(&file).expect("pins serialize") + "\n";
        let mut tmp = tempfile::Builder::new()
            .prefix(".identities")
            .tempfile_in(dir)
            .map_err(err)?;
        {
            use std::io::Write as _;
            tmp.write_all(text.as_bytes()).map_err(err)?;
            tmp.as_file().sync_all().map_err(err)?;
        }
        // tempfile creates it 0600
        tmp.persist(path).map_err(|e| err(e.error))?;
        Ok(())
    }
}

fn pin_of(v: &Verified, by: &str) -> Pin {
    Pin {
        fingerprint: v.fingerprint.clone(),
        key: Some(v.key_hex()),
        approved_by: by.into(),
        approved_unix: now_unix(),
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proved(b: u8) -> Seen {
        let key = [b; 32];
        Seen::Proved(Verified {
            key,
            fingerprint: identity::fingerprint(&key),
        })
    }

    fn fp(s: &Seen) -> String {
        match s {
            Seen::Proved(v) => v.fingerprint.clone(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn approve_mode_pending_until_approved_then_mismatch_on_another_key() {
        let s = IdentityStore::in_memory(IdentityConfig::default());
        let a = proved(1);
        let v = s.record("d", &a).unwrap();
        assert_eq!((v.state, v.allowed), (IdentityState::Pending, false));
        assert_eq!(s.gate("d", &a).unwrap_err().kind, Refusal::Pending);
        let v = s.approve("d", &a, None).unwrap();
        assert_eq!((v.state, v.allowed), (IdentityState::Approved, true));
        s.gate("d", &a).unwrap();
        let b = proved(2);
        let v = s.record("d", &b).unwrap();
        assert_eq!(v.state, IdentityState::Mismatch);
        assert_eq!(s.gate("d", &b).unwrap_err().kind, Refusal::Mismatch);
        assert!(matches!(
            s.approve("d", &b, None),
            Err(EnrollError::NeedsFingerprint { .. })
        ));
        assert!(matches!(
            s.approve("d", &b, Some(&fp(&a)[..12])),
            Err(EnrollError::NotPresented { .. })
        ));
        let v = s.approve("d", &b, Some(&fp(&b)[..12])).unwrap();
        assert_eq!(v.state, IdentityState::Approved);
        // a pinned name without a key is a mismatch (firmware swapped for one without identity)
        let anon = Seen::Anonymous("legacy".into());
        assert_eq!(s.view("d", &anon).state, IdentityState::Mismatch);
        let v = s.forget("d", &anon).unwrap();
        assert_eq!((v.state, v.allowed), (IdentityState::None, true));
    }

    #[test]
    fn tofu_pins_the_first_key_and_anonymous_follows_the_policy() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = IdentityConfig {
            enrollment: Enrollment::Tofu,
            allow_anonymous: false,
        };
        let s = IdentityStore::open(cfg, dir.path()).unwrap();
        let a = proved(3);
        assert_eq!(s.record("d", &a).unwrap().state, IdentityState::Approved);
        assert_eq!(
            s.record("d", &proved(4)).unwrap().state,
            IdentityState::Mismatch
        );
        let anon = Seen::Anonymous("v1".into());
        assert_eq!(s.gate("x", &anon).unwrap_err().kind, Refusal::Anonymous);
        let failed = Seen::Failed {
            announced: None,
            reason: "replayed".into(),
        };
        assert_eq!(s.gate("d", &failed).unwrap_err().kind, Refusal::Mismatch);
        // persisted, private, read back
        let file = dir.path().join(PIN_FILE);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = IdentityStore::open(cfg, dir.path()).unwrap();
        assert_eq!(again.pinned("d").unwrap().fingerprint, fp(&a));
        assert_eq!(again.pinned("d").unwrap().approved_by, "tofu");
        // a pin ahead of the first connect needs all 32 digits
        assert!(matches!(
            again.approve("new", &Seen::Unknown, Some("0123456789ab")),
            Err(EnrollError::NothingToApprove { .. })
        ));
        let full = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            again
                .approve("new", &Seen::Unknown, Some(full))
                .unwrap()
                .pinned
                .as_deref(),
            Some(full)
        );
        std::fs::write(&file, "{").unwrap();
        let e = IdentityStore::open(cfg, dir.path()).unwrap_err();
        assert!(e.contains("identities.json"), "{e}");
    }
}
