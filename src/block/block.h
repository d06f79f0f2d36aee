/* The block layer: what the rest of Quokka (quokka-img, virtio-blk, the NBD
 * server) uses to reach a disk image.
 *
 * An image is opened as a chain of `struct bdev` nodes: a format node (qcow2,
 * raw) on top of a protocol node (the host file), with an optional backing
 * node under a qcow2 node. Callers hold the top node and use byte offsets;
 * the layer handles alignment, backing reads and probing.
 *
 * All calls return 0 (or a count) on success and -errno on failure. The
 * synchronous calls are thread-safe; bdev_aio_* lets many requests be in
 * flight at once (io_uring where the chain allows, a worker pool otherwise).
 *
 * Errors from bdev_open carry the block layer's reason in err, worded as
 * QEMU's block layer words it ("Could not open 'x': No such file or
 * directory", "Unknown driver 'foo'", "Failed to get "write" lock\nIs another
 * process using the image [x]?"); tools add their own prefix if they want
 * one. Requests past the virtual size of a format node fail with -EIO,
 * writes to a read-only node with -EACCES.
 *
 * Image locking: a read-write open takes the "write" permission and refuses
 * to share it; a read-only open refuses to share "write" too. So a second
 * read-write opener, or a reader while someone writes, is refused (in this
 * process or another, QEMU included: the same OFD lock bytes). Ways out:
 * BDEV_O_SHARE_RW (share "write"), BDEV_O_FORCE_SHARE (read-only only:
 * share everything), BDEV_O_NO_LOCK (take no locks). */
#ifndef QUOKKA_BLOCK_BLOCK_H
#define QUOKKA_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include "util/error.h"

struct bdev;
struct block_driver;

/* Open flags. */
enum {
    BDEV_O_RDWR        = 1 << 0,
    BDEV_O_NO_BACKING  = 1 << 1,   /* don't open the backing file (qemu-img -U style info, rebase -u) */
    BDEV_O_NOCACHE     = 1 << 2,   /* O_DIRECT on the host file (cache=none/directsync) */
    BDEV_O_WRITETHROUGH= 1 << 3,   /* flush after every write (cache=writethrough/directsync) */
    BDEV_O_UNSAFE      = 1 << 4,   /* ignore flushes (cache=unsafe) */
    BDEV_O_NO_LOCK     = 1 << 5,   /* file.locking=off */
    BDEV_O_SHARE_RW    = 1 << 6,   /* take a shared lock even read-write (share-rw=on) */
    BDEV_O_CHECK       = 1 << 7,   /* opened for check/repair: tolerate some corruption */
    BDEV_O_AIO_THREADS = 1 << 8,   /* aio=threads: don't use io_uring */
    BDEV_O_FORCE_SHARE = 1 << 9,   /* -U: read an image another process has open */
};

/* Flags for write/zeroes requests. */
enum {
    BDEV_REQ_MAY_UNMAP = 1 << 0,   /* write-zeroes may deallocate */
    BDEV_REQ_FUA       = 1 << 1,   /* forced unit access */
    BDEV_REQ_NO_FALLBACK = 1 << 2, /* write-zeroes: fail with -ENOTSUP rather than write zero buffers */
};

/* Block status bits, as in QEMU (map / convert -S decisions depend on them). */
enum {
    BDEV_STATUS_DATA      = 1 << 0,   /* reading returns data from this node or below */
    BDEV_STATUS_ZERO      = 1 << 1,   /* reads as zeroes */
    BDEV_STATUS_OFFSET    = 1 << 2,   /* *map is a valid host offset in *file */
    BDEV_STATUS_ALLOCATED = 1 << 3,   /* this node (not the backing chain) defines the content */
    BDEV_STATUS_COMPRESSED= 1 << 4,
};

struct bdev_open_opts {
    const char *filename;
    const char *format;           /* NULL: probe (warns like QEMU for probed raw) */
    int flags;                    /* BDEV_O_* */
    const char *backing_override; /* NULL: use the image's own backing file name */
    const char *backing_format_override;
};

int bdev_open(struct bdev **out, const struct bdev_open_opts *o, struct error *err);
/* Convenience: open filename with format (NULL to probe) and flags. */
int bdev_open_simple(struct bdev **out, const char *filename, const char *format,
                     int flags, struct error *err);
