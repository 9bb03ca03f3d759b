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

/// The Wasmbed AOT target descriptor (`tools/wamrc`, docs/PROTOCOL.md "AOT target descriptor"):
/// what the code was built for, exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AotDescriptor {
    /// `--target=`.
    pub arch: String,
    /// `--cpu=` (`generic` if none).
    pub cpu: String,
    /// `--cpu-features=` (`none` if none).
    pub features: String,
    /// `--target-abi=`.
    pub abi: String,
    /// Whether the code checks memory bounds itself.
    pub bounds_checks: bool,
    /// AOT file format version.
    pub aot_version: u32,
    /// The compiler that wrote it.
    pub compiler: String,
}

/// Sub-type of the custom section (100) that holds the descriptor.
const WASMBED_AOT_TARGET: u32 = 0x5742_4154;

/// Finds and parses the descriptor among the AOT file's sections; `None` if there is none.
pub fn parse_aot_target(bytes: &[u8]) -> Option<AotDescriptor> {
    let u32_at = |o: usize| {
        bytes
            .get(o..o.checked_add(4)?)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let mut p = 8usize;
    loop {
        let (kind, size) = (u32_at(p)?, u32_at(p + 4)? as usize);
        let body = bytes.get(p + 8..(p + 8).checked_add(size)?)?;
        if kind == 100 && u32_at(p + 8) == Some(WASMBED_AOT_TARGET) {
            let text = std::str::from_utf8(&body[4..]).ok()?;
            let field = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                    .map(str::to_string)
            };
            return Some(AotDescriptor {
                arch: field("arch")?,
                cpu: field("cpu")?,
                features: field("features")?,
                abi: field("abi")?,
                bounds_checks: field("bounds_checks")? == "1",
                aot_version: field("aot_version")?.parse().ok()?,
                compiler: field("compiler").unwrap_or_default(),
            });
        }
        p = (p + 8 + size + 3) & !3;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `fake_aot` plus a descriptor section as tools/wamrc appends it.
    pub(crate) fn with_target(mut v: Vec<u8>, text: &str) -> Vec<u8> {
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend_from_slice(&100u32.to_le_bytes());
        v.extend_from_slice(&(4 + text.len() as u32).to_le_bytes());
        v.extend_from_slice(&WASMBED_AOT_TARGET.to_le_bytes());
        v.extend_from_slice(text.as_bytes());
        v
    }

    #[test]
    fn reads_the_target_descriptor() {
        let text = "wasmbed-aot-target=1\narch=thumbv7em\ncpu=cortex-m7\nfeatures=none\nabi=eabihf\nbounds_checks=1\naot_version=6\ncompiler=wamrc 2.4.3 wasmbed\n";
        let mut plain = fake_aot(6, "thumbv7em");
        // a last section of unaligned length: the descriptor follows after padding
        plain[12..16].copy_from_slice(&49u32.to_le_bytes());
        plain.push(7);
        assert_eq!(parse_aot_target(&plain), None);
        let t = parse_aot_target(&with_target(plain, text)).unwrap();
        assert_eq!(t.cpu, "cortex-m7");
        assert!(t.bounds_checks);
        assert_eq!(t.aot_version, 6);
        assert_eq!(t.compiler, "wamrc 2.4.3 wasmbed");
    }

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
