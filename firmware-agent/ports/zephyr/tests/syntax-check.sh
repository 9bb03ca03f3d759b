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
#     Kconfig and set only to defined symbols; every other CONFIG_ name in src/, prj.conf,
#     boards/*.conf and CMakeLists.txt is in syntax-shim/zephyr-kconfig-symbols.txt (Zephyr's
#     symbols the port relies on, each with its source file), with a deliberate break (a typo,
#     CONFIG_CACHE_MANAGMENT, in port.c); no `#define CONFIG_` in src/; every k_thread_create()
#     in src/ passes K_FP_REGS (a break without it must fail);
# 4b. the WAMR pool figures in README.md (their one place) equal sizeof(port_pool) as compiled for
#     each board, and its `struct agent` row sizeof(struct agent); no approximate figures in
#     boards/*.conf or BOARDS.md; a wrong figure must fail;
#  5. deliberate breaks, each of which must FAIL (and for the expected reason): a missing chosen
#     node, the link UART disabled, an oversized RX ring (Kconfig range and the ring buffer's
#     BUILD_ASSERT), missing config options (UART interrupts, GPIO, cache management, the custom
#     MPU regions, FPU sharing), a RAM budget that leaves no pool, a fixed pool larger than the
#     budget, a semaphore over its limit;
#  6. each overlay through the C preprocessor (as Zephyr runs it: its #include of the shared
#     board facts, ../../boards/<board>.h, resolved), then tests/overlay-check.py reads it on top
#     of the board's clock nodes (syntax-shim/boards/<board>/board.dts): the chosen
#     zephyr,shell-uart is set by the overlay, is the UART of the board facts and of the shim's
#     devicetree, and is "okay"; the clock tree from its real source (HSE/HSI and its frequency),
#     PLL arithmetic, VCO ranges and SYSCLK/APB1/APB2 within the part's limits (per SoC; no F4
#     above 168 MHz in Zephyr); nothing but devicetree at its top level (a C declaration in the
#     #included board facts would reach dtc). Deliberate breaks: 180 MHz F446, HSI with HSE
#     dividers, APB1 too fast on F4 and F7, a C declaration, no chosen node, another UART, the UART
#     disabled; and the F746 at 216 MHz with APB1 54 MHz must pass;
#  7. Zephyr's board files as the shim records them (link USART, LED pin, memory, SYSCLK, HSE)
#     agree with the shared board facts (../../boards/<board>.h); each overlay and each bare-metal
#     board header of the same board #includes them; the AOT target equals the bare-metal
#     images'; with a deliberate break (a wrong LED pin must fail);
#  8. CMakeLists.txt configures against a stub Zephyr CMake package (tests/cmake-stub/, NOT
#     Zephyr) and the stub checks the build order: WAMR is a library with Zephyr's flags that waits
#     for zephyr_generated_headers and is linked into app; app's sources (as CMake holds them, not
#     the text of CMakeLists.txt) include every core/*.c and src/*.c, port_mpu.c iff CONFIG_ARM_MPU.
#     Deliberate breaks: without its add_dependencies line the configure must fail; with
#     core/agent_sig.c only in a comment the configure must fail; declared with
#     zephyr_library_named() (a warning in application mode) the configure must warn; any CMake
#     warning fails the check.
# Usage: firmware-agent/ports/zephyr/tests/syntax-check.sh   (env WAMR_ROOT optional; needs
# arm-none-eabi-gcc, cmake and python3; SYNTAX_CHECK_FAIL_FAST=1 stops at the first failure).
# tests/breaks.sh runs this script on broken copies of the port: each must fail.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
shim="$here/syntax-shim"
port="$(cd "$here/.." && pwd)"
facts="$(cd "$port/../../boards" && pwd)" # board facts shared with the bare-metal images
core="$(cd "$port/../../core" && pwd)"
posix="$(cd "$port/../posix" && pwd)"
repo="$(cd "$port/../../.." && pwd)"
cc="${CC_ARM:-arm-none-eabi-gcc}"
fail=0
# failed: record a failure; with SYNTAX_CHECK_FAIL_FAST=1 (tests/breaks.sh) stop at the first one
failed() {
  fail=1
  if [ "${SYNTAX_CHECK_FAIL_FAST:-0}" = 1 ]; then
    echo "syntax-check: FAIL (SYNTAX_CHECK_FAIL_FAST: stopped at the first failure)"; exit 1
  fi
}

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
  if [ -n "$bad" ]; then echo "FAIL  [$name] $bad"; failed; fi
  for f in $(port_sources "$cfg"); do
    if compile "$cfg" "$dt" "$f"; then
      echo "ok    $(basename "$f")  [$name]"
    else
      cat "$work/cc.log"; echo "FAIL  $(basename "$f")  [$name]"; failed
    fi
  done
}

