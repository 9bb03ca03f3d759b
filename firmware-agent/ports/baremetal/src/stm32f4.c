/*
 * STM32F4 clock tree, GPIO pins and user LED, from the board header's facts
 * (boards/stm32f4_common.h and the board's own header). The STM32F7 (NUCLEO-F746ZG) uses the
 * GPIO, APB-enable and LED code as it is (same RCC enable registers and GPIO blocks) and its own
 * clock tree (stm32f7_clock.c).
 */
#include <stdint.h>

#include "board.h"
#include "stm32f4.h"

#define RCC_CR REG32(RCC_BASE + 0x00)
#define RCC_PLLCFGR REG32(RCC_BASE + 0x04)
#define RCC_CFGR REG32(RCC_BASE + 0x08)
#define RCC_AHB1ENR REG32(RCC_BASE + 0x30)
#define RCC_APB1ENR REG32(RCC_BASE + 0x40)
#define RCC_APB2ENR REG32(RCC_BASE + 0x44)
#define PWR_CR REG32(0x40007000u)
#define FLASH_ACR REG32(0x40023C00u)

#define CR_HSIRDY (1u << 1)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define APB1ENR_PWREN (1u << 28)
#define ACR_PRFTEN (1u << 8)
#define ACR_ICEN (1u << 9)
#define ACR_DCEN (1u << 10)
#define CFGR_SW_MASK 3u
#define CFGR_SW_PLL 2u
#define CFGR_SWS_MASK (3u << 2)
#define CFGR_SWS_PLL (2u << 2)

/* PLLCFGR fields written here: M[5:0] N[14:6] P[17:16] SRC[22] Q[27:24] (R, F446: kept). */
#define PLLCFGR_FIELDS (0x3Fu | (0x1FFu << 6) | (3u << 16) | (1u << 22) | (0xFu << 24))

/* APB prescaler encodings (PPRE: 0xx = /1, 100 = /2, 101 = /4, 110 = /8, 111 = /16). */
#define PPRE(div) ((div) == 2u ? 4u : (div) == 4u ? 5u : (div) == 8u ? 6u : (div) == 16u ? 7u : 0u)

/* Bounded waits: ~100 ms at 16 MHz, far beyond a PLL's lock time (~200 us). */
#define READY_SPINS 400000u

#ifndef BOARD_STM32F7 /* the F7's clock tree: stm32f7_clock.c */
static uint32_t apb_hz[3]; /* [1] = APB1, [2] = APB2 */

static int
wait_set(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    for (uint32_t i = 0; i < READY_SPINS; i++)
        if ((*reg & mask) == value)
            return 0;
    return -1;
}

/*
 * HSI -> PLL -> 168 MHz (see stm32f4_common.h). Two fallbacks, each leaving
 * board_cpu_hz true to the clock the core runs at:
 *  - The RCC reads HSIRDY clear although the chip runs from the HSI (what it
 *    does after reset): no RCC is modelled (QEMU's STM32F405 leaves it
 *    unimplemented). The emulator clocks the core at its nominal rate
 *    (168 MHz for netduinoplus2), which is BOARD_CPU_HZ: keep it.
 *  - The PLL does not lock or the switch does not take within the bound:
 *    stay on the 16 MHz HSI, all buses undivided.
 */
