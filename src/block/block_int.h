/* What a block driver (a format or protocol) implements, and the node state
 * the generic layer (block.c) keeps for it. Only src/block/ includes this. */
#ifndef QUOKKA_BLOCK_BLOCK_INT_H
#define QUOKKA_BLOCK_BLOCK_INT_H

#include <pthread.h>
#include <stdio.h>
#include "block/block.h"
#include "util/opts.h"

struct json_object;

struct bdev {
    const struct block_driver *drv;
    void *opaque;                 /* driver state, drv->state_size bytes */
    char *filename;
    int flags;                    /* BDEV_O_* as opened */
    bool read_only;
    struct bdev *file;            /* protocol node under a format node, or NULL */
    struct bdev *backing;         /* opened backing node, or NULL */
    char *backing_file;           /* as recorded in the image (qcow2), or NULL */
    char *backing_format;
    uint32_t request_alignment;   /* 1, or the O_DIRECT alignment of the host file */
    struct bdev_aio *aio;         /* async engine for this node (block/aio.c) */
};

struct bdev_snapshot {
    char id[128];
    char name[256];
    uint64_t vm_state_size;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t icount;              /* -1 if not recorded */
};

/* Result of check, with the fields qemu-img check prints and returns. */
struct bdev_check_result {
    int corruptions, leaks, check_errors;
    int corruptions_fixed, leaks_fixed;
    int64_t image_end_offset;
    uint64_t total_clusters, allocated_clusters, fragmented_clusters, compressed_clusters;
};
enum { BDEV_FIX_LEAKS = 1, BDEV_FIX_ERRORS = 2 };

/* Extra facts for `info`. */
struct bdev_info {
    uint64_t cluster_size;        /* 0 if the format has none */
    bool dirty;
    struct json_object *format_specific; /* {"type": ..., "data": {...}} or NULL; caller frees */
};

/* One -o option a format accepts at create/amend time (for `-o help`). */
struct create_opt_desc {
    const char *name;
    const char *type;             /* "size", "bool", "str", "num" */
    const char *help;
};

struct block_driver {
    const char *name;
    size_t state_size;
    bool is_protocol;             /* "file": opens the host path itself */
    /* preadv reads unallocated ranges from bs->backing itself, so block.c
     * needn't split reads by block status first (saves a lookup per read). */
    bool reads_backing;

    /* Probe score 0..100 for the first bytes of a file. */
    int (*probe)(const uint8_t *buf, int len, const char *filename);
    /* Format drivers are called with bs->file already open. */
    int (*open)(struct bdev *bs, const struct bdev_open_opts *o, struct error *err);
    void (*close)(struct bdev *bs);

    int (*preadv)(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt);
    int (*pwritev)(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt, int flags);
    int (*pwrite_zeroes)(struct bdev *bs, uint64_t offset, uint64_t bytes, int flags);
    int (*pdiscard)(struct bdev *bs, uint64_t offset, uint64_t bytes);
    int (*flush)(struct bdev *bs);
    int (*pwrite_compressed)(struct bdev *bs, uint64_t offset, const void *buf, uint64_t bytes);
    int (*block_status)(struct bdev *bs, uint64_t offset, uint64_t bytes,
                        uint64_t *pnum, uint64_t *map, struct bdev **file);
    int64_t (*getlength)(struct bdev *bs);
    /* Bytes the image occupies on the host (info's "disk size"). */
    int64_t (*allocated_size)(struct bdev *bs);
    int (*truncate)(struct bdev *bs, uint64_t size, bool shrink, const char *prealloc,
                    struct error *err);

    /* Create an image; the driver consumes the -o keys it knows (opts_get
     * marks them), the caller rejects leftovers. */
    int (*create)(const char *filename, uint64_t size, struct opts *o, struct error *err);
    const struct create_opt_desc *create_opts;
    int (*amend)(struct bdev *bs, struct opts *o, bool force, struct error *err);
    int (*get_info)(struct bdev *bs, struct bdev_info *info);
    int (*check)(struct bdev *bs, struct bdev_check_result *res, int fix, FILE *log);
    /* Rewrite the recorded backing file name/format (rebase, commit). */
    int (*change_backing_file)(struct bdev *bs, const char *file, const char *fmt);
    /* Drop all data (commit -d keeps it; used by commit when emptying). */
    int (*make_empty)(struct bdev *bs);

    int (*snapshot_create)(struct bdev *bs, const char *name, struct error *err);
    int (*snapshot_goto)(struct bdev *bs, const char *id_or_name, struct error *err);
    int (*snapshot_delete)(struct bdev *bs, const char *id_or_name, struct error *err);
    int (*snapshot_list)(struct bdev *bs, struct bdev_snapshot **list); /* returns count */
};

/* Add a format driver ahead of the built-in ones in probing order (for
 * tests and out-of-tree formats); call before opening images. */
int block_driver_register(const struct block_driver *drv);

/* Contract with drivers, as block.c keeps it:
 * - open: bs->file is open, bs->filename/flags/read_only are set, bs->opaque
 *   is zeroed state_size bytes. On failure close is NOT called: free what
 *   open allocated. A format with a backing file sets bs->backing_file (and
 *   bs->backing_format) to malloc'd strings; block.c opens the backing
 *   chain after open returns and frees both strings after close.
 * - preadv on a node with a backing node: block.c calls block_status first
 *   and calls preadv only for ranges reported ALLOCATED, DATA or ZERO; the
 *   rest it reads from bs->backing (zeroes past its end), unless the driver
 *   sets reads_backing because it does that itself.
 * - flush: block.c flushes bs->file after the driver's flush returns.
 * - FUA and writethrough are handled by block.c (a flush after the write);
 *   drivers never see BDEV_REQ_FUA.
 * - block_status: return DATA/ZERO/OFFSET bits for the first *pnum bytes,
 *   and ALLOCATED where this node (not its backing chain) defines them;
 *   block.c adds ALLOCATED on protocol nodes, and ZERO for unallocated
 *   ranges with nothing below. */
extern const struct block_driver bdrv_file;
extern const struct block_driver bdrv_raw;
extern const struct block_driver bdrv_qcow2;

#endif
