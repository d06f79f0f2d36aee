/* i8042 keyboard controller (ports 0x60/0x64): enough of the controller and
 * a PS/2 keyboard for Linux's probe (self test, config byte, port tests,
 * keyboard reset/ID), plus the 0xFE command that pulses the CPU reset line.
 * The aux port has a PS/2 mouse that acknowledges commands and never moves. */
#ifndef QUOKKA_HW_I8042_H
#define QUOKKA_HW_I8042_H

#include "hw/irq.h"

struct address_space;
struct i8042;

/* kbd_irq is ISA IRQ1, aux_irq ISA IRQ12. reset(opaque) is called (with the
 * device lock held) when the guest asks for a system reset through the
 * controller; the board schedules it. */
struct i8042 *i8042_new(struct address_space *io, struct irq kbd_irq, struct irq aux_irq,
                        void (*reset)(void *opaque), void *opaque);
void i8042_free(struct i8042 *k);
void i8042_reset(struct i8042 *k);
/* Feed one scancode set 1/2 byte sequence from a host keyboard (future UI). */
void i8042_put_keycode(struct i8042 *k, const uint8_t *codes, int n);

#endif
