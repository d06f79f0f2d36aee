/* I/O APIC (82093AA-like, version 0x20, 24 pins) at 0xFEC00000: the
 * redirection table, edge and level inputs with remote IRR, EOI from the
 * local APICs' broadcast (and the version-0x20 EOI register). */
#ifndef QUOKKA_HW_IOAPIC_H
#define QUOKKA_HW_IOAPIC_H

#include <stdint.h>

#define IOAPIC_BASE 0xfec00000ULL
#define IOAPIC_PINS 24

struct address_space;
struct apic_bus;
struct ioapic;

struct ioapic *ioapic_new(struct address_space *mem, struct apic_bus *bus);
void ioapic_free(struct ioapic *io);
void ioapic_reset(struct ioapic *io);
void ioapic_set_irq(struct ioapic *io, int pin, int level);
void ioapic_eoi(struct ioapic *io, uint8_t vector);
/* Register window access (tests and the MMIO handler). */
uint32_t ioapic_read(struct ioapic *io, uint32_t off);
void ioapic_write(struct ioapic *io, uint32_t off, uint32_t val);

#endif
