/* Test-side virtio-pci discovery, done as Linux's virtio_pci driver does it:
 * find the function by vendor/device id through 0xCF8/0xCFC, then walk the
 * vendor capabilities to the common/notify/ISR/device windows. */
#ifndef QUOKKA_TESTS_VIRTIO_PCI_TEST_H
#define QUOKKA_TESTS_VIRTIO_PCI_TEST_H

#include <stdint.h>
#include "hw/memory.h"

struct vpci_windows {
    int devfn;                       /* -1 if the device was not found */
    uint64_t common, notify, isr, device;
    uint32_t notify_mult;
    unsigned found;                  /* bit n: capability type n seen */
};

static inline uint32_t vpci_cfg_read(struct address_space *io, int devfn, int reg, unsigned size)
{
    as_write(io, 0xcf8, 0x80000000u | devfn << 8 | (reg & 0xfc), 4);
    return (uint32_t)as_read(io, 0xcfc + (reg & 3), size);
}

static inline uint64_t vpci_bar_addr(struct address_space *io, int devfn, int bar)
{
    uint64_t lo = vpci_cfg_read(io, devfn, 0x10 + 4 * bar, 4), a = lo & ~0xfULL;
    if ((lo & 6) == 4)
        a |= (uint64_t)vpci_cfg_read(io, devfn, 0x14 + 4 * bar, 4) << 32;
    return a;
}

/* id is (device << 16) | vendor as config dword 0 reads. */
static inline struct vpci_windows vpci_probe(struct address_space *io, uint32_t id)
{
    struct vpci_windows w = { .devfn = -1 };
    for (int df = 0; df < 256 && w.devfn < 0; df += 8)
        if (vpci_cfg_read(io, df, 0, 4) == id)
            w.devfn = df;
    if (w.devfn < 0)
        return w;
    for (int p = vpci_cfg_read(io, w.devfn, 0x34, 1); p; p = vpci_cfg_read(io, w.devfn, p + 1, 1)) {
        if (vpci_cfg_read(io, w.devfn, p, 1) != 0x09)        /* vendor-specific */
            continue;
        int type = vpci_cfg_read(io, w.devfn, p + 3, 1), bar = vpci_cfg_read(io, w.devfn, p + 4, 1);
        uint64_t a = vpci_bar_addr(io, w.devfn, bar) + vpci_cfg_read(io, w.devfn, p + 8, 4);
        switch (type) {
        case 1: w.common = a; break;
        case 2: w.notify = a; w.notify_mult = vpci_cfg_read(io, w.devfn, p + 16, 4); break;
        case 3: w.isr = a; break;
        case 4: w.device = a; break;
        }
        w.found |= 1u << type;
    }
    return w;
}

/* Program queue q through the common window: `size` entries, descriptor
 * table at base, avail ring at base + 0x1000, used ring at base + 0x2000;
 * enable it and return its queue_notify_off. */
static inline uint16_t vpci_queue_enable(struct address_space *mem, uint64_t common, int q,
                                         uint16_t size, uint64_t base)
{
    as_write(mem, common + 22, (uint64_t)q, 2);
    as_write(mem, common + 24, size, 2);
    for (int i = 0; i < 3; i++) {
        as_write(mem, common + 32 + 8 * i, (uint32_t)(base + 0x1000 * i), 4);
        as_write(mem, common + 36 + 8 * i, 0, 4);
    }
    uint16_t off = (uint16_t)as_read(mem, common + 30, 2);
    as_write(mem, common + 28, 1, 2);
    return off;
}

#endif
