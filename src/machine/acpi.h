/* ACPI tables for the PC board: RSDP, RSDT, XSDT, FADT (PM1 blocks, PM
 * timer, reset register), FACS, a DSDT with \_S5, and a MADT with one local
 * APIC per CPU, the I/O APIC, IRQ0->GSI2 and SCI overrides and LINT1 NMI.
 * The tables are laid out for guest-physical address `gpa`; the RSDP comes
 * first (16-byte aligned, inside the BIOS area where guests scan for it). */
#ifndef QUOKKA_MACHINE_ACPI_H
#define QUOKKA_MACHINE_ACPI_H

#include <stddef.h>
#include <stdint.h>

struct acpi_config {
    int ncpus;
    /* AML appended to the DSDT's body (the PCI host bridge's Device, from
     * pci_acpi_dsdt()); may be NULL. */
    const uint8_t *dsdt_extra;
    size_t dsdt_extra_len;
};

/* Fills buf (len bytes, zeroed by the caller) with the tables as they will
 * sit at gpa. Returns the bytes used, or -ENOSPC. The RSDP is at gpa. */
int acpi_build(uint8_t *buf, size_t len, uint64_t gpa, const struct acpi_config *cfg);
/* Byte sum, for checksums (0 when a table is valid). */
uint8_t acpi_sum(const uint8_t *p, size_t len);

#endif