echo "== 1. src/*.c against syntax-shim/ (not Zephyr) + core headers + $wamr/core/iwasm/include"
boards=()
for conf in "$port"/boards/*.conf; do boards+=("$(basename "$conf" .conf)"); done
for board in "${boards[@]}"; do
  [ -d "$shim/boards/$board" ] || { echo "FAIL  no syntax-shim/boards/$board (devicetree + defconfig)"; failed; continue; }
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
      -I"$core" -I"$wamr/core/iwasm/include" -I"$core/../third_party/monocypher" \
      -I"$core/../third_party/monocypher/optional" "$f"; then
    echo "ok    core/$(basename "$f")"
  else
    echo "FAIL  core/$(basename "$f")"; failed
  fi
done

echo "== 3. port ops: POSIX vs Zephyr"
ops_of() { # members set in the `static const struct agent_port_ops ... = { ... };` of $1
  sed -n '/static const struct agent_port_ops/,/^};/p' "$1" | grep -o '^\s*\.[a-z_]*' | tr -d ' \t.' | sort
}
posix_ops="$(ops_of "$posix/posix_main.c")"
zephyr_ops="$(ops_of "$port/src/port.c")"
[ -n "$posix_ops" ] || { echo "FAIL  no ops table found in posix_main.c"; failed; }
for op in $posix_ops; do
  if grep -qx "$op" <<<"$zephyr_ops"; then echo "ok    .$op"; else echo "FAIL  .$op missing"; failed; fi
done

echo "== 4. build files"
for f in "$core"/*.c; do
  grep -q "\${AGENT_CORE}/$(basename "$f")" "$port/CMakeLists.txt" \
    || { echo "FAIL  CMakeLists.txt does not build core/$(basename "$f")"; failed; }
done
for f in "$port"/src/*.c; do
  grep -q "src/$(basename "$f")" "$port/CMakeLists.txt" \
    || { echo "FAIL  CMakeLists.txt does not build src/$(basename "$f")"; failed; }
done
for sym in $(grep -oh 'CONFIG_WASMBED_[A-Z_]*' "$port"/src/*.c "$port"/CMakeLists.txt "$port"/prj.conf "$port"/boards/*.conf | sort -u); do
  grep -q "^config ${sym#CONFIG_}\$" "$port/Kconfig" || { echo "FAIL  $sym not in Kconfig"; failed; }
done
# check_config_symbols FILE...: every CONFIG_ name in the files that is neither a `config` of the
# port's Kconfig nor in syntax-shim/zephyr-kconfig-symbols.txt (Zephyr's, with their source file)
check_config_symbols() {
  local known
  known="$( { sed -n 's/^config \([A-Z0-9_]*\)$/\1/p' "$port/Kconfig"
              sed -n 's/^\([A-Z0-9_][A-Z0-9_]*\)[[:space:]].*/\1/p' "$shim/zephyr-kconfig-symbols.txt"; } | sort -u)"
  grep -oh 'CONFIG_[A-Za-z0-9_]*' "$@" | sed 's/^CONFIG_//' | sort -u | while read -r sym; do
    grep -qx "$sym" <<<"$known" || echo "CONFIG_$sym"
  done
}
bad="$(check_config_symbols "$port"/src/*.c "$port"/src/*.h "$port"/prj.conf "$port"/boards/*.conf "$port"/CMakeLists.txt)"
if [ -n "$bad" ]; then
  echo "FAIL  CONFIG_ names neither in Kconfig nor in syntax-shim/zephyr-kconfig-symbols.txt: $bad"; failed
else
  echo "ok    every CONFIG_ name in src/, prj.conf, boards/*.conf, CMakeLists.txt is a known symbol"
fi
sed 's/CONFIG_CACHE_MANAGEMENT/CONFIG_CACHE_MANAGMENT/g' "$port/src/port.c" >"$work/port-typo.c"
if check_config_symbols "$work/port-typo.c" | grep -x 'CONFIG_CACHE_MANAGMENT' >/dev/null; then
  echo "ok    caught: CONFIG_CACHE_MANAGMENT (a typo) in src/port.c"
else
  echo "FAIL  break not caught: a misspelt CONFIG_ name in src/port.c"; failed
