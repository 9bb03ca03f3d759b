/*
 * NUCLEO-F746ZG board facts (STM32F746ZG, Cortex-M7 with FPv5 single precision; UM1974, RM0385,
 * DS10916). Read by the Zephyr port (README.md: only #defines, no integer suffixes); a bare-metal
 * image of this board should include it rather than restate it.
 */
#ifndef WASMBED_BOARD_NUCLEO_F746ZG_H
#define WASMBED_BOARD_NUCLEO_F746ZG_H

#define BOARD_MCU "STM32F746ZG"

/* 1 MiB flash; Zephyr's sram0 = SRAM1 240 KiB + SRAM2 16 KiB at 0x20010000 (the 64 KiB DTCM at
 * 0x20000000 is left out). 4 KiB I-cache + 4 KiB D-cache: code written through the D-cache must
 * be cleaned to SRAM and the I-cache invalidated before it runs. */
#define BOARD_FLASH_ORIGIN 0x08000000
#define BOARD_FLASH_LENGTH 0x100000
#define BOARD_RAM_ORIGIN 0x20010000
#define BOARD_RAM_LENGTH 0x40000
#define BOARD_HAS_CACHES 1

/* Link: USART3 on PD8 (TX) / PD9 (RX), AF7, wired to the ST-LINK virtual COM port. */
#define BOARD_UART_BASE 0x40004800
#define BOARD_UART_IRQN 39
#define BOARD_UART_APB 1
#define BOARD_UART_RCC_BIT 18 /* RCC_APB1ENR USART3EN */
#define BOARD_UART_PORT 3     /* GPIOD */
#define BOARD_UART_TX_PIN 8
#define BOARD_UART_RX_PIN 9
#define BOARD_UART_AF 7

/* User LED LD1 (green): PB0, active high. */
#define BOARD_LED_PORT 1 /* GPIOB */
#define BOARD_LED_PIN 0

/* HSE: 8 MHz from the ST-LINK's MCO (bypass); the PLL input is 2 MHz (M = 4). */
#define BOARD_HSE_HZ 8000000
#define BOARD_HSE_BYPASS 1
#define BOARD_PLL_M_HSE 4

/* Zephyr's board default: VCO 384 MHz, P = 2 -> 192 MHz, Q = 8 -> 48 MHz, APB1 /4 = 48 MHz,
 * APB2 /2 = 96 MHz. (216 MHz would be possible: Zephyr enables over-drive on F7 parts.) */
#define BOARD_CPU_HZ 192000000
#define BOARD_PLL_N 192
#define BOARD_PLL_P 2
#define BOARD_PLL_Q 8
#define BOARD_APB1_DIV 4
#define BOARD_APB2_DIV 2
#define BOARD_FLASH_WAIT_STATES 6

#endif
