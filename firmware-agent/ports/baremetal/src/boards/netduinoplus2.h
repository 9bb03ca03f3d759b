/*
 * QEMU netduinoplus2 (STM32F405RG) memory-budget variant: 1 MiB flash,
 * 128 KiB SRAM + 64 KiB CPU-only RAM. On the real chip that RAM is the CCM at
 * 0x10000000; QEMU 7.2 models no CCM but 192 KiB of contiguous SRAM, so the
 * CPU-only region sits at 0x20020000 here. Console USART1 (QEMU's first
 * -serial), PA9/PA10 AF7. No user LED is driven.
 */
#ifndef BAREMETAL_BOARD_NETDUINOPLUS2_H
#define BAREMETAL_BOARD_NETDUINOPLUS2_H

#include "stm32f4_common.h"

#define BOARD_NAME "netduinoplus2"
#define BOARD_MCU "STM32F405RG"
#define BOARD_PWR_CR_VOS (1u << 14)

#define BOARD_UART_BASE 0x40011000u
#define BOARD_UART_IRQN 37
#define BOARD_UART_APB 2
#define BOARD_UART_RCC_BIT 4 /* RCC_APB2ENR USART1EN */
#define BOARD_UART_PORT BOARD_PORT_A
#define BOARD_UART_TX_PIN 9
#define BOARD_UART_RX_PIN 10
#define BOARD_UART_AF 7

#define BOARD_FLASH_LENGTH 0x100000
#define BOARD_RAM_ORIGIN 0x20000000
#define BOARD_RAM_LENGTH 0x20000
#define BOARD_CCM_ORIGIN 0x20020000
#define BOARD_CCM_LENGTH 0x10000
#define BOARD_MAIN_STACK_BYTES 0x2000
#define BOARD_HEAP_BYTES 0x400

/* SRAM: a 112 KiB WAMR pool (one module at a time: a 1-page module takes
 * ~80 KiB, fft_bench AOT ~100 KiB); the CPU-only region: stacks and the ring. */
#define AGENT_POOL_BYTES 114688u
#define AGENT_CMD_STACK_BYTES 12288u
#define AGENT_WORKER_STACK_BYTES 16384u
#define AGENT_WASM_STACK_BYTES 8192u
#define SMOKE_POOL_BYTES 102400u

#define BOARD_QEMU_MACHINE "netduinoplus2"
#define BOARD_QEMU_SERIAL 0

#endif
