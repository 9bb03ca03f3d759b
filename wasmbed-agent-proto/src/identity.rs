//! Device identity: every rule of the `IDENT` challenge in one place (docs/PROTOCOL.md "Device
//! identity (IDENT)").
//!
//! A device with an identity holds an Ed25519 key pair. `INFO_OK` announces the fingerprint of
//! its public key (`identity=ed25519:<fingerprint>`, or `identity=none`); the gateway sends
//! `IDENT nonce=<64 hex>` with 32 fresh random bytes, and the device answers
//! `IDENT_OK key=<64 hex> sig=<128 hex>`: its public key and its Ed25519 signature (RFC 8032)
//! of [`challenge_message`] — the domain tag [`DOMAIN`] followed by the nonce's 32 bytes.
//! [`verify`] checks that answer: the key is the one INFO announced, the signature is over this
//! nonce (so an answer recorded for another nonce fails), strict RFC 8032 verification.
//!
//! The fingerprint is the first 16 bytes of SHA-512 of the 32-byte public key, as 32 lowercase
//! hex digits ([`fingerprint`]); hosts show its first [`SHORT_LEN`] digits.

use std::fmt;

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha512};

use crate::message::{IdentOk, InfoOk};

/// Domain separation tag, prefixed to the nonce in the signed message: a signature made for an
/// identity challenge can never be taken for any other signature of the same key.
pub const DOMAIN: &[u8] = b"wasmbed-ident-v1\0";
/// Bytes of a challenge nonce (sent as 64 hex digits).
pub const NONCE_LEN: usize = 32;
/// The only key scheme: `identity=ed25519:<fingerprint>`.
pub const SCHEME: &str = "ed25519";
/// Hex digits of a full fingerprint.
pub const FINGERPRINT_LEN: usize = 32;
/// Hex digits of the short fingerprint hosts print.
pub const SHORT_LEN: usize = 12;

/// A challenge nonce: 32 random bytes from the gateway, fresh for every challenge.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nonce(pub [u8; NONCE_LEN]);

impl Nonce {
    /// Parses 64 hex digits (any case).
    pub fn from_hex(text: &str) -> Option<Self> {
        decode_hex::<NONCE_LEN>(text).map(Nonce)
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({self})")
    }
}

/// What `INFO_OK` says about the device's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announced {
    /// No `identity=` field: legacy or older v2 firmware (no `IDENT` command).
    Absent,
    /// `identity=none`: the firmware knows `IDENT` but holds no key.
    None,
    /// `identity=ed25519:<fingerprint>`: a key; the device must prove it holds it.
    Key(String),
    /// Any other value (an unknown scheme, a malformed fingerprint): the gateway cannot check it.
    Unsupported(String),
}

/// Reads the `identity=` field of an `INFO_OK`.
pub fn announced(info: &InfoOk) -> Announced {
    match info.identity.as_deref() {
        None => Announced::Absent,
        Some("none") => Announced::None,
        Some(v) => match v.split_once(':') {
            Some((SCHEME, fp)) if is_fingerprint(fp) => Announced::Key(fp.to_ascii_lowercase()),
            _ => Announced::Unsupported(v.to_string()),
        },
    }
}

/// True for 32 hex digits.
pub fn is_fingerprint(text: &str) -> bool {
    text.len() == FINGERPRINT_LEN && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The bytes a device signs for `nonce`: [`DOMAIN`] followed by the nonce.
pub fn challenge_message(nonce: &Nonce) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + NONCE_LEN);
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(&nonce.0);
    m
}

/// The fingerprint of a public key: the first 16 bytes of SHA-512(key), 32 lowercase hex digits.
pub fn fingerprint(key: &[u8; 32]) -> String {
    let digest = Sha512::digest(key);
    hex(&digest[..FINGERPRINT_LEN / 2])
}

/// The first [`SHORT_LEN`] digits of a fingerprint (what `wasmbed-host devices` prints).
pub fn short(fingerprint: &str) -> &str {
    fingerprint.get(..SHORT_LEN).unwrap_or(fingerprint)
}

/// A public key the device proved it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The 32-byte Ed25519 public key.
    pub key: [u8; 32],
    /// Its fingerprint.
    pub fingerprint: String,
}

