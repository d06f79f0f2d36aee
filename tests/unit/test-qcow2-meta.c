/* Unit tests for qcow2 metadata operations: measure's arithmetic (numbers
 * from qemu-img 7.2), internal snapshots, check/repair and amend through
 * the block layer, without any outside tool. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <endian.h>
#include <errno.h>
#include "block/qcow2-meta.h"
#include "block-test.h"

enum { KiB = 1024, MiB = 1024 * 1024 };

static int measure(const char *optstr, uint64_t size, struct qcow2_measure_info *m,
                   struct error *err)
{
    struct opts o = { 0 };
    if (optstr[0])
        assert_int_equal(opts_parse(&o, optstr, NULL, err), 0);
    int ret = qcow2_measure(&o, size, NULL, m, err);
    if (ret == 0)
        assert_int_equal(opts_check_unused(&o, err), 0);
    opts_free(&o);
    return ret;
}

static void test_measure_sizes(void **state)
{
    static const struct { const char *opts; uint64_t size, required, full; } t[] = {
        { "", 10ull << 30, 1900544, 10739318784ull },
        { "cluster_size=4096", 10ull << 30, 26288128, 10763706368ull },
        { "refcount_bits=1", 10ull << 30, 1572864, 10738991104ull },
        { "compat=0.10", 10ull << 30, 1900544, 10739318784ull },
        { "preallocation=full", 10ull << 30, 10739318784ull, 10739318784ull },
        { "extended_l2=on", 10ull << 30, 3211264, 10740629504ull },
        { "cluster_size=2M,refcount_bits=64", 10ull << 30, 10485760, 10747904000ull },
        { "", 1ull << 50, 171825102848ull, 1126071731945472ull },
        { "", 0, 196608, 196608 },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct qcow2_measure_info m;
        struct error err = { 0 };
        assert_int_equal(measure(t[i].opts, t[i].size, &m, &err), 0);
        assert_true(m.required == t[i].required);
        assert_true(m.fully_allocated == t[i].full);
        assert_false(m.has_bitmaps);
    }
}

static void test_measure_errors(void **state)
{
    static const struct { const char *opts; uint64_t size; const char *msg; } t[] = {
        { "cluster_size=1000", 1 << 30, "Cluster size must be a power of two between 512 and 2048k" },
        { "refcount_bits=3", 1 << 30, "Refcount width must be a power of two and may not exceed 64 bits" },
        { "compat=0.10,refcount_bits=8", 1 << 30, "Different refcount widths than 16 bits require "
          "compatibility level 1.1 or above (use compat=1.1 or greater)" },
        { "compat=2", 1 << 30, "Invalid compatibility level: '2'" },
        { "preallocation=foo", 1 << 30, "invalid parameter value: foo" },
        { "cluster_size=512", 8ull << 50, "The image size is too large (try using a larger cluster size)" },
        { "extended_l2=on,cluster_size=4k", 1 << 30, "Extended L2 entries are only supported with "
          "cluster sizes of at least 16384 bytes" },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct qcow2_measure_info m;
        struct error err = { 0 };
        assert_true(measure(t[i].opts, t[i].size, &m, &err) < 0);
        assert_string_equal(err.msg, t[i].msg);
    }
}

static struct bdev *new_image(const char *name, const char *optstr, uint64_t size)
{
    struct opts o = { 0 };
    struct error err = { 0 };
    if (optstr[0])
        assert_int_equal(opts_parse(&o, optstr, NULL, &err), 0);
    if (bdrv_qcow2.create(bt_path(name), size, &o, &err) < 0)
        fail_msg("create: %s", err.msg);
    opts_free(&o);
    struct bdev *bs;
    if (bdev_open_simple(&bs, bt_path(name), "qcow2", BDEV_O_RDWR, &err) < 0)
        fail_msg("open: %s", err.msg);
    return bs;
}

static void write_pattern(struct bdev *bs, uint64_t off, size_t len, int seed)
{
    uint8_t *b = malloc(len);
    bt_fill(b, off, len, seed);
    assert_int_equal(bdev_pwrite(bs, off, b, len, 0), 0);
    free(b);
}

static void expect_pattern(struct bdev *bs, uint64_t off, size_t len, int seed)
{
    uint8_t *b = malloc(len);
    assert_int_equal(bdev_pread(bs, off, b, len), 0);
    assert_int_equal(bt_check(b, off, len, seed), -1);
    free(b);
}

static void expect_clean(struct bdev *bs)
{
    struct bdev_check_result r;
    assert_int_equal(qcow2_check(bs, &r, 0, NULL), 0);
    assert_int_equal(r.corruptions, 0);
    assert_int_equal(r.leaks, 0);
    assert_int_equal(r.check_errors, 0);
}

static void test_snapshots(void **state)
{
    struct bdev *bs = new_image("sn.qcow2", "", 8 * MiB);
    struct error err = { 0 };
    write_pattern(bs, 0, 200 * KiB, 1);
    assert_int_equal(qcow2_snapshot_create(bs, "one", &err), 0);
    write_pattern(bs, 64 * KiB, 64 * KiB, 2);
    write_pattern(bs, 5 * MiB, 64 * KiB, 3);
    assert_int_equal(qcow2_snapshot_create(bs, "two", &err), 0);
    write_pattern(bs, 0, 64 * KiB, 4);
    expect_clean(bs);

    struct bdev_snapshot *sn;
    assert_int_equal(qcow2_snapshot_list(bs, &sn), 2);
    assert_string_equal(sn[0].id, "1");
    assert_string_equal(sn[0].name, "one");
    assert_string_equal(sn[1].id, "2");
    assert_true(sn[1].icount == 0 && sn[1].vm_state_size == 0 && sn[1].date_sec > 0);
    free(sn);

    assert_int_equal(qcow2_snapshot_goto(bs, "one", &err), 0);
    expect_pattern(bs, 0, 200 * KiB, 1);
    expect_clean(bs);
    assert_int_equal(qcow2_snapshot_goto(bs, "2", &err), 0);    /* by id */
    expect_pattern(bs, 0, 64 * KiB, 1);
    expect_pattern(bs, 64 * KiB, 64 * KiB, 2);
    expect_pattern(bs, 5 * MiB, 64 * KiB, 3);
    assert_int_equal(qcow2_snapshot_goto(bs, "nosuch", &err), -ENOENT);
    assert_int_equal(qcow2_snapshot_delete(bs, "2", &err), -ENOENT);  /* names only */
    assert_int_equal(qcow2_snapshot_delete(bs, "one", &err), 0);
    expect_clean(bs);
    assert_int_equal(qcow2_snapshot_delete(bs, "two", &err), 0);
    expect_clean(bs);
    assert_int_equal(qcow2_snapshot_list(bs, &sn), 0);
    free(sn);
    expect_pattern(bs, 64 * KiB, 64 * KiB, 2);
    bdev_close(bs);
}

