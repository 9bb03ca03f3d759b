/*
 * NUCLEO-F446RE (STM32F446RE, Cortex-M4F, UM1724 / RM0390).
 * Only #defines: also preprocessed into the linker script and read by scripts.
 */
#ifndef BAREMETAL_BOARD_NUCLEO_F446RE_H
#define BAREMETAL_BOARD_NUCLEO_F446RE_H

#include "stm32f4_common.h"

#define BOARD_NAME "nucleo-f446re"
#define BOARD_MCU "STM32F446RE"
/* Voltage scale 1: PWR_CR VOS[15:14] = 11 on the F446. */
#define BOARD_PWR_CR_VOS (3u << 14)

/* Console: USART2 on PA2 (TX) / PA3 (RX), AF7, wired to the ST-LINK virtual COM port. */
#define BOARD_UART_BASE 0x40004400u
#define BOARD_UART_IRQN 38
#define BOARD_UART_APB 1        /* on APB1 */
#define BOARD_UART_RCC_BIT 17   /* RCC_APB1ENR USART2EN */
#define BOARD_UART_PORT BOARD_PORT_A
#define BOARD_UART_TX_PIN 2
#define BOARD_UART_RX_PIN 3
#define BOARD_UART_AF 7

/* User LED LD2 (green): PA5, active high. */
#define BOARD_LED_PORT BOARD_PORT_A
#define BOARD_LED_PIN 5

/*
 * Memory: 512 KiB flash; 128 KiB SRAM (SRAM1 112 KiB + SRAM2 16 KiB,
 * contiguous at 0x20000000); no CCM. The link fails if the image does not fit.
 */
#define BOARD_FLASH_LENGTH 0x80000
#define BOARD_RAM_ORIGIN 0x20000000
#define BOARD_RAM_LENGTH 0x20000
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
