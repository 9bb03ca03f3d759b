//! The Wasmbed gateway (see `docs/HOST-API.md`).
