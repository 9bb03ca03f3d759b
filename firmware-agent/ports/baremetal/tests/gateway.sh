#!/usr/bin/env bash
# End-to-end through the real gateway and host: the agent firmware on QEMU mps2-an386 (or BOARD's
# image on its QEMU machine, e.g. BOARD=nucleo-f446re), reached by
# wasmbed-gateway over TCP (default) or over a serial device (LINK=pty: socat bridges QEMU's TCP
# UART to a pseudo-terminal, so the gateway's tokio-serial path runs against the emulated MCU).
# Runs renode/wasmbed-ci.sh (wasm and AOT: add, fft_bench, busy_loop stopped, trap).
#
# Environment: WASMBED_GATEWAY_BIN / WASMBED_HOST_BIN (default: <repo>/target/debug/...,
# built by `cargo build --workspace`), LINK=tcp|pty. Exits non-zero on any failed check.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
export WASMBED_GATEWAY_BIN="${WASMBED_GATEWAY_BIN:-$target/debug/wasmbed-gateway}"
export WASMBED_HOST_BIN="${WASMBED_HOST_BIN:-$target/debug/wasmbed-host}"
link="${LINK:-tcp}"
for b in "$WASMBED_GATEWAY_BIN" "$WASMBED_HOST_BIN"; do
    [ -x "$b" ] || { echo "gateway.sh: $b missing (cargo build --workspace)" >&2; exit 2; }
done
export BOARD="${BOARD:-mps2-an386}"
# shellcheck source=../board-facts.sh
. "$here/board-facts.sh"
"$here/build.sh" >/dev/null 2>&1 || "$here/build.sh"
# the gateway's AOT mode needs our wamrc (it looks in target/wamrc/wamrc and on PATH)
wamrc="$("$repo/tools/wamrc/build.sh")"
PATH="$(dirname "$wamrc"):$PATH"
elf="$(board_build_dir)/agent.elf"
# shellcheck source=lib.sh
. "$here/tests/lib.sh"
SEMIHOSTING=0 start_qemu "$elf" 300 # as a board runs: no debugger
port="$(cat "$work/port")"

case "$link" in
tcp) endpoint="tcp:127.0.0.1:$port" ;;
pty)
    command -v socat >/dev/null || { echo "gateway.sh: LINK=pty needs socat" >&2; exit 2; }
    timeout --signal=KILL 300 socat "pty,link=$work/tty,raw,echo=0" "TCP:127.0.0.1:$port" &
    extra_pids+=("$!")
    for _ in $(seq 1 100); do [ -e "$work/tty" ] && break; sleep 0.05; done
    [ -e "$work/tty" ] || { echo "FAIL - socat made no PTY"; exit 1; }
    endpoint="serial:$work/tty?baud=115200"
    ;;
*) echo "gateway.sh: LINK must be tcp or pty" >&2; exit 2 ;;
esac

echo "board: $BOARD on QEMU $(board_fact BOARD_QEMU_MACHINE), gateway endpoint $endpoint"
set +e
READY_TIMEOUT=60 timeout 280 "$repo/renode/wasmbed-ci.sh" "$endpoint" "$work/art"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
    echo "--- gateway ---"; tail -30 "$work/art/gateway.log" 2>/dev/null || true
    echo "--- QEMU ---"; cat "$work/qemu.out"
    exit 1
fi
# The board reports its UART speed (INFO baud=) and compress=deflate, so the gateway sent the
# modules as deflate streams and the board inflated them (docs/PROTOCOL.md "Compressed uploads").
if ! grep -q "compressed: [0-9]* -> [0-9]* bytes (deflate)" "$work/art/gateway.log"; then
    echo "FAIL - no compressed upload in the gateway log"; tail -30 "$work/art/gateway.log"; exit 1
fi
echo "ok   - $(grep -c "compressed: [0-9]* -> [0-9]* bytes (deflate)" "$work/art/gateway.log") compressed uploads inflated on the board"
echo "bare-metal gateway test ($link) passed"
