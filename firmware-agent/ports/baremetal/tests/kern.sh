#!/usr/bin/env bash
# Self-test of the port's kernel on QEMU (kern_test.elf): FP registers s0-s31
# preserved across time-sliced switches, sleep, semaphore timeout, a
# contended mutex, restarting a spinning thread. Exits non-zero on failure.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/../../.." && pwd)"
board="${BOARD:-mps2-an386}"
"$here/build.sh" >/dev/null 2>&1 || "$here/build.sh"
case "$board" in
mps2-an386) elf="$repo/target/baremetal/build/kern_test.elf" ;;
*) elf="$repo/target/baremetal/build-$board/kern_test.elf" ;;
esac
work="$(mktemp -d)"
qpid=""
cleanup() {
    [ -n "$qpid" ] && kill "$qpid" 2>/dev/null || true # qemu-run.sh kills its QEMU by PID
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$here/qemu-run.sh" "$elf" "$work/port" 60 >"$work/qemu.out" 2>&1 &
qpid=$!
for _ in $(seq 1 100); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { echo "FAIL - QEMU did not listen"; cat "$work/qemu.out"; exit 1; }
timeout 60 socat -u "TCP:127.0.0.1:$(cat "$work/port")" - >"$work/uart.log" || true
set +e; wait "$qpid"; rc=$?; set -e; qpid=""
grep '^KERN' "$work/uart.log" || true
if [ "$rc" -ne 0 ] || ! grep -q '^KERN done failures=0$' "$work/uart.log" || grep -q '^KERN FAIL' "$work/uart.log"; then
    echo "FAIL - kernel self-test on $board (exit $rc)"; cat "$work/qemu.out"
    exit 1
fi
echo "kernel self-test on $board passed"
