//! Validation of a module against what the device offers, before a byte goes to the device.

use std::fmt;

use wasmparser::{Parser, Payload, TypeRef, ValType, Validator, WasmFeatures};

use super::aot::{parse_aot_header, parse_aot_target, AOT_MAGIC};

/// What a device can run (from `INFO_OK`, or the legacy defaults for v1 firmware).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceCaps {
    /// Natives the device exports under module `env`: (name, WAMR signature such as `(i)`).
    pub natives: Vec<(String, String)>,
    /// Largest module the device accepts, if known.
    pub max_module: Option<u64>,
    /// Bytes of runtime pool available for a module's linear memory, if known.
    pub memory_limit: Option<u64>,
    /// AOT architecture the device loads (`None` = unknown, `Some("none")` = no AOT loader).
    pub aot_arch: Option<String>,
    /// AOT file format version the device loads, if known.
    pub aot_version: Option<u32>,
    /// Exact AOT target of a Wasmbed agent (INFO `aot_cpu`, `aot_features`, `aot_abi`,
    /// `aot_bounds_checks`); `None` for legacy firmware, which knows no target descriptor.
    pub aot_exact: Option<AotExact>,
}

/// What a Wasmbed agent's INFO says an `.aot` file must have been built for, besides its arch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AotExact {
    /// `aot_cpu=`.
    pub cpu: String,
    /// `aot_features=`.
    pub features: String,
    /// `aot_abi=`.
    pub abi: String,
    /// `aot_bounds_checks=required`: no hardware bounds checks.
    pub bounds_required: bool,
}

/// The legacy natives of FW-A..FW-B3 (union), assumed for v1 firmware.
pub fn legacy_natives() -> Vec<(String, String)> {
    [
        ("gpio_toggle", "()"),
        ("should_stop", "()i"),
        ("uart_print", "(i)"),
        ("led_toggle", "(i)"),
    ]
    .iter()
    .map(|(n, s)| (n.to_string(), s.to_string()))
    .collect()
}

/// Binary kind of a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleKind {
    /// A `.wasm` file (interpreted on the device).
    Wasm,
    /// A WAMR `.aot` file.
    Aot,
}

/// An exported function's signature, WAMR style (`(ii)i`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSig {
    /// Export name.
    pub name: String,
    /// Parameter types.
    pub params: Vec<ValType>,
    /// Result types.
    pub results: Vec<ValType>,
}

impl fmt::Display for ExportSig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}",
            self.name,
            wamr_signature(&self.params, &self.results)
        )
    }
}

/// What validation learned about a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSummary {
    /// Wasm or AOT.
    pub kind: ModuleKind,
    /// Size in bytes.
    pub size: usize,
    /// Exported functions (`None` for AOT files, whose exports are not inspected).
    pub exports: Option<Vec<ExportSig>>,
    /// Initial linear memory in bytes (0 without memory).
    pub memory_bytes: u64,
}

/// Why a module was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidateError(pub String);

fn reject<T>(msg: impl Into<String>) -> Result<T, ValidateError> {
    Err(ValidateError(msg.into()))
}

fn type_char(t: &ValType) -> char {
    match t {
        ValType::I32 => 'i',
        ValType::I64 => 'I',
        ValType::F32 => 'f',
        ValType::F64 => 'F',
        _ => '?',
    }
}

fn wamr_signature(params: &[ValType], results: &[ValType]) -> String {
    let p: String = params.iter().map(type_char).collect();
    let r: String = results.iter().map(type_char).collect();
    format!("({p}){r}")
}

/// WAMR signatures use `*`, `~` and `$` for i32 pointers, lengths and strings.
fn normalise_sig(sig: &str) -> String {
    sig.chars()
        .map(|c| if matches!(c, '*' | '~' | '$') { 'i' } else { c })
        .collect()
}

