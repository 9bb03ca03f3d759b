#!/usr/bin/env bash
# What can be checked of the Zephyr port without Zephyr (it is not built or run here):
#  1. for every board in boards/*.conf: src/*.c compiles with arm-none-eabi-gcc (-O2 -c into
#     /dev/null, nothing linked: unlike -fsyntax-only this also runs the unused-function and flow
#     warnings), -Werror, against the real core headers and WAMR's wasm_export.h, with the Zephyr
#     API from syntax-shim/ (declarations and build-time checks, NOT Zephyr) and the board's
#     devicetree from syntax-shim/boards/<board>/. The CONFIG_* values are merged as Kconfig
#     would: Zephyr defaults (syntax-shim/*.conf, boards/<board>/defconfig), this port's Kconfig
#     defaults, prj.conf, boards/<board>.conf; the port's values must be inside their Kconfig
#     ranges. One more variant: no led0 alias, LOG on, no stack info, soft-float AOT ABI;
#  2. the core sources compile for the same target with the same flags;
#  3. every port op the POSIX port sets is set in src/port.c's ops table;
#  4. CMakeLists.txt builds every core/*.c and src/*.c; every CONFIG_WASMBED_* used is defined in
#     Kconfig and set only to defined symbols; no `#define CONFIG_` in src/;
#  5. deliberate breaks, each of which must FAIL (and for the expected reason): a missing chosen
#     node, an oversized RX ring (Kconfig range and the ring buffer's BUILD_ASSERT), missing
#     config options (UART interrupts, cache management, the custom MPU regions), a RAM budget
#     that leaves no pool, a semaphore over its limit.
# Usage: firmware-agent/ports/zephyr/tests/syntax-check.sh   (env WAMR_ROOT optional)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
shim="$here/syntax-shim"
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
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

target=(-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16)
warn=(-std=gnu11 -Wall -Wextra -Wshadow -Wundef -Wstrict-prototypes -Wformat=2 -Werror)

