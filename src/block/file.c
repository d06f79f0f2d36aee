/* The "file" protocol driver: a host file or block device behind a posix fd.
 *
 * Reads past the end of the file return zeroes (formats grow their file by
 * writing past its end). Zeroes and discards punch or zero ranges with
 * fallocate where the filesystem can; block status asks SEEK_DATA/SEEK_HOLE.
 * Image locking follows QEMU's byte layout so the two refuse each other. */
#include "block/aio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "util/iov.h"

struct file_state {
    int fd;
    bool is_blk;                  /* block device: fixed size, no SEEK_DATA */
};

int file_host_fd(struct bdev *bs)
{
    return ((struct file_state *)bs->opaque)->fd;
}

/* ---- image locking -------------------------------------------------------
 * Each opener takes a shared lock on byte 100+p for every permission p it
 * uses, and on byte 200+p for every permission it will not share. A
 * permission it uses conflicts with anyone's lock on 200+p; one it refuses
 * to share conflicts with anyone's lock on 100+p. Same bytes as QEMU. */
enum { PERM_READ, PERM_WRITE, PERM_WRITE_UNCHANGED, PERM_RESIZE, PERM_COUNT };
enum { LOCK_PERM_BASE = 100, LOCK_SHARED_BASE = 200 };
static const char *const perm_names[PERM_COUNT] = {
    "consistent read", "write", "write unchanged", "resize",
};

static int lock_byte(int fd, short type, off_t byte)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };
    return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* True if another open file description holds a lock on byte. */
static bool byte_held_elsewhere(int fd, off_t byte)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };
    return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

static void perms_for_flags(int flags, unsigned *perm, unsigned *shared)
{
    *perm = 1u << PERM_READ;
    *shared = (1u << PERM_COUNT) - 1 - (1u << PERM_WRITE);
    if (flags & BDEV_O_RDWR)
        *perm |= 1u << PERM_WRITE;
    if (flags & (BDEV_O_SHARE_RW | BDEV_O_FORCE_SHARE))
        *shared = (1u << PERM_COUNT) - 1;
}

static int lock_conflict(int fd, const char *what, int p, const char *filename,
                         struct error *err)
{
    for (int i = 0; i < PERM_COUNT; i++) {
        lock_byte(fd, F_UNLCK, LOCK_PERM_BASE + i);
        lock_byte(fd, F_UNLCK, LOCK_SHARED_BASE + i);
    }
    return error_set(err, -EAGAIN, "Failed to get %s\"%s\" lock\n"
                     "Is another process using the image [%s]?", what, perm_names[p], filename);
}

int file_lock_apply(int fd, int flags, const char *filename, struct error *err)
{
    unsigned perm, shared;
    perms_for_flags(flags, &perm, &shared);
    for (int i = 0; i < PERM_COUNT; i++) {
        int ret = 0;
        if (perm & (1u << i))
            ret = lock_byte(fd, F_RDLCK, LOCK_PERM_BASE + i);
        if (!ret && !(shared & (1u << i)))
            ret = lock_byte(fd, F_RDLCK, LOCK_SHARED_BASE + i);
        if (ret == -ENOLCK || ret == -EOPNOTSUPP || ret == -EINVAL)
            return 0;             /* no OFD locks here: run unlocked, as QEMU's locking=auto */
        if (ret)
            return lock_conflict(fd, "", i, filename, err);
    }
    for (int i = 0; i < PERM_COUNT; i++) {
        if ((perm & (1u << i)) && byte_held_elsewhere(fd, LOCK_SHARED_BASE + i))
            return lock_conflict(fd, "", i, filename, err);
        if (!(shared & (1u << i)) && byte_held_elsewhere(fd, LOCK_PERM_BASE + i))
            return lock_conflict(fd, "shared ", i, filename, err);
    }
    return 0;
}

/* ---- open / close ------------------------------------------------------- */

/* The alignment O_DIRECT needs on fd (offsets, lengths and buffers alike):
 * what the kernel reports, else the smallest read size it accepts. */
static uint32_t file_probe_alignment(int fd)
{
#ifdef STATX_DIOALIGN
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
        uint32_t a = stx.stx_dio_offset_align;
        return stx.stx_dio_mem_align > a ? stx.stx_dio_mem_align : a;
    }
