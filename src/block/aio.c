/* Asynchronous requests: io_uring for chains whose data goes straight to a
 * host fd (raw over file, or a bare file node), a worker pool otherwise.
 * A qcow2 node over a file uses io_uring too for every request that
 * qcow2_aio_map resolves to host bytes (or to zeroes) without I/O: reads
 * and rewrites of allocated clusters skip the pool's thread hand-off.
 *
 * Each node gets its engine on its first bdev_aio_* call. The pool's
 * workers make the ordinary synchronous calls, so every format works there
 * as long as its driver is thread-safe. On the io_uring path one thread
 * submits under a lock and one completion thread reaps and runs callbacks;
 * requests io_uring can't take as they are (unaligned O_DIRECT, FUA or
 * writethrough, a probed raw image's first sector, discard, zeroes) go to
 * the pool, which also exists for io_uring nodes. */
#include "block/aio.h"

#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include "util/iov.h"

enum { POOL_MAX = 16, RING_ENTRIES = 256, INLINE_IOV = 4 };

enum aio_op { AIO_READ, AIO_WRITE, AIO_FLUSH, AIO_DISCARD, AIO_ZEROES, AIO_DONE };

struct aio_req {
    struct bdev *bs;
    enum aio_op op;
    uint64_t offset, bytes;
    int flags;
    int result;                   /* AIO_DONE: the answer, known up front */
    bool pinned;                  /* qcow2_aio_map'd: data at `host` in the file node */
    uint64_t host;
    struct iovec *iov;
    int iovcnt;
    bdev_cb *cb;
    void *opaque;
    struct aio_req *next;
    struct iovec iov_inline[INLINE_IOV];
};

struct bdev_aio {
    pthread_mutex_t lock;
    pthread_cond_t work;          /* pool: a request was queued, or stop */
    pthread_cond_t drained;       /* inflight reached zero */
    struct aio_req *head, *tail;
    int queued, idle, threads, inflight, max_inflight;
    int mapped_count;             /* requests qcow2_aio_map sent to io_uring */
    bool stopping;
    pthread_t tid[POOL_MAX];

    bool uring;                   /* this node's data path is one host fd */
    bool mapped;                  /* ... through qcow2_aio_map */
    struct bdev *file;            /* the node of that fd */
    int fd;
    uint32_t align;               /* O_DIRECT alignment of fd, 1 if buffered */
    struct io_uring ring;
    pthread_mutex_t sq_lock;
    pthread_t reaper;
};

/* ---- completion and the synchronous fallback ---------------------------- */

static void aio_complete(struct aio_req *req, int ret)
{
    struct bdev_aio *aio = req->bs->aio;
    if (req->pinned)
        qcow2_aio_unpin(req->bs);
    req->cb(req->opaque, ret);
    if (req->iov != req->iov_inline)
        free(req->iov);
    free(req);
    pthread_mutex_lock(&aio->lock);
    if (--aio->inflight == 0)
        pthread_cond_broadcast(&aio->drained);
    pthread_mutex_unlock(&aio->lock);
}

static int aio_run_sync(struct aio_req *r)
{
    switch (r->op) {
    case AIO_READ:    return bdev_preadv(r->bs, r->offset, r->iov, r->iovcnt);
    case AIO_WRITE:   return bdev_pwritev(r->bs, r->offset, r->iov, r->iovcnt, r->flags);
    case AIO_FLUSH:   return bdev_flush(r->bs);
    case AIO_DISCARD: return bdev_pdiscard(r->bs, r->offset, r->bytes);
    case AIO_ZEROES:  return bdev_pwrite_zeroes(r->bs, r->offset, r->bytes, r->flags);
    case AIO_DONE:    return r->result;
    }
    return -EINVAL;
}

/* ---- worker pool -------------------------------------------------------- */