void bdev_close(struct bdev *bs);

int64_t bdev_getlength(struct bdev *bs);          /* virtual size in bytes */
/* Bytes the image occupies on the host (info's "disk size"): the driver's
 * answer, else its file node's. */
int64_t bdev_allocated_size(struct bdev *bs);
const char *bdev_format_name(struct bdev *bs);
const char *bdev_filename(struct bdev *bs);
bool bdev_is_read_only(struct bdev *bs);
struct bdev *bdev_backing(struct bdev *bs);       /* NULL if none or not opened */
struct bdev *bdev_file(struct bdev *bs);          /* protocol node under a format node */
const char *bdev_backing_filename(struct bdev *bs); /* as recorded in the image, or NULL */

int bdev_pread(struct bdev *bs, uint64_t offset, void *buf, uint64_t bytes);
int bdev_pwrite(struct bdev *bs, uint64_t offset, const void *buf, uint64_t bytes, int flags);
int bdev_preadv(struct bdev *bs, uint64_t offset, const struct iovec *iov, int iovcnt);
int bdev_pwritev(struct bdev *bs, uint64_t offset, const struct iovec *iov, int iovcnt, int flags);
int bdev_pwrite_zeroes(struct bdev *bs, uint64_t offset, uint64_t bytes, int flags);
int bdev_pdiscard(struct bdev *bs, uint64_t offset, uint64_t bytes);
int bdev_flush(struct bdev *bs);
/* Compressed write of whole clusters (qcow2): -ENOTSUP if the format can't. */
int bdev_pwrite_compressed(struct bdev *bs, uint64_t offset, const void *buf, uint64_t bytes);

/* Status of [offset, offset+bytes) in this node: returns BDEV_STATUS_* bits
 * for the first *pnum bytes (all of which share that status). If OFFSET is
 * set, *map is the host offset in *file. */
int bdev_block_status(struct bdev *bs, uint64_t offset, uint64_t bytes,
                      uint64_t *pnum, uint64_t *map, struct bdev **file);
/* Status through the whole backing chain: like bdev_block_status on the first
 * node that has the range allocated; *depth says which (0 = bs itself), and
 * unallocated everywhere reports ZERO with *depth = chain length. */
int bdev_block_status_above(struct bdev *bs, uint64_t offset, uint64_t bytes,
                            uint64_t *pnum, uint64_t *map, struct bdev **file, int *depth);

int bdev_truncate(struct bdev *bs, uint64_t size, bool shrink, const char *prealloc,
                  struct error *err);

/* Asynchronous requests. Each returns 0 when the request was accepted (cb
 * then runs exactly once) or -errno when it was refused up front (bad range,
 * read-only node, no memory), and then cb never runs.
 *
 * Which thread runs cb: never the caller's, never inside the bdev_aio_*
 * call. With io_uring (raw over file, or a file node, without
 * BDEV_O_AIO_THREADS) it is the node's completion thread, for reads, writes
 * and flushes it could take directly; everything else completes on one of
 * the node's worker threads. Callbacks of one node may therefore run on
 * several threads at once. cb gets ret as the synchronous call would return
 * it; it may submit new requests but must not call bdev_close, which waits
 * for every request in flight on the node and then stops its threads. */
typedef void bdev_cb(void *opaque, int ret);
int bdev_aio_preadv(struct bdev *bs, uint64_t offset, const struct iovec *iov, int iovcnt,
                    bdev_cb *cb, void *opaque);
int bdev_aio_pwritev(struct bdev *bs, uint64_t offset, const struct iovec *iov, int iovcnt,
                     int flags, bdev_cb *cb, void *opaque);
int bdev_aio_flush(struct bdev *bs, bdev_cb *cb, void *opaque);
int bdev_aio_pdiscard(struct bdev *bs, uint64_t offset, uint64_t bytes, bdev_cb *cb, void *opaque);
int bdev_aio_pwrite_zeroes(struct bdev *bs, uint64_t offset, uint64_t bytes, int flags,
                           bdev_cb *cb, void *opaque);

/* "io_uring" or "threads": the engine bdev_aio_* uses for this node. */
const char *bdev_aio_engine(struct bdev *bs);

/* Registered format drivers, probed in a fixed order with raw last. */
const struct block_driver *block_driver_find(const char *format_name);

#endif
