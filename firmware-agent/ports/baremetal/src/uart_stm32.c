/*
 * STM32F4 USART console (the board header names it: USART2 on the NUCLEO and
 * Discovery boards, USART1 on netduinoplus2): RX by interrupt into the ring
 * (uart_ring.c), TX polled, 115200 8N1 from the APB clock actually reached.
 */
#include <stdint.h>

#include "board.h"
#include "stm32f4.h"
#include "uart_ring.h"

#define USART_SR REG32(BOARD_UART_BASE + 0x00)
#define USART_DR REG32(BOARD_UART_BASE + 0x04)
#define USART_BRR REG32(BOARD_UART_BASE + 0x08)
#define USART_CR1 REG32(BOARD_UART_BASE + 0x0C)

#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define SR_ORE (1u << 3)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_RXNEIE (1u << 5)
#define CR1_UE (1u << 13)

#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n))

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
    uint32_t pclk;

    stm32f4_enable_apb(BOARD_UART_APB, BOARD_UART_RCC_BIT);
    stm32f4_gpio_mode(BOARD_UART_PORT, BOARD_UART_TX_PIN, GPIO_MODE_AF, BOARD_UART_AF,
                      GPIO_PULL_NONE);
    /* RX idles high; the pull-up keeps an unconnected line from reading noise. */
    stm32f4_gpio_mode(BOARD_UART_PORT, BOARD_UART_RX_PIN, GPIO_MODE_AF, BOARD_UART_AF,
                      GPIO_PULL_UP);
    pclk = stm32f4_apb_hz(BOARD_UART_APB);
    /* Oversampling by 16: BRR = USARTDIV * 16 = pclk / baud, rounded. */
    USART_BRR = (pclk + BOARD_UART_BAUD / 2u) / BOARD_UART_BAUD;
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
