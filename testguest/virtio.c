/* The smallest modern virtio-pci driver core: find a device, map its
 * capabilities, negotiate VERSION_1 only, set up polled queues, and run
 * one descriptor chain to completion. Everything at CPL3; registers are
 * MMIO (PVM emulates each access on the host). */
#include "virtio.h"

/* Spare page directories for BARs above 4 GiB: the identity map covers
 * only the low 4 GiB. No TLB flush needed: the slot was not present. */
static uint64_t high_pd[2][512] __attribute__((aligned(4096)));
static int high_used;
extern uint64_t pdpt[512];

static uint64_t map_bar(uint64_t pa)
{
    uint64_t gb = pa >> 30;
    if (gb >= 4 && gb < 512 && !(pdpt[gb] & 1) && high_used < 2) {
        uint64_t *pd = high_pd[high_used++];
        for (int i = 0; i < 512; i++)
            pd[i] = (gb << 30) + ((uint64_t)i << 21) + 0x87;
        pdpt[gb] = (uint64_t)(uintptr_t)pd + 7;
    }
    return pa;
}

static uint64_t bar_addr(int dev, int bar)
{
    uint32_t lo = pci_read(0, dev, 0, 0x10 + 4 * bar);
    uint64_t a = lo & ~0xfu;
    if ((lo & 6) == 4)
        a |= (uint64_t)pci_read(0, dev, 0, 0x14 + 4 * bar) << 32;
    return map_bar(a);
}

int virtio_find(struct vdev *d, uint16_t modern_id, uint16_t legacy_id)
{
    d->dev = -1;
    for (int i = 0; i < 32 && d->dev < 0; i++) {
        uint32_t id = pci_read(0, i, 0, 0);
        if ((id & 0xffff) == 0x1af4 && ((id >> 16) == modern_id || (id >> 16) == legacy_id))
            d->dev = i;
    }
    if (d->dev < 0)
        return 0;
    pci_write(0, d->dev, 0, 4, pci_read(0, d->dev, 0, 4) | 6);   /* memory space, bus master */
    int off = pci_read(0, d->dev, 0, 0x34) & 0xfc, found = 0;
    for (int n = 0; off && n < 32; n++, off = (pci_read(0, d->dev, 0, off) >> 8) & 0xfc) {
        uint32_t h = pci_read(0, d->dev, 0, off);
        if ((h & 0xff) != 0x09)
            continue;
        int type = (h >> 24) & 0xff, bar = pci_read(0, d->dev, 0, off + 4) & 0xff;
        uint64_t where = bar_addr(d->dev, bar) + pci_read(0, d->dev, 0, off + 8);
        if (type == 1) {
            d->common = (volatile uint8_t *)(uintptr_t)where;
            found |= 1;
        } else if (type == 3) {
            d->isr = (volatile uint8_t *)(uintptr_t)where;
        } else if (type == 2) {
            d->notify = (volatile uint8_t *)(uintptr_t)where;
            d->notify_mult = pci_read(0, d->dev, 0, off + 16);
            found |= 2;
        }
    }
    return found == 3 ? 1 : -1;
}

#define C8(o) (*(volatile uint8_t *)(d->common + (o)))
#define C16(o) (*(volatile uint16_t *)(d->common + (o)))
#define C32(o) (*(volatile uint32_t *)(d->common + (o)))
#define C64(o) (*(volatile uint64_t *)(d->common + (o)))

int virtio_start(struct vdev *d)
{
    C8(20) = 0;                                  /* reset */
    C8(20) = 1 | 2;                              /* ACKNOWLEDGE, DRIVER */
    C32(8) = 1;
    C32(12) = 1;                                 /* VIRTIO_F_VERSION_1 */
    C32(8) = 0;
    C32(12) = 0;
    C8(20) = 1 | 2 | 8;                          /* FEATURES_OK */
    return C8(20) & 8 ? 0 : -1;
}

