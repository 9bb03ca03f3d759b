//! Placeholder until the POSIX port lands.
fn main() {}
