//! Removing custom sections (names, producers, debug info) to shorten uploads.

use wasm_encoder::{Module, RawSection};
use wasmparser::{Parser, Payload};

use super::validate::ValidateError;

/// Returns `bytes` without custom sections; every other section is copied unchanged.
/// AOT files are returned as they are.
pub fn strip_custom_sections(bytes: &[u8]) -> Result<Vec<u8>, ValidateError> {
    if !bytes.starts_with(b"\0asm") {
        return Ok(bytes.to_vec());
    }
    let mut module = Module::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ValidateError(format!("invalid wasm module: {e}")))?;
        if matches!(payload, Payload::CustomSection(_)) {
            continue;
        }
        if let Some((id, range)) = payload.as_section() {
            module.section(&RawSection {
                id,
                data: &bytes[range],
            });
        }
    }
    Ok(module.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_only_custom_sections() {
        let mut m = Module::new();
        let mut types = wasm_encoder::TypeSection::new();
        types.ty().function([], []);
        m.section(&types);
        m.section(&wasm_encoder::CustomSection {
            name: "producers".into(),
            data: vec![7u8; 100].into(),
        });
        let with = m.finish();
        let without = strip_custom_sections(&with).unwrap();
        assert!(without.len() + 100 < with.len());
        wasmparser::validate(&without).unwrap();
        assert!(Parser::new(0)
            .parse_all(&without)
            .all(|p| !matches!(p.unwrap(), Payload::CustomSection(_))));
        assert_eq!(strip_custom_sections(b"\0aot123").unwrap(), b"\0aot123");
    }
}
