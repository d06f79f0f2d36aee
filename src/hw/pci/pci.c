/* PCI bus 0, the i440FX-like host bridge and generic config space. */
#include "hw/pci/pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hw/irq.h"
#include "machine/e820.h"

#define PCI_IO_BASE 0xc000ULL
#define PCI_IO_END 0x10000ULL
#define PCI_MEM32_END 0xfec00000ULL      /* the I/O APIC and beyond stay out */

struct pci_bus {
    struct address_space *mem, *io;
    struct irqchip *chip;
    struct mainloop *ml;
    struct pci_dev *dev[256];
    uint32_t cf8;
    int gsi_count[PCI_GSI_COUNT];        /* asserted INTx per GSI (wired OR) */
    struct mem_region cf9;               /* byte port 0xCF9 we shadow (reset control) */
    uint64_t w64_base, w64_size;
};

/* ---- config space helpers ---- */

static uint32_t cfg_get(const uint8_t *p, unsigned size)
{
    uint32_t v = 0;
    memcpy(&v, p, size);
    return v;
}

static void cfg_put(uint8_t *p, uint32_t v, unsigned size) { memcpy(p, &v, size); }

static void set16(struct pci_dev *d, unsigned off, uint16_t v) { cfg_put(d->cfg + off, v, 2); }
static void set32(struct pci_dev *d, unsigned off, uint32_t v) { cfg_put(d->cfg + off, v, 4); }
static uint16_t cmd(const struct pci_dev *d) { return (uint16_t)cfg_get(d->cfg + PCI_COMMAND, 2); }

/* ---- BAR mapping ---- */

static uint64_t bar_tramp_read(void *opaque, uint64_t off, unsigned size)
{
    struct pci_bar *b = opaque;
    return b->ops && b->ops->read ? b->ops->read(b->opaque, off, size) : ~0ULL;
}

static void bar_tramp_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct pci_bar *b = opaque;
    if (b->ops && b->ops->write)
        b->ops->write(b->opaque, off, val, size);
}

static const struct mem_ops bar_tramp_ops = { bar_tramp_read, bar_tramp_write };

static uint64_t bar_addr(const struct pci_dev *d, int i)
{
    const struct pci_bar *b = &d->bar[i];
    uint64_t v = cfg_get(d->cfg + PCI_BAR0 + 4 * i, 4);
    if (b->kind & PCI_BAR_IO)
        return v & ~3ULL;
    if (b->kind & PCI_BAR_MEM64)
        v |= (uint64_t)cfg_get(d->cfg + PCI_BAR0 + 4 * i + 4, 4) << 32;
    return v & ~0xfULL;
}

/* Whether BAR i should decode at addr now. The sizing pattern (all ones)
 * and addresses that wrap or leave the space never decode. */
static bool bar_decodes(const struct pci_dev *d, int i, uint64_t addr)
{
    const struct pci_bar *b = &d->bar[i];
    if (!b->size || !addr)
        return false;
    if (b->kind & PCI_BAR_IO)
        return (cmd(d) & PCI_CMD_IO) && addr + b->size <= PCI_IO_END;
    uint64_t limit = (b->kind & PCI_BAR_MEM64) ? 1ULL << 48 : 1ULL << 32;
    return (cmd(d) & PCI_CMD_MEM) && addr < limit && addr + b->size <= limit &&
           addr + b->size > addr;
}

static void pci_update_mappings(struct pci_dev *d)
{
    for (int i = 0; i < 6; i++) {
        struct pci_bar *b = &d->bar[i];
        if (!b->size)
            continue;
        struct address_space *as = (b->kind & PCI_BAR_IO) ? d->bus->io : d->bus->mem;
        uint64_t addr = bar_addr(d, i);
        bool want = bar_decodes(d, i, addr);
        if (b->mapped && (!want || b->mapped_at != addr)) {
            as_del(as, b->mapped_at, b);
            b->mapped = false;
        }
        if (want && !b->mapped) {
            /* Below RAM and the system devices: a BAR placed over them loses. */
            if (as_add_io(as, addr, b->size, &bar_tramp_ops, b, d->name, -1) == 0) {
                b->mapped = true;
                b->mapped_at = addr;
            }
        }
    }
}

/* ---- INTx ---- */

unsigned pci_dev_gsi(const struct pci_dev *d)
{
    unsigned pin = d->cfg[PCI_INT_PIN];
    unsigned slot = d->devfn >> 3;
    return PCI_GSI_BASE + (slot + (pin ? pin - 1 : 0)) % PCI_GSI_COUNT;
}

