/*
 * Diagnostics and exit for the agent images: no semihosting, no debugger
 * needed (a BKPT with none attached would lock the core). Diagnostic text
 * goes to the console UART as whole lines, which a gateway shows as console
 * output; an exit prints a line and resets the chip, so the agent announces
 * itself again (HELLO) instead of hanging.
 */
#include <stdio.h>
#include <string.h>

#include "board.h"
#include "cache.h"

#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)
#define AIRCR_VECTKEY (0x05FAu << 16)
#define AIRCR_SYSRESETREQ (1u << 2)

void
board_debug_puts(const char *s)
{
    size_t len = strlen(s);

    board_console_lock();
    board_uart_write(s, len);
    if (len == 0 || s[len - 1] != '\n')
        board_uart_write("\n", 1); /* never leave a line open before a protocol line */
    board_console_unlock();
}

void
board_exit(int code)
{
    char line[48];

    snprintf(line, sizeof(line), "baremetal: exit %d, resetting", code);
    board_debug_puts(line);
    cache_clean_data(); /* a reset discards dirty D-cache lines (Cortex-M7) */
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = AIRCR_VECTKEY | AIRCR_SYSRESETREQ;
    __asm volatile("dsb" ::: "memory");
    for (;;)
        board_wait_for_interrupt();
}
