/*
 * STM32F7 clock tree (RM0385 "Reset and clock control", "Power controller"): HSI -> PLL ->
 * BOARD_CPU_HZ with the over-drive mode above 180 MHz, from the board header's facts. The F4
 * helpers (stm32f4.c: APB enables, GPIO, LED) serve the F7 unchanged; this file replaces their
 * clock tree, which differs in PWR (CR1/CSR1, over-drive) and FLASH_ACR (ART, no I/D caches: the
 * core's L1 caches, cache.c, take their place).
 */
#include <stdint.h>

#include "board.h"
#include "stm32f4.h"

#define RCC_CR REG32(RCC_BASE + 0x00)
#define RCC_PLLCFGR REG32(RCC_BASE + 0x04)
#define RCC_CFGR REG32(RCC_BASE + 0x08)
#define RCC_APB1ENR REG32(RCC_BASE + 0x40)
#define RCC_DCKCFGR2 REG32(RCC_BASE + 0x90)
#define PWR_CR1 REG32(0x40007000u)
#define PWR_CSR1 REG32(0x40007004u)
#define FLASH_ACR REG32(0x40023C00u)

#define CR_HSIRDY (1u << 1)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define APB1ENR_PWREN (1u << 28)
#define PWR_CR1_VOS (3u << 14)
#define PWR_CR1_ODEN (1u << 16)
#define PWR_CR1_ODSWEN (1u << 17)
#define PWR_CSR1_ODRDY (1u << 16)
#define PWR_CSR1_ODSWRDY (1u << 17)
#define ACR_PRFTEN (1u << 8)
#define ACR_ARTEN (1u << 9)
#define CFGR_SW_MASK 3u
#define CFGR_SW_PLL 2u
#define CFGR_SWS_MASK (3u << 2)
#define CFGR_SWS_PLL (2u << 2)

/* PLLCFGR fields written here: M[5:0] N[14:6] P[17:16] SRC[22] Q[27:24]. */
#define PLLCFGR_FIELDS (0x3Fu | (0x1FFu << 6) | (3u << 16) | (1u << 22) | (0xFu << 24))
/* APB prescaler encodings (PPRE: 0xx = /1, 100 = /2, 101 = /4, 110 = /8, 111 = /16). */
#define PPRE(div) ((div) == 2u ? 4u : (div) == 4u ? 5u : (div) == 8u ? 6u : (div) == 16u ? 7u : 0u)

/* Bounded waits: ~100 ms at 16 MHz, far beyond a PLL's lock time or the over-drive ramp. */
#define READY_SPINS 400000u

static uint32_t apb_hz[3]; /* [1] = APB1, [2] = APB2 */

static int
wait_set(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    for (uint32_t i = 0; i < READY_SPINS; i++)
        if ((*reg & mask) == value)
            return 0;
    return -1;
}

static void
stay_on_hsi(void)
{
    RCC_CR &= ~CR_PLLON;
    PWR_CR1 &= ~(PWR_CR1_ODSWEN | PWR_CR1_ODEN);
}

/*
 * RM0385 "Entering Over-drive mode": on the HSI, PLL configured and on, ODEN and wait for ODRDY,
 * ODSWEN and wait for ODSWRDY, then wait states and bus prescalers, PLL locked, switch. Zephyr's
 * STM32 clock driver does the same above 180 MHz on F7 parts. Any step that does not complete
 * within its bound leaves the core on the 16 MHz HSI with every bus undivided, and board_cpu_hz
 * true to it (the UART still reaches 115200 from it).
 */
void
stm32f4_clock_tree_init(void)
{
    board_cpu_hz = apb_hz[1] = apb_hz[2] = BOARD_HSI_HZ;
    if (!(RCC_CR & CR_HSIRDY))
        return; /* not an F7 as RM0385 describes it (the HSI is on after every reset) */

    RCC_APB1ENR |= APB1ENR_PWREN;
    (void)RCC_APB1ENR; /* the enable takes effect before PWR is touched */
    /* USART1-8 kernel clocks: the APB clocks (DCKCFGR2 UARTxSEL = 00, the reset value, made
       explicit: stm32f4_apb_hz() is what the UART divides). */
    RCC_DCKCFGR2 &= ~0xFFFFu;
    PWR_CR1 = (PWR_CR1 & ~PWR_CR1_VOS) | BOARD_PWR_CR_VOS; /* only while the PLL is off */
    RCC_PLLCFGR = (RCC_PLLCFGR & ~PLLCFGR_FIELDS) | BOARD_PLL_M | (BOARD_PLL_N << 6) |
                  (((BOARD_PLL_P / 2u) - 1u) << 16) | (BOARD_PLL_Q << 24); /* SRC = HSI */
    RCC_CR |= CR_PLLON;
#if BOARD_CPU_HZ > 180000000
    PWR_CR1 |= PWR_CR1_ODEN;
    if (wait_set(&PWR_CSR1, PWR_CSR1_ODRDY, PWR_CSR1_ODRDY) != 0) {
        stay_on_hsi();
        return;
    }
    PWR_CR1 |= PWR_CR1_ODSWEN;
    if (wait_set(&PWR_CSR1, PWR_CSR1_ODSWRDY, PWR_CSR1_ODSWRDY) != 0) {
        stay_on_hsi();
        return;
    }
#endif
    /* Wait states before the faster clock, read back (RM0385 "Increasing the CPU frequency"). */
    FLASH_ACR = BOARD_FLASH_WAIT_STATES | ACR_PRFTEN | ACR_ARTEN;
    if (wait_set(&FLASH_ACR, 0xFu, BOARD_FLASH_WAIT_STATES) != 0 ||
        wait_set(&RCC_CR, CR_PLLRDY, CR_PLLRDY) != 0) {
        stay_on_hsi();
        return;
    }
    RCC_CFGR = (RCC_CFGR & ~((0xFu << 4) | (7u << 10) | (7u << 13))) |
               (PPRE(BOARD_APB1_DIV) << 10) | (PPRE(BOARD_APB2_DIV) << 13);
    RCC_CFGR = (RCC_CFGR & ~CFGR_SW_MASK) | CFGR_SW_PLL;
    if (wait_set(&RCC_CFGR, CFGR_SWS_MASK, CFGR_SWS_PLL) != 0) {
        RCC_CFGR &= ~((7u << 10) | (7u << 13) | CFGR_SW_MASK); /* back to HSI, /1 */
        stay_on_hsi();
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
