/*
 * STM32F7 USART console (RM0385 "Universal synchronous receiver transmitter"; the NUCLEO-F746ZG's
 * USART3, the ST-LINK virtual COM port): RX by interrupt into the ring (uart_ring.c), TX polled,
 * 115200 8N1 from the APB clock reached. Not the F4's USART (uart_stm32.c): status in ISR, data in
 * RDR/TDR, errors cleared by writing ICR (reading the data does not clear an overrun here, so an
 * uncleared ORE would keep the interrupt pending forever), CR1 with UE in bit 0.
 */
#include <stdint.h>

#include "board.h"
#include "stm32f4.h"
#include "uart_ring.h"

#define USART_CR1 REG32(BOARD_UART_BASE + 0x00)
#define USART_CR2 REG32(BOARD_UART_BASE + 0x04)
#define USART_CR3 REG32(BOARD_UART_BASE + 0x08)
#define USART_BRR REG32(BOARD_UART_BASE + 0x0C)
#define USART_ISR REG32(BOARD_UART_BASE + 0x1C)
#define USART_ICR REG32(BOARD_UART_BASE + 0x20)
#define USART_RDR REG32(BOARD_UART_BASE + 0x24)
#define USART_TDR REG32(BOARD_UART_BASE + 0x28)

#define CR1_UE (1u << 0)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_RXNEIE (1u << 5)
#define ISR_PE (1u << 0)
#define ISR_FE (1u << 1)
#define ISR_NF (1u << 2)
#define ISR_ORE (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TXE (1u << 7)
/* ICR: PECF, FECF, NCF, ORECF in the ISR flags' bit positions. */
#define ISR_ERRORS (ISR_PE | ISR_FE | ISR_NF | ISR_ORE)

#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n))

void
uart0_rx_irq(void)
{
    uint32_t isr;

    /* Reading RDR clears RXNE. Errors are cleared in ICR: an overrun lost bytes the ring never
       saw (the peer's CRC and resend catch them), a framing or noise error's byte is kept. */
    while ((isr = USART_ISR) & (ISR_RXNE | ISR_ERRORS)) {
        if (isr & ISR_ERRORS)
            USART_ICR = isr & ISR_ERRORS;
        if (isr & ISR_RXNE)
            uart_ring_push((uint8_t)USART_RDR);
    }
    uart_ring_notify();
}

void
board_uart_init(void)
{
    uint32_t pclk;

    stm32f4_enable_apb(BOARD_UART_APB, BOARD_UART_RCC_BIT);
    stm32f4_gpio_mode(BOARD_UART_PORT, BOARD_UART_TX_PIN, GPIO_MODE_AF, BOARD_UART_AF,
                      GPIO_PULL_NONE);
    /* RX idles high; the pull-up keeps an unconnected line from reading noise. */
    stm32f4_gpio_mode(BOARD_UART_PORT, BOARD_UART_RX_PIN, GPIO_MODE_AF, BOARD_UART_AF,
                      GPIO_PULL_UP);
    pclk = stm32f4_apb_hz(BOARD_UART_APB);
    USART_CR1 = 0; /* UE clear: BRR and the frame format may be written */
    USART_CR2 = 0; /* 1 stop bit */
    USART_CR3 = 0; /* no flow control, no DMA */
    /* Oversampling by 16: BRR = USARTDIV = pclk / baud, rounded (48 MHz: 417, 0.08 % off). */
    USART_BRR = (pclk + BOARD_UART_BAUD / 2u) / BOARD_UART_BAUD;
    USART_ICR = ISR_ERRORS;
    USART_CR1 = CR1_UE | CR1_TE | CR1_RE | CR1_RXNEIE; /* 8 data bits, no parity */
    NVIC_ISER(BOARD_UART_IRQN / 32u) = 1u << (BOARD_UART_IRQN % 32u);
}

void
board_uart_write(const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len--) {
        while (!(USART_ISR & ISR_TXE))
            ;
        USART_TDR = *p++;
    }
}
