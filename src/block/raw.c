/* The "raw" format: guest bytes are host-file bytes, one to one.
 *
 * Every call passes to the file node underneath. The one thing raw adds is
 * QEMU's guard for probed images: if nobody said "raw", a guest could write
 * a qcow2 header into sector 0 and the next probe would trust it (and its
 * backing file name, reading any host file). Such writes are refused. */
#include "block/aio.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include "util/iov.h"

enum { RAW_PROBE_SECTOR = 512 };

struct raw_state {
    bool probed;                  /* opened without a format name */
    _Atomic int64_t size;         /* cached length of the file node */
};

static int raw_probe(const uint8_t *buf, int len, const char *filename)
{
    return 1;                     /* anything is raw: the last resort */
}

static int raw_open(struct bdev *bs, const struct bdev_open_opts *o, struct error *err)
{
    struct raw_state *s = bs->opaque;
    s->probed = !o->format;
    int64_t size = bdev_getlength(bs->file);
    if (size < 0)
        return error_set_errno(err, size, "Could not get the size of '%s'", bs->filename);
    s->size = size;
    return 0;
}

bool raw_write_is_passthrough(struct bdev *bs, uint64_t offset)
{
    struct raw_state *s = bs->opaque;
    return !s->probed || offset >= RAW_PROBE_SECTOR;
}

/* Refuse a write that would make sector 0 probe as another format. */
static int raw_vet_sector0(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt)
{
    uint8_t sector[RAW_PROBE_SECTOR];
    int ret = bdev_pread(bs->file, 0, sector, sizeof(sector));
    if (ret < 0)
        return ret;
    size_t n = iov_size(iov, cnt);
    if (n > sizeof(sector) - offset)
        n = sizeof(sector) - offset;
    iov_to_buf(iov, cnt, 0, sector + offset, n);
    return block_probe(sector, sizeof(sector), bs->filename) == &bdrv_raw ? 0 : -EPERM;
}

static int raw_preadv(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt)
{
    return bdev_preadv(bs->file, offset, iov, cnt);
}

static int raw_pwritev(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt,
                       int flags)
{
    if (!raw_write_is_passthrough(bs, offset)) {
        int ret = raw_vet_sector0(bs, offset, iov, cnt);
        if (ret < 0)
            return ret;
    }
    return bdev_pwritev(bs->file, offset, iov, cnt, flags & ~BDEV_REQ_FUA);
}

static int raw_pwrite_zeroes(struct bdev *bs, uint64_t offset, uint64_t bytes, int flags)
{
    return bdev_pwrite_zeroes(bs->file, offset, bytes, flags & ~BDEV_REQ_FUA);
}

static int raw_pdiscard(struct bdev *bs, uint64_t offset, uint64_t bytes)
{
    return bdev_pdiscard(bs->file, offset, bytes);
}

static int raw_block_status(struct bdev *bs, uint64_t offset, uint64_t bytes,
                            uint64_t *pnum, uint64_t *map, struct bdev **file)
{
    int ret = bdev_block_status(bs->file, offset, bytes, pnum, map, file);
    return ret < 0 ? ret : ret | BDEV_STATUS_ALLOCATED;
}

static int64_t raw_getlength(struct bdev *bs)
{
    return ((struct raw_state *)bs->opaque)->size;
}

static int64_t raw_allocated_size(struct bdev *bs)
{
    return bdev_allocated_size(bs->file);
}

static int raw_truncate(struct bdev *bs, uint64_t size, bool shrink, const char *prealloc,
                        struct error *err)
{
    struct raw_state *s = bs->opaque;
    int ret = bdev_truncate(bs->file, size, shrink, prealloc, err);
    int64_t now = bdev_getlength(bs->file);
    if (now >= 0)
        s->size = now;
    return ret;
}

static int raw_create(const char *filename, uint64_t size, struct opts *o, struct error *err)
{
    return bdrv_file.create(filename, size, o, err);
}

static int raw_get_info(struct bdev *bs, struct bdev_info *info)
{
    memset(info, 0, sizeof(*info));
    return 0;
}

static const struct create_opt_desc raw_create_opts[] = {
    { "size", "size", "Virtual disk size" },
    { "preallocation", "str", "Preallocation mode (allowed values: off, falloc, full)" },
    { NULL },
};

const struct block_driver bdrv_raw = {
    .name = "raw",
    .state_size = sizeof(struct raw_state),
    .probe = raw_probe,
    .open = raw_open,
    .preadv = raw_preadv,
    .pwritev = raw_pwritev,
    .pwrite_zeroes = raw_pwrite_zeroes,
    .pdiscard = raw_pdiscard,
    .block_status = raw_block_status,
    .getlength = raw_getlength,
    .allocated_size = raw_allocated_size,
    .truncate = raw_truncate,
    .create = raw_create,
    .create_opts = raw_create_opts,
    .get_info = raw_get_info,
};
