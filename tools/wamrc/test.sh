#!/usr/bin/env bash
# Tests of tools/wamrc: builds the compiler and a tiny WAMR host runner,
# compiles a real C module with clang to wasm, then to AOT for x86_64 and for
# the Cortex-M4 board, and checks the files and their execution.
# Exits non-zero on the first failed check.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fails=0

pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
check() { # check <description> <command...>
    local what="$1"; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# shellcheck source=tools/wamrc/find-wamr.sh
source "$here/find-wamr.sh"
wamr="$(wasmbed_patched_wamr "$repo")"

wamrc="$("$here/build.sh")"
runner_build="$repo/target/wamrc/runner-build"
if [ ! -f "$runner_build/CMakeCache.txt" ]; then
    cmake -S "$here/runner" -B "$runner_build" -DCMAKE_BUILD_TYPE=Release \
        -DWAMR_ROOT_DIR:PATH="$wamr" >"$work/runner-cmake.log" 2>&1 \
        || { cat "$work/runner-cmake.log"; exit 1; }
fi
cmake --build "$runner_build" -j "${JOBS:-2}" >"$work/runner-build.log" 2>&1 \
    || { tail -40 "$work/runner-build.log"; exit 1; }
run="$runner_build/aot-run"

clang="$(command -v clang-14 || command -v clang || true)"
[ -n "$clang" ] || { echo "clang (with the wasm32 target) not found"; exit 1; }
mapfile -t wasm_flags <"$repo/modules/clang-flags.txt" # the project's one set of module flags
"$clang" "${wasm_flags[@]}" -Wl,--export-all -o "$work/add.wasm" "$here/tests/add.c"

# --- version -----------------------------------------------------------
version_line="$("$wamrc" --version)"
check "--version names WAMR 2.4.3" grep -q "wamrc 2.4.3" <<<"$version_line"
aot_version="$(sed -n 's/.*AOT file version \([0-9]*\).*/\1/p' <<<"$version_line")"
check "--version names the AOT file version" test -n "$aot_version"

# header <file> <expected e_machine>: magic, version, target machine.
header_ok() {
    local f="$1" machine="$2" magic ver mach
    magic="$(od -An -tx1 -N4 "$f" | tr -d ' \n')"
    ver="$(od -An -tu4 -j4 -N4 "$f" | tr -d ' ')"
    # target info section: id(4) size(4) bin_type(2) abi_type(2) e_type(2) e_machine(2)
    mach="$(od -An -tu2 -j22 -N2 "$f" | tr -d ' ')"
    [ "$magic" = "0061 6f74" ] || [ "$magic" = "00616f74" ] || { echo "  magic $magic"; return 1; }
    [ "$ver" = "$aot_version" ] || { echo "  version $ver, want $aot_version"; return 1; }
    [ "$mach" = "$machine" ] || { echo "  e_machine $mach, want $machine"; return 1; }
}

# --- x86_64: compile and run -------------------------------------------
"$wamrc" --target=x86_64 -o "$work/add.x86_64.aot" "$work/add.wasm" >"$work/x86.log"
check "x86_64 header: \\0aot, version $aot_version, EM_X86_64" header_ok "$work/add.x86_64.aot" 62
check "x86_64 add(200,26) = 226" \
    test "$("$run" "$work/add.x86_64.aot" add 200 26)" = "aot result=226"
check "x86_64 add(-5,3) = -2" \
    test "$("$run" "$work/add.x86_64.aot" add -5 3)" = "aot result=-2"
oob_out="$("$run" "$work/add.x86_64.aot" oob 0 || true)"
check "x86_64 out-of-bounds read traps ($oob_out)" grep -q "out of bounds memory access" <<<"$oob_out"
check "same result from the interpreter" \
    test "$("$run" "$work/add.wasm" add 200 26)" = "wasm result=226"

# --- thumbv7em / Cortex-M4 / hard float --------------------------------
m4=(--target=thumbv7em --cpu=cortex-m4 --target-abi=eabihf)
"$wamrc" "${m4[@]}" -o "$work/add.m4.aot" "$work/add.wasm" >"$work/m4.log"
check "thumbv7em header: \\0aot, version $aot_version, EM_ARM" header_ok "$work/add.m4.aot" 40
check "thumbv7em triple is bare-metal hard-float" \
    grep -q "target triple: thumbv7em-unknown-none-eabihf" "$work/m4.log"
check "thumbv7em arch string in the file" grep -q "thumbv7em" "$work/add.m4.aot"
load_err="$("$run" "$work/add.m4.aot" add 200 26 2>&1 || true)"
check "x86_64 runtime refuses the thumb file" grep -q "invalid target" <<<"$load_err"
"$wamrc" "${m4[@]}" --bounds-checks=1 -o "$work/bc1.aot" "$work/add.wasm" >/dev/null
"$wamrc" "${m4[@]}" --bounds-checks=0 -o "$work/bc0.aot" "$work/add.wasm" >/dev/null
check "thumb: bounds checks on by default" cmp -s "$work/add.m4.aot" "$work/bc1.aot"
check "thumb: --bounds-checks=0 changes the code" bash -c "! cmp -s '$work/bc0.aot' '$work/bc1.aot'"

# --- bad input: clear error, non-zero exit, no output file --------------
printf 'not wasm at all' >"$work/bad.wasm"
set +e
"$wamrc" -o "$work/bad.aot" "$work/bad.wasm" >"$work/bad.out" 2>&1; bad_rc=$?
"$wamrc" --opt-level=9 -o "$work/x.aot" "$work/add.wasm" >"$work/opt.out" 2>&1; opt_rc=$?
"$wamrc" "$work/add.wasm" >"$work/noout.out" 2>&1; noout_rc=$?
"$wamrc" --target=nosucharch -o "$work/y.aot" "$work/add.wasm" >"$work/arch.out" 2>&1; arch_rc=$?
set -e
check "invalid module: exit 1 with a message" \
    bash -c "[ $bad_rc -eq 1 ] && grep -q 'not a valid module' '$work/bad.out' && [ ! -e '$work/bad.aot' ]"
check "bad --opt-level: exit 2 naming the option" \
    bash -c "[ $opt_rc -eq 2 ] && grep -q -- '--opt-level' '$work/opt.out'"
check "missing -o: exit 2" bash -c "[ $noout_rc -eq 2 ] && grep -q -- '-o OUT' '$work/noout.out'"
check "unknown target: exit 1, no output" \
    bash -c "[ $arch_rc -eq 1 ] && grep -qi 'invalid target' '$work/arch.out' && [ ! -e '$work/y.aot' ]"

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all wamrc checks passed"
