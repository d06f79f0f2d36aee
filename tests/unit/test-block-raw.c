/* Unit tests for the raw format over the file protocol: data in and out,
 * zeroes, discard, block status, resize, read-only opens and O_DIRECT. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <sys/stat.h>
#include "block/block_int.h"
#include "block-test.h"

enum { KiB = 1024, MiB = 1024 * 1024 };

static struct bdev *create_and_open(const char *name, uint64_t size, int flags)
{
    struct error err = {0};
    assert_int_equal(bdrv_raw.create(bt_path(name), size, NULL, &err), 0);
    struct bdev *bs;
    int ret = bdev_open_simple(&bs, bt_path(name), "raw", flags, &err);
    if (ret)
        fail_msg("open: %s", err.msg);
    return bs;
}

static void test_read_write(void **state)
{
    struct bdev *bs = create_and_open("rw.img", 4 * MiB, BDEV_O_RDWR);
    assert_string_equal(bdev_format_name(bs), "raw");
    assert_true(bdev_getlength(bs) == 4 * MiB);
    uint8_t *buf = malloc(MiB), *out = malloc(MiB);
    bt_fill(buf, 12345, 300 * KiB, 1);
    assert_int_equal(bdev_pwrite(bs, 12345, buf, 300 * KiB, 0), 0);
    memset(out, 0, MiB);
    assert_int_equal(bdev_pread(bs, 12345, out, 300 * KiB), 0);
    assert_int_equal(bt_check(out, 12345, 300 * KiB, 1), -1);

    /* Scatter/gather: three pieces of odd sizes at an odd offset. */
    uint8_t a[7], b[4096], c[1000];
    bt_fill(a, 3 * MiB + 1, 7, 2);
    bt_fill(b, 3 * MiB + 8, 4096, 2);
    bt_fill(c, 3 * MiB + 8 + 4096, 1000, 2);
    struct iovec w[3] = { { a, 7 }, { b, 4096 }, { c, 1000 } };
    assert_int_equal(bdev_pwritev(bs, 3 * MiB + 1, w, 3, BDEV_REQ_FUA), 0);
    assert_int_equal(bdev_pread(bs, 3 * MiB + 1, out, 5103), 0);
    assert_int_equal(bt_check(out, 3 * MiB + 1, 5103, 2), -1);
    struct iovec r[2] = { { out, 100 }, { out + 200, 5003 } };
    memset(out, 0, 6000);
    assert_int_equal(bdev_preadv(bs, 3 * MiB + 1, r, 2), 0);
    assert_int_equal(bt_check(out, 3 * MiB + 1, 100, 2), -1);
    assert_int_equal(bt_check(out + 200, 3 * MiB + 101, 5003, 2), -1);
    assert_int_equal(bdev_flush(bs), 0);
    bdev_close(bs);

    /* What landed is in the host file at the same offsets. */
    FILE *f = fopen(bt_path("rw.img"), "rb");
    assert_non_null(f);
    fseek(f, 12345, SEEK_SET);
    assert_int_equal(fread(out, 1, 300 * KiB, f), 300 * KiB);
    fclose(f);
    assert_int_equal(bt_check(out, 12345, 300 * KiB, 1), -1);
    free(buf);
    free(out);
}

static void test_zeroes_and_discard(void **state)
{
    struct bdev *bs = create_and_open("zero.img", 2 * MiB, BDEV_O_RDWR);
    uint8_t *buf = malloc(2 * MiB);
    bt_fill(buf, 0, 2 * MiB, 3);
    assert_int_equal(bdev_pwrite(bs, 0, buf, 2 * MiB, 0), 0);
    assert_int_equal(bdev_flush(bs), 0);
    int64_t full = bdev_allocated_size(bs);
    assert_true(full >= 2 * MiB);

    assert_int_equal(bdev_pwrite_zeroes(bs, 100, 5000, 0), 0);
    assert_int_equal(bdev_pwrite_zeroes(bs, MiB, 256 * KiB, BDEV_REQ_MAY_UNMAP), 0);
    assert_int_equal(bdev_pread(bs, 0, buf, 2 * MiB), 0);
    assert_int_equal(bt_check(buf, 0, 100, 3), -1);
    assert_true(bt_is_zero(buf + 100, 5000));
    assert_int_equal(bt_check(buf + 5100, 5100, MiB - 5100, 3), -1);
    assert_true(bt_is_zero(buf + MiB, 256 * KiB));
    assert_int_equal(bt_check(buf + MiB + 256 * KiB, MiB + 256 * KiB, 768 * KiB, 3), -1);
    /* MAY_UNMAP gave the space back. */
    assert_true(bdev_allocated_size(bs) <= full - 256 * KiB);

    int64_t before = bdev_allocated_size(bs);
    assert_int_equal(bdev_pdiscard(bs, 1536 * KiB, 512 * KiB), 0);
    assert_true(bdev_allocated_size(bs) <= before - 512 * KiB);
    assert_true(bdev_getlength(bs) == 2 * MiB);
    bdev_close(bs);
    free(buf);
}

