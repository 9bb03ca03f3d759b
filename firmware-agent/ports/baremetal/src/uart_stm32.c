/*
 * STM32F4 USART1 (0x40011000, netduinoplus2's first serial port in QEMU):
 * RX by interrupt into the ring (uart_ring.c), TX polled. The clock tree is
 * left at reset values except the USART1 clock enable: QEMU does not model
 * the RCC gating, a real board would also need its pins muxed (PA9/PA10 AF7
 * on an F405; the Netduino's console is elsewhere) and the PLL set up.
 */
#include <stdint.h>

#include "board.h"
#include "uart_ring.h"

#define RCC_APB2ENR (*(volatile uint32_t *)0x40023844u)
#define RCC_APB2ENR_USART1EN (1u << 4)

#define USART1_BASE 0x40011000u
#define USART_SR (*(volatile uint32_t *)(USART1_BASE + 0x00))
#define USART_DR (*(volatile uint32_t *)(USART1_BASE + 0x04))
#define USART_BRR (*(volatile uint32_t *)(USART1_BASE + 0x08))
#define USART_CR1 (*(volatile uint32_t *)(USART1_BASE + 0x0C))

#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define SR_ORE (1u << 3)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_RXNEIE (1u << 5)
#define CR1_UE (1u << 13)

#define NVIC_ISER(n) (*(volatile uint32_t *)(0xE000E100u + 4u * (n)))

void
uart0_rx_irq(void)
{
    uint32_t sr;

    /* Reading SR then DR clears RXNE (and an overrun flag). */
    while ((sr = USART_SR) & (SR_RXNE | SR_ORE))
        uart_ring_push((uint8_t)USART_DR);
    uart_ring_notify();
}

void
board_uart_init(void)
{
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    USART_BRR = BOARD_CPU_HZ / 2u / BOARD_UART_BAUD; /* APB2 = HCLK/2 */
    USART_CR1 = CR1_UE | CR1_TE | CR1_RE | CR1_RXNEIE;
    NVIC_ISER(BOARD_UART_IRQN / 32u) = 1u << (BOARD_UART_IRQN % 32u);
}

void
board_uart_write(const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len--) {
        while (!(USART_SR & SR_TXE))
            ;
        USART_DR = *p++;
    }
}
