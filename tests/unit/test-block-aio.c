/* Unit tests for bdev_aio_*: 64 requests in flight on each engine (io_uring
 * and the worker pool, buffered and O_DIRECT), data verified afterwards. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include "block/aio.h"
#include "block-test.h"

enum { KiB = 1024, NREQ = 64, REQ_SIZE = 64 * KiB, IMG_SIZE = NREQ * REQ_SIZE };

/* Completion tracking; callbacks wait at a gate so the test controls how
 * many requests are in flight at once. */
struct tracker {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool gate_open;
    int done, errors, first_error;
    bool on_caller_thread;
    pthread_t caller;
};

static struct tracker tr = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

static void tracker_reset(bool gate_open)
{
    pthread_mutex_lock(&tr.lock);
    tr.gate_open = gate_open;
    tr.done = tr.errors = tr.first_error = 0;
    tr.on_caller_thread = false;
    tr.caller = pthread_self();
    pthread_mutex_unlock(&tr.lock);
}

static void on_done(void *opaque, int ret)
{
    pthread_mutex_lock(&tr.lock);
    while (!tr.gate_open)
        pthread_cond_wait(&tr.cond, &tr.lock);
    if (pthread_equal(pthread_self(), tr.caller))
        tr.on_caller_thread = true;
    if (ret && !tr.errors++)
        tr.first_error = ret;
    tr.done++;
    pthread_cond_broadcast(&tr.cond);
    pthread_mutex_unlock(&tr.lock);
}

static void open_gate(void)
{
    pthread_mutex_lock(&tr.lock);
    tr.gate_open = true;
    pthread_cond_broadcast(&tr.cond);
    pthread_mutex_unlock(&tr.lock);
}

static void wait_done(int n)
{
    pthread_mutex_lock(&tr.lock);
    while (tr.done < n)
        pthread_cond_wait(&tr.cond, &tr.lock);
    pthread_mutex_unlock(&tr.lock);
    assert_int_equal(tr.errors, 0);
    assert_false(tr.on_caller_thread);
}

static uint8_t *aligned_buf(size_t size)
{
    void *p;
    assert_int_equal(posix_memalign(&p, 4096, size), 0);
    return p;
}

/* Request i goes to slot perm(i): an order that is neither forward nor
 * backward, so completion order can't hide misplaced data. */
static uint64_t slot_offset(int i)
{
    return (uint64_t)((i * 37) % NREQ) * REQ_SIZE;
}

static void run_format(const char *fmt, const char *name, int flags, const char *engine,
                       size_t misalign)
{
    struct error err = {0};
    const char *path = bt_path(name);
    struct opts none = {0};
    if (block_driver_find(fmt)->create(path, IMG_SIZE, &none, &err))
        fail_msg("create: %s", err.msg);
    struct bdev *bs;
    if (bdev_open_simple(&bs, path, fmt, BDEV_O_RDWR | flags, &err))
        fail_msg("open: %s", err.msg);
    assert_string_equal(bdev_aio_engine(bs), engine);

    uint8_t *bufs = aligned_buf((size_t)NREQ * REQ_SIZE + 4096);
    uint8_t *base = bufs + misalign;
    struct iovec iov[NREQ][2];
    tracker_reset(false);
    for (int i = 0; i < NREQ; i++) {
        uint8_t *b = base + (size_t)i * REQ_SIZE;
        bt_fill(b, slot_offset(i), REQ_SIZE, 9);
        /* Two pieces per request: exercises vectored submission. */
        iov[i][0] = (struct iovec){ b, REQ_SIZE / 4 };
        iov[i][1] = (struct iovec){ b + REQ_SIZE / 4, REQ_SIZE - REQ_SIZE / 4 };
        assert_int_equal(bdev_aio_pwritev(bs, slot_offset(i), iov[i], 2, 0, on_done, NULL), 0);
    }
    /* No callback has returned yet, so all 64 are in flight together. */
    assert_int_equal(bdev_aio_max_inflight(bs), NREQ);
    open_gate();
    wait_done(NREQ);

    tracker_reset(true);
    assert_int_equal(bdev_aio_flush(bs, on_done, NULL), 0);
    wait_done(1);

    memset(bufs, 0, (size_t)NREQ * REQ_SIZE + 4096);
    tracker_reset(true);
    for (int i = 0; i < NREQ; i++)
        assert_int_equal(bdev_aio_preadv(bs, slot_offset(i), iov[i], 2, on_done, NULL), 0);
    wait_done(NREQ);
    for (int i = 0; i < NREQ; i++)
        assert_int_equal(bt_check(base + (size_t)i * REQ_SIZE, slot_offset(i), REQ_SIZE, 9), -1);

    /* Zeroes and discard through the engine, then a synchronous check. */
    tracker_reset(true);
    assert_int_equal(bdev_aio_pwrite_zeroes(bs, 0, REQ_SIZE, 0, on_done, NULL), 0);
    assert_int_equal(bdev_aio_pdiscard(bs, REQ_SIZE, REQ_SIZE, on_done, NULL), 0);
    wait_done(2);
    assert_int_equal(bdev_pread(bs, 0, base, REQ_SIZE), 0);
    assert_true(bt_is_zero(base, REQ_SIZE));
    assert_int_equal(bdev_pread(bs, 2 * REQ_SIZE, base, REQ_SIZE), 0);
    assert_int_equal(bt_check(base, 2 * REQ_SIZE, REQ_SIZE, 9), -1);

    /* Refused up front: the callback never runs. */
    tracker_reset(true);
    struct iovec past = { base, 512 };
    assert_int_equal(bdev_aio_preadv(bs, IMG_SIZE, &past, 1, on_done, NULL), -EIO);
    assert_int_equal(bdev_aio_preadv(bs, 0, &past, 1, NULL, NULL), -EINVAL);
    bdev_close(bs);               /* drains and stops the engine */
    assert_int_equal(tr.done, 0);
    free(bufs);
}

