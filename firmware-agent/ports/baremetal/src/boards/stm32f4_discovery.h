/*
 * STM32F4-Discovery (STM32F407VG, Cortex-M4F, UM1472 / RM0090).
 * Only #defines: also preprocessed into the linker script and read by scripts.
 */
#ifndef BAREMETAL_BOARD_STM32F4_DISCOVERY_H
#define BAREMETAL_BOARD_STM32F4_DISCOVERY_H

/* The board's hardware (part, memory, USART2 on PA2/PA3, LD4 on PD12, clock tree): one header
 * shared with the Zephyr port (whose board name is stm32f4_disco). The 64 KiB CCM is left
 * unused: QEMU's STM32F405 models none, and this image must run there unchanged. Same budget as
 * the NUCLEO-F446RE. */
#include "../../../../boards/stm32f4_disco.h"
#include "stm32f4_common.h"

#define BOARD_NAME "stm32f4-discovery"
/* Voltage scale 1: PWR_CR VOS (bit 14) = 1 on the F405/F407 (its reset value). */
#define BOARD_PWR_CR_VOS (1u << 14)

#define BOARD_MAIN_STACK_BYTES 0x800
#define SMOKE_MAIN_STACK_BYTES 0x4000 /* smoke.elf runs WAMR on the main stack */
#define BOARD_HEAP_BYTES 0x400

/* One slot, one module at a time (see nucleo_f446re.h). */
#define AGENT_SLOTS 1
#define AGENT_POOL_BYTES (94u * 1024u)
#define AGENT_CMD_STACK_BYTES (8u * 1024u)
#define AGENT_WORKER_STACK_BYTES (10u * 1024u)
#define AGENT_WASM_STACK_BYTES (6u * 1024u)
#define AGENT_RX_RING_BYTES 2048u /* power of two; 2 KiB: signatures + identity took the rest */
#define SMOKE_POOL_BYTES (96u * 1024u)
/* WAMR's AOT section / linear memory granule (no MMU): 64 B, not 4 KiB. */
#define BOARD_MMAP_PAGE_BYTES 64

#define BOARD_QEMU_MACHINE "netduinoplus2"
#define BOARD_QEMU_SERIAL 1

#endif
