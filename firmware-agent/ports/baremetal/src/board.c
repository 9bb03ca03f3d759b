/*
 * Board bring-up and the newlib hooks the firmware needs.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/types.h>

#include "board.h"

void board_uart_init(void);
void board_clock_init(void);

extern char end, __heap_limit;

#ifndef BOARD_STM32F405
/* FPGA IO LED register of the MPS2 images (bit 0 = LED0). */
#define FPGAIO_LED (*(volatile uint32_t *)0x40028000u)
#endif

void
board_led_set(int on)
{
#ifdef BOARD_STM32F405
    (void)on; /* PA10 on the Netduino Plus 2; QEMU models no STM32F4 GPIO */
#else
    FPGAIO_LED = on ? 1u : 0u;
#endif
}

void
board_init(void)
{
    board_clock_init();
    board_uart_init();
    __asm volatile("cpsie i" ::: "memory");
}

/* newlib's heap: bounded by the linker script, never into the stack. */
void *
_sbrk(ptrdiff_t incr)
{
    static char *brk = &end;
    char *prev = brk;

    if (incr > &__heap_limit - brk || incr < &end - brk) {
        errno = ENOMEM;
        return (void *)-1;
    }
    brk += incr;
    return prev;
}
