#!/usr/bin/env bash
# Does CI's Zephyr syntax check (tests/syntax-check.sh) catch what it claims to? Each case below
# copies the port (and what the check reads: the shared board facts, the bare-metal board
# headers) into a temporary tree, applies ONE deliberate break with sed, runs the check on the
# copy with SYNTAX_CHECK_FAIL_FAST=1 and asserts that it fails, with the expected text in its
# output (so a failure for an unrelated reason does not count). The unbroken copy must pass.
#
# Breaks: a missing chosen zephyr,shell-uart (Zephyr's devicetree, then the port's overlay); an
# oversized RX ring (the Kconfig range, then the ring buffer's BUILD_ASSERT with the range
# widened); a missing config option (prj.conf without CONFIG_UART_INTERRUPT_DRIVEN) and missing
# config guards (the #error blocks of src/port_uart.c and src/port.c deleted: the check's own
# deliberate breaks must then report "break not caught"); shared board facts that disagree with
# the overlay's clock or with Zephyr's board, or holding a C declaration (the overlay #includes it);
# the F746's AOT target differing from the bare-metal image's (port_aot.h without -fp64).
# Usage: firmware-agent/ports/zephyr/tests/breaks.sh   (needs what syntax-check.sh needs)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
port="$(cd "$here/.." && pwd)"
fa="$(cd "$port/../.." && pwd)" # firmware-agent
repo="$(cd "$fa/.." && pwd)"
# shellcheck source=tools/wamrc/find-wamr.sh
source "$repo/tools/wamrc/find-wamr.sh"
WAMR_ROOT="$(wasmbed_find_wamr "$repo")"
export WAMR_ROOT
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail=0
n=0

# fresh_tree: $work/tree/firmware-agent with copies of what a break may edit, links for the rest
fresh_tree() {
  rm -rf "$work/tree"
  mkdir -p "$work/tree/firmware-agent/ports/baremetal/src" "$work/tree/tools"
  cp -r "$port" "$work/tree/firmware-agent/ports/zephyr"
  cp -r "$fa/boards" "$work/tree/firmware-agent/boards"
  cp -r "$fa/ports/baremetal/src/boards" "$work/tree/firmware-agent/ports/baremetal/src/boards"
  for d in core wamr third_party ports/posix; do ln -s "$fa/$d" "$work/tree/firmware-agent/$d"; done
  ln -s "$repo/tools/wamrc" "$work/tree/tools/wamrc"
  t="$work/tree/firmware-agent/ports/zephyr"
}
# run_check: the syntax check on the copy; its output in $work/out.log
run_check() {
  SYNTAX_CHECK_FAIL_FAST=1 timeout 600 "$t/tests/syntax-check.sh" >"$work/out.log" 2>&1
}
# expect_caught NAME EXPECTED-TEXT: the check on the (broken) copy must fail, saying EXPECTED-TEXT
expect_caught() {
  n=$((n + 1))
  if run_check; then
    echo "FAIL  not caught: $1 (the syntax check passed)"; fail=1
  elif grep -q -- "$2" "$work/out.log"; then
    echo "ok    caught: $1"
  else
    tail -n 15 "$work/out.log"; echo "FAIL  $1: the check failed without saying '$2'"; fail=1
  fi
}
# edit FILE SED-SCRIPT: apply the break, and fail loudly if it changed nothing (a stale pattern
# would otherwise turn the case into a second run of the unbroken port)
edit() {
  cp "$1" "$work/before"
  sed -i "$2" "$1"
  if cmp -s "$1" "$work/before"; then echo "FAIL  break did not apply: sed '$2' on ${1#"$work/tree/"}"; fail=1; return 1; fi
}

fresh_tree
if run_check; then echo "ok    the unbroken copy passes"; else tail -n 20 "$work/out.log"; echo "FAIL  the unbroken copy fails"; exit 1; fi

fresh_tree
edit "$t/tests/syntax-shim/boards/nucleo_f446re/devicetree_generated.h" '/^#define DT_N_CHOSEN_zephyr_shell_uart /d' &&
  expect_caught "NUCLEO-F446RE devicetree without chosen zephyr,shell-uart" "DT_N_CHOSEN_zephyr_shell_uart"
