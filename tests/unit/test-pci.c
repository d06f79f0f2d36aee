/* The PCI bus through its I/O ports, as a guest's enumeration does it:
 * configuration mechanism #1, BAR sizing and placement, decoding on and
 * off, the capability list, MSI-X table and pending bits, INTx wired-OR
 * with INTX_DISABLE, the 0xCF9 byte port left to its owner, and the AML
 * for the DSDT. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include "hw/irq.h"
#include "hw/memory.h"
#include "hw/pci/pci.h"
#include "hw/virtio/virtio-rng.h"

struct chip {
    struct irqchip c;
    int level[24];
    int msis;
    uint64_t msi_addr;
    uint32_t msi_data;
};

static void set_gsi(struct irqchip *c, unsigned gsi, int level)
{
    ((struct chip *)c)->level[gsi] = level;
}

static void send_msi(struct irqchip *c, uint64_t addr, uint32_t data)
{
    struct chip *x = (struct chip *)c;
    x->msis++;
    x->msi_addr = addr;
    x->msi_data = data;
}

static struct chip chip;
static struct address_space *mem, *io;
static struct pci_bus *bus;
static uint8_t *ram;
static int cf9_writes;
static uint64_t cf9_val;

static uint64_t cf9_read(void *o, uint64_t off, unsigned size) { return 0x5a; }
static void cf9_write(void *o, uint64_t off, uint64_t v, unsigned size) { cf9_writes++; cf9_val = v; }
static const struct mem_ops cf9_ops = { cf9_read, cf9_write };

struct bardev { uint64_t last_off, last_val; int reads; };
static uint64_t bd_read(void *o, uint64_t off, unsigned size)
{
    struct bardev *b = o;
    b->reads++;
    b->last_off = off;
    return 0xabcd;
}
static void bd_write(void *o, uint64_t off, uint64_t v, unsigned size)
{
    struct bardev *b = o;
    b->last_off = off;
    b->last_val = v;
}
static const struct mem_ops bd_ops = { bd_read, bd_write };

static int setup(void **state)
{
    memset(&chip, 0, sizeof(chip));
    chip.c.set_gsi = set_gsi;
    chip.c.send_msi = send_msi;
    mem = as_new("mem", NULL);
    io = as_new("io", NULL);
    ram = calloc(1, 1 << 20);
    as_add_ram(mem, 0, 1 << 20, ram, "ram");
    cf9_writes = 0;
    as_add_io(io, 0xcf9, 1, &cf9_ops, NULL, "reset", 1);
    bus = pci_bus_new(mem, io, &chip.c, NULL);
    assert_non_null(bus);
    return 0;
}

static int teardown(void **state)
{
    pci_bus_free(bus);
    as_free(mem);
    as_free(io);
    free(ram);
    return 0;
}

static uint32_t cfg_read(int devfn, int reg, unsigned size)
{
    as_write(io, 0xcf8, 0x80000000u | devfn << 8 | (reg & 0xfc), 4);
    return (uint32_t)as_read(io, 0xcfc + (reg & 3), size);
}

static void cfg_write(int devfn, int reg, uint32_t v, unsigned size)
{
    as_write(io, 0xcf8, 0x80000000u | devfn << 8 | (reg & 0xfc), 4);
    as_write(io, 0xcfc + (reg & 3), v, size);
}

static void test_host_bridge(void **state)
{
    assert_int_equal(cfg_read(0, 0, 4), 0x12378086);
    assert_int_equal(cfg_read(0, 0x0a, 2), 0x0600);
    assert_int_equal(cfg_read(8, 0, 4), 0xffffffff);       /* empty slot */
    as_write(io, 0xcf8, 0x80010000u, 4);                   /* bus 1 */
    assert_int_equal(as_read(io, 0xcfc, 4), 0xffffffff);
    as_write(io, 0xcf8, 0x00000000u, 4);                   /* enable bit clear */
    assert_int_equal(as_read(io, 0xcfc, 4), 0xffffffff);
    as_write(io, 0xcf8, 0x80001234u, 4);
    assert_int_equal(as_read(io, 0xcf8, 4), 0x80001234u & ~3u);
}

