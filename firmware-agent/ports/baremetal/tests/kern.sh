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
# shellcheck source=lib.sh
. "$here/tests/lib.sh"
start_qemu "$elf" 60
timeout 60 socat -u "TCP:127.0.0.1:$(cat "$work/port")" - >"$work/uart.log" || true
set +e; wait "$qpid"; rc=$?; set -e; qpid=""
grep '^KERN' "$work/uart.log" || true
if [ "$rc" -ne 0 ] || ! grep -q '^KERN done failures=0$' "$work/uart.log" || grep -q '^KERN FAIL' "$work/uart.log"; then
    echo "FAIL - kernel self-test on $board (exit $rc)"; cat "$work/qemu.out"
    exit 1
fi
echo "kernel self-test on $board passed"
