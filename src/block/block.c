/* The generic block layer: opening images and routing requests to drivers.
 *
 * How a request flows: a caller holds the top node of a chain (say qcow2 ->
 * file, with a backing chain below the qcow2 node) and calls bdev_preadv()
 * with a byte offset. block.c checks it (read-only node, range inside the
 * virtual size), then calls the node's driver. A format driver maps the
 * guest range onto its host file and calls bdev_* on bs->file, which passes
 * the same checks and reaches the "file" driver, which does pread/pwrite on
 * the host fd. For a node with a backing node, block.c first asks the driver
 * which parts it holds (block_status) and reads the rest from the backing
 * node, zero-filled past its end. On a "file" node opened with O_DIRECT,
 * block.c bounces requests that are not aligned through aligned buffers
 * (read-modify-write for writes). Writethrough and FUA add a flush after the
 * write; flushes walk down from a node to its file node. bdev_aio_* (aio.c)
 * sends reads and writes of a raw-over-file chain straight to io_uring and
 * everything else to a worker pool that makes these same synchronous calls.
 *
 * Opening: the host file is opened (and locked) first as a "file" node; the
 * format is the one asked for, or the best probe score over the format
 * drivers in a fixed order with raw last. The format node is opened over the
 * file node, then its backing chain, each level read-only and checked for
 * loops by device and inode. */
#include "block/aio.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "util/iov.h"

enum {
    PROBE_BYTES = 2048,           /* what format probes get to see */
    MAX_CHAIN = 256,              /* backing chain depth limit */
    BOUNCE_MAX = 1 << 20,         /* bounce buffer size for unaligned O_DIRECT */
};

/* ---- driver registry ---------------------------------------------------- */

/* The qcow2 driver lives in its own files (a strong reference, so that a
 * static link pulls it in). */

static const struct block_driver *extra_drivers[8];
static int n_extra_drivers;

int block_driver_register(const struct block_driver *drv)
{
    if (n_extra_drivers == (int)(sizeof(extra_drivers) / sizeof(extra_drivers[0])))
        return -ENOSPC;
    extra_drivers[n_extra_drivers++] = drv;
    return 0;
}

/* Format drivers in probing order (raw last), then protocol drivers. */
static int driver_list(const struct block_driver **out)
{
    int n = 0;
    for (int i = 0; i < n_extra_drivers; i++)
        out[n++] = extra_drivers[i];
    out[n++] = &bdrv_qcow2;
    out[n++] = &bdrv_raw;
    out[n++] = &bdrv_file;
    return n;
}

const struct block_driver *block_driver_find(const char *format_name)
{
    const struct block_driver *list[16];
    int n = driver_list(list);
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i]->name, format_name))
            return list[i];
    return NULL;
}

const struct block_driver *block_probe(const uint8_t *buf, int len, const char *filename)
{
    const struct block_driver *list[16], *best = NULL;
    int n = driver_list(list), best_score = 0;
    for (int i = 0; i < n; i++) {
        if (list[i]->is_protocol || !list[i]->probe)
            continue;
        int score = list[i]->probe(buf, len, filename);
        if (score > best_score) {
            best = list[i];
            best_score = score;
        }
    }
    return best;
}

/* ---- nodes -------------------------------------------------------------- */

static struct bdev *node_new(const struct block_driver *drv, const char *filename, int flags)
{
    struct bdev *bs = calloc(1, sizeof(*bs));
    if (!bs)
        return NULL;
    bs->drv = drv;
    bs->filename = strdup(filename);
    bs->opaque = calloc(1, drv->state_size ? drv->state_size : 1);
    bs->flags = flags;
    bs->read_only = !(flags & BDEV_O_RDWR);
    bs->request_alignment = 1;
    if (!bs->filename || !bs->opaque) {
        free(bs->filename);
        free(bs->opaque);
        free(bs);
        return NULL;
    }
    return bs;
}

static void node_free(struct bdev *bs)
{
    free(bs->opaque);
    free(bs->filename);
    free(bs->backing_file);
    free(bs->backing_format);
    free(bs);
}

