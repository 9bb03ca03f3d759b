#!/usr/bin/env bash
# End-to-end check of an emulated (or real) board through wasmbed-gateway and wasmbed-host.
#
#   renode/wasmbed-ci.sh ENDPOINT [ARTIFACT_DIR]
#
# ENDPOINT is a gateway endpoint: tcp:localhost:3456 (Renode's server socket terminal, QEMU's
# -serial tcp:...), or a serial port (/dev/ttyACM0). The board must already be running.
# Starts a gateway on a free loopback port with `--device board=ENDPOINT`, waits until the board
# answers INFO, clears the board (stops and unloads every module an earlier run or job left), then
# for each mode in $MODES (default "wasm aot", only "wasm" when the board
# reports aot_arch=none): add(200,26)=226, fft_bench checksum 1536, busy_loop stopped, a trap
# reported (exit 7). Gateway log, device log and INFO go to ARTIFACT_DIR (default ./wasmbed-ci).
#
# Environment: WASMBED_GATEWAY_BIN, WASMBED_HOST_BIN (default: from PATH), MODULES_DIR (default
# <repo>/modules), READY_TIMEOUT (s, default 60), MODES. Exit code: 0 all passed, 1 a check
# failed, 2 usage or missing tool, 3 the gateway did not start, 4 the board never answered.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
endpoint="${1:-}"
art="${2:-wasmbed-ci}"
[ -n "$endpoint" ] || { sed -n '2,16p' "$0" >&2; exit 2; }
gw_bin="${WASMBED_GATEWAY_BIN:-$(command -v wasmbed-gateway || true)}"
host_bin="${WASMBED_HOST_BIN:-$(command -v wasmbed-host || true)}"
modules="${MODULES_DIR:-$here/../modules}"
ready_timeout="${READY_TIMEOUT:-60}"
for b in "$gw_bin" "$host_bin"; do
    [ -n "$b" ] && [ -x "$b" ] || { echo "wasmbed-ci: wasmbed-gateway/wasmbed-host not found (set WASMBED_GATEWAY_BIN/WASMBED_HOST_BIN)" >&2; exit 2; }
done
[ -f "$modules/math_ops.c" ] || { echo "wasmbed-ci: no modules in $modules (set MODULES_DIR)" >&2; exit 2; }
mkdir -p "$art"

gw_pid=""
cleanup() {
    if [ -n "$gw_pid" ]; then
        kill "$gw_pid" 2>/dev/null || true
        wait "$gw_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# A free loopback port for the host API (retried if the gateway cannot bind it).
for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 30000))
    timeout --signal=TERM 3600 "$gw_bin" --listen "127.0.0.1:$port" \
        --device "board=$endpoint" >"$art/gateway.log" 2>&1 &
    gw_pid=$!
    for _ in $(seq 1 100); do
        grep -q "^listening on" "$art/gateway.log" && break
        kill -0 "$gw_pid" 2>/dev/null || break
        sleep 0.1
    done
    grep -q "^listening on" "$art/gateway.log" && break
    cleanup
    gw_pid=""
done
[ -n "$gw_pid" ] || { echo "wasmbed-ci: the gateway did not start"; cat "$art/gateway.log"; exit 3; }
export WASMBED_GATEWAY="127.0.0.1:$port"
host() { "$host_bin" --device board "$@"; }

# Ready = the board answered INFO through the gateway (the link reconnects with backoff).
deadline=$((SECONDS + ready_timeout))
until host --json info >"$art/info.json" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
        echo "wasmbed-ci: board not answering INFO after ${ready_timeout}s"
        "$host_bin" devices || true
        exit 4
    fi
    sleep 1
done
echo "ok   - board online: $(tr -d '\n' <"$art/info.json" | grep -o '"board": *"[^"]*"' || true)"

fails=0
# run <description> <expected exit code> <wasmbed-host args...>
run() {
    local what="$1" want="$2" rc=0
    shift 2
    host "$@" >"$art/last.out" 2>&1 || rc=$?
    cat "$art/last.out" >>"$art/host.log"
    if [ "$rc" -eq "$want" ]; then
        echo "ok   - $what (exit $rc)"
    else
        echo "FAIL - $what: exit $rc, want $want"; sed 's/^/       /' "$art/last.out"
        fails=$((fails + 1))
    fi
}
# expect_out <regex>: the last command printed a line matching it
expect_out() {
    if grep -Eq "$1" "$art/last.out"; then echo "ok   - output /$1/"; else
        echo "FAIL - output lacks /$1/"; sed 's/^/       /' "$art/last.out"; fails=$((fails + 1)); fi
}

# Clear the board: modules (and jobs) left by an earlier run must not hold the slots the checks
# need, nor answer for them.
host --json status >"$art/status-before.json" 2>>"$art/host.log" || {
    echo "FAIL - status before clearing the board"; cat "$art/status-before.json"; exit 1; }
# (grep finds nothing on an empty board: not an error under pipefail)
left="$({ grep -o '"module_id": *"[^"]*"' "$art/status-before.json" || true; } | sed 's/.*"\([^"]*\)"$/\1/' | sort -u)"
for id in $left; do
    # A running job is stopped first (single-threaded ports refuse to unload it); an idle
    # module's stop fails harmlessly.
    host stop --module-id "$id" --wait --result-timeout 10 >>"$art/host.log" 2>&1 || true
    run "clear: unload $id" 0 unload --module-id "$id"
done
run "clear: the board holds no module" 0 status
expect_out 'no modules loaded'

modes="${MODES:-wasm aot}"
if grep -q '"aot_arch": *"none"' "$art/info.json"; then modes="wasm"; fi
for mode in $modes; do
    run "$mode: build-and-deploy math_ops" 0 build-and-deploy --module-id m_$mode \
        --source "$modules/math_ops.c" --mode "$mode" --replace
    run "$mode: add(200,26)" 0 start --module-id m_$mode --func add --args 200,26 --wait-result
    expect_out 'ret_i32=226'
    run "$mode: unload math_ops" 0 unload --module-id m_$mode

    run "$mode: build-and-deploy fft_bench" 0 build-and-deploy --module-id fft_$mode \
        --source "$modules/fft_bench.c" --mode "$mode" --replace
    run "$mode: fft_bench(2)" 0 start --module-id fft_$mode --func fft_bench --args 2 \
        --wait-result --result-timeout 60
    expect_out 'ret_i32=1536'
    run "$mode: unload fft_bench" 0 unload --module-id fft_$mode

    run "$mode: build-and-deploy busy_loop" 0 build-and-deploy --module-id busy_$mode \
        --source "$modules/busy_loop.c" --mode "$mode" --replace
    run "$mode: start busy_loop" 0 start --module-id busy_$mode --func busy_loop
    sleep 0.5
    run "$mode: status while it runs" 0 status
    expect_out "busy_$mode:RUNNING"
    run "$mode: stop busy_loop" 0 stop --module-id busy_$mode --wait --result-timeout 10
    expect_out 'status=STOPPED'
    run "$mode: unload busy_loop" 0 unload --module-id busy_$mode

    run "$mode: build-and-deploy trap" 0 build-and-deploy --module-id trap_$mode \
        --source "$modules/trap.c" --mode "$mode" --replace
    run "$mode: trap reported (exit 7)" 7 start --module-id trap_$mode --func trap --wait-result
    expect_out 'status=EXCEPTION'
    run "$mode: unload trap" 0 unload --module-id trap_$mode
done

host logs >"$art/device.log" 2>&1 || true
if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed; logs in $art/"
    exit 1
fi
echo "wasmbed-ci: all checks passed; logs in $art/"
