/* The PC memory map. */
#include "machine/e820.h"

#include <errno.h>

int e820_add(struct e820_table *t, uint64_t addr, uint64_t size, uint32_t type)
{
    if (!size)
        return 0;
    if (t->n) {
        struct e820_entry *l = &t->e[t->n - 1];
        if (l->type == type && l->addr + l->size == addr) {
            l->size += size;
            return 0;
        }
    }
    if (t->n >= E820_MAX)
        return -ENOSPC;
    t->e[t->n++] = (struct e820_entry){ addr, size, type };
    return 0;
}

void e820_split_ram(uint64_t ram_size, uint64_t *below_4g, uint64_t *above_4g)
{
    if (ram_size > PC_PCI_HOLE_START) {
        *below_4g = PC_PCI_HOLE_START;
        *above_4g = ram_size - PC_PCI_HOLE_START;
    } else {
        *below_4g = ram_size;
        *above_4g = 0;
    }
}

void e820_build_pc(struct e820_table *t, uint64_t below_4g, uint64_t above_4g)
{
    t->n = 0;
    e820_add(t, 0, PC_EBDA_START, E820_RAM);
    e820_add(t, PC_EBDA_START, 0xa0000 - PC_EBDA_START, E820_RESERVED);
    e820_add(t, PC_BIOS_START, PC_HIGH_START - PC_BIOS_START, E820_RESERVED);
    if (below_4g > PC_HIGH_START)
        e820_add(t, PC_HIGH_START, below_4g - PC_HIGH_START, E820_RAM);
    /* The IOAPIC, HPET and local APIC windows. */
    e820_add(t, 0xfec00000ULL, 0x1000, E820_RESERVED);
    e820_add(t, 0xfee00000ULL, 0x1000, E820_RESERVED);
    if (above_4g)
        e820_add(t, PC_4G, above_4g, E820_RAM);
}

uint64_t e820_ram_total(const struct e820_table *t)
{
    uint64_t s = 0;
    for (int i = 0; i < t->n; i++)
        if (t->e[i].type == E820_RAM)
            s += t->e[i].size;
    return s;
}
