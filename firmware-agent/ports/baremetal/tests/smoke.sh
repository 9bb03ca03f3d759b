#!/usr/bin/env bash
# Smoke test of the bare-metal port on QEMU mps2-an386 (or BOARD's build on
# its QEMU machine): builds the firmware, boots it with the console UART on a
# TCP socket, and checks what it prints and its semihosting exit code (a test
# firmware: it ends through semihosting). Exits non-zero on any failed check.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
export BOARD="${BOARD:-mps2-an386}"
# shellcheck source=../board-facts.sh
. "$here/board-facts.sh"
elf="$("$here/build.sh" 2>/dev/null)"
# shellcheck source=lib.sh
. "$here/tests/lib.sh"
start_qemu "$elf" 30

# The firmware ends itself; the client reads until QEMU closes the socket.
timeout 30 socat -u "TCP:127.0.0.1:$(cat "$work/port")" - >"$work/uart.log" || true
set +e
wait "$qpid"
qemu_rc=$?
set -e
qpid=""

fails=0
expect() { # expect <regex>: a UART line must match it
    if grep -Eq "$1" "$work/uart.log"; then echo "ok   - $1"; else echo "FAIL - $1"; fails=$((fails + 1)); fi
}
expect "^HELLO device_id=$(board_fact BOARD_NAME) rtos=baremetal runtime=WAMR fw_version=[0-9.]+ proto=2\$"
expect '^SMOKE kind=wasm func=add result=226$'
expect '^SMOKE kind=wasm func=fmadd result_x10=125$'
if grep -q "kind=aot" "$work/uart.log" || [ "${WAMRC:-}" != none ]; then
    expect '^SMOKE kind=aot func=add result=226$'
    expect '^SMOKE kind=aot func=fmadd result_x10=125$'
fi
# the MPU (src/mpu.c): SRAM execute-never except the pool's window; a fetch outside it faults
expect '^SMOKE mpu exec=0x[0-9a-f]{8}-0x[0-9a-f]{8} probe=0x[0-9a-f]{8} fetch=fault$'
# Cortex-M7 boards (BOARD_HAS_CACHES): the cache enable ran (QEMU keeps CCR.IC/DC at 0: "off")
if board_fact BOARD_HAS_CACHES >/dev/null 2>&1; then
    expect '^SMOKE caches=(on|off)'
    echo "info - $(grep '^SMOKE caches=' "$work/uart.log" || true)"
fi
expect '^SMOKE done failures=0 '
if [ "$qemu_rc" -eq 0 ]; then echo "ok   - semihosting exit code 0"; else echo "FAIL - QEMU exit code $qemu_rc"; fails=$((fails + 1)); fi

if [ "$fails" -ne 0 ]; then
    echo "--- UART ---"; cat "$work/uart.log"; echo "--- QEMU ---"; cat "$work/qemu.out"
    exit 1
fi
echo "bare-metal smoke test passed"
