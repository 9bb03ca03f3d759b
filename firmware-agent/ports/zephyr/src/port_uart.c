/*
 * The Zephyr port's UART link. The RX interrupt only moves bytes into a ring and wakes the
 * command thread, which hands them to the core; bytes a full ring cannot take and hardware
 * overruns are counted. TX sends a whole line under a mutex with uart_poll_out().
 */
#include <errno.h>

#include <zephyr/device.h>
#include <zephyr/devicetree.h>
#include <zephyr/drivers/uart.h>
#include <zephyr/kernel.h>
#include <zephyr/sys/ring_buffer.h>

#include "port_uart.h"

/* prj.conf options this file needs (without them it would build and fail at run time) */
#if !defined(CONFIG_SERIAL) || !defined(CONFIG_UART_INTERRUPT_DRIVEN)
#error "prj.conf: CONFIG_SERIAL=y and CONFIG_UART_INTERRUPT_DRIVEN=y (the link's RX interrupt)"
#endif
#if !defined(CONFIG_RING_BUFFER)
#error "prj.conf: CONFIG_RING_BUFFER=y (the RX ring)"
#endif

#define PORT_UART_NODE DT_CHOSEN(zephyr_shell_uart)

static const struct device *const port_uart_dev = DEVICE_DT_GET(PORT_UART_NODE);

RING_BUF_DECLARE(port_uart_rx_ring, CONFIG_WASMBED_RX_RING_SIZE);
static struct k_spinlock port_uart_rx_spin; /* ring and counter: ISR vs command thread */
static uint32_t port_uart_rx_dropped;
static struct k_sem *port_uart_rx_wake;
static K_MUTEX_DEFINE(port_uart_tx_lock);

static void port_uart_isr(const struct device *dev, void *user_data)
{
	uint8_t buf[32];
	int n;

	ARG_UNUSED(user_data);
	if (!uart_irq_update(dev))
		return;
	if (uart_err_check(dev) & UART_ERROR_OVERRUN) {
		/* the hardware lost at least one byte (uart_err_check also clears the flag) */
		k_spinlock_key_t key = k_spin_lock(&port_uart_rx_spin);

		port_uart_rx_dropped++;
		k_spin_unlock(&port_uart_rx_spin, key);
	}
	if (!uart_irq_rx_ready(dev))
		return;
	while ((n = uart_fifo_read(dev, buf, sizeof(buf))) > 0) {
		k_spinlock_key_t key = k_spin_lock(&port_uart_rx_spin);
		uint32_t put = ring_buf_put(&port_uart_rx_ring, buf, (uint32_t)n);

		port_uart_rx_dropped += (uint32_t)n - put;
		k_spin_unlock(&port_uart_rx_spin, key);
	}
	k_sem_give(port_uart_rx_wake);
}

int port_uart_init(struct k_sem *rx_wake)
{
	int rc;

	if (!device_is_ready(port_uart_dev))
		return -ENODEV;
	port_uart_rx_wake = rx_wake;
	rc = uart_irq_callback_user_data_set(port_uart_dev, port_uart_isr, NULL);
	if (rc)
		return rc;
	uart_irq_rx_enable(port_uart_dev);
	return 0;
}

size_t port_uart_read(uint8_t *buf, size_t cap)
{
	k_spinlock_key_t key = k_spin_lock(&port_uart_rx_spin);
	uint32_t n = ring_buf_get(&port_uart_rx_ring, buf, (uint32_t)cap);

	k_spin_unlock(&port_uart_rx_spin, key);
	return n;
}

uint32_t port_uart_dropped(void)
{
	k_spinlock_key_t key = k_spin_lock(&port_uart_rx_spin);
	uint32_t n = port_uart_rx_dropped;

	k_spin_unlock(&port_uart_rx_spin, key);
	return n;
}

void port_uart_write(const char *buf, size_t len)
{
	k_mutex_lock(&port_uart_tx_lock, K_FOREVER);
	for (size_t i = 0; i < len; i++)
		uart_poll_out(port_uart_dev, (unsigned char)buf[i]);
	k_mutex_unlock(&port_uart_tx_lock);
}
