#!/usr/bin/env bash
# Builds and runs the agent core's C unit tests (plain, then ASan+UBSan) and the libFuzzer target
# for the line/command parser, against real WAMR 2.4.3 (the wamrx-sys sources) and real modules.
# Env: BUILD_DIR (default <repo>/target/agent-tests), FUZZ_SECONDS (default 20; 0 skips),
#      WAMR_ROOT_DIR (default: found in the cargo registry), CC (default clang),
#      WAMRC (default <repo>/target/wamrc/wamrc; without it the AOT half of test_code_sync is not run).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
agent="$(dirname "$here")"
repo="$(dirname "$agent")"
build="${BUILD_DIR:-$repo/target/agent-tests}"
fuzz_seconds="${FUZZ_SECONDS:-20}"
CC="${CC:-clang}"
mkdir -p "$build"

if [ -z "${WAMR_ROOT_DIR:-}" ]; then
  WAMR_ROOT_DIR="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wamrx-sys-0.3.0/wasm-micro-runtime 2>/dev/null | head -n1 || true)"
  if [ -z "$WAMR_ROOT_DIR" ]; then
    (cd "$repo" && cargo fetch -q)
    WAMR_ROOT_DIR="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wamrx-sys-0.3.0/wasm-micro-runtime | head -n1)"
  fi
fi

# the patched copy every build compiles (firmware-agent/wamr/patches)
WAMR_ROOT_DIR="$("$agent/wamr/patch-wamr.sh" "$WAMR_ROOT_DIR" "$build/wamr-src")"
echo "== WAMR ($WAMR_ROOT_DIR)"
cmake -S "$agent/wamr" -B "$build/wamr" -DWAMR_ROOT_DIR="$WAMR_ROOT_DIR" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-w >"$build/wamr-cmake.log" 2>&1 \
  || { cat "$build/wamr-cmake.log"; exit 1; }
cmake --build "$build/wamr" -j2 >>"$build/wamr-cmake.log" 2>&1 || { tail -n 30 "$build/wamr-cmake.log"; exit 1; }

echo "== modules"
"$repo/modules/build.sh" "$build/modules" >/dev/null
# One host AOT module for test_code_sync, with the wamrc scripts/test.sh builds first (env WAMRC).
wamrc="${WAMRC:-$repo/target/wamrc/wamrc}"
rm -f "$build/modules/math_ops.aot"
if [ -x "$wamrc" ]; then
  "$wamrc" --target=x86_64 --bounds-checks=1 -o "$build/modules/math_ops.aot" \
    "$build/modules/math_ops.wasm" >/dev/null
fi

CFLAGS=(-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -I"$agent/core" -I"$here"
        -DIDENT_TABLE="\"$repo/testdata/identifiers.txt\""
        -DPROTOCOL_DIR="\"$repo/testdata/protocol\""
        -I"$WAMR_ROOT_DIR/core/iwasm/include"
        -I"$agent/third_party/monocypher" -I"$agent/third_party/monocypher/optional")
CORE=("$agent"/core/*.c "$here/fake_port.c"
      "$agent/third_party/monocypher/monocypher.c"
      "$agent/third_party/monocypher/optional/monocypher-ed25519.c")
LIBS=("$build/wamr/libvmlib.a" -lpthread -lm -ldl)

build_and_run() { # name extra-flags...
  local name="$1"; shift
  echo "== unit tests ($name)"
  "$CC" "${CFLAGS[@]}" "$@" "${CORE[@]}" "$here/test_core.c" "${LIBS[@]}" -o "$build/test_core_$name"
  "$build/test_core_$name" "$build/modules"
}

build_and_run plain -O1
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  build_and_run asan -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

if [ "$fuzz_seconds" -gt 0 ]; then
  echo "== fuzz (framing, lines, commands; property: only complete lines outside payload run; ${fuzz_seconds}s)"
  "$CC" "${CFLAGS[@]}" -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    "${CORE[@]}" "$here/fuzz_rx.c" "${LIBS[@]}" -o "$build/fuzz_rx"
  mkdir -p "$build/corpus"
  printf 'STATUS\nINFO\nSTART module_id=a func=f args="a=1,b=2"\n' >"$build/corpus/seed1"
  printf 'LOAD module_id=a size=8 crc32=00000000 chunked=1\nCHUNK offset=0 size=8 crc32=0\n\0asm\1\0\0\0\n' >"$build/corpus/seed2"
  # a framed upload: LOAD, then 0xFD n (the fuzzer's "frame the next n bytes") with a spell inside
  printf 'LOAD module_id=a size=40 crc32=00000000 chunked=1 framed=1\n\375\050\nUNLOAD module_id=a\nSTATUS\r\n0123456789abcdef\nSTATUS\n' >"$build/corpus/seed3"
  "$build/fuzz_rx" -max_total_time="$fuzz_seconds" -max_len=4096 -timeout=10 \
    -print_final_stats=0 "$build/corpus" 2>"$build/fuzz.log" || { tail -n 40 "$build/fuzz.log"; exit 1; }
  grep -E "^Done [0-9]+ runs" "$build/fuzz.log" || tail -n 3 "$build/fuzz.log"
fi
echo "== all agent C tests passed"
