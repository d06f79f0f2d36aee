/* I/O APIC: IOREGSEL at 0x00, IOWIN at 0x10, EOI at 0x40. */
#include "hw/ioapic.h"

#include <stdbool.h>
#include <stdlib.h>
#include "hw/apic.h"
#include "hw/memory.h"

enum { RTE_VECTOR = 0xff, RTE_DELIV_SHIFT = 8, RTE_DEST_LOGICAL = 1 << 11,
       RTE_STATUS = 1 << 12, RTE_REMOTE_IRR = 1 << 14, RTE_LEVEL = 1 << 15,
       RTE_MASKED = 1 << 16 };

struct ioapic {
    struct apic_bus *bus;
    uint32_t sel, id;
    uint32_t irr;                 /* asserted inputs (level) / latched edges */
    uint64_t rte[IOAPIC_PINS];
};

static void ioapic_service(struct ioapic *io, int pin)
{
    uint64_t e = io->rte[pin];
    if (e & RTE_MASKED)
        return;
    bool level = e & RTE_LEVEL;
    if (level) {
        if (!(io->irr & (1u << pin)) || (e & RTE_REMOTE_IRR))
            return;
        io->rte[pin] |= RTE_REMOTE_IRR;
    } else {
        io->irr &= ~(1u << pin);
    }
    apic_bus_deliver(io->bus, e >> 56, e & RTE_DEST_LOGICAL, (e >> RTE_DELIV_SHIFT) & 7,
                     e & RTE_VECTOR, level);
}

void ioapic_set_irq(struct ioapic *io, int pin, int level)
{
    if (pin < 0 || pin >= IOAPIC_PINS)
        return;
    uint32_t m = 1u << pin;
    if (io->rte[pin] & RTE_LEVEL) {
        if (level) {
            io->irr |= m;
            ioapic_service(io, pin);
        } else {
            io->irr &= ~m;
        }
    } else if (level) {
        /* Edge: every assertion counts; devices pulse their line. */
        io->irr |= m;
        ioapic_service(io, pin);
    }
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
    for (int i = 0; i < IOAPIC_PINS; i++) {
        uint64_t e = io->rte[i];
        if ((e & RTE_VECTOR) != vector || !(e & RTE_LEVEL) || !(e & RTE_REMOTE_IRR))
            continue;
        io->rte[i] &= ~(uint64_t)RTE_REMOTE_IRR;
        ioapic_service(io, i);
    }
}

static void ioapic_eoi_hook(void *opaque, uint8_t vector) { ioapic_eoi(opaque, vector); }

static uint32_t ioapic_reg_read(struct ioapic *io)
{
    uint32_t r = io->sel & 0xff;
    if (r == 0)
        return io->id << 24;
    if (r == 1)
        return 0x20 | ((IOAPIC_PINS - 1) << 16);
    if (r == 2)
        return io->id << 24;
    if (r >= 0x10 && r < 0x10 + 2 * IOAPIC_PINS) {
        uint64_t e = io->rte[(r - 0x10) / 2];
        return (r & 1) ? e >> 32 : (uint32_t)e;
    }
    return 0xffffffff;
}

static void ioapic_reg_write(struct ioapic *io, uint32_t val)
{
    uint32_t r = io->sel & 0xff;
    if (r == 0) {
        io->id = (val >> 24) & 0xf;
        return;
    }
    if (r < 0x10 || r >= 0x10 + 2 * IOAPIC_PINS)
        return;
    int pin = (r - 0x10) / 2;
    uint64_t e = io->rte[pin];
    if (r & 1) {
        e = (e & 0xffffffffULL) | ((uint64_t)val << 32);
    } else {
        /* Delivery status and remote IRR are read-only. */
        uint64_t ro = RTE_STATUS | RTE_REMOTE_IRR;
        e = (e & ~0xffffffffULL) | (e & ro) | (val & ~ro);
    }
    io->rte[pin] = e;
    if (!(e & RTE_LEVEL))
        io->rte[pin] &= ~(uint64_t)RTE_REMOTE_IRR;
    if ((e & RTE_LEVEL) && (io->irr & (1u << pin)))
        ioapic_service(io, pin);
}

uint32_t ioapic_read(struct ioapic *io, uint32_t off)
{
    if (off == 0x00)
        return io->sel;
    if (off == 0x10)
        return ioapic_reg_read(io);
    return 0;
}

void ioapic_write(struct ioapic *io, uint32_t off, uint32_t val)
{
    if (off == 0x00)
        io->sel = val & 0xff;
    else if (off == 0x10)
        ioapic_reg_write(io, val);
    else if (off == 0x40)
        ioapic_eoi(io, val & 0xff);
}

static uint64_t ioapic_mmio_read(void *opaque, uint64_t off, unsigned size)
{
    return ioapic_read(opaque, off & ~3ULL);
}

static void ioapic_mmio_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    ioapic_write(opaque, off & ~3ULL, (uint32_t)val);
}

static const struct mem_ops ioapic_ops = { ioapic_mmio_read, ioapic_mmio_write };

void ioapic_reset(struct ioapic *io)
{
    io->sel = 0;
    io->irr = 0;
    for (int i = 0; i < IOAPIC_PINS; i++)
        io->rte[i] = RTE_MASKED;
}

struct ioapic *ioapic_new(struct address_space *mem, struct apic_bus *bus)
{
    struct ioapic *io = calloc(1, sizeof(*io));
    if (!io)
        return NULL;
    io->bus = bus;
    io->id = 0;
    ioapic_reset(io);
    apic_bus_set_eoi_hook(bus, ioapic_eoi_hook, io);
    if (mem)
        as_add_io(mem, IOAPIC_BASE, 0x1000, &ioapic_ops, io, "ioapic", 0);
    return io;
}

void ioapic_free(struct ioapic *io) { free(io); }