static void test_block_status(void **state)
{
    struct bdev *bs = create_and_open("status.img", MiB, BDEV_O_RDWR);
    uint64_t pnum, map;
    struct bdev *file;
    int depth;
    int ret = bdev_block_status(bs, 0, MiB, &pnum, &map, &file);
    assert_int_equal(ret, BDEV_STATUS_ZERO | BDEV_STATUS_OFFSET | BDEV_STATUS_ALLOCATED);
    assert_true(pnum == MiB);
    assert_ptr_equal(file, bdev_file(bs));

    uint8_t buf[64 * KiB];
    bt_fill(buf, 0, sizeof(buf), 4);
    assert_int_equal(bdev_pwrite(bs, 256 * KiB, buf, sizeof(buf), 0), 0);
    ret = bdev_block_status(bs, 0, MiB, &pnum, &map, &file);
    assert_true(ret & BDEV_STATUS_ZERO);
    assert_true(pnum == 256 * KiB);
    ret = bdev_block_status(bs, 256 * KiB, MiB, &pnum, &map, &file);
    assert_int_equal(ret, BDEV_STATUS_DATA | BDEV_STATUS_OFFSET | BDEV_STATUS_ALLOCATED);
    assert_true(pnum == 64 * KiB);       /* clamped to the image end too */
    assert_true(map == 256 * KiB);
    ret = bdev_block_status_above(bs, 320 * KiB, MiB, &pnum, &map, &file, &depth);
    assert_true(ret & BDEV_STATUS_ZERO);
    assert_true(pnum == MiB - 320 * KiB);
    assert_int_equal(depth, 0);          /* raw defines all of its content */
    /* At or past the end: nothing. */
    assert_int_equal(bdev_block_status(bs, MiB, 512, &pnum, &map, &file), 0);
    assert_true(pnum == 0);
    bdev_close(bs);
}

static void test_truncate(void **state)
{
    struct error err = {0};
    struct bdev *bs = create_and_open("resize.img", MiB, BDEV_O_RDWR);
    int64_t alloc0 = bdev_allocated_size(bs);
    assert_int_equal(bdev_truncate(bs, 2 * MiB, false, "off", &err), 0);
    assert_true(bdev_getlength(bs) == 2 * MiB);
    assert_true(bdev_allocated_size(bs) == alloc0);
    assert_int_equal(bdev_truncate(bs, 3 * MiB, false, "falloc", &err), 0);
    assert_true(bdev_allocated_size(bs) >= alloc0 + MiB);
    assert_int_equal(bdev_truncate(bs, 4 * MiB + 100, false, "full", &err), 0);
    assert_true(bdev_getlength(bs) == 4 * MiB + 100);
    assert_true(bdev_allocated_size(bs) >= alloc0 + 2 * MiB);
    uint8_t buf[4096];
    memset(buf, 0xee, sizeof(buf));
    assert_int_equal(bdev_pread(bs, 4 * MiB + 100 - 4096, buf, 4096), 0);
    assert_true(bt_is_zero(buf, 4096));

    assert_int_not_equal(bdev_truncate(bs, MiB, false, NULL, &err), 0);
    assert_non_null(strstr(err.msg, "hrink"));
    assert_true(bdev_getlength(bs) == 4 * MiB + 100);
    memset(&err, 0, sizeof(err));
    assert_int_not_equal(bdev_truncate(bs, 5 * MiB, false, "metadata", &err), 0);
    assert_non_null(strstr(err.msg, "metadata"));
    memset(&err, 0, sizeof(err));
    assert_int_equal(bdev_truncate(bs, MiB, true, NULL, &err), 0);
    assert_true(bdev_getlength(bs) == MiB);
    /* The new size bounds requests. */
    assert_int_equal(bdev_pread(bs, MiB - 512, buf, 1024), -EIO);
    bdev_close(bs);

    struct stat st;
    assert_int_equal(stat(bt_path("resize.img"), &st), 0);
    assert_true(st.st_size == MiB);
}

