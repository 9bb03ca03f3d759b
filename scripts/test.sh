#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine and runs every test of Wasmbed (what CI runs).
# Environment:
#   FUZZ_SECONDS   seconds of each bounded fuzzing run (default 20; 0 skips fuzzing)
#   LONG_FUZZ=1    also run the protocol decoder's cargo-fuzz target (installs cargo-fuzz;
#                  FUZZ_SECONDS applies, e.g. FUZZ_SECONDS=600)
#   SKIP_LINT=1    skip cargo fmt / clippy
#   SKIP_BENCH=1   skip the benchmark harness's smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# Tests that need the bare-metal image (built below) fail instead of skipping without it.
export WASMBED_REQUIRE_QEMU=1
start=$SECONDS
stage() { printf '\n=== %s (t=%ds) ===\n' "$*" "$((SECONDS - start))"; }
bm=firmware-agent/ports/baremetal

stage "setup"
./scripts/setup.sh

if [ "${SKIP_LINT:-0}" != 1 ]; then
  stage "lint: cargo fmt, cargo clippy"
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets --locked -q -- -D warnings
fi

stage "build: workspace (gateway, host, simulated board)"
cargo build --workspace --locked -q

stage "test: systemd unit (systemd-analyze verify + security, its gateway.toml)"
dist/systemd/check.sh

stage "build + test: wamrc (our AOT compiler over WAMR + LLVM 19)"
tools/wamrc/build.sh
tools/wamrc/test.sh

stage "test: C agent core (plain, ASan+UBSan, libFuzzer)"
firmware-agent/tests/run.sh

stage "test: Zephyr port syntax check (arm-none-eabi-gcc + shim, deliberate breaks; no Zephyr here)"
firmware-agent/ports/zephyr/tests/syntax-check.sh
stage "test: the Zephyr syntax check catches deliberate breaks (copies of the port; about a minute)"
firmware-agent/ports/zephyr/tests/breaks.sh

stage "build + test: bare-metal Cortex-M4 firmware on QEMU"
$bm/build.sh
$bm/tests/smoke.sh
$bm/tests/kern.sh
$bm/tests/agent.sh
$bm/tests/netduinoplus2.sh
$bm/tests/signed.sh # signed modules: an image with a trusted key (<build>-signed)

# The real boards' images (their link enforces flash/RAM), each on the nearest QEMU machine
# (netduinoplus2, USART2 as its second serial), without semihosting as on the board.
for board in nucleo-f446re stm32f4-discovery; do
  stage "build + test: bare-metal agent image for $board on QEMU"
  BOARD=$board $bm/build.sh
  BOARD=$board $bm/tests/smoke.sh
  BOARD=$board $bm/tests/kern.sh
  BOARD=$board $bm/tests/agent.sh
done
# The Cortex-M7 board: built (its link enforces flash/RAM) and inspected, not run (QEMU has no STM32F7);
# its CPU, FPU, AOT target and cache maintenance run the agent tests on QEMU's Cortex-M7 (mps2-an500).
stage "build + check: bare-metal agent image for nucleo-f746zg (Cortex-M7; built, not run)"
BOARD=nucleo-f746zg $bm/build.sh
$bm/tests/f746zg-image.sh
stage "build + test: bare-metal Cortex-M7 build (the F746ZG's CPU, FPU, AOT target, caches) on QEMU mps2-an500"
BOARD=mps2-an500 $bm/build.sh
BOARD=mps2-an500 $bm/tests/smoke.sh
BOARD=mps2-an500 $bm/tests/kern.sh
BOARD=mps2-an500 $bm/tests/agent.sh

stage "test: gateway + host against the QEMU board (TCP, then serial PTY; device identity)"
LINK=tcp $bm/tests/gateway.sh
LINK=pty $bm/tests/gateway.sh
BOARD=nucleo-f446re LINK=pty $bm/tests/gateway.sh  # the real board's image, as over its VCP
# device identity: provisioned boards, enrollment, a swapped board refused (docs/SECURITY.md)
$bm/tests/identity.sh
BOARD=nucleo-f446re $bm/tests/identity.sh

stage "test: the GitHub Actions workflow, run locally (scripts/run-workflow.sh)"
scripts/tests/run-workflow.sh
scripts/run-workflow.sh .github/workflows/wasmbed-qemu.yml

if [ "${LONG_FUZZ:-0}" = 1 ]; then
  stage "fuzz: protocol decoder (cargo fuzz, ${FUZZ_SECONDS:-20} s)"
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked -q
  (cd fuzz && cargo +nightly fuzz run decoder -- -max_total_time="${FUZZ_SECONDS:-20}")
fi

stage "test: cargo test --workspace"
cargo test --workspace --locked

if [ "${SKIP_BENCH:-0}" != 1 ]; then
  # Keeps the harness working; it measures, it asserts no time (docs/benchmarks.md).
  stage "bench: smoke run of the benchmark harness (--quick)"
  tools/bench/run.sh --quick
fi
stage "done"