#endif
    void *buf;
    if (posix_memalign(&buf, 4096, 4096))
        return 4096;
    uint32_t align = 4096;
    for (uint32_t a = 512; a < 4096; a *= 2) {
        if (pread(fd, buf, a, 0) >= 0 || errno != EINVAL) {
            align = a;
            break;
        }
    }
    free(buf);
    return align;
}

static int file_open(struct bdev *bs, const struct bdev_open_opts *o, struct error *err)
{
    struct file_state *s = bs->opaque;
    int oflags = O_CLOEXEC | (bs->read_only ? O_RDONLY : O_RDWR);
    if (bs->flags & BDEV_O_NOCACHE)
        oflags |= O_DIRECT;
    s->fd = open(bs->filename, oflags);
    if (s->fd < 0)
        return error_set_errno(err, -errno, "Could not open '%s'", bs->filename);
    struct stat st;
    int ret = fstat(s->fd, &st) < 0 ? -errno : 0;
    if (!ret && S_ISDIR(st.st_mode))
        ret = -EISDIR;
    if (ret) {
        close(s->fd);
        return error_set_errno(err, ret, "Could not open '%s'", bs->filename);
    }
    s->is_blk = S_ISBLK(st.st_mode);
    if (!(bs->flags & BDEV_O_NO_LOCK)) {
        ret = file_lock_apply(s->fd, bs->flags, bs->filename, err);
        if (ret) {
            close(s->fd);
            return ret;
        }
    }
    if (bs->flags & BDEV_O_NOCACHE)
        bs->request_alignment = file_probe_alignment(s->fd);
    return 0;
}

static void file_close(struct bdev *bs)
{
    close(file_host_fd(bs));      /* also drops the OFD locks */
}

/* ---- data path ---------------------------------------------------------- */

/* The part of iov that starts `pos` bytes in, up to the end of its entry. */
static struct iovec iov_piece_at(const struct iovec *iov, int cnt, size_t pos)
{
    for (int i = 0; i < cnt; pos -= iov[i].iov_len, i++)
        if (pos < iov[i].iov_len)
            return (struct iovec){ (char *)iov[i].iov_base + pos, iov[i].iov_len - pos };
    return (struct iovec){ NULL, 0 };
}

/* One entry at a time with pread/pwrite, skipping `skip` bytes already
 * done; a read that meets the end of the file fills the rest with zeroes. */
static int file_rw_slow(int fd, uint64_t offset, const struct iovec *iov, int cnt,
                        size_t skip, bool write)
{
    size_t total = iov_size(iov, cnt);
    for (size_t done = skip; done < total;) {
        struct iovec piece = iov_piece_at(iov, cnt, done);
        ssize_t n = write ? pwrite(fd, piece.iov_base, piece.iov_len, offset + done)
                          : pread(fd, piece.iov_base, piece.iov_len, offset + done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0) {
            if (write)
                return -EIO;
            iov_memset(iov, cnt, done, 0, total - done);
            return 0;
        }
        done += n;
    }
    return 0;
}

static int file_rw(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt, bool write)
{
    int fd = file_host_fd(bs);
    size_t total = iov_size(iov, cnt);
    ssize_t n = -1;
    if (cnt <= IOV_MAX)
        n = write ? pwritev(fd, iov, cnt, offset) : preadv(fd, iov, cnt, offset);
    if (n >= 0 && (size_t)n == total)
        return 0;
    if (n < 0 && errno != EINTR && cnt <= IOV_MAX)
        return -errno;
    /* Short read at the end of the file: the rest is zeroes. (Don't read on
     * from an unaligned offset: O_DIRECT would refuse it.) */
    struct stat st;
    if (n >= 0 && !write && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        offset + n >= (uint64_t)st.st_size) {
        iov_memset(iov, cnt, n, 0, total - n);
        return 0;
    }
    return file_rw_slow(fd, offset, iov, cnt, n > 0 ? n : 0, write);
}

static int file_preadv(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt)
{
    return file_rw(bs, offset, iov, cnt, false);
}

static int file_pwritev(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt,
                        int flags)
{
    return file_rw(bs, offset, iov, cnt, true);
}

