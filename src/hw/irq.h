/* Interrupt lines and the interrupt controller interface.
 *
 * A device holds `struct irq` lines and calls irq_set(); it never knows which
 * accelerator runs. The board wires lines to an irqchip: under emu our own
 * PIC + IOAPIC + local APICs; under KVM the kernel's. MSIs go through the
 * same irqchip. */
#ifndef QUOKKA_HW_IRQ_H
#define QUOKKA_HW_IRQ_H

#include <stdint.h>

struct irq {
    void (*handler)(void *opaque, int n, int level);
    void *opaque;
    int n;
};

static inline void irq_set(const struct irq *irq, int level)
{
    if (irq && irq->handler)
        irq->handler(irq->opaque, irq->n, level);
}
static inline void irq_raise(const struct irq *irq) { irq_set(irq, 1); }
static inline void irq_lower(const struct irq *irq) { irq_set(irq, 0); }
static inline void irq_pulse(const struct irq *irq) { irq_set(irq, 1); irq_set(irq, 0); }

struct irqchip {
    /* Global system interrupt (0-15 ISA, 16-23 PCI) level change. */
    void (*set_gsi)(struct irqchip *chip, unsigned gsi, int level);
    /* Message-signalled interrupt (address 0xFEExxxxx, data as in the SDM). */
    void (*send_msi)(struct irqchip *chip, uint64_t addr, uint32_t data);
    /* Optional, NULL or -ENOTSUP where not offered (no in-kernel APIC):
     * signalling eventfd fd delivers MSI (addr, data) without going
     * through this process (KVM's irqfd). irqfd_add returns a handle >= 0
     * or -errno; irqfd_set points the handle at another message. */
    int (*irqfd_add)(struct irqchip *chip, int fd, uint64_t addr, uint32_t data);
    int (*irqfd_set)(struct irqchip *chip, int handle, uint64_t addr, uint32_t data);
    void (*irqfd_del)(struct irqchip *chip, int handle);
};

/* A line that drives gsi on chip (the board fills devices' lines with it). */
struct irq irqchip_line(struct irqchip *chip, unsigned gsi);

#endif
