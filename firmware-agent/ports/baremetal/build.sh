#!/usr/bin/env bash
# Build the bare-metal firmware for QEMU mps2-an386 into
# <repo>/target/baremetal/build, or for another BOARD into
# <repo>/target/baremetal/build-<board> (nucleo-f446re, stm32f4-discovery,
# nucleo-f746zg: the real boards; mps2-an500: the Cortex-M7 on QEMU; netduinoplus2: the STM32F405 budget variant; their link
# fails if the image does not fit the board's flash and RAM, see
# src/boards/<board>.h), and print the footprint (arm-none-eabi-size).
# Idempotent and fast when already built. Prints the smoke ELF path last.
#
# Environment: BOARD (mps2-an386, mps2-an500, nucleo-f446re, stm32f4-discovery, nucleo-f746zg,
# netduinoplus2),
# TRUSTED_KEYS (a file of Ed25519 public keys, one 64-hex-digit key per line, e.g. from
# `wasmbed-host keys show`: the image then requires modules signed by one of them, built into
# <build dir>-signed; SIGNATURES=optional accepts unsigned ones too; docs/SECURITY.md),
# WAMR_ROOT (WAMR tree; default: the wamrx-sys 0.3.0 one),
# WAMRC (AOT compiler; default: build tools/wamrc, set WAMRC=none to skip the
# AOT smoke module), JOBS (default 2).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
board="${BOARD:-mps2-an386}"
case "$board" in
mps2-an386) build="$repo/target/baremetal/build" ;;
mps2-an500 | netduinoplus2 | nucleo-f446re | stm32f4-discovery | nucleo-f746zg) build="$repo/target/baremetal/build-$board" ;;
*) echo "build.sh: BOARD must be mps2-an386, mps2-an500, nucleo-f446re, stm32f4-discovery, nucleo-f746zg or netduinoplus2" >&2; exit 2 ;;
esac
jobs="${JOBS:-2}"
keys_args=()
if [ -n "${TRUSTED_KEYS:-}" ]; then
    [ -r "$TRUSTED_KEYS" ] || { echo "build.sh: TRUSTED_KEYS=$TRUSTED_KEYS is not a readable file" >&2; exit 2; }
    build="$build-signed"
    keys_args=(-DWASMBED_TRUSTED_KEYS:FILEPATH="$(realpath "$TRUSTED_KEYS")"
               -DWASMBED_SIGNATURES="${SIGNATURES:-required}")
fi

# shellcheck source=tools/wamrc/find-wamr.sh
source "$repo/tools/wamrc/find-wamr.sh"
wamr="$(wasmbed_patched_wamr "$repo")"

wamrc="${WAMRC:-}"
if [ -z "$wamrc" ]; then
    wamrc="$("$repo/tools/wamrc/build.sh")"
elif [ "$wamrc" = none ]; then
    wamrc=""
fi

for tool in arm-none-eabi-gcc arm-none-eabi-size cmake; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool not found (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi cmake)" >&2; exit 1; }
done

mkdir -p "$build"
cmake -S "$here" -B "$build" \
    -DCMAKE_TOOLCHAIN_FILE="$here/cmake/arm-none-eabi.cmake" \
    -DBAREMETAL_BOARD="$board" \
    -DWAMR_ROOT_DIR:PATH="$wamr" -DWAMRC:FILEPATH="$wamrc" "${keys_args[@]}" >"$build.cmake.log" 2>&1 \
    || { cat "$build.cmake.log" >&2; exit 1; }
cmake --build "$build" -j "$jobs" >"$build.log" 2>&1 \
    || { grep -E "error|Error|overflow|will not fit" "$build.log" | head -40 >&2; exit 1; }
if grep -q "warning:" "$build.log"; then
    grep "warning:" "$build.log" >&2
fi

echo "footprint on $board (text = flash, data + bss = RAM; bss includes the WAMR pool):" >&2
for elf in "$build"/*.elf; do
    arm-none-eabi-size "$elf" >&2
done
# where this board keeps its identity record (README.md "Device identity"; wasmbed-host keys provision)
id_page="$(arm-none-eabi-nm "$build/agent.elf" | sed -n 's/^\([0-9a-f]*\) . __wasmbed_identity$/0x\1/p')"
[ -n "$id_page" ] && echo "identity page on $board: $id_page (flash the record from \`wasmbed-host keys provision\` there)" >&2
echo "$build/smoke.elf"