impl Verified {
    /// The key as 64 lowercase hex digits.
    pub fn key_hex(&self) -> String {
        hex(&self.key)
    }
}

/// Why an `IDENT_OK` was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// `key=` is not 64 hex digits or not a valid Ed25519 point.
    #[error("key= is not an Ed25519 public key (64 hex digits)")]
    BadKey,
    /// `sig=` is not 128 hex digits.
    #[error("sig= is not an Ed25519 signature (128 hex digits)")]
    BadSignatureFormat,
    /// The key's fingerprint is not the one INFO announced.
    #[error("the key's fingerprint {got} is not the one INFO announced ({announced})")]
    NotAnnounced {
        /// From INFO.
        announced: String,
        /// Of the key in `IDENT_OK`.
        got: String,
    },
    /// The signature does not verify for this nonce: a replayed answer (signed for another
    /// nonce), or a device that does not hold the key.
    #[error(
        "the signature does not verify for this challenge's nonce (a replayed or forged answer)"
    )]
    BadSignature,
}

/// Checks an `IDENT_OK` against the fingerprint INFO announced and the nonce sent.
pub fn verify(announced: &str, nonce: &Nonce, ok: &IdentOk) -> Result<Verified, IdentityError> {
    let key = decode_hex::<32>(&ok.key).ok_or(IdentityError::BadKey)?;
    let sig = decode_hex::<64>(&ok.sig).ok_or(IdentityError::BadSignatureFormat)?;
    let fp = fingerprint(&key);
    if !fp.eq_ignore_ascii_case(announced) {
        return Err(IdentityError::NotAnnounced {
            announced: announced.to_string(),
            got: fp,
        });
    }
    let vk = VerifyingKey::from_bytes(&key).map_err(|_| IdentityError::BadKey)?;
    vk.verify_strict(&challenge_message(nonce), &Signature::from_bytes(&sig))
        .map_err(|_| IdentityError::BadSignature)?;
    Ok(Verified {
        key,
        fingerprint: fp,
    })
}

/// A bare-metal board's identity record: what `wasmbed-host keys provision` writes and the board
/// reads from its identity page at boot (firmware-agent/ports/baremetal/src/identity.c,
/// docs/SECURITY.md "Device identity"). 44 bytes: [`RECORD_MAGIC`], the 32-byte Ed25519 seed,
/// then the CRC-32 (zlib) of those 40 bytes, little endian. A page without the magic (erased
/// flash) is a board without identity.
#[derive(Clone, PartialEq, Eq)]
pub struct Provisioned {
    seed: [u8; 32],
}

/// The first 8 bytes of an identity record (the 1 is the record's version).
pub const RECORD_MAGIC: &[u8; 8] = b"WBIDENT1";
/// Bytes of an identity record.
pub const RECORD_LEN: usize = 44;

impl Provisioned {
    /// The identity with this seed (RFC 8032 secret key).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Provisioned { seed }
    }

    /// The record to flash at the board's identity page.
    pub fn record(&self) -> [u8; RECORD_LEN] {
        let mut r = [0u8; RECORD_LEN];
        r[..8].copy_from_slice(RECORD_MAGIC);
        r[8..40].copy_from_slice(&self.seed);
        let crc = crc32fast::hash(&r[..40]);
        r[40..].copy_from_slice(&crc.to_le_bytes());
        r
    }

    /// Reads a record back (a check of a file before it is flashed); `None` if it is not one.
    pub fn from_record(r: &[u8]) -> Option<Self> {
        if r.len() != RECORD_LEN || &r[..8] != RECORD_MAGIC {
            return None;
        }
        let crc = u32::from_le_bytes(r[40..].try_into().ok()?);
        if crc32fast::hash(&r[..40]) != crc {
            return None;
        }
        Some(Provisioned {
            seed: r[8..40].try_into().ok()?,
        })
    }

    /// The public key the board will prove it holds.
    pub fn public_key(&self) -> [u8; 32] {
        ed25519_dalek::SigningKey::from_bytes(&self.seed)
            .verifying_key()
            .to_bytes()
    }

    /// The fingerprint the board's INFO will announce (what `devices approve --fingerprint` pins).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public_key())
    }
}