fresh_tree
edit "$t/boards/nucleo_f446re.overlay" '/zephyr,shell-uart = /d' &&
  expect_caught "nucleo_f446re.overlay without chosen zephyr,shell-uart" "does not choose zephyr,shell-uart"

fresh_tree
edit "$t/boards/nucleo_f446re.conf" 's/^CONFIG_WASMBED_RX_RING_SIZE=.*/CONFIG_WASMBED_RX_RING_SIZE=32768/' &&
  expect_caught "RX ring of 32768 bytes (Kconfig range)" "CONFIG_WASMBED_RX_RING_SIZE=32768 is outside its Kconfig range"
fresh_tree
edit "$t/Kconfig" 's/^\trange 64 32767$/\trange 64 65535/' &&
  edit "$t/boards/nucleo_f446re.conf" 's/^CONFIG_WASMBED_RX_RING_SIZE=.*/CONFIG_WASMBED_RX_RING_SIZE=32768/' &&
  expect_caught "RX ring of 32768 bytes with the Kconfig range widened (ring buffer BUILD_ASSERT)" \
    "please enable CONFIG_RING_BUFFER_LARGE"

fresh_tree
edit "$t/prj.conf" '/^CONFIG_UART_INTERRUPT_DRIVEN=y$/d' &&
  expect_caught "prj.conf without CONFIG_UART_INTERRUPT_DRIVEN" "#error \"prj.conf: CONFIG_SERIAL=y and CONFIG_UART_INTERRUPT_DRIVEN=y"
fresh_tree
edit "$t/src/port_uart.c" '/^#if !defined(CONFIG_SERIAL) || !defined(CONFIG_UART_INTERRUPT_DRIVEN)$/,/^#endif$/d' &&
  expect_caught "src/port_uart.c without its CONFIG_UART_INTERRUPT_DRIVEN guard" \
    "break not caught: prj.conf without CONFIG_UART_INTERRUPT_DRIVEN"
fresh_tree
edit "$t/src/port.c" '/^#if (defined(CONFIG_DCACHE) || defined(CONFIG_ICACHE)) && !defined(CONFIG_CACHE_MANAGEMENT)$/,/^#endif$/d' &&
  expect_caught "src/port.c without its CONFIG_CACHE_MANAGEMENT guard" \
    "break not caught: nucleo_f746zg.conf without CONFIG_CACHE_MANAGEMENT"

fresh_tree
edit "$t/../../boards/nucleo_f446re.h" 's/^#define BOARD_PLL_N 336$/#define BOARD_PLL_N 360/' &&
  expect_caught "shared F446RE facts: PLL N=360 while SYSCLK says 168 MHz" "PLL gives 180000 kHz"
fresh_tree
edit "$t/../../boards/nucleo_f446re.h" 's/^#define BOARD_LED_PIN 5$/#define BOARD_LED_PIN 6/' &&
  expect_caught "shared F446RE facts: LED on PA6 while Zephyr's board has PA5" "the board facts say port 0 pin 6"
fresh_tree
edit "$t/../../boards/nucleo_f446re.h" 's|^#define BOARD_MCU "STM32F446RE"$|&\nstatic const unsigned board_hse_hz = 8000000u;|' &&
  expect_caught "shared F446RE facts with a C declaration (the overlay #includes it: dtc would fail)" \
    "not devicetree at the top level"
fresh_tree
edit "$t/src/port_aot.h" 's/^#define PORT_AOT_FEATURES "-fp64"$/#define PORT_AOT_FEATURES "none"/' &&
  expect_caught "port_aot.h: the F746's AOT target without -fp64 (the bare-metal image says -fp64)" \
    "FAIL  AOT FEATURES none on nucleo_f746zg, the bare-metal nucleo_f746zg.h says -fp64"

if [ "$fail" = 0 ]; then echo "breaks: PASS (the unbroken copy passes, $n breaks caught)"; else echo "breaks: FAIL"; fi
exit "$fail"
