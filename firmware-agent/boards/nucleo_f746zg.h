/*
 * NUCLEO-F746ZG board facts (STM32F746ZG, Cortex-M7 with FPv5 single precision; UM1974, RM0385,
 * DS10916). Shared by the bare-metal image (../ports/baremetal/src/boards/nucleo_f746zg.h) and the
 * Zephyr port (README.md: only #defines, no integer suffixes). Checked against Zephyr's
 * boards/st/nucleo_f746zg/nucleo_f746zg.dts: usart3 on pd8/pd9 is zephyr,console and
 * zephyr,shell-uart; leds LD1 gpiob 0 (led0), LD2 gpiob 7, LD3 gpiob 14, active high; clk_hse
 * hse-bypass 8 MHz ("STLink 8MHz clock"); pll div-m 4, mul-n 192, div-p 2, div-q 8; rcc 192 MHz,
 * apb1 /4, apb2 /2; and its doc/index.rst ("UART_3 TX/RX : PD8/PD9 (ST-Link Virtual Port Com)",
 * "1 MB Flash", "320 KB SRAM").
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
/* The DTCM (RM0385 2.2.2, Zephyr's zephyr,dtcm): data only, tightly coupled, never cached. */
#define BOARD_DTCM_ORIGIN 0x20000000
#define BOARD_DTCM_LENGTH 0x10000
/* Flash sectors (RM0385 3.3.1, 1 MiB part): 4 x 32 KiB, 1 x 128 KiB, 3 x 256 KiB; the last one
 * starts at 0x080C0000. */
#define BOARD_FLASH_LAST_SECTOR 0x40000

/* Link: USART3 on PD8 (TX) / PD9 (RX), AF7, wired to the ST-LINK virtual COM port. */
#define BOARD_UART_BASE 0x40004800
#define BOARD_UART_IRQN 39
#define BOARD_UART_APB 1
#define BOARD_UART_RCC_BIT 18 /* RCC_APB1ENR USART3EN */
#define BOARD_UART_PORT 3     /* GPIOD */
#define BOARD_UART_TX_PIN 8
#define BOARD_UART_RX_PIN 9
#define BOARD_UART_AF 7

/* User LED LD1 (green): PB0, active high. (LD2 blue PB7, LD3 red PB14: not driven.) */
#define BOARD_LED_PORT 1 /* GPIOB */
#define BOARD_LED_PIN 0

/* HSE: 8 MHz from the ST-LINK's MCO (bypass); the PLL input is 2 MHz (M = 4). */
#define BOARD_HSE_HZ 8000000
#define BOARD_HSE_BYPASS 1
#define BOARD_PLL_M_HSE 4

/* Zephyr's board default: VCO 384 MHz, P = 2 -> 192 MHz, Q = 8 -> 48 MHz, APB1 /4 = 48 MHz,
 * APB2 /2 = 96 MHz. Above 180 MHz the F7 needs the over-drive mode (DS10916 "General operating
 * conditions"; Zephyr's STM32 clock driver enables it above 180 MHz on F7 parts, and so does the
 * bare-metal image), and 6 flash wait states at 2.7-3.6 V (RM0385 "Read access latency":
 * 180 < HCLK <= 210 MHz). 216 MHz would be
 * possible (7 wait states); both firmwares run the board's default. */
#define BOARD_CPU_HZ 192000000
#define BOARD_PLL_N 192
#define BOARD_PLL_P 2
#define BOARD_PLL_Q 8
#define BOARD_APB1_DIV 4
#define BOARD_APB2_DIV 2
#define BOARD_FLASH_WAIT_STATES 6

#endif
