/* Unit tests for qcow2 requests that bypass the driver (qcow2_aio_map):
 * reads and rewrites of allocated clusters and reads of zeroes go to
 * io_uring on the host file; allocating writes and reads that need the
 * backing file still go to the pool; a mapped request keeps its clusters
 * from being freed until it completes. Data is checked after every step. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include "block/aio.h"
#include "block/qcow2.h"
#include "block-test.h"

enum { KiB = 1024, MiB = 1024 * KiB, PIECE = 64 * KiB, IMG = 4 * MiB, NPIECE = IMG / PIECE };

struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, errors;
};

static struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

static void on_done(void *opaque, int ret)
{
    pthread_mutex_lock(&w.lock);
    w.done++;
    w.errors += ret != 0;
    pthread_cond_broadcast(&w.cond);
    pthread_mutex_unlock(&w.lock);
}

static void wait_all(int n)
{
    pthread_mutex_lock(&w.lock);
    while (w.done < n)
        pthread_cond_wait(&w.cond, &w.lock);
    assert_int_equal(w.errors, 0);
    w.done = w.errors = 0;
    pthread_mutex_unlock(&w.lock);
}

static struct bdev *create_open(const char *name, const char *o, int flags)
{
    struct error err = {0};
    struct opts opts = {0};
    if (o && opts_parse(&opts, o, NULL, &err) < 0)
        fail_msg("opts: %s", err.msg);
    int ret = bdrv_qcow2.create(bt_path(name), IMG, &opts, &err);
    opts_free(&opts);
    if (ret)
        fail_msg("create: %s", err.msg);
    struct bdev *bs;
    if (bdev_open_simple(&bs, bt_path(name), "qcow2", BDEV_O_RDWR | flags, &err))
        fail_msg("open: %s", err.msg);
    return bs;
}

static uint8_t *big_buf(void)
{
    void *p;
    assert_int_equal(posix_memalign(&p, 4096, IMG), 0);
    return p;
}

/* Every piece of [0, len) through bdev_aio_*, all in flight at once. */
static void aio_all(struct bdev *bs, uint8_t *buf, uint64_t len, bool write)
{
    struct iovec iov[NPIECE];
    int n = 0;
    for (uint64_t off = 0; off < len; off += PIECE, n++) {
        iov[n] = (struct iovec){ buf + off, PIECE };
        int ret = write ? bdev_aio_pwritev(bs, off, &iov[n], 1, 0, on_done, NULL)
                        : bdev_aio_preadv(bs, off, &iov[n], 1, on_done, NULL);
        assert_int_equal(ret, 0);
    }
    wait_all(n);
}

static void check_clean(struct bdev *bs)
{
    struct bdev_check_result res;
    assert_int_equal(bdev_flush(bs), 0);
    assert_int_equal(bdrv_qcow2.check(bs, &res, 0, NULL), 0);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 0);
}

/* Allocating writes take the pool; rewrites, reads of data and reads of
 * unallocated clusters are mapped; the data is right either way. */
static void run_mapped(const char *name, const char *o, int flags)
{
    struct bdev *bs = create_open(name, o, flags);
    uint8_t *buf = big_buf();
    bt_fill(buf, 0, 2 * MiB, 1);
    aio_all(bs, buf, 2 * MiB, true);
    assert_int_equal(bdev_aio_mapped_count(bs), 0);

    bt_fill(buf, 0, 2 * MiB, 2);
    aio_all(bs, buf, 2 * MiB, true);
    assert_int_equal(bdev_aio_mapped_count(bs), 2 * MiB / PIECE);

    memset(buf, 0xff, IMG);
    aio_all(bs, buf, IMG, false);
    assert_int_equal(bdev_aio_mapped_count(bs), 2 * MiB / PIECE + NPIECE);
    assert_int_equal(bt_check(buf, 0, 2 * MiB, 2), -1);
    assert_true(bt_is_zero(buf + 2 * MiB, 2 * MiB));

    memset(buf, 0, IMG);
    assert_int_equal(bdev_pread(bs, 0, buf, 2 * MiB), 0);
    assert_int_equal(bt_check(buf, 0, 2 * MiB, 2), -1);
    check_clean(bs);
    bdev_close(bs);
    free(buf);
}

static void test_mapped(void **st)
{
    run_mapped("mapped.qcow2", NULL, 0);
}

static void test_mapped_direct(void **st)
{
    run_mapped("direct.qcow2", NULL, BDEV_O_NOCACHE);
}

/* Small clusters: a 64 KiB piece spans 16 clusters, mapped as one run
 * only where the host clusters are contiguous. */
