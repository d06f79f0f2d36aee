/* virtio-blk without a guest OS: the test is the driver. It enumerates the
 * function through 0xCF8/0xCFC, walks the virtio capabilities, negotiates,
 * lays a queue out in guest RAM, submits read/write/flush/discard/
 * write-zeroes/get-id requests (many at once) and bad ones, and checks the
 * image with qemu-img and qemu-io once the device is gone. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include "block/block.h"
#include "block-test.h"
#include "hw/irq.h"
#include "hw/memory.h"
#include "hw/pci/pci.h"
#include "hw/virtio/virtio-blk.h"
#include "hw/virtio/virtio.h"
#include "util/mainloop.h"
#include "virtio-pci-test.h"

#define RAM_SIZE (8u << 20)
#define QN 64
#define DESC 0x10000
#define AVAIL 0x11000
#define USED 0x12000
#define HDRS 0x20000          /* 16-byte request headers, one per slot */
#define STATUS 0x30000        /* one status byte per slot */
#define DATA 0x100000         /* 64 KiB per slot */
#define SLOT_DATA 0x10000
#define DISK_SIZE (16u << 20)

struct chip { struct irqchip c; int level[24]; int msis; };
static void set_gsi(struct irqchip *c, unsigned g, int l) { ((struct chip *)c)->level[g] = l; }
static void send_msi(struct irqchip *c, uint64_t a, uint32_t d) { ((struct chip *)c)->msis++; }

static struct {
    struct chip chip;
    struct mainloop *ml;
    struct address_space *mem, *io;
    uint8_t *ram;
    struct pci_bus *bus;
    int devfn;
    uint64_t common, notify, device, isr;
    uint32_t notify_mult;
    uint16_t avail_idx, used_seen, notify_off;
} V;

static uint32_t cfg_read(int reg, unsigned size)
{
    as_write(V.io, 0xcf8, 0x80000000u | V.devfn << 8 | (reg & 0xfc), 4);
    return (uint32_t)as_read(V.io, 0xcfc + (reg & 3), size);
}

/* Find the function and its virtio windows the way Linux's virtio_pci does. */
static void probe(void)
{
    struct vpci_windows w = vpci_probe(V.io, 0x10421af4);
    V.devfn = w.devfn;
    assert_true(V.devfn > 0);
    assert_int_equal(cfg_read(PCI_REVISION, 1), 1);
    V.common = w.common;
    V.notify = w.notify;
    V.notify_mult = w.notify_mult;
    V.isr = w.isr;
    V.device = w.device;
    assert_int_equal(w.found, 0x1e);
}

static void c8(int off, uint8_t v) { as_write(V.mem, V.common + off, v, 1); }
static void c16(int off, uint16_t v) { as_write(V.mem, V.common + off, v, 2); }
static void c32(int off, uint32_t v) { as_write(V.mem, V.common + off, v, 4); }
static uint32_t r32(uint64_t a) { return (uint32_t)as_read(V.mem, a, 4); }

static uint64_t device_features(void)
{
    c32(0, 0);
    uint64_t f = r32(V.common + 4);
    c32(0, 1);
    return f | (uint64_t)r32(V.common + 4) << 32;
}