static void test_out_of_range(void **state)
{
    struct bdev *bs = create_and_open("range.img", 64 * KiB + 100, BDEV_O_RDWR);
    uint8_t buf[1024];
    assert_int_equal(bdev_pread(bs, 64 * KiB, buf, 100), 0);      /* the odd tail is there */
    assert_int_equal(bdev_pread(bs, 64 * KiB, buf, 101), -EIO);
    assert_int_equal(bdev_pwrite(bs, 64 * KiB + 100, buf, 1, 0), -EIO);
    assert_int_equal(bdev_pwrite_zeroes(bs, 60 * KiB, 8 * KiB, 0), -EIO);
    assert_int_equal(bdev_pread(bs, 64 * KiB + 100, buf, 0), 0);
    assert_int_equal(bdev_pread(bs, UINT64_MAX - 10, buf, 100), -EINVAL);
    assert_true(bdev_getlength(bs) == 64 * KiB + 100);
    bdev_close(bs);
}

static void test_read_only_never_writes(void **state)
{
    struct error err = {0};
    struct bdev *bs = create_and_open("ro.img", 256 * KiB, BDEV_O_RDWR);
    uint8_t buf[4096];
    bt_fill(buf, 0, sizeof(buf), 5);
    assert_int_equal(bdev_pwrite(bs, 0, buf, sizeof(buf), 0), 0);
    bdev_close(bs);
    struct stat before, after;
    assert_int_equal(stat(bt_path("ro.img"), &before), 0);

    assert_int_equal(bdev_open_simple(&bs, bt_path("ro.img"), NULL, 0, &err), 0);
    assert_true(bdev_is_read_only(bs));
    assert_int_equal(bdev_pwrite(bs, 0, buf, 512, 0), -EACCES);
    assert_int_equal(bdev_pwrite_zeroes(bs, 0, 512, 0), -EACCES);
    assert_int_equal(bdev_pdiscard(bs, 0, 4096), -EACCES);
    assert_int_equal(bdev_pwrite(bdev_file(bs), 0, buf, 512, 0), -EACCES);
    assert_int_not_equal(bdev_truncate(bs, MiB, false, NULL, &err), 0);
    assert_int_equal(bdev_flush(bs), 0);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(bdev_pread(bs, 0, buf, sizeof(buf)), 0);
    assert_int_equal(bt_check(buf, 0, sizeof(buf), 5), -1);
    bdev_close(bs);

    assert_int_equal(stat(bt_path("ro.img"), &after), 0);
    assert_true(after.st_size == before.st_size);
    assert_true(after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
                after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
    assert_true(after.st_ctim.tv_sec == before.st_ctim.tv_sec &&
                after.st_ctim.tv_nsec == before.st_ctim.tv_nsec);
}

/* O_DIRECT: unaligned offsets, lengths and buffers go through bounce
 * buffers, and rounding never grows the file. */
static void test_nocache_bounce(void **state)
{
    uint64_t size = MiB + 100;
    struct bdev *bs = create_and_open("direct.img", size, BDEV_O_RDWR | BDEV_O_NOCACHE);
    assert_true(bdev_file(bs)->request_alignment >= 512);
    uint8_t *raw = malloc(2 * MiB), *buf = raw + 3;     /* deliberately misaligned */
    bt_fill(buf, 1000, 300 * KiB + 7, 6);
    assert_int_equal(bdev_pwrite(bs, 1000, buf, 300 * KiB + 7, 0), 0);
    bt_fill(buf, size - 50, 50, 7);
    assert_int_equal(bdev_pwrite(bs, size - 50, buf, 50, 0), 0);
    bt_fill(buf, 700, 10, 8);                          /* inside one block, twice */
    assert_int_equal(bdev_pwrite(bs, 700, buf, 10, 0), 0);

    memset(raw, 0, 2 * MiB);
    assert_int_equal(bdev_pread(bs, 1, buf, size - 1), 0);
    assert_true(bt_is_zero(buf, 699));
    assert_int_equal(bt_check(buf + 699, 700, 10, 8), -1);
    assert_true(bt_is_zero(buf + 709, 1000 - 710));
    assert_int_equal(bt_check(buf + 999, 1000, 300 * KiB + 7, 6), -1);
    assert_int_equal(bt_check(buf + size - 51, size - 50, 50, 7), -1);
    assert_int_equal(bdev_pwrite_zeroes(bs, 999, 3, 0), 0);
    assert_int_equal(bdev_pread(bs, 998, buf, 5), 0);
    assert_int_equal(buf[0], 0);
    assert_true(bt_is_zero(buf + 1, 3));
    assert_int_equal(bt_check(buf + 4, 1002, 1, 6), -1);
    bdev_close(bs);

    struct stat st;
    assert_int_equal(stat(bt_path("direct.img"), &st), 0);
    assert_true((uint64_t)st.st_size == size);
    free(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_write),
        cmocka_unit_test(test_zeroes_and_discard),
        cmocka_unit_test(test_block_status),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_read_only_never_writes),
        cmocka_unit_test(test_nocache_bounce),
    };
    return cmocka_run_group_tests(tests, bt_setup, bt_teardown);
}
