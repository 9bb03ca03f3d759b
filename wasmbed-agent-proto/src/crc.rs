//! CRC-32 as used on the wire: zlib / ISO-HDLC (reflected polynomial 0xEDB88320, init and final
//! XOR 0xFFFFFFFF), printed as exactly 8 lowercase hex digits.

use std::fmt;
use std::str::FromStr;

/// A CRC-32 value. `Display` gives the wire form: 8 lowercase, zero-padded hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Crc32(pub u32);

impl Crc32 {
    /// CRC-32 of `data` (same value as Python's `binascii.crc32(data) & 0xFFFFFFFF`).
    pub fn of(data: &[u8]) -> Self {
        Crc32(crc32fast::hash(data))
    }

    /// Parses a CRC as the legacy agent does (`strtoul(text, 16)`), but strictly: an optional
    /// `0x`/`0X` prefix, then 1 to 8 hex digits (either case) and nothing else.
    pub fn parse_hex(text: &str) -> Option<Self> {
        let digits = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .unwrap_or(text);
        if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(digits, 16).ok().map(Crc32)
    }
}

impl fmt::Display for Crc32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// Error of `Crc32::from_str`: the text is not 1..=8 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a CRC-32 (1 to 8 hex digits): {0:?}")]
pub struct BadCrcText(pub String);

impl FromStr for Crc32 {
    type Err = BadCrcText;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Crc32::parse_hex(s).ok_or_else(|| BadCrcText(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(Crc32::of(b"123456789").0, 0xcbf4_3926);
        assert_eq!(Crc32::of(b"").to_string(), "00000000");
        assert_eq!(Crc32(0xd40c97d1).to_string(), "d40c97d1");
        assert_eq!(Crc32(0x1).to_string(), "00000001");
    }

    #[test]
    fn parse_hex_forms() {
        assert_eq!(Crc32::parse_hex("D40C97D1"), Some(Crc32(0xd40c97d1)));
        assert_eq!(Crc32::parse_hex("0xabc"), Some(Crc32(0xabc)));
        assert_eq!(Crc32::parse_hex(""), None);
        assert_eq!(Crc32::parse_hex("123456789"), None);
        assert_eq!(Crc32::parse_hex("12g4"), None);
        assert!("zz".parse::<Crc32>().is_err());
    }
}