/* Reset, negotiate, set up queue 0 in RAM, DRIVER_OK. */
static uint64_t driver_init(void)
{
    c8(20, 0);
    assert_int_equal(as_read(V.mem, V.common + 20, 1), 0);
    c8(20, 1);
    c8(20, 3);
    uint64_t f = device_features();
    assert_true(f >> VIRTIO_F_VERSION_1 & 1);
    uint64_t want = f & (1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_INDIRECT_DESC |
                         1ULL << 2 | 1ULL << 5 | 1ULL << 6 | 1ULL << 9 | 1ULL << 13 | 1ULL << 14);
    c32(8, 0);
    c32(12, (uint32_t)want);
    c32(8, 1);
    c32(12, (uint32_t)(want >> 32));
    c8(20, 11);
    assert_int_equal(as_read(V.mem, V.common + 20, 1), 11);
    assert_int_equal(as_read(V.mem, V.common + 18, 2), 1);   /* num_queues */
    c16(22, 0);
    assert_int_equal(as_read(V.mem, V.common + 24, 2), 256);
    c16(24, QN);
    c32(32, DESC); c32(36, 0);
    c32(40, AVAIL); c32(44, 0);
    c32(48, USED); c32(52, 0);
    V.notify_off = (uint16_t)as_read(V.mem, V.common + 30, 2);
    memset(V.ram + AVAIL, 0, 0x2000);
    V.avail_idx = V.used_seen = 0;
    c16(28, 1);
    assert_int_equal(as_read(V.mem, V.common + 28, 2), 1);
    c8(20, 15);
    return f;
}

static void put_desc(int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    struct virtq_desc d = { addr, len, flags, next };
    memcpy(V.ram + DESC + 16 * i, &d, 16);
}

/* Queue request `slot` (three descriptors 3*slot..3*slot+2) without notifying. */
static void queue_req(int slot, uint32_t type, uint64_t sector, uint32_t len, bool dev_writes)
{
    uint8_t hdr[16] = {0};
    memcpy(hdr, &type, 4);
    memcpy(hdr + 8, &sector, 8);
    memcpy(V.ram + HDRS + 16 * slot, hdr, 16);
    V.ram[STATUS + slot] = 0xee;
    int d = 3 * slot;
    if (len) {
        put_desc(d, HDRS + 16 * slot, 16, VIRTQ_DESC_F_NEXT, d + 1);
        put_desc(d + 1, DATA + SLOT_DATA * slot, len,
                 VIRTQ_DESC_F_NEXT | (dev_writes ? VIRTQ_DESC_F_WRITE : 0), d + 2);
    } else {
        put_desc(d, HDRS + 16 * slot, 16, VIRTQ_DESC_F_NEXT, d + 2);
    }
    put_desc(d + 2, STATUS + slot, 1, VIRTQ_DESC_F_WRITE, 0);
    uint16_t head = d;
    memcpy(V.ram + AVAIL + 4 + 2 * (V.avail_idx % QN), &head, 2);
    V.avail_idx++;
    __atomic_store_n((uint16_t *)(V.ram + AVAIL + 2), V.avail_idx, __ATOMIC_RELEASE);
}

static void kick(void)
{
    as_write(V.mem, V.notify + (uint64_t)V.notify_off * V.notify_mult, 0, 2);
}

static void wait_used(uint16_t target)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        uint16_t u = __atomic_load_n((uint16_t *)(V.ram + USED + 2), __ATOMIC_ACQUIRE);
        if (u == target)
            break;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        assert_true(t.tv_sec - t0.tv_sec < 10);
        usleep(500);
    }
    V.used_seen = target;
}

/* One request, waited for; returns its status byte. */
static int req(uint32_t type, uint64_t sector, uint32_t len, bool dev_writes)
{
    queue_req(0, type, sector, len, dev_writes);
    kick();
    wait_used(V.used_seen + 1);
    return V.ram[STATUS];
}

static uint8_t *slot_data(int slot) { return V.ram + DATA + SLOT_DATA * slot; }

static int dz_mode;

static struct pci_dev *add_disk(const char *path, const char *fmt, bool ro)
{
    struct bdev *bs;
    struct error err = {0};
    int r = bdev_open_simple(&bs, path, fmt, ro ? 0 : BDEV_O_RDWR, &err);
    if (r < 0)
        fail_msg("%s", err.msg);
    struct virtio_blk_conf conf = { .bs = bs, .read_only = ro, .discard_unmap = true,
                                    .serial = "QKK-SERIAL-0123456789xyz", .num_queues = 1,
                                    .queue_size = 256, .logical_block_size = 512,
                                    .physical_block_size = 4096, .detect_zeroes = dz_mode };
    struct pci_dev *d = virtio_blk_pci_new(V.bus, V.ml, -1, "disk0", &conf, &err);
    if (!d)
        fail_msg("%s", err.msg);
    pci_bus_reset(V.bus);
    probe();
    return d;
}

