/*
 * The console UART's RX ring, shared by the UART drivers: their RX
 * interrupt only pushes bytes (overflows are counted) and then notifies.
 */
#ifndef BAREMETAL_UART_RING_H
#define BAREMETAL_UART_RING_H

#include <stdint.h>

/** Queue one received byte (RX interrupt only). */
void uart_ring_push(uint8_t byte);

/** End of an RX interrupt: run the hook set by board_uart_set_rx_hook(). */
void uart_ring_notify(void);

#endif /* BAREMETAL_UART_RING_H */
