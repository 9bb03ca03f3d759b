//! Signed modules (`docs/PROTOCOL.md` "Signed modules"): the message an Ed25519 module signature
//! covers, key ids and the hex forms used on the wire. One place for both the gateway (which
//! signs) and the tests; the C agent builds the same bytes in `firmware-agent/core/agent_sig.c`.
//!
//! The crate signs nothing itself (no key handling here): a signer passes
//! [`signed_message`] to its Ed25519 implementation (RFC 8032, pure Ed25519).

use std::fmt;

use sha2::{Digest, Sha512};

use crate::ident::{InvalidField, ModuleId};
use crate::message::InfoOk;

/// First line of every signed message: the domain, so a module signature is never valid as
/// anything else (and no other signature made with the same key is valid as a module signature).
pub const SIG_DOMAIN: &str = "wasmbed-module-signature-v1";

/// What a module's bytes are: the device tells them apart by the magic (`\0asm` / `\0aot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleKind {
    /// A WebAssembly binary.
    Wasm,
    /// A WAMR AOT file (native code for one target).
    Aot,
}

impl ModuleKind {
    /// The kind of `bytes`, as the agent decides it: `\0aot` first means AOT, anything else wasm.
    pub fn of(bytes: &[u8]) -> Self {
        if bytes.starts_with(b"\0aot") {
            ModuleKind::Aot
        } else {
            ModuleKind::Wasm
        }
    }

    /// `wasm` or `aot`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleKind::Wasm => "wasm",
            ModuleKind::Aot => "aot",
        }
    }
}

/// The exact AOT target a device runs (its INFO `aot_arch`, `aot_cpu`, `aot_features`,
/// `aot_abi`, `aot_version`): an AOT signature names it, so it is not valid on another target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AotTarget {
    /// `aot_arch=` (e.g. `thumbv7em`).
    pub arch: String,
    /// `aot_cpu=` (e.g. `cortex-m4`).
    pub cpu: String,
    /// `aot_features=` (`none` when absent).
    pub features: String,
    /// `aot_abi=` (e.g. `eabihf`).
    pub abi: String,
    /// `aot_version=` (6 for WAMR 2.4.3).
    pub aot_version: u32,
}

impl AotTarget {
    /// The target of a device from its INFO; `None` when INFO lacks the AOT fields.
    pub fn from_info(info: &InfoOk) -> Option<Self> {
        Some(AotTarget {
            arch: info.aot_arch.clone()?,
            cpu: info.aot_cpu.clone()?,
            features: info.aot_features.clone().unwrap_or_else(|| "none".into()),
            abi: info.aot_abi.clone()?,
            aot_version: info.aot_version?,
        })
    }
}

impl fmt::Display for AotTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}/{}",
            self.arch, self.cpu, self.features, self.abi, self.aot_version
        )
    }
}

/// The bytes an Ed25519 module signature covers: text lines naming the module id, the kind, the
/// AOT target (`none` for wasm), the version (anti-rollback), the size and the SHA-512 of the
/// exact (uncompressed) module bytes. An AOT module needs `target`.
pub fn signed_message(
    module_id: &ModuleId,
    ver: u32,
    target: Option<&AotTarget>,
    bytes: &[u8],
) -> Result<Vec<u8>, InvalidField> {
    let kind = ModuleKind::of(bytes);
    let target = match (kind, target) {
        (ModuleKind::Wasm, _) => "none".to_string(),
        (ModuleKind::Aot, Some(t)) => t.to_string(),
        (ModuleKind::Aot, None) => {
            return Err(InvalidField::new(
                "target",
                "an AOT module is signed for one target: give the device's AOT target",
            ))
        }
    };
    let size = u32::try_from(bytes.len())
        .map_err(|_| InvalidField::new("size", "a module is at most 4294967295 bytes"))?;
    let digest = hex(&Sha512::digest(bytes));
    Ok(format!(
        "{SIG_DOMAIN}\nmodule_id={module_id}\nkind={}\ntarget={target}\nver={ver}\nsize={size}\nsha512={digest}\n",
        kind.as_str()
    )
    .into_bytes())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Exactly `N` bytes from `2N` hex digits (any case).
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in text.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// A signing key's id: the first 8 bytes of SHA-512 of its Ed25519 public key, 16 hex digits on
/// the wire (`SIG key=`, INFO `sig_keys=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// The id of an Ed25519 public key.
    pub fn of(public_key: &[u8; 32]) -> Self {
        let h = Sha512::digest(public_key);
        let mut id = [0u8; 8];
        id.copy_from_slice(&h[..8]);
        KeyId(id)
    }

    /// Parses 16 hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        from_hex::<8>(text).map(KeyId)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

/// What a signed upload carries besides the bytes: the `SIG` line's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleSignature {
    /// The signed version (anti-rollback).
    pub ver: u32,
    /// The id of the signing key.
    pub key: KeyId,
    /// Ed25519 over [`signed_message`].
    pub sig: Signature,
}