static int setup(void **state)
{
    memset(&V, 0, sizeof(V));
    V.chip.c.set_gsi = set_gsi;
    V.chip.c.send_msi = send_msi;
    V.ml = ml_new();
    V.mem = as_new("mem", V.ml);
    V.io = as_new("io", V.ml);
    V.ram = calloc(1, RAM_SIZE);
    as_add_ram(V.mem, 0, RAM_SIZE, V.ram, "ram");
    V.bus = pci_bus_new(V.mem, V.io, &V.chip.c, V.ml);
    return bt_setup(state);
}

static int teardown(void **state)
{
    pci_bus_free(V.bus);
    as_free(V.mem);
    as_free(V.io);
    ml_free(V.ml);
    free(V.ram);
    return bt_teardown(state);
}

static int sh(const char *fmt, const char *a)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), fmt, a, a, a);
    return system(cmd);
}

static void exercise(const char *path, const char *fmt)
{
    add_disk(path, fmt, false);
    uint64_t f = driver_init();
    assert_false(f >> 5 & 1);                                  /* not read-only */
    uint64_t cap;
    memcpy(&cap, &(uint64_t){ as_read(V.mem, V.device, 8) }, 8);
    assert_int_equal(cap, DISK_SIZE / 512);
    assert_int_equal(as_read(V.mem, V.device + 20, 4), 512);   /* blk_size */
    assert_int_equal(as_read(V.mem, V.device + 24, 1), 3);     /* 4 KiB physical */

    /* Write 64 KiB at sector 8, read it back into another buffer. */
    bt_fill(slot_data(0), 4096, 65536, 7);
    assert_int_equal(req(1, 8, 65536, false), 0);
    memset(slot_data(0), 0, 65536);
    assert_int_equal(req(0, 8, 65536, true), 0);
    assert_int_equal(bt_check(slot_data(0), 4096, 65536, 7), -1);
    uint32_t used_len;
    memcpy(&used_len, V.ram + USED + 4 + 8 * ((V.used_seen - 1) % QN) + 4, 4);
    assert_int_equal(used_len, 65537);
    assert_int_equal(req(4, 0, 0, false), 0);                 /* flush */

    /* GET_ID: the first 20 bytes of the serial. */
    assert_int_equal(req(8, 0, 20, true), 0);
    assert_memory_equal(slot_data(0), "QKK-SERIAL-012345678", 20);

    /* 20 writes in flight at once, then read them all back. */
    for (int s = 0; s < 20; s++) {
        bt_fill(slot_data(s), (uint64_t)(1 + s) << 20, 32768, s + 11);
        queue_req(s, 1, (uint64_t)(1 + s) << 9, 32768, false);
    }
    kick();
    wait_used(V.used_seen + 20);
    for (int s = 0; s < 20; s++) {
        assert_int_equal(V.ram[STATUS + s], 0);
        memset(slot_data(s), 0, 32768);
        queue_req(s, 0, (uint64_t)(1 + s) << 9, 32768, true);
    }
    kick();
    wait_used(V.used_seen + 20);
    for (int s = 0; s < 20; s++) {
        assert_int_equal(V.ram[STATUS + s], 0);
        assert_int_equal(bt_check(slot_data(s), (uint64_t)(1 + s) << 20, 32768, s + 11), -1);
    }

    /* Write zeroes and discard over written data. */
    uint8_t seg[16] = {0};
    uint64_t sec = 1 << 11;
    uint32_t n = 16;
    memcpy(seg, &sec, 8);
    memcpy(seg + 8, &n, 4);
    memcpy(slot_data(0), seg, 16);
    assert_int_equal(req(13, 0, 16, false), 0);
    assert_int_equal(req(0, 1 << 11, 8192, true), 0);
    assert_true(bt_is_zero(slot_data(0), 8192));
    sec = 2 << 11;
    n = 128;
    memcpy(seg, &sec, 8);
    memcpy(seg + 8, &n, 4);
    memcpy(slot_data(0), seg, 16);
    assert_int_equal(req(11, 0, 16, false), 0);
    uint32_t bad_flags = 1;
    memcpy(slot_data(0) + 12, &bad_flags, 4);               /* unmap flag on a discard */
    assert_int_equal(req(11, 0, 16, false), 2);

    /* Bad requests get an error status, never a crash or a stray write. */
    assert_int_equal(req(0, DISK_SIZE / 512 - 1, 1024, true), 1);    /* past the end */
    assert_int_equal(req(1, DISK_SIZE / 512, 512, false), 1);
    assert_int_equal(req(0, ~0ULL / 256, 512, true), 1);             /* overflowing sector */
    assert_int_equal(req(0, 0, 100, true), 1);                       /* not whole sectors */
    assert_int_equal(req(99, 0, 512, true), 2);                      /* unknown type */
    sec = DISK_SIZE / 512 - 4;
    n = 8;
    memcpy(seg, &sec, 8);
    memcpy(seg + 8, &n, 4);
    memcpy(slot_data(0), seg, 16);
    assert_int_equal(req(13, 0, 16, false), 1);
    bt_fill(slot_data(0), 0, 512, 3);
    assert_int_equal(req(1, DISK_SIZE / 512 - 1, 512, false), 0);   /* the last sector is fine */
}