static void *pool_worker(void *arg)
{
    struct bdev_aio *aio = arg;
    pthread_mutex_lock(&aio->lock);
    for (;;) {
        while (!aio->head && !aio->stopping) {
            aio->idle++;
            pthread_cond_wait(&aio->work, &aio->lock);
            aio->idle--;
        }
        if (!aio->head)
            break;
        struct aio_req *req = aio->head;
        aio->head = req->next;
        if (!aio->head)
            aio->tail = NULL;
        aio->queued--;
        pthread_mutex_unlock(&aio->lock);
        aio_complete(req, aio_run_sync(req));
        pthread_mutex_lock(&aio->lock);
    }
    pthread_mutex_unlock(&aio->lock);
    return NULL;
}

static void pool_submit(struct bdev_aio *aio, struct aio_req *req)
{
    pthread_mutex_lock(&aio->lock);
    req->next = NULL;
    if (aio->tail)
        aio->tail->next = req;
    else
        aio->head = req;
    aio->tail = req;
    aio->queued++;
    /* Start another worker while queued requests outnumber idle ones. */
    if (aio->queued > aio->idle && aio->threads < POOL_MAX &&
        pthread_create(&aio->tid[aio->threads], NULL, pool_worker, aio) == 0)
        aio->threads++;
    pthread_cond_signal(&aio->work);
    pthread_mutex_unlock(&aio->lock);
}

/* ---- io_uring ----------------------------------------------------------- */

/* A short transfer (end of file, signal): finish the rest synchronously,
 * on the file node itself for a mapped request. */
static int uring_finish(struct aio_req *req, int res)
{
    if ((res == -EAGAIN || res == -EINTR) && !req->pinned)
        return aio_run_sync(req);
    if (res == -EAGAIN || res == -EINTR)
        res = 0;
    if (res < 0 || req->op == AIO_FLUSH || req->op == AIO_DONE)
        return res < 0 ? res : (req->op == AIO_DONE ? req->result : 0);
    if ((uint64_t)res >= req->bytes)
        return 0;
    struct iovec *rest = malloc(req->iovcnt * sizeof(*rest));
    if (!rest)
        return -ENOMEM;
    struct bdev *bs = req->pinned ? req->bs->aio->file : req->bs;
    uint64_t off = (req->pinned ? req->host : req->offset) + res;
    int n = iov_slice(req->iov, req->iovcnt, res, req->bytes - res, rest, req->iovcnt);
    int ret = req->op == AIO_READ ? bdev_preadv(bs, off, rest, n)
                                  : bdev_pwritev(bs, off, rest, n, req->flags);
    free(rest);
    return ret;
}

/* Requests that callbacks queue from the reaper thread wait in the SQ and
 * go to the kernel in one batch once the reaper has run the callbacks of
 * everything that had completed: one syscall for many requests. */
static __thread struct bdev_aio *reaper_of;

static void uring_flush_sq(struct bdev_aio *aio)
{
    pthread_mutex_lock(&aio->sq_lock);
    int ret;
    while (io_uring_sq_ready(&aio->ring) &&
           ((ret = io_uring_submit(&aio->ring)) == -EINTR || ret == -EAGAIN || ret == -EBUSY))
        ;
    pthread_mutex_unlock(&aio->sq_lock);
}

static void *uring_reaper(void *arg)
{
    struct bdev_aio *aio = arg;
    reaper_of = aio;
    for (bool stop = false; !stop;) {
        struct io_uring_cqe *cqe;
        int ret = io_uring_wait_cqe(&aio->ring, &cqe);
        if (ret == -EINTR || ret == -EAGAIN)
            continue;
        if (ret < 0)
            break;
        while (!stop && io_uring_peek_cqe(&aio->ring, &cqe) == 0) {
            struct aio_req *req = io_uring_cqe_get_data(cqe);
            int res = cqe->res;
            io_uring_cqe_seen(&aio->ring, cqe);
            if (req)
                aio_complete(req, uring_finish(req, res));
            else
                stop = true;      /* the marker from bdev_aio_shutdown */
        }
        uring_flush_sq(aio);
    }
    return NULL;
}