static void test_cf9_passthrough(void **state)
{
    as_write(io, 0xcf9, 0x06, 1);
    assert_int_equal(cf9_writes, 1);
    assert_int_equal(cf9_val, 6);
    assert_int_equal(as_read(io, 0xcf9, 1), 0x5a);
    as_write(io, 0xcf8, 0x80000800u, 4);                   /* dword: the address register */
    assert_int_equal(cf9_writes, 1);
}

static struct pci_dev *mkdev(struct bardev *b)
{
    struct pci_dev *d = pci_dev_new(bus, 3 << 3, "test", 0x1234, 0x5678, 0x0c0300, 1, NULL);
    assert_non_null(d);
    assert_int_equal(pci_dev_set_bar(d, 0, 0x1000, PCI_BAR_MEM32, &bd_ops, b), 0);
    assert_int_equal(pci_dev_set_bar(d, 1, 0x20, PCI_BAR_IO, &bd_ops, b), 0);
    assert_int_equal(pci_dev_set_bar(d, 2, 0x4000, PCI_BAR_MEM64 | PCI_BAR_PREFETCH, &bd_ops, b), 0);
    d->cfg[PCI_INT_PIN] = 1;
    return d;
}

static void test_bar_sizing(void **state)
{
    struct bardev b = {0};
    mkdev(&b);
    int df = 3 << 3;
    cfg_write(df, 0x10, 0xffffffff, 4);
    assert_int_equal(cfg_read(df, 0x10, 4), 0xfffff000);
    cfg_write(df, 0x14, 0xffffffff, 4);
    assert_int_equal(cfg_read(df, 0x14, 4), 0x0000ffe1);   /* I/O: 32 bytes, bit 0 set */
    cfg_write(df, 0x18, 0xffffffff, 4);
    cfg_write(df, 0x1c, 0xffffffff, 4);
    assert_int_equal(cfg_read(df, 0x18, 4), 0xffffc00c);   /* 64-bit prefetchable */
    assert_int_equal(cfg_read(df, 0x1c, 4), 0xffffffff);
    assert_int_equal(cfg_read(df, 0x20, 4), 0);            /* unused BAR */
    /* Sizing with decoding off maps nothing. */
    assert_int_equal(as_read(mem, 0xfffff000, 4), 0xffffffff);
    assert_int_equal(b.reads, 0);
}

static void test_placement_and_decoding(void **state)
{
    struct bardev b = {0};
    mkdev(&b);
    int df = 3 << 3;
    pci_bus_reset(bus);
    uint32_t cmd = cfg_read(df, 4, 2);
    assert_int_equal(cmd & 7, 7);                          /* I/O, memory, bus master */
    uint32_t bar0 = cfg_read(df, 0x10, 4), bar1 = cfg_read(df, 0x14, 4);
    uint64_t bar2 = cfg_read(df, 0x18, 4) | (uint64_t)cfg_read(df, 0x1c, 4) << 32;
    assert_true(bar0 >= 0xe0000000u && bar0 < 0xfec00000u && !(bar0 & 0xfff));
    assert_true((bar1 & ~3u) >= 0xc000 && !(bar1 & 0x1c) && (bar1 & 1));
    assert_true((bar2 & ~0xfULL) >= 0xe0000000u && !((bar2 & ~0xfULL) & 0x3fff));
    assert_true((bar0 + 0x1000 <= (bar2 & ~0xfULL)) || ((bar2 & ~0xfULL) + 0x4000 <= bar0));
    assert_int_equal(cfg_read(df, PCI_INT_LINE, 1), pci_dev_gsi(pci_bus_find(bus, df)));
    assert_int_equal(as_read(mem, bar0 + 0x10, 4), 0xabcd);
    assert_int_equal(b.last_off, 0x10);
    as_write(io, (bar1 & ~3u) + 4, 0x77, 1);
    assert_int_equal(b.last_val, 0x77);
    assert_int_equal(b.last_off, 4);
    /* Move BAR0: the old address goes dark, the new one answers. */
    cfg_write(df, 0x10, 0xe8000000u, 4);
    assert_int_equal(as_read(mem, bar0 + 0x10, 4), 0xffffffff);
    assert_int_equal(as_read(mem, 0xe8000000u + 8, 4), 0xabcd);
    /* Memory decoding off. */
    cfg_write(df, 4, cmd & ~2u, 2);
    assert_int_equal(as_read(mem, 0xe8000000u + 8, 4), 0xffffffff);
    cfg_write(df, 4, cmd, 2);
    assert_int_equal(as_read(mem, 0xe8000000u + 8, 4), 0xabcd);
    /* The read-only identity stays. */
    cfg_write(df, 0, 0, 4);
    assert_int_equal(cfg_read(df, 0, 4), 0x56781234);
}

