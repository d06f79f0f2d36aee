/* virtio-net's offloads, with the test as the guest driver: partial
 * checksums completed for a plain backend, segmentation refused there,
 * mergeable receive buffers (one frame across several, published at once,
 * or waiting until enough are posted), checksum-valid marking from a
 * backend that vouches for its frames, the backend's MTU in config space,
 * and a header-passing backend (a vnet_hdr tap) getting the guest's header
 * and the offloads its driver accepted. */
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
#include "util/iov.h"
#include "util/mainloop.h"
#include "virtio-pci-test.h"

#define RAM_SIZE (8u << 20)
#define QN 16
#define RXQ 0x10000
#define TXQ 0x20000
#define RXBUF 0x100000         /* 4 KiB apart */
#define TXBUF 0x200000
#define HDR VIRTIO_NET_HDR_LEN

enum { F_CSUM = 0, F_GUEST_CSUM = 1, F_MTU = 3, F_MAC = 5, F_GUEST_TSO4 = 7, F_HOST_TSO4 = 11,
       F_MRG = 15 };

struct backend {
    struct net_client nc;
    int got;
    size_t len;
    uint8_t data[4096];
    unsigned offload;
    int offload_calls;
};

static ssize_t be_receive(struct net_client *nc, const struct iovec *iov, int n)
{
    struct backend *b = nc->opaque;
    b->got++;
    b->len = iov_size(iov, n);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (off + iov[i].iov_len <= sizeof(b->data))
            memcpy(b->data + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    return (ssize_t)b->len;
}

static void be_offload(struct net_client *nc, unsigned off)
{
    struct backend *b = nc->opaque;
    b->offload = off;
    b->offload_calls++;
}

static const struct net_client_ops be_ops = {
    .type = "test", .receive = be_receive, .set_offload = be_offload,
};

static struct {
    struct irqchip chip;
    struct mainloop *ml;
    struct address_space *mem, *io;
    uint8_t *ram;
    struct pci_bus *bus;
    struct vpci_windows w;
    uint16_t avail[2], notify_off[2], rx_next;
    struct backend be;
} V;

static void set_gsi(struct irqchip *c, unsigned g, int l) {}
static void send_msi(struct irqchip *c, uint64_t a, uint32_t d) {}

static void c8(int off, uint8_t v) { as_write(V.mem, V.w.common + off, v, 1); }
static void c32(int off, uint32_t v) { as_write(V.mem, V.w.common + off, v, 4); }
static uint16_t ru16(uint64_t a) { uint16_t v; memcpy(&v, V.ram + a, 2); return v; }
static uint32_t ru32(uint64_t a) { uint32_t v; memcpy(&v, V.ram + a, 4); return v; }

static void queue_setup(int q, uint64_t base)
{
    V.notify_off[q] = vpci_queue_enable(V.mem, V.w.common, q, QN, base);
}

/* A NIC peered with our backend; the driver accepts `want` of what is
 * offered. Returns the offered features. */
static uint64_t setup(bool vnet_hdr, bool csum_valid, uint16_t mtu, uint64_t want)
{
    memset(&V, 0, sizeof(V));
    V.chip.set_gsi = set_gsi;
    V.chip.send_msi = send_msi;
    V.ml = ml_new();
    V.mem = as_new("mem", V.ml);
    V.io = as_new("io", V.ml);
    V.ram = calloc(1, RAM_SIZE);
    as_add_ram(V.mem, 0, RAM_SIZE, V.ram, "ram");
    V.bus = pci_bus_new(V.mem, V.io, &V.chip, V.ml);
    assert_int_equal(net_client_add(&V.be.nc, &be_ops, "be", &V.be), 0);
    V.be.nc.vnet_hdr_capable = vnet_hdr;
    V.be.nc.csum_valid = csum_valid;
    V.be.nc.mtu = mtu;
    struct virtio_net_conf conf = { .mac = { 0x52, 0x54, 0, 1, 2, 3 }, .backend = &V.be.nc,
                                    .queue_size = 256, .name = "nic0" };
    struct error err = {0};
    assert_non_null(virtio_net_pci_new(V.bus, -1, "nic0", &conf, &err));
    pci_bus_reset(V.bus);
    V.w = vpci_probe(V.io, 0x10411af4);
    assert_true(V.w.devfn > 0);
    c8(20, 0);
    c8(20, 3);
    c32(0, 0);
    uint64_t f = (uint32_t)as_read(V.mem, V.w.common + 4, 4);
    c32(0, 1);
    f |= (uint64_t)as_read(V.mem, V.w.common + 4, 4) << 32;
    want = (want | 1ULL << VIRTIO_F_VERSION_1) & f;
    c32(8, 0); c32(12, (uint32_t)want);
    c32(8, 1); c32(12, (uint32_t)(want >> 32));
    c8(20, 11);
    queue_setup(0, RXQ);
    queue_setup(1, TXQ);
    c8(20, 15);
    return f;
}

static void teardown(void)
{
    pci_bus_free(V.bus);
    net_client_remove(&V.be.nc);
    as_free(V.mem);
    as_free(V.io);
    ml_free(V.ml);
    free(V.ram);
}

static void put_desc(uint64_t q, int i, uint64_t addr, uint32_t len, uint16_t flags)
{
    struct virtq_desc d = { addr, len, flags, 0 };
    memcpy(V.ram + q + 16 * i, &d, 16);
}

static void publish(int q, uint16_t head)
{
    uint64_t base = q ? TXQ : RXQ;
    memcpy(V.ram + base + 0x1000 + 4 + 2 * (V.avail[q] % QN), &head, 2);
    V.avail[q]++;
    __atomic_store_n((uint16_t *)(V.ram + base + 0x1000 + 2), V.avail[q], __ATOMIC_RELEASE);
    as_write(V.mem, V.w.notify + (uint64_t)V.notify_off[q] * V.w.notify_mult, q, 2);
}

static uint16_t used_idx(int q) { return ru16((q ? TXQ : RXQ) + 0x2000 + 2); }
static uint32_t used_len(uint16_t i) { return ru32(RXQ + 0x2000 + 4 + 8 * (i % QN) + 4); }
static uint32_t used_id(uint16_t i) { return ru32(RXQ + 0x2000 + 4 + 8 * (i % QN)); }

/* Post one receive buffer of size bytes (slots are 4 KiB apart). */
static void post_rx(uint32_t size)
{
    int slot = V.rx_next++ % QN;
    put_desc(RXQ, slot, RXBUF + 4096 * slot, size, VIRTQ_DESC_F_WRITE);
    publish(0, (uint16_t)slot);
}

static void tx(const uint8_t *hdr, const uint8_t *frame, uint32_t len)
{
    memcpy(V.ram + TXBUF, hdr, HDR);
    memcpy(V.ram + TXBUF + HDR, frame, len);
    int slot = V.avail[1] % QN;
    put_desc(TXQ, slot, TXBUF, HDR + len, 0);
    publish(1, (uint16_t)slot);
}

/* A UDP/IPv4 frame: 14 Ethernet + 20 IP + 8 UDP + payload. */
static uint32_t udp_frame(uint8_t *f, uint32_t payload)
{
    memset(f, 0, 42 + payload);
    f[12] = 0x08;
    f[14] = 0x45;
    f[23] = 17;
    memcpy(f + 26, (uint8_t[]){ 10, 0, 2, 15, 10, 0, 2, 2 }, 8);
    f[34] = 0x30; f[35] = 0x39; f[36] = 0x00; f[37] = 0x35;
    f[38] = (uint8_t)((8 + payload) >> 8);
    f[39] = (uint8_t)(8 + payload);
    for (uint32_t i = 0; i < payload; i++)
        f[42 + i] = (uint8_t)(i * 7 + 1);
    return 42 + payload;
}

/* Ones' complement sum, big-endian words, written the plain way. */
static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    return s;
}

