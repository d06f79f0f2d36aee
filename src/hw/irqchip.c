/* Interrupt lines onto an irqchip, and the emulated PC irqchip. */
#include "hw/irqchip.h"

#include <errno.h>
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

/* irqfds exist only where the local APICs are the kernel's (the router). */
static const struct apic_bus_router *pc_router(struct irqchip *chip, void **opaque)
{
    struct pc_irqchip *c = (struct pc_irqchip *)chip;
    return c->apics ? apic_bus_router(c->apics, opaque) : NULL;
}

static int pc_irqfd_add(struct irqchip *chip, int fd, uint64_t addr, uint32_t data)
{
    void *o;
    const struct apic_bus_router *r = pc_router(chip, &o);
    return r && r->irqfd_add ? r->irqfd_add(o, fd, addr, data) : -ENOTSUP;
}

static int pc_irqfd_set(struct irqchip *chip, int handle, uint64_t addr, uint32_t data)
{
    void *o;
    const struct apic_bus_router *r = pc_router(chip, &o);
    return r && r->irqfd_set ? r->irqfd_set(o, handle, addr, data) : -ENOTSUP;
}

static void pc_irqfd_del(struct irqchip *chip, int handle)
{
    void *o;
    const struct apic_bus_router *r = pc_router(chip, &o);
    if (r && r->irqfd_del)
        r->irqfd_del(o, handle);
}

void pc_irqchip_init(struct pc_irqchip *c, struct pic *pic, struct ioapic *ioapic,
                     struct apic_bus *apics)
{
    c->chip.set_gsi = pc_set_gsi;
    c->chip.send_msi = pc_send_msi;
    c->chip.irqfd_add = pc_irqfd_add;
    c->chip.irqfd_set = pc_irqfd_set;
    c->chip.irqfd_del = pc_irqfd_del;
    c->pic = pic;
    c->ioapic = ioapic;
    c->apics = apics;
}
