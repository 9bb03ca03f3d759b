//! `wasmbed-host`: the Wasmbed command-line tool.
fn main() {}