void bdev_close(struct bdev *bs)
{
    if (!bs)
        return;
    bdev_aio_shutdown(bs);
    if (!bs->read_only)
        bdev_flush(bs);
    if (bs->drv->close)
        bs->drv->close(bs);
    bdev_close(bs->backing);
    bdev_close(bs->file);
    node_free(bs);
}

/* ---- opening ------------------------------------------------------------ */

/* Files already in the chain being opened, for loop detection. */
struct chain_seen {
    dev_t dev[MAX_CHAIN];
    ino_t ino[MAX_CHAIN];
    const char *name[MAX_CHAIN];
    int n;
};

static int open_chain(struct bdev **out, const struct bdev_open_opts *o,
                      struct chain_seen *seen, struct error *err);

static int open_file_node(struct bdev **out, const char *filename, int flags, struct error *err)
{
    struct bdev *bs = node_new(&bdrv_file, filename, flags);
    if (!bs)
        return error_set(err, -ENOMEM, "Could not open '%s': out of memory", filename);
    int ret = bdrv_file.open(bs, NULL, err);
    if (ret) {
        node_free(bs);
        return ret;
    }
    *out = bs;
    return 0;
}

static int probe_format(struct bdev *file, const struct block_driver **drv, struct error *err)
{
    uint8_t buf[PROBE_BYTES];
    int64_t len = bdev_getlength(file);
    if (len < 0)
        return error_set_errno(err, len, "Could not get the size of '%s'", file->filename);
    int n = len < PROBE_BYTES ? (int)len : PROBE_BYTES;
    int ret = bdev_pread(file, 0, buf, PROBE_BYTES);
    if (ret < 0)
        return error_set_errno(err, ret, "Could not read image for determining its format");
    *drv = block_probe(buf, n, file->filename);
    return 0;
}

static void warn_probed_raw(const char *filename)
{
    warn_report("no format was given for '%s', so it was probed and taken as raw.\n"
                "         Guessing raw is risky: writes that would make its first sector look like\n"
                "         another format are refused. Name the format (format=raw, -f raw) to lift this.",
                filename);
}

/* "dir/top.qcow2" + "base.raw" -> "dir/base.raw"; absolute names stay. */
static char *backing_path(const char *image, const char *name)
{
    const char *slash = strrchr(image, '/');
    if (name[0] == '/' || !slash)
        return strdup(name);
    size_t dir = slash - image + 1;
    char *p = malloc(dir + strlen(name) + 1);
    if (p) {
        memcpy(p, image, dir);
        strcpy(p + dir, name);
    }
    return p;
}

/* Remember filename in seen; fails if it is already there (a loop). */
static int chain_add(struct chain_seen *seen, const char *filename, struct error *err)
{
    struct stat st;
    if (stat(filename, &st) < 0)
        return 0;                 /* opening it will say why */
    for (int i = 0; i < seen->n; i++) {
        if (seen->dev[i] == st.st_dev && seen->ino[i] == st.st_ino)
            return error_set(err, -ELOOP, "Backing file chain has a loop: '%s' is the same "
                             "file as '%s', which is already in the chain",
                             filename, seen->name[i]);
    }
    if (seen->n == MAX_CHAIN)
        return error_set(err, -ELOOP, "Backing file chain is deeper than %d images", MAX_CHAIN);
    seen->dev[seen->n] = st.st_dev;
    seen->ino[seen->n] = st.st_ino;
    seen->name[seen->n++] = filename;
    return 0;
}

static int open_backing(struct bdev *bs, const struct bdev_open_opts *o,
                        struct chain_seen *seen, struct error *err)
{
    const char *name = o->backing_override ? o->backing_override : bs->backing_file;
    if (!name || !name[0] || (bs->flags & BDEV_O_NO_BACKING))
        return 0;
    char *path = backing_path(bs->filename, name);
    if (!path)
        return error_set(err, -ENOMEM, "Could not open backing file: out of memory");
    struct bdev_open_opts bo = {
        .filename = path,
        .format = o->backing_format_override ? o->backing_format_override : bs->backing_format,
        .flags = bs->flags & (BDEV_O_NOCACHE | BDEV_O_NO_LOCK | BDEV_O_AIO_THREADS |
                              BDEV_O_FORCE_SHARE | BDEV_O_UNSAFE),
    };
    int ret = open_chain(&bs->backing, &bo, seen, err);
    if (ret)
        error_prepend(err, "Could not open backing file: ");
    free(path);
    return ret;
}

