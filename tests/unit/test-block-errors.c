/* Unit tests for the block layer's error paths: each failure gives the
 * right -errno, a message a user can act on, and leaves nothing open. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <sys/stat.h>
#include "block/block_int.h"
#include "block-test.h"

static void expect_fail(const char *filename, const char *fmt, int flags, int code,
                        const char *needle)
{
    struct bdev *bs = (struct bdev *)1;
    struct error err = {0};
    assert_int_equal(bdev_open_simple(&bs, filename, fmt, flags, &err), code);
    assert_null(bs);
    assert_int_equal(err.code, code);
    if (!strstr(err.msg, needle))
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void test_missing_file(void **state)
{
    char want[400];
    snprintf(want, sizeof(want), "Could not open '%s': No such file or directory",
             bt_path("absent.img"));
    expect_fail(bt_path("absent.img"), NULL, 0, -ENOENT, want);
    expect_fail(bt_path("absent.img"), "raw", BDEV_O_RDWR, -ENOENT, want);
}

static void test_unknown_format(void **state)
{
    bt_write_file(bt_path("x.img"), "data", 4, 4096);
    expect_fail(bt_path("x.img"), "bogus", 0, -EINVAL, "Unknown driver 'bogus'");
    assert_null(block_driver_find("bogus"));
    assert_null(block_driver_find(""));
}

static void test_bad_paths(void **state)
{
    expect_fail(bt_dir, NULL, 0, -EISDIR, "Is a directory");
    bt_write_file(bt_path("plain"), "x", 1, 1);
    expect_fail(bt_path("plain/inner.img"), NULL, 0, -ENOTDIR, "Not a directory");
    expect_fail("", NULL, 0, -EINVAL, "file name");
    expect_fail(NULL, "raw", 0, -EINVAL, "file name");
    char longname[300];      /* one component over NAME_MAX */
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    expect_fail(longname, NULL, 0, -ENAMETOOLONG, "too long");
}

static void test_create_errors(void **state)
{
    struct error err = {0};
    assert_int_equal(bdrv_raw.create(bt_path("nodir/new.img"), 4096, NULL, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "Could not create"));
    assert_non_null(strstr(err.msg, "No such file or directory"));

    struct opts o;
    memset(&err, 0, sizeof(err));
    assert_int_equal(opts_parse(&o, "preallocation=sometimes", NULL, &err), 0);
    assert_int_equal(bdrv_raw.create(bt_path("new.img"), 4096, &o, &err), -ENOTSUP);
    assert_non_null(strstr(err.msg, "sometimes"));
    opts_free(&o);
    struct stat st;
    assert_int_equal(stat(bt_path("new.img"), &st), -1);   /* nothing left behind */

    memset(&err, 0, sizeof(err));
    assert_int_equal(opts_parse(&o, "preallocation=full", NULL, &err), 0);
    assert_int_equal(bdrv_raw.create(bt_path("full.img"), 100000, &o, &err), 0);
    assert_int_equal(opts_check_unused(&o, &err), 0);      /* the driver took the key */
    opts_free(&o);
    assert_int_equal(stat(bt_path("full.img"), &st), 0);
    assert_true(st.st_size == 100000 && st.st_blocks * 512 >= 100000);
}

/* The "file" format opens the protocol node itself: no bounds, no probing. */
static void test_file_format_and_accessors(void **state)
{
    bt_write_file(bt_path("proto.img"), "abc", 3, 0);
    struct bdev *bs;
    struct error err = {0};
    assert_int_equal(bdev_open_simple(&bs, bt_path("proto.img"), "file", BDEV_O_RDWR, &err), 0);
    assert_string_equal(bdev_format_name(bs), "file");
    assert_null(bdev_file(bs));
    assert_null(bdev_backing(bs));
    assert_null(bdev_backing_filename(bs));
    assert_string_equal(bdev_filename(bs), bt_path("proto.img"));
    assert_int_equal(bdev_pwrite(bs, 4096, "xyz", 3, 0), 0);     /* grows the file */
    assert_true(bdev_getlength(bs) == 4099);
    uint8_t buf[8];
    assert_int_equal(bdev_pread(bs, 4096, buf, 8), 0);           /* past EOF: zeroes */
    assert_memory_equal(buf, "xyz\0\0\0\0\0", 8);
    assert_int_equal(bdev_pwrite_compressed(bs, 0, buf, 8), -ENOTSUP);
    bdev_close(bs);
}

/* A format driver whose open fails: the error reaches the caller and the
 * file node (with its lock) is gone. */
static int failing_open(struct bdev *bs, const struct bdev_open_opts *o, struct error *err)
{
    return error_set(err, -EINVAL, "Image is not in failing format");
}
static int silent_open(struct bdev *bs, const struct bdev_open_opts *o, struct error *err)
{
    return -EPROTO;
}
static const struct block_driver bdrv_failing = { .name = "failing", .open = failing_open };
static const struct block_driver bdrv_silent = { .name = "silent", .open = silent_open };

static void test_driver_open_failure(void **state)
{
    bt_write_file(bt_path("f.img"), NULL, 0, 4096);
    expect_fail(bt_path("f.img"), "failing", BDEV_O_RDWR, -EINVAL, "not in failing format");
    expect_fail(bt_path("f.img"), "silent", BDEV_O_RDWR, -EPROTO, "Could not open '");
    struct bdev *bs;
    struct error err = {0};
    assert_int_equal(bdev_open_simple(&bs, bt_path("f.img"), "raw", BDEV_O_RDWR, &err), 0);
    assert_int_equal(bdev_truncate(bs, 8192, false, NULL, &err), 0);
    bdev_close(bs);

    /* Formats without these calls say so rather than crash. */
    assert_int_equal(bdev_open_simple(&bs, bt_path("f.img"), "raw", 0, &err), 0);
    memset(&err, 0, sizeof(err));
    assert_int_equal(bdev_truncate(bs, 4096, true, NULL, &err), -EACCES);
    assert_non_null(strstr(err.msg, "read-only"));
    bdev_close(bs);
}

int main(void)
{
    block_driver_register(&bdrv_failing);
    block_driver_register(&bdrv_silent);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_unknown_format),
        cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_file_format_and_accessors),
        cmocka_unit_test(test_driver_open_failure),
    };
    return cmocka_run_group_tests(tests, bt_setup, bt_teardown);
}
