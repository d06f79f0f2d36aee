/* ACPI tables (checksums, RSDP -> XSDT/RSDT -> FADT/MADT/DSDT walk), the
 * PM1/PM-timer/reset hardware, and the e820 map with the PCI hole. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include "hw/acpi-pm.h"
#include "hw/memory.h"
#include "machine/acpi.h"
#include "machine/e820.h"

#define BASE 0xe0000
static uint8_t buf[0x10000];

static uint8_t *at(uint64_t gpa)
{
    assert_true(gpa >= BASE && gpa < BASE + sizeof(buf));
    return buf + (gpa - BASE);
}

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static const uint8_t *table(uint64_t gpa, const char *sig)
{
    const uint8_t *t = at(gpa);
    assert_memory_equal(t, sig, 4);
    assert_int_equal(acpi_sum(t, rd32(t + 4)), 0);
    return t;
}

static void test_tables(void **state)
{
    memset(buf, 0, sizeof(buf));
    struct acpi_config cfg = { .ncpus = 3 };
    int n = acpi_build(buf, sizeof(buf), BASE, &cfg);
    assert_true(n > 0 && n < 4096);
    const uint8_t *rsdp = buf;
    assert_memory_equal(rsdp, "RSD PTR ", 8);
    assert_int_equal(acpi_sum(rsdp, 20), 0);
    assert_int_equal(acpi_sum(rsdp, 36), 0);
    assert_int_equal(rsdp[15], 2);
    const uint8_t *xsdt = table(rd64(rsdp + 24), "XSDT");
    const uint8_t *rsdt = table(rd32(rsdp + 16), "RSDT");
    int nx = (rd32(xsdt + 4) - 36) / 8;
    assert_int_equal(nx, (int)(rd32(rsdt + 4) - 36) / 4);
    const uint8_t *fadt = NULL, *madt = NULL;
    for (int i = 0; i < nx; i++) {
        uint64_t a = rd64(xsdt + 36 + 8 * i);
        assert_int_equal(a, rd32(rsdt + 36 + 4 * i));
        if (!memcmp(at(a), "FACP", 4))
            fadt = table(a, "FACP");
        if (!memcmp(at(a), "APIC", 4))
            madt = table(a, "APIC");
    }
    assert_non_null(fadt);
    assert_non_null(madt);
    /* FADT: PM blocks, timer, SCI, reset register, DSDT. */
    assert_int_equal(rd32(fadt + 56), ACPI_PM1_EVT);
    assert_int_equal(rd32(fadt + 64), ACPI_PM1_CNT);
    assert_int_equal(rd32(fadt + 76), ACPI_PM_TMR);
    assert_int_equal(fadt[91], 4);
    assert_int_equal(fadt[46], ACPI_SCI_IRQ);
    assert_int_equal(fadt[116], 1);              /* reset reg in I/O space */
    assert_int_equal(rd64(fadt + 120), ACPI_RESET_PORT);
    assert_int_equal(fadt[128], ACPI_RESET_VALUE);
    assert_true(rd32(fadt + 112) & (1 << 10));
    const uint8_t *dsdt = table(rd64(fadt + 140), "DSDT");
    assert_int_equal(rd32(fadt + 40), rd64(fadt + 140));
    const uint8_t *facs = at(rd64(fadt + 132));
    assert_memory_equal(facs, "FACS", 4);
    /* DSDT: Name(_S5_, Package(4){0,0,0,0}). */
    static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0, 0, 0, 0 };
    assert_int_equal(rd32(dsdt + 4), 36 + sizeof(s5));
    assert_memory_equal(dsdt + 36, s5, sizeof(s5));
    /* MADT: 3 enabled LAPICs, the IOAPIC, overrides IRQ0->2 and SCI level. */
    int lapics = 0, ioapics = 0, iso0 = 0, iso9 = 0;
    for (uint32_t o = 44; o < rd32(madt + 4); o += madt[o + 1]) {
        const uint8_t *e = madt + o;
        assert_true(e[1] >= 2);
        if (e[0] == 0 && (rd32(e + 4) & 1))
            assert_int_equal(e[3], lapics++);
        if (e[0] == 1) {
            ioapics++;
            assert_int_equal(rd32(e + 4), 0xfec00000);
        }
        if (e[0] == 2 && e[3] == 0 && rd32(e + 4) == 2)
            iso0++;
        if (e[0] == 2 && e[3] == 9 && (e[8] & 0xc) == 0xc)
            iso9++;
    }
    assert_int_equal(lapics, 3);
    assert_int_equal(ioapics, 1);
    assert_int_equal(iso0, 1);
    assert_int_equal(iso9, 1);
    assert_int_equal(acpi_build(buf, 64, BASE, &cfg), -ENOSPC);
}

