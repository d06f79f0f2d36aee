/* virtio-net without a guest OS: the test is the driver. It finds the
 * function, negotiates, sets up the receive and transmit queues in guest
 * RAM and exchanges frames with a backend of its own; malformed transmit
 * chains (runt, oversized, device-writable) are dropped while the device
 * keeps working, and frames wait for receive buffers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "hw/irq.h"
#include "hw/memory.h"
#include "hw/pci/pci.h"
#include "hw/virtio/virtio-net.h"
#include "hw/virtio/virtio.h"
#include "net/net.h"
#include "util/mainloop.h"
#include "virtio-pci-test.h"

#define RAM_SIZE (8u << 20)
#define QN 16
#define RXQ 0x10000            /* desc, avail, used at +0, +0x1000, +0x2000 */
#define TXQ 0x20000
#define RXBUF 0x100000         /* 4 KiB per receive slot */
#define TXBUF 0x200000         /* 128 KiB of transmit data */
#define HDR VIRTIO_NET_HDR_LEN

struct chip { struct irqchip c; };
static void set_gsi(struct irqchip *c, unsigned g, int l) {}
static void send_msi(struct irqchip *c, uint64_t a, uint32_t d) {}

struct sink {
    struct net_client nc;
    int got;
    size_t len;
    uint8_t data[2048];
};

static ssize_t sink_receive(struct net_client *nc, const struct iovec *iov, int n)
{
    struct sink *s = nc->opaque;
    s->got++;
    s->len = 0;
    for (int i = 0; i < n; i++) {
        if (s->len + iov[i].iov_len <= sizeof(s->data))
            memcpy(s->data + s->len, iov[i].iov_base, iov[i].iov_len);
        s->len += iov[i].iov_len;
    }
    return (ssize_t)s->len;
}

static const struct net_client_ops sink_ops = { .type = "test", .receive = sink_receive };

static struct {
    struct chip chip;
    struct mainloop *ml;
    struct address_space *mem, *io;
    uint8_t *ram;
    struct pci_bus *bus;
    int devfn;
    uint64_t common, notify, device;
    uint32_t notify_mult;
    uint16_t avail[2], notify_off[2];
    struct sink sink;
} V;

static void probe(void)
{
    struct vpci_windows w = vpci_probe(V.io, 0x10411af4);
    V.devfn = w.devfn;
    assert_true(V.devfn > 0);
    V.common = w.common;
    V.notify = w.notify;
    V.notify_mult = w.notify_mult;
    V.device = w.device;
    assert_true(V.common && V.notify && V.device);
}

static void c8(int off, uint8_t v) { as_write(V.mem, V.common + off, v, 1); }
static void c32(int off, uint32_t v) { as_write(V.mem, V.common + off, v, 4); }
static uint16_t ru16(uint64_t a) { uint16_t v; memcpy(&v, V.ram + a, 2); return v; }

static void queue_setup(int q, uint64_t base)
{
    V.notify_off[q] = vpci_queue_enable(V.mem, V.common, q, QN, base);
}

static uint64_t driver_init(void)
{
    c8(20, 0);
    c8(20, 3);
    c32(0, 0);
    uint64_t f = (uint32_t)as_read(V.mem, V.common + 4, 4);
    c32(0, 1);
    f |= (uint64_t)as_read(V.mem, V.common + 4, 4) << 32;
    uint64_t want = f & (1ULL << VIRTIO_F_VERSION_1 | 1ULL << 5 | 1ULL << 16);
    c32(8, 0); c32(12, (uint32_t)want);
    c32(8, 1); c32(12, (uint32_t)(want >> 32));
    c8(20, 11);
    assert_int_equal(as_read(V.mem, V.common + 20, 1), 11);
    queue_setup(0, RXQ);
    queue_setup(1, TXQ);
    c8(20, 15);
    return f;
}

static void put_desc(uint64_t q, int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    struct virtq_desc d = { addr, len, flags, next };
    memcpy(V.ram + q + 16 * i, &d, 16);
}

static void publish(int q, uint16_t head)
{
    uint64_t base = q ? TXQ : RXQ;
    memcpy(V.ram + base + 0x1000 + 4 + 2 * (V.avail[q] % QN), &head, 2);
    V.avail[q]++;
    __atomic_store_n((uint16_t *)(V.ram + base + 0x1000 + 2), V.avail[q], __ATOMIC_RELEASE);
    as_write(V.mem, V.notify + (uint64_t)V.notify_off[q] * V.notify_mult, q, 2);
}

static uint16_t used_idx(int q) { return ru16((q ? TXQ : RXQ) + 0x2000 + 2); }

static uint32_t used_len(int q, uint16_t i)
{
    uint32_t v;
    memcpy(&v, V.ram + (q ? TXQ : RXQ) + 0x2000 + 4 + 8 * (i % QN) + 4, 4);
    return v;
}

