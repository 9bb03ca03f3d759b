#!/usr/bin/env bash
# Run a firmware ELF on QEMU mps2-an386 (or another BOARD: its header
# src/boards/<board>.h names the nearest QEMU machine and which -serial is the
# board's console UART) with the console UART on a TCP server socket.
#   [BOARD=nucleo-f446re] [SEMIHOSTING=0] qemu-run.sh ELF PORTFILE [TIMEOUT_S]
# SEMIHOSTING=0 starts QEMU without -semihosting-config, the way a real board
# runs (no debugger): the agent images must work so; the test firmwares (smoke,
# kernel self-test) exit through semihosting and need the default 1.
# Picks a free 127.0.0.1 port (retrying if taken), writes it to PORTFILE once
# QEMU listens, and waits (QEMU's wait=on) for a client. Exits with the
# firmware's semihosting exit code, or 124 on timeout (QEMU killed by
# timeout(1), which holds its PID).
# IDENTITY=FILE puts a board identity record (`wasmbed-host keys provision`) at the image's
# identity page (its __wasmbed_identity symbol), where a board has it flashed; PORT=N listens on
# that port instead of a free one (a board swapped behind one endpoint).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
elf="$1"
portfile="$2"
limit="${3:-60}"
qemu="${QEMU:-qemu-system-arm}"
BOARD="${BOARD:-mps2-an386}"
# shellcheck source=board-facts.sh
. "$here/board-facts.sh"
machine=(-M "$(board_fact BOARD_QEMU_MACHINE)")
[ "${machine[1]}" = mps2-an386 ] && machine+=(-m 16M) # 16M is the only size it accepts
serial_index="$(board_fact BOARD_QEMU_SERIAL)"
semihosting=(-semihosting-config enable=on,target=native)
[ "${SEMIHOSTING:-1}" = 0 ] && semihosting=()
# QEMU hands -serial options to the machine's UARTs in order: the ones before
# the console get null.
serial_before=()
for ((i = 0; i < serial_index; i++)); do serial_before+=(-serial null); done
identity=()
if [ -n "${IDENTITY:-}" ]; then
    [ -r "$IDENTITY" ] || { echo "qemu-run.sh: IDENTITY=$IDENTITY is not a readable file" >&2; exit 2; }
    addr="$(arm-none-eabi-nm "$elf" | sed -n 's/^\([0-9a-f]*\) . __wasmbed_identity$/\1/p')"
    [ -n "$addr" ] || { echo "qemu-run.sh: $elf has no identity page (__wasmbed_identity)" >&2; exit 2; }
    identity=(-device "loader,file=$IDENTITY,addr=0x$addr,force-raw=on")
fi

[ -f "$elf" ] || { echo "qemu-run.sh: no such ELF: $elf" >&2; exit 2; }
rm -f "$portfile"
log="$(mktemp)"
qpid=""
# Whoever ends this script ends its QEMU too (by PID, nothing else).
stop_qemu() {
    if [ -n "$qpid" ]; then
        pkill -KILL -P "$qpid" 2>/dev/null || true  # QEMU, child of timeout(1)
        # timeout(1) reaps QEMU and exits; only if it lingers is it killed too
        # (killing it first would leave QEMU a zombie under an init that may not reap).
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$qpid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$qpid" 2>/dev/null || true
        wait "$qpid" 2>/dev/null || true
        qpid=""
    fi
}
trap 'stop_qemu; rm -f "$log"' EXIT
trap 'exit 143' TERM INT

listening() { # listening PORT: is something listening on it?
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q LISTEN
}

for _attempt in 1 2 3 4 5 6 7 8; do
    port="${PORT:-$((20000 + RANDOM % 30000))}"
    [ -z "${PORT:-}" ] && listening "$port" && continue
    # timeout(1) is the hard limit: it KILLs QEMU, only that process.
    timeout --signal=KILL "$limit" "$qemu" "${machine[@]}" -nographic -monitor none \
        ${semihosting[@]+"${semihosting[@]}"} ${serial_before[@]+"${serial_before[@]}"} \
        -serial "tcp:127.0.0.1:$port,server=on,wait=on,nodelay=on" \
        ${identity[@]+"${identity[@]}"} -kernel "$elf" >"$log" 2>&1 &
    qpid=$!
    # Wait (bounded) until QEMU listens or dies.
    for _ in $(seq 1 100); do
        if listening "$port"; then
            echo "$port" >"$portfile"
            break
        fi
        kill -0 "$qpid" 2>/dev/null || break
        sleep 0.05
    done
    if [ -s "$portfile" ]; then
        set +e
        wait "$qpid"
        rc=$?
        set -e
        qpid=""
        cat "$log" >&2
        exit "$rc"
    fi
    stop_qemu
    grep -q "Address already in use" "$log" || { cat "$log" >&2; exit 1; }
    [ -z "${PORT:-}" ] || { echo "qemu-run.sh: PORT=$PORT is taken" >&2; exit 1; }
done
echo "qemu-run.sh: no free port found" >&2
exit 1
