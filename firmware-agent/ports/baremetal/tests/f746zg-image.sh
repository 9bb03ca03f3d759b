#!/usr/bin/env bash
# The NUCLEO-F746ZG image, built and inspected, not run: no QEMU machine emulates an STM32F7
# (README.md "NUCLEO-F746ZG"). Checks what the build can prove about the image a board would run:
#  - Cortex-M7 code for the F746's single-precision FPv5 (ELF attributes) and not one
#    double-precision FPU instruction anywhere in it (the F746 would fault on it);
#  - the vector table's USART3 entry (IRQ 39) is the UART's RX handler; reset vector and stack;
#  - placement: thread stacks, RX ring and main stack in the DTCM, WAMR's pool in SRAM1+2, the
#    identity page at the last 256 KiB sector (0x080C0000), agent.bin starts at 0x08000000 and
#    stays below it; agent.hex present;
#  - INFO's identity and AOT target compiled in (board, cortex-m7, -fp64, eabihf);
#  - the link enforces the board's RAM: the same objects with a pool larger than the SRAM the
#    image leaves must fail to link (region RAM overflowed).
# Exits non-zero on any failed check.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
export BOARD=nucleo-f746zg
# shellcheck source=../board-facts.sh
. "$here/board-facts.sh"
"$here/build.sh" >/dev/null 2>&1 || "$here/build.sh"
build="$(board_build_dir)"
elf="$build/agent.elf"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fails=0
ok() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
sym() { arm-none-eabi-nm "$elf" | sed -n "s/^\([0-9a-f]*\) . $1\$/\1/p" | head -1; }
in_range() { # in_range NAME LO HI: symbol NAME's address in [LO, HI)
    local a
    a="$(sym "$1")"
    if [ -n "$a" ] && [ $((0x$a)) -ge $(($2)) ] && [ $((0x$a)) -lt $(($3)) ]; then
        ok "$1 at 0x$a, in [$(printf 0x%x "$2"), $(printf 0x%x "$3"))"
    else
        fail "$1 at 0x${a:-?}, not in [$(printf 0x%x "$2"), $(printf 0x%x "$3"))"
    fi
}

# ---- CPU and FPU ----
attrs="$(arm-none-eabi-readelf -A "$elf")"
if grep -q 'Tag_FP_arch: FPv5/FP-D16 for ARMv8' <<<"$attrs" && grep -q 'Tag_ABI_HardFP_use: SP only' <<<"$attrs" \
    && grep -q 'Tag_ABI_VFP_args: VFP registers' <<<"$attrs" && grep -q 'Tag_CPU_arch: v7E-M' <<<"$attrs"; then
    ok "ELF attributes: v7E-M, FPv5-D16, single precision only, hard-float calls"
else
    fail "ELF attributes are not Cortex-M7 fpv5-sp-d16 hard-float:"; echo "$attrs"
fi
arm-none-eabi-objdump -d "$elf" >"$work/agent.dis"
n_f64="$(grep -cE '\sv[a-z0-9]+\.f64\s|\svcvt\.f64\.|\.f64\.f32|\svcvt[a-z]*\.[su]32\.f64' "$work/agent.dis" || true)"
if [ "$n_f64" -eq 0 ] && grep -qE '\sv(add|mul|mla|fma)\.f32\s' "$work/agent.dis"; then
    ok "no double-precision FPU instruction in the image (single-precision ones present)"
else
    fail "$n_f64 double-precision FPU instructions in the image:"; grep -E '\.f64' "$work/agent.dis" | head -5
fi

# ---- vector table (first in flash: agent.bin offset 0) ----
vec() { od -An -tx4 -j $(($1 * 4)) -N4 "$build/agent.bin" | tr -d ' '; }
irq="$(board_fact BOARD_UART_IRQN)"
if [ $((0x$(vec $((16 + irq))))) -eq $((0x$(sym uart0_rx_irq) | 1)) ]; then
    ok "vector $((16 + irq)) (USART3, IRQ $irq) is uart0_rx_irq"
else
    fail "vector $((16 + irq)) is 0x$(vec $((16 + irq))), uart0_rx_irq is 0x$(sym uart0_rx_irq)"