static int open_format_node(struct bdev **out, struct bdev *file, const struct block_driver *drv,
                            const struct bdev_open_opts *o, struct error *err)
{
    struct bdev *bs = node_new(drv, o->filename, o->flags);
    if (!bs) {
        bdev_close(file);
        return error_set(err, -ENOMEM, "Could not open '%s': out of memory", o->filename);
    }
    bs->file = file;
    bs->request_alignment = file->request_alignment;
    int ret = drv->open ? drv->open(bs, o, err) : 0;
    if (ret) {
        if (!error_is_set(err))
            error_set_errno(err, ret, "Could not open '%s'", o->filename);
        bdev_close(file);
        node_free(bs);
        return ret;
    }
    *out = bs;
    return 0;
}

static int open_chain(struct bdev **out, const struct bdev_open_opts *o,
                      struct chain_seen *seen, struct error *err)
{
    if (!o->filename || !o->filename[0])
        return error_set(err, -EINVAL, "No image file name was given");
    if ((o->flags & BDEV_O_FORCE_SHARE) && (o->flags & BDEV_O_RDWR))
        return error_set(err, -EINVAL, "force-share=on can only be used with read-only images");
    const struct block_driver *drv = NULL;
    if (o->format && !(drv = block_driver_find(o->format)))
        return error_set(err, -EINVAL, "Unknown driver '%s'", o->format);
    int ret = chain_add(seen, o->filename, err);
    if (ret)
        return ret;

    struct bdev *file = NULL;
    /* A format node does its own writethrough; its file node need not. */
    int file_flags = drv && drv->is_protocol ? o->flags : o->flags & ~BDEV_O_WRITETHROUGH;
    ret = open_file_node(&file, o->filename, file_flags, err);
    if (ret || (drv && drv->is_protocol)) {
        *out = ret ? NULL : file;
        return ret;
    }
    if (!drv) {
        ret = probe_format(file, &drv, err);
        if (ret) {
            bdev_close(file);
            return ret;
        }
        if (drv == &bdrv_raw && (o->flags & BDEV_O_RDWR))
            warn_probed_raw(o->filename);
    }
    struct bdev *bs = NULL;
    ret = open_format_node(&bs, file, drv, o, err);
    if (ret)
        return ret;
    ret = open_backing(bs, o, seen, err);
    if (ret) {
        bdev_close(bs);
        return ret;
    }
    *out = bs;
    return 0;
}

int bdev_open(struct bdev **out, const struct bdev_open_opts *o, struct error *err)
{
    struct chain_seen *seen = calloc(1, sizeof(*seen));
    if (!seen)
        return error_set(err, -ENOMEM, "out of memory");
    *out = NULL;
    int ret = open_chain(out, o, seen, err);
    free(seen);
    return ret;
}

int bdev_open_simple(struct bdev **out, const char *filename, const char *format,
                     int flags, struct error *err)
{
    struct bdev_open_opts o = { .filename = filename, .format = format, .flags = flags };
    return bdev_open(out, &o, err);
}

/* ---- accessors ---------------------------------------------------------- */

int64_t bdev_getlength(struct bdev *bs)
{
    if (bs->drv->getlength)
        return bs->drv->getlength(bs);
    return bs->file ? bdev_getlength(bs->file) : -ENOTSUP;
}

int64_t bdev_allocated_size(struct bdev *bs)
{
    if (bs->drv->allocated_size)
        return bs->drv->allocated_size(bs);
    return bs->file ? bdev_allocated_size(bs->file) : -ENOTSUP;
}

