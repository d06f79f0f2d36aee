/* libFuzzer target: the input is a qcow2 image file. Open it read-only
 * through the block layer (no backing file: the input names it), read some
 * ranges, walk block status, list snapshots and run check without repair.
 * Bad images must fail with an error, never crash, hang or leak. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "block/block.h"
#include "block/block_int.h"
#include "block/qcow2-meta.h"

#define MAX_READ (256u << 10)

static int image_fd(const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (fd < 0)
        fd = memfd_create("fuzz-qcow2", 0);
    if (fd < 0 || ftruncate(fd, 0) < 0)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return fd;
}

static void read_some(struct bdev *bs, uint8_t *buf)
{
    int64_t len = bdev_getlength(bs);
    if (len <= 0)
        return;
    uint64_t starts[3] = { 0, (uint64_t)len / 2, (uint64_t)len > MAX_READ ? len - MAX_READ : 0 };
    for (int i = 0; i < 3; i++) {
        uint64_t n = (uint64_t)len - starts[i];
        bdev_pread(bs, starts[i], buf, n < MAX_READ ? n : MAX_READ);
    }
}

static void walk_status(struct bdev *bs)
{
    int64_t len = bdev_getlength(bs);
    uint64_t off = 0, pnum, map;
    struct bdev *file;
    for (int i = 0; i < 64 && len > 0 && off < (uint64_t)len; i++) {
        int ret = bdev_block_status(bs, off, (uint64_t)len - off, &pnum, &map, &file);
        if (ret < 0 || pnum == 0)
            break;
        off += pnum;
    }
}

static void exercise(const char *path, int flags, uint8_t *buf)
{
    struct bdev *bs = NULL;
    struct error err = { 0 };
    if (bdev_open_simple(&bs, path, "qcow2", flags, &err) < 0) {
        if (!err.msg[0])            /* every refusal names its reason */
            abort();
        return;
    }
    read_some(bs, buf);
    walk_status(bs);
    struct bdev_snapshot *sn = NULL;
    if (bs->drv->snapshot_list && bs->drv->snapshot_list(bs, &sn) >= 0)
        free(sn);
    struct bdev_check_result res;
    if (bs->drv->check)
        bs->drv->check(bs, &res, 0, NULL);
    bdev_close(bs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *buf;
    if (!buf && !(buf = malloc(MAX_READ)))
        return 0;
    int fd = image_fd(data, size);
    if (fd < 0)
        return 0;
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    exercise(path, BDEV_O_NO_BACKING | BDEV_O_NO_LOCK, buf);
    exercise(path, BDEV_O_NO_BACKING | BDEV_O_NO_LOCK | BDEV_O_CHECK, buf);
    return 0;
}
