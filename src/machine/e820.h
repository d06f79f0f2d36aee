/* The BIOS memory map (INT 15h E820) the board hands to the guest: the
 * PC layout of RAM below 640 KiB, the BIOS area, RAM up to the PCI hole
 * and RAM above 4 GiB. */
#ifndef QUOKKA_MACHINE_E820_H
#define QUOKKA_MACHINE_E820_H

#include <stdint.h>

enum { E820_RAM = 1, E820_RESERVED = 2, E820_ACPI = 3, E820_NVS = 4 };
#define E820_MAX 128

struct e820_entry {
    uint64_t addr, size;
    uint32_t type;
} __attribute__((packed));        /* the boot_params layout, 20 bytes */

struct e820_table {
    int n;
    struct e820_entry e[E820_MAX];
};

/* The PC low-memory layout. */
#define PC_EBDA_START 0x9fc00ULL
#define PC_BIOS_START 0xe0000ULL   /* ACPI tables and RSDP live here */
#define PC_HIGH_START 0x100000ULL
#define PC_PCI_HOLE_START 0xe0000000ULL   /* 3.5 GiB: RAM above moves past 4 GiB */
#define PC_4G 0x100000000ULL

/* Append one range (merged with the previous one if adjacent and alike). */
int e820_add(struct e820_table *t, uint64_t addr, uint64_t size, uint32_t type);
/* Split ram_size the PC way: below_4g (at most the hole start) and the rest. */
void e820_split_ram(uint64_t ram_size, uint64_t *below_4g, uint64_t *above_4g);
void e820_build_pc(struct e820_table *t, uint64_t below_4g, uint64_t above_4g);
/* Total bytes of type RAM. */
uint64_t e820_ram_total(const struct e820_table *t);

#endif
