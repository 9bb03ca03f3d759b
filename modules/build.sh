#!/usr/bin/env bash
# Builds every example module with the legacy GW-3 flags (modules/clang-flags.txt, one a line: the
# one place those flags live; the gateway's default `compiler.clang_flags` and the benchmark read it).
# Usage: modules/build.sh [OUT_DIR] [module.c ...]   (default OUT_DIR: modules/out, all modules)
# Env: CLANG (default: clang, then clang-14). Warnings are errors.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/out}"
shift || true
CLANG="${CLANG:-$(command -v clang || command -v clang-14)}"
# Legacy GW-3 command line (reference section 5), plus warnings as errors.
mapfile -t FLAGS < "$here/clang-flags.txt"
WARN=(-Wall -Wextra -Werror)
mkdir -p "$out"
srcs=("$@")
[ ${#srcs[@]} -gt 0 ] || srcs=("$here"/*.c)
for src in "${srcs[@]}"; do
  name="$(basename "$src" .c)"
  "$CLANG" "${FLAGS[@]}" "${WARN[@]}" -I"$here" "$src" -o "$out/$name.wasm"
  echo "$out/$name.wasm"
done
