/*
 * RX ring of the console UART: single producer (the RX interrupt), single
 * consumer (board_uart_read). Overflows are counted, never silent.
 */
#include <stdint.h>

#include "board.h"
#include "uart_ring.h"

/*
 * Power of two. The command thread (highest priority) drains the ring as bytes
 * arrive and chunks go straight into the module buffer, so the ring need not
 * hold a whole CHUNK (16 KiB by default): it only covers the command thread's
 * longest pause (a chunk's CRC, a module load), when no bytes are in flight.
 */
#ifdef AGENT_RX_RING_BYTES
#define RX_RING_SIZE AGENT_RX_RING_BYTES /* the board header's budget */
#else
#define RX_RING_SIZE 8192u
#endif

static volatile uint8_t rx_ring[RX_RING_SIZE] BOARD_CPU_ONLY_BSS;
static volatile uint32_t rx_head; /* written by the ISR only */
static volatile uint32_t rx_tail; /* written by the reader only */
static volatile uint32_t rx_overruns;
static void (*rx_hook)(void);

void
uart_ring_push(uint8_t byte)
{
    uint32_t head = rx_head;

    if (head - rx_tail >= RX_RING_SIZE) {
        rx_overruns++;
        return;
    }
    rx_ring[head & (RX_RING_SIZE - 1)] = byte;
    rx_head = head + 1;
}

void
uart_ring_notify(void)
{
    if (rx_hook)
        rx_hook();
}

void
board_uart_set_rx_hook(void (*hook)(void))
{
    rx_hook = hook;
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
