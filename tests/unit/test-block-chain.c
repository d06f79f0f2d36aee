/* Unit tests for probing and backing chains, using a tiny fake format that
 * this file registers: header sector with a magic, size and backing name, a
 * byte map of allocated 4 KiB blocks, data at 4096 + guest offset. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include "block/block_int.h"
#include "util/iov.h"
#include "block-test.h"

enum { KiB = 1024, MiB = 1024 * 1024, BLK = 4096, DATA_START = 4096,
       MAP_START = 512, MAX_BLOCKS = DATA_START - MAP_START };
static const char fake_magic[8] = "QKFAKE01";

struct fake_hdr {
    char magic[8];
    uint64_t size;
    char backing[128];
    char backing_fmt[32];
};

struct fake_state {
    struct fake_hdr hdr;
    uint8_t map[MAX_BLOCKS];
};

static int fake_probe(const uint8_t *buf, int len, const char *filename)
{
    return len >= 8 && !memcmp(buf, fake_magic, 8) ? 100 : 0;
}

static int fake_open(struct bdev *bs, const struct bdev_open_opts *o, struct error *err)
{
    struct fake_state *s = bs->opaque;
    int ret = bdev_pread(bs->file, 0, &s->hdr, sizeof(s->hdr));
    if (!ret)
        ret = bdev_pread(bs->file, MAP_START, s->map, sizeof(s->map));
    if (ret)
        return error_set_errno(err, ret, "fake: could not read header");
    if (memcmp(s->hdr.magic, fake_magic, 8))
        return error_set(err, -EINVAL, "fake: bad magic");
    if (s->hdr.backing[0])
        bs->backing_file = strndup(s->hdr.backing, sizeof(s->hdr.backing));
    if (s->hdr.backing_fmt[0])
        bs->backing_format = strndup(s->hdr.backing_fmt, sizeof(s->hdr.backing_fmt));
    return 0;
}

/* Unallocated blocks read as zeroes: backing reads are block.c's job. */
static int fake_preadv(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt)
{
    struct fake_state *s = bs->opaque;
    uint64_t bytes = iov_size(iov, cnt);
    uint8_t *buf = malloc(bytes);
    int ret = bdev_pread(bs->file, DATA_START + offset, buf, bytes);
    for (uint64_t pos = 0; pos < bytes; pos++)
        if (!s->map[(offset + pos) / BLK])
            buf[pos] = 0;
    iov_from_buf(iov, cnt, 0, buf, bytes);
    free(buf);
    return ret;
}

/* Whole blocks at a time, copying the old content of partial ones up. */
static int fake_pwritev(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt,
                        int flags)
{
    struct fake_state *s = bs->opaque;
    uint64_t bytes = iov_size(iov, cnt), done = 0;
    uint8_t blk[BLK];
    while (done < bytes) {
        uint64_t b = (offset + done) / BLK, in = (offset + done) % BLK;
        uint64_t n = BLK - in < bytes - done ? BLK - in : bytes - done;
        int ret = bdev_pread(bs, b * BLK, blk, BLK);   /* current view, backing included */
        if (ret)
            return ret;
        iov_to_buf(iov, cnt, done, blk + in, n);
        ret = bdev_pwrite(bs->file, DATA_START + b * BLK, blk, BLK, 0);
        s->map[b] = 1;
        if (!ret)
            ret = bdev_pwrite(bs->file, MAP_START + b, &s->map[b], 1, 0);
        if (ret)
            return ret;
        done += n;
    }
    return 0;
}

static int fake_block_status(struct bdev *bs, uint64_t offset, uint64_t bytes,
                             uint64_t *pnum, uint64_t *map, struct bdev **file)
{
    struct fake_state *s = bs->opaque;
    uint8_t first = s->map[offset / BLK];
    uint64_t end = offset;
    while (end < offset + bytes && s->map[end / BLK] == first)
        end = (end / BLK + 1) * BLK;
    *pnum = (end < offset + bytes ? end : offset + bytes) - offset;
    if (!first)
        return 0;
    *map = DATA_START + offset;
    *file = bs->file;
    return BDEV_STATUS_DATA | BDEV_STATUS_OFFSET | BDEV_STATUS_ALLOCATED;
}