fi
if grep -n '#[[:space:]]*define[[:space:]]\+CONFIG_' "$port"/src/*.c "$port"/src/*.h; then
  echo "FAIL  #define CONFIG_* in src/"; failed
fi
# Every thread the port creates runs module code or WAMR's float helpers: k_thread_create() with
# K_FP_REGS (the FP registers saved on switches, the larger FP stack guard). Prints the calls
# without it, or a line if there is no call at all (the check would be vacuous).
fp_regs_missing() { # file...
  local f calls
  for f in "$@"; do
    calls="$(tr '\n' ' ' <"$f" | grep -o 'k_thread_create([^;]*;' || true)"
    [ -n "$calls" ] || continue
    grep -v 'K_FP_REGS' <<<"$calls" | sed "s|^|$(basename "$f"): |" || true
  done
  grep -q 'k_thread_create(' "$@" || echo "no k_thread_create() call found in $*"
}
bad="$(fp_regs_missing "$port"/src/*.c)"
if [ -n "$bad" ]; then echo "FAIL  threads created without K_FP_REGS: $bad"; failed; fi
sed 's/K_FP_REGS/0/' "$port/src/port.c" >"$work/port-nofp.c"
if fp_regs_missing "$work/port-nofp.c" | grep -q 'port-nofp.c: k_thread_create('; then
  echo "ok    caught: k_thread_create() without K_FP_REGS in src/port.c"
else
  echo "FAIL  break not caught: a thread created without K_FP_REGS"; failed
fi
[ "$fail" = 0 ] && echo "ok    core and port sources, Kconfig symbols, no #define CONFIG_, K_FP_REGS threads"

echo "== 4b. the pool figures: README.md \"RAM budget\" is their one place, and it matches the compiler"
# pool_bytes BOARD: sizeof(port_pool) as the compiler lays it out for the board's configuration
pool_bytes() {
  local defs=()
  board_config "$1" "$work/pool.config"
  mapfile -t defs < <(config_defs "$work/pool.config")
  "$cc" -O2 -S -o "$work/pool.s" "${target[@]}" "${defs[@]}" -I"$shim" -I"$shim/boards/$1" -I"$port/src" \
    -I"$core" -I"$wamr/core/iwasm/include" "$port/src/port.c" 2>/dev/null || return 0
  sed -n 's/^[[:space:]]*\.size[[:space:]]*port_pool, \([0-9]*\)$/\1/p' "$work/pool.s"
}
# check_pool_figures README: prints every figure README.md states that the compiler does not give
check_pool_figures() {
  local readme="$1" board bytes row
  row="$(grep '^| \*\*WAMR pool\*\* |' "$readme")"
  for board in "${boards[@]}"; do
    bytes="$(pool_bytes "$board")"
    [ -n "$bytes" ] || { echo "$board: no pool size from the compiler"; continue; }
    grep -q "^| \`$board\` |.* | $((bytes / 1024)) KiB |" "$readme" \
      || echo "$board: the build table does not say $((bytes / 1024)) KiB"
    grep -q "\*\*$bytes\*\* ($((bytes / 1024)) KiB)" <<<"$row" \
      || echo "$board: the RAM budget table's pool row does not say $bytes ($((bytes / 1024)) KiB)"
  done
}
bad="$(check_pool_figures "$port/README.md")"
if [ -n "$bad" ]; then echo "FAIL  README.md pool figures: $bad"; failed; else echo "ok    README.md pool figures agree with sizeof(port_pool)"; fi
# the budget table's `struct agent` row: sizeof as compiled for the target (it grows with the core)
printf '#include "agent.h"\nunsigned long wasmbed_agent_size = sizeof(struct agent);\n' >"$work/agent-size.c"
agent_size="$("$cc" -O2 -S -o - "${target[@]}" -I"$core" -I"$wamr/core/iwasm/include" "$work/agent-size.c" |
  sed -n '/^wasmbed_agent_size:/{n;s/^[[:space:]]*\.word[[:space:]]*\([0-9]*\)$/\1/p}')"
if grep -q "^| \`struct agent\` | −$agent_size | −$agent_size |" "$port/README.md"; then
  echo "ok    README.md \"RAM budget\": struct agent is $agent_size bytes"
else
  echo "FAIL  README.md \"RAM budget\": the struct agent row is not −$agent_size (sizeof as compiled): update it (and the pool figures, which this check then reports)"; failed
fi
if grep -n -E '(about|~) ?[0-9]+ KiB' "$port"/boards/*.conf "$port/BOARDS.md"; then
  echo "FAIL  an approximate figure in boards/*.conf or BOARDS.md (the pool's is in README.md \"RAM budget\" only)"; failed
fi
# The F746ZG's build-table row with another figure, whatever the right one is today.
sed -E '/^\| `nucleo_f746zg` \|/ s/\| [0-9]+ KiB \|/| 1 KiB |/' "$port/README.md" >"$work/README-205.md"
if check_pool_figures "$work/README-205.md" | grep "nucleo_f746zg" >/dev/null; then
  echo "ok    caught: README.md giving a wrong F746ZG pool figure"
else
  echo "FAIL  break not caught: a wrong pool figure in README.md"; failed
fi

echo "== 5. deliberate breaks (each must fail, for the reason given)"
# expect_break NAME EXPECTED-TEXT BOARD DT-DIR SOURCE [extra.conf...]: the compile must fail and
# its errors must contain EXPECTED-TEXT.
expect_break() {
  local name="$1" want="$2" board="$3" dt="$4" src="$5"; shift 5
  local cfg="$work/break.config"
  board_config "$board" "$cfg" "$@"
  if compile "$cfg" "$dt" "$port/src/$src"; then
    echo "FAIL  break not caught: $name ($src compiled)"; failed
  elif grep -q -- "$want" "$work/cc.log"; then
    echo "ok    caught: $name"
  else
    cat "$work/cc.log"; echo "FAIL  $name: $src failed without mentioning '$want'"; failed
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
if check_ranges "$work/ring.config" | grep 'CONFIG_WASMBED_RX_RING_SIZE=32768' >/dev/null; then
  echo "ok    caught: RX ring of 32768 bytes (Kconfig range)"
else
  echo "FAIL  break not caught: RX ring of 32768 bytes passes the Kconfig range"; failed
fi
expect_break "RX ring of 32768 bytes (ring buffer BUILD_ASSERT)" "CONFIG_RING_BUFFER_LARGE" \
  nucleo_f446re "$shim/boards/nucleo_f446re" port_uart.c "$work/ring.conf"

# prj.conf / board conf without an option the port needs
grep -v '^CONFIG_UART_INTERRUPT_DRIVEN=' "$port/prj.conf" >"$work/prj-noirq.conf"
echo 'CONFIG_UART_INTERRUPT_DRIVEN=n' >>"$work/prj-noirq.conf"
expect_break "prj.conf without CONFIG_UART_INTERRUPT_DRIVEN" "CONFIG_UART_INTERRUPT_DRIVEN" \
  nucleo_f446re "$shim/boards/nucleo_f446re" port_uart.c "$work/prj-noirq.conf"
# no GPIO driver: Zephyr has no device object for the LED's controller (a link error there)
echo 'CONFIG_GPIO=n' >"$work/nogpio.conf"
expect_break "prj.conf without CONFIG_GPIO (led0's controller has no driver)" "__device_dts_ord_17" \
  nucleo_f446re "$shim/boards/nucleo_f446re" port.c "$work/nogpio.conf"
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

# a fixed pool (CONFIG_WASMBED_POOL_SIZE) larger than the RAM budget leaves
echo 'CONFIG_WASMBED_POOL_SIZE=102400' >"$work/bigpool.conf"
expect_break "a fixed 100 KiB pool on a 128 KiB part" "CONFIG_WASMBED_POOL_SIZE: a multiple of 8 no larger" \
  nucleo_f446re "$shim/boards/nucleo_f446re" port.c "$work/bigpool.conf"

# the shim's semaphore check itself (the port's semaphores are within their limits)
printf '#include <zephyr/kernel.h>\nK_SEM_DEFINE(shim_sem, 2, 1);\n' >"$work/sem.c"
if "$cc" -c -o /dev/null "${target[@]}" "${warn[@]}" -I"$shim" "$work/sem.c" >"$work/cc.log" 2>&1; then
  echo "FAIL  break not caught: K_SEM_DEFINE(initial 2, limit 1) compiled"; failed
else
  echo "ok    caught: semaphore initial count above its limit"
fi

echo "== 6. the overlays (preprocessed) read against the board facts (tests/overlay-check.py)"
# overlay_check BOARD OVERLAY: the overlay applied to the shim's board.dts (the board's clock
# nodes): link UART chosen, as BOARDS.md and the shim's devicetree say, and "okay"; the clock
# tree from its real source (HSE or HSI and its frequency) within the part's limits (the SoC
# symbol of the merged configuration). Prints the problems.
overlay_check() {
  board_config "$1" "$work/ov.config"
  python3 "$here/overlay-check.py" "$1" "$2" "$shim/boards/$1/board.dts" "$work/ov.config" \
    "$facts/$1.h" "$shim/boards/$1/devicetree_generated.h" 2>&1
}
# preprocess_overlay IN OUT: the C preprocessor over an overlay, as Zephyr runs it before dtc
# (its #include of the shared board facts, firmware-agent/boards/<board>.h, resolved)
preprocess_overlay() {
  "$cc" -E -P -x assembler-with-cpp -nostdinc -undef -o "$2" "$1"
}
# expect_overlay_break NAME EXPECTED-TEXT BOARD OVERLAY: the check must fail, mentioning EXPECTED-TEXT
expect_overlay_break() {
  local out
  if out="$(overlay_check "$3" "$4")"; then
    echo "FAIL  break not caught: $1 (the overlay passes)"; failed
  elif grep -q -- "$2" <<<"$out"; then
    echo "ok    caught: $1"
  else
    echo "$out"; echo "FAIL  $1: failed without mentioning '$2'"; failed
  fi
}
if ! command -v python3 >/dev/null; then
  echo "FAIL  python3 not found (scripts/setup.sh installs python3-minimal)"; failed
else
  for board in "${boards[@]}"; do
    if ! preprocess_overlay "$port/boards/$board.overlay" "$work/$board.overlay"; then
      echo "FAIL  $board.overlay: the C preprocessor failed"; failed
    elif bad="$(overlay_check "$board" "$work/$board.overlay")"; then
      echo "ok    $board.overlay"
    else
      echo "FAIL  $board.overlay: $bad"; failed
    fi
  done
  f446="$work/nucleo_f446re.overlay"
  # the legacy F446 setting: 180 MHz (M=8 N=360 P=2)
  sed 's/mul-n = <336>;/mul-n = <360>;/; s/<168000000>/<180000000>/' "$f446" >"$work/f446-180.overlay"
  expect_overlay_break "NUCLEO-F446RE at 180 MHz" "at most 168 MHz" nucleo_f446re "$work/f446-180.overlay"
  # the PLL fed by the 16 MHz HSI with the dividers made for the 8 MHz HSE
  sed 's/clocks = <&clk_hse>;/clocks = <\&clk_hsi>;/' "$f446" >"$work/f446-hsi.overlay"
  expect_overlay_break "HSI source with HSE dividers" "PLL gives 336000 kHz from clk_hsi" \
    nucleo_f446re "$work/f446-hsi.overlay"
  # APB1 at 84 MHz on the F446 (45 MHz at most)
  sed 's/apb1-prescaler = <4>;/apb1-prescaler = <2>;/' "$f446" >"$work/f446-apb1.overlay"
  expect_overlay_break "F446 APB1 at 84 MHz" "APB1 84000 kHz above the STM32F446's 45 MHz" \
    nucleo_f446re "$work/f446-apb1.overlay"
  # the F746 at 216 MHz with APB1 /4 = 54 MHz is within the F7's limits (an F4 limit would refuse it)
  printf '&pll {\n\tdiv-m = <4>;\n\tmul-n = <216>;\n\tdiv-p = <2>;\n\tdiv-q = <9>;\n\tclocks = <&clk_hse>;\n};\n&rcc {\n\tclock-frequency = <DT_FREQ_M(216)>;\n};\n' \
    | cat "$work/nucleo_f746zg.overlay" - >"$work/f746-216.overlay"
  if bad="$(overlay_check nucleo_f746zg "$work/f746-216.overlay")"; then
    echo "ok    NUCLEO-F746ZG at 216 MHz, APB1 54 MHz: within the STM32F746's limits"
  else
    echo "FAIL  NUCLEO-F746ZG at 216 MHz refused: $bad"; failed
  fi
  sed 's/apb1-prescaler = <4>;/apb1-prescaler = <2>;/' "$work/f746-216.overlay" >"$work/f746-apb1.overlay"
  printf '&rcc {\n\tapb1-prescaler = <2>;\n};\n' >>"$work/f746-apb1.overlay"
  expect_overlay_break "F746 APB1 at 108 MHz" "APB1 108000 kHz above the STM32F746's 54 MHz" \
    nucleo_f746zg "$work/f746-apb1.overlay"
  # a C declaration in the shared board facts reaches the overlay through its #include (dtc fails)
  printf 'static const unsigned board_hse_hz = 8000000u;\n' | cat - "$f446" >"$work/f446-cdecl.overlay"
  expect_overlay_break "a C declaration (from the board facts header) in the preprocessed overlay" \
    "not devicetree at the top level" nucleo_f446re "$work/f446-cdecl.overlay"
  # the link UART: chosen node removed, another UART, the UART disabled
  sed '/zephyr,shell-uart/d' "$f446" >"$work/f446-nochosen.overlay"
  expect_overlay_break "overlay without chosen zephyr,shell-uart" "does not choose zephyr,shell-uart" \
    nucleo_f446re "$work/f446-nochosen.overlay"
  sed 's/zephyr,shell-uart = &usart2;/zephyr,shell-uart = \&usart3;/' "$f446" >"$work/f446-usart3.overlay"
  printf '&usart3 {\n\tstatus = "okay";\n};\n' >>"$work/f446-usart3.overlay"
  expect_overlay_break "zephyr,shell-uart on USART3 while the board facts say USART2" "the board facts say USART2" \
    nucleo_f446re "$work/f446-usart3.overlay"
  sed '/^&usart2 {/,/^};/s/status = "okay";/status = "disabled";/' "$f446" >"$work/f446-off.overlay"
  expect_overlay_break "link UART status = \"disabled\"" '&usart2 status is "disabled"' \
    nucleo_f446re "$work/f446-off.overlay"
fi

echo "== 7. Zephyr's board files (as the shim records them) vs the shared board facts ($facts)"
baremetal_boards="$port/../baremetal/src/boards"
# bm_value HEADER NAME: a #define of a board header, expanded by the preprocessor (u suffixes and
# string quotes dropped, so that $(( )) and string tests can use it)
bm_value() {
  printf '#include "%s"\nWASMBED_VALUE %s\n' "$1" "$2" | "$cc" -E -P -x c -I"$baremetal_boards" - |
    sed -n 's/^WASMBED_VALUE //p' | sed 's/\([0-9a-fA-Fx]\)u\b/\1/g; s/^"\(.*\)"$/\1/'
}
# compare_facts ZEPHYR-BOARD DT-DIR FACTS-HEADER: prints every disagreement between what
# Zephyr's board gives (the shim's devicetree, defconfig and board.dts) and the shared facts
compare_facts() {
  local board="$1" dt="$2/devicetree_generated.h" h="$3" cfg="$work/facts.config"
  local uart led_node led_pin gpio port_idx v hse
  board_config "$board" "$cfg"
  cfgv() { sed -n "s/^$1=//p" "$cfg"; }
  uart="$(sed -n 's/^#define DT_N_CHOSEN_zephyr_shell_uart DT_N_S_soc_S_serial_\([0-9a-f]*\)$/\1/p' "$dt")"
  [ $((0x$uart)) -eq $(( $(bm_value "$h" BOARD_UART_BASE) )) ] \
    || echo "link USART at 0x$uart, the board facts say $(bm_value "$h" BOARD_UART_BASE)"
  led_node="$(sed -n 's/^#define DT_N_ALIAS_led0 \(.*\)$/\1/p' "$dt")"
  led_pin="$(sed -n "s/^#define ${led_node}_P_gpios_IDX_0_VAL_pin //p" "$dt")"
  gpio="$(sed -n "s/^#define ${led_node}_P_gpios_IDX_0_PH .*_S_gpio_\([0-9a-f]*\)$/\1/p" "$dt")"
  port_idx=$(( (0x$gpio - 0x40020000) / 0x400 ))
  [ "$port_idx" -eq "$(( $(bm_value "$h" BOARD_LED_PORT) ))" ] && [ "$led_pin" -eq "$(bm_value "$h" BOARD_LED_PIN)" ] \
    || echo "led0 on port $port_idx pin $led_pin, the board facts say port $(bm_value "$h" BOARD_LED_PORT) pin $(bm_value "$h" BOARD_LED_PIN)"
  [ $(( $(cfgv CONFIG_SRAM_BASE_ADDRESS) )) -eq $(( $(bm_value "$h" BOARD_RAM_ORIGIN) )) ] \
    && [ $(( $(cfgv CONFIG_SRAM_SIZE) * 1024 )) -eq $(( $(bm_value "$h" BOARD_RAM_LENGTH) )) ] \
    || echo "sram0 $(cfgv CONFIG_SRAM_SIZE) KiB at $(cfgv CONFIG_SRAM_BASE_ADDRESS), the board facts $(bm_value "$h" BOARD_RAM_LENGTH) at $(bm_value "$h" BOARD_RAM_ORIGIN)"
  [ $(( $(cfgv CONFIG_FLASH_SIZE) * 1024 )) -eq $(( $(bm_value "$h" BOARD_FLASH_LENGTH) )) ] \
    && [ $(( $(cfgv CONFIG_FLASH_BASE_ADDRESS) )) -eq $(( $(bm_value "$h" BOARD_FLASH_ORIGIN) )) ] \
    || echo "flash $(cfgv CONFIG_FLASH_SIZE) KiB at $(cfgv CONFIG_FLASH_BASE_ADDRESS), the board facts $(bm_value "$h" BOARD_FLASH_LENGTH) at $(bm_value "$h" BOARD_FLASH_ORIGIN)"
  [ "$(cfgv CONFIG_SYS_CLOCK_HW_CYCLES_PER_SEC)" -eq "$(bm_value "$h" BOARD_CPU_HZ)" ] \
    || echo "SYSCLK $(cfgv CONFIG_SYS_CLOCK_HW_CYCLES_PER_SEC) Hz, the board facts $(bm_value "$h" BOARD_CPU_HZ) Hz"
  hse="$(sed -n '/^&clk_hse {/,/^};/s/^[[:space:]]*clock-frequency = <DT_FREQ_M(\([0-9]*\))>;$/\1/p' "$shim/boards/$board/board.dts")"
  [ "$((hse * 1000000))" -eq "$(bm_value "$h" BOARD_HSE_HZ)" ] \
    || echo "HSE ${hse} MHz in Zephyr's board, the board facts $(bm_value "$h" BOARD_HSE_HZ) Hz"
  if grep -q 'hse-bypass;' "$shim/boards/$board/board.dts"; then v=1; else v=0; fi
  [ "$v" -eq "$(bm_value "$h" BOARD_HSE_BYPASS)" ] \
    || echo "HSE bypass $v in Zephyr's board, the board facts $(bm_value "$h" BOARD_HSE_BYPASS)"
}
for board in "${boards[@]}"; do
  h="$facts/$board.h"
  if [ ! -f "$h" ]; then echo "FAIL  $board: no shared board facts ($h)"; failed; continue; fi
  bad="$(compare_facts "$board" "$shim/boards/$board" "$h")"
  if [ -n "$bad" ]; then echo "FAIL  $board vs $(basename "$h"): $bad"; failed; else echo "ok    $board: Zephyr's board agrees with boards/$(basename "$h")"; fi
  grep -q "^#include \"../../../boards/$board.h\"$" "$port/boards/$board.overlay" \
    || { echo "FAIL  boards/$board.overlay does not #include the shared board facts"; failed; }
done
# The bare-metal images of the same boards read the same header (no second set of facts), and
# their AOT target is the one this port's INFO reports.
for pair in nucleo_f446re:nucleo_f446re.h stm32f4_disco:stm32f4_discovery.h nucleo_f746zg:nucleo_f746zg.h; do
  board="${pair%%:*}"; bm="$baremetal_boards/${pair#*:}"
  if [ ! -f "$bm" ]; then echo "--    $board: no bare-metal image (${pair#*:})"; continue; fi
  if grep -q "^#include \"../../../../boards/$board.h\"" "$bm"; then
    echo "ok    bare-metal ${pair#*:} includes boards/$board.h"
  else
    echo "FAIL  bare-metal ${pair#*:} does not #include \"../../../../boards/$board.h\" (two sets of facts)"; failed
  fi
  for k in ARCH CPU ABI; do
    v="$(sed -n "s/^#define PORT_AOT_$k \"\(.*\)\"$/\1/p" "$port/src/port.c" | head -n1)"
    [ "$v" = "$(bm_value "$bm" "BOARD_AOT_$k")" ] \
      || { echo "FAIL  AOT $k $v, the bare-metal ${pair#*:} says $(bm_value "$bm" "BOARD_AOT_$k")"; failed; }
  done
done
mkdir -p "$work/badled"
sed 's/_P_gpios_IDX_0_VAL_pin 5$/_P_gpios_IDX_0_VAL_pin 6/' "$shim/boards/nucleo_f446re/devicetree_generated.h" \
  >"$work/badled/devicetree_generated.h"
if compare_facts nucleo_f446re "$work/badled" "$facts/nucleo_f446re.h" | grep "led0 on port 0 pin 6" >/dev/null; then
  echo "ok    caught: led0 on PA6 while the board facts say PA5"
else
  echo "FAIL  break not caught: a wrong led0 pin agrees with the board facts"; failed
fi

echo "== 8. CMakeLists.txt against a stub Zephyr CMake package (not Zephyr; nothing compiled)"
# configure_port PORT-DIR BOARD [extra.conf...]: configure into a scratch dir; log in $work/cmake.log
configure_port() {
  local dir="$1" board="$2"; shift 2
  board_config "$board" "$work/cmake.config" "$@"
  rm -rf "$work/cmake-build"
  cmake -S "$dir" -B "$work/cmake-build" -DZephyr_DIR="$here/cmake-stub" -DWAMR_ROOT="$wamr" \
    -DWASMBED_STUB_CONFIG="$work/cmake.config" >"$work/cmake.log" 2>&1
}
if ! command -v cmake >/dev/null; then
  echo "FAIL  cmake not found (apt-get install cmake)"; failed
else
  echo 'CONFIG_ARM_MPU=n' >"$work/nompu-board.conf"
  for v in "nucleo_f746zg|" "nucleo_f446re without CONFIG_ARM_MPU|$work/nompu-board.conf"; do
    name="${v%%|*}"; extra=(); [ -z "${v#*|}" ] || extra=("${v#*|}")
    if configure_port "$port" "${name%% *}" "${extra[@]}" && grep -q "cmake stub: .* ok" "$work/cmake.log" \
        && ! grep -q "CMake Warning" "$work/cmake.log"; then
      echo "ok    configure [$name]: $(sed -n 's/^-- cmake stub: //p' "$work/cmake.log")"
    else
      tail -n 20 "$work/cmake.log"; echo "FAIL  configure [$name]"; failed
    fi
  done
  # a copy of the port (core and wamr/ linked beside it, as in the tree) without the dependency
  mkdir -p "$work/tree/firmware-agent/ports"
  cp -r "$port" "$work/tree/firmware-agent/ports/zephyr"
  ln -s "$core" "$work/tree/firmware-agent/core"
  ln -s "$port/../../wamr" "$work/tree/firmware-agent/wamr"
  ln -s "$port/../../third_party" "$work/tree/firmware-agent/third_party"
  cp "$port/CMakeLists.txt" "$work/CMakeLists.orig"
  sed -i '/^add_dependencies(.* zephyr_generated_headers)$/d' "$work/tree/firmware-agent/ports/zephyr/CMakeLists.txt"
  if configure_port "$work/tree/firmware-agent/ports/zephyr" nucleo_f446re; then
    echo "FAIL  break not caught: WAMR library without the zephyr_generated_headers dependency"; failed
  elif grep -q "does not depend on zephyr_generated_headers" "$work/cmake.log"; then
    echo "ok    caught: WAMR library without the zephyr_generated_headers dependency"
  else
    tail -n 20 "$work/cmake.log"; echo "FAIL  the broken CMakeLists.txt failed for another reason"; failed
  fi
  # a core source named only in a comment: the text is there, the source is not built
  sed 's|^  \${AGENT_CORE}/agent_sig.c$|#  ${AGENT_CORE}/agent_sig.c|' "$work/CMakeLists.orig" \
    >"$work/tree/firmware-agent/ports/zephyr/CMakeLists.txt"
  if cmp -s "$work/CMakeLists.orig" "$work/tree/firmware-agent/ports/zephyr/CMakeLists.txt"; then
    echo "FAIL  break did not apply: no '  \${AGENT_CORE}/agent_sig.c' line in CMakeLists.txt"; failed
  elif configure_port "$work/tree/firmware-agent/ports/zephyr" nucleo_f446re; then
    echo "FAIL  break not caught: core/agent_sig.c commented out of CMakeLists.txt"; failed
  elif grep -q "app does not build agent_sig.c" "$work/cmake.log"; then
    echo "ok    caught: core/agent_sig.c commented out of CMakeLists.txt (not in app's sources)"
  else
    tail -n 20 "$work/cmake.log"; echo "FAIL  the commented-out source failed for another reason"; failed
  fi
  # the forced stop's WAMR-lock counting without its link-time wrap: dead code, must fail
  sed 's|--wrap=os_mutex_lock,||' "$work/CMakeLists.orig" >"$work/tree/firmware-agent/ports/zephyr/CMakeLists.txt"
  if cmp -s "$work/CMakeLists.orig" "$work/tree/firmware-agent/ports/zephyr/CMakeLists.txt"; then
    echo "FAIL  break did not apply: no '--wrap=os_mutex_lock,' in CMakeLists.txt"; failed
  elif configure_port "$work/tree/firmware-agent/ports/zephyr" nucleo_f446re; then
    echo "FAIL  break not caught: __wrap_os_mutex_lock without -Wl,--wrap=os_mutex_lock"; failed
  elif grep -q "defines __wrap_os_mutex_lock but no" "$work/cmake.log"; then
    echo "ok    caught: __wrap_os_mutex_lock without -Wl,--wrap=os_mutex_lock"
  else
    tail -n 20 "$work/cmake.log"; echo "FAIL  the missing wrap failed for another reason"; failed
  fi
  # WAMR declared with zephyr_library_named(), which only warns in application mode
  sed 's/^add_library(wasmbed_wamr STATIC \(.*\))$/zephyr_library_named(wasmbed_wamr)\nzephyr_library_sources(\1)/' \
    "$work/CMakeLists.orig" >"$work/tree/firmware-agent/ports/zephyr/CMakeLists.txt"
  if grep -q '^zephyr_library_named(wasmbed_wamr)$' "$work/tree/firmware-agent/ports/zephyr/CMakeLists.txt" \
      && configure_port "$work/tree/firmware-agent/ports/zephyr" nucleo_f446re \
      && grep -q "zephyr_library_named() called in Zephyr CMake application mode" "$work/cmake.log"; then
    echo "ok    caught: zephyr_library_named() in application mode (CMake warning)"
  else
    tail -n 20 "$work/cmake.log"; echo "FAIL  break not caught: zephyr_library_named() in application mode"; failed
  fi
fi

if [ "$fail" = 0 ]; then echo "syntax-check: PASS"; else echo "syntax-check: FAIL"; fi
exit "$fail"
