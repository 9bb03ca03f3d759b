/*
 * ARM CMSDK APB UART0 (0x40004000, mps2-an386): RX by interrupt into the
 * ring (uart_ring.c), TX polled.
 */
#include <stdint.h>

#include "board.h"
#include "uart_ring.h"

#define UART0_BASE BOARD_UART_BASE
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08))
#define UART_INTSTATUS (*(volatile uint32_t *)(UART0_BASE + 0x0C))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10))

#define STATE_TX_FULL (1u << 0)
#define STATE_RX_FULL (1u << 1)
#define CTRL_TX_EN (1u << 0)
#define CTRL_RX_EN (1u << 1)
#define CTRL_RX_INTEN (1u << 3)
#define INT_RX (1u << 1)

#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)

void
uart0_rx_irq(void)
{
    UART_INTSTATUS = INT_RX;
    while (UART_STATE & STATE_RX_FULL)
        uart_ring_push((uint8_t)UART_DATA);
    uart_ring_notify();
}

void
board_uart_init(void)
{
    UART_BAUDDIV = board_cpu_hz / BOARD_UART_BAUD;
    UART_CTRL = CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INTEN;
    NVIC_ISER0 = 1u << BOARD_UART_IRQN;
}

void
board_uart_write(const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len--) {
        while (UART_STATE & STATE_TX_FULL)
            ;
        UART_DATA = *p++;
    }
}
