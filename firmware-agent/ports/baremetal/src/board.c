/*
 * Board bring-up and the newlib hooks the firmware needs.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/types.h>

#include "board.h"
#include "kern.h"

void board_uart_init(void);
void board_clock_init(void);
#ifdef BOARD_STM32F4
#include "stm32f4.h"
#endif

extern char end, __heap_limit;

uint32_t board_cpu_hz = BOARD_CPU_HZ;

void
board_led_set(int on)
{
#if defined(BOARD_LED_FPGAIO)
    *(volatile uint32_t *)BOARD_LED_FPGAIO = on ? 1u : 0u;
#elif defined(BOARD_LED_PORT)
    stm32f4_led_set(on);
#else
    (void)on; /* no user LED on this board */
#endif
}

/*
 * Order matters for Renode's STM32 UART, which drops input while the UART is
 * disabled: the receiver is on (and its interrupt enabled) when this returns,
 * before the agent announces itself with HELLO.
 */
void
board_init(void)
{
#ifdef BOARD_STM32F4
    stm32f4_clock_tree_init(); /* sets board_cpu_hz */
#endif
    board_clock_init();
#if defined(BOARD_STM32F4) && defined(BOARD_LED_PORT)
    stm32f4_led_init();
#endif
    board_uart_init();
    __asm volatile("cpsie i" ::: "memory");
}

static struct kern_mutex console_mutex;

static int
in_handler_mode(void)
{
    uint32_t ipsr;

    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    return (ipsr & 0x1FFu) != 0;
}

void
board_console_lock(void)
{
    if (!in_handler_mode())
        kern_mutex_lock(&console_mutex);
}

void
board_console_unlock(void)
{
    if (!in_handler_mode())
        kern_mutex_unlock(&console_mutex);
}

void
board_console_write(const void *data, size_t len)
{
    board_console_lock();
    board_uart_write(data, len);
    board_console_unlock();
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