static int poweroffs, resets;
static void on_off(void *o) { poweroffs++; }
static void on_reset(void *o) { resets++; }
static int sci;
static void sci_handler(void *o, int n, int l) { sci = l; }

static void test_pm_hardware(void **state)
{
    struct address_space *io = as_new("io", NULL);
    static const struct acpi_pm_ops ops = { on_off, on_reset };
    struct acpi_pm *pm = acpi_pm_new(io, (struct irq){ sci_handler, NULL, 9 }, &ops, NULL);
    struct timespec ts0, ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    uint32_t a = as_read(io, ACPI_PM_TMR, 4);
    struct timespec ts = { 0, 10000000 };
    nanosleep(&ts, NULL);
    uint32_t b = as_read(io, ACPI_PM_TMR, 4);
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    double el = (ts1.tv_sec - ts0.tv_sec) + (ts1.tv_nsec - ts0.tv_nsec) / 1e9;
    uint32_t d = (b - a) & 0xffffff;             /* ~35795 ticks in 10 ms */
    assert_true(d >= 35000 && d <= el * ACPI_PM_TIMER_HZ + 2);
    assert_int_equal(as_read(io, ACPI_PM1_CNT, 2) & 1, 1);   /* SCI_EN */
    /* Power button: status + enable raise the SCI; writing 1 clears. */
    as_write(io, ACPI_PM1_EVT + 2, 1 << 8, 2);
    acpi_pm_power_button(pm);
    assert_int_equal(sci, 1);
    assert_true(as_read(io, ACPI_PM1_EVT, 2) & (1 << 8));
    as_write(io, ACPI_PM1_EVT, 1 << 8, 2);
    assert_int_equal(sci, 0);
    /* S5: SLP_TYP per _S5 with SLP_EN powers off; other types don't. */
    as_write(io, ACPI_PM1_CNT, (5 << 10) | (1 << 13), 2);
    assert_int_equal(poweroffs, 0);
    as_write(io, ACPI_PM1_CNT, (ACPI_SLP_TYP_S5 << 10) | (1 << 13), 2);
    assert_int_equal(poweroffs, 1);
    as_write(io, ACPI_RESET_PORT, 0x02, 1);
    assert_int_equal(resets, 0);
    as_write(io, ACPI_RESET_PORT, ACPI_RESET_VALUE, 1);
    assert_int_equal(resets, 1);
    acpi_pm_free(pm);
    as_free(io);
}

static void test_e820(void **state)
{
    uint64_t lo, hi;
    e820_split_ram(4ULL << 30, &lo, &hi);
    assert_true(lo == PC_PCI_HOLE_START && hi == (4ULL << 30) - PC_PCI_HOLE_START);
    struct e820_table t;
    e820_build_pc(&t, lo, hi);
    int found_hi = 0;
    for (int i = 0; i < t.n; i++) {
        const struct e820_entry *e = &t.e[i];
        if (i)
            assert_true(e->addr >= t.e[i - 1].addr + t.e[i - 1].size);   /* sorted, disjoint */
        if (e->type == E820_RAM) {
            /* No RAM in the VGA/BIOS area or the PCI hole. */
            assert_false(e->addr < 0x100000 && e->addr + e->size > 0xa0000);
            assert_false(e->addr < PC_4G && e->addr + e->size > PC_PCI_HOLE_START);
            found_hi += e->addr == PC_4G;
        }
    }
    assert_int_equal(found_hi, 1);
    assert_true(e820_ram_total(&t) == (4ULL << 30) - (0x100000 - PC_EBDA_START));
    e820_split_ram(512ULL << 20, &lo, &hi);
    assert_true(lo == 512ULL << 20 && hi == 0);
    e820_build_pc(&t, lo, hi);
    assert_int_equal(t.e[0].addr, 0);
    assert_int_equal(t.e[0].size, PC_EBDA_START);
    assert_true(e820_ram_total(&t) == (512ULL << 20) - (0x100000 - PC_EBDA_START));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_pm_hardware),
        cmocka_unit_test(test_e820),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