fi
[ $((0x$(vec 1))) -eq $((0x$(sym Reset_Handler) | 1)) ] && ok "reset vector is Reset_Handler" \
    || fail "reset vector 0x$(vec 1), Reset_Handler 0x$(sym Reset_Handler)"
[ $((0x$(vec 0))) -eq $((0x$(sym __stack_top))) ] && ok "initial SP is __stack_top (0x$(sym __stack_top))" \
    || fail "initial SP 0x$(vec 0), __stack_top 0x$(sym __stack_top)"

# ---- placement ----
dtcm_lo="$(board_fact BOARD_DTCM_ORIGIN)"; dtcm_hi=$((dtcm_lo + $(board_fact BOARD_DTCM_LENGTH)))
ram_lo="$(board_fact BOARD_RAM_ORIGIN)"; ram_hi=$((ram_lo + $(board_fact BOARD_RAM_LENGTH)))
for s in worker_stacks cmd_stack rx_ring __stack_limit; do in_range "$s" "$dtcm_lo" "$dtcm_hi"; done
[ $((0x$(sym __stack_top))) -le "$dtcm_hi" ] && ok "main stack ends in the DTCM" || fail "__stack_top beyond the DTCM"
for s in wamr_pool __bss_start __heap_limit; do in_range "$s" "$ram_lo" "$ram_hi"; done
id="$(sym __wasmbed_identity)"
[ "$id" = 080c0000 ] && ok "identity page at 0x080c0000 (last 256 KiB sector)" || fail "identity page at 0x$id"
bin_size="$(stat -c %s "$build/agent.bin")"
if [ "$bin_size" -gt 0 ] && [ $((0x08000000 + bin_size)) -le $((0x080c0000)) ] && [ -s "$build/agent.hex" ]; then
    ok "agent.bin $bin_size B from 0x08000000, below the identity page; agent.hex present"
else
    fail "agent.bin $bin_size B (limit 786432) or agent.hex missing"
fi

# ---- INFO's target, compiled in ----
for s in "$(board_fact BOARD_NAME)" cortex-m7 -fp64 eabihf thumbv7em; do
    grep -qaF -- "$s" "$build/agent.bin" && ok "image carries \"$s\"" || fail "image lacks \"$s\""
done

# ---- the RAM budget is enforced by the link ----
pool_size="$(arm-none-eabi-nm -S "$elf" | sed -n 's/^[0-9a-f]* \([0-9a-f]*\) . wamr_pool$/\1/p')"
relink() { # relink POOL-BYTES: agent_port.c compiled with that pool, linked with the image's objects
    (
        cd "$build"
        flags="$(sed -n 's/^C_DEFINES = //p; s/^C_INCLUDES = //p; s/^C_FLAGS = //p' CMakeFiles/agent.elf.dir/flags.make | tr '\n' ' ')"
        eval "arm-none-eabi-gcc $flags -DAGENT_POOL_BYTES=$1u -c $here/src/agent_port.c -o $work/agent_port.o"
        sed "s| CMakeFiles/agent.elf.dir/src/agent_port.c.obj | $work/agent_port.o |; s| -o agent.elf | -o $work/relinked.elf |; s| -Wl,-Map=[^ ]*||" \
            CMakeFiles/agent.elf.dir/link.txt >"$work/link.sh"
        grep -q "$work/agent_port.o" "$work/link.sh" || { echo "link.txt has no agent_port.c.obj"; exit 3; }
        bash "$work/link.sh"
    ) >"$work/relink.log" 2>&1
}
if relink $((0x$pool_size)); then
    ok "relinked with the image's own pool ($((0x$pool_size)) B): fits"
else
    fail "relinking with the image's own pool failed:"; tail -5 "$work/relink.log"
fi
big=$((0x$pool_size + (ram_hi - 0x$(sym __heap_limit)) + 1024)) # what SRAM leaves, plus 1 KiB
if ! relink "$big" && grep -q "region \`RAM' overflowed" "$work/relink.log"; then
    ok "a pool of $big B (the image's + what SRAM leaves + 1 KiB) fails the link: RAM overflowed"
else
    fail "a pool of $big B did not fail the link for RAM:"; tail -5 "$work/relink.log"
fi

if [ "$fails" -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "NUCLEO-F746ZG image checks passed (built, not run: no STM32F7 in QEMU)"