/// Validates `bytes` for a device with `caps`. Nothing is sent before this passes.
pub fn validate(bytes: &[u8], caps: &DeviceCaps) -> Result<ModuleSummary, ValidateError> {
    if let Some(max) = caps.max_module {
        if bytes.len() as u64 > max {
            return reject(format!(
                "module is {} bytes, the device accepts at most {max}",
                bytes.len()
            ));
        }
    }
    if bytes.starts_with(AOT_MAGIC) {
        return validate_aot(bytes, caps);
    }
    if !bytes.starts_with(b"\0asm") {
        return reject("neither a wasm module (\\0asm) nor a WAMR AOT file (\\0aot)");
    }
    let mut features = WasmFeatures::default();
    // WAMR 2.4 on MCUs: no threads, GC, exceptions or memory64.
    features.remove(WasmFeatures::THREADS | WasmFeatures::GC | WasmFeatures::EXCEPTIONS);
    features.remove(WasmFeatures::MEMORY64 | WasmFeatures::COMPONENT_MODEL);
    Validator::new_with_features(features)
        .validate_all(bytes)
        .map_err(|e| ValidateError(format!("invalid wasm module: {e}")))?;

    let mut types = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    let mut exports = Vec::new();
    let mut memory_bytes = 0u64;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ValidateError(format!("invalid wasm module: {e}")))?;
        match payload {
            Payload::TypeSection(r) => {
                for group in r {
                    let group = group.map_err(|e| ValidateError(e.to_string()))?;
                    for sub in group.into_types() {
                        types.push(match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => {
                                Some((f.params().to_vec(), f.results().to_vec()))
                            }
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(r) => {
                for import in r {
                    let import = import.map_err(|e| ValidateError(e.to_string()))?;
                    let TypeRef::Func(ty) = import.ty else {
                        return reject(format!(
                            "import {}.{} is not a function: the device only provides native functions",
                            import.module, import.name
                        ));
                    };
                    func_types.push(ty);
                    let (p, r) = types
                        .get(ty as usize)
                        .cloned()
                        .flatten()
                        .ok_or_else(|| ValidateError("import of a non-function type".into()))?;
                    check_import(import.module, import.name, &wamr_signature(&p, &r), caps)?;
                }
            }
            Payload::FunctionSection(r) => {
                for ty in r {
                    func_types.push(ty.map_err(|e| ValidateError(e.to_string()))?);
                }
            }
            Payload::MemorySection(r) => {
                for mem in r {
                    let mem = mem.map_err(|e| ValidateError(e.to_string()))?;
                    memory_bytes += mem.initial.saturating_mul(65_536);
                }
            }
            Payload::ExportSection(r) => {
                for export in r {
                    let export = export.map_err(|e| ValidateError(e.to_string()))?;
                    if export.kind != wasmparser::ExternalKind::Func {
                        continue;
                    }
                    let (params, results) = func_types
                        .get(export.index as usize)
                        .and_then(|t| types.get(*t as usize).cloned().flatten())
                        .ok_or_else(|| ValidateError("export of an unknown function".into()))?;
                    exports.push(ExportSig {
                        name: export.name.to_string(),
                        params,
                        results,
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(limit) = caps.memory_limit {
        if memory_bytes > limit {
            return reject(format!(
                "module needs {memory_bytes} bytes of linear memory, the device has {limit} free"
            ));
        }
    }
    Ok(ModuleSummary {
        kind: ModuleKind::Wasm,
        size: bytes.len(),
        exports: Some(exports),
        memory_bytes,
    })
}

fn check_import(
    module: &str,
    name: &str,
    sig: &str,
    caps: &DeviceCaps,
) -> Result<(), ValidateError> {
    if module != "env" {
        return reject(format!(
            "import {module}.{name}{sig}: the device only provides natives in module `env`"
        ));
    }
    let Some((_, dev_sig)) = caps.natives.iter().find(|(n, _)| n == name) else {
        let offered: Vec<String> = caps
            .natives
            .iter()
            .map(|(n, s)| format!("{n}{s}"))
            .collect();
        return reject(format!(
            "import env.{name}{sig} is not offered by the device (natives: {})",
            if offered.is_empty() {
                "none".to_string()
            } else {
                offered.join(", ")
            }
        ));
    };
    if !dev_sig.is_empty() && normalise_sig(dev_sig) != sig {
        return reject(format!(
            "import env.{name} has signature {sig}, the device's native is {dev_sig}"
        ));
    }
    Ok(())
}

fn validate_aot(bytes: &[u8], caps: &DeviceCaps) -> Result<ModuleSummary, ValidateError> {
    let header = parse_aot_header(bytes).map_err(ValidateError)?;
    match caps.aot_arch.as_deref() {
        Some("none") => return reject("the device has no AOT loader: upload a .wasm module"),
        Some(arch) if !arch_matches(arch, &header.arch) => {
            return reject(format!(
                "AOT file is built for `{}`, the device runs `{arch}`",
                header.arch
            ))
        }
        _ => {}
    }
    if let Some(v) = caps.aot_version {
        if v != header.version {
            return reject(format!(
                "AOT file format version {} does not match the device's {v} (rebuild with a matching wamrc)",
                header.version
            ));
        }
    }
    if let Some(want) = &caps.aot_exact {
        let arch = caps.aot_arch.as_deref().unwrap_or("?");
        let device = format!("{arch}/{}/{}/{}", want.cpu, want.features, want.abi);
        let Some(t) = parse_aot_target(bytes) else {
            return reject(format!(
                "AOT file without a Wasmbed target descriptor: build it with tools/wamrc for {device}, or upload the .wasm"
            ));
        };
        let file = format!("{}/{}/{}/{}", t.arch, t.cpu, t.features, t.abi);
        if file != device {
            return reject(format!(
                "AOT file built for {file} (by {}), the device runs {device} (arch/cpu/features/abi): upload the .wasm and let the gateway compile it",
                t.compiler
            ));
        }
        if want.bounds_required && !t.bounds_checks {
            return reject(
                "AOT file built without bounds checks; the device has no hardware bounds checks: rebuild with wamrc --bounds-checks=1",
            );
        }
    }
    Ok(ModuleSummary {
        kind: ModuleKind::Aot,
        size: bytes.len(),
        exports: None,
        memory_bytes: 0,
    })
}

/// `thumbv7em` on the device accepts `thumbv7em` files (wamrc may append sub-arch suffixes).
fn arch_matches(device: &str, file: &str) -> bool {
    file == device || file.starts_with(device) || device.starts_with(file)
}

/// Checks a START against the module's exports: the function is exported, takes only i32
/// parameters (at most 4) and gets exactly as many arguments. Unknown exports (AOT) pass.
pub fn check_start(summary: &ModuleSummary, func: &str, argc: usize) -> Result<(), ValidateError> {
    let Some(exports) = &summary.exports else {
        return Ok(());
    };
    let Some(sig) = exports.iter().find(|e| e.name == func) else {
        let names: Vec<&str> = exports.iter().map(|e| e.name.as_str()).collect();
        return reject(format!(
            "the module exports no function `{func}` (exports: {})",
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        ));
    };
    if sig.params.iter().any(|p| *p != ValType::I32) {
        return reject(format!("{sig}: only i32 parameters can be passed by START"));
    }
    if sig.params.len() > 4 {
        return reject(format!("{sig}: START passes at most 4 arguments"));
    }
    if sig.params.len() != argc {
        return reject(format!(
            "{sig} takes {} argument(s), {argc} given",
            sig.params.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wat(src: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.wat");
        std::fs::write(&p, src).unwrap();
        let out = dir.path().join("m.wasm");
        let st = std::process::Command::new("wat2wasm")
            .arg(&p)
            .arg("-o")
            .arg(&out)
            .status()
            .expect("wat2wasm (wabt) installed");
        assert!(st.success());
        std::fs::read(out).unwrap()
    }

    fn caps() -> DeviceCaps {
        DeviceCaps {
            natives: legacy_natives(),
            ..Default::default()
        }
    }

    const MATH: &str = r#"(module
      (import "env" "uart_print" (func $p (param i32)))
      (memory (export "memory") 1)
      (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
      (func (export "wide") (param i64) (result i64) local.get 0))"#;

    #[test]
    fn accepts_and_summarises() {
        let bytes = wat(MATH);
        let s = validate(&bytes, &caps()).unwrap();
        assert_eq!(s.kind, ModuleKind::Wasm);
        assert_eq!(s.memory_bytes, 65_536);
        let ex = s.exports.as_ref().unwrap();
        assert_eq!(ex[0].to_string(), "add(ii)i");
        check_start(&s, "add", 2).unwrap();
        assert!(check_start(&s, "add", 1).unwrap_err().0.contains("takes 2"));
        assert!(check_start(&s, "wide", 1)
            .unwrap_err()
            .0
            .contains("only i32"));
        assert!(check_start(&s, "nope", 0)
            .unwrap_err()
            .0
            .contains("exports: add, wide"));
    }

    #[test]
    fn refuses_missing_native_and_bad_signature() {
        let bytes = wat(r#"(module (import "env" "blink" (func)))"#);
        let e = validate(&bytes, &caps()).unwrap_err();
        assert!(
            e.0.contains("env.blink()") && e.0.contains("gpio_toggle()"),
            "{e}"
        );
        let bytes = wat(r#"(module (import "env" "gpio_toggle" (func (param i32))))"#);
        assert!(validate(&bytes, &caps())
            .unwrap_err()
            .0
            .contains("signature (i)"));
        let bytes = wat(r#"(module (import "wasi" "x" (func)))"#);
        assert!(validate(&bytes, &caps())
            .unwrap_err()
            .0
            .contains("module `env`"));
    }

    #[test]
    fn refuses_size_memory_and_garbage() {
        let bytes = wat(MATH);
        let small = DeviceCaps {
            max_module: Some(10),
            ..caps()
        };
        assert!(validate(&bytes, &small)
            .unwrap_err()
            .0
            .contains("at most 10"));
        let tight = DeviceCaps {
            memory_limit: Some(1000),
            ..caps()
        };
        assert!(validate(&bytes, &tight)
            .unwrap_err()
            .0
            .contains("linear memory"));
        assert!(validate(b"hello", &caps()).is_err());
        let mut broken = bytes.clone();
        broken.truncate(bytes.len() - 3);
        assert!(validate(&broken, &caps())
            .unwrap_err()
            .0
            .contains("invalid wasm"));
    }

    #[test]
    fn aot_target_and_version() {
        let mut v = AOT_MAGIC.to_vec();
        v.extend_from_slice(&6u32.to_le_bytes());
        v.extend_from_slice(&[0u8; 8]);
        v.extend_from_slice(&[0u8; 32]);
        let mut arch = [0u8; 16];
        arch[..6].copy_from_slice(b"x86_64");
        v.extend_from_slice(&arch);
        let mut c = caps();
        c.aot_arch = Some("x86_64".into());
        c.aot_version = Some(6);
        assert_eq!(validate(&v, &c).unwrap().kind, ModuleKind::Aot);
        c.aot_arch = Some("thumbv7em".into());
        assert!(validate(&v, &c)
            .unwrap_err()
            .0
            .contains("built for `x86_64`"));
        c.aot_arch = Some("x86_64".into());
        c.aot_version = Some(5);
        assert!(validate(&v, &c).unwrap_err().0.contains("version 6"));
    }

    #[test]
    fn aot_exact_target_and_bounds_checks() {
        let mut v = AOT_MAGIC.to_vec();
        v.extend_from_slice(&6u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes()); // target info section
        v.extend_from_slice(&48u32.to_le_bytes());
        v.extend_from_slice(&[0u8; 32]);
        let mut arch = [0u8; 16];
        arch[..9].copy_from_slice(b"thumbv7em");
        v.extend_from_slice(&arch);
        let desc = |cpu: &str, bc: u8| {
            let text = format!("wasmbed-aot-target=1\narch=thumbv7em\ncpu={cpu}\nfeatures=none\nabi=eabihf\nbounds_checks={bc}\naot_version=6\ncompiler=wamrc 2.4.3 wasmbed\n");
            crate::pipeline::aot::tests::with_target(v.clone(), &text)
        };
        let mut c = caps();
        c.aot_arch = Some("thumbv7em".into());
        c.aot_version = Some(6);
        // legacy firmware: no descriptor needed
        assert_eq!(validate(&v, &c).unwrap().kind, ModuleKind::Aot);
        c.aot_exact = Some(AotExact {
            cpu: "cortex-m4".into(),
            features: "none".into(),
            abi: "eabihf".into(),
            bounds_required: true,
        });
        assert_eq!(
            validate(&desc("cortex-m4", 1), &c).unwrap().kind,
            ModuleKind::Aot
        );
        let e = validate(&desc("cortex-m7", 1), &c).unwrap_err().0;
        assert!(
            e.contains("built for thumbv7em/cortex-m7/none/eabihf")
                && e.contains("device runs thumbv7em/cortex-m4/none/eabihf"),
            "{e}"
        );
        let e = validate(&desc("cortex-m4", 0), &c).unwrap_err().0;
        assert!(e.contains("without bounds checks"), "{e}");
        assert!(validate(&v, &c)
            .unwrap_err()
            .0
            .contains("without a Wasmbed target descriptor"));
    }
}