/// The text form of a signature file (`wasmbed-host keys sign`, `deploy --signature FILE`):
/// `key=<16 hex> ver=<n> sig=<128 hex>` on one line.
impl fmt::Display for ModuleSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key={} ver={} sig={}", self.key, self.ver, self.sig)
    }
}

impl std::str::FromStr for ModuleSignature {
    type Err = InvalidField;

    fn from_str(text: &str) -> Result<Self, InvalidField> {
        let mut key = None;
        let mut ver = None;
        let mut sig = None;
        for field in text.split_whitespace() {
            match field.split_once('=') {
                Some(("key", v)) => key = KeyId::parse(v),
                Some(("ver", v)) => ver = v.parse::<u32>().ok(),
                Some(("sig", v)) => sig = Signature::parse(v),
                _ => {}
            }
        }
        let missing = |what: &str| {
            InvalidField::new(
                "signature",
                format!("want `key=<16 hex> ver=<n> sig=<128 hex>`: {what} missing or malformed"),
            )
        };
        Ok(ModuleSignature {
            key: key.ok_or_else(|| missing("key"))?,
            ver: ver.ok_or_else(|| missing("ver"))?,
            sig: sig.ok_or_else(|| missing("sig"))?,
        })
    }
}

/// An Ed25519 signature, 128 hex digits on the wire (`SIG sig=`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// Parses 128 hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        from_hex::<64>(text).map(Signature)
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_every_bound_field() {
        let id = ModuleId::new("blink").unwrap();
        let m = signed_message(&id, 7, None, b"\0asm\x01\0\0\0").unwrap();
        let text = String::from_utf8(m).unwrap();
        // sha512: `printf '\0asm\1\0\0\0' | sha512sum`
        assert_eq!(
            text,
            "wasmbed-module-signature-v1\nmodule_id=blink\nkind=wasm\ntarget=none\nver=7\nsize=8\n\
             sha512=e20ed12e5a7e3bdee30a3a4f26c2813edb79b8fbead058d15688f104f6039a5a\
             3de349e9cbbdd5d9a68f306d0804914e45124f0dedc0bcbefa7b30dd778aa6c0\n"
        );
    }

    #[test]
    fn aot_needs_and_names_its_target() {
        let id = ModuleId::new("m").unwrap();
        let aot = b"\0aot\x06\0\0\0rest";
        assert!(signed_message(&id, 0, None, aot).is_err());
        let t = AotTarget {
            arch: "thumbv7em".into(),
            cpu: "cortex-m4".into(),
            features: "none".into(),
            abi: "eabihf".into(),
            aot_version: 6,
        };
        let text = String::from_utf8(signed_message(&id, 0, Some(&t), aot).unwrap()).unwrap();
        assert!(text.contains("\nkind=aot\ntarget=thumbv7em/cortex-m4/none/eabihf/6\n"));
    }

    #[test]
    fn signature_file_round_trips() {
        let s = ModuleSignature {
            ver: 3,
            key: KeyId([1, 2, 3, 4, 5, 6, 7, 8]),
            sig: Signature([0xab; 64]),
        };
        let text = s.to_string();
        assert_eq!(text.parse::<ModuleSignature>().unwrap(), s);
        assert!(format!("{text}\n").parse::<ModuleSignature>().is_ok());
        assert!("key=0102 ver=3".parse::<ModuleSignature>().is_err());
    }

    #[test]
    fn hex_forms_round_trip() {
        let k = KeyId([0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 0xff]);
        assert_eq!(k.to_string(), "deadbeef000102ff");
        assert_eq!(KeyId::parse("DEADBEEF000102FF"), Some(k));
        assert_eq!(KeyId::parse("deadbeef"), None);
        assert!(Signature::parse(&"ab".repeat(64)).is_some());
        assert!(Signature::parse(&"zz".repeat(64)).is_none());
    }
}
