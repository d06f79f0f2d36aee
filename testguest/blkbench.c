/* blkbench=MIB [blkreq=KIB] [blkdepth=N] on the command line: after the
 * checks, read the virtio-blk disk's first MIB MiB sequentially, then
 * write them, in requests of KIB KiB with N in flight, polling the used
 * ring (no interrupts). Lines "blkbench: read", "blkbench: read done",
 * "blkbench: write", "blkbench: write done" mark the phases; the host
 * (bench/blk-kvm.sh) times them as they arrive on the serial port. */
#include "virtio.h"

#define BQ_SIZE 128
#define BUF_BASE 0x2000000ull                /* 32 MiB: past the image, identity-mapped */
#define MAX_DEPTH 32

struct bhdr { uint32_t type, reserved; uint64_t sector; };

static struct vq_desc desc[BQ_SIZE] __attribute__((aligned(4096)));
static volatile uint16_t avail[2 + BQ_SIZE + 1] __attribute__((aligned(4096)));
static volatile struct { uint16_t flags, idx; struct { uint32_t id, len; } ring[BQ_SIZE]; }
    used __attribute__((aligned(4096)));
static struct bhdr hdr[MAX_DEPTH];
static volatile uint8_t st[MAX_DEPTH];

/* Slot s (descriptors 3s..3s+2) carries a request for byte offset off. */
static void submit(int s, uint32_t type, uint64_t off, uint32_t len)
{
    hdr[s] = (struct bhdr){ type, 0, off / 512 };
    st[s] = 0xff;
    uint64_t buf = BUF_BASE + (uint64_t)s * len;
    desc[3 * s] = (struct vq_desc){ (uintptr_t)&hdr[s], sizeof(hdr[s]), 1, (uint16_t)(3 * s + 1) };
    desc[3 * s + 1] = (struct vq_desc){ buf, len, (uint16_t)(1 | (type ? 0 : 2)), (uint16_t)(3 * s + 2) };
    desc[3 * s + 2] = (struct vq_desc){ (uintptr_t)&st[s], 1, 2, 0 };
    uint16_t i = avail[1];
    avail[2 + i % BQ_SIZE] = (uint16_t)(3 * s);
    __asm__ volatile("" ::: "memory");
    avail[1] = (uint16_t)(i + 1);
}

/* One pass over [0, total) with depth requests in flight; 0 on success. */
static int pass(volatile uint16_t *notify, uint32_t type, uint64_t total,
                uint32_t len, int depth)
{
    static uint16_t last;
    uint64_t next = 0, done = 0;
    int bad = 0;
    for (int s = 0; s < depth && next < total; s++, next += len)
        submit(s, type, next, len);
    __asm__ volatile("mfence" ::: "memory");
    *notify = 0;
    uint64_t t0 = rdtsc();
    while (done < total) {
        if (used.idx == last) {
            if (rdtsc() - t0 > 200000000000ull)
                return -1;
            __asm__ volatile("pause");
            continue;
        }
        int s = (int)(used.ring[last % BQ_SIZE].id / 3);
        last++;
        bad |= st[s] != 0;
        done += len;
        if (next < total) {
            submit(s, type, next, len);
            next += len;
            __asm__ volatile("mfence" ::: "memory");
            *notify = 0;
        }
    }
    return bad ? -1 : 0;
}

void blkbench(uint64_t mib, uint64_t req_kib, uint64_t depth)
{
    struct vdev d;
    uint32_t len = (uint32_t)(req_kib ? req_kib : 1024) << 10;
    if (depth < 1 || depth > MAX_DEPTH)
        depth = 1;
    volatile uint16_t *notify = 0;
    if (virtio_find(&d, 0x1042, 0x1001) == 1 && virtio_start(&d) == 0)
        notify = virtio_queue_at(&d, 0, BQ_SIZE, desc, (const void *)(uintptr_t)avail,
                                 (const void *)(uintptr_t)&used);
    if (!notify) {
        puts_("blkbench: no virtio-blk queue\n");
        return;
    }
    virtio_ready(&d);
    uint64_t total = mib << 20;
    puts_("blkbench: read\n");
    int r = pass(notify, 0, total, len, (int)depth);
    puts_(r ? "blkbench: read failed\n" : "blkbench: read done\n");
    puts_("blkbench: write\n");
    r = pass(notify, 1, total, len, (int)depth);
    puts_(r ? "blkbench: write failed\n" : "blkbench: write done\n");
}