static void test_intx(void **state)
{
    struct bardev b = {0};
    struct pci_dev *d = mkdev(&b);
    struct pci_dev *d2 = pci_dev_new(bus, (3 + PCI_GSI_COUNT) << 3, "test2", 1, 2, 0, 0, NULL);
    d2->cfg[PCI_INT_PIN] = 1;
    unsigned gsi = pci_dev_gsi(d);
    assert_int_equal(gsi, pci_dev_gsi(d2));                /* same swizzle: a shared line */
    assert_true(gsi >= 16 && gsi < 24);
    pci_dev_set_irq(d, 1);
    assert_int_equal(chip.level[gsi], 1);
    assert_true(cfg_read(3 << 3, PCI_STATUS, 2) & PCI_STATUS_INTX);
    pci_dev_set_irq(d2, 1);
    pci_dev_set_irq(d, 0);
    assert_int_equal(chip.level[gsi], 1);                  /* d2 still holds it */
    pci_dev_set_irq(d2, 0);
    assert_int_equal(chip.level[gsi], 0);
    pci_dev_set_irq(d, 1);
    cfg_write(3 << 3, 4, PCI_CMD_INTX_DISABLE, 2);
    assert_int_equal(chip.level[gsi], 0);
    cfg_write(3 << 3, 4, 0, 2);
    assert_int_equal(chip.level[gsi], 1);
}

static int find_cap(int df, int id)
{
    if (!(cfg_read(df, PCI_STATUS, 2) & PCI_STATUS_CAPS))
        return -1;
    int p = cfg_read(df, PCI_CAP_PTR, 1), seen = 0;
    while (p && seen++ < 48) {
        assert_true(p >= 0x40 && p < 0x100 && !(p & 3));
        if ((int)cfg_read(df, p, 1) == id)
            return p;
        p = cfg_read(df, p + 1, 1);
    }
    return -1;
}