static void pci_update_intx(struct pci_dev *d)
{
    bool want = d->intx_level && d->cfg[PCI_INT_PIN] && !(cmd(d) & PCI_CMD_INTX_DISABLE);
    if (d->intx_level)
        d->cfg[PCI_STATUS] |= PCI_STATUS_INTX;
    else
        d->cfg[PCI_STATUS] &= ~PCI_STATUS_INTX;
    if (want == d->intx_asserted)
        return;
    d->intx_asserted = want;
    unsigned g = pci_dev_gsi(d) - PCI_GSI_BASE;
    struct pci_bus *bus = d->bus;
    int before = bus->gsi_count[g];
    bus->gsi_count[g] += want ? 1 : -1;
    if ((before > 0) != (bus->gsi_count[g] > 0) && bus->chip && bus->chip->set_gsi)
        bus->chip->set_gsi(bus->chip, PCI_GSI_BASE + g, bus->gsi_count[g] > 0);
}

void pci_dev_set_irq(struct pci_dev *d, int level)
{
    d->intx_level = level != 0;
    pci_update_intx(d);
}

bool pci_dev_bus_master(const struct pci_dev *d) { return cmd(d) & PCI_CMD_MASTER; }

/* ---- config cycles ---- */

uint32_t pci_config_read(struct pci_dev *d, unsigned off, unsigned size)
{
    if (off >= PCI_CFG_SIZE || size > PCI_CFG_SIZE - off || (size != 1 && size != 2 && size != 4))
        return ~0u;
    return cfg_get(d->cfg + off, size);
}

void pci_config_write(struct pci_dev *d, unsigned off, uint32_t val, unsigned size)
{
    if (off >= PCI_CFG_SIZE || size > PCI_CFG_SIZE - off || (size != 1 && size != 2 && size != 4))
        return;
    for (unsigned i = 0; i < size; i++) {
        uint8_t v = val >> (8 * i), wm = d->wmask[off + i], c = d->w1c[off + i];
        uint8_t *p = &d->cfg[off + i];
        *p = (*p & ~wm) | (v & wm);
        *p &= ~(v & c);
    }
    bool cmd_hit = off < PCI_COMMAND + 2 && off + size > PCI_COMMAND;
    bool bar_hit = off < PCI_BAR0 + 24 && off + size > PCI_BAR0;
    if (cmd_hit || bar_hit)
        pci_update_mappings(d);
    if (cmd_hit)
        pci_update_intx(d);
    if (d->msix)
        msix_config_written(d, off, size);
    if (d->ops && d->ops->config_write)
        d->ops->config_write(d, off, val, size);
}

/* ---- devices ---- */

struct pci_dev *pci_bus_find(struct pci_bus *bus, int devfn)
{
    return devfn >= 0 && devfn < 256 ? bus->dev[devfn] : NULL;
}

