/* The emulated interrupt controllers as one `struct irqchip`: ISA IRQ n
 * drives 8259 input n and I/O APIC pin n (IRQ0 lands on pin 2, as the MADT
 * override says); GSIs 16-23 go to the I/O APIC only; MSIs go to the local
 * APICs. Used when the accelerator has no in-kernel irqchip. */
#ifndef QUOKKA_HW_IRQCHIP_H
#define QUOKKA_HW_IRQCHIP_H

#include "hw/irq.h"

struct pic;
struct ioapic;
struct apic_bus;

struct pc_irqchip {
    struct irqchip chip;
    struct pic *pic;
    struct ioapic *ioapic;
    struct apic_bus *apics;
};

void pc_irqchip_init(struct pc_irqchip *c, struct pic *pic, struct ioapic *ioapic,
                     struct apic_bus *apics);

#endif