static int fake_flushes;

static int fake_flush(struct bdev *bs)
{
    fake_flushes++;
    return 0;
}

static int64_t fake_getlength(struct bdev *bs)
{
    return ((struct fake_state *)bs->opaque)->hdr.size;
}

static int fake_create(const char *filename, uint64_t size, struct opts *o, struct error *err)
{
    struct fake_hdr h = { .size = size };
    memcpy(h.magic, fake_magic, 8);
    const char *b = o ? opts_get(o, "backing_file") : NULL;
    const char *f = o ? opts_get(o, "backing_fmt") : NULL;
    if (b)
        snprintf(h.backing, sizeof(h.backing), "%s", b);
    if (f)
        snprintf(h.backing_fmt, sizeof(h.backing_fmt), "%s", f);
    bt_write_file(filename, &h, sizeof(h), DATA_START);
    return 0;
}

static const struct block_driver bdrv_fake = {
    .name = "fake",
    .state_size = sizeof(struct fake_state),
    .probe = fake_probe,
    .open = fake_open,
    .preadv = fake_preadv,
    .pwritev = fake_pwritev,
    .block_status = fake_block_status,
    .flush = fake_flush,
    .getlength = fake_getlength,
    .create = fake_create,
};

/* The same format claiming to read its backing itself (it doesn't: it
 * reads zeroes), to see that block.c then leaves reads alone. */
static const struct block_driver bdrv_fake_rb = {
    .name = "fake-rb",
    .state_size = sizeof(struct fake_state),
    .reads_backing = true,
    .open = fake_open,
    .preadv = fake_preadv,
    .pwritev = fake_pwritev,
    .block_status = fake_block_status,
    .getlength = fake_getlength,
};

/* ---- helpers ------------------------------------------------------------ */

static void make_fake(const char *name, uint64_t size, const char *backing, const char *fmt)
{
    struct opts o = {0};
    char spec[512] = "";
    if (backing)
        snprintf(spec, sizeof(spec), "backing_file=%s%s%s", backing, fmt ? ",backing_fmt=" : "",
                 fmt ? fmt : "");
    struct error err = {0};
    assert_int_equal(opts_parse(&o, spec, NULL, &err), 0);
    assert_int_equal(bdrv_fake.create(bt_path(name), size, &o, &err), 0);
    opts_free(&o);
}

static void make_raw(const char *name, uint64_t size, int seed)
{
    uint8_t *buf = malloc(size);
    bt_fill(buf, 0, size, seed);
    bt_write_file(bt_path(name), buf, size, size);
    free(buf);
}

static struct bdev *open_ok(const char *name, const char *fmt, int flags)
{
    struct bdev *bs;
    struct error err = {0};
    if (bdev_open_simple(&bs, bt_path(name), fmt, flags, &err))
        fail_msg("open %s: %s", name, err.msg);
    return bs;
}

static void write_pattern(struct bdev *bs, uint64_t off, uint64_t len, int seed)
{
    uint8_t *buf = malloc(len);
    bt_fill(buf, off, len, seed);
    assert_int_equal(bdev_pwrite(bs, off, buf, len, 0), 0);
    free(buf);
}

