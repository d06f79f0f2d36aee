/* ACPI table builder (ACPI 6.x layouts) with a tiny AML encoder for the
 * few DSDT objects we need. */
#include "machine/acpi.h"

#include <errno.h>
#include <string.h>
#include "hw/acpi-pm.h"
#include "hw/apic.h"
#include "hw/ioapic.h"

struct tb {
    uint8_t *buf;
    size_t len, pos;
    uint64_t gpa;
    int err;
};

static void put8(uint8_t *p, uint8_t v) { p[0] = v; }
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

uint8_t acpi_sum(const uint8_t *p, size_t len)
{
    uint8_t s = 0;
    while (len--)
        s += *p++;
    return s;
}

/* Reserve n bytes aligned to align; returns the offset, or 0 on overflow
 * (offset 0 is the RSDP, never handed out twice). */
static size_t tb_alloc(struct tb *t, size_t n, size_t align)
{
    size_t pos = (t->pos + align - 1) & ~(align - 1);
    if (pos + n > t->len) {
        t->err = -ENOSPC;
        return 0;
    }
    t->pos = pos + n;
    return pos;
}

static uint64_t tb_addr(struct tb *t, size_t off) { return t->gpa + off; }

static void acpi_header(uint8_t *h, const char *sig, uint32_t len, uint8_t rev)
{
    memcpy(h, sig, 4);
    put32(h + 4, len);
    put8(h + 8, rev);
    memcpy(h + 10, "QUOKKA", 6);
    memcpy(h + 16, "QUOKKAPC", 8);
    put32(h + 24, 1);
    memcpy(h + 28, "QKKA", 4);
    put32(h + 32, 1);
}

static void acpi_finish(uint8_t *h)
{
    uint32_t len;
    memcpy(&len, h + 4, 4);
    h[9] = 0;
    h[9] = (uint8_t)-acpi_sum(h, len);
}

/* ---- AML ---- */

struct aml {
    uint8_t b[256];
    int n;
};

static void aml_byte(struct aml *a, uint8_t v)
{
    if (a->n < (int)sizeof(a->b))
        a->b[a->n++] = v;
}

static void aml_bytes(struct aml *a, const void *p, int n)
{
    for (int i = 0; i < n; i++)
        aml_byte(a, ((const uint8_t *)p)[i]);
}

/* Integer constant: ZeroOp/OneOp/BytePrefix/WordPrefix/DWordPrefix. */
static void aml_int(struct aml *a, uint32_t v)
{
    if (v == 0) {
        aml_byte(a, 0x00);
    } else if (v == 1) {
        aml_byte(a, 0x01);
    } else if (v <= 0xff) {
        aml_byte(a, 0x0a);
        aml_byte(a, v);
    } else if (v <= 0xffff) {
        aml_byte(a, 0x0b);
        aml_bytes(a, &(uint16_t){ v }, 2);
    } else {
        aml_byte(a, 0x0c);
        aml_bytes(a, &v, 4);
    }
}

/* PkgLength for a body of n bytes (the encoding counts itself). */
static void aml_pkglen(struct aml *a, int n)
{
    if (n + 1 < 0x40) {
        aml_byte(a, n + 1);
    } else {
        int total = n + 2;
        aml_byte(a, 0x40 | (total & 0xf));
        aml_byte(a, total >> 4);
    }
}

/* Name(NAME, Package() { ints... }) */
static void aml_name_package(struct aml *a, const char name[4], const uint32_t *v, int n)
{
    struct aml body = { .n = 0 };
    aml_byte(&body, n);                          /* NumElements */
    for (int i = 0; i < n; i++)
        aml_int(&body, v[i]);
    aml_byte(a, 0x08);                           /* NameOp */
    aml_bytes(a, name, 4);
    aml_byte(a, 0x12);                           /* PackageOp */
    aml_pkglen(a, body.n);
    aml_bytes(a, body.b, body.n);
}

static size_t build_dsdt(struct tb *t, const struct acpi_config *cfg)
{
    struct aml a = { .n = 0 };
    static const uint32_t s5[4] = { ACPI_SLP_TYP_S5, ACPI_SLP_TYP_S5, 0, 0 };
    aml_name_package(&a, "_S5_", s5, 4);
    size_t extra = cfg->dsdt_extra ? cfg->dsdt_extra_len : 0;
    size_t off = tb_alloc(t, 36 + a.n + extra, 16);
    if (t->err)
        return 0;
    uint8_t *h = t->buf + off;
    acpi_header(h, "DSDT", 36 + a.n + extra, 2);
    memcpy(h + 36, a.b, a.n);
    if (extra)
        memcpy(h + 36 + a.n, cfg->dsdt_extra, extra);
    acpi_finish(h);
    return off;
}

static size_t build_facs(struct tb *t)
{
    size_t off = tb_alloc(t, 64, 64);
    if (t->err)
        return 0;
    uint8_t *f = t->buf + off;
    memcpy(f, "FACS", 4);
    put32(f + 4, 64);
    put8(f + 32, 2);                             /* version */
    return off;
}

static void gas_io(uint8_t *g, uint8_t bits, uint8_t access, uint64_t port)
{
    put8(g, 1);                                  /* system I/O */
    put8(g + 1, bits);
    put8(g + 2, 0);
    put8(g + 3, access);
    put64(g + 4, port);
}