struct pci_dev *pci_dev_new(struct pci_bus *bus, int devfn, const char *name,
                            uint16_t vendor, uint16_t device, uint32_t class_code,
                            uint8_t revision, struct error *err)
{
    if (devfn < 0) {
        for (int s = 1; s < PCI_MAX_DEV && devfn < 0; s++)
            if (!bus->dev[s << 3])
                devfn = s << 3;
        if (devfn < 0) {
            error_set(err, -ENOSPC, "PCI bus is full (%d slots)", PCI_MAX_DEV);
            return NULL;
        }
    }
    if (devfn > 255) {
        error_set(err, -EINVAL, "Invalid PCI address");
        return NULL;
    }
    if (bus->dev[devfn]) {
        error_set(err, -EBUSY, "PCI: slot %d function %d not available for %s, in use by %s",
                  devfn >> 3, devfn & 7, name, bus->dev[devfn]->name);
        return NULL;
    }
    struct pci_dev *d = calloc(1, sizeof(*d));
    if (!d) {
        error_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    d->bus = bus;
    d->devfn = devfn;
    snprintf(d->name, sizeof(d->name), "%s", name);
    set16(d, PCI_VENDOR_ID, vendor);
    set16(d, PCI_DEVICE_ID, device);
    d->cfg[PCI_REVISION] = revision;
    d->cfg[PCI_CLASS_PROG] = class_code & 0xff;
    set16(d, PCI_CLASS_PROG + 1, class_code >> 8);
    set16(d, PCI_STATUS, 0);
    cfg_put(d->wmask + PCI_COMMAND,
            PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_DISABLE, 2);
    d->wmask[0x0c] = 0xff;                       /* cache line size */
    d->wmask[0x0d] = 0xff;                       /* latency timer */
    d->wmask[PCI_INT_LINE] = 0xff;
    d->w1c[PCI_STATUS + 1] = 0xf9;               /* error bits */
    d->cap_end = 0x40;
    bus->dev[devfn] = d;
    return d;
}

int pci_dev_set_bar(struct pci_dev *d, int i, uint64_t size, int kind,
                    const struct mem_ops *ops, void *opaque)
{
    bool is64 = kind & PCI_BAR_MEM64;
    if (i < 0 || i > 5 - is64 || (size & (size - 1)) || size < ((kind & PCI_BAR_IO) ? 4 : 16))
        return -EINVAL;
    if ((kind & PCI_BAR_IO) && size > 256)
        return -EINVAL;
    d->bar[i] = (struct pci_bar){ .size = size, .kind = kind, .ops = ops, .opaque = opaque };
    uint64_t mask = ~(size - 1);
    uint32_t low = (kind & PCI_BAR_IO) ? 1 : ((is64 ? 4 : 0) | ((kind & PCI_BAR_PREFETCH) ? 8 : 0));
    set32(d, PCI_BAR0 + 4 * i, low);
    cfg_put(d->wmask + PCI_BAR0 + 4 * i,
            (uint32_t)mask & ((kind & PCI_BAR_IO) ? 0xfffcu : ~0xfu), 4);
    if (is64) {
        set32(d, PCI_BAR0 + 4 * i + 4, 0);
        cfg_put(d->wmask + PCI_BAR0 + 4 * i + 4, (uint32_t)(mask >> 32), 4);
    }
    return 0;
}

int pci_dev_add_cap(struct pci_dev *d, uint8_t id, unsigned len)
{
    unsigned off = (d->cap_end + 3) & ~3u;
    if (len < 2 || off + len > PCI_CFG_SIZE)
        return -ENOSPC;
    d->cfg[off] = id;
    d->cfg[off + 1] = 0;
    /* Link at the end of the list: the guest walks it in order. */
    if (!d->cfg[PCI_CAP_PTR]) {
        d->cfg[PCI_CAP_PTR] = off;
    } else {
        unsigned p = d->cfg[PCI_CAP_PTR];
        while (d->cfg[p + 1])
            p = d->cfg[p + 1];
        d->cfg[p + 1] = off;
    }
    d->cfg[PCI_STATUS] |= PCI_STATUS_CAPS;
    d->cap_end = off + len;
    return (int)off;
}

static void pci_dev_reset(struct pci_dev *d)
{
    set16(d, PCI_COMMAND, 0);
    d->cfg[PCI_STATUS + 1] = 0;
    for (int i = 0; i < 6; i++)
        if (d->bar[i].size)
            cfg_put(d->cfg + PCI_BAR0 + 4 * i, cfg_get(d->cfg + PCI_BAR0 + 4 * i, 4) &
                    ~cfg_get(d->wmask + PCI_BAR0 + 4 * i, 4), 4);
    for (int i = 0; i < 6; i++)
        if ((d->bar[i].kind & PCI_BAR_MEM64) && d->bar[i].size)
            set32(d, PCI_BAR0 + 4 * i + 4, 0);
    pci_update_mappings(d);
    if (d->msix)
        msix_reset(d);
    d->intx_level = 0;
    pci_update_intx(d);
    if (d->ops && d->ops->reset)
        d->ops->reset(d);
}

/* ---- firmware placement ---- */

struct bar_ref { struct pci_dev *d; int i; };

static int by_size_desc(const void *a, const void *b)
{
    const struct bar_ref *x = a, *y = b;
    uint64_t sx = x->d->bar[x->i].size, sy = y->d->bar[y->i].size;
    return sx < sy ? 1 : sx > sy ? -1 : (x->d->devfn - y->d->devfn) * 8 + (x->i - y->i);
}

static bool place(uint64_t *next, uint64_t end, uint64_t size, uint64_t *out)
{
    uint64_t a = (*next + size - 1) & ~(size - 1);
    if (a < *next || a + size > end || a + size < a)
        return false;
    *out = a;
    *next = a + size;
    return true;
}

static void pci_assign_bars(struct pci_bus *bus)
{
    struct bar_ref refs[256 * 6];
    int n = 0;
    for (int f = 0; f < 256; f++)
        for (int i = 0; bus->dev[f] && i < 6; i++)
            if (bus->dev[f]->bar[i].size)
                refs[n++] = (struct bar_ref){ bus->dev[f], i };
    qsort(refs, n, sizeof(refs[0]), by_size_desc);
    uint64_t io = PCI_IO_BASE, m32 = PC_PCI_HOLE_START, m64 = bus->w64_base;
    for (int k = 0; k < n; k++) {
        struct pci_dev *d = refs[k].d;
        int i = refs[k].i;
        struct pci_bar *b = &d->bar[i];
        uint64_t addr = 0;
        bool ok;
        if (b->kind & PCI_BAR_IO)
            ok = place(&io, PCI_IO_END, b->size, &addr);
        else if ((b->kind & PCI_BAR_MEM64) && b->size >= (64ULL << 20) && bus->w64_size)
            ok = place(&m64, bus->w64_base + bus->w64_size, b->size, &addr);
        else
            ok = place(&m32, PCI_MEM32_END, b->size, &addr) ||
                 ((b->kind & PCI_BAR_MEM64) && bus->w64_size &&
                  place(&m64, bus->w64_base + bus->w64_size, b->size, &addr));
        if (!ok)
            continue;                            /* left unassigned: the guest may place it */
        cfg_put(d->cfg + PCI_BAR0 + 4 * i,
                (cfg_get(d->cfg + PCI_BAR0 + 4 * i, 4) & ((b->kind & PCI_BAR_IO) ? 3 : 0xf)) |
                (uint32_t)addr, 4);
        if (b->kind & PCI_BAR_MEM64)
            set32(d, PCI_BAR0 + 4 * i + 4, addr >> 32);
    }
    for (int f = 0; f < 256; f++) {
        struct pci_dev *d = bus->dev[f];
        if (!d)
            continue;
        set16(d, PCI_COMMAND, cmd(d) | PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER);
        d->cfg[PCI_INT_LINE] = d->cfg[PCI_INT_PIN] ? pci_dev_gsi(d) : 0xff;
        pci_update_mappings(d);
    }
}

void pci_bus_reset(struct pci_bus *bus)
{
    bus->cf8 = 0;
    for (int f = 0; f < 256; f++)
        if (bus->dev[f])
            pci_dev_reset(bus->dev[f]);
    pci_assign_bars(bus);
}

/* ---- host bridge: configuration mechanism #1 ---- */

static struct pci_dev *host_target(struct pci_bus *bus, unsigned *reg)
{
    uint32_t a = bus->cf8;
    if (!(a & 0x80000000u) || ((a >> 16) & 0xff) != 0)
        return NULL;
    *reg = a & 0xfc;
    return bus->dev[(a >> 8) & 0xff];
}

static uint64_t cf8_read(void *opaque, uint64_t off, unsigned size)
{
    struct pci_bus *bus = opaque;
    if (off == 0 && size == 4)
        return bus->cf8;
    if (off == 1 && size == 1 && bus->cf9.ops && bus->cf9.ops->read)
        return bus->cf9.ops->read(bus->cf9.opaque, 0, 1);
    return ~0ULL;
}

static void cf8_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct pci_bus *bus = opaque;
    if (off == 0 && size == 4)
        bus->cf8 = val & 0x80fffffc;
    else if (off == 1 && size == 1 && bus->cf9.ops && bus->cf9.ops->write)
        bus->cf9.ops->write(bus->cf9.opaque, 0, val, 1);  /* PIIX: bytes at 0xCF9 are reset control */
}

