# Shared by the QEMU test scripts (source it after `set -euo pipefail` and setting `here`):
# a scratch dir `$work`, cleanup on exit of QEMU (`$qpid`) and helper processes, and
# `start_qemu ELF LIMIT_S` which boots ELF through qemu-run.sh (free port, hard timeout, killed by
# PID) and waits, bounded, until its UART listens; the port is then in "$work/port".
work="$(mktemp -d)"
qpid=""
extra_pids=() # helpers (socat, coprocs) a script starts; killed on exit
cleanup() {
    local p
    for p in "${extra_pids[@]}" "${S_PID:-}" "$qpid"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true # qemu-run.sh kills its QEMU by PID
    done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

start_qemu() { # start_qemu <elf> <limit_s>
    rm -f "$work/port"
    "$here/qemu-run.sh" "$1" "$work/port" "$2" >"$work/qemu.out" 2>&1 &
    qpid=$!
    for _ in $(seq 1 100); do [ -s "$work/port" ] && break; sleep 0.05; done
    [ -s "$work/port" ] || { echo "FAIL - QEMU did not listen"; cat "$work/qemu.out"; exit 1; }
}
