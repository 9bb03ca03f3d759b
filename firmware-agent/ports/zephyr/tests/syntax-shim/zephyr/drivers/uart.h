/* SYNTAX-CHECK SHIM, not Zephyr: see ../../README.md. Interrupt-driven and polled UART API. */
#ifndef SHIM_ZEPHYR_DRIVERS_UART_H
#define SHIM_ZEPHYR_DRIVERS_UART_H

#include <stddef.h>
#include <stdint.h>

#include <zephyr/device.h>

enum uart_rx_stop_reason {
	UART_ERROR_OVERRUN = (1 << 0),
	UART_ERROR_PARITY = (1 << 1),
	UART_ERROR_FRAMING = (1 << 2),
	UART_BREAK = (1 << 3),
};

typedef void (*uart_irq_callback_user_data_t)(const struct device *dev, void *user_data);

int uart_irq_callback_user_data_set(const struct device *dev, uart_irq_callback_user_data_t cb,
				    void *user_data);
int uart_err_check(const struct device *dev);
int uart_irq_update(const struct device *dev);
int uart_irq_rx_ready(const struct device *dev);
int uart_fifo_read(const struct device *dev, uint8_t *rx_data, const int size);
void uart_irq_rx_enable(const struct device *dev);
void uart_poll_out(const struct device *dev, unsigned char out_char);

#endif
