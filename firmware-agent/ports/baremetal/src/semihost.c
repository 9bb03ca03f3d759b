/*
 * ARM semihosting (QEMU -semihosting-config enable=on,target=native):
 * debug text on the emulator's console and exit with a code. Test firmwares
 * only (smoke, kernel self-test); the agent images use console_exit.c.
 */
#include <stdint.h>

#include "board.h"

#define SYS_WRITE0 0x04
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static uintptr_t
semihost_call(uintptr_t op, const void *arg)
{
    register uintptr_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;

    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void
board_debug_puts(const char *s)
{
    semihost_call(SYS_WRITE0, s);
}

void
board_exit(int code)
{
    const uintptr_t block[2] = { ADP_STOPPED_APPLICATION_EXIT, (uintptr_t)code };

    semihost_call(SYS_EXIT_EXTENDED, block);
    for (;;)
        board_wait_for_interrupt();
}