volatile uint16_t *virtio_queue_at(struct vdev *d, int index, uint16_t size, const void *desc,
                                   const void *avail, const void *used)
{
    C16(22) = (uint16_t)index;
    if (C16(24) < size)
        return 0;
    C16(24) = size;
    C64(32) = (uintptr_t)desc;
    C64(40) = (uintptr_t)avail;
    C64(48) = (uintptr_t)used;
    volatile uint16_t *notify = (volatile uint16_t *)(d->notify + C16(30) * d->notify_mult);
    C16(28) = 1;
    return notify;
}

int virtio_queue(struct vdev *d, int index, struct vq *q)
{
    q->notify = virtio_queue_at(d, index, VQ_SIZE, q->desc, q->avail, &q->used);
    q->index = (uint16_t)index;
    return q->notify ? 0 : -1;
}

static int msix_cap(struct vdev *d);

int virtio_msix(struct vdev *d, int index)
{
    int off = msix_cap(d);
    if (!off)
        return -1;
    uint32_t t = pci_read(0, d->dev, 0, off + 4);
    volatile uint32_t *e = (volatile uint32_t *)(uintptr_t)(bar_addr(d->dev, t & 7) + (t & ~7u));
    *(volatile uint32_t *)(uintptr_t)0xfee000f0 = 0x1ff;    /* local APIC: software enable */
    e[0] = 0xfee00000;                           /* CPU 0, physical */
    e[1] = 0;
    e[2] = MSI_VECTOR;
    e[3] = 0;                                    /* unmasked */
    pci_write(0, d->dev, 0, off, pci_read(0, d->dev, 0, off) | 1u << 31);   /* MSI-X enable */
    C16(16) = 0xffff;                            /* no config-change vector */
    C16(22) = (uint16_t)index;
    C16(26) = 0;
    return C16(26) == 0 ? 0 : -1;
}

static int msix_cap(struct vdev *d)
{
    int off = pci_read(0, d->dev, 0, 0x34) & 0xfc;
    for (int n = 0; off && n < 32 && (pci_read(0, d->dev, 0, off) & 0xff) != 0x11; n++)
        off = (pci_read(0, d->dev, 0, off) >> 8) & 0xfc;
    return off;
}

void virtio_msix_off(struct vdev *d)
{
    int off = msix_cap(d);
    if (off)
        pci_write(0, d->dev, 0, off, pci_read(0, d->dev, 0, off) & ~(1u << 31));
}

int ioapic_route(struct vdev *d, int on)
{
    int pin = pci_read(0, d->dev, 0, 0x3c) & 0xff;
    if (pin == 0 || pin >= 24)
        return -1;
    volatile uint32_t *io = (volatile uint32_t *)(uintptr_t)0xfec00000;
    intx_isr = d->isr;
    io[0] = 0x10 + 2 * pin + 1;
    io[4] = 0;                                   /* destination: APIC 0 */
    io[0] = 0x10 + 2 * pin;
    io[4] = on ? (INTX_VECTOR | 1u << 15) : 1u << 16;   /* level, high / masked */
    pci_write(0, d->dev, 0, 4, pci_read(0, d->dev, 0, 4) & ~(1u << 10));   /* INTx on */
    return pin;
}

void virtio_ready(struct vdev *d) { C8(20) = 1 | 2 | 8 | 4; }  /* DRIVER_OK */

void vq_add(struct vq *q)
{
    uint16_t idx = q->avail[1];
    q->avail[2 + idx % VQ_SIZE] = 0;             /* chains always start at descriptor 0 */
    __asm__ volatile("" ::: "memory");
    *(volatile uint16_t *)&q->avail[1] = idx + 1;
    __asm__ volatile("mfence" ::: "memory");
    *q->notify = q->index;
}

int vq_wait(struct vq *q)
{
    uint64_t t0 = rdtsc();
    while (*(volatile uint16_t *)&q->used.idx == q->last_used && rdtsc() - t0 < 20000000000ull)
        __asm__ volatile("pause");
    if (*(volatile uint16_t *)&q->used.idx == q->last_used)
        return -1;
    q->last_used++;
    return (int)q->used.ring[(q->last_used - 1) % VQ_SIZE].len;
}
