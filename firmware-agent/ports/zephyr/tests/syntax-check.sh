#!/usr/bin/env bash
# What can be checked of the Zephyr port without Zephyr (it is not built or run here):
#  1. src/*.c compiles with arm-none-eabi-gcc (-O2 -c into /dev/null, nothing linked: unlike
#     -fsyntax-only this also runs the unused-function and flow warnings), -Werror, against the
#     real core headers and WAMR's wasm_export.h, with the Zephyr API taken from syntax-shim/
#     (declarations only, NOT Zephyr), in two configurations (LED/LOG/stack info on and off);
#  2. the core sources compile for the same target with the same flags;
#  3. every port op the POSIX port provides is set in src/port.c's ops table;
#  4. CMakeLists.txt lists every core/*.c; every CONFIG_WASMBED_* used is defined in Kconfig and
#     set only to defined symbols in prj.conf/boards; no `#define CONFIG_` in src/.
# Usage: firmware-agent/ports/zephyr/tests/syntax-check.sh   (env WAMR_ROOT optional)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
port="$(cd "$here/.." && pwd)"
core="$(cd "$port/../../core" && pwd)"
posix="$(cd "$port/../posix" && pwd)"
repo="$(cd "$port/../../.." && pwd)"
cc="${CC_ARM:-arm-none-eabi-gcc}"
fail=0

command -v "$cc" >/dev/null || { echo "syntax-check: $cc not found (apt-get install gcc-arm-none-eabi)" >&2; exit 2; }
# shellcheck source=tools/wamrc/find-wamr.sh
source "$repo/tools/wamrc/find-wamr.sh"
wamr="$(wasmbed_find_wamr "$repo")"

target=(-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16)
warn=(-std=gnu11 -Wall -Wextra -Wshadow -Wundef -Wstrict-prototypes -Wformat=2 -Werror)
base=(-DCONFIG_WASMBED_POOL_SIZE=102400 -DCONFIG_WASMBED_SLOTS=2
      -DCONFIG_WASMBED_STOP_GRACE_MS=1200 -DCONFIG_WASMBED_CMD_STACK_SIZE=4096
      -DCONFIG_WASMBED_WORKER_STACK_SIZE=4096 -DCONFIG_WASMBED_WASM_STACK_SIZE=4096
      -DCONFIG_WASMBED_CMD_PRIORITY=5 -DCONFIG_WASMBED_WORKER_PRIORITY=6
      -DCONFIG_WASMBED_RX_RING_SIZE=1024 '-DCONFIG_BOARD="nucleo_f446re"')
variants=(
  "prj.conf: LED, no LOG, stack info|-DCONFIG_FP_HARDABI=1 -DCONFIG_INIT_STACKS=1 -DCONFIG_THREAD_STACK_INFO=1"
  "no led0 node, LOG on, no stack info, no FP_HARDABI|-DSHIM_NO_NODES -DCONFIG_LOG=1"
)

echo "== 1. src/*.c against syntax-shim/ (not Zephyr) + core headers + $wamr/core/iwasm/include"
for v in "${variants[@]}"; do
  name="${v%%|*}"; read -r -a defs <<<"${v#*|}"
  for f in "$port"/src/*.c; do
    if "$cc" -O2 -c -o /dev/null "${target[@]}" "${warn[@]}" "${base[@]}" "${defs[@]}" \
        -I"$here/syntax-shim" -I"$port/src" -I"$core" -I"$wamr/core/iwasm/include" "$f"; then
      echo "ok    $(basename "$f")  [$name]"
    else
      echo "FAIL  $(basename "$f")  [$name]"; fail=1
    fi
  done
done

echo "== 2. core/*.c for the same target"
for f in "$core"/*.c; do
  if "$cc" -O2 -c -o /dev/null "${target[@]}" -std=gnu11 -Wall -Wextra -Werror \
      -I"$core" -I"$wamr/core/iwasm/include" "$f"; then
    echo "ok    core/$(basename "$f")"
  else
    echo "FAIL  core/$(basename "$f")"; fail=1
  fi
done

echo "== 3. port ops: POSIX vs Zephyr"
ops_of() { # members set in the `static const struct agent_port_ops ... = { ... };` of $1
  sed -n '/static const struct agent_port_ops/,/^};/p' "$1" | grep -o '^\s*\.[a-z_]*' | tr -d ' \t.' | sort
}
posix_ops="$(ops_of "$posix/posix_main.c")"
zephyr_ops="$(ops_of "$port/src/port.c")"
[ -n "$posix_ops" ] || { echo "FAIL  no ops table found in posix_main.c"; fail=1; }
for op in $posix_ops; do
  if grep -qx "$op" <<<"$zephyr_ops"; then echo "ok    .$op"; else echo "FAIL  .$op missing"; fail=1; fi
done

echo "== 4. build files"
for f in "$core"/*.c; do
  grep -q "\${AGENT_CORE}/$(basename "$f")" "$port/CMakeLists.txt" \
    || { echo "FAIL  CMakeLists.txt does not build core/$(basename "$f")"; fail=1; }
done
for sym in $(grep -oh 'CONFIG_WASMBED_[A-Z_]*' "$port"/src/*.c "$port"/CMakeLists.txt "$port"/prj.conf "$port"/boards/*.conf | sort -u); do
  grep -q "^config ${sym#CONFIG_}\$" "$port/Kconfig" || { echo "FAIL  $sym not in Kconfig"; fail=1; }
done
if grep -n '#[[:space:]]*define[[:space:]]\+CONFIG_' "$port"/src/*.c "$port"/src/*.h; then
  echo "FAIL  #define CONFIG_* in src/"; fail=1
fi
[ "$fail" = 0 ] && echo "ok    core sources, Kconfig symbols, no #define CONFIG_"

if [ "$fail" = 0 ]; then echo "syntax-check: PASS"; else echo "syntax-check: FAIL"; fi
exit "$fail"
