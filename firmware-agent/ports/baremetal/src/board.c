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
