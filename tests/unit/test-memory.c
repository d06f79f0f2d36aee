/* Address spaces: RAM and MMIO dispatch, priorities, unassigned reads,
 * straddling accesses, removal, the RAM write hook, memoized RAM lookups. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include "hw/memory.h"
#include "util/mainloop.h"

struct dev {
    uint64_t last_off, last_val;
    unsigned last_size;
    int reads, writes;
};

static uint64_t dev_read(void *o, uint64_t off, unsigned size)
{
    struct dev *d = o;
    d->reads++;
    d->last_off = off;
    return 0x1122334455667788ULL;
}

static void dev_write(void *o, uint64_t off, uint64_t val, unsigned size)
{
    struct dev *d = o;
    d->writes++;
    d->last_off = off;
    d->last_val = val;
    d->last_size = size;
}

static const struct mem_ops dev_ops = { dev_read, dev_write };

static uint64_t hook_gpa, hook_len;
static void hook(void *o, uint64_t gpa, uint64_t len) { hook_gpa = gpa; hook_len = len; }

static void test_dispatch(void **state)
{
    struct mainloop *ml = ml_new();
    struct address_space *as = as_new("mem", ml);
    static uint8_t ram[0x10000];
    struct dev d = {0};
    assert_int_equal(as_add_ram(as, 0, sizeof(ram), ram, "ram"), 0);
    assert_int_equal(as_add_io(as, 0x8000, 0x100, &dev_ops, &d, "dev", 1), 0);
    as_write(as, 0x10, 0xdeadbeef, 4);
    assert_int_equal(as_read(as, 0x10, 4), 0xdeadbeef);
    assert_int_equal(as_read(as, 0x12, 2), 0xdead);
    /* The device wins over RAM where it sits. */
    as_write(as, 0x8004, 0xabcd, 2);
    assert_int_equal(d.writes, 1);
    assert_int_equal(d.last_off, 4);
    assert_int_equal(d.last_val, 0xabcd);
    assert_int_equal(as_read(as, 0x8008, 1), 0x88);
    assert_int_equal(d.last_off, 8);
    assert_int_equal(ram[0x8004], 0);
    const struct mem_region *r = as_lookup(as, 0x80ff);
    assert_non_null(r);
    assert_string_equal(r->name, "dev");
    assert_string_equal(as_lookup(as, 0x8100)->name, "ram");
    /* Unassigned space reads all ones, writes vanish. */
    assert_true(as_read(as, 0x20000, 4) == 0xffffffffULL);
    assert_true(as_read(as, 0x20000, 8) == ~0ULL);
    as_write(as, 0x20000, 1, 4);
    /* An access straddling RAM's end: low bytes RAM, high bytes ones. */
    ram[0xffff] = 0x5a;
    assert_int_equal(as_read(as, 0xffff, 2), 0xff5a);
    assert_int_equal(as_del(as, 0x8000, &d), 0);
    as_write(as, 0x8004, 0x77, 1);
    assert_int_equal(ram[0x8004], 0x77);
    assert_int_equal(d.writes, 1);
    struct mem_region list[4];
    assert_int_equal(as_regions(as, list, 4), 1);
    as_free(as);
    ml_free(ml);
}

static void test_dma_and_hook(void **state)
{
    struct address_space *as = as_new("mem", NULL);
    static uint8_t lo[0x2000], hi[0x2000];
    as_add_ram(as, 0, sizeof(lo), lo, "lo");
    as_add_ram(as, 0x2000, sizeof(hi), hi, "hi");
    as_set_ram_write_hook(as, hook, NULL);
    uint8_t buf[32];
    memset(buf, 0xab, sizeof(buf));
    assert_int_equal(as_rw(as, 0x1ff0, buf, 32, true), 0);    /* spans both regions */
    assert_int_equal(lo[0x1fff], 0xab);
    assert_int_equal(hi[0xf], 0xab);
    assert_int_equal(hi[0x10], 0);
    assert_int_equal(hook_gpa, 0x2000);
    assert_int_equal(hook_len, 16);
    assert_null(as_ram_ptr(as, 0x1ff0, 32));                  /* not one region */
    assert_ptr_equal(as_ram_ptr(as, 0x2000, 0x2000), hi);
    assert_int_equal(as_rw(as, 0x3ff0, buf, 32, false), -EFAULT);
    as_free(as);
}

/* A memo answers from the span it remembers, and stops as soon as the
 * region list changes under it. */
static void test_ram_memo(void **state)
{
    struct address_space *as = as_new("mem", NULL);
    static uint8_t a[0x4000], b[0x4000];
    struct as_memo memo = { 0 };
    as_add_ram(as, 0x10000, sizeof(a), a, "a");
    assert_ptr_equal(as_ram_ptr_memo(as, &memo, 0x11000, 4096), a + 0x1000);
    assert_ptr_equal(as_ram_ptr_memo(as, &memo, 0x13000, 4096), a + 0x3000);
    assert_null(as_ram_ptr_memo(as, &memo, 0x13800, 4096));     /* runs past the end */
    assert_null(as_ram_ptr_memo(as, &memo, 0x14000, 4096));
    assert_ptr_equal(as_ram_ptr_memo(as, &memo, 0x12000, 4096), a + 0x2000);
    as_del(as, 0x10000, NULL);
    assert_null(as_ram_ptr_memo(as, &memo, 0x12000, 4096));     /* gone */
    as_add_ram(as, 0x10000, sizeof(b), b, "b");
    assert_ptr_equal(as_ram_ptr_memo(as, &memo, 0x12000, 4096), b + 0x2000);
    as_free(as);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ram_memo),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_dma_and_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