const char *bdev_format_name(struct bdev *bs) { return bs->drv->name; }
const char *bdev_filename(struct bdev *bs) { return bs->filename; }
bool bdev_is_read_only(struct bdev *bs) { return bs->read_only; }
struct bdev *bdev_backing(struct bdev *bs) { return bs->backing; }
struct bdev *bdev_file(struct bdev *bs) { return bs->file; }
const char *bdev_backing_filename(struct bdev *bs) { return bs->backing_file; }

/* ---- request checks and alignment --------------------------------------- */

int bdev_check_request(struct bdev *bs, uint64_t offset, uint64_t bytes, bool write)
{
    if (write && bs->read_only)
        return -EACCES;
    if (offset > INT64_MAX || bytes > INT64_MAX - offset)
        return -EINVAL;
    if (bs->drv->is_protocol)
        return 0;                 /* formats grow their host files by writing */
    int64_t len = bdev_getlength(bs);
    if (len < 0)
        return len;
    if (offset > (uint64_t)len || bytes > (uint64_t)len - offset)
        return -EIO;
    return 0;
}

static bool iov_is_aligned(const struct iovec *iov, int cnt, uint32_t align)
{
    for (int i = 0; i < cnt; i++)
        if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & (align - 1))
            return false;
    return true;
}

/* O_DIRECT file nodes take only aligned offsets, lengths and buffers. */
static bool needs_bounce(struct bdev *bs, uint64_t offset, uint64_t bytes,
                         const struct iovec *iov, int cnt)
{
    uint32_t a = bs->request_alignment;
    return a > 1 && bs->drv->is_protocol &&
           (((offset | bytes) & (a - 1)) || !iov_is_aligned(iov, cnt, a));
}

/* An aligned buffer for the window around [offset, end), at most BOUNCE_MAX. */
static void *bounce_alloc(uint64_t offset, uint64_t end, uint64_t align)
{
    uint64_t size = ((end + align - 1) & ~(align - 1)) - (offset & ~(align - 1));
    void *buf;
    return posix_memalign(&buf, 4096, size < BOUNCE_MAX ? size : BOUNCE_MAX) ? NULL : buf;
}

static int bounce_read(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt)
{
    uint64_t a = bs->request_alignment, end = offset + iov_size(iov, cnt);
    uint8_t *buf = bounce_alloc(offset, end, a);
    if (!buf)
        return -ENOMEM;
    int ret = 0;
    for (uint64_t pos = offset; pos < end && !ret;) {
        uint64_t wstart = pos & ~(a - 1);
        uint64_t wend = (end + a - 1) & ~(a - 1);
        if (wend - wstart > BOUNCE_MAX)
            wend = wstart + BOUNCE_MAX;
        struct iovec b = { buf, wend - wstart };
        ret = bs->drv->preadv(bs, wstart, &b, 1);
        uint64_t n = (end < wend ? end : wend) - pos;
        iov_from_buf(iov, cnt, pos - offset, buf + (pos - wstart), n);
        pos += n;
    }
    free(buf);
    return ret;
}

/* Read-modify-write of partial blocks; one at a time so two writers into
 * the same block cannot undo each other. Rare: guests use aligned I/O. */
static pthread_mutex_t rmw_lock = PTHREAD_MUTEX_INITIALIZER;

static int bounce_write_window(struct bdev *bs, uint8_t *buf, uint64_t wstart, uint64_t wend,
                               uint64_t pos, uint64_t end)
{
    uint64_t a = bs->request_alignment;
    struct iovec head = { buf, a }, tail = { buf + (wend - wstart - a), a };
    int ret = 0;
    if (pos != wstart)
        ret = bs->drv->preadv(bs, wstart, &head, 1);
    if (!ret && end < wend && (wend - a > wstart || pos == wstart))
        ret = bs->drv->preadv(bs, wend - a, &tail, 1);
    return ret;
}

