#!/usr/bin/env bash
# Build Wasmbed's wamrc (AOT compiler) into <repo>/target/wamrc/ and print
# the path of the binary on stdout. Idempotent: a second run only re-checks.
#
# Environment:
#   WAMR_ROOT   a WAMR source tree (default: the one bundled in the
#               wamrx-sys 0.3.0 crate, found under $CARGO_HOME or with
#               `cargo metadata`)
#   LLVM_DIR    LLVM's CMake folder (default /usr/lib/llvm-19/lib/cmake/llvm)
#   JOBS        parallel build jobs (default 2)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$repo/target/wamrc"
jobs="${JOBS:-2}"

# shellcheck source=tools/wamrc/find-wamr.sh
source "$here/find-wamr.sh"
wamr="$(wasmbed_patched_wamr "$repo")"

llvm_dir="${LLVM_DIR:-/usr/lib/llvm-19/lib/cmake/llvm}"
if [ ! -f "$llvm_dir/LLVMConfig.cmake" ]; then
    echo "build.sh: LLVM CMake config not found in $llvm_dir (apt-get install llvm-19-dev, or set LLVM_DIR)" >&2
    exit 1
fi

if [ ! -f "$out/build/CMakeCache.txt" ] \
   || ! grep -q "^WAMR_ROOT_DIR:PATH=$wamr\$" "$out/build/CMakeCache.txt"; then
    cmake -S "$here" -B "$out/build" -DCMAKE_BUILD_TYPE=Release \
        -DWAMR_ROOT_DIR:PATH="$wamr" -DLLVM_DIR="$llvm_dir" >"$out.cmake.log" 2>&1 \
        || { cat "$out.cmake.log" >&2; exit 1; }
fi
cmake --build "$out/build" -j "$jobs" >"$out.build.log" 2>&1 \
    || { tail -50 "$out.build.log" >&2; exit 1; }
install -m 755 "$out/build/wamrc" "$out/wamrc"
echo "$out/wamrc"