/* Run fn with stderr sent to a file; return what it printed (static). */
static const char *capture_stderr(void (*fn)(void *), void *arg)
{
    static char out[2048];
    fflush(stderr);
    int saved = dup(2);
    int fd = open(bt_path("stderr.txt"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, out, sizeof(out) - 1, 0);
    out[n > 0 ? n : 0] = 0;
    close(fd);
    return out;
}

/* ---- probing ------------------------------------------------------------ */

struct open_args { const char *name, *fmt; int flags; };

static void open_and_close(void *arg)
{
    struct open_args *a = arg;
    bdev_close(open_ok(a->name, a->fmt, a->flags));
}

static void test_probe(void **state)
{
    make_fake("p.fake", MiB, NULL, NULL);
    make_raw("p.raw", 64 * KiB, 1);
    struct bdev *bs = open_ok("p.fake", NULL, 0);
    assert_string_equal(bdev_format_name(bs), "fake");
    bdev_close(bs);
    bs = open_ok("p.raw", NULL, 0);
    assert_string_equal(bdev_format_name(bs), "raw");
    bdev_close(bs);
    assert_ptr_equal(block_driver_find("fake"), &bdrv_fake);
    assert_ptr_equal(block_driver_find("raw"), &bdrv_raw);
    assert_ptr_equal(block_driver_find("file"), &bdrv_file);

    /* Probed raw warns when opened for writing, and only then. */
    struct open_args rw = { "p.raw", NULL, BDEV_O_RDWR };
    const char *msg = capture_stderr(open_and_close, &rw);
    assert_non_null(strstr(msg, "warning"));
    assert_non_null(strstr(msg, "p.raw"));
    assert_non_null(strstr(msg, "raw"));
    struct open_args ro = { "p.raw", NULL, 0 };
    assert_string_equal(capture_stderr(open_and_close, &ro), "");
    struct open_args named = { "p.raw", "raw", BDEV_O_RDWR };
    assert_string_equal(capture_stderr(open_and_close, &named), "");
    struct open_args fake = { "p.fake", NULL, BDEV_O_RDWR };
    assert_string_equal(capture_stderr(open_and_close, &fake), "");

    /* An empty file probes as raw too. */
    bt_write_file(bt_path("empty"), NULL, 0, 0);
    bs = open_ok("empty", NULL, 0);
    assert_string_equal(bdev_format_name(bs), "raw");
    assert_true(bdev_getlength(bs) == 0);
    bdev_close(bs);
}

static void open_probed_rw(void *arg)
{
    *(struct bdev **)arg = open_ok("guard.raw", NULL, BDEV_O_RDWR);
}

static void open_probed_rw2(void *arg)
{
    *(struct bdev **)arg = open_ok("guard2.raw", NULL, BDEV_O_RDWR);
}

/* A probed raw image must not be turned into another format by a guest. */
static void test_probed_raw_guards_sector0(void **state)
{
    make_raw("guard.raw", 64 * KiB, 2);
    struct bdev *bs;
    capture_stderr(open_probed_rw, &bs);
    assert_int_equal(bdev_pwrite(bs, 0, fake_magic, 8, 0), -EPERM);
    assert_int_equal(bdev_pwrite(bs, 0, "QK", 2, 0), 0);         /* harmless alone */
    assert_int_equal(bdev_pwrite(bs, 2, "FAKE01", 6, 0), -EPERM);  /* completes the magic */
    assert_int_equal(bdev_pwrite(bs, 512, fake_magic, 8, 0), 0);  /* not sector 0 */
    uint8_t sector[512];
    memset(sector, 0x5a, sizeof(sector));
    assert_int_equal(bdev_pwrite(bs, 0, sector, sizeof(sector), 0), 0);
    bdev_close(bs);

    bs = open_ok("guard.raw", "raw", BDEV_O_RDWR);
    assert_int_equal(bdev_pwrite(bs, 0, fake_magic, 8, 0), 0);    /* named raw: no guard */
    bdev_close(bs);
    bs = open_ok("guard.raw", NULL, BDEV_O_NO_BACKING);   /* the rest is no header */
    assert_string_equal(bdev_format_name(bs), "fake");
    bdev_close(bs);
}

/* ---- backing chains ----------------------------------------------------- */

/* base.raw (seed 1) <- mid.fake (seed 2 at 64K..128K) <- top.fake (seed 3
 * at 100K..110K, whose last block is partial and copied up, and at
 * 512K..516K). */
static void make_chain(void)
{
    make_raw("base.raw", MiB, 1);
    make_fake("mid.fake", MiB, "base.raw", "raw");
    make_fake("top.fake", MiB, "mid.fake", NULL);
    struct bdev *mid = open_ok("mid.fake", "fake", BDEV_O_RDWR);
    write_pattern(mid, 64 * KiB, 64 * KiB, 2);
    bdev_close(mid);
    struct bdev *top = open_ok("top.fake", "fake", BDEV_O_RDWR);
    write_pattern(top, 100 * KiB, 10 * KiB, 3);
    write_pattern(top, 512 * KiB, 4 * KiB, 3);
    bdev_close(top);
}

static int expected_seed(uint64_t off)
{
    if ((off >= 100 * KiB && off < 110 * KiB) || (off >= 512 * KiB && off < 516 * KiB))
        return 3;
    if (off >= 64 * KiB && off < 128 * KiB)
        return 2;
    return 1;
}

static void test_backing_reads(void **state)
{
    make_chain();
    struct bdev *top = open_ok("top.fake", NULL, 0);
    struct bdev *mid = bdev_backing(top);
    assert_non_null(mid);
    assert_string_equal(bdev_format_name(mid), "fake");
    assert_string_equal(bdev_backing_filename(top), "mid.fake");
    assert_string_equal(bdev_filename(mid), bt_path("mid.fake"));
    assert_string_equal(bdev_format_name(bdev_backing(mid)), "raw");
    assert_true(bdev_is_read_only(mid));

    uint8_t *buf = malloc(MiB);
    assert_int_equal(bdev_pread(top, 0, buf, MiB), 0);
    for (uint64_t off = 0; off < MiB; off++)
        if (buf[off] != bt_byte(off, expected_seed(off)))
            fail_msg("byte %llu: got %02x", (unsigned long long)off, buf[off]);
    /* A read straddling allocated and unallocated parts, unaligned. */
    memset(buf, 0, 40 * KiB);
    assert_int_equal(bdev_pread(top, 90 * KiB + 3, buf, 40 * KiB), 0);
    for (uint64_t i = 0; i < 40 * KiB; i++)
        assert_int_equal(buf[i], bt_byte(90 * KiB + 3 + i, expected_seed(90 * KiB + 3 + i)));
    free(buf);
    bdev_close(top);
}

static void test_block_status_depth(void **state)
{
    make_chain();
    struct bdev *top = open_ok("top.fake", NULL, 0);
    uint64_t pnum, map;
    struct bdev *file;
    int depth;
    int ret = bdev_block_status_above(top, 0, MiB, &pnum, &map, &file, &depth);
    assert_true(ret & BDEV_STATUS_DATA);
    assert_int_equal(depth, 2);
    assert_true(pnum == 64 * KiB);
    ret = bdev_block_status_above(top, 64 * KiB, MiB, &pnum, &map, &file, &depth);
    assert_int_equal(depth, 1);
    assert_true(pnum == 36 * KiB);       /* top owns 100K..112K (whole blocks) */
    ret = bdev_block_status_above(top, 100 * KiB, MiB, &pnum, &map, &file, &depth);
    assert_int_equal(depth, 0);
    assert_true(ret & BDEV_STATUS_ALLOCATED);
    assert_true(pnum == 12 * KiB);
    assert_ptr_equal(file, bdev_file(top));
    assert_true(map == DATA_START + 100 * KiB);
    /* The top node alone: unallocated, but something below. */
    ret = bdev_block_status(top, 0, MiB, &pnum, &map, &file);
    assert_int_equal(ret & (BDEV_STATUS_ALLOCATED | BDEV_STATUS_ZERO), 0);
    bdev_close(top);

    /* Unallocated everywhere: zeroes, depth = chain length. */
    make_fake("empty-base.fake", MiB, NULL, NULL);
    make_fake("over-empty.fake", MiB, "empty-base.fake", "fake");
    top = open_ok("over-empty.fake", "fake", 0);
    ret = bdev_block_status_above(top, 4096, MiB, &pnum, &map, &file, &depth);
    assert_int_equal(ret & (BDEV_STATUS_ALLOCATED | BDEV_STATUS_ZERO), BDEV_STATUS_ZERO);
    assert_int_equal(depth, 2);
    assert_true(pnum == MiB - 4096);
    bdev_close(top);
}

static void test_short_backing(void **state)
{
    make_raw("short.raw", 256 * KiB, 4);
    make_fake("long.fake", MiB, "short.raw", "raw");
    struct bdev *top = open_ok("long.fake", NULL, 0);
    uint8_t buf[8 * KiB];
    assert_int_equal(bdev_pread(top, 252 * KiB, buf, sizeof(buf)), 0);
    assert_int_equal(bt_check(buf, 252 * KiB, 4 * KiB, 4), -1);
    assert_true(bt_is_zero(buf + 4 * KiB, 4 * KiB));
    uint64_t pnum, map;
    struct bdev *file;
    int depth;
    int ret = bdev_block_status_above(top, 512 * KiB, MiB, &pnum, &map, &file, &depth);
    assert_int_equal(ret, BDEV_STATUS_ZERO | BDEV_STATUS_ALLOCATED);
    assert_int_equal(depth, 1);
    assert_true(pnum == 512 * KiB);
    ret = bdev_block_status(top, 512 * KiB, MiB, &pnum, &map, &file);
    assert_true(ret & BDEV_STATUS_ZERO);
    bdev_close(top);
}

static void test_driver_reads_backing(void **state)
{
    make_raw("rb-base.raw", 64 * KiB, 4);
    make_fake("rb.fake", 64 * KiB, "rb-base.raw", "raw");
    struct bdev *top = open_ok("rb.fake", "fake-rb", 0);
    assert_non_null(bdev_backing(top));
    uint8_t buf[4096];
    assert_int_equal(bdev_pread(top, 0, buf, sizeof(buf)), 0);
    assert_true(bt_is_zero(buf, sizeof(buf)));     /* the driver's answer, unsplit */
    uint64_t pnum;
    int depth;
    int ret = bdev_block_status_above(top, 0, 4096, &pnum, NULL, NULL, &depth);
    assert_true(ret & BDEV_STATUS_DATA);
    assert_int_equal(depth, 1);
    bdev_close(top);
}

/* Backing names are relative to the image's directory, not the cwd. */
static void test_relative_backing_and_options(void **state)
{
    char dir[300];
    snprintf(dir, sizeof(dir), "%s", bt_path("sub"));
    assert_int_equal(mkdir(dir, 0755), 0);
    make_raw("sub/b.raw", 64 * KiB, 5);
    make_raw("sub/other.raw", 64 * KiB, 6);
    make_fake("sub/t.fake", 64 * KiB, "b.raw", "raw");
    struct bdev *top = open_ok("sub/t.fake", NULL, BDEV_O_RDWR);
    assert_string_equal(bdev_filename(bdev_backing(top)), bt_path("sub/b.raw"));
    assert_true(bdev_is_read_only(bdev_backing(top)));
    assert_false(bdev_is_read_only(top));
    uint8_t buf[512];
    assert_int_equal(bdev_pread(top, 0, buf, sizeof(buf)), 0);
    assert_int_equal(bt_check(buf, 0, sizeof(buf), 5), -1);
    bdev_close(top);

    /* No backing: unallocated reads zero, the name is still known. */
    top = open_ok("sub/t.fake", NULL, BDEV_O_NO_BACKING);
    assert_null(bdev_backing(top));
    assert_string_equal(bdev_backing_filename(top), "b.raw");
    assert_int_equal(bdev_pread(top, 0, buf, sizeof(buf)), 0);
    assert_true(bt_is_zero(buf, sizeof(buf)));
    bdev_close(top);

    /* An override replaces the recorded name (and format). */
    struct bdev_open_opts o = { .filename = bt_path("sub/t.fake"),
                                .backing_override = "other.raw",
                                .backing_format_override = "raw" };
    struct error err = {0};
    assert_int_equal(bdev_open(&top, &o, &err), 0);
    assert_int_equal(bdev_pread(top, 0, buf, sizeof(buf)), 0);
    assert_int_equal(bt_check(buf, 0, sizeof(buf), 6), -1);
    bdev_close(top);
}

static void expect_open_error(const char *name, int code, const char *needle)
{
    struct bdev *bs = (struct bdev *)1;
    struct error err = {0};
    int ret = bdev_open_simple(&bs, bt_path(name), NULL, 0, &err);
    assert_int_equal(ret, code);
    assert_null(bs);
    if (!strstr(err.msg, needle))
        fail_msg("error '%s' lacks '%s'", err.msg, needle);
}

static void test_backing_loops(void **state)
{
    make_fake("self.fake", MiB, "self.fake", NULL);
    expect_open_error("self.fake", -ELOOP, "loop");
    make_fake("a.fake", MiB, "b.fake", NULL);
    make_fake("b.fake", MiB, "c.fake", NULL);
    make_fake("c.fake", MiB, "a.fake", NULL);
    expect_open_error("a.fake", -ELOOP, "loop");
    expect_open_error("b.fake", -ELOOP, "'");
    /* Through a symlink: same file, other name. */
    assert_int_equal(symlink("d.fake", bt_path("alias.fake")), 0);
    make_fake("d.fake", MiB, "alias.fake", NULL);
    expect_open_error("d.fake", -ELOOP, "loop");
    /* A long chain without a loop is fine. */
    make_raw("chain0", 4096, 7);
    char name[32], below[32];
    for (int i = 1; i <= 40; i++) {
        snprintf(name, sizeof(name), "chain%d", i);
        snprintf(below, sizeof(below), "chain%d", i - 1);
        make_fake(name, 4096, below, NULL);
    }
    struct bdev *top = open_ok("chain40", NULL, 0);
    uint8_t buf[4096];
    assert_int_equal(bdev_pread(top, 0, buf, sizeof(buf)), 0);
    assert_int_equal(bt_check(buf, 0, sizeof(buf), 7), -1);
    uint64_t pnum;
    int depth;
    bdev_block_status_above(top, 0, 4096, &pnum, NULL, NULL, &depth);
    assert_int_equal(depth, 40);
    bdev_close(top);
}

static void test_backing_errors(void **state)
{
    make_fake("orphan.fake", MiB, "nope.raw", NULL);
    expect_open_error("orphan.fake", -ENOENT, "Could not open backing file: Could not open '");
    expect_open_error("orphan.fake", -ENOENT, "nope.raw': No such file or directory");
    make_raw("fmt-base.raw", 4096, 1);
    make_fake("badfmt.fake", MiB, "fmt-base.raw", "nonsense");
    expect_open_error("badfmt.fake", -EINVAL, "Unknown driver 'nonsense'");
}

/* The real qcow2 driver through this layer: probed, backing opened relative
 * to the image, unallocated parts read from the raw base, and a probed raw
 * image refuses a qcow2 header in sector 0. */
static void test_qcow2_over_raw(void **state)
{
    make_raw("q-base.raw", 256 * KiB, 8);
    struct opts o;
    struct error err = {0};
    assert_int_equal(opts_parse(&o, "backing_file=q-base.raw,backing_fmt=raw", NULL, &err), 0);
    if (block_driver_find("qcow2")->create(bt_path("q-top.qcow2"), 256 * KiB, &o, &err))
        fail_msg("create: %s", err.msg);
    opts_free(&o);
    struct bdev *top = open_ok("q-top.qcow2", NULL, BDEV_O_RDWR);
    assert_string_equal(bdev_format_name(top), "qcow2");
    assert_string_equal(bdev_format_name(bdev_backing(top)), "raw");
    write_pattern(top, 64 * KiB + 512, 4 * KiB, 9);
    uint8_t *buf = malloc(256 * KiB);
    assert_int_equal(bdev_pread(top, 0, buf, 256 * KiB), 0);
    for (uint64_t i = 0; i < 256 * KiB; i++) {
        int seed = i >= 64 * KiB + 512 && i < 68 * KiB + 512 ? 9 : 8;
        if (buf[i] != bt_byte(i, seed))
            fail_msg("byte %llu", (unsigned long long)i);
    }
    uint64_t pnum;
    int depth;
    int ret = bdev_block_status_above(top, 0, 256 * KiB, &pnum, NULL, NULL, &depth);
    assert_true(ret & BDEV_STATUS_DATA);
    assert_int_equal(depth, 1);
    ret = bdev_block_status_above(top, 64 * KiB, 256 * KiB, &pnum, NULL, NULL, &depth);
    assert_true(ret & BDEV_STATUS_ALLOCATED);
    assert_int_equal(depth, 0);
    bdev_close(top);
    free(buf);

    make_raw("guard2.raw", 64 * KiB, 2);
    struct bdev *bs;
    capture_stderr(open_probed_rw2, &bs);
    const uint8_t qcow2_hdr[8] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };
    assert_int_equal(bdev_pwrite(bs, 0, qcow2_hdr, 8, 0), -EPERM);
    bdev_close(bs);
}