static int bounce_write(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt,
                        int flags)
{
    uint64_t a = bs->request_alignment, end = offset + iov_size(iov, cnt);
    uint8_t *buf = bounce_alloc(offset, end, a);
    if (!buf)
        return -ENOMEM;
    pthread_mutex_lock(&rmw_lock);
    int64_t old_len = bdev_getlength(bs);
    int ret = old_len < 0 ? (int)old_len : 0;
    uint64_t pos = offset, wend = 0;
    while (pos < end && !ret) {
        uint64_t wstart = pos & ~(a - 1);
        wend = (end + a - 1) & ~(a - 1);
        if (wend - wstart > BOUNCE_MAX)
            wend = wstart + BOUNCE_MAX;
        uint64_t stop = end < wend ? end : wend;
        ret = bounce_write_window(bs, buf, wstart, wend, pos, stop);
        iov_to_buf(iov, cnt, pos - offset, buf + (pos - wstart), stop - pos);
        struct iovec b = { buf, wend - wstart };
        if (!ret)
            ret = bs->drv->pwritev(bs, wstart, &b, 1, flags);
        pos = stop;
    }
    /* Rounding up must not leave the file longer than the write asked. */
    if (!ret && wend > (uint64_t)old_len && end < wend && bs->drv->truncate)
        ret = bs->drv->truncate(bs, end > (uint64_t)old_len ? end : (uint64_t)old_len,
                                true, NULL, NULL);
    pthread_mutex_unlock(&rmw_lock);
    free(buf);
    return ret;
}

/* ---- reads -------------------------------------------------------------- */

/* Unallocated part of a node: from the backing node, zeroes past its end. */
static int read_from_backing(struct bdev *backing, uint64_t offset,
                             const struct iovec *iov, int cnt, uint64_t bytes)
{
    int64_t blen = backing ? bdev_getlength(backing) : 0;
    if (blen < 0)
        return blen;
    uint64_t have = offset >= (uint64_t)blen ? 0 : (uint64_t)blen - offset;
    if (have > bytes)
        have = bytes;
    if (have < bytes)
        iov_memset(iov, cnt, have, 0, bytes - have);
    if (!have)
        return 0;
    if (have == bytes)
        return bdev_preadv(backing, offset, iov, cnt);
    struct iovec small[16], *part = cnt <= 16 ? small : malloc(cnt * sizeof(*part));
    if (!part)
        return -ENOMEM;
    int n = iov_slice(iov, cnt, 0, have, part, cnt);
    int ret = bdev_preadv(backing, offset, part, n);
    if (part != small)
        free(part);
    return ret;
}

static int read_one_extent(struct bdev *bs, uint64_t offset, const struct iovec *part, int n,
                           uint64_t *pnum)
{
    uint64_t bytes = iov_size(part, n), map;
    struct bdev *file;
    int st = bs->drv->block_status(bs, offset, bytes, pnum, &map, &file);
    if (st < 0)
        return st;
    if (*pnum == 0 || *pnum > bytes)
        return -EIO;
    struct iovec small[16], *cut = n <= 16 ? small : malloc(n * sizeof(*cut));
    if (!cut)
        return -ENOMEM;
    int k = iov_slice(part, n, 0, *pnum, cut, n), ret;
    if (st & (BDEV_STATUS_ALLOCATED | BDEV_STATUS_DATA | BDEV_STATUS_ZERO))
        ret = bs->drv->preadv(bs, offset, cut, k);
    else
        ret = read_from_backing(bs->backing, offset, cut, k, *pnum);
    if (cut != small)
        free(cut);
    return ret;
}

/* A node over a backing node: split by what the node itself holds. */
static int read_with_backing(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt)
{
    uint64_t bytes = iov_size(iov, cnt);
    struct iovec small[16], *part = cnt <= 16 ? small : malloc(cnt * sizeof(*part));
    if (!part)
        return -ENOMEM;
    int ret = 0;
    for (uint64_t done = 0, pnum; done < bytes && !ret; done += pnum) {
        int n = iov_slice(iov, cnt, done, bytes - done, part, cnt);
        ret = read_one_extent(bs, offset + done, part, n, &pnum);
    }
    if (part != small)
        free(part);
    return ret;
}

