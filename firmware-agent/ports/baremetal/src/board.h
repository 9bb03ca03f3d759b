/*
 * QEMU mps2-an386 board support: CMSDK UART0, SysTick clock, semihosting.
 */
#ifndef BAREMETAL_BOARD_H
#define BAREMETAL_BOARD_H

#include <stddef.h>
#include <stdint.h>

/** Core clock of the MPS2 FPGA images (SysTick runs from it). */
#define BOARD_CPU_HZ 25000000u
/** Nominal UART rate (QEMU does not pace it; real AN386 would). */
#define BOARD_UART_BAUD 115200u

/** Bring up the clock and UART0; interrupts are enabled on return. */
void board_init(void);

/**
 * RX bytes land in a ring buffer from the UART0 RX interrupt. Copy up to
 * `cap` of them into `buf`; returns the count (0 if none).
 */
size_t board_uart_read(uint8_t *buf, size_t cap);

/** Called from the UART0 RX interrupt after bytes were queued (e.g. to wake a thread). */
void board_uart_set_rx_hook(void (*hook)(void));

/** Called from the SysTick interrupt every millisecond (the scheduler's tick). */
void board_set_tick_hook(void (*hook)(uint32_t now_ms));

/** Bytes lost because the RX ring was full (never silently dropped). */
uint32_t board_uart_overruns(void);

/** Write bytes to UART0, polling the TX-full flag. */
void board_uart_write(const void *data, size_t len);

/** Milliseconds since boot (SysTick, wraps at 2^32). */
uint32_t board_now_ms(void);

/** Microseconds since boot (SysTick ms plus the current count). */
uint64_t board_now_us(void);

/** Sleep until the next interrupt (UART byte or SysTick). */
void board_wait_for_interrupt(void);

/** Print a diagnostic string on the emulator's console via semihosting. */
void board_debug_puts(const char *s);

/** End the emulation with an exit code via semihosting (never returns). */
void board_exit(int code) __attribute__((noreturn));

#endif /* BAREMETAL_BOARD_H */