/* Queue one SQE; req NULL is the reaper's stop marker. */
static int uring_submit(struct bdev_aio *aio, struct aio_req *req)
{
    pthread_mutex_lock(&aio->sq_lock);
    struct io_uring_sqe *sqe = io_uring_get_sqe(&aio->ring);
    if (!sqe) {
        io_uring_submit(&aio->ring);
        sqe = io_uring_get_sqe(&aio->ring);
    }
    if (!sqe) {
        pthread_mutex_unlock(&aio->sq_lock);
        return -EBUSY;
    }
    enum aio_op op = req ? req->op : AIO_DONE;
    uint64_t off = req && req->pinned ? req->host : req ? req->offset : 0;
    if (op == AIO_READ)
        io_uring_prep_readv(sqe, aio->fd, req->iov, req->iovcnt, off);
    else if (op == AIO_WRITE)
        io_uring_prep_writev(sqe, aio->fd, req->iov, req->iovcnt, off);
    else if (op == AIO_FLUSH)
        io_uring_prep_fsync(sqe, aio->fd, IORING_FSYNC_DATASYNC);
    else
        io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, req);
    int ret = 0;
    if (reaper_of != aio) {
        while ((ret = io_uring_submit(&aio->ring)) == -EINTR || ret == -EAGAIN || ret == -EBUSY)
            ;                     /* the reaper frees room; the SQE stays queued */
    }
    pthread_mutex_unlock(&aio->sq_lock);
    return ret < 0 ? ret : 0;
}

/* Can io_uring do this request with no help from block.c or raw.c? */
static bool uring_can_take(struct bdev_aio *aio, struct aio_req *req)
{
    struct bdev *bs = req->bs;
    switch (req->op) {
    case AIO_DONE:
    case AIO_FLUSH:
        return true;
    case AIO_READ:
    case AIO_WRITE:
        break;
    default:
        return false;
    }
    if (req->iovcnt > IOV_MAX)
        return false;
    if (req->op == AIO_WRITE) {
        if ((req->flags & BDEV_REQ_FUA) || (bs->flags & BDEV_O_WRITETHROUGH))
            return false;
        if (bs->drv == &bdrv_raw && !raw_write_is_passthrough(bs, req->offset))
            return false;
    }
    if (aio->align > 1) {
        if ((req->offset | req->host | req->bytes) & (aio->align - 1))
            return false;
        for (int i = 0; i < req->iovcnt; i++)
            if (((uintptr_t)req->iov[i].iov_base | req->iov[i].iov_len) & (aio->align - 1))
                return false;
    }
    return true;
}

/* The host file of a chain whose data bytes are its file bytes, or NULL. */
static struct bdev *direct_file_node(struct bdev *bs)
{
    if (bs->drv == &bdrv_file)
        return bs;
    if (bs->drv == &bdrv_raw && bs->file && bs->file->drv == &bdrv_file)
        return bs->file;
    return NULL;
}

/* The host file under a qcow2 node whose clusters qcow2_aio_map can resolve. */
static struct bdev *mapped_file_node(struct bdev *bs)
{
    if (bs->drv == &bdrv_qcow2 && bs->file && bs->file->drv == &bdrv_file)
        return bs->file;
    return NULL;
}

static void uring_init(struct bdev_aio *aio, struct bdev *bs)
{
    struct bdev *file = direct_file_node(bs);
    aio->mapped = !file && (file = mapped_file_node(bs)) != NULL;
    if (!file || (bs->flags & BDEV_O_AIO_THREADS))
        return;
    if (io_uring_queue_init(RING_ENTRIES, &aio->ring, 0) < 0)
        return;                   /* no io_uring here: the pool does it all */
    aio->fd = file_host_fd(file);
    aio->file = file;
    aio->align = file->request_alignment;
    pthread_mutex_init(&aio->sq_lock, NULL);
    if (pthread_create(&aio->reaper, NULL, uring_reaper, aio) != 0) {
        io_uring_queue_exit(&aio->ring);
        return;
    }
    aio->uring = true;
}