static int64_t file_getlength(struct bdev *bs)
{
    struct file_state *s = bs->opaque;
    if (s->is_blk) {
        uint64_t size;
        return ioctl(s->fd, BLKGETSIZE64, &size) < 0 ? -errno : (int64_t)size;
    }
    struct stat st;
    return fstat(s->fd, &st) < 0 ? -errno : st.st_size;
}

static int64_t file_allocated_size(struct bdev *bs)
{
    struct stat st;
    return fstat(file_host_fd(bs), &st) < 0 ? -errno : (int64_t)st.st_blocks * 512;
}

static int fallocate_err(int fd, int mode, uint64_t offset, uint64_t bytes)
{
    while (fallocate(fd, mode, offset, bytes) < 0) {
        if (errno != EINTR)
            return (errno == EOPNOTSUPP || errno == ENOSYS) ? -ENOTSUP : -errno;
    }
    return 0;
}

static int file_pwrite_zeroes(struct bdev *bs, uint64_t offset, uint64_t bytes, int flags)
{
    int fd = file_host_fd(bs);
    int64_t len = file_getlength(bs);
    if (len < 0)
        return len;
    int ret = -ENOTSUP;
    if ((flags & BDEV_REQ_MAY_UNMAP) && (uint64_t)len >= offset + bytes)
        ret = fallocate_err(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, bytes);
    if (ret == -ENOTSUP)
        ret = fallocate_err(fd, FALLOC_FL_ZERO_RANGE, offset, bytes);
    if (ret == -ENOTSUP && offset >= (uint64_t)len && !((struct file_state *)bs->opaque)->is_blk)
        ret = ftruncate(fd, offset + bytes) < 0 ? -errno : 0;   /* past EOF reads as zero */
    return ret;
}

static int file_pdiscard(struct bdev *bs, uint64_t offset, uint64_t bytes)
{
    int64_t len = file_getlength(bs);
    if (len < 0)
        return len;
    if (offset >= (uint64_t)len)
        return 0;
    if (bytes > (uint64_t)len - offset)
        bytes = len - offset;
    return fallocate_err(file_host_fd(bs), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                         offset, bytes);
}

static int file_flush(struct bdev *bs)
{
    return fdatasync(file_host_fd(bs)) < 0 ? -errno : 0;
}

static int file_block_status(struct bdev *bs, uint64_t offset, uint64_t bytes,
                             uint64_t *pnum, uint64_t *map, struct bdev **file)
{
    struct file_state *s = bs->opaque;
    *map = offset;
    *file = bs;
    *pnum = bytes;
    if (s->is_blk)
        return BDEV_STATUS_DATA | BDEV_STATUS_OFFSET;
    off_t data = lseek(s->fd, offset, SEEK_DATA);
    if (data < 0)   /* ENXIO: only a hole up to EOF; else no SEEK_DATA here */
        return errno == ENXIO ? BDEV_STATUS_ZERO | BDEV_STATUS_OFFSET
                              : BDEV_STATUS_DATA | BDEV_STATUS_OFFSET;
    if ((uint64_t)data > offset) {
        if ((uint64_t)data - offset < bytes)
            *pnum = data - offset;
        return BDEV_STATUS_ZERO | BDEV_STATUS_OFFSET;
    }
    off_t hole = lseek(s->fd, offset, SEEK_HOLE);
    if (hole > (off_t)offset && (uint64_t)hole - offset < bytes)
        *pnum = hole - offset;
    return BDEV_STATUS_DATA | BDEV_STATUS_OFFSET;
}

/* ---- size changes and creation ----------------------------------------- */

enum prealloc { PREALLOC_OFF, PREALLOC_FALLOC, PREALLOC_FULL };

static int parse_prealloc(const char *s, enum prealloc *out, struct error *err)
{
    if (!s || !strcmp(s, "off"))
        *out = PREALLOC_OFF;
    else if (!strcmp(s, "falloc"))
        *out = PREALLOC_FALLOC;
    else if (!strcmp(s, "full"))
        *out = PREALLOC_FULL;
    else
        return error_set(err, -ENOTSUP, "Unsupported preallocation mode '%s'", s);
    return 0;
}

/* Write zeroes over [from, to) in 4 KiB-aligned chunks (fine for O_DIRECT);
 * the partial block before `from` is already allocated by the old tail. */
