#!/usr/bin/env bash
# The STM32F405 memory-budget variant on QEMU netduinoplus2: the build itself
# fails if the firmware does not fit 1 MiB flash, 128 KiB SRAM and 64 KiB
# CPU-only RAM; then the smoke ELF (modules embedded in read-only flash,
# copied to RAM) and the agent (one module at a time in a 112 KiB pool): INFO,
# add=226 interpreted and AOT, a busy loop force-stopped, a trap, fft_bench.
# Exits non-zero on any failed check.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/../../.." && pwd)"
export BOARD=netduinoplus2
"$here/build.sh" >/dev/null 2>&1 || "$here/build.sh"
build="$repo/target/baremetal/build-netduinoplus2"
wamrc="$("$repo/tools/wamrc/build.sh")"
clang="$(command -v clang-14 || command -v clang)"
# shellcheck source=lib.sh
. "$here/tests/lib.sh"
fails=0

# ---- smoke ELF: runs and exits by itself ----
start_qemu "$build/smoke.elf" 30
timeout 30 socat -u "TCP:127.0.0.1:$(cat "$work/port")" - >"$work/smoke.log" || true
set +e; wait "$qpid"; rc=$?; set -e; qpid=""
if [ "$rc" -eq 0 ] && grep -q '^SMOKE done failures=0' "$work/smoke.log" \
    && grep -q '^SMOKE kind=aot func=fmadd result_x10=125$' "$work/smoke.log"; then
    echo "ok   - smoke ELF on netduinoplus2 (wasm + AOT, exit 0)"
else
    echo "FAIL - smoke ELF (exit $rc)"; cat "$work/smoke.log" "$work/qemu.out"; fails=$((fails + 1))
fi

# ---- agent ----
CLANG="$clang" "$repo/modules/build.sh" "$work/mods" >/dev/null
for m in math_ops busy_loop trap fft_bench; do
    "$wamrc" --target=thumbv7em --cpu=cortex-m4 --target-abi=eabihf \
        -o "$work/mods/$m.aot" "$work/mods/$m.wasm" >/dev/null
done
crc32() { gzip -c "$1" | tail -c8 | od -An -tx4 -N4 | tr -d ' \n'; }

SEMIHOSTING=0 start_qemu "$build/agent.elf" 120 # as a board runs: no debugger
coproc S { exec timeout 120 socat - "TCP:127.0.0.1:$(cat "$work/port")"; }
send() { printf '%s\n' "$1" >&"${S[1]}"; echo ">> $1" >>"$work/session.log"; }
expect() { # expect <prefix> <regex>: the next line starting with prefix must match
    local l
    while IFS= read -r -t 8 l <&"${S[0]}"; do
        echo "<< $l" >>"$work/session.log"
        if [[ "$l" == "$1"* ]]; then
            if [[ "$l" =~ $2 ]]; then echo "ok   - $1: $2"; return 0; fi
            echo "FAIL - $1: want /$2/, got: $l"; fails=$((fails + 1)); return 0
        fi
    done
    echo "FAIL - no $1 line within 8 s"; fails=$((fails + 1))
}
load() { # load <id> <file>: replaces the one module the pool holds
    send "UNLOAD module_id=$1"
    expect UNLOAD_ ''
    send "LOAD module_id=$1 size=$(stat -c %s "$2") crc32=$(crc32 "$2")"
    expect LOAD_READY "module_id=$1 "
    cat "$2" >&"${S[1]}"
    expect LOAD_ '^LOAD_OK$'
}

expect HELLO '^HELLO device_id=netduinoplus2 rtos=baremetal runtime=WAMR '
send INFO
expect INFO_OK 'board=netduinoplus2 .*aot_arch=thumbv7em .*pool_total=11[0-9]{4} .*stop=forced '
for kind in wasm aot; do
    load m "$work/mods/math_ops.$kind"
    send 'START module_id=m func=add args="a=200,b=26"'
    expect START_OK '^START_OK$'
    expect RESULT "^RESULT status=OK module_id=m func=add ret_i32=226$"
    load m "$work/mods/busy_loop.$kind"
    send 'START module_id=m func=busy_loop'
    expect START_OK '^START_OK$'
    sleep 0.3
    send STATUS
    expect STATUS_OK 'm:RUNNING:'
    send 'STOP module_id=m'
    expect STOP_OK 'status=PENDING'
    expect RESULT '^RESULT status=STOPPED forced=1 module_id=m func=busy_loop$'
    load m "$work/mods/trap.$kind"
    send 'START module_id=m func=trap'
    expect START_OK '^START_OK$'
    expect RESULT '^RESULT status=EXCEPTION module_id=m func=trap '
    load m "$work/mods/fft_bench.$kind"
    send 'START module_id=m func=fft_bench args="n=1"'
    expect START_OK '^START_OK$'
    expect RESULT '^RESULT status=OK module_id=m func=fft_bench ret_i32=1536$'
done

if [ "$fails" -ne 0 ]; then
    echo "--- session ---"; cat "$work/session.log"; echo "--- QEMU ---"; cat "$work/qemu.out"
    echo "$fails check(s) failed"
    exit 1
fi
echo "netduinoplus2 test passed"
