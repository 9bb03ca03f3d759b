/*
 * Facts shared by the STM32F4 boards (RM0090 for F405/F407, RM0390 for
 * F446): register blocks and the clock tree the images set up. A board
 * header defines its own pins, USART, memory and budget, then includes this.
 * Only #defines: the header is also run through the C preprocessor for the
 * linker script (stm32f4.ld.in) and read by scripts.
 */
#ifndef BAREMETAL_BOARD_STM32F4_COMMON_H
#define BAREMETAL_BOARD_STM32F4_COMMON_H

#define BOARD_STM32F4 1

#define BOARD_AOT_ARCH "thumbv7em"
#define BOARD_AOT_CPU "cortex-m4"
#define BOARD_AOT_ABI "eabihf"

/*
 * Clock source: the 16 MHz HSI (every board has it; no dependency on a crystal or the
 * ST-LINK's MCO; QEMU models it), divided by M = 16 to the PLL's 1 MHz input. The rest of the
 * clock tree is the board's (its shared header, ../../../../boards/<board>.h: PLL N/P/Q,
 * SYSCLK, bus dividers, wait states); a board without one (netduinoplus2, QEMU only) gets
 * 168 MHz SYSCLK = HCLK, APB1 = HCLK/4 = 42 MHz, APB2 = HCLK/2 = 84 MHz, Q = 7 -> 48 MHz, 5 flash
 * wait states (voltage scale 1, 2.7-3.6 V; no over-drive needed at 168 MHz on F405/F407/F446).
 */
#define BOARD_HSI_HZ 16000000u
#define BOARD_PLL_M 16u
#ifndef BOARD_CPU_HZ
#define BOARD_PLL_N 336u
#define BOARD_PLL_P 2u
#define BOARD_PLL_Q 7u
#define BOARD_CPU_HZ 168000000u
#define BOARD_APB1_DIV 4u
#define BOARD_APB2_DIV 2u
#define BOARD_FLASH_WAIT_STATES 5u
#endif

/* GPIO ports: 0 = A, 1 = B, ... (RCC_AHB1ENR bit = port). */
#define BOARD_PORT_A 0
#define BOARD_PORT_B 1
#define BOARD_PORT_C 2
#define BOARD_PORT_D 3

#ifndef BOARD_FLASH_ORIGIN
#define BOARD_FLASH_ORIGIN 0x08000000
#endif

#endif
