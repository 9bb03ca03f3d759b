/* Shared declarations for Wasmbed example modules: export/import helpers and the agent natives. */
#ifndef WASMBED_MODULE_H
#define WASMBED_MODULE_H

#define WB_EXPORT(name) __attribute__((export_name(name)))
#define WB_IMPORT(name) __attribute__((import_module("env"), import_name(name)))

/** Toggles the board LED, then sleeps 1000 ms (legacy behaviour). */
WB_IMPORT("gpio_toggle") void gpio_toggle(void);
/** LED on, sleep `ms`, LED off. */
WB_IMPORT("led_toggle") void led_toggle(int ms);
/** Prints the NUL-terminated string at `str` as a console line. */
WB_IMPORT("uart_print") void uart_print(const char *str);
/** Returns 1 once STOP was asked for this module's slot. */
WB_IMPORT("should_stop") int should_stop(void);
/** Sleeps `ms` milliseconds; returns early when STOP is asked. */
WB_IMPORT("delay_ms") void delay_ms(int ms);
/** Emits `LOG module_id=<id> msg="..."` with `len` bytes at `msg`. */
WB_IMPORT("log") void wb_log(const char *msg, int len);

#endif
