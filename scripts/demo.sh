#!/usr/bin/env bash
# The main job, from a fresh machine: set up, start a gateway with the built-in simulated board,
# build-and-deploy modules/math_ops.c to it, run add(200, 26) and print the result (226).
# Environment: WASMBED_DEMO_MODE=wasm|aot (default wasm; aot also builds our wamrc).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${WASMBED_DEMO_MODE:-wasm}"

./scripts/setup.sh
echo "demo: building (first time: a few minutes)" >&2
cargo build --workspace --locked -q
if [ "$mode" = aot ]; then tools/wamrc/build.sh >/dev/null; fi
bin="${CARGO_TARGET_DIR:-target}/debug"

work="$(mktemp -d)"
gw_pid=""
cleanup() {
  [ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Port 0: the gateway picks a free port and prints "listening on ADDR".
"$bin/wasmbed-gateway" --sim --listen 127.0.0.1:0 >"$work/gw.out" 2>"$work/gw.err" &
gw_pid=$!
for _ in $(seq 1 100); do grep -q '^listening on' "$work/gw.out" 2>/dev/null && break; sleep 0.1; done
addr="$(sed -n 's/^listening on //p' "$work/gw.out" | head -n1)"
[ -n "$addr" ] || { echo "demo: the gateway did not start:" >&2; cat "$work/gw.err" >&2; exit 1; }
echo "demo: gateway on $addr with the simulated board as device 'sim'" >&2

run() { printf '\n$ wasmbed-host --gateway %s --device sim %s\n' "$addr" "$*"; "$bin/wasmbed-host" --gateway "$addr" --device sim "$@"; }
run build-and-deploy --module-id math_ops --source modules/math_ops.c --mode "$mode"
run start --module-id math_ops --func add --args a=200,b=26 --wait-result
