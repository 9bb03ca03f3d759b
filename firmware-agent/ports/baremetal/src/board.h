/*
 * Board support: clock tree, one console UART (RX by interrupt), SysTick
 * clock, user LED, and the console/exit hooks. Each board's facts live in one
 * header under boards/ (CMakeLists.txt passes BOARD_HEADER for the board
 * selected with BAREMETAL_BOARD); the rest of the port reads only them.
 */
#ifndef BAREMETAL_BOARD_H
#define BAREMETAL_BOARD_H

#include <stddef.h>
#include <stdint.h>

#ifndef BOARD_HEADER
#define BOARD_HEADER "boards/mps2_an386.h"
#endif
/* The board's facts (name, clock, UART, pins, memory, budget, AOT target). */
#include BOARD_HEADER

/** Nominal UART rate. */
#define BOARD_UART_BAUD 115200u

/**
 * Placement of large zero-initialised buffers that only the CPU touches
 * (thread stacks, the RX ring): a board's CPU-only RAM (netduinoplus2), which
 * keeps the main SRAM for WAMR's pool. Plain .bss elsewhere.
 */
#ifdef BOARD_CCM_LENGTH
#define BOARD_CPU_ONLY_BSS __attribute__((section(".ccm_bss")))
#else
#define BOARD_CPU_ONLY_BSS
#endif

/** Core clock (HCLK, SysTick) in Hz, set by board_init(). */
extern uint32_t board_cpu_hz;

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

/** Drive the board's user LED (no-op where the emulator models none). */
void board_led_set(int on);

/** Milliseconds since boot (SysTick, wraps at 2^32). */
uint32_t board_now_ms(void);

/** Microseconds since boot (SysTick ms plus the current count). */
uint64_t board_now_us(void);

/** Sleep until the next interrupt (UART byte or SysTick). */
void board_wait_for_interrupt(void);

/**
 * Write bytes to the console UART as one unit: never interleaved with another
 * board_console_write() (a kernel mutex in thread mode; direct in handler
 * mode and before the kernel runs).
 */
void board_console_write(const void *data, size_t len);

/** Take/release the console (recursive) to write several pieces as one line. */
void board_console_lock(void);
void board_console_unlock(void);

/**
 * Diagnostic text. Agent images (console_exit.c): console lines on the UART
 * (a line is ended if the text does not end it). Test firmwares (semihost.c):
 * the emulator's semihosting console.
 */
void board_debug_puts(const char *s);

/**
 * A CPU fault (hard, bus, usage or memory management fault), called in handler mode with the
 * stacked exception frame (r0-r3, r12, lr, pc, xpsr) and EXC_RETURN. It may return: the
 * exception returns to the frame as it left it (the agent redirects a faulted job thread,
 * src/agent_fault.c). The default (startup.c, weak) prints a line and calls board_exit(70).
 */
void board_cpu_fault(uint32_t *frame, uint32_t exc_return);

/**
 * End with a code (never returns). Agent images: a console line, then a
 * system reset (the board announces itself again). Test firmwares: the
 * emulator exits with the code via semihosting.
 */
void board_exit(int code) __attribute__((noreturn));

#endif /* BAREMETAL_BOARD_H */