impl fmt::Debug for Provisioned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Provisioned({})", self.fingerprint()) // never the seed
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Exactly `2 * N` hex digits (any case) to `N` bytes.
pub fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let t = text.as_bytes();
    if t.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(t[2 * i])? << 4 | digit(t[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    /// RFC 8032 section 7.1, TEST 1.
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn answer(seed: &[u8; 32], nonce: &Nonce) -> IdentOk {
        let sk = SigningKey::from_bytes(seed);
        IdentOk {
            key: hex(sk.verifying_key().as_bytes()),
            sig: hex(&sk.sign(&challenge_message(nonce)).to_bytes()),
        }
    }

    #[test]
    fn rfc8032_key_and_a_fresh_answer_verify() {
        let seed = decode_hex::<32>(SEED).unwrap();
        let nonce = Nonce([7; 32]);
        let ok = answer(&seed, &nonce);
        assert_eq!(ok.key, PUBLIC);
        let fp = fingerprint(&decode_hex::<32>(PUBLIC).unwrap());
        let v = verify(&fp, &nonce, &ok).unwrap();
        assert_eq!(v.key_hex(), PUBLIC);
        assert_eq!(v.fingerprint, fp);
        assert_eq!(short(&fp).len(), SHORT_LEN);
    }

    #[test]
    fn replayed_swapped_and_malformed_answers_fail() {
        let seed = decode_hex::<32>(SEED).unwrap();
        let fp = fingerprint(&decode_hex::<32>(PUBLIC).unwrap());
        let old = answer(&seed, &Nonce([1; 32]));
        assert_eq!(
            verify(&fp, &Nonce([2; 32]), &old),
            Err(IdentityError::BadSignature)
        );
        let other = answer(&[9; 32], &Nonce([2; 32]));
        assert!(matches!(
            verify(&fp, &Nonce([2; 32]), &other),
            Err(IdentityError::NotAnnounced { .. })
        ));
        let mut bad = answer(&seed, &Nonce([2; 32]));
        bad.sig.pop();
        assert_eq!(
            verify(&fp, &Nonce([2; 32]), &bad),
            Err(IdentityError::BadSignatureFormat)
        );
        bad.key = "zz".repeat(32);
        assert_eq!(
            verify(&fp, &Nonce([2; 32]), &bad),
            Err(IdentityError::BadKey)
        );
    }

    #[test]
    fn a_provisioning_record_reads_back_and_names_the_rfc8032_key() {
        let seed = decode_hex::<32>(SEED).unwrap();
        let p = Provisioned::from_seed(seed);
        let r = p.record();
        assert_eq!(&r[..8], b"WBIDENT1");
        assert_eq!(&r[8..40], &seed);
        // CRC-32 (zlib) of the first 40 bytes, little endian: what identity.c checks
        assert_eq!(r[40..], crc32fast::hash(&r[..40]).to_le_bytes());
        assert_eq!(hex(&p.public_key()), PUBLIC);
        assert_eq!(
            p.fingerprint(),
            fingerprint(&decode_hex::<32>(PUBLIC).unwrap())
        );
        assert_eq!(Provisioned::from_record(&r), Some(p.clone()));
        let mut broken = r;
        broken[20] ^= 1;
        assert_eq!(Provisioned::from_record(&broken), None);
        assert_eq!(Provisioned::from_record(&[0xff; RECORD_LEN]), None);
        assert_eq!(Provisioned::from_record(&r[..40]), None);
        assert!(!format!("{p:?}").contains(SEED));
    }

    #[test]
    fn announcements() {
        let info = |v: Option<&str>| InfoOk {
            proto: 2,
            identity: v.map(str::to_string),
            ..Default::default()
        };
        assert_eq!(announced(&info(None)), Announced::Absent);
        assert_eq!(announced(&info(Some("none"))), Announced::None);
        let fp = "0123456789ABCDEF0123456789abcdef";
        assert_eq!(
            announced(&info(Some(&format!("ed25519:{fp}")))),
            Announced::Key(fp.to_ascii_lowercase())
        );
        assert!(matches!(
            announced(&info(Some("rsa:00"))),
            Announced::Unsupported(_)
        ));
        assert_eq!(Nonce::from_hex(&"aB".repeat(32)), Some(Nonce([0xab; 32])));
        assert_eq!(Nonce::from_hex("ab"), None);
    }
}
