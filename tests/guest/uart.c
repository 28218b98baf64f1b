/*
 * Polled COM1 (8250/16550 at 0x3f8). Every port access is a VM exit, so
 * LSR is read only once per 16 bytes: when THRE is set the (enabled) FIFO
 * is empty and can take 16 bytes. Virtual UARTs without a FIFO keep THRE
 * set, so this is safe there too. The wait is bounded so an absent or stuck
 * UART cannot hang the guest.
 */
#include "guest.h"

#define COM1    0x3f8
#define THR     0
#define FCR     2
#define LSR     5
#define LSR_THRE 0x20
#define FIFO_DEPTH 16

static unsigned tx_budget;  /* bytes we may write before polling LSR */

void uart_init(void)
{
	outb(COM1 + FCR, 0x07); /* enable and clear the FIFOs */
	tx_budget = 0;
}

static void putc_raw(char c)
{
	if (tx_budget == 0) {
		for (unsigned i = 0; i < 100000; i++)
			if (inb(COM1 + LSR) & LSR_THRE)
				break;
		tx_budget = FIFO_DEPTH;
	}
	outb(COM1 + THR, (uint8_t)c);
	tx_budget--;
}

void uart_write(const char *s, size_t n)
{
	while (n--)
		putc_raw(*s++);
}
