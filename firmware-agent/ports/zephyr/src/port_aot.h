/*
 * INFO aot_*: what an .aot must be compiled for, per CPU: the same target as the bare-metal image
 * of the same board (../baremetal/src/boards/<board>.h BOARD_AOT_*; tests/syntax-check.sh
 * section 7 compares them, with this header preprocessed under each board's configuration).
 * Only #defines of the Kconfig symbols, so the check can read it without Zephyr.
 */
#ifndef WASMBED_PORT_AOT_H
#define WASMBED_PORT_AOT_H

#define PORT_AOT_ARCH "thumbv7em"
#if defined(CONFIG_CPU_CORTEX_M7)
/* The F746's Cortex-M7: LLVM's cortex-m7 assumes a double-precision FPv5, the F746's FPU is single
 * precision (fpv5-sp-d16), so AOT code is built without fp64 (doubles become runtime calls, as on
 * the Cortex-M4). */
#define PORT_AOT_CPU "cortex-m7"
#define PORT_AOT_FEATURES "-fp64"
#else
#define PORT_AOT_CPU "cortex-m4"
#define PORT_AOT_FEATURES "none"
#endif
#if defined(CONFIG_FP_HARDABI)
#define PORT_AOT_ABI "eabihf"
#else
#define PORT_AOT_ABI "eabi"
#endif

#endif