static uint64_t cfc_read(void *opaque, uint64_t off, unsigned size)
{
    struct pci_bus *bus = opaque;
    unsigned reg;
    struct pci_dev *d = host_target(bus, &reg);
    if (!d || off + size > 4)
        return ~0ULL;
    return pci_config_read(d, reg + off, size);
}

static void cfc_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct pci_bus *bus = opaque;
    unsigned reg;
    struct pci_dev *d = host_target(bus, &reg);
    if (d && off + size <= 4)
        pci_config_write(d, reg + off, (uint32_t)val, size);
}

static const struct mem_ops cf8_ops = { cf8_read, cf8_write };
static const struct mem_ops cfc_ops = { cfc_read, cfc_write };

struct pci_bus *pci_bus_new(struct address_space *mem, struct address_space *io,
                            struct irqchip *chip, struct mainloop *ml)
{
    struct pci_bus *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return NULL;
    bus->mem = mem;
    bus->io = io;
    bus->chip = chip;
    bus->ml = ml;
    /* Keep whatever already answers the byte port 0xCF9 (the reset control
     * register) reachable once our dword register covers it. */
    const struct mem_region *r = io ? as_lookup(io, 0xcf9) : NULL;
    if (r && r->ops)
        bus->cf9 = *r;
    struct pci_dev *host = pci_dev_new(bus, 0, "i440FX", 0x8086, 0x1237, 0x060000, 2, NULL);
    if (!host || (io && (as_add_io(io, 0xcf8, 4, &cf8_ops, bus, "pci-conf-idx", 2) < 0 ||
                         as_add_io(io, 0xcfc, 4, &cfc_ops, bus, "pci-conf-data", 0) < 0))) {
        pci_bus_free(bus);
        return NULL;
    }
    memset(host->wmask + PCI_COMMAND, 0, 2);
    return bus;
}