static uint16_t fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

static uint16_t udp_pseudo(const uint8_t *f, uint32_t udp_len)
{
    return fold(sum16(f + 26, 8, 17 + udp_len));
}

static void test_tx_checksum_completed(void **state)
{
    uint64_t f = setup(false, false, 0, 1ULL << F_CSUM | 1ULL << F_MAC);
    assert_true(f >> F_CSUM & 1);
    assert_false(f >> F_HOST_TSO4 & 1);
    assert_false(f >> F_MTU & 1);
    uint8_t fr[2048], hdr[HDR] = { 1 };            /* NEEDS_CSUM */
    uint32_t len = udp_frame(fr, 1001);            /* odd length */
    uint16_t ph = udp_pseudo(fr, 8 + 1001);
    fr[40] = (uint8_t)(ph >> 8);                   /* the driver seeds the pseudo-header sum */
    fr[41] = (uint8_t)ph;
    uint16_t start = 34, off = 6;
    memcpy(hdr + 6, &start, 2);
    memcpy(hdr + 8, &off, 2);
    tx(hdr, fr, len);
    assert_int_equal(V.be.got, 1);
    assert_int_equal(V.be.len, len);
    /* A correct UDP checksum makes the whole datagram plus pseudo-header sum to 0xffff. */
    assert_int_equal(fold(sum16(V.be.data + 34, len - 34, udp_pseudo(V.be.data, 8 + 1001))),
                     0xffff);
    assert_true(V.be.data[40] || V.be.data[41]);
    assert_memory_equal(V.be.data + 42, fr + 42, 1001);

    /* checksum offset past the end, and a GSO frame never offered: dropped */
    start = (uint16_t)(len - 1);
    memcpy(hdr + 6, &start, 2);
    tx(hdr, fr, len);
    uint8_t gso[HDR] = { 0, 1 };
    tx(gso, fr, len);
    assert_int_equal(V.be.got, 1);
    assert_int_equal(used_idx(1), 3);
    teardown();
}