static void test_caps_and_msix(void **state)
{
    assert_non_null(virtio_rng_pci_new(bus, 5 << 3, "rng0", NULL));
    int df = 5 << 3;
    assert_int_equal(cfg_read(df, 0, 4), 0x10441af4);
    pci_bus_reset(bus);
    int vendor = find_cap(df, PCI_CAP_VENDOR), mx = find_cap(df, PCI_CAP_MSIX);
    assert_true(vendor > 0);
    assert_true(mx > 0);
    uint16_t ctrl = cfg_read(df, mx + 2, 2);
    assert_int_equal(ctrl & 0x7ff, 1);                     /* 2 vectors: queue + config */
    uint32_t table = cfg_read(df, mx + 4, 4), pba = cfg_read(df, mx + 8, 4);
    int bir = table & 7;
    assert_int_equal(pba & 7, bir);
    uint64_t base = cfg_read(df, 0x10 + 4 * bir, 4) & ~0xfULL;
    uint64_t tab = base + (table & ~7u), pb = base + (pba & ~7u);
    /* Vectors start masked. */
    assert_int_equal(as_read(mem, tab + 12, 4) & 1, 1);
    as_write(mem, tab + 16, 0xfee01000, 4);
    as_write(mem, tab + 20, 0, 4);
    as_write(mem, tab + 24, 0x4041, 4);
    struct pci_dev *d = pci_bus_find(bus, df);
    assert_false(msix_notify(d, 1));                       /* MSI-X still off */
    cfg_write(df, mx + 2, ctrl | 0x8000, 2);
    assert_true(msix_enabled(d));
    assert_true(msix_notify(d, 1));                        /* masked: pending */
    assert_int_equal(chip.msis, 0);
    assert_int_equal(as_read(mem, pb, 8), 2);
    as_write(mem, tab + 28, 0, 4);                         /* unmask: delivered now */
    assert_int_equal(chip.msis, 1);
    assert_int_equal(chip.msi_addr, 0xfee01000);
    assert_int_equal(chip.msi_data, 0x4041);
    assert_int_equal(as_read(mem, pb, 8), 0);
    assert_true(msix_notify(d, 1));
    assert_int_equal(chip.msis, 2);
    /* Function mask holds everything back; clearing it flushes. */
    cfg_write(df, mx + 2, ctrl | 0xc000, 2);
    assert_true(msix_notify(d, 1));
    assert_int_equal(chip.msis, 2);
    cfg_write(df, mx + 2, ctrl | 0x8000, 2);
    assert_int_equal(chip.msis, 3);
    assert_false(msix_notify(d, 7));                       /* no such vector */
    /* Writes past the table or into the PBA change nothing. */
    as_write(mem, pb, ~0ULL, 8);
    assert_int_equal(as_read(mem, pb, 8), 0);
    char buf[4096];
    int n = pci_bus_format_info(bus, buf, sizeof(buf));
    assert_true(n > 0);
    assert_non_null(strstr(buf, "PCI device 1af4:1044"));
    assert_non_null(strstr(buf, "id \"rng0\""));
    assert_non_null(strstr(buf, "Host bridge: PCI device 8086:1237"));
}

static unsigned pkglen(const uint8_t *p, unsigned *hdr)
{
    int extra = p[0] >> 6;
    unsigned v = extra ? p[0] & 0xf : p[0] & 0x3f;
    for (int i = 0; i < extra; i++)
        v |= (unsigned)p[1 + i] << (4 + 8 * i);
    *hdr = 1 + extra;
    return v;
}

static void test_acpi(void **state)
{
    uint8_t buf[8192];
    pci_bus_set_high_window(bus, 0x200000000ULL, 1ULL << 33);
    int n = pci_acpi_dsdt(bus, buf, sizeof(buf));
    assert_true(n > 100);
    assert_int_equal(buf[0], 0x5b);
    assert_int_equal(buf[1], 0x82);
    unsigned hdr, len = pkglen(buf + 2, &hdr);
    assert_int_equal(len, n - 2);                          /* the Device spans it all */
    assert_memory_equal(buf + 2 + hdr, "\\._SB_PCI0", 10);
    const uint8_t hid[] = { '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
    assert_non_null(memmem(buf, n, hid, sizeof(hid)));
    const uint8_t *prt = memmem(buf, n, "_PRT", 4);
    assert_non_null(prt);
    assert_int_equal(prt[4], 0x12);
    len = pkglen(prt + 5, &hdr);
    assert_int_equal(prt[5 + hdr], PCI_MAX_DEV * 4);
    assert_true(prt + 5 + len <= buf + n);
    /* Slot 3 INTA: Package { 0x0003FFFF, 0, 0, GSI } */
    const uint8_t e[] = { 0x0c, 0xff, 0xff, 0x03, 0x00, 0x00, 0x00, 0x0a,
                          (uint8_t)(PCI_GSI_BASE + 3 % PCI_GSI_COUNT) };
    assert_non_null(memmem(buf, n, e, sizeof(e)));
    assert_non_null(memmem(buf, n, "_CRS", 4));
    assert_int_equal(pci_acpi_dsdt(bus, buf, 64), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_host_bridge), T(test_cf9_passthrough), T(test_bar_sizing),
        T(test_placement_and_decoding), T(test_intx), T(test_caps_and_msix), T(test_acpi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
