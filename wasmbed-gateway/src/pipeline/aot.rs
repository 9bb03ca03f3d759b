//! Reading the header of a WAMR `.aot` file: format version and target architecture.

/// What an `.aot` file was built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AotHeader {
    /// AOT file format version (WAMR's `AOT_CURRENT_VERSION`).
    pub version: u32,
    /// Target architecture string (`thumbv7em`, `x86_64`, ...).
    pub arch: String,
    /// ELF machine number recorded by wamrc.
    pub e_machine: u16,
}

/// The magic of an AOT file.
pub const AOT_MAGIC: &[u8; 4] = b"\0aot";

/// Parses the first section (target info) of an AOT file.
///
/// Layout (WAMR `aot_loader.c`): magic, u32 version, then sections of `u32 type, u32 size, body`;
/// section 0 is the target info: u16 bin_type, u16 abi_type, u16 e_type, u16 e_machine,
/// u32 e_version, u32 e_flags, u64 feature_flags, u64 reserved, char arch[16].
pub fn parse_aot_header(bytes: &[u8]) -> Result<AotHeader, String> {
    if bytes.len() < 8 || &bytes[..4] != AOT_MAGIC {
        return Err("not an AOT file (missing \\0aot magic)".into());
    }
    let u32_at = |o: usize| -> Option<u32> {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let version = u32_at(4).ok_or("truncated AOT header")?;
    let section_type = u32_at(8).ok_or("truncated AOT header")?;
    if section_type != 0 {
        return Err(format!(
            "first AOT section is {section_type}, expected target info (0)"
        ));
    }
    let body = 16;
    let e_machine = bytes
        .get(body + 6..body + 8)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or("truncated AOT target info")?;
    let arch_bytes = bytes
        .get(body + 32..body + 48)
        .ok_or("truncated AOT target info")?;
    let end = arch_bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or("AOT arch string not terminated")?;
    let arch = std::str::from_utf8(&arch_bytes[..end])
        .map_err(|_| "AOT arch string is not ASCII")?
        .to_string();
    Ok(AotHeader {
        version,
        arch,
        e_machine,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_aot(version: u32, arch: &str) -> Vec<u8> {
        let mut v = AOT_MAGIC.to_vec();
        v.extend_from_slice(&version.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&48u32.to_le_bytes());
        v.extend_from_slice(&[0, 0, 0, 0, 1, 0, 40, 0]); // bin, abi, e_type, e_machine=40 (ARM)
        v.extend_from_slice(&[0u8; 24]);
        let mut a = [0u8; 16];
        a[..arch.len()].copy_from_slice(arch.as_bytes());
        v.extend_from_slice(&a);
        v
    }

    #[test]
    fn reads_version_and_arch() {
        let h = parse_aot_header(&fake_aot(6, "thumbv7em")).unwrap();
        assert_eq!(
            h,
            AotHeader {
                version: 6,
                arch: "thumbv7em".into(),
                e_machine: 40
            }
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_aot_header(b"\0asm\x01\0\0\0").is_err());
        assert!(parse_aot_header(&fake_aot(6, "x")[..30]).is_err());
        let mut bad = fake_aot(6, "x86_64");
        bad[8] = 3;
        assert!(parse_aot_header(&bad).unwrap_err().contains("target info"));
    }
}
