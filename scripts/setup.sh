#!/usr/bin/env bash
# Installs what a fresh Debian 12 / Ubuntu machine lacks to build and test Wasmbed.
# Idempotent: when everything is present it only checks and returns.
set -euo pipefail

PKGS=(
  clang lld            # C -> wasm32 (modules) and the C agent
  libclang-rt-14-dev   # ASan/UBSan/libFuzzer runtimes (only a Recommends of clang)
  cmake libclang-dev   # WAMR's CMake build
  llvm-19-dev          # our AOT compiler (wamrc) over WAMR's compilation sources
  gcc-arm-none-eabi libnewlib-arm-none-eabi  # bare-metal Cortex-M4 port
  qemu-system-arm      # the emulated MCU board
  socat                # serial-path test: TCP <-> PTY bridge
  iproute2             # ss: the QEMU runner waits for QEMU's UART port to listen
  wabt                 # wat2wasm for hand-written test modules
  nats-server          # fleet tests: real NATS JetStream servers (docs/FLEET.md)
  pkg-config
  python3-minimal      # Zephyr port syntax check: its overlay reader (a test tool only)
)

missing=()
for p in "${PKGS[@]}"; do
  [[ "$p" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }
# Download crates (including the WAMR sources bundled in wamrx-sys) up front.
cargo fetch --locked -q 2>/dev/null || cargo fetch -q
