#!/usr/bin/env python3
"""Read a board overlay of the Zephyr port (NOT Zephyr's devicetree compiler: a small parser for
the subset the overlays use) and check it against the board facts. Used by syntax-check.sh.

  overlay-check.py BOARD OVERLAY BOARD_DTS CONFIG BOARD_FACTS DEVICETREE_GENERATED_H

OVERLAY is the board's overlay after the C preprocessor (as Zephyr runs it: its values come from
BOARD_FACTS, firmware-agent/boards/<board>.h, the facts shared with the bare-metal images).
BOARD_DTS is tests/syntax-shim/boards/<board>/board.dts: the clock nodes of Zephyr's board .dts
and SoC .dtsi, recorded by hand (the overlay is applied on top of it, a later property wins).
CONFIG is the merged CONFIG_X=V file (the SoC symbol picks the part's clock limits).
Prints one line per problem and exits 1 if there is any; prints nothing and exits 0 otherwise.

Checks:
 - the overlay itself chooses `zephyr,shell-uart`, the UART of BOARD_FACTS' BOARD_UART_BASE, the one the shim's devicetree (DT_N_CHOSEN_zephyr_shell_uart) is written for,
   and that UART's status after the overlay is "okay";
 - the clock tree after the overlay: the PLL source (clk_hse or clk_hsi) and its frequency as the
   board/SoC give it, the source enabled, M/N/P against the part's VCO input and output ranges,
   the PLL output equal to the rcc clock-frequency, SYSCLK and the APB1/APB2 clocks within the
   part's limits (STM32F4: at most 168 MHz in Zephyr, which enables over-drive only on F7).
"""
import re
import sys

# Per part (Zephyr SoC symbol): SYSCLK, APB1, APB2 maxima in kHz; VCO input and output ranges.
# Datasheets: STM32F446xC/E DS10693 (APB1 45, APB2 90 MHz; 180 MHz needs over-drive, which
# Zephyr's STM32 clock driver enables only on F7: 168 MHz), STM32F407xx DS8626 (168 MHz, APB1 42,
# APB2 84), STM32F746xx DS10916 (216 MHz with over-drive, APB1 54, APB2 108). VCO input
# 0.95..2.1 MHz and output 100..432 MHz on all three (RM0390, RM0090, RM0385 "PLL").
LIMITS = {
    "CONFIG_SOC_STM32F446XX": ("STM32F446", 168000, 45000, 90000),
    "CONFIG_SOC_STM32F407XX": ("STM32F407", 168000, 42000, 84000),
    "CONFIG_SOC_STM32F746XX": ("STM32F746", 216000, 54000, 108000),
}
VCO_IN = (950, 2100)
VCO_OUT = (100000, 432000)
# USART/UART node labels of STM32F4/F7 and their base addresses (the shim's node names)
UART_ADDR = {
    "usart1": "40011000", "usart2": "40004400", "usart3": "40004800",
    "uart4": "40004c00", "uart5": "40005000", "usart6": "40011400",
}


def parse_dts(text):
    """{'&label' or '/path': {prop: value-string}}, nested nodes flattened to '/a/b'."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    nodes = {}
    stack = []
    pos = 0
    token = re.compile(r"\s*(?:([^{};]+?)\s*\{|\}\s*;|([^{};]+?)\s*;)", re.S)
    while True:
        m = token.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        if m.group(1) is not None:  # node open
            name = m.group(1).strip()
            if not stack and name != "/" and not re.fullmatch(r"&[A-Za-z_][\w]*", name):
                raise SystemExit(f"overlay-check: not devicetree at the top level: {name!r} {{ "
                                 f"(an #included header must hold only #defines and comments)")
            if name.startswith("&"):
                path = name
            elif name == "/":
                path = "/"
            else:
                parent = stack[-1] if stack else ""
                path = (parent.rstrip("/") + "/" + name) if parent != "/" else "/" + name
            stack.append(path)
            nodes.setdefault(path, {})
        elif m.group(2) is not None:  # property
            prop = m.group(2).strip()
            key, _, val = prop.partition("=")
            if stack:
                nodes[stack[-1]][key.strip()] = val.strip() if val else True
            elif not prop.startswith("/"):  # only directives (/dts-v1/, /delete-node/ ...) here
                raise SystemExit(f"overlay-check: not devicetree at the top level: {prop!r}; "
                                 f"(an #included header must hold only #defines and comments)")
        else:
            if stack:
                stack.pop()
    if text[pos:].strip():
        raise SystemExit(f"overlay-check: cannot parse near: {text[pos:pos + 60]!r}")
    return nodes


def merge(base, over):
    out = {k: dict(v) for k, v in base.items()}
    for k, v in over.items():
        out.setdefault(k, {}).update(v)
    return out


def cell(val):
    """<8> -> 8, <DT_FREQ_M(168)> -> 168000000, <&clk_hse> -> 'clk_hse' (frequencies in Hz)"""
    if not isinstance(val, str):
        return None
    m = re.fullmatch(r"<\s*DT_FREQ_M\((\d+)\)\s*>", val)
    if m:
        return int(m.group(1)) * 1000000
    m = re.fullmatch(r"<\s*DT_FREQ_K\((\d+)\)\s*>", val)
    if m:
        return int(m.group(1)) * 1000
    m = re.fullmatch(r"<\s*(\d+|0[xX][0-9a-fA-F]+)\s*>", val)
    if m:
        return int(m.group(1), 0)
    m = re.fullmatch(r"<\s*&(\w+)\s*>", val)
    if m:
        return m.group(1)
    return None


def khz(hz):
    return hz // 1000 if isinstance(hz, int) else None


def facts_link(facts):
    """The UART label of the shared board facts' BOARD_UART_BASE (0x40004400 -> usart2)."""
    m = re.search(r"^#define BOARD_UART_BASE (0[xX][0-9a-fA-F]+)\b", facts, re.M)
    if not m:
        return None
    addr = "%08x" % int(m.group(1), 16)
    return next((label for label, a in UART_ADDR.items() if a == addr), None)


