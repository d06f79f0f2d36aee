/* Intel 8259A pair (master 0x20/0x21, slave 0xA0/0xA1 on master IRQ2) with
 * the PIIX edge/level control registers (ELCR, 0x4D0/0x4D1). The master's
 * INT output goes to the BSP's local APIC LINT0 (ExtINT) through notify. */
#ifndef QUOKKA_HW_PIC_H
#define QUOKKA_HW_PIC_H

#include <stdbool.h>

struct address_space;
struct pic;

/* notify(opaque, level) follows the master's INT output. */
struct pic *pic_new(struct address_space *io, void (*notify)(void *opaque, int level),
                    void *opaque);
void pic_free(struct pic *p);
void pic_reset(struct pic *p);
/* ISA IRQ 0..15 input level. */
void pic_set_irq(struct pic *p, int irq, int level);
/* INTA cycle: vector of the highest-priority request (spurious IRQ7/15 if
 * none), updating ISR/IRR as the hardware does. */
int pic_ack(struct pic *p);
/* The master's INT output. */
bool pic_pending(struct pic *p);

#endif
