/*
 * NUCLEO-F446RE board facts (STM32F446RE, Cortex-M4F; UM1724, RM0390, DS10693). Shared by the
 * bare-metal image and the Zephyr port: README.md (only #defines, no integer suffixes).
 */
#ifndef WASMBED_BOARD_NUCLEO_F446RE_H
#define WASMBED_BOARD_NUCLEO_F446RE_H

#define BOARD_MCU "STM32F446RE"

/* 512 KiB flash; 128 KiB SRAM (SRAM1 112 KiB + SRAM2 16 KiB, contiguous); no CCM, no caches. */
#define BOARD_FLASH_ORIGIN 0x08000000
#define BOARD_FLASH_LENGTH 0x80000
#define BOARD_RAM_ORIGIN 0x20000000
#define BOARD_RAM_LENGTH 0x20000

/* Link: USART2 on PA2 (TX) / PA3 (RX), AF7, wired to the ST-LINK virtual COM port. */
#define BOARD_UART_BASE 0x40004400
#define BOARD_UART_IRQN 38
#define BOARD_UART_APB 1       /* on APB1 */
#define BOARD_UART_RCC_BIT 17  /* RCC_APB1ENR USART2EN */
#define BOARD_UART_PORT 0      /* GPIOA */
#define BOARD_UART_TX_PIN 2
#define BOARD_UART_RX_PIN 3
#define BOARD_UART_AF 7

/* User LED LD2 (green): PA5, active high. */
#define BOARD_LED_PORT 0 /* GPIOA */
#define BOARD_LED_PIN 5

/* HSE: 8 MHz from the ST-LINK's MCO (bypass); the PLL input is 1 MHz (M = 8 from the HSE). */
#define BOARD_HSE_HZ 8000000
#define BOARD_HSE_BYPASS 1
#define BOARD_PLL_M_HSE 8

/*
 * Clock tree both firmwares run: VCO 336 MHz, P = 2 -> SYSCLK = HCLK 168 MHz, Q = 7 -> 48 MHz,
 * APB1 /4 = 42 MHz (45 at most), APB2 /2 = 84 MHz (90 at most), 5 flash wait states at 3.3 V.
 * 180 MHz would need the over-drive mode, which Zephyr's STM32 clock driver enables only on F7
 * parts: 168 MHz in both.
 */
#define BOARD_CPU_HZ 168000000
#define BOARD_PLL_N 336
#define BOARD_PLL_P 2
#define BOARD_PLL_Q 7
#define BOARD_APB1_DIV 4
#define BOARD_APB2_DIV 2
#define BOARD_FLASH_WAIT_STATES 5

#endif
