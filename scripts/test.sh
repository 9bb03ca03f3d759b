#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine and runs every test of Wasmbed.
# Environment:
#   FUZZ_SECONDS   seconds for each bounded fuzzing run (default 20; 0 skips fuzzing)
#   SKIP_LINT=1    skip cargo fmt / clippy
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
stage() { printf '\n=== %s ===\n' "$*"; }

stage "setup"
./scripts/setup.sh

if [ "${SKIP_LINT:-0}" != 1 ]; then
  stage "lint: cargo fmt, cargo clippy"
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets --locked -q -- -D warnings
fi

stage "build: workspace (gateway, host, simulated board)"
cargo build --workspace --locked -q

if [ -x tools/wamrc/build.sh ]; then
  stage "build: wamrc (AOT compiler over WAMR + LLVM 19)"
  tools/wamrc/build.sh
fi

if [ -x firmware-agent/ports/baremetal/build.sh ]; then
  stage "build: bare-metal Cortex-M4 firmware (QEMU mps2-an386)"
  firmware-agent/ports/baremetal/build.sh
fi

if [ -x firmware-agent/tests/run.sh ]; then
  stage "test: C agent core (plain, ASan+UBSan, fuzz)"
  firmware-agent/tests/run.sh
fi

if [ -x tools/wamrc/test.sh ]; then
  stage "test: wamrc"
  tools/wamrc/test.sh
fi

stage "test: cargo test --workspace"
cargo test --workspace --locked