static void test_mapped_small_clusters(void **st)
{
    struct bdev *bs = create_open("small.qcow2", "cluster_size=4k", 0);
    uint8_t *buf = big_buf();
    /* Every other cluster first, so host runs are broken up. */
    for (uint64_t off = 0; off < 2 * MiB; off += 8 * KiB) {
        bt_fill(buf, off, 4 * KiB, 3);
        assert_int_equal(bdev_pwrite(bs, off, buf, 4 * KiB, 0), 0);
    }
    bt_fill(buf, 0, 2 * MiB, 4);
    assert_int_equal(bdev_pwrite(bs, 0, buf, 2 * MiB, 0), 0);
    memset(buf, 0xff, IMG);
    aio_all(bs, buf, IMG, false);
    assert_int_equal(bt_check(buf, 0, 2 * MiB, 4), -1);
    assert_true(bt_is_zero(buf + 2 * MiB, 2 * MiB));
    check_clean(bs);
    bdev_close(bs);
    free(buf);
}

/* Unallocated clusters of an overlay read from its backing file, never as
 * zeroes; once written, the overlay's own clusters are mapped. */
static void test_backing(void **st)
{
    struct bdev *base = create_open("base.qcow2", NULL, 0);
    uint8_t *buf = big_buf();
    bt_fill(buf, 0, IMG, 5);
    assert_int_equal(bdev_pwrite(base, 0, buf, IMG, 0), 0);
    bdev_close(base);
    struct bdev *top = create_open("top.qcow2", "backing_file=base.qcow2,backing_fmt=qcow2", 0);
    memset(buf, 0, IMG);
    aio_all(top, buf, IMG, false);
    assert_int_equal(bt_check(buf, 0, IMG, 5), -1);
    assert_int_equal(bdev_aio_mapped_count(top), 0);

    bt_fill(buf, 0, MiB, 6);
    assert_int_equal(bdev_pwrite(top, 0, buf, MiB, 0), 0);
    memset(buf, 0, IMG);
    aio_all(top, buf, IMG, false);
    assert_int_equal(bdev_aio_mapped_count(top), MiB / PIECE);
    assert_int_equal(bt_check(buf, 0, MiB, 6), -1);
    assert_int_equal(bt_check(buf + MiB, MiB, IMG - MiB, 5), -1);
    bdev_close(top);
    free(buf);
}

/* ---- a pinned cluster is not freed ---------------------------------------- */

struct discarder {
    struct bdev *bs;
    int ret;
    int finished;
};