# The port's Kconfig defaults as CONFIG_X=V lines (the first `default` of each symbol).
kconfig_defaults() {
  awk '/^config /{sym=$2; done=0} /^\tdefault /{ if (sym != "" && !done) { print "CONFIG_" sym "=" $2; done=1 } }' "$port/Kconfig"
}
# Merge conf files as Kconfig does (a later assignment wins; `=n` and "is not set" unset it).
merge_config() {
  cat "$@" | sed -n 's/^\(CONFIG_[A-Za-z0-9_]*\)=\(.*\)$/\1=\2/p; s/^# \(CONFIG_[A-Za-z0-9_]*\) is not set$/\1=n/p' |
    awk -F= '{ key=$1; val=substr($0, length(key) + 2); if (!(key in v)) order[n++]=key; v[key]=val }
             END { for (i = 0; i < n; i++) if (v[order[i]] != "n") print order[i] "=" v[order[i]] }'
}
# Values of the port's symbols outside their Kconfig `range` (Kconfig rejects them: the build fails).
check_ranges() { # config-file
  awk '/^config /{sym=$2} /^\trange /{ print "CONFIG_" sym, $2, $3 }' "$port/Kconfig" | while read -r sym lo hi; do
    val="$(sed -n "s/^$sym=//p" "$1")"
    if [ -n "$val" ] && { [ "$val" -lt "$lo" ] || [ "$val" -gt "$hi" ]; }; then
      echo "$sym=$val is outside its Kconfig range $lo..$hi"
    fi
  done
}
# CONFIG_X=y -> -DCONFIG_X=1, CONFIG_X=V -> -DCONFIG_X=V (strings keep their quotes)
config_defs() { sed 's/^\(CONFIG_[A-Za-z0-9_]*\)=y$/-D\1=1/; t; s/^/-D/' "$1"; }
# The merged configuration of a board, with extra conf files (variants, breaks) last.
board_config() { # board out-file [extra.conf...]
  local board="$1" out="$2"; shift 2
  kconfig_defaults >"$work/kdefaults.conf"
  merge_config "$shim/zephyr-defaults.conf" "$shim/boards/$board/defconfig" "$work/kdefaults.conf" \
    "$port/prj.conf" "$port/boards/$board.conf" "$@" >"$out"
}
# Compile one source for a board configuration; output in $work/cc.log.
compile() { # config-file dt-dir source
  local defs=()
  mapfile -t defs < <(config_defs "$1")
  "$cc" -O2 -c -o /dev/null "${target[@]}" "${warn[@]}" "${defs[@]}" \
    -I"$shim" -I"$2" -I"$port/src" -I"$core" -I"$wamr/core/iwasm/include" "$3" >"$work/cc.log" 2>&1
}
# The sources CMakeLists.txt builds for a configuration (port_mpu.c only with CONFIG_ARM_MPU).
port_sources() { # config-file
  for f in "$port"/src/*.c; do
    if [ "$(basename "$f")" = port_mpu.c ] && ! grep -q '^CONFIG_ARM_MPU=y$' "$1"; then continue; fi
    echo "$f"
  done
}
check_board() { # name board dt-dir [extra.conf...]
  local name="$1" board="$2" dt="$3"; shift 3
  local cfg="$work/$board.config" bad
  board_config "$board" "$cfg" "$@"
  bad="$(check_ranges "$cfg")"
  if [ -n "$bad" ]; then echo "FAIL  [$name] $bad"; fail=1; fi
  for f in $(port_sources "$cfg"); do
    if compile "$cfg" "$dt" "$f"; then
      echo "ok    $(basename "$f")  [$name]"
    else
      cat "$work/cc.log"; echo "FAIL  $(basename "$f")  [$name]"; fail=1
    fi
  done
}

echo "== 1. src/*.c against syntax-shim/ (not Zephyr) + core headers + $wamr/core/iwasm/include"
boards=()
for conf in "$port"/boards/*.conf; do boards+=("$(basename "$conf" .conf)"); done
for board in "${boards[@]}"; do
  [ -d "$shim/boards/$board" ] || { echo "FAIL  no syntax-shim/boards/$board (devicetree + defconfig)"; fail=1; continue; }
  check_board "$board" "$board" "$shim/boards/$board"
done
# variant: no led0 alias, LOG on (deferred, with its thread), no stack info, no FP_HARDABI
mkdir -p "$work/noled"
grep -v 'ALIAS_led0' "$shim/boards/nucleo_f446re/devicetree_generated.h" >"$work/noled/devicetree_generated.h"
printf 'CONFIG_LOG=y\nCONFIG_INIT_STACKS=n\nCONFIG_FP_HARDABI=n\n' | cat - "$shim/log-defaults.conf" >"$work/variant.conf"
check_board "nucleo_f446re: no led0, LOG on, no stack info, soft ABI" nucleo_f446re "$work/noled" "$work/variant.conf"

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
for f in "$port"/src/*.c; do
  grep -q "src/$(basename "$f")" "$port/CMakeLists.txt" \
    || { echo "FAIL  CMakeLists.txt does not build src/$(basename "$f")"; fail=1; }
done
for sym in $(grep -oh 'CONFIG_WASMBED_[A-Z_]*' "$port"/src/*.c "$port"/CMakeLists.txt "$port"/prj.conf "$port"/boards/*.conf | sort -u); do
  grep -q "^config ${sym#CONFIG_}\$" "$port/Kconfig" || { echo "FAIL  $sym not in Kconfig"; fail=1; }
done
if grep -n '#[[:space:]]*define[[:space:]]\+CONFIG_' "$port"/src/*.c "$port"/src/*.h; then
  echo "FAIL  #define CONFIG_* in src/"; fail=1
fi
[ "$fail" = 0 ] && echo "ok    core and port sources, Kconfig symbols, no #define CONFIG_"

echo "== 5. deliberate breaks (each must fail, for the reason given)"
# expect_break NAME EXPECTED-TEXT BOARD DT-DIR SOURCE [extra.conf...]: the compile must fail and
# its errors must contain EXPECTED-TEXT.
expect_break() {
  local name="$1" want="$2" board="$3" dt="$4" src="$5"; shift 5
  local cfg="$work/break.config"
  board_config "$board" "$cfg" "$@"
  if compile "$cfg" "$dt" "$port/src/$src"; then
    echo "FAIL  break not caught: $name ($src compiled)"; fail=1
  elif grep -q -- "$want" "$work/cc.log"; then
    echo "ok    caught: $name"
  else
    cat "$work/cc.log"; echo "FAIL  $name: $src failed without mentioning '$want'"; fail=1
  fi
}
mkdir -p "$work/nochosen"
grep -v 'DT_N_CHOSEN_zephyr_shell_uart' "$shim/boards/nucleo_f446re/devicetree_generated.h" \
  >"$work/nochosen/devicetree_generated.h"
expect_break "no chosen zephyr,shell-uart" "DT_N_CHOSEN_zephyr_shell_uart" \
  nucleo_f446re "$work/nochosen" port_uart.c
mkdir -p "$work/uartoff"
sed 's/^#define DT_N_S_soc_S_serial_40004400_STATUS_okay 1$//; /__device_dts_ord_41;/d' \
  "$shim/boards/nucleo_f446re/devicetree_generated.h" >"$work/uartoff/devicetree_generated.h"
expect_break "link UART node disabled" "__device_dts_ord_41" nucleo_f446re "$work/uartoff" port_uart.c

echo 'CONFIG_WASMBED_RX_RING_SIZE=32768' >"$work/ring.conf"
board_config nucleo_f446re "$work/ring.config" "$work/ring.conf"
if check_ranges "$work/ring.config" | grep -q 'CONFIG_WASMBED_RX_RING_SIZE=32768'; then
  echo "ok    caught: RX ring of 32768 bytes (Kconfig range)"
else
  echo "FAIL  break not caught: RX ring of 32768 bytes passes the Kconfig range"; fail=1
fi
expect_break "RX ring of 32768 bytes (ring buffer BUILD_ASSERT)" "CONFIG_RING_BUFFER_LARGE" \
  nucleo_f446re "$shim/boards/nucleo_f446re" port_uart.c "$work/ring.conf"

# prj.conf / board conf without an option the port needs
grep -v '^CONFIG_UART_INTERRUPT_DRIVEN=' "$port/prj.conf" >"$work/prj-noirq.conf"
echo 'CONFIG_UART_INTERRUPT_DRIVEN=n' >>"$work/prj-noirq.conf"
expect_break "prj.conf without CONFIG_UART_INTERRUPT_DRIVEN" "CONFIG_UART_INTERRUPT_DRIVEN" \
  nucleo_f446re "$shim/boards/nucleo_f446re" port_uart.c "$work/prj-noirq.conf"
echo 'CONFIG_CACHE_MANAGEMENT=n' >"$work/nocache.conf"
expect_break "nucleo_f746zg.conf without CONFIG_CACHE_MANAGEMENT" "CONFIG_CACHE_MANAGEMENT" \
  nucleo_f746zg "$shim/boards/nucleo_f746zg" port.c "$work/nocache.conf"
echo 'CONFIG_CPU_HAS_CUSTOM_FIXED_SOC_MPU_REGIONS=n' >"$work/nompu.conf"
expect_break "prj.conf without CONFIG_CPU_HAS_CUSTOM_FIXED_SOC_MPU_REGIONS" \
  "CONFIG_CPU_HAS_CUSTOM_FIXED_SOC_MPU_REGIONS" nucleo_f446re "$shim/boards/nucleo_f446re" \
  port_mpu.c "$work/nompu.conf"
echo 'CONFIG_FPU_SHARING=n' >"$work/nofpshare.conf"
expect_break "prj.conf without CONFIG_FPU_SHARING" "CONFIG_FPU_SHARING" \
  nucleo_f446re "$shim/boards/nucleo_f446re" port.c "$work/nofpshare.conf"

# RAM budget: 2 x 48 KiB worker stacks leave no pool on a 128 KiB part
echo 'CONFIG_WASMBED_WORKER_STACK_SIZE=49152' >"$work/bigstack.conf"
expect_break "worker stacks that leave no WAMR pool" "RAM budget" \
  nucleo_f446re "$shim/boards/nucleo_f446re" port.c "$work/bigstack.conf"

# the shim's semaphore check itself (the port's semaphores are within their limits)
printf '#include <zephyr/kernel.h>\nK_SEM_DEFINE(shim_sem, 2, 1);\n' >"$work/sem.c"
if "$cc" -c -o /dev/null "${target[@]}" "${warn[@]}" -I"$shim" "$work/sem.c" >"$work/cc.log" 2>&1; then
  echo "FAIL  break not caught: K_SEM_DEFINE(initial 2, limit 1) compiled"; fail=1
else
  echo "ok    caught: semaphore initial count above its limit"
fi

if [ "$fail" = 0 ]; then echo "syntax-check: PASS"; else echo "syntax-check: FAIL"; fi
exit "$fail"