void pci_bus_free(struct pci_bus *bus)
{
    if (!bus)
        return;
    for (int f = 0; f < 256; f++) {
        struct pci_dev *d = bus->dev[f];
        if (!d)
            continue;
        if (d->ops && d->ops->free)
            d->ops->free(d);
        msix_free(d->msix);
        free(d);
    }
    free(bus);
}

struct address_space *pci_bus_mem(struct pci_bus *bus) { return bus->mem; }
struct mainloop *pci_bus_mainloop(struct pci_bus *bus) { return bus->ml; }
struct irqchip *pci_bus_irqchip(struct pci_bus *bus) { return bus->chip; }

void pci_bus_set_high_window(struct pci_bus *bus, uint64_t base, uint64_t size)
{
    bus->w64_base = base;
    bus->w64_size = size;
}

void pci_bus_windows(struct pci_bus *bus, uint64_t *w32_base, uint64_t *w32_end,
                     uint64_t *w64_base, uint64_t *w64_end)
{
    *w32_base = PC_PCI_HOLE_START;
    *w32_end = PCI_MEM32_END;
    *w64_base = bus->w64_base;
    *w64_end = bus->w64_base + bus->w64_size;
}

/* ---- info pci ---- */

static const char *class_name(uint16_t cls)
{
    static const struct { uint16_t c; const char *n; } t[] = {
        { 0x0100, "SCSI controller" }, { 0x0600, "Host bridge" }, { 0x0601, "ISA bridge" },
        { 0x0780, "Communication controller" }, { 0x00ff, "Class 00ff" },
        { 0x0200, "Ethernet controller" }, { 0x0300, "VGA controller" },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (t[i].c == cls)
            return t[i].n;
    return NULL;
}

int pci_bus_format_info(struct pci_bus *bus, char *buf, int len)
{
    int n = 0;
#define OUT(...) do { if (n < len) n += snprintf(buf + n, len - n, __VA_ARGS__); } while (0)
    for (int f = 0; f < 256; f++) {
        struct pci_dev *d = bus->dev[f];
        if (!d)
            continue;
        uint16_t cls = cfg_get(d->cfg + 0x0a, 2);
        const char *cn = class_name(cls);
        OUT("  Bus  0, device %3d, function %d:\n", f >> 3, f & 7);
        if (cn)
            OUT("    %s: PCI device %04x:%04x\n", cn, cfg_get(d->cfg, 2), cfg_get(d->cfg + 2, 2));
        else
            OUT("    Class %04x: PCI device %04x:%04x\n", cls, cfg_get(d->cfg, 2),
                cfg_get(d->cfg + 2, 2));
        if (d->cfg[PCI_INT_PIN])
            OUT("      IRQ %d, pin %c\n", d->cfg[PCI_INT_LINE], 'A' + d->cfg[PCI_INT_PIN] - 1);
        for (int i = 0; i < 6; i++) {
            struct pci_bar *b = &d->bar[i];
            if (!b->size)
                continue;
            uint64_t a = bar_addr(d, i);
            if (b->kind & PCI_BAR_IO)
                OUT("      BAR%d: I/O at 0x%04llx [0x%04llx].\n", i, (unsigned long long)a,
                    (unsigned long long)(a + b->size - 1));
            else
                OUT("      BAR%d: %d bit%s memory at 0x%08llx [0x%08llx].\n", i,
                    (b->kind & PCI_BAR_MEM64) ? 64 : 32,
                    (b->kind & PCI_BAR_PREFETCH) ? " prefetchable" : "",
                    (unsigned long long)a, (unsigned long long)(a + b->size - 1));
        }
        OUT("      id \"%s\"\n", d->id);
    }
#undef OUT
    return n < len ? n : (len > 0 ? len - 1 : 0);
}
