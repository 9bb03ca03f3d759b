//! The Wasmbed agent line protocol (see `docs/PROTOCOL.md`).
