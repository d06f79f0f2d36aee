/* Local APICs (xAPIC, MMIO at the APIC base, default 0xFEE00000) and the
 * bus joining them: IPIs, IOAPIC and MSI delivery, ExtINT from the 8259,
 * EOI broadcast to the IOAPIC. The APIC timer counts at APIC_BUS_HZ
 * (1 GHz, so one tick per ns at divide-by-1); CPUID 0x15 reports the same
 * crystal so Linux need not calibrate it. TSC-deadline mode and x2APIC are
 * not offered. All functions run under the device lock. */
#ifndef QUOKKA_HW_APIC_H
#define QUOKKA_HW_APIC_H

#include <stdbool.h>
#include <stdint.h>

#define APIC_BUS_HZ 1000000000ULL
#define APIC_DEFAULT_BASE 0xfee00000ULL
#define APIC_BASE_BSP (1ULL << 8)
#define APIC_BASE_ENABLE (1ULL << 11)

/* Events for the CPU behind an APIC (same values as the emu CPU's X86_EV_*). */
enum { APIC_EV_INTR = 1, APIC_EV_NMI = 2, APIC_EV_INIT = 4, APIC_EV_SIPI = 8 };

enum apic_delivery {
    APIC_DM_FIXED = 0, APIC_DM_LOWEST = 1, APIC_DM_SMI = 2, APIC_DM_NMI = 4,
    APIC_DM_INIT = 5, APIC_DM_SIPI = 6, APIC_DM_EXTINT = 7,
};

struct mainloop;
struct apic;
struct apic_bus;

struct apic_cpu_ops {
    void (*kick)(void *opaque, unsigned events);
    void (*sipi)(void *opaque, uint8_t vector);
};

struct apic_bus *apic_bus_new(struct mainloop *ml);
void apic_bus_free(struct apic_bus *b);
/* The 8259 behind BSP's LINT0. */
void apic_bus_set_pic(struct apic_bus *b, int (*ack)(void *), bool (*pending)(void *),
                      void *opaque);
/* Called on EOI of a level-triggered vector (the IOAPIC clears remote IRR). */
void apic_bus_set_eoi_hook(struct apic_bus *b, void (*eoi)(void *, uint8_t vector), void *opaque);
/* Deliver an interrupt message (IOAPIC redirection entry or MSI). */
void apic_bus_deliver(struct apic_bus *b, uint8_t dest, bool logical, int mode, uint8_t vector,
                      bool level);
void apic_bus_msi(struct apic_bus *b, uint64_t addr, uint32_t data);
/* The 8259's INT output changed (kicks the BSP if it takes ExtINT). */
void apic_bus_pic_intr(struct apic_bus *b, int level);
struct apic *apic_bus_cpu(struct apic_bus *b, int index);

/* Local APICs kept elsewhere (KVM's split irqchip: in the kernel). Once a
 * router is set, interrupt messages from the I/O APIC and MSIs go to
 * router->msi instead of these APICs (whose registers the guest no longer
 * reaches), and the 8259's INT kicks CPU 0, which asks apic_bus_pic_ack.
 * The irqfd_* ops (optional) bind an eventfd to an MSI message so that
 * signalling it delivers the MSI without this process. */
struct apic_bus_router {
    void (*msi)(void *opaque, uint64_t addr, uint32_t data);
    int (*irqfd_add)(void *opaque, int fd, uint64_t addr, uint32_t data);   /* handle or -errno */
    int (*irqfd_set)(void *opaque, int handle, uint64_t addr, uint32_t data);
    void (*irqfd_del)(void *opaque, int handle);
};
void apic_bus_set_router(struct apic_bus *b, const struct apic_bus_router *r, void *opaque);
/* The router in use (NULL if none) and its opaque. */
const struct apic_bus_router *apic_bus_router(struct apic_bus *b, void **opaque);
/* INTA on the 8259 behind the bus: its vector, or -1 if it has none. */
int apic_bus_pic_ack(struct apic_bus *b);
/* A level-triggered vector was EOIed by an APIC the router serves. */
void apic_bus_eoi(struct apic_bus *b, uint8_t vector);

struct apic *apic_new(struct apic_bus *b, int index, const struct apic_cpu_ops *ops,
                      void *opaque);
/* Power-on / INIT state. */
void apic_reset(struct apic *a, bool bsp);
/* What the BIOS would have set up: LINT0 ExtINT, LINT1 NMI. */
void apic_setup_virtual_wire(struct apic *a);

uint64_t apic_get_base(struct apic *a);
int apic_set_base(struct apic *a, uint64_t val);      /* -1: reserved bits (#GP) */
/* Guest-physical address of the MMIO page, or ~0 when globally disabled. */
uint64_t apic_mmio_addr(struct apic *a);
uint32_t apic_mmio_read(struct apic *a, uint32_t off);
void apic_mmio_write(struct apic *a, uint32_t off, uint32_t val);
uint8_t apic_get_cr8(struct apic *a);
void apic_set_cr8(struct apic *a, uint8_t cr8);
/* INTA: highest deliverable vector (APIC, then ExtINT), or -1. */
int apic_ack(struct apic *a);
/* A fixed interrupt arrives at this APIC. */
void apic_set_irq(struct apic *a, uint8_t vector, bool level);

#endif
