/*
 * NUCLEO-F446RE (STM32F446RE, Cortex-M4F, UM1724 / RM0390).
 * Only #defines: also preprocessed into the linker script and read by scripts.
 */
#ifndef BAREMETAL_BOARD_NUCLEO_F446RE_H
#define BAREMETAL_BOARD_NUCLEO_F446RE_H

/* The board's hardware (part, memory, USART2 on PA2/PA3, LD2 on PA5, clock tree): one header
 * shared with the Zephyr port. */
#include "../../../../boards/nucleo_f446re.h"
#include "stm32f4_common.h"

#define BOARD_NAME "nucleo-f446re"
/* Voltage scale 1: PWR_CR VOS[15:14] = 11 on the F446. */
#define BOARD_PWR_CR_VOS (3u << 14)

/* Console: the board's link USART (BOARD_UART_*, from the shared header). */
#define BOARD_MAIN_STACK_BYTES 0x800 /* handler mode only once the kernel runs */
#define SMOKE_MAIN_STACK_BYTES 0x4000 /* smoke.elf runs WAMR on the main stack */
#define BOARD_HEAP_BYTES 0x400

/*
 * Budget in 128 KiB: one slot, one module at a time (a 1-page module needs
 * ~80 KiB of pool, fft_bench AOT ~92 KiB).
 */
#define AGENT_SLOTS 1
#define AGENT_POOL_BYTES (94u * 1024u)
#define AGENT_CMD_STACK_BYTES (8u * 1024u)
#define AGENT_WORKER_STACK_BYTES (10u * 1024u)
#define AGENT_WASM_STACK_BYTES (6u * 1024u)
#define AGENT_RX_RING_BYTES 2048u /* power of two; 2 KiB: signatures + identity took the rest */
#define SMOKE_POOL_BYTES (96u * 1024u)
/* WAMR's AOT section / linear memory granule (no MMU): 64 B, not 4 KiB. */
#define BOARD_MMAP_PAGE_BYTES 64

/* Nearest QEMU machine: netduinoplus2 (STM32F405: same USART, RCC, GPIO
 * blocks and memory map); its USART2 is QEMU's second -serial. */
#define BOARD_QEMU_MACHINE "netduinoplus2"
#define BOARD_QEMU_SERIAL 1

#endif
