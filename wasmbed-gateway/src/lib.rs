//! The Wasmbed gateway (see `docs/HOST-API.md`): device links, module pipeline, host API.

pub mod api;
pub mod config;
pub mod device;
pub mod emulate;
pub mod endpoint;
pub mod fleet;
pub mod http;
pub mod identity;
pub mod link;
pub mod pipeline;
pub mod reaper;
pub mod run;
pub mod signing;
pub mod sim;
pub mod tls;
