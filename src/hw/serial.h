/* 16550A UART (COM1..COM4): registers, 16-byte FIFOs, THRE and RX
 * interrupts, modem-control loopback. The host side is a chardev; with no
 * chardev (NULL) output is dropped and input never arrives, like -serial none
 * with the port still present. */
#ifndef QUOKKA_HW_SERIAL_H
#define QUOKKA_HW_SERIAL_H

#include <stdint.h>
#include "hw/irq.h"

struct address_space;
struct chardev;
struct serial;

/* Registers the 8-port window at base in io (COM1 0x3F8 IRQ4, COM2 0x2F8
 * IRQ3) and attaches to chr. Returns NULL on failure (already reported). */
struct serial *serial_new(struct address_space *io, uint16_t base, struct irq irq,
                          struct chardev *chr);
void serial_free(struct serial *s);
/* Power-on state of the registers (system_reset). */
void serial_reset(struct serial *s);

#endif
