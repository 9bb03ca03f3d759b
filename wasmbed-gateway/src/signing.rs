//! Module-signing keys (docs/SECURITY.md "Signed modules"): the gateway signs what it uploads
//! with the key of `[signing] key_file`; `wasmbed-host keys` makes, shows and uses the same files.
//!
//! A key file holds one line: the 32-byte Ed25519 secret seed in 64 hex digits. It must be
//! private (mode 0600): the gateway refuses one that group or others may read.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};
use wasmbed_agent_proto::signing::{hex, signed_message, AotTarget, KeyId, ModuleSignature};
use wasmbed_agent_proto::{ModuleId, Signature};

/// Why a key file cannot be used; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is readable or writable by group or others.
    #[error("key file {path} has mode {mode:03o}: make it private with `chmod 600 {path}`")]
    NotPrivate {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold 64 hex digits.
    #[error("key file {0} does not hold an Ed25519 key (64 hex digits): make one with `wasmbed-host keys generate {0}`")]
    Malformed(PathBuf),
    /// No randomness for a new key.
    #[error("no random bytes for a new key: {0}")]
    Random(String),
}

/// An Ed25519 module-signing key.
pub struct ModuleKey(SigningKey);

impl std::fmt::Debug for ModuleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModuleKey({})", self.key_id()) // never the secret
    }
}

impl ModuleKey {
    /// A key from its 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        ModuleKey(SigningKey::from_bytes(&seed))
    }

    /// Makes a new key and writes it to `path` (mode 0600; an existing file is never replaced).
    pub fn generate(path: &Path) -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        writeln!(f, "{}", hex(&seed)).map_err(io)?;
        Ok(Self::from_seed(seed))
    }

    /// Reads a private key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::NotPrivate {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        wasmbed_agent_proto::signing::from_hex::<32>(text.trim())
            .map(Self::from_seed)
            .ok_or_else(|| KeyError::Malformed(path.to_path_buf()))
    }

    /// The public key, 64 hex digits (what a device trusts: `--trusted-key`, `TRUSTED_KEYS`).
    pub fn public_hex(&self) -> String {
        hex(self.0.verifying_key().as_bytes())
    }

    /// The key id (fingerprint) devices name it by: `SIG key=`, INFO `sig_keys=`.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(self.0.verifying_key().as_bytes())
    }

    /// Signs `bytes` (exactly as uploaded) as module `module_id`, version `ver`; an AOT module
    /// for `target`.
    pub fn sign(
        &self,
        module_id: &ModuleId,
        ver: u32,
        target: Option<&AotTarget>,
        bytes: &[u8],
    ) -> Result<ModuleSignature, wasmbed_agent_proto::InvalidField> {
        let msg = signed_message(module_id, ver, target, bytes)?;
        Ok(ModuleSignature {
            ver,
            key: self.key_id(),
            sig: Signature(self.0.sign(&msg).to_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_private_and_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let k = ModuleKey::generate(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(ModuleKey::load(&p).unwrap().public_hex(), k.public_hex());
        assert!(matches!(ModuleKey::generate(&p), Err(KeyError::Io { .. })));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = ModuleKey::load(&p).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::write(dir.path().join("bad"), "xyz\n").unwrap();
        std::fs::set_permissions(
            dir.path().join("bad"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        assert!(matches!(
            ModuleKey::load(&dir.path().join("bad")),
            Err(KeyError::Malformed(_))
        ));
    }

    #[test]
    fn signatures_verify_with_the_public_key() {
        use ed25519_dalek::Verifier;
        let k = ModuleKey::from_seed([7; 32]);
        let id = ModuleId::new("m").unwrap();
        let s = k.sign(&id, 4, None, b"\0asm\x01\0\0\0").unwrap();
        assert_eq!(s.key, k.key_id());
        let msg = signed_message(&id, 4, None, b"\0asm\x01\0\0\0").unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(&s.sig.0);
        assert!(k.0.verifying_key().verify(&msg, &sig).is_ok());
        let other = signed_message(&id, 5, None, b"\0asm\x01\0\0\0").unwrap();
        assert!(k.0.verifying_key().verify(&other, &sig).is_err());
    }
}