/* Flushes reach the format driver, even with cache=unsafe (which only
 * skips the host sync); a read-only node has nothing to flush. */
static void test_flush_reaches_driver(void **state)
{
    make_fake("flush.fake", MiB, NULL, NULL);
    struct bdev *bs = open_ok("flush.fake", "fake", BDEV_O_RDWR | BDEV_O_UNSAFE);
    fake_flushes = 0;
    assert_int_equal(bdev_flush(bs), 0);
    assert_int_equal(fake_flushes, 1);
    bdev_close(bs);               /* closing a writable node flushes too */
    assert_int_equal(fake_flushes, 2);
    bs = open_ok("flush.fake", "fake", 0);
    assert_int_equal(bdev_flush(bs), 0);
    bdev_close(bs);
    assert_int_equal(fake_flushes, 2);
}

/* Opening and reading a chain read-only leaves every file as it was. */
static void test_read_only_chain_untouched(void **state)
{
    make_chain();
    const char *names[] = { "top.fake", "mid.fake", "base.raw" };
    struct stat before[3], after[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(stat(bt_path(names[i]), &before[i]), 0);
    struct bdev *top = open_ok("top.fake", NULL, 0);
    uint8_t buf[4096];
    assert_int_equal(bdev_pread(top, 100 * KiB, buf, sizeof(buf)), 0);
    assert_int_equal(bdev_flush(top), 0);
    assert_int_equal(bdev_pwrite(top, 0, buf, 512, 0), -EACCES);
    bdev_close(top);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(stat(bt_path(names[i]), &after[i]), 0);
        assert_true(after[i].st_mtim.tv_nsec == before[i].st_mtim.tv_nsec &&
                    after[i].st_mtim.tv_sec == before[i].st_mtim.tv_sec);
        assert_true(after[i].st_size == before[i].st_size);
    }
}

int main(void)
{
    block_driver_register(&bdrv_fake);
    block_driver_register(&bdrv_fake_rb);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_probed_raw_guards_sector0),
        cmocka_unit_test(test_backing_reads),
        cmocka_unit_test(test_block_status_depth),
        cmocka_unit_test(test_short_backing),
        cmocka_unit_test(test_driver_reads_backing),
        cmocka_unit_test(test_relative_backing_and_options),
        cmocka_unit_test(test_backing_loops),
        cmocka_unit_test(test_backing_errors),
        cmocka_unit_test(test_qcow2_over_raw),
        cmocka_unit_test(test_flush_reaches_driver),
        cmocka_unit_test(test_read_only_chain_untouched),
    };
    return cmocka_run_group_tests(tests, bt_setup, bt_teardown);
}
