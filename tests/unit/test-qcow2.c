/* Unit tests for the qcow2 driver: random I/O mirrored in a flat model
 * across create options, with reopen and a refcount audit (every cluster's
 * refcount equals its references from the header, tables and active L1
 * tree); backing files; concurrent writers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include "block/qcow2.h"
#include "block-test.h"

enum { KiB = 1024, MiB = 1024 * 1024 };

static struct bdev *create_open(const char *name, uint64_t size, const char *o, int flags)
{
    struct error err = {0};
    struct opts opts = {0};
    if (o && opts_parse(&opts, o, NULL, &err) < 0)
        fail_msg("opts: %s", err.msg);
    int ret = bdrv_qcow2.create(bt_path(name), size, &opts, &err);
    opts_free(&opts);
    if (ret)
        fail_msg("create %s: %s", o ? o : "", err.msg);
    struct bdev *bs;
    if (bdev_open_simple(&bs, bt_path(name), "qcow2", flags, &err))
        fail_msg("open: %s", err.msg);
    return bs;
}

static struct bdev *reopen(struct bdev *bs, const char *name)
{
    struct error err = {0};
    bdev_close(bs);
    if (bdev_open_simple(&bs, bt_path(name), "qcow2", BDEV_O_RDWR, &err))
        fail_msg("reopen: %s", err.msg);
    return bs;
}

/* ---- refcount audit ------------------------------------------------------ */

static void ref(uint32_t *refs, uint64_t n, uint64_t off, uint64_t bytes, int cb)
{
    for (uint64_t c = off >> cb; c <= (off + bytes - 1) >> cb; c++) {
        assert_true(c < n);
        refs[c]++;
    }
}

/* After a flush, refcounts must match references exactly (no leak, no
 * corruption); only the active L1 tree exists in these tests. */
static void audit(struct bdev *bs)
{
    struct qcow2_state *s = bs->opaque;
    assert_int_equal(bdev_flush(bs), 0);
    pthread_mutex_lock(&s->lock);
    int cb = (int)s->cluster_bits;
    uint64_t n = s->alloc_end + 16;
    uint32_t *refs = calloc(n, sizeof(*refs));
    ref(refs, n, 0, s->cluster_size, cb);
    ref(refs, n, s->refcount_table_offset, s->refcount_table_size * 8, cb);
    for (uint64_t i = 0; i < s->refcount_table_size; i++)
        if (s->refcount_table[i])
            ref(refs, n, s->refcount_table[i], s->cluster_size, cb);
    if (s->l1_size)
        ref(refs, n, s->l1_table_offset, s->l1_size * 8ull, cb);
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t l2off = s->l1_table[i] & QCOW2_L1E_OFFSET_MASK;
        if (!l2off)
            continue;
        assert_true(s->l1_table[i] & QCOW2_OFLAG_COPIED);
        ref(refs, n, l2off, s->cluster_size, cb);
        void *l2;
        assert_int_equal(qcow2_cache_get(s, &s->l2_cache, l2off, &l2), 0);
        for (uint64_t j = 0; j < s->l2_size; j++) {
            uint64_t e = qcow2_l2_get(s, l2, j);
            if (e & QCOW2_OFLAG_COMPRESSED) {
                uint64_t co = e & s->cluster_offset_mask;
                uint64_t ns = ((e >> s->csize_shift) & s->csize_mask) + 1;
                ref(refs, n, co & ~511ull, ns * 512, cb);
            } else if (e & QCOW2_L2E_OFFSET_MASK) {
                assert_true(e & QCOW2_OFLAG_COPIED);
                ref(refs, n, e & QCOW2_L2E_OFFSET_MASK, s->cluster_size, cb);
            }
        }
        qcow2_cache_put(&s->l2_cache, &l2);
    }
    for (uint64_t c = 0; c < n; c++) {
        uint64_t rc;
        assert_int_equal(qcow2_get_refcount(s, c, &rc), 0);
        if (rc != refs[c])
            fail_msg("cluster %llu: refcount %llu, references %u", (unsigned long long)c,
                     (unsigned long long)rc, refs[c]);
    }
    free(refs);
    pthread_mutex_unlock(&s->lock);
}

/* ---- random I/O against a model ------------------------------------------- */

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void verify(struct bdev *bs, const uint8_t *model, uint64_t size)
{
    uint8_t *buf = malloc(size);
    assert_int_equal(bdev_pread(bs, 0, buf, size), 0);
    for (uint64_t i = 0; i < size; i++)
        if (buf[i] != model[i])
            fail_msg("byte %llu: %02x, expected %02x", (unsigned long long)i, buf[i], model[i]);
    free(buf);
}