/* ---- engine lifetime ---------------------------------------------------- */

static pthread_mutex_t aio_init_lock = PTHREAD_MUTEX_INITIALIZER;

static struct bdev_aio *aio_get(struct bdev *bs)
{
    pthread_mutex_lock(&aio_init_lock);
    if (!bs->aio) {
        struct bdev_aio *aio = calloc(1, sizeof(*aio));
        if (aio) {
            pthread_mutex_init(&aio->lock, NULL);
            pthread_cond_init(&aio->work, NULL);
            pthread_cond_init(&aio->drained, NULL);
            aio->align = 1;
            uring_init(aio, bs);
            bs->aio = aio;
        }
    }
    pthread_mutex_unlock(&aio_init_lock);
    return bs->aio;
}

void bdev_aio_shutdown(struct bdev *bs)
{
    struct bdev_aio *aio = bs->aio;
    if (!aio)
        return;
    pthread_mutex_lock(&aio->lock);
    while (aio->inflight)
        pthread_cond_wait(&aio->drained, &aio->lock);
    aio->stopping = true;
    pthread_cond_broadcast(&aio->work);
    pthread_mutex_unlock(&aio->lock);
    for (int i = 0; i < aio->threads; i++)
        pthread_join(aio->tid[i], NULL);
    if (aio->uring) {
        uring_submit(aio, NULL);
        pthread_join(aio->reaper, NULL);
        io_uring_queue_exit(&aio->ring);
        pthread_mutex_destroy(&aio->sq_lock);
    }
    pthread_mutex_destroy(&aio->lock);
    pthread_cond_destroy(&aio->work);
    pthread_cond_destroy(&aio->drained);
    free(aio);
    bs->aio = NULL;
}

int bdev_aio_max_inflight(struct bdev *bs)
{
    struct bdev_aio *aio = aio_get(bs);
    if (!aio)
        return 0;
    pthread_mutex_lock(&aio->lock);
    int n = aio->max_inflight;
    pthread_mutex_unlock(&aio->lock);
    return n;
}

int bdev_aio_mapped_count(struct bdev *bs)
{
    struct bdev_aio *aio = aio_get(bs);
    return aio ? __atomic_load_n(&aio->mapped_count, __ATOMIC_RELAXED) : 0;
}

const char *bdev_aio_engine(struct bdev *bs)
{
    struct bdev_aio *aio = aio_get(bs);
    return aio && aio->uring ? "io_uring" : "threads";
}

/* ---- submission --------------------------------------------------------- */

static struct aio_req *req_new(struct bdev *bs, enum aio_op op, uint64_t offset,
                               const struct iovec *iov, int cnt, bdev_cb *cb, void *opaque)
{
    struct aio_req *req = calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    req->iov = cnt <= INLINE_IOV ? req->iov_inline : malloc(cnt * sizeof(*iov));
    if (!req->iov) {
        free(req);
        return NULL;
    }
    if (cnt)
        memcpy(req->iov, iov, cnt * sizeof(*iov));   /* the caller's array may go */
    req->iovcnt = cnt;
    req->bytes = iov_size(iov, cnt);
    req->bs = bs;
    req->op = op;
    req->offset = offset;
    req->cb = cb;
    req->opaque = opaque;
    return req;
}

/* A qcow2 request on the io_uring path if qcow2_aio_map resolves it: data
 * clusters at their host offset, zero clusters answered at once (through
 * the ring, so the callback still runs on the completion thread). */
