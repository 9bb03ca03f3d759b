/*
 * STM32F4DISCOVERY board facts (STM32F407VG, Cortex-M4F; UM1472, RM0090, DS8626). Shared by the
 * bare-metal image and the Zephyr port: README.md (only #defines, no integer suffixes).
 */
#ifndef WASMBED_BOARD_STM32F4_DISCO_H
#define WASMBED_BOARD_STM32F4_DISCO_H

#define BOARD_MCU "STM32F407VG"

/* 1 MiB flash; 128 KiB SRAM (SRAM1 112 KiB + SRAM2 16 KiB); 64 KiB CCM at 0x10000000 (data bus
 * only: no code, no DMA; neither firmware uses it). No caches. */
#define BOARD_FLASH_ORIGIN 0x08000000
#define BOARD_FLASH_LENGTH 0x100000
#define BOARD_RAM_ORIGIN 0x20000000
#define BOARD_RAM_LENGTH 0x20000

/* Link: USART2 on PA2 (TX) / PA3 (RX), AF7 (Renode's stm32f4_discovery console). Not every
 * board revision has a virtual COM port: wire a 3.3 V USB-UART adapter to PA2/PA3/GND. */
#define BOARD_UART_BASE 0x40004400
#define BOARD_UART_IRQN 38
#define BOARD_UART_APB 1
#define BOARD_UART_RCC_BIT 17
#define BOARD_UART_PORT 0 /* GPIOA */
#define BOARD_UART_TX_PIN 2
#define BOARD_UART_RX_PIN 3
#define BOARD_UART_AF 7

/* User LED LD4 (green): PD12, active high. */
#define BOARD_LED_PORT 3 /* GPIOD */
#define BOARD_LED_PIN 12

/* HSE: 8 MHz crystal; the PLL input is 1 MHz (M = 8 from the HSE). */
#define BOARD_HSE_HZ 8000000
#define BOARD_HSE_BYPASS 0
#define BOARD_PLL_M_HSE 8

/* 168 MHz (the part's maximum), APB1 /4 = 42 MHz, APB2 /2 = 84 MHz, 5 wait states. */
#define BOARD_CPU_HZ 168000000
#define BOARD_PLL_N 336
#define BOARD_PLL_P 2
#define BOARD_PLL_Q 7
#define BOARD_APB1_DIV 4
#define BOARD_APB2_DIV 2
#define BOARD_FLASH_WAIT_STATES 5

#endif
