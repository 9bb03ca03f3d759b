//! The Wasmbed gateway (see `docs/HOST-API.md`): device links, module pipeline, host API.

pub mod config;
pub mod endpoint;
pub mod link;
pub mod pipeline;