int bdev_preadv(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt)
{
    uint64_t bytes = iov_size(iov, cnt);
    int ret = bdev_check_request(bs, offset, bytes, false);
    if (ret || !bytes)
        return ret;
    if (!bs->drv->preadv)
        return -ENOTSUP;
    if (bs->backing && bs->drv->block_status && !bs->drv->reads_backing)
        return read_with_backing(bs, offset, iov, cnt);
    if (needs_bounce(bs, offset, bytes, iov, cnt))
        return bounce_read(bs, offset, iov, cnt);
    return bs->drv->preadv(bs, offset, iov, cnt);
}

int bdev_pread(struct bdev *bs, uint64_t offset, void *buf, uint64_t bytes)
{
    struct iovec iov = { buf, bytes };
    return bdev_preadv(bs, offset, &iov, 1);
}

/* ---- writes ------------------------------------------------------------- */

/* Writethrough nodes and FUA requests make their data durable before the
 * request completes. */
static int finish_write(struct bdev *bs, int ret, int flags)
{
    if (ret == 0 && ((flags & BDEV_REQ_FUA) || (bs->flags & BDEV_O_WRITETHROUGH)))
        ret = bdev_flush(bs);
    return ret;
}

int bdev_pwritev(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt, int flags)
{
    uint64_t bytes = iov_size(iov, cnt);
    int ret = bdev_check_request(bs, offset, bytes, true);
    if (ret || !bytes)
        return ret;
    if (!bs->drv->pwritev)
        return -ENOTSUP;
    int drv_flags = flags & ~BDEV_REQ_FUA;
    if (needs_bounce(bs, offset, bytes, iov, cnt))
        ret = bounce_write(bs, offset, iov, cnt, drv_flags);
    else
        ret = bs->drv->pwritev(bs, offset, iov, cnt, drv_flags);
    return finish_write(bs, ret, flags);
}

int bdev_pwrite(struct bdev *bs, uint64_t offset, const void *buf, uint64_t bytes, int flags)
{
    struct iovec iov = { (void *)buf, bytes };
    return bdev_pwritev(bs, offset, &iov, 1, flags);
}

/* Zeroes written as data, for drivers (or filesystems) that can't do better. */
static int write_zero_buffers(struct bdev *bs, uint64_t offset, uint64_t bytes, int flags)
{
    uint64_t size = bytes < BOUNCE_MAX ? bytes : BOUNCE_MAX;
    uint8_t *buf = bounce_alloc(0, size, bs->request_alignment);
    if (!buf)
        return -ENOMEM;
    memset(buf, 0, size);
    int ret = 0;
    while (bytes && !ret) {
        uint64_t n = bytes < BOUNCE_MAX ? bytes : BOUNCE_MAX;
        struct iovec iov = { buf, n };
        ret = needs_bounce(bs, offset, n, &iov, 1) ? bounce_write(bs, offset, &iov, 1, flags)
                                                   : bs->drv->pwritev(bs, offset, &iov, 1, flags);
        offset += n;
        bytes -= n;
    }
    free(buf);
    return ret;
}

int bdev_pwrite_zeroes(struct bdev *bs, uint64_t offset, uint64_t bytes, int flags)
{
    int ret = bdev_check_request(bs, offset, bytes, true);
    if (ret || !bytes)
        return ret;
    int drv_flags = flags & ~BDEV_REQ_FUA;
    ret = bs->drv->pwrite_zeroes ? bs->drv->pwrite_zeroes(bs, offset, bytes, drv_flags)
                                 : -ENOTSUP;
    if (ret == -ENOTSUP && !(flags & BDEV_REQ_NO_FALLBACK) && bs->drv->pwritev)
        ret = write_zero_buffers(bs, offset, bytes, drv_flags & ~BDEV_REQ_MAY_UNMAP);
    return finish_write(bs, ret, flags);
}

int bdev_pdiscard(struct bdev *bs, uint64_t offset, uint64_t bytes)
{
    int ret = bdev_check_request(bs, offset, bytes, true);
    if (ret || !bytes || !bs->drv->pdiscard)
        return ret;
    ret = bs->drv->pdiscard(bs, offset, bytes);
    return ret == -ENOTSUP ? 0 : ret;   /* discard is only a hint */
}

