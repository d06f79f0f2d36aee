/* Intel 8254 programmable interval timer (ports 0x40-0x43) and the port
 * 0x61 bits it owns (channel 2 gate, speaker enable, channel 2 output,
 * refresh toggle). Counts run off the host monotonic clock at 1.193182 MHz;
 * channel 0 drives ISA IRQ0. */
#ifndef QUOKKA_HW_PIT_H
#define QUOKKA_HW_PIT_H

#include <stdint.h>
#include "hw/irq.h"

#define PIT_FREQ 1193182

struct address_space;
struct mainloop;
struct pit;

struct pit *pit_new(struct address_space *io, struct mainloop *ml, struct irq irq0);
void pit_free(struct pit *p);
void pit_reset(struct pit *p);

#endif
