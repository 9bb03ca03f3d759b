/*
 * STM32F4-Discovery (STM32F407VG, Cortex-M4F, UM1472 / RM0090).
 * Only #defines: also preprocessed into the linker script and read by scripts.
 */
#ifndef BAREMETAL_BOARD_STM32F4_DISCOVERY_H
#define BAREMETAL_BOARD_STM32F4_DISCOVERY_H

#include "stm32f4_common.h"

#define BOARD_NAME "stm32f4-discovery"
#define BOARD_MCU "STM32F407VG"
/* Voltage scale 1: PWR_CR VOS (bit 14) = 1 on the F405/F407 (its reset value). */
#define BOARD_PWR_CR_VOS (1u << 14)

/*
 * Console: USART2 on PA2 (TX) / PA3 (RX), AF7 (Renode's stm32f4_discovery
 * console). The board has no virtual COM port on every revision: wire a
 * 3.3 V USB-UART adapter to PA2/PA3/GND.
 */
#define BOARD_UART_BASE 0x40004400u
#define BOARD_UART_IRQN 38
#define BOARD_UART_APB 1
#define BOARD_UART_RCC_BIT 17
#define BOARD_UART_PORT BOARD_PORT_A
#define BOARD_UART_TX_PIN 2
#define BOARD_UART_RX_PIN 3
#define BOARD_UART_AF 7

/* User LED LD4 (green): PD12, active high. */
#define BOARD_LED_PORT BOARD_PORT_D
#define BOARD_LED_PIN 12

/*
 * Memory: 1 MiB flash; 128 KiB SRAM at 0x20000000 (SRAM1 112 KiB + SRAM2
 * 16 KiB). The 64 KiB CCM at 0x10000000 is left unused: QEMU's STM32F405
 * models none, and this image must run there unchanged. Same budget as the
 * NUCLEO-F446RE.
 */
#define BOARD_FLASH_LENGTH 0x100000
#define BOARD_RAM_ORIGIN 0x20000000
#define BOARD_RAM_LENGTH 0x20000
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