/* Refcount of cluster `c` (16-bit refcounts), straight from the file. */
static void poke_refcount(const char *path, uint64_t c, uint16_t v)
{
    FILE *f = fopen(path, "r+b");
    uint8_t h[64];
    assert_int_equal(fread(h, 1, 64, f), 64);
    uint64_t rt, rb;
    memcpy(&rt, h + 48, 8);
    fseek(f, (long)be64toh(rt), SEEK_SET);
    assert_int_equal(fread(&rb, 8, 1, f), 1);
    uint16_t be = htobe16(v);
    fseek(f, (long)(be64toh(rb) + 2 * c), SEEK_SET);
    assert_int_equal(fwrite(&be, 2, 1, f), 1);
    fclose(f);
}

static void test_check_repair(void **state)
{
    struct bdev *bs = new_image("ck.qcow2", "", 4 * MiB);
    write_pattern(bs, 0, 128 * KiB, 5);
    bdev_close(bs);
    /* header, reftable, refblock, L1, L2, 2 data clusters: cluster 5 is data */
    poke_refcount(bt_path("ck.qcow2"), 5, 2);        /* a leak */
    struct error err = { 0 };
    assert_int_equal(bdev_open_simple(&bs, bt_path("ck.qcow2"), "qcow2",
                                      BDEV_O_RDWR | BDEV_O_CHECK, &err), 0);
    struct bdev_check_result r;
    assert_int_equal(qcow2_check(bs, &r, 0, NULL), 0);
    assert_int_equal(r.leaks, 1);
    /* refcount 2 also makes OFLAG_COPIED wrong for that cluster */
    assert_int_equal(r.corruptions, 1);
    assert_int_equal(qcow2_check(bs, &r, BDEV_FIX_LEAKS | BDEV_FIX_ERRORS, NULL), 0);
    assert_int_equal(r.leaks_fixed, 1);
    expect_clean(bs);
    bdev_close(bs);

    poke_refcount(bt_path("ck.qcow2"), 6, 0);        /* needs a new refcount structure */
    assert_int_equal(bdev_open_simple(&bs, bt_path("ck.qcow2"), "qcow2",
                                      BDEV_O_RDWR | BDEV_O_CHECK, &err), 0);
    assert_int_equal(qcow2_check(bs, &r, BDEV_FIX_LEAKS, NULL), -EIO);
    assert_int_equal(qcow2_check(bs, &r, BDEV_FIX_LEAKS | BDEV_FIX_ERRORS, NULL), 0);
    assert_int_equal(r.corruptions_fixed, 1);
    expect_clean(bs);
    expect_pattern(bs, 0, 128 * KiB, 5);
    bdev_close(bs);
}

static void test_amend(void **state)
{
    struct bdev *bs = new_image("am.qcow2", "cluster_size=4096", 4 * MiB);
    struct error err = { 0 };
    write_pattern(bs, 0, 300 * KiB, 6);
    assert_int_equal(qcow2_snapshot_create(bs, "s", &err), 0);
    write_pattern(bs, 100 * KiB, 8 * KiB, 7);
    static const char *const steps[] = {
        "refcount_bits=2", "refcount_bits=64", "lazy_refcounts=on", "lazy_refcounts=off",
        "refcount_bits=16", "compat=0.10", "compat=1.1",
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct opts o = { 0 };
        assert_int_equal(opts_parse(&o, steps[i], NULL, &err), 0);
        if (qcow2_amend(bs, &o, false, &err) < 0)
            fail_msg("%s: %s", steps[i], err.msg);
        opts_free(&o);
        expect_clean(bs);
        expect_pattern(bs, 100 * KiB, 8 * KiB, 7);
    }
    struct opts o = { 0 };
    assert_int_equal(opts_parse(&o, "refcount_bits=1", NULL, &err), 0);
    assert_int_equal(qcow2_amend(bs, &o, false, &err), -EINVAL);   /* shared clusters */
    opts_free(&o);
    assert_int_equal(qcow2_snapshot_goto(bs, "s", &err), 0);
    expect_pattern(bs, 0, 300 * KiB, 6);
    expect_clean(bs);
    bdev_close(bs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_measure_sizes),
        cmocka_unit_test(test_measure_errors),
        cmocka_unit_test(test_snapshots),
        cmocka_unit_test(test_check_repair),
        cmocka_unit_test(test_amend),
    };
    return cmocka_run_group_tests(tests, bt_setup, bt_teardown);
}
