/* A virtio-blk driver small enough to read: modern PCI transport found
 * through the vendor capabilities, one queue, polled (no interrupts).
 * Reads sector 0, writes sector 1 and reads it back, all at CPL3; the
 * device's registers are MMIO (PVM emulates each access on the host). */
#include <stdint.h>
#include "guest.h"

#define SECTOR 512
#define QSIZE 8

struct vq_desc { uint64_t addr; uint32_t len; uint16_t flags, next; };

static struct {
    struct vq_desc desc[QSIZE];
    uint16_t avail[2 + QSIZE + 1];
} __attribute__((aligned(4096))) vq;
static struct { uint16_t flags, idx; struct { uint32_t id, len; } ring[QSIZE]; uint16_t ev; }
    used __attribute__((aligned(4096)));
static struct { uint32_t type, reserved; uint64_t sector; } req;
static uint8_t data[SECTOR] __attribute__((aligned(512)));
static volatile uint8_t status;

/* Spare page directory for a BAR above 4 GiB: the identity map covers
 * only the low 4 GiB. No TLB flush needed: the slot was not present. */
static uint64_t high_pd[512] __attribute__((aligned(4096)));
extern uint64_t pdpt[512];

static volatile uint8_t *common, *notify;
static uint32_t notify_mult;

static uint64_t map_bar(uint64_t pa)
{
    uint64_t gb = pa >> 30;
    if (gb >= 4 && gb < 512 && !(pdpt[gb] & 1)) {
        for (int i = 0; i < 512; i++)
            high_pd[i] = (gb << 30) + ((uint64_t)i << 21) + 0x87;
        pdpt[gb] = (uint64_t)(uintptr_t)high_pd + 7;
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

static int find_caps(int dev)
{
    int off = pci_read(0, dev, 0, 0x34) & 0xfc, found = 0;
    for (int n = 0; off && n < 32; n++, off = (pci_read(0, dev, 0, off) >> 8) & 0xfc) {
        uint32_t h = pci_read(0, dev, 0, off);
        if ((h & 0xff) != 0x09)
            continue;
        int type = (h >> 24) & 0xff, bar = pci_read(0, dev, 0, off + 4) & 0xff;
        uint64_t where = bar_addr(dev, bar) + pci_read(0, dev, 0, off + 8);
        if (type == 1) {
            common = (volatile uint8_t *)(uintptr_t)where;
            found |= 1;
        } else if (type == 2) {
            notify = (volatile uint8_t *)(uintptr_t)where;
            notify_mult = pci_read(0, dev, 0, off + 16);
            found |= 2;
        }
    }
    return found == 3;
}

#define C8(o) (*(volatile uint8_t *)(common + (o)))
#define C16(o) (*(volatile uint16_t *)(common + (o)))
#define C32(o) (*(volatile uint32_t *)(common + (o)))

static int setup_queue(void)
{
    C8(20) = 0;                                  /* reset */
    C8(20) = 1 | 2;                              /* ACKNOWLEDGE, DRIVER */
    C32(8) = 1;
    C32(12) = 1;                                 /* VIRTIO_F_VERSION_1 */
    C32(8) = 0;
    C32(12) = 0;
    C8(20) = 1 | 2 | 8;                          /* FEATURES_OK */
    if (!(C8(20) & 8))
        return 0;
    C16(22) = 0;
    if (C16(24) < QSIZE)
        return 0;
    C16(24) = QSIZE;
    *(volatile uint64_t *)(common + 32) = (uintptr_t)vq.desc;
    *(volatile uint64_t *)(common + 40) = (uintptr_t)vq.avail;
    *(volatile uint64_t *)(common + 48) = (uintptr_t)&used;
    C16(28) = 1;
    C8(20) = 1 | 2 | 8 | 4;                      /* DRIVER_OK */
    return 1;
}

/* One request (type 0 read, 1 write) on sector; 0 on success. */
static int blk_rw(uint32_t type, uint64_t sector)
{
    req.type = type;
    req.sector = sector;
    status = 0xff;
    vq.desc[0] = (struct vq_desc){ (uintptr_t)&req, sizeof(req), 1, 1 };
    vq.desc[1] = (struct vq_desc){ (uintptr_t)data, SECTOR, 1 | (type ? 0 : 2), 2 };
    vq.desc[2] = (struct vq_desc){ (uintptr_t)&status, 1, 2, 0 };
    uint16_t idx = vq.avail[1];
    vq.avail[2 + idx % QSIZE] = 0;
    __asm__ volatile("" ::: "memory");
    *(volatile uint16_t *)&vq.avail[1] = idx + 1;
    uint16_t used_before = *(volatile uint16_t *)&used.idx;
    __asm__ volatile("mfence" ::: "memory");
    *(volatile uint16_t *)(notify + C16(30) * notify_mult) = 0;
    uint64_t t0 = rdtsc();
    while (*(volatile uint16_t *)&used.idx == used_before && rdtsc() - t0 < 20000000000ull)
        __asm__ volatile("pause");
    return *(volatile uint16_t *)&used.idx != used_before && status == 0 ? 0 : -1;
}

void check_virtio_blk(void)
{
    int dev = -1;
    for (int d = 0; d < 32 && dev < 0; d++) {
        uint32_t id = pci_read(0, d, 0, 0);
        if ((id & 0xffff) == 0x1af4 && ((id >> 16) == 0x1042 || (id >> 16) == 0x1001))
            dev = d;
    }
    if (dev < 0) {
        puts_("# no virtio-blk device\n");
        return;
    }
    pci_write(0, dev, 0, 4, pci_read(0, dev, 0, 4) | 6);   /* memory space, bus master */
    if (!find_caps(dev) || !setup_queue()) {
        result(0, "virtio-blk: device set up");
        return;
    }
    int ok = blk_rw(0, 0) == 0 && str_eq((const char *)data, "QUOKKA-DISK-SECTOR-0");
    result(ok, "virtio-blk: read sector 0");
    const char *msg = "written by the test guest";
    for (int i = 0; i < SECTOR; i++)
        data[i] = 0;
    for (int i = 0; msg[i]; i++)
        data[i] = (uint8_t)msg[i];
    ok = blk_rw(1, 1) == 0;
    for (int i = 0; i < SECTOR; i++)
        data[i] = 0;
    ok = ok && blk_rw(0, 1) == 0 && str_eq((const char *)data, msg);
    result(ok, "virtio-blk: wrote sector 1 and read it back");
}