static int file_write_zeroes_full(int fd, uint64_t from, uint64_t to)
{
    enum { CHUNK = 1 << 20 };
    void *buf;
    if (posix_memalign(&buf, 4096, CHUNK))
        return -ENOMEM;
    memset(buf, 0, CHUNK);
    int ret = 0;
    uint64_t end = (to + 4095) & ~4095ULL;
    for (uint64_t pos = (from + 4095) & ~4095ULL; pos < end && !ret;) {
        size_t n = end - pos < CHUNK ? end - pos : CHUNK;
        ssize_t w = pwrite(fd, buf, n, pos);
        if (w < 0 && errno != EINTR)
            ret = -errno;
        else if (w > 0)
            pos += w;
    }
    free(buf);
    if (!ret && ftruncate(fd, to) < 0)   /* the last chunk may overshoot */
        ret = -errno;
    return ret;
}

/* Grow (or shrink) fd from cur to size bytes, preallocating the new part. */
static int file_resize_fd(int fd, uint64_t cur, uint64_t size, enum prealloc mode,
                          const char *filename, struct error *err)
{
    int ret = ftruncate(fd, size) < 0 ? -errno : 0;
    if (!ret && size > cur && mode == PREALLOC_FALLOC)
        ret = -posix_fallocate(fd, cur, size - cur);
    if (!ret && size > cur && mode == PREALLOC_FULL)
        ret = file_write_zeroes_full(fd, cur, size);
    if (ret)
        return error_set_errno(err, ret, "Could not resize file '%s'", filename);
    return 0;
}

static int file_truncate(struct bdev *bs, uint64_t size, bool shrink, const char *prealloc,
                         struct error *err)
{
    struct file_state *s = bs->opaque;
    enum prealloc mode;
    int ret = parse_prealloc(prealloc, &mode, err);
    if (ret)
        return ret;
    int64_t cur = file_getlength(bs);
    if (cur < 0)
        return error_set_errno(err, cur, "Could not get the size of '%s'", bs->filename);
    if (s->is_blk) {
        if (size > (uint64_t)cur)
            return error_set(err, -EINVAL, "Cannot grow device files");
        return 0;
    }
    if (size < (uint64_t)cur && !shrink)
        return error_set(err, -EINVAL, "Shrinking '%s' from %lld to %llu bytes was not "
                         "asked for", bs->filename, (long long)cur, (unsigned long long)size);
    return file_resize_fd(s->fd, cur, size, mode, bs->filename, err);
}

static int file_create(const char *filename, uint64_t size, struct opts *o, struct error *err)
{
    enum prealloc mode;
    int ret = parse_prealloc(o ? opts_get(o, "preallocation") : NULL, &mode, err);
    if (ret)
        return ret;
    /* No O_TRUNC: an image someone has open must be refused, not emptied. */
    int fd = open(filename, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return error_set_errno(err, -errno, "Could not create '%s'", filename);
    ret = file_lock_apply(fd, BDEV_O_RDWR, filename, err);
    if (!ret && ftruncate(fd, 0) < 0)
        ret = error_set_errno(err, -errno, "Could not resize file '%s'", filename);
    if (!ret)
        ret = file_resize_fd(fd, 0, size, mode, filename, err);
    if (close(fd) < 0 && !ret)
        ret = error_set_errno(err, -errno, "Could not close '%s'", filename);
    return ret;
}

static const struct create_opt_desc file_create_opts[] = {
    { "size", "size", "Virtual disk size" },
    { "preallocation", "str", "Preallocation mode (allowed values: off, falloc, full)" },
    { NULL },
};

const struct block_driver bdrv_file = {
    .name = "file",
    .state_size = sizeof(struct file_state),
    .is_protocol = true,
    .open = file_open,
    .close = file_close,
    .preadv = file_preadv,
    .pwritev = file_pwritev,
    .pwrite_zeroes = file_pwrite_zeroes,
    .pdiscard = file_pdiscard,
    .flush = file_flush,
    .block_status = file_block_status,
    .getlength = file_getlength,
    .allocated_size = file_allocated_size,
    .truncate = file_truncate,
    .create = file_create,
    .create_opts = file_create_opts,
};