static void *discard_and_flush(void *arg)
{
    struct discarder *d = arg;
    d->ret = bdev_pdiscard(d->bs, 0, PIECE);
    if (d->ret == 0)
        d->ret = bdev_flush(d->bs);            /* applies the queued free */
    __atomic_store_n(&d->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_pin_holds_free(void **st)
{
    struct bdev *bs = create_open("pin.qcow2", NULL, 0);
    uint8_t *buf = big_buf();
    bt_fill(buf, 0, PIECE, 7);
    assert_int_equal(bdev_pwrite(bs, 0, buf, PIECE, 0), 0);
    uint64_t host = 0, h2;
    assert_int_equal(qcow2_aio_map(bs, 0, PIECE, false, &host), QCOW2_AIO_HOST);
    assert_true(host != 0);

    struct discarder d = { bs, 0, 0 };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, discard_and_flush, &d), 0);
    struct timespec ts = { 0, 200 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    assert_int_equal(__atomic_load_n(&d.finished, __ATOMIC_ACQUIRE), 0);
    /* The flush holds the driver's lock while it waits: mapping must not
     * wait for it. */
    assert_int_equal(qcow2_aio_map(bs, 2 * PIECE, PIECE, false, &h2), QCOW2_AIO_SLOW);

    qcow2_aio_unpin(bs);
    pthread_join(t, NULL);
    assert_int_equal(d.ret, 0);
    assert_int_equal(qcow2_aio_map(bs, 0, PIECE, false, &h2), QCOW2_AIO_ZERO);
    check_clean(bs);
    bdev_close(bs);
    free(buf);
}

/* Writes that must not bypass the driver: into an unallocated cluster,
 * over a compressed one, and anything on a corrupt image. */
static void test_write_needs_driver(void **st)
{
    struct bdev *bs = create_open("slow.qcow2", NULL, 0);
    uint8_t *buf = big_buf();
    uint64_t host;
    assert_int_equal(qcow2_aio_map(bs, 0, PIECE, true, &host), QCOW2_AIO_SLOW);
    bt_fill(buf, 0, PIECE, 8);
    assert_int_equal(bdev_pwrite_compressed(bs, 0, buf, PIECE), 0);
    assert_int_equal(qcow2_aio_map(bs, 0, PIECE, true, &host), QCOW2_AIO_SLOW);
    assert_int_equal(qcow2_aio_map(bs, 0, PIECE, false, &host), QCOW2_AIO_SLOW);
    assert_int_equal(bdev_pwrite(bs, PIECE, buf, PIECE, 0), 0);
    assert_int_equal(qcow2_aio_map(bs, PIECE, PIECE, true, &host), QCOW2_AIO_HOST);
    qcow2_aio_unpin(bs);
    /* Straddling the compressed and the normal cluster: one run or none. */
    assert_int_equal(qcow2_aio_map(bs, PIECE / 2, PIECE, false, &host), QCOW2_AIO_SLOW);
    qcow2_state(bs)->corrupt = true;
    assert_int_equal(qcow2_aio_map(bs, PIECE, PIECE, true, &host), QCOW2_AIO_SLOW);
    qcow2_state(bs)->corrupt = false;
    check_clean(bs);
    bdev_close(bs);
    free(buf);
}

/* ---- mapped reads racing discards, rewrites and flushes ------------------- */

struct churn {
    struct bdev *bs;
    int rounds;
    int errors;
};

/* Discard two clusters, flush (applying the frees), write them again in
 * the other order, over and over: each host cluster freed is soon reused,
 * often for the other guest cluster. */
static void *churn_thread(void *arg)
{
    struct churn *c = arg;
    uint8_t *buf;
    if (posix_memalign((void **)&buf, 4096, PIECE))
        return NULL;
    for (int r = 0; r < c->rounds; r++) {
        uint64_t a = (uint64_t)(r % 8) * PIECE, b = (uint64_t)((r + 1) % 8) * PIECE;
        if (bdev_pdiscard(c->bs, a, PIECE) || bdev_pdiscard(c->bs, b, PIECE) ||
            bdev_flush(c->bs))
            c->errors++;
        bt_fill(buf, b, PIECE, 100 + (int)(b / PIECE));
        c->errors += bdev_pwrite(c->bs, b, buf, PIECE, 0) != 0;
        bt_fill(buf, a, PIECE, 100 + (int)(a / PIECE));
        c->errors += bdev_pwrite(c->bs, a, buf, PIECE, 0) != 0;
    }
    free(buf);
    return NULL;
}

static struct {
    pthread_mutex_t lock;
    int bad;
} seen = { PTHREAD_MUTEX_INITIALIZER, 0 };

struct racer_req {
    uint8_t *buf;
    uint64_t off;
    struct iovec iov;
};

/* A racing read sees zeroes (discarded) or one of its cluster's patterns,
 * whole: never another cluster's bytes, never a torn mix of old and freed. */
static void on_race_read(void *opaque, int ret)
{
    struct racer_req *q = opaque;
    bool okay = ret == 0 && (bt_is_zero(q->buf, PIECE) ||
                             bt_check(q->buf, q->off, PIECE, 100 + (int)(q->off / PIECE)) == -1 ||
                             bt_check(q->buf, q->off, PIECE, 9) == -1);
    pthread_mutex_lock(&seen.lock);
    seen.bad += !okay;
    pthread_mutex_unlock(&seen.lock);
    on_done(NULL, ret);
}

static void test_race_free(void **st)
{
    struct bdev *bs = create_open("race.qcow2", NULL, 0);
    uint8_t *buf = big_buf();
    bt_fill(buf, 0, 8 * PIECE, 9);
    assert_int_equal(bdev_pwrite(bs, 0, buf, 8 * PIECE, 0), 0);
    struct churn c = { bs, 300, 0 };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, churn_thread, &c), 0);
    struct racer_req q[8];
    for (int i = 0; i < 8; i++)
        q[i] = (struct racer_req){ buf + i * PIECE, (uint64_t)i * PIECE, { buf + i * PIECE, PIECE } };
    for (int round = 0; round < 300; round++) {
        for (int i = 0; i < 8; i++)
            assert_int_equal(bdev_aio_preadv(bs, q[i].off, &q[i].iov, 1, on_race_read, &q[i]), 0);
        wait_all(8);
    }
    pthread_join(t, NULL);
    assert_int_equal(c.errors, 0);
    assert_int_equal(seen.bad, 0);
    assert_true(bdev_aio_mapped_count(bs) > 0);
    check_clean(bs);
    /* Every cluster was rewritten last with its own pattern. */
    for (int i = 0; i < 8; i++) {
        assert_int_equal(bdev_pread(bs, (uint64_t)i * PIECE, buf, PIECE), 0);
        assert_int_equal(bt_check(buf, (uint64_t)i * PIECE, PIECE, 100 + i), -1);
    }
    bdev_close(bs);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mapped),
        cmocka_unit_test(test_mapped_direct),
        cmocka_unit_test(test_mapped_small_clusters),
        cmocka_unit_test(test_backing),
        cmocka_unit_test(test_pin_holds_free),
        cmocka_unit_test(test_write_needs_driver),
        cmocka_unit_test(test_race_free),
    };
    return cmocka_run_group_tests(tests, bt_setup, bt_teardown);
}