int bdev_pwrite_compressed(struct bdev *bs, uint64_t offset, const void *buf, uint64_t bytes)
{
    int ret = bdev_check_request(bs, offset, bytes, true);
    if (ret)
        return ret;
    if (!bs->drv->pwrite_compressed)
        return -ENOTSUP;
    return bs->drv->pwrite_compressed(bs, offset, buf, bytes);
}

int bdev_flush(struct bdev *bs)
{
    /* cache=unsafe still lets formats write their caches to the host file;
     * only the sync to disk is skipped. */
    if (bs->read_only || ((bs->flags & BDEV_O_UNSAFE) && bs->drv->is_protocol))
        return 0;
    int ret = bs->drv->flush ? bs->drv->flush(bs) : 0;
    if (ret == 0 && bs->file)
        ret = bdev_flush(bs->file);
    return ret;
}

int bdev_truncate(struct bdev *bs, uint64_t size, bool shrink, const char *prealloc,
                  struct error *err)
{
    if (bs->read_only)
        return error_set(err, -EACCES, "Image '%s' is read-only", bs->filename);
    if (!bs->drv->truncate)
        return error_set(err, -ENOTSUP, "Image format driver '%s' does not support resize",
                         bs->drv->name);
    if (size > INT64_MAX)
        return error_set(err, -EINVAL, "Image size %llu is too large",
                         (unsigned long long)size);
    return bs->drv->truncate(bs, size, shrink, prealloc, err);
}

/* ---- block status ------------------------------------------------------- */

int bdev_block_status(struct bdev *bs, uint64_t offset, uint64_t bytes,
                      uint64_t *pnum, uint64_t *map, struct bdev **file)
{
    uint64_t dummy_map;
    struct bdev *dummy_file;
    map = map ? map : &dummy_map;
    file = file ? file : &dummy_file;
    *pnum = 0;
    *map = 0;
    *file = NULL;
    int64_t len = bdev_getlength(bs);
    if (len < 0)
        return len;
    if (offset >= (uint64_t)len)
        return 0;
    if (bytes > (uint64_t)len - offset)
        bytes = len - offset;
    if (!bs->drv->block_status) {
        *pnum = bytes;
        return BDEV_STATUS_DATA | BDEV_STATUS_ALLOCATED;
    }
    int ret = bs->drv->block_status(bs, offset, bytes, pnum, map, file);
    if (ret < 0)
        return ret;
    if (*pnum == 0 || *pnum > bytes)
        return -EIO;
    /* A protocol node defines all of its bytes; a format says what it holds. */
    if (bs->drv->is_protocol)
        ret |= BDEV_STATUS_ALLOCATED;
    if (!(ret & BDEV_STATUS_ALLOCATED)) {
        int64_t blen = bs->backing ? bdev_getlength(bs->backing) : 0;
        if (blen >= 0 && offset >= (uint64_t)blen)
            ret |= BDEV_STATUS_ZERO;   /* nothing below: reads as zeroes */
    }
    return ret;
}

int bdev_block_status_above(struct bdev *bs, uint64_t offset, uint64_t bytes,
                            uint64_t *pnum, uint64_t *map, struct bdev **file, int *depth)
{
    int d = 0;
    for (struct bdev *p = bs;; p = p->backing, d++) {
        if (p != bs) {
            int64_t plen = bdev_getlength(p);
            if (plen < 0)
                return plen;
            if (offset >= (uint64_t)plen) {    /* short backing: zeroes from here */
                *pnum = bytes;
                if (file)
                    *file = p;
                *depth = d;
                return BDEV_STATUS_ZERO | BDEV_STATUS_ALLOCATED;
            }
        }
        int ret = bdev_block_status(p, offset, bytes, pnum, map, file);
        if (ret < 0 || *pnum == 0)
            return ret;
        bytes = *pnum;
        if ((ret & BDEV_STATUS_ALLOCATED) || !p->backing) {
            *depth = (ret & BDEV_STATUS_ALLOCATED) ? d : d + 1;
            return ret;
        }
    }
}