/* Transmit: header then len bytes of fill, split into `pieces` descriptors. */
static void tx(uint32_t len, uint8_t fill, int pieces, uint16_t extra_flags)
{
    memset(V.ram + TXBUF, 0, HDR);
    memset(V.ram + TXBUF + HDR, fill, len);
    uint32_t total = HDR + len, per = (total + pieces - 1) / pieces, off = 0;
    for (int i = 0; i < pieces; i++) {
        uint32_t n = total - off < per ? total - off : per;
        put_desc(TXQ, i, TXBUF + off, n, (i + 1 < pieces ? VIRTQ_DESC_F_NEXT : 0) |
                 (i + 1 == pieces ? extra_flags : 0), (uint16_t)(i + 1));
        off += n;
    }
    publish(1, 0);
}

static void post_rx(int slot, uint32_t size)
{
    put_desc(RXQ, slot, RXBUF + 4096 * slot, size, VIRTQ_DESC_F_WRITE, 0);
    publish(0, (uint16_t)slot);
}

static bool broken(void) { return as_read(V.mem, V.common + 20, 1) & VIRTIO_STATUS_NEEDS_RESET; }

static void test_frames(void **state)
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
    assert_int_equal(net_client_add(&V.sink.nc, &sink_ops, "sink", &V.sink), 0);
    struct virtio_net_conf conf = { .mac = { 0x52, 0x54, 0, 1, 2, 3 }, .backend = &V.sink.nc,
                                    .queue_size = 256, .name = "nic0" };
    struct error err = {0};
    assert_non_null(virtio_net_pci_new(V.bus, -1, "nic0", &conf, &err));
    pci_bus_reset(V.bus);
    probe();
    uint64_t f = driver_init();
    assert_true(f >> 5 & 1);                                  /* MAC */
    assert_true(f >> 16 & 1);                                 /* STATUS */
    assert_true(f >> 0 & 1);                                  /* checksums completed by the device */
    assert_true(f >> 15 & 1);                                 /* mergeable receive buffers */
    assert_false(f >> 11 & 1);                                /* no TSO without a tap to pass it */
    assert_int_equal(as_read(V.mem, V.device + 5, 1), 3);     /* mac[5] */
    assert_int_equal(as_read(V.mem, V.device + 6, 2), 1);     /* link up */

    tx(60, 0xa1, 1, 0);
    assert_int_equal(V.sink.got, 1);
    assert_int_equal(V.sink.len, 60);
    assert_int_equal(V.sink.data[59], 0xa1);
    assert_int_equal(used_idx(1), 1);
    tx(1514, 0xa2, 3, 0);                                     /* split header and data */
    assert_int_equal(V.sink.got, 2);
    assert_int_equal(V.sink.len, 1514);
    /* malformed: each is returned unsent, the device stays usable */
    tx(0, 0, 1, 0);                                           /* header only */
    tx(NET_MAX_FRAME + 100, 0xee, 4, 0);                      /* oversized */
    tx(60, 0xee, 2, VIRTQ_DESC_F_WRITE);                      /* device-writable part */
    assert_int_equal(V.sink.got, 2);
    assert_int_equal(used_idx(1), 5);
    assert_false(broken());
    tx(100, 0xa3, 1, 0);
    assert_int_equal(V.sink.got, 3);
    assert_int_equal(V.sink.data[0], 0xa3);

    /* receive: no buffers yet, so the frame waits; a posted buffer takes it */
    uint8_t frame[200];
    memset(frame, 0xb1, sizeof(frame));
    assert_int_equal(net_send_buf(&V.sink.nc, frame, sizeof(frame)), 0);
    assert_int_equal(used_idx(0), 0);
    post_rx(0, 2048);
    assert_int_equal(used_idx(0), 1);
    assert_int_equal(used_len(0, 0), HDR + 200);
    assert_int_equal(ru16(RXBUF + 10), 1);                     /* num_buffers */
    assert_int_equal(V.ram[RXBUF + HDR + 199], 0xb1);
    /* a buffer too small for the frame comes back empty; the next one is used */
    post_rx(1, 64);
    post_rx(2, 2048);
    memset(frame, 0xb2, sizeof(frame));
    net_send_buf(&V.sink.nc, frame, sizeof(frame));
    assert_int_equal(used_idx(0), 2);
    assert_int_equal(used_len(0, 1), 0);
    net_send_buf(&V.sink.nc, frame, sizeof(frame));
    assert_int_equal(used_idx(0), 3);
    assert_int_equal(V.ram[RXBUF + 2 * 4096 + HDR], 0xb2);
    assert_false(broken());

    pci_bus_free(V.bus);
    net_client_remove(&V.sink.nc);
    as_free(V.mem);
    as_free(V.io);
    ml_free(V.ml);
    free(V.ram);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_frames) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
