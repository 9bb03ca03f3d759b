//! The module pipeline: C → wasm (clang) → AOT (wamrc), a content-addressed cache, validation
//! against the device's capabilities, and optional custom-section stripping.

mod aot;
mod cache;
mod compile;
mod strip;
mod validate;

pub use aot::{AotHeader, parse_aot_header};
pub use cache::Cache;
pub use compile::{AotTarget, BuildMode, Built, CompileError, Compiler, find_wamrc};
pub use strip::strip_custom_sections;
pub use validate::{
    DeviceCaps, ExportSig, ModuleKind, ModuleSummary, ValidateError, check_start, legacy_natives,
    validate,
};
