/* The DSDT's view of the PCI host bridge: Device(\_SB.PCI0) with its
 * resources and interrupt routing table, as AML bytes the board's ACPI
 * builder appends to its DSDT. */
#include <errno.h>
#include <string.h>
#include "hw/pci/pci.h"

struct amlbuf {
    uint8_t *p;
    size_t len, n;
};

static void b8(struct amlbuf *a, uint8_t v)
{
    if (a->n < a->len)
        a->p[a->n] = v;
    a->n++;
}

static void bn(struct amlbuf *a, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        b8(a, v >> (8 * i));
}

static void aml_int(struct amlbuf *a, uint64_t v)
{
    if (v == 0)
        b8(a, 0x00);
    else if (v == 1)
        b8(a, 0x01);
    else if (v <= 0xff)
        b8(a, 0x0a), b8(a, v);
    else if (v <= 0xffff)
        b8(a, 0x0b), bn(a, v, 2);
    else if (v <= 0xffffffff)
        b8(a, 0x0c), bn(a, v, 4);
    else
        b8(a, 0x0e), bn(a, v, 8);
}

/* Wrap body [start, a->n) with its PkgLength (which counts itself). */
static void aml_wrap(struct amlbuf *a, size_t start)
{
    size_t body = a->n - start;
    int extra = body + 1 < 0x40 ? 1 : body + 2 < 0x1000 ? 2 : body + 3 < 0x100000 ? 3 : 4;
    size_t total = body + extra;
    uint8_t hdr[4];
    if (extra == 1) {
        hdr[0] = total;
    } else {
        hdr[0] = ((extra - 1) << 6) | (total & 0xf);
        for (int i = 1; i < extra; i++)
            hdr[i] = total >> (4 + 8 * (i - 1));
    }
    for (int i = 0; i < extra; i++)
        b8(a, 0);                                /* grow, then shift the body up */
    if (a->n <= a->len) {
        memmove(a->p + start + extra, a->p + start, body);
        memcpy(a->p + start, hdr, extra);
    }
}

static void aml_name(struct amlbuf *a, const char *name)
{
    b8(a, 0x08);                                 /* NameOp */
    for (int i = 0; i < 4; i++)
        b8(a, name[i]);
}

static void word_addr(struct amlbuf *a, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
    b8(a, 0x88), bn(a, 13, 2), b8(a, type), b8(a, 0x0c), b8(a, tflags);
    bn(a, 0, 2), bn(a, min, 2), bn(a, max, 2), bn(a, 0, 2), bn(a, max - min + 1, 2);
}

static void crs(struct amlbuf *a, struct pci_bus *bus)
{
    uint64_t w32, w32e, w64, w64e;
    pci_bus_windows(bus, &w32, &w32e, &w64, &w64e);
    aml_name(a, "_CRS");
    b8(a, 0x11);                                 /* BufferOp */
    size_t s = a->n;
    size_t sz_at;
    b8(a, 0x0b);                                 /* BufferSize as a word, patched below */
    sz_at = a->n;
    bn(a, 0, 2);
    size_t data = a->n;
    word_addr(a, 2, 0, 0, 0xff);                 /* bus 0-255 */
    b8(a, 0x47), b8(a, 1), bn(a, 0xcf8, 2), bn(a, 0xcf8, 2), b8(a, 1), b8(a, 8);
    word_addr(a, 1, 3, 0x0000, 0x0cf7);
    word_addr(a, 1, 3, 0x0d00, 0xffff);
    b8(a, 0x87), bn(a, 23, 2), b8(a, 0), b8(a, 0x0c), b8(a, 1);
    bn(a, 0, 4), bn(a, w32, 4), bn(a, w32e - 1, 4), bn(a, 0, 4), bn(a, w32e - w32, 4);
    if (w64e > w64) {
        b8(a, 0x8a), bn(a, 43, 2), b8(a, 0), b8(a, 0x0c), b8(a, 1);
        bn(a, 0, 8), bn(a, w64, 8), bn(a, w64e - 1, 8), bn(a, 0, 8), bn(a, w64e - w64, 8);
    }
    b8(a, 0x79), b8(a, 0);                       /* EndTag */
    size_t bytes = a->n - data;
    if (sz_at + 2 <= a->len) {
        a->p[sz_at] = bytes;
        a->p[sz_at + 1] = bytes >> 8;
    }
    aml_wrap(a, s);
}

/* Package(4) { slot << 16 | 0xFFFF, pin, 0, gsi } for every slot and pin:
 * a zero source means the last element is a GSI. */
static void prt(struct amlbuf *a)
{
    aml_name(a, "_PRT");
    b8(a, 0x12);                                 /* PackageOp */
    size_t s = a->n;
    b8(a, PCI_MAX_DEV * 4);
    for (unsigned slot = 0; slot < PCI_MAX_DEV; slot++) {
        for (unsigned pin = 0; pin < 4; pin++) {
            b8(a, 0x12);
            size_t e = a->n;
            b8(a, 4);
            aml_int(a, (slot << 16) | 0xffff);
            aml_int(a, pin);
            aml_int(a, 0);
            aml_int(a, PCI_GSI_BASE + (slot + pin) % PCI_GSI_COUNT);
            aml_wrap(a, e);
        }
    }
    aml_wrap(a, s);
}

int pci_acpi_dsdt(struct pci_bus *bus, uint8_t *buf, size_t len)
{
    struct amlbuf a = { .p = buf, .len = len };
    b8(&a, 0x5b), b8(&a, 0x82);                  /* DeviceOp */
    size_t s = a.n;
    static const char path[] = "\\._SB_PCI0";
    for (int i = 0; i < 10; i++)
        b8(&a, path[i] == '.' ? 0x2e : path[i]);
    aml_name(&a, "_HID");
    b8(&a, 0x0c), bn(&a, 0x030ad041, 4);         /* EisaId("PNP0A03") */
    aml_name(&a, "_ADR");
    aml_int(&a, 0);
    aml_name(&a, "_UID");
    aml_int(&a, 0);
    aml_name(&a, "_BBN");
    aml_int(&a, 0);
    crs(&a, bus);
    prt(&a);
    aml_wrap(&a, s);
    return a.n <= len ? (int)a.n : -ENOSPC;
}
