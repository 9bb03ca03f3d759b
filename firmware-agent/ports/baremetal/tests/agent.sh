#!/usr/bin/env bash
# End-to-end test of the agent firmware on QEMU mps2-an386 over its UART
# (TCP): INFO, LOAD (wasm and AOT from tools/wamrc), START, STATUS during a
# job, STOP, a corrupted upload. Exits non-zero on any failed check.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/../../.." && pwd)"
"$here/build.sh" >/dev/null 2>&1 || "$here/build.sh"
elf="$repo/target/baremetal/build/agent.elf"
wamrc="$("$repo/tools/wamrc/build.sh")"
clang="$(command -v clang-14 || command -v clang)"
work="$(mktemp -d)"
qpid=""
cleanup() {
    [ -n "${S_PID:-}" ] && kill "$S_PID" 2>/dev/null || true
    [ -n "$qpid" ] && kill "$qpid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

wasm() { # wasm <out> <src>
    "$clang" --target=wasm32-unknown-unknown -O2 -nostdlib -Wl,--no-entry \
        -Wl,--export-all -Wl,--allow-undefined -o "$1" "$2"
}
printf 'int add(int a, int b) { return a + b; }\n' >"$work/add.c"
wasm "$work/add.wasm" "$work/add.c"
wasm "$work/sleeper.wasm" "$here/tests/sleeper.c"
"$wamrc" --target=thumbv7em --cpu=cortex-m4 --target-abi=eabihf \
    -o "$work/add.aot" "$work/add.wasm" >/dev/null
aot_version="$("$wamrc" --version | sed -n 's/.*AOT file version \([0-9]*\).*/\1/p')"

crc32() { gzip -c "$1" | tail -c8 | od -An -tx4 -N4 | tr -d ' \n'; }

"$here/qemu-run.sh" "$elf" "$work/port" 60 >"$work/qemu.out" 2>&1 &
qpid=$!
for _ in $(seq 1 100); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { echo "FAIL - QEMU did not listen"; cat "$work/qemu.out"; exit 1; }
coproc S { exec timeout 60 socat - "TCP:127.0.0.1:$(cat "$work/port")"; }

fails=0
last=""
send() { printf '%s\n' "$1" >&"${S[1]}"; echo ">> $1" >>"$work/session.log"; }
# expect <prefix> <regex>: the next line starting with prefix must match regex
expect() {
    local l
    while IFS= read -r -t 5 l <&"${S[0]}"; do
        echo "<< $l" >>"$work/session.log"
        if [[ "$l" == "$1"* ]]; then
            last="$l"
            if [[ "$l" =~ $2 ]]; then echo "ok   - $1: $2"; return 0; fi
            echo "FAIL - $1: want /$2/, got: $l"; fails=$((fails + 1)); return 0
        fi
    done
    echo "FAIL - no $1 line within 5 s"; fails=$((fails + 1))
}
load() { # load <id> <file> [crc]
    local crc="${3:-$(crc32 "$2")}"
    send "LOAD module_id=$1 size=$(stat -c %s "$2") crc32=$crc"
    expect LOAD_READY "module_id=$1 "
    cat "$2" >&"${S[1]}"
}

expect HELLO '^HELLO device_id=mps2-an386 rtos=baremetal runtime=WAMR fw_version=[0-9.]+ proto=2$'
send INFO
expect INFO_OK 'aot_arch=thumbv7em aot_cpu=cortex-m4 aot_abi=eabihf '
[[ "$last" =~ aot_version=$aot_version\  ]] && echo "ok   - INFO aot_version=$aot_version (wamrc's)" \
    || { echo "FAIL - INFO aot_version differs from wamrc's $aot_version: $last"; fails=$((fails + 1)); }

load m1 "$work/add.wasm"
expect LOAD_ '^LOAD_OK$'
send 'START module_id=m1 func=add args="a=200,b=26"'
expect START_OK '^START_OK$'
expect RESULT 'status=OK module_id=m1 func=add ret_i32=226$'

load m2 "$work/add.aot"
expect LOAD_ '^LOAD_OK$'
send 'START module_id=m2 func=add args="a=200,b=26"'
expect START_OK '^START_OK$'
expect RESULT 'status=OK module_id=m2 func=add ret_i32=226$'

load m1 "$work/sleeper.wasm"
expect LOAD_ '^LOAD_OK$'
send 'START module_id=m1'
expect START_OK '^START_OK$'
sleep 0.3
send STATUS
expect STATUS_OK 'm1:RUNNING:wasm=[0-9]+:'
send 'STOP module_id=m1'
expect STOP_OK 'status=PENDING'
expect RESULT 'status=STOPPED module_id=m1 func=app_main'
send STATUS
expect STATUS_OK 'm1:LOADED:'

load m2 "$work/add.wasm" 00000000
expect LOAD_ 'LOAD_ERR code=BAD_CRC'
load m2 "$work/add.wasm"
expect LOAD_ '^LOAD_OK$'

if [ "$fails" -ne 0 ]; then
    echo "--- session ---"; cat "$work/session.log"
    echo "$fails check(s) failed"
    exit 1
fi
echo "bare-metal agent test passed"