def check(board, overlay_text, board_text, config_text, facts, dt):
    problems = []
    ov = parse_dts(overlay_text)
    dts = merge(parse_dts(board_text), ov)
    config = dict(line.split("=", 1) for line in config_text.splitlines() if "=" in line)

    # --- the link UART
    chosen = ov.get("/chosen", {}).get("zephyr,shell-uart")
    want = facts_link(facts)
    if want is None:
        problems.append(f"the board facts name no known link UART (BOARD_UART_BASE) for {board}")
    if not isinstance(chosen, str) or not chosen.startswith("&"):
        problems.append("the overlay does not choose zephyr,shell-uart")
    else:
        label = chosen[1:]
        if want is not None and label != want:
            problems.append(f"zephyr,shell-uart is &{label}, the board facts say {want.upper()}")
        m = re.search(r"^#define DT_N_CHOSEN_zephyr_shell_uart DT_N_S_soc_S_serial_([0-9a-f]+)$", dt, re.M)
        if not m:
            problems.append("the shim's devicetree has no chosen zephyr,shell-uart")
        elif UART_ADDR.get(label) != m.group(1):
            problems.append(f"zephyr,shell-uart is &{label} ({UART_ADDR.get(label, '?')}), "
                            f"the shim's devicetree is written for serial@{m.group(1)}")
        status = dts.get("&" + label, {}).get("status")
        if status != '"okay"':
            problems.append(f"&{label} status is {status if status else 'not set'}, not \"okay\"")

    # --- clocks
    part = next((LIMITS[s] for s in LIMITS if config.get(s) == "y"), None)
    if part is None:
        problems.append("no known STM32 SoC symbol in the configuration (" + ", ".join(LIMITS) + ")")
        return problems
    name, sys_max, apb1_max, apb2_max = part
    pll, rcc = dts.get("&pll", {}), dts.get("&rcc", {})
    vals = {k: cell(pll.get(k)) for k in ("div-m", "mul-n", "div-p", "clocks")}
    vals.update({k: cell(rcc.get(k)) for k in ("clock-frequency", "ahb-prescaler",
                                                "apb1-prescaler", "apb2-prescaler", "clocks")})
    missing = [k for k, v in vals.items() if v is None]
    if missing:
        problems.append("clock settings missing after the overlay: " + ", ".join(missing))
        return problems
    if vals["clocks"] != "pll":
        problems.append(f"rcc runs from &{vals['clocks']}, not the PLL")
        return problems
    src = cell(pll.get("clocks"))
    src_node = dts.get("&" + src, {})
    src_khz = khz(cell(src_node.get("clock-frequency")))
    if src not in ("clk_hse", "clk_hsi") or src_khz is None:
        problems.append(f"PLL source &{src} has no known frequency (board.dts)")
        return problems
    if src_node.get("status") != '"okay"':
        problems.append(f"PLL source &{src} is not enabled (status \"okay\")")
    m, n, p = vals["div-m"], vals["mul-n"], vals["div-p"]
    vco_in = src_khz // m
    vco = vco_in * n
    sysclk = vco // p
    freq = khz(vals["clock-frequency"])
    if not VCO_IN[0] <= vco_in <= VCO_IN[1]:
        problems.append(f"VCO input {vco_in} kHz ({src} {src_khz} kHz / M {m}) outside 950..2100 kHz")
    if not VCO_OUT[0] <= vco <= VCO_OUT[1]:
        problems.append(f"VCO {vco} kHz outside 100..432 MHz")
    if sysclk != freq:
        problems.append(f"PLL gives {sysclk} kHz from {src} ({src_khz} kHz), clock-frequency says {freq} kHz")
    if freq > sys_max:
        why = " (Zephyr enables over-drive only on F7 parts)" if sys_max == 168000 else ""
        problems.append(f"{freq // 1000} MHz on the {name}: at most {sys_max // 1000} MHz{why}")
    hclk = freq // vals["ahb-prescaler"]
    for bus, pre, lim in (("APB1", vals["apb1-prescaler"], apb1_max), ("APB2", vals["apb2-prescaler"], apb2_max)):
        if hclk // pre > lim:
            problems.append(f"{bus} {hclk // pre} kHz above the {name}'s {lim // 1000} MHz")
    return problems


def main():
    if len(sys.argv) != 7:
        raise SystemExit(__doc__)
    board, overlay, board_dts, config, facts, dt = sys.argv[1:]
    rd = lambda p: open(p, encoding="utf-8").read()
    problems = check(board, rd(overlay), rd(board_dts), rd(config), rd(facts), rd(dt))
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
