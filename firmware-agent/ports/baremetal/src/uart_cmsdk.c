/*
 * ARM CMSDK APB UART0 (0x40004000): RX by interrupt into a ring buffer,
 * TX polled. The ISR only moves bytes; overflows are counted.
 */
#include <stdint.h>

#include "board.h"

#define UART0_BASE 0x40004000u
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
#define UART0_RX_IRQN 0

/* Power of two; 8 KiB holds more than one 4 KiB chunk plus its line. */
#define RX_RING_SIZE 8192u

static volatile uint8_t rx_ring[RX_RING_SIZE];
static volatile uint32_t rx_head; /* written by the ISR only */
static volatile uint32_t rx_tail; /* written by the reader only */
static volatile uint32_t rx_overruns;
static void (*rx_hook)(void);

void
board_uart_set_rx_hook(void (*hook)(void))
{
    rx_hook = hook;
}

void
uart0_rx_irq(void)
{
    UART_INTSTATUS = INT_RX;
    while (UART_STATE & STATE_RX_FULL) {
        uint8_t byte = (uint8_t)UART_DATA;
        uint32_t head = rx_head;

        if (head - rx_tail >= RX_RING_SIZE) {
            rx_overruns++;
            continue;
        }
        rx_ring[head & (RX_RING_SIZE - 1)] = byte;
        rx_head = head + 1;
    }
    if (rx_hook)
        rx_hook();
}

void
board_uart_init(void)
{
    UART_BAUDDIV = BOARD_CPU_HZ / BOARD_UART_BAUD;
    UART_CTRL = CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INTEN;
    NVIC_ISER0 = 1u << UART0_RX_IRQN;
}

size_t
board_uart_read(uint8_t *buf, size_t cap)
{
    uint32_t tail = rx_tail, head = rx_head;
    size_t n = 0;

    while (tail != head && n < cap)
        buf[n++] = rx_ring[tail++ & (RX_RING_SIZE - 1)];
    rx_tail = tail;
    return n;
}

uint32_t
board_uart_overruns(void)
{
    return rx_overruns;
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