static void random_io(const char *o, uint64_t size, int ops)
{
    struct bdev *bs = create_open("r.qcow2", size, o, BDEV_O_RDWR);
    struct qcow2_state *s = bs->opaque;
    uint64_t cs = s->cluster_size, x = 0x12345678 + size;
    uint8_t *model = calloc(1, size), *buf = malloc(size);
    for (int i = 0; i < ops; i++) {
        uint64_t off = rnd(&x) % size, len = 1 + rnd(&x) % (3 * cs);
        if (off + len > size)
            len = size - off;
        int kind = (int)(rnd(&x) % 10);
        if (kind < 6) {
            bt_fill(buf, off, len, i);
            assert_int_equal(bdev_pwrite(bs, off, buf, len, 0), 0);
            memcpy(model + off, buf, len);
        } else if (kind < 8) {
            int fl = kind == 7 ? BDEV_REQ_MAY_UNMAP : 0;
            assert_int_equal(bdev_pwrite_zeroes(bs, off, len, fl), 0);
            memset(model + off, 0, len);
        } else if (kind == 8) {
            /* Discard only promises zeroes for whole clusters here (no backing). */
            assert_int_equal(bdev_pdiscard(bs, off, len), 0);
            uint64_t a = (off + cs - 1) / cs * cs, b = (off + len) / cs * cs;
            if (b > a)
                memset(model + a, 0, b - a);
            /* Partial clusters keep their data. */
        } else {
            off = off / cs * cs;
            len = cs < size - off ? cs : size - off;
            bt_fill(buf, off, len, i);
            memset(buf + len / 2, 0, len / 4);       /* compressible */
            assert_int_equal(bdev_pwrite_compressed(bs, off, buf, len), 0);
            memcpy(model + off, buf, len);
        }
        if (i % 97 == 96) {
            audit(bs);
            bs = reopen(bs, "r.qcow2");
        }
    }
    verify(bs, model, size);
    audit(bs);
    bs = reopen(bs, "r.qcow2");
    verify(bs, model, size);
    bdev_close(bs);
    free(model);
    free(buf);
}

static void test_random_default(void **st) { random_io(NULL, 4 * MiB, 400); }
static void test_random_small(void **st) { random_io("cluster_size=512,refcount_bits=64", 1 * MiB, 300); }
static void test_random_rc1(void **st) { random_io("cluster_size=4k,refcount_bits=1", 2 * MiB, 300); }
static void test_random_v2(void **st) { random_io("compat=0.10,cluster_size=16k", 2 * MiB, 300); }
static void test_random_extl2(void **st) { random_io("extended_l2=on,cluster_size=32k", 4 * MiB, 300); }
static void test_random_zstd(void **st) { random_io("compression_type=zstd,cluster_size=8k", 2 * MiB, 300); }
static void test_random_lazy(void **st) { random_io("lazy_refcounts=on", 4 * MiB, 200); }

/* ---- backing file ------------------------------------------------------------ */

static void test_backing(void **st)
{
    struct bdev *base = create_open("base.qcow2", 2 * MiB, "cluster_size=4k", BDEV_O_RDWR);
    uint8_t *buf = malloc(2 * MiB), *out = malloc(2 * MiB);
    bt_fill(buf, 0, 2 * MiB, 9);
    assert_int_equal(bdev_pwrite(base, 0, buf, 2 * MiB, 0), 0);
    bdev_close(base);
    struct bdev *top = create_open("top.qcow2", 3 * MiB,
                                   "backing_file=base.qcow2,backing_fmt=qcow2", BDEV_O_RDWR);
    assert_non_null(bdev_backing(top));
    assert_string_equal(bdev_backing_filename(top), "base.qcow2");
    uint8_t w[3000];
    memset(w, 0x5c, sizeof(w));
    assert_int_equal(bdev_pwrite(top, 70000, w, sizeof(w), 0), 0);
    assert_int_equal(bdev_pwrite(top, 2 * MiB - 1000, w, sizeof(w), 0), 0);
    assert_int_equal(bdev_pread(top, 0, out, 2 * MiB), 0);
    memset(buf + 70000, 0x5c, sizeof(w));
    memset(buf + 2 * MiB - 1000, 0x5c, 1000);
    assert_memory_equal(out, buf, 2 * MiB);
    assert_int_equal(bdev_pread(top, 2 * MiB, out, MiB), 0);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(out[i], 0x5c);
    assert_true(bt_is_zero(out + 2000, MiB - 2000));
    audit(top);
    bdev_close(top);
    free(buf);
    free(out);
}

/* ---- concurrency --------------------------------------------------------------- */

struct worker {
    struct bdev *bs;
    int id;
};

static void *writer(void *opaque)
{
    struct worker *w = opaque;
    uint64_t x = 99 + w->id, base = (uint64_t)w->id * 2 * MiB;
    uint8_t *buf = malloc(200 * KiB), *out = malloc(200 * KiB);
    for (int i = 0; i < 150; i++) {
        uint64_t off = base + rnd(&x) % (2 * MiB - 200 * KiB), len = 1 + rnd(&x) % (200 * KiB);
        bt_fill(buf, off, len, w->id);
        if (bdev_pwrite(w->bs, off, buf, len, 0) < 0 || bdev_pread(w->bs, off, out, len) < 0 ||
            memcmp(buf, out, len)) {
            free(buf);
            free(out);
            return (void *)1;
        }
    }
    free(buf);
    free(out);
    return NULL;
}

