/*
 * SysTick millisecond clock from the core clock (board_cpu_hz).
 */
#include <stdint.h>

#include "board.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define CSR_ENABLE (1u << 0)
#define CSR_TICKINT (1u << 1)
#define CSR_CLKSOURCE (1u << 2)
#define CSR_COUNTFLAG (1u << 16)


static volatile uint32_t ms_ticks;
static uint32_t ticks_per_ms; /* board_cpu_hz / 1000, fixed at init */
static void (*tick_hook)(uint32_t now_ms);

void
systick_irq(void)
{
    ms_ticks++;
    if (tick_hook)
        tick_hook(ms_ticks);
}

void
board_set_tick_hook(void (*hook)(uint32_t now_ms))
{
    tick_hook = hook;
}

void
board_clock_init(void)
{
    ticks_per_ms = board_cpu_hz / 1000u;
    SYST_RVR = ticks_per_ms - 1;
    SYST_CVR = 0;
    SYST_CSR = CSR_ENABLE | CSR_TICKINT | CSR_CLKSOURCE;
}

uint32_t
board_now_ms(void)
{
    return ms_ticks;
}

uint64_t
board_now_us(void)
{
    uint32_t ms, cvr;

    /* Re-read if a tick happened between the two reads. */
    do {
        ms = ms_ticks;
        cvr = SYST_CVR;
    } while (ms != ms_ticks);
    return (uint64_t)ms * 1000u + (ticks_per_ms - 1 - cvr) / (ticks_per_ms / 1000u);
}

void
board_wait_for_interrupt(void)
{
    __asm volatile("wfi" ::: "memory");
}