static void check_image(const char *path, const char *fmt)
{
    char cmd[2048], got[300], expect[300];
    snprintf(got, sizeof(got), "%s", bt_path("got"));
    snprintf(expect, sizeof(expect), "%s", bt_path("expect"));
    if (!strcmp(fmt, "qcow2"))
        assert_int_equal(sh("qemu-img check -q '%s'", path), 0);
    /* Sector 8 holds pattern 7: qemu-io reads it and compares with a copy. */
    uint8_t *buf = malloc(65536);
    bt_fill(buf, 4096, 65536, 7);
    FILE *f = fopen(expect, "wb");
    fwrite(buf, 1, 65536, f);
    fclose(f);
    free(buf);
    snprintf(cmd, sizeof(cmd), "qemu-img convert -f %s -O raw '%s' '%s' && "
             "cmp -n 65536 -i 4096:0 '%s' '%s'", fmt, path, got, got, expect);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "qemu-io -f %s -c 'read -P 0 %u 8k' '%s' | grep -q 'read 8192'",
             fmt, 1u << 20, path);
    assert_int_equal(system(cmd), 0);
}

static void test_raw(void **state)
{
    const char *p = bt_path("disk.raw");
    assert_int_equal(sh("truncate -s 16M '%s'", p), 0);
    exercise(p, "raw");
    pci_bus_free(V.bus);                                        /* closes the image */
    V.bus = NULL;
    check_image(p, "raw");
}

static void test_qcow2(void **state)
{
    const char *p = bt_path("disk.qcow2");
    assert_int_equal(sh("qemu-img create -q -f qcow2 '%s' 16M", p), 0);
    exercise(p, "qcow2");
    pci_bus_free(V.bus);
    V.bus = NULL;
    check_image(p, "qcow2");
}

static void test_read_only(void **state)
{
    const char *p = bt_path("ro.raw");
    assert_int_equal(sh("truncate -s 16M '%s'", p), 0);
    add_disk(p, "raw", true);
    uint64_t f = driver_init();
    assert_true(f >> 5 & 1);
    assert_int_equal(req(1, 0, 512, false), 1);
    assert_int_equal(req(0, 0, 512, true), 0);
}