static int mapped_submit(struct bdev_aio *aio, struct aio_req *req)
{
    if ((req->op != AIO_READ && req->op != AIO_WRITE) || !uring_can_take(aio, req))
        return -EAGAIN;
    int m = qcow2_aio_map(req->bs, req->offset, req->bytes, req->op == AIO_WRITE, &req->host);
    if (m == QCOW2_AIO_ZERO) {
        iov_memset(req->iov, req->iovcnt, 0, 0, req->bytes);
        req->op = AIO_DONE;
        req->result = 0;
        __atomic_add_fetch(&aio->mapped_count, 1, __ATOMIC_RELAXED);
        return uring_submit(aio, req);   /* on failure the pool answers it */
    }
    if (m != QCOW2_AIO_HOST) {
        req->host = 0;
        return -EAGAIN;
    }
    req->pinned = true;
    int ret = uring_can_take(aio, req) ? uring_submit(aio, req) : -EAGAIN;
    if (ret < 0) {
        req->pinned = false;
        req->host = 0;
        qcow2_aio_unpin(req->bs);
    } else {
        __atomic_add_fetch(&aio->mapped_count, 1, __ATOMIC_RELAXED);
    }
    return ret;
}

static int aio_submit(struct aio_req *req)
{
    struct bdev_aio *aio = aio_get(req->bs);
    if (!aio)
        return -ENOMEM;
    pthread_mutex_lock(&aio->lock);
    if (++aio->inflight > aio->max_inflight)
        aio->max_inflight = aio->inflight;
    pthread_mutex_unlock(&aio->lock);
    if (aio->uring && !aio->mapped && uring_can_take(aio, req) && uring_submit(aio, req) == 0)
        return 0;
    if (aio->uring && aio->mapped && mapped_submit(aio, req) == 0)
        return 0;
    pool_submit(aio, req);
    return 0;
}

/* Check, build and queue; on refusal the callback never runs. */
static int aio_start(struct bdev *bs, enum aio_op op, uint64_t offset, uint64_t bytes,
                     const struct iovec *iov, int cnt, int flags, bdev_cb *cb, void *opaque)
{
    if (!cb || cnt < 0)
        return -EINVAL;
    int ret = op == AIO_FLUSH ? 0 : bdev_check_request(bs, offset, bytes, op != AIO_READ);
    if (ret)
        return ret;
    struct aio_req *req = req_new(bs, op, offset, iov, cnt, cb, opaque);
    if (!req)
        return -ENOMEM;
    req->flags = flags;
    if (op == AIO_DISCARD || op == AIO_ZEROES)
        req->bytes = bytes;
    if (op == AIO_FLUSH && (bs->read_only ||
                            ((bs->flags & BDEV_O_UNSAFE) && direct_file_node(bs))))
        req->op = AIO_DONE;       /* nothing to do, but still answer later */
    return aio_submit(req);
}

int bdev_aio_preadv(struct bdev *bs, uint64_t offset, const struct iovec *iov, int iovcnt,
                    bdev_cb *cb, void *opaque)
{
    return aio_start(bs, AIO_READ, offset, iov_size(iov, iovcnt), iov, iovcnt, 0, cb, opaque);
}

int bdev_aio_pwritev(struct bdev *bs, uint64_t offset, const struct iovec *iov, int iovcnt,
                     int flags, bdev_cb *cb, void *opaque)
{
    return aio_start(bs, AIO_WRITE, offset, iov_size(iov, iovcnt), iov, iovcnt, flags,
                     cb, opaque);
}

int bdev_aio_flush(struct bdev *bs, bdev_cb *cb, void *opaque)
{
    return aio_start(bs, AIO_FLUSH, 0, 0, NULL, 0, 0, cb, opaque);
}

int bdev_aio_pdiscard(struct bdev *bs, uint64_t offset, uint64_t bytes, bdev_cb *cb, void *opaque)
{
    return aio_start(bs, AIO_DISCARD, offset, bytes, NULL, 0, 0, cb, opaque);
}

int bdev_aio_pwrite_zeroes(struct bdev *bs, uint64_t offset, uint64_t bytes, int flags,
                           bdev_cb *cb, void *opaque)
{
    return aio_start(bs, AIO_ZEROES, offset, bytes, NULL, 0, flags, cb, opaque);
}
