#!/usr/bin/env bash
# Run a firmware ELF on QEMU mps2-an386 (or BOARD=netduinoplus2) with the
# console UART on a TCP server socket.
#   [BOARD=netduinoplus2] qemu-run.sh ELF PORTFILE [TIMEOUT_S]
# Picks a free 127.0.0.1 port (retrying if taken), writes it to PORTFILE once
# QEMU listens, and waits (QEMU's wait=on) for a client. Exits with the
# firmware's semihosting exit code, or 124 on timeout (QEMU killed by
# timeout(1), which holds its PID).
set -euo pipefail

elf="$1"
portfile="$2"
limit="${3:-60}"
qemu="${QEMU:-qemu-system-arm}"
case "${BOARD:-mps2-an386}" in
mps2-an386) machine=(-M mps2-an386 -m 16M) ;; # 16M is the only size it accepts
netduinoplus2) machine=(-M netduinoplus2) ;;
*) echo "qemu-run.sh: BOARD must be mps2-an386 or netduinoplus2" >&2; exit 2 ;;
esac

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
    port=$((20000 + RANDOM % 30000))
    listening "$port" && continue
    # timeout(1) is the hard limit: it KILLs QEMU, only that process.
    timeout --signal=KILL "$limit" "$qemu" "${machine[@]}" -nographic -monitor none \
        -semihosting-config enable=on,target=native \
        -serial "tcp:127.0.0.1:$port,server=on,wait=on,nodelay=on" \
        -kernel "$elf" >"$log" 2>&1 &
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
done
echo "qemu-run.sh: no free port found" >&2
exit 1
