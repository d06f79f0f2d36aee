/* Interrupt lines onto an irqchip, and the emulated PC irqchip. */
#include "hw/irqchip.h"

#include <stddef.h>
#include "hw/apic.h"
#include "hw/ioapic.h"
#include "hw/pic.h"

static void irqchip_line_handler(void *opaque, int n, int level)
{
    struct irqchip *chip = opaque;
    chip->set_gsi(chip, (unsigned)n, level);
}

struct irq irqchip_line(struct irqchip *chip, unsigned gsi)
{
    return (struct irq){ .handler = irqchip_line_handler, .opaque = chip, .n = (int)gsi };
}

static void pc_set_gsi(struct irqchip *chip, unsigned gsi, int level)
{
    struct pc_irqchip *c = (struct pc_irqchip *)chip;
    if (gsi < 16 && c->pic)
        pic_set_irq(c->pic, gsi, level);
    if (c->ioapic)
        ioapic_set_irq(c->ioapic, gsi == 0 ? 2 : (int)gsi, level);
}

static void pc_send_msi(struct irqchip *chip, uint64_t addr, uint32_t data)
{
    struct pc_irqchip *c = (struct pc_irqchip *)chip;
    apic_bus_msi(c->apics, addr, data);
}

void pc_irqchip_init(struct pc_irqchip *c, struct pic *pic, struct ioapic *ioapic,
                     struct apic_bus *apics)
{
    c->chip.set_gsi = pc_set_gsi;
    c->chip.send_msi = pc_send_msi;
    c->pic = pic;
    c->ioapic = ioapic;
    c->apics = apics;
}