static size_t build_fadt(struct tb *t, size_t dsdt, size_t facs)
{
    const uint32_t len = 276;
    size_t off = tb_alloc(t, len, 16);
    if (t->err)
        return 0;
    uint8_t *f = t->buf + off;
    acpi_header(f, "FACP", len, 6);
    put32(f + 36, tb_addr(t, facs));
    put32(f + 40, tb_addr(t, dsdt));
    put16(f + 46, ACPI_SCI_IRQ);
    put32(f + 48, 0);                            /* no SMI_CMD: always in ACPI mode */
    put32(f + 56, ACPI_PM1_EVT);
    put32(f + 64, ACPI_PM1_CNT);
    put32(f + 76, ACPI_PM_TMR);
    put32(f + 80, ACPI_GPE0_BASE);
    put8(f + 88, 4);
    put8(f + 89, 2);
    put8(f + 91, 4);
    put8(f + 92, ACPI_GPE0_LEN);
    put16(f + 96, 101);                          /* no C2 */
    put16(f + 98, 1001);                         /* no C3 */
    put8(f + 108, 0x32);                         /* RTC century index */
    put16(f + 109, (1 << 0) | (1 << 1));         /* legacy devices, 8042 */
    /* WBINVD, PROC_C1, SLP_BUTTON (none), FIX_RTC, RESET_REG_SUP. */
    put32(f + 112, (1 << 0) | (1 << 2) | (1 << 5) | (1 << 6) | (1 << 10));
    gas_io(f + 116, 8, 1, ACPI_RESET_PORT);
    put8(f + 128, ACPI_RESET_VALUE);
    put8(f + 131, 1);                            /* FADT minor version 6.1 */
    put64(f + 132, tb_addr(t, facs));
    put64(f + 140, tb_addr(t, dsdt));
    gas_io(f + 148, 32, 2, ACPI_PM1_EVT);
    gas_io(f + 172, 16, 2, ACPI_PM1_CNT);
    gas_io(f + 208, 32, 3, ACPI_PM_TMR);
    gas_io(f + 220, ACPI_GPE0_LEN * 8, 1, ACPI_GPE0_BASE);
    acpi_finish(f);
    return off;
}

static size_t build_madt(struct tb *t, int ncpus)
{
    uint32_t len = 44 + 8 * ncpus + 12 + 10 * 2 + 6;
    size_t off = tb_alloc(t, len, 16);
    if (t->err)
        return 0;
    uint8_t *m = t->buf + off;
    acpi_header(m, "APIC", len, 3);
    put32(m + 36, APIC_DEFAULT_BASE);
    put32(m + 40, 1);                            /* PCAT_COMPAT: 8259s present */
    uint8_t *p = m + 44;
    for (int i = 0; i < ncpus; i++, p += 8) {
        put8(p, 0);
        put8(p + 1, 8);
        put8(p + 2, i);                          /* processor UID */
        put8(p + 3, i);                          /* APIC ID */
        put32(p + 4, 1);                         /* enabled */
    }
    put8(p, 1);
    put8(p + 1, 12);
    put8(p + 2, 0);                              /* I/O APIC ID */
    put32(p + 4, IOAPIC_BASE);
    put32(p + 8, 0);                             /* GSI base */
    p += 12;
    /* ISA IRQ0 (PIT) arrives on GSI2; the SCI is level, active high. */
    static const struct { uint8_t irq; uint32_t gsi; uint16_t flags; } iso[2] = {
        { 0, 2, 0 }, { ACPI_SCI_IRQ, ACPI_SCI_IRQ, 0x000d },
    };
    for (int i = 0; i < 2; i++, p += 10) {
        put8(p, 2);
        put8(p + 1, 10);
        put8(p + 2, 0);                          /* ISA bus */
        put8(p + 3, iso[i].irq);
        put32(p + 4, iso[i].gsi);
        put16(p + 8, iso[i].flags);
    }
    put8(p, 4);                                  /* local APIC NMI on LINT1, all CPUs */
    put8(p + 1, 6);
    put8(p + 2, 0xff);
    put16(p + 3, 0);
    put8(p + 5, 1);
    acpi_finish(m);
    return off;
}

int acpi_build(uint8_t *buf, size_t len, uint64_t gpa, const struct acpi_config *cfg)
{
    struct tb t = { .buf = buf, .len = len, .gpa = gpa };
    size_t rsdp = tb_alloc(&t, 36, 16);
    size_t dsdt = build_dsdt(&t, cfg);
    size_t facs = build_facs(&t);
    size_t fadt = build_fadt(&t, dsdt, facs);
    size_t madt = build_madt(&t, cfg->ncpus > 0 ? cfg->ncpus : 1);
    size_t tables[] = { fadt, madt };
    const int nt = 2;
    size_t rsdt = tb_alloc(&t, 36 + 4 * nt, 16);
    size_t xsdt = tb_alloc(&t, 36 + 8 * nt, 16);
    if (t.err)
        return t.err;
    acpi_header(buf + rsdt, "RSDT", 36 + 4 * nt, 1);
    acpi_header(buf + xsdt, "XSDT", 36 + 8 * nt, 1);
    for (int i = 0; i < nt; i++) {
        put32(buf + rsdt + 36 + 4 * i, tb_addr(&t, tables[i]));
        put64(buf + xsdt + 36 + 8 * i, tb_addr(&t, tables[i]));
    }
    acpi_finish(buf + rsdt);
    acpi_finish(buf + xsdt);
    uint8_t *r = buf + rsdp;
    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, "QUOKKA", 6);
    put8(r + 15, 2);                             /* ACPI 2.0+ RSDP */
    put32(r + 16, tb_addr(&t, rsdt));
    put32(r + 20, 36);
    put64(r + 24, tb_addr(&t, xsdt));
    r[8] = (uint8_t)-acpi_sum(r, 20);
    r[32] = (uint8_t)-acpi_sum(r, 36);
    return (int)t.pos;
}