static void test_concurrent(void **st)
{
    struct bdev *bs = create_open("c.qcow2", 8 * MiB, "cluster_size=16k", BDEV_O_RDWR);
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ bs, i };
        pthread_create(&t[i], NULL, writer, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_null(r);
    }
    audit(bs);
    bdev_close(bs);
}

/* Threads own interleaved 1 KiB slots of the same clusters: allocating
 * writes of one must never fill another's slot with stale data. */
struct slotter {
    struct bdev *bs;
    int id;
    uint8_t last[256];
};

static void *slot_writer(void *opaque)
{
    struct slotter *w = opaque;
    uint64_t x = 7 + w->id;
    uint8_t buf[1024], out[1024];
    for (int i = 0; i < 400; i++) {
        int slot = (int)(rnd(&x) % 64) * 4 + w->id;
        uint8_t pat = (uint8_t)(1 + rnd(&x) % 250);
        memset(buf, pat, sizeof(buf));
        if (bdev_pwrite(w->bs, (uint64_t)slot * 1024, buf, sizeof(buf), 0) < 0)
            return (void *)1;
        w->last[slot] = pat;
        int check = (int)(rnd(&x) % 64) * 4 + w->id;
        if (bdev_pread(w->bs, (uint64_t)check * 1024, out, sizeof(out)) < 0)
            return (void *)1;
        for (int j = 0; j < 1024; j++)
            if (out[j] != w->last[check])
                return (void *)2;
    }
    return NULL;
}

static void shared_clusters(const char *o, bool backing)
{
    struct bdev *bs;
    if (backing) {
        struct bdev *base = create_open("sb.qcow2", 256 * KiB, NULL, BDEV_O_RDWR);
        assert_int_equal(bdev_pwrite_zeroes(base, 0, 256 * KiB, 0), 0);
        bdev_close(base);
        char opt[200];
        snprintf(opt, sizeof(opt), "%s%sbacking_file=sb.qcow2,backing_fmt=qcow2", o ? o : "",
                 o ? "," : "");
        bs = create_open("s.qcow2", 256 * KiB, opt, BDEV_O_RDWR);
    } else {
        bs = create_open("s.qcow2", 256 * KiB, o, BDEV_O_RDWR);
    }
    pthread_t t[4];
    struct slotter w[4];
    for (int i = 0; i < 4; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].bs = bs;
        w[i].id = i;
        pthread_create(&t[i], NULL, slot_writer, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_null(r);
    }
    uint8_t out[1024];
    for (int slot = 0; slot < 256; slot++) {
        assert_int_equal(bdev_pread(bs, (uint64_t)slot * 1024, out, 1024), 0);
        for (int j = 0; j < 1024; j++)
            assert_int_equal(out[j], w[slot % 4].last[slot]);
    }
    audit(bs);
    bdev_close(bs);
}

static void test_shared_clusters(void **st)
{
    shared_clusters(NULL, false);
    shared_clusters("extended_l2=on,cluster_size=64k", true);
    shared_clusters("compat=0.10,cluster_size=16k", true);
}

/* ---- resize and info ------------------------------------------------------------ */

static void test_resize(void **st)
{
    struct error err = {0};
    struct bdev *bs = create_open("z.qcow2", 1 * MiB, "cluster_size=4k", BDEV_O_RDWR);
    uint8_t buf[8192];
    memset(buf, 0x77, sizeof(buf));
    assert_int_equal(bdev_pwrite(bs, 500 * KiB, buf, sizeof(buf), 0), 0);
    assert_int_equal(bdev_truncate(bs, 64 * MiB, false, "metadata", &err), 0);
    assert_true(bdev_getlength(bs) == 64 * MiB);
    assert_int_equal(bdev_pwrite(bs, 60 * MiB, buf, sizeof(buf), 0), 0);
    audit(bs);
    assert_int_equal(bdev_truncate(bs, 512 * KiB, false, NULL, &err), -EINVAL);
    assert_int_equal(bdev_truncate(bs, 504 * KiB, true, NULL, &err), 0);
    assert_true(bdev_getlength(bs) == 504 * KiB);
    audit(bs);
    bs = reopen(bs, "z.qcow2");
    uint8_t out[4096];
    assert_int_equal(bdev_pread(bs, 500 * KiB, out, 4096), 0);
    assert_memory_equal(out, buf, 4096);
    bdev_close(bs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_default), cmocka_unit_test(test_random_small),
        cmocka_unit_test(test_random_rc1),     cmocka_unit_test(test_random_v2),
        cmocka_unit_test(test_random_extl2),   cmocka_unit_test(test_random_zstd),
        cmocka_unit_test(test_random_lazy),    cmocka_unit_test(test_backing),
        cmocka_unit_test(test_concurrent),     cmocka_unit_test(test_shared_clusters),
        cmocka_unit_test(test_resize),
    };
    return cmocka_run_group_tests(tests, bt_setup, bt_teardown);
}