static void run_engine(const char *name, int flags, const char *engine, size_t misalign)
{
    run_format("raw", name, flags, engine, misalign);
}

static void test_io_uring(void **state)
{
    run_engine("uring.img", 0, "io_uring", 0);
}

static void test_io_uring_direct(void **state)
{
    run_engine("uring-direct.img", BDEV_O_NOCACHE, "io_uring", 0);
}

/* O_DIRECT with misaligned buffers: io_uring can't take them, the pool
 * bounces them. */
static void test_io_uring_direct_misaligned(void **state)
{
    run_engine("uring-misaligned.img", BDEV_O_NOCACHE, "io_uring", 8);
}

static void test_threads(void **state)
{
    run_engine("threads.img", BDEV_O_AIO_THREADS, "threads", 0);
}

static void test_threads_writethrough(void **state)
{
    run_engine("threads-wt.img", BDEV_O_AIO_THREADS | BDEV_O_WRITETHROUGH, "threads", 0);
}

/* qcow2's driver calls are synchronous: the pool runs 64 of them at once,
 * which also exercises the driver's thread safety. By default only the
 * allocating writes go there; the reads of allocated clusters (and of
 * zeroes) are mapped and go to io_uring on the host file. */
static void test_qcow2_pool(void **state)
{
    run_format("qcow2", "pool.qcow2", 0, "io_uring", 0);
}

/* aio=threads: every qcow2 request through the pool. */
static void test_qcow2_threads(void **state)
{
    run_format("qcow2", "threads.qcow2", BDEV_O_AIO_THREADS, "threads", 0);
}

/* O_DIRECT with misaligned buffers: mapped requests io_uring can't take
 * fall back to the pool, which bounces them. */
static void test_qcow2_direct_misaligned(void **state)
{
    run_format("qcow2", "misaligned.qcow2", BDEV_O_NOCACHE, "io_uring", 8);
}

/* A read-only node refuses aio writes; its flush is a no-op that still
 * answers through the callback. */
static void test_read_only(void **state)
{
    struct error err = {0};
    const char *path = bt_path("ro-aio.img");
    assert_int_equal(bdrv_raw.create(path, 4096, NULL, &err), 0);
    struct bdev *bs;
    assert_int_equal(bdev_open_simple(&bs, path, "raw", 0, &err), 0);
    uint8_t buf[512] = {0};
    struct iovec iov = { buf, sizeof(buf) };
    tracker_reset(true);
    assert_int_equal(bdev_aio_pwritev(bs, 0, &iov, 1, 0, on_done, NULL), -EACCES);
    assert_int_equal(bdev_aio_pwrite_zeroes(bs, 0, 512, 0, on_done, NULL), -EACCES);
    assert_int_equal(bdev_aio_flush(bs, on_done, NULL), 0);
    wait_done(1);
    bdev_close(bs);
    assert_int_equal(tr.done, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_io_uring),
        cmocka_unit_test(test_io_uring_direct),
        cmocka_unit_test(test_io_uring_direct_misaligned),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_threads_writethrough),
        cmocka_unit_test(test_qcow2_pool),
        cmocka_unit_test(test_qcow2_threads),
        cmocka_unit_test(test_qcow2_direct_misaligned),
        cmocka_unit_test(test_read_only),
    };
    return cmocka_run_group_tests(tests, bt_setup, bt_teardown);
}
