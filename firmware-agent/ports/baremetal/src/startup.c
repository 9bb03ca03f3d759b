/*
 * Reset handler and vector table for the Cortex-M4F and Cortex-M7 boards (see board.h).
 */
#include <stdint.h>

#include "board.h"
#include "cache.h"
#include "mpu.h"

extern uint32_t __data_start, __data_end, __data_load;
extern uint32_t __bss_start, __bss_end;
extern uint32_t __ccm_start, __ccm_end; /* CPU-only RAM (equal where there is none) */
extern uint32_t __stack_top;
extern uint32_t __vectors_start; /* the vector table below, first in flash */

int main(void);
void uart0_rx_irq(void);
void systick_irq(void);
void kern_pendsv_irq(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)

/* Unexpected exceptions end the emulation with a distinctive code, unless the image has its
   own board_cpu_fault (the agent: src/agent_fault.c). */
__attribute__((weak)) void
board_cpu_fault(uint32_t *frame, uint32_t exc_return)
{
    (void)frame;
    (void)exc_return;
    board_debug_puts("baremetal: unexpected exception\n");
    board_exit(70);
}

/* Hard, bus and usage faults (and NMI, SVCall): the stacked frame and EXC_RETURN to
   board_cpu_fault, which may return (to the frame's possibly rewritten pc). */
__attribute__((naked)) static void
fault_handler(void)
{
    __asm volatile("tst lr, #4\n"
                   "ite eq\n"
                   "mrseq r0, msp\n"
                   "mrsne r0, psp\n"
                   "mov r1, lr\n"
                   "b board_cpu_fault\n");
}

/* The loops below must stay loops: they run before .data/.bss exist, so
   they are built with -fno-tree-loop-distribute-patterns (see CMake). */
void
Reset_Handler(void)
{
    uint32_t *src = &__data_load, *dst = &__data_start;

    while (dst < &__data_end)
        *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end; dst++)
        *dst = 0;
    for (dst = &__ccm_start; dst < &__ccm_end; dst++)
        *dst = 0;

    /* Our table, wherever the boot alias pointed (flash at 0x0 on an STM32). */
    SCB_VTOR = (uint32_t)&__vectors_start;
    /* Full access to CP10/CP11 (the FPU) before any float code runs. */
    SCB_CPACR |= (0xFu << 20);
    __asm volatile("dsb\n isb" ::: "memory");
    /* Cortex-M7 boards: I- and D-cache on (cache.c; nothing on the M4 boards). */
    cache_enable();

    board_exit(main());
}

#define IRQ_COUNT 96 /* STM32F405 has 82; MPS2 32; the F746 98, only the UART (39) is enabled */

typedef void (*vector_fn)(void);

__attribute__((section(".vectors"), used)) static const vector_fn
    vectors[16 + IRQ_COUNT] = {
        [0] = (vector_fn)&__stack_top,
        [1] = Reset_Handler,
        [2] = fault_handler,  /* NMI */
        [3] = fault_handler,  /* HardFault */
        [4] = mpu_memmanage_irq, /* MemManage (mpu.c) */
        [5] = fault_handler,  /* BusFault */
        [6] = fault_handler,  /* UsageFault */
        [11] = fault_handler, /* SVCall */
        [14] = kern_pendsv_irq, /* PendSV: context switch (kern.c) */
        [15] = systick_irq,
        [16 + BOARD_UART_IRQN] = uart0_rx_irq, /* console UART RX */
    };