static void test_rx_mergeable(void **state)
{
    uint64_t f = setup(false, true, 0, 1ULL << F_MRG | 1ULL << F_GUEST_CSUM);
    assert_true(f >> F_MRG & 1);
    uint8_t fr[4096];
    uint32_t len = udp_frame(fr, 3000);
    post_rx(1024);
    assert_int_equal(net_send_buf(&V.be.nc, fr, len), 0);    /* 1 of 3 buffers: it waits */
    assert_int_equal(used_idx(0), 0);
    post_rx(1024);
    assert_int_equal(used_idx(0), 0);
    post_rx(2048);
    assert_int_equal(used_idx(0), 3);                          /* all three at once */
    assert_int_equal(used_len(0), 1024);
    assert_int_equal(used_len(1), 1024);
    assert_int_equal(used_len(2), HDR + len - 2048);
    assert_int_equal(used_id(0), 0);
    assert_int_equal(used_id(2), 2);
    assert_int_equal(ru16(RXBUF + 10), 3);                     /* num_buffers */
    assert_int_equal(V.ram[RXBUF], 2);                         /* DATA_VALID: backend vouches */
    assert_memory_equal(V.ram + RXBUF + HDR, fr, 1024 - HDR);
    assert_memory_equal(V.ram + RXBUF + 4096, fr + 1024 - HDR, 1024);
    assert_memory_equal(V.ram + RXBUF + 2 * 4096, fr + 2048 - HDR, len - (2048 - HDR));
    /* a small frame takes one buffer */
    post_rx(2048);
    assert_int_equal(net_send_buf(&V.be.nc, fr, 60), 60);
    assert_int_equal(used_idx(0), 4);
    assert_int_equal(ru16(RXBUF + 3 * 4096 + 10), 1);
    teardown();
}

