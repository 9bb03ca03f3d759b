//! The module pipeline: C → wasm (clang) → AOT (wamrc), a content-addressed cache, validation
//! against the device's capabilities, and optional custom-section stripping.

mod aot;
mod cache;
mod compile;
pub mod confine;
mod strip;
mod validate;
pub mod workdirs;

pub use aot::{parse_aot_header, parse_aot_target, AotDescriptor, AotHeader};
pub use cache::Cache;
pub use compile::{find_wamrc, AotTarget, BuildMode, Built, CompileError, Compiler};
pub use strip::strip_custom_sections;
pub use validate::{
    check_start, legacy_natives, validate, AotExact, DeviceCaps, ExportSig, ModuleKind,
    ModuleSummary, ValidateError,
};
