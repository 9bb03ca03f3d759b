/*
 * STM32F4 helpers shared by the board files (stm32f4.c, uart_stm32.c).
 */
#ifndef BAREMETAL_STM32F4_H
#define BAREMETAL_STM32F4_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))
#define RCC_BASE 0x40023800u
#define GPIO_BASE(port) (0x40020000u + 0x400u * (port))

#define GPIO_MODE_OUTPUT 1u
#define GPIO_MODE_AF 2u
#define GPIO_PULL_NONE 0u
#define GPIO_PULL_UP 1u

/** Set up HSI -> PLL -> BOARD_CPU_HZ; sets board_cpu_hz to the clock reached. */
void stm32f4_clock_tree_init(void);
/** Clock of APB bus 1 or 2 after stm32f4_clock_tree_init(). */
uint32_t stm32f4_apb_hz(unsigned bus);
/** Enable a peripheral's clock: bit `bit` of RCC_APB1ENR or RCC_APB2ENR. */
void stm32f4_enable_apb(unsigned bus, unsigned bit);
/** Configure a pin (its port clock enabled): mode, alternate function, pull. */
void stm32f4_gpio_mode(unsigned port, unsigned pin, unsigned mode, unsigned af, unsigned pull);
void stm32f4_led_init(void);
void stm32f4_led_set(int on);

#endif