static void test_rx_plain_backend_not_valid(void **state)
{
    setup(false, false, 0, 1ULL << F_GUEST_CSUM);
    uint8_t fr[128];
    uint32_t len = udp_frame(fr, 50);
    post_rx(2048);
    assert_int_equal(net_send_buf(&V.be.nc, fr, len), (ssize_t)len);
    assert_int_equal(used_idx(0), 1);
    assert_int_equal(V.ram[RXBUF], 0);                         /* the guest checks it */
    assert_int_equal(ru16(RXBUF + 10), 1);
    teardown();
}

static void test_mtu_from_backend(void **state)
{
    uint64_t f = setup(false, true, 65520, 1ULL << F_MTU);
    assert_true(f >> F_MTU & 1);
    assert_int_equal(as_read(V.mem, V.w.device + 10, 2), 65520);
    teardown();
}

static void test_vnet_hdr_passthrough(void **state)
{
    uint64_t f = setup(true, false, 0, 1ULL << F_CSUM | 1ULL << F_GUEST_CSUM |
                       1ULL << F_GUEST_TSO4 | 1ULL << F_HOST_TSO4 | 1ULL << F_MRG);
    assert_true(f >> F_HOST_TSO4 & 1);
    assert_true(f >> F_GUEST_TSO4 & 1);
    assert_true(V.be.nc.vnet_hdr);
    assert_int_equal(V.be.offload, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4);
    /* transmit: the guest's header goes to the backend untouched */
    uint8_t fr[2048], hdr[HDR] = { 1, 1, 54, 0, 0xa8, 0x05, 34, 0, 16, 0 };
    uint32_t len = udp_frame(fr, 100);
    tx(hdr, fr, len);
    assert_int_equal(V.be.got, 1);
    assert_int_equal(V.be.len, HDR + len);
    assert_memory_equal(V.be.data, hdr, 10);
    assert_memory_equal(V.be.data + HDR, fr, len);
    /* receive: the backend's header reaches the guest, num_buffers ours */
    uint8_t in[HDR + 2048] = { 2, 1, 54, 0, 0xa8, 0x05, 0, 0, 0, 0, 0x77, 0x77 };
    memcpy(in + HDR, fr, len);
    post_rx(4096);
    assert_int_equal(net_send_buf(&V.be.nc, in, HDR + len), (ssize_t)len);
    assert_int_equal(used_idx(0), 1);
    assert_int_equal(used_len(0), HDR + len);
    assert_memory_equal(V.ram + RXBUF, in, 10);
    assert_int_equal(ru16(RXBUF + 10), 1);
    assert_memory_equal(V.ram + RXBUF + HDR, fr, len);
    /* a reset takes the offloads back */
    c8(20, 0);
    assert_int_equal(V.be.offload, 0);
    teardown();
}

static void test_vnet_hdr_gso_refused_without_tso(void **state)
{
    setup(true, false, 0, 1ULL << F_GUEST_CSUM);
    assert_int_equal(V.be.offload, NET_OFFLOAD_CSUM);
    uint8_t fr[128], in[HDR + 128] = { 0, 1 };                 /* GSO the guest didn't take */
    uint32_t len = udp_frame(fr, 50);
    memcpy(in + HDR, fr, len);
    post_rx(2048);
    assert_true(net_send_buf(&V.be.nc, in, HDR + len) < 0);
    assert_int_equal(used_idx(0), 0);
    in[1] = 0;
    assert_int_equal(net_send_buf(&V.be.nc, in, HDR + len), (ssize_t)len);
    assert_int_equal(used_idx(0), 1);
    teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tx_checksum_completed),
        cmocka_unit_test(test_rx_mergeable),
        cmocka_unit_test(test_rx_plain_backend_not_valid),
        cmocka_unit_test(test_mtu_from_backend),
        cmocka_unit_test(test_vnet_hdr_passthrough),
        cmocka_unit_test(test_vnet_hdr_gso_refused_without_tso),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
