/*
 * Board support: one console UART (RX by interrupt), SysTick clock,
 * semihosting. Boards: QEMU mps2-an386 (default: CMSDK UART0) and QEMU
 * netduinoplus2 (STM32F405, BOARD_STM32F405: USART1); CMakeLists.txt
 * defines the BOARD_* values of the one selected with BAREMETAL_BOARD.
 */
#ifndef BAREMETAL_BOARD_H
#define BAREMETAL_BOARD_H

#include <stddef.h>
#include <stdint.h>

#ifndef BOARD_NAME
/** Board name (HELLO device_id=, INFO board=). */
#define BOARD_NAME "mps2-an386"
#endif
#ifndef BOARD_CPU_HZ
/** Core clock (SysTick runs from it): 25 MHz on the MPS2 FPGA images. */
#define BOARD_CPU_HZ 25000000u
#endif
#ifndef BOARD_UART_IRQN
/** NVIC interrupt number of the console UART's RX interrupt. */
#define BOARD_UART_IRQN 0
#endif
/** Nominal UART rate (QEMU does not pace it; a real board would). */
#define BOARD_UART_BAUD 115200u

/**
 * Placement of large zero-initialised buffers that only the CPU touches
 * (thread stacks, the RX ring): the STM32F405's 64 KiB CCM RAM, which keeps
 * the 128 KiB main SRAM for WAMR's pool. Plain .bss elsewhere.
 */
#ifdef BOARD_STM32F405
#define BOARD_CPU_ONLY_BSS __attribute__((section(".ccm_bss")))
#else
#define BOARD_CPU_ONLY_BSS
#endif

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

/** Print a diagnostic string on the emulator's console via semihosting. */
void board_debug_puts(const char *s);

/** End the emulation with an exit code via semihosting (never returns). */
void board_exit(int code) __attribute__((noreturn));

#endif /* BAREMETAL_BOARD_H */
