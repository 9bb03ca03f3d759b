/* The Zephyr port's UART link (devicetree chosen zephyr,shell-uart). */
#ifndef WASMBED_ZEPHYR_PORT_UART_H
#define WASMBED_ZEPHYR_PORT_UART_H

#include <stddef.h>
#include <stdint.h>

#include <zephyr/kernel.h>

/** Check the UART and enable its RX interrupt; every RX interrupt gives `rx_wake`. */
int port_uart_init(struct k_sem *rx_wake);

/** Take up to `cap` received bytes from the RX ring (one consumer: the command thread). */
size_t port_uart_read(uint8_t *buf, size_t cap);

/** Bytes the RX interrupt dropped because the ring was full, since boot. */
uint32_t port_uart_dropped(void);

/** Send one whole line; lines never interleave. */
void port_uart_write(const char *buf, size_t len);

#endif /* WASMBED_ZEPHYR_PORT_UART_H */
