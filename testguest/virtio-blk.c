/* virtio-blk at CPL3: read sector 0, write sector 1, read it back. */
#include "virtio.h"

#define SECTOR 512

static struct vq q;
static struct { uint32_t type, reserved; uint64_t sector; } req;
static uint8_t data[SECTOR] __attribute__((aligned(512)));
static volatile uint8_t status;

static int msix_on, msix_missed;

/* An MSI-X interrupt counted since `before`, within a few seconds. */
static void wait_msi(uint64_t before)
{
    uint64_t t0 = rdtsc();
    while (msis == before && rdtsc() - t0 < 20000000000ull)
        __asm__ volatile("pause");
    msix_missed += msis == before;
}

/* One request (type 0 read, 1 write) on sector; 0 on success. */
static int blk_rw(uint32_t type, uint64_t sector)
{
    uint64_t before = msis;
    req.type = type;
    req.sector = sector;
    status = 0xff;
    q.desc[0] = (struct vq_desc){ (uintptr_t)&req, sizeof(req), 1, 1 };
    q.desc[1] = (struct vq_desc){ (uintptr_t)data, SECTOR, 1 | (type ? 0 : 2), 2 };
    q.desc[2] = (struct vq_desc){ (uintptr_t)&status, 1, 2, 0 };
    vq_add(&q);
    int r = vq_wait(&q) >= 0 && status == 0 ? 0 : -1;
    if (msix_on)
        wait_msi(before);
    return r;
}

void check_virtio_blk(void)
{
    struct vdev d;
    int r = virtio_find(&d, 0x1042, 0x1001);
    if (!r) {
        puts_("# no virtio-blk device\n");
        return;
    }
    if (r < 0 || virtio_start(&d) < 0 || virtio_queue(&d, 0, &q) < 0) {
        result(0, "virtio-blk: device set up");
        return;
    }
    msix_on = virtio_msix(&d, 0) == 0;
    virtio_ready(&d);
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
    result(msix_on && !msix_missed, "virtio-blk: each completion raised its MSI-X interrupt");
    /* INTx, level-triggered through the I/O APIC: the second interrupt
     * comes only if the first one's EOI reached the I/O APIC. */
    msix_on = 0;
    virtio_msix_off(&d);
    int pin = d.isr ? ioapic_route(&d, 1) : -1;
    int got = 0;
    for (int i = 0; i < 2 && pin >= 0; i++) {
        uint64_t before = intxs;
        if (blk_rw(0, 0) < 0)
            break;
        uint64_t t0 = rdtsc();
        while (intxs == before && rdtsc() - t0 < 20000000000ull)
            __asm__ volatile("pause");
        got += intxs > before;
    }
    if (pin >= 0)
        ioapic_route(&d, 0);
    result(got == 2, "virtio-blk: INTx through the I/O APIC, level-triggered, twice");
}