void
stm32f4_clock_tree_init(void)
{
    board_cpu_hz = BOARD_CPU_HZ;
    apb_hz[1] = BOARD_CPU_HZ / BOARD_APB1_DIV;
    apb_hz[2] = BOARD_CPU_HZ / BOARD_APB2_DIV;
    if (!(RCC_CR & CR_HSIRDY))
        return; /* emulator without an RCC model */

    board_cpu_hz = apb_hz[1] = apb_hz[2] = BOARD_HSI_HZ;
    RCC_APB1ENR |= APB1ENR_PWREN;
    (void)RCC_APB1ENR; /* the enable takes effect before PWR is touched */
    PWR_CR |= BOARD_PWR_CR_VOS;
    RCC_PLLCFGR = (RCC_PLLCFGR & ~PLLCFGR_FIELDS) | BOARD_PLL_M | (BOARD_PLL_N << 6) |
                  (((BOARD_PLL_P / 2u) - 1u) << 16) | (BOARD_PLL_Q << 24); /* SRC = HSI */
    RCC_CR |= CR_PLLON;
    if (wait_set(&RCC_CR, CR_PLLRDY, CR_PLLRDY) != 0)
        return;
    /* Wait states before the faster clock; read back as RM0090 3.5.1 asks. */
    FLASH_ACR = BOARD_FLASH_WAIT_STATES | ACR_PRFTEN | ACR_ICEN | ACR_DCEN;
    if (wait_set(&FLASH_ACR, 0xFu, BOARD_FLASH_WAIT_STATES) != 0)
        return;
    RCC_CFGR = (RCC_CFGR & ~((0xFu << 4) | (7u << 10) | (7u << 13))) |
               (PPRE(BOARD_APB1_DIV) << 10) | (PPRE(BOARD_APB2_DIV) << 13);
    RCC_CFGR = (RCC_CFGR & ~CFGR_SW_MASK) | CFGR_SW_PLL;
    if (wait_set(&RCC_CFGR, CFGR_SWS_MASK, CFGR_SWS_PLL) != 0) {
        RCC_CFGR &= ~((7u << 10) | (7u << 13) | CFGR_SW_MASK); /* back to HSI, /1 */
        return;
    }
    board_cpu_hz = BOARD_CPU_HZ;
    apb_hz[1] = BOARD_CPU_HZ / BOARD_APB1_DIV;
    apb_hz[2] = BOARD_CPU_HZ / BOARD_APB2_DIV;
}

uint32_t
stm32f4_apb_hz(unsigned bus)
{
    return apb_hz[bus == 2u ? 2 : 1];
}
#endif /* !BOARD_STM32F7 */

void
stm32f4_enable_apb(unsigned bus, unsigned bit)
{
    if (bus == 2u)
        RCC_APB2ENR |= 1u << bit;
    else
        RCC_APB1ENR |= 1u << bit;
    (void)RCC_APB1ENR; /* the enable takes effect before the block is touched */
}

void
stm32f4_gpio_mode(unsigned port, unsigned pin, unsigned mode, unsigned af, unsigned pull)
{
    uint32_t base = GPIO_BASE(port);

    RCC_AHB1ENR |= 1u << port;
    (void)RCC_AHB1ENR;
    REG32(base + 0x20 + 4u * (pin / 8u)) =
        (REG32(base + 0x20 + 4u * (pin / 8u)) & ~(0xFu << (4u * (pin % 8u)))) |
        (af << (4u * (pin % 8u)));
    REG32(base + 0x08) |= 2u << (2u * pin); /* OSPEEDR: fast */
    REG32(base + 0x0C) = (REG32(base + 0x0C) & ~(3u << (2u * pin))) | (pull << (2u * pin));
    REG32(base + 0x00) = (REG32(base + 0x00) & ~(3u << (2u * pin))) | (mode << (2u * pin));
}

#ifdef BOARD_LED_PORT
void
stm32f4_led_init(void)
{
    stm32f4_led_set(0);
    stm32f4_gpio_mode(BOARD_LED_PORT, BOARD_LED_PIN, GPIO_MODE_OUTPUT, 0, GPIO_PULL_NONE);
}

void
stm32f4_led_set(int on)
{
    /* BSRR: set in the low half, reset in the high half (atomic). */
    REG32(GPIO_BASE(BOARD_LED_PORT) + 0x18) =
        on ? (1u << BOARD_LED_PIN) : (1u << (BOARD_LED_PIN + 16));
}
#endif