static void test_malformed(void **state)
{
    const char *p = bt_path("m.raw");
    assert_int_equal(sh("truncate -s 16M '%s'", p), 0);
    add_disk(p, "raw", false);
    driver_init();
    /* A request with only a header: no status byte to write. */
    memset(V.ram + HDRS, 0, 16);
    put_desc(0, HDRS, 16, 0, 0);
    uint16_t head = 0;
    memcpy(V.ram + AVAIL + 4, &head, 2);
    V.avail_idx = 1;
    memcpy(V.ram + AVAIL + 2, &V.avail_idx, 2);
    kick();
    assert_true(as_read(V.mem, V.common + 20, 1) & VIRTIO_STATUS_NEEDS_RESET);
    /* A looping chain after a reset. */
    driver_init();
    put_desc(0, HDRS, 16, VIRTQ_DESC_F_NEXT, 1);
    put_desc(1, STATUS, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
    memcpy(V.ram + AVAIL + 4, &head, 2);
    V.avail_idx = 1;
    memcpy(V.ram + AVAIL + 2, &V.avail_idx, 2);
    kick();
    assert_true(as_read(V.mem, V.common + 20, 1) & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(__atomic_load_n((uint16_t *)(V.ram + USED + 2), __ATOMIC_ACQUIRE), 0);
    /* INTx carried the config interrupt (MSI-X is off); reading ISR drops it. */
    unsigned gsi = pci_dev_gsi(pci_bus_find(V.bus, V.devfn));
    assert_int_equal(V.chip.level[gsi], 1);
    assert_int_equal(as_read(V.mem, V.isr, 1) & 2, 2);
    assert_int_equal(V.chip.level[gsi], 0);
    /* And after a reset the device works again. */
    driver_init();
    bt_fill(slot_data(0), 0, 4096, 5);
    assert_int_equal(req(1, 0, 4096, false), 0);
    /* Ring addresses outside RAM: refused at enable. */
    c8(20, 0);
    c8(20, 3);
    c32(8, 1);
    c32(12, 1);
    c8(20, 11);
    c16(22, 0);
    c16(24, QN);
    c32(32, RAM_SIZE - 64);
    c16(28, 1);
    assert_int_equal(as_read(V.mem, V.common + 28, 2), 0);
    assert_true(as_read(V.mem, V.common + 20, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

/* detect-zeroes=unmap: a write of zeroes over data deallocates the clusters. */
static void test_detect_zeroes(void **state)
{
    const char *p = bt_path("dz.qcow2");
    assert_int_equal(sh("qemu-img create -q -f qcow2 '%s' 16M", p), 0);
    dz_mode = VBLK_DZ_UNMAP;
    add_disk(p, "qcow2", false);
    dz_mode = VBLK_DZ_OFF;
    driver_init();
    bt_fill(slot_data(0), 0, 65536, 9);
    assert_int_equal(req(1, 128, 65536, false), 0);           /* data at 64 KiB */
    bt_fill(slot_data(0), 0, 65536, 9);
    assert_int_equal(req(1, 256, 65536, false), 0);           /* and at 128 KiB */
    memset(slot_data(0), 0, 65536);
    assert_int_equal(req(1, 128, 65536, false), 0);           /* zeroes over the first */
    assert_int_equal(req(0, 128, 65536, true), 0);
    assert_true(bt_is_zero(slot_data(0), 65536));
    pci_bus_free(V.bus);
    V.bus = NULL;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "qemu-img map --output=json '%s' | grep -q "
             "'\"start\": 65536, \"length\": 65536, \"depth\": 0, \"present\": true, "
             "\"zero\": true, \"data\": false'", p);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "qemu-img map --output=json '%s' | grep -q "
             "'\"start\": 131072, \"length\": 65536, \"depth\": 0, \"present\": true, "
             "\"zero\": false, \"data\": true'", p);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qcow2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detect_zeroes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
