/* qcow2 (versions 2 and 3): on-disk layout and the driver's internal API.
 *
 * Files, split by on-disk structure:
 *   qcow2.c           header, extensions, open/close/create/truncate, info, ops table
 *   qcow2-cluster.c   L1/L2 mapping: lookup, allocation, COW, zero, discard, status
 *   qcow2-refcount.c  refcount table and blocks, cluster allocation and freeing
 *   qcow2-cache.c     the metadata table cache shared by L2 tables and refcount blocks
 *   qcow2-compress.c  zlib / zstd compressed clusters
 *   qcow2-check.c, qcow2-snapshot.c, qcow2-amend.c  (check/repair, snapshots, amend, measure)
 *
 * Locking: every call below expects s->lock held unless it says otherwise.
 *
 * Crash safety. The on-disk image must always satisfy
 *     refcount(cluster) >= number of on-disk references to it
 * so that a kill at any moment leaves an image that check calls clean or
 * leaking, never corrupt. Hence:
 *   - increments may be written at any time (refcount blocks are written
 *     before any L2/L1/header that references the new cluster, with a flush
 *     of the file node in between);
 *   - decrements are NEVER applied directly: qcow2_free_clusters() queues
 *     them and qcow2_flush_metadata() applies them only after the L2 tables,
 *     L1 and header that dropped the reference are on disk;
 *   - data is written before the L2 entry that points to it (the same flush
 *     that orders refcounts before L2 tables also orders data before them);
 *   - a new L2 table (or refcount block, L1/refcount table) is written and
 *     flushed before the L1 entry (table entry, header) that points to it. */
#ifndef QUOKKA_BLOCK_QCOW2_H
#define QUOKKA_BLOCK_QCOW2_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "block/block_int.h"

/* ---- On-disk constants ---------------------------------------------- */

#define QCOW2_MAGIC               0x514649fbu   /* "QFI\xfb" */
#define QCOW2_V2_HEADER_SIZE      72
#define QCOW2_V3_HEADER_SIZE      104            /* without compression_type */
#define QCOW2_V3_HEADER_SIZE_CT   112            /* with compression_type, padded */
#define QCOW2_MIN_CLUSTER_BITS    9
#define QCOW2_MAX_CLUSTER_BITS    21
#define QCOW2_MAX_L1_SIZE         (32u << 20)    /* bytes, as QEMU limits it */
#define QCOW2_MAX_REFTABLE_SIZE   (8u << 20)     /* bytes */
#define QCOW2_MAX_BACKING_NAME    1023
#define QCOW2_SECTOR              512

/* Header extension types. */
#define QCOW2_EXT_END             0x00000000u
#define QCOW2_EXT_BACKING_FORMAT  0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE   0x6803f857u
#define QCOW2_EXT_BITMAPS         0x23852875u
#define QCOW2_EXT_CRYPTO          0x0537be77u
#define QCOW2_EXT_DATA_FILE       0x44415441u

/* Feature bits. */
#define QCOW2_INCOMPAT_DIRTY      (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT    (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE  (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2      (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN      (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | \
                                   QCOW2_INCOMPAT_COMPRESSION | QCOW2_INCOMPAT_EXTL2)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS   (1ull << 0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW (1ull << 1)

/* Header field offsets (for the small in-place header updates). */
#define QCOW2_HDR_BACKING_OFFSET  8
#define QCOW2_HDR_SIZE            24
#define QCOW2_HDR_L1_SIZE         36    /* l1_size (4) + l1_table_offset (8) */
#define QCOW2_HDR_REFTABLE        48    /* offset (8) + clusters (4) */
#define QCOW2_HDR_NB_SNAPSHOTS    60    /* nb_snapshots (4) + snapshots_offset (8) */
#define QCOW2_HDR_INCOMPAT        72

enum { QCOW2_COMPRESSION_ZLIB = 0, QCOW2_COMPRESSION_ZSTD = 1 };

/* L1 / L2 / refcount table entries. */
#define QCOW2_OFLAG_COPIED        (1ull << 63)   /* refcount is exactly one */
#define QCOW2_OFLAG_COMPRESSED    (1ull << 62)
#define QCOW2_OFLAG_ZERO          (1ull << 0)    /* v3 standard L2 entries only */
#define QCOW2_L1E_OFFSET_MASK     0x00fffffffffffe00ull
#define QCOW2_L2E_OFFSET_MASK     0x00fffffffffffe00ull
#define QCOW2_REFT_OFFSET_MASK    0xfffffffffffffe00ull
#define QCOW2_SUBCLUSTERS         32   /* per cluster with extended L2 entries */

/* On-disk header, host byte order once parsed. */
struct qcow2_header {
    uint32_t magic;
    uint32_t version;
    uint64_t backing_file_offset;
    uint32_t backing_file_size;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    /* v3 */
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t refcount_order;
    uint32_t header_length;
    uint8_t compression_type;
};

/* What a guest (sub)cluster maps to. */
enum qcow2_cluster_type {
    QCOW2_CL_UNALLOCATED,   /* read from backing, or zeroes */
    QCOW2_CL_ZERO_PLAIN,    /* reads zero, no host cluster */
    QCOW2_CL_ZERO_ALLOC,    /* reads zero, host cluster preallocated */
    QCOW2_CL_NORMAL,        /* data at a host offset */
    QCOW2_CL_COMPRESSED,    /* compressed data (whole cluster) */
    QCOW2_CL_UNALLOC_ALLOC, /* extended L2: subcluster unallocated, host cluster set */
};

/* A header extension we don't interpret, kept so header rewrites preserve it. */
struct qcow2_unknown_ext {
    uint32_t type;
    uint32_t len;
    uint8_t *data;
    struct qcow2_unknown_ext *next;
};

/* One internal snapshot as in the snapshot table (qcow2-snapshot.c reads
 * and writes the table; the core only keeps the array). */
struct qcow2_snapshot {
    uint64_t l1_table_offset;
    uint32_t l1_size;
    char *id_str;
    char *name;
    uint64_t disk_size;
    uint64_t vm_state_size;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t icount;               /* -1 if absent */
    uint32_t extra_data_size;      /* as read; unknown extra bytes preserved below */
    uint8_t *unknown_extra;        /* extra data beyond the fields we know, or NULL */
    uint32_t unknown_extra_size;
};

/* ---- Metadata table cache (qcow2-cache.c) ---------------------------- */

struct qcow2_cache_entry {
    uint64_t offset;               /* host offset of the table, 0 if slot empty */
    int ref;                       /* users holding the table */
    bool dirty;
    bool used_recently;            /* clock bit */
    int hash_next;                 /* next slot in the same hash bucket, -1 ends */
};

struct qcow2_cache {
    struct qcow2_cache_entry *e;
    uint8_t *mem;                  /* n * table_size bytes, tables stored big-endian */
    int n;
    int *buckets;                  /* nbuckets heads, -1 empty */
    int nbuckets;
    int clock;
    size_t table_size;
    /* Flushed (and the file node synced) before any dirty table of this
     * cache is written: the L2 cache depends on the refcount cache. */
    struct qcow2_cache *depends;
};

/* ---- Driver state (bs->opaque) --------------------------------------- */

struct qcow2_state {
    pthread_mutex_t lock;          /* all metadata below */
    /* Held shared by data I/O done outside `lock` on host clusters it mapped;
     * taken exclusive before queued frees are applied, so a cluster is never
     * reused while a request still reads or writes it. */
    pthread_rwlock_t io_lock;
    struct bdev *bs;

    struct qcow2_header hdr;       /* as on disk, kept current */
    unsigned cluster_bits;
    uint64_t cluster_size;
    unsigned l2_bits;              /* log2(entries per L2 table) */
    uint64_t l2_size;              /* entries per L2 table */
    bool extended_l2;
    unsigned l2_entry_size;        /* 8 or 16 */
    uint64_t subcluster_size;      /* cluster_size / 32 with extended L2, else cluster_size */
    unsigned csize_shift;          /* compressed descriptor: sector-count field position */
    uint64_t csize_mask;
    uint64_t cluster_offset_mask;  /* compressed descriptor: offset field mask */

    uint64_t *l1_table;            /* host byte order, l1_size entries */
    uint32_t l1_size;
    uint64_t l1_table_offset;

    unsigned refcount_order;
    unsigned refcount_bits;
    uint64_t refcount_max;
    unsigned rb_bits;              /* log2(refcounts per refcount block) */
    uint64_t *refcount_table;      /* host byte order */
    uint64_t refcount_table_size;  /* entries */
    uint64_t refcount_table_offset;
    uint64_t free_cluster_index;   /* search hint: no free cluster below it */
    uint64_t alloc_end;            /* one past the highest cluster ever allocated */

    struct qcow2_cache l2_cache;
    struct qcow2_cache rb_cache;

    /* Deferred refcount decrements (see the crash-safety rule above). */
    struct qcow2_pending_free { uint64_t offset, bytes; } *pending;
    int n_pending, cap_pending;

    /* Requests block/aio.c mapped with qcow2_aio_map and runs on the host
     * file itself: like io_lock readers, they keep their clusters from
     * being freed (qcow2_io_quiesce waits for them). */
    pthread_mutex_t pin_lock;
    pthread_cond_t pin_cond;
    int pins;

    /* Allocating writes whose data is being written with `lock` dropped. */
    struct qcow2_inflight { uint64_t start, end; struct qcow2_inflight *next; } *inflight;
    pthread_cond_t inflight_cond;

    /* Compressed writes are packed into a partly used host cluster. */
    uint64_t free_byte_offset;     /* 0 if none */

    int compression_type;
    bool lazy_refcounts;
    bool dirty_on_disk;            /* we set the dirty bit (lazy refcounts) */
    bool corrupt;                  /* corrupt bit seen or set: no writes */
    bool read_only;
    uint64_t unknown_autoclear;    /* cleared on rw open */

    char *backing_file;
    char *backing_format;
    struct qcow2_unknown_ext *unknown_exts;

    struct qcow2_snapshot *snapshots;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
};

static inline struct qcow2_state *qcow2_state(struct bdev *bs) { return bs->opaque; }
static inline uint64_t qcow2_cluster_index(struct qcow2_state *s, uint64_t off)
{
    return off >> s->cluster_bits;
}
static inline uint64_t qcow2_align_up(struct qcow2_state *s, uint64_t off)
{
    return (off + s->cluster_size - 1) & ~(s->cluster_size - 1);
}
static inline uint64_t qcow2_offset_in_cluster(struct qcow2_state *s, uint64_t off)
{
    return off & (s->cluster_size - 1);
}
/* Entries needed in the L1 table for a virtual size. */
static inline uint64_t qcow2_l1_entries(struct qcow2_state *s, uint64_t size)
{
    uint64_t per_l1 = s->cluster_size << s->l2_bits;
    return (size + per_l1 - 1) / per_l1;
}

/* ---- qcow2.c: header ----------------------------------------------------- */

/* Rewrite the whole first cluster (header, extensions, backing name) from s. */
int qcow2_write_header(struct qcow2_state *s);
/* Set or clear the dirty / corrupt bits on disk (synced). */
int qcow2_mark_dirty(struct qcow2_state *s);
int qcow2_mark_clean(struct qcow2_state *s);
/* Flag the image corrupt (message on stderr, corrupt bit set, no more writes);
 * returns -EIO for the caller to pass up. */
int qcow2_signal_corruption(struct qcow2_state *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Before refcounts fall: wait until no data I/O (io_lock readers, pinned
 * requests of qcow2_aio_map) can still touch a cluster; resume undoes it. */
void qcow2_io_quiesce(struct qcow2_state *s);
void qcow2_io_resume(struct qcow2_state *s);
/* fdatasync on the file node (a write barrier). */
int qcow2_barrier(struct qcow2_state *s);
/* Persist everything in order: refcount blocks, sync, L2 tables, sync, then
 * apply queued frees. Leaves no dirty metadata behind. */
int qcow2_flush_metadata(struct qcow2_state *s);

/* ---- qcow2-cache.c -------------------------------------------------------- */

int qcow2_cache_init(struct qcow2_cache *c, int n, size_t table_size);
void qcow2_cache_destroy(struct qcow2_cache *c);
/* Get the table at host offset `offset`, reading it if not cached. The
 * pointer stays valid until qcow2_cache_put. */
int qcow2_cache_get(struct qcow2_state *s, struct qcow2_cache *c, uint64_t offset, void **table);
/* Like get, but don't read: the caller fills the table (new tables). */
int qcow2_cache_get_empty(struct qcow2_state *s, struct qcow2_cache *c, uint64_t offset,
                          void **table);
void qcow2_cache_put(struct qcow2_cache *c, void **table);
/* True if the table at `offset` is in the cache (a get would not read). */
bool qcow2_cache_has(struct qcow2_cache *c, uint64_t offset);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, void *table);
/* Write every dirty table (its dependency first); no sync of its own. */
int qcow2_cache_flush(struct qcow2_state *s, struct qcow2_cache *c);
/* Forget a cached table without writing it (its cluster was freed). */
void qcow2_cache_discard(struct qcow2_cache *c, uint64_t offset);
/* Forget everything (after snapshot_goto and the like); dirty tables are lost. */
void qcow2_cache_empty(struct qcow2_cache *c);

/* ---- qcow2-refcount.c ---------------------------------------------------- */

int qcow2_refcount_init(struct qcow2_state *s);     /* load the refcount table */
void qcow2_refcount_close(struct qcow2_state *s);
/* Refcount of the host cluster with index `cluster`; 0 beyond the table. */
int qcow2_get_refcount(struct qcow2_state *s, uint64_t cluster, uint64_t *refcount);
/* Set a refcount directly (check/repair); creates the refcount block if needed. */
int qcow2_set_refcount(struct qcow2_state *s, uint64_t cluster, uint64_t refcount);
/* Add `delta` to the refcount of every cluster touching [offset, offset+bytes).
 * Negative deltas are applied at once: only call with a negative delta for
 * references already gone from disk (qcow2_free_clusters is the safe way). */
int qcow2_update_refcount(struct qcow2_state *s, uint64_t offset, uint64_t bytes, int64_t delta);
/* Allocate `n` contiguous clusters (refcount 1); returns the host offset or
 * -errno. Runs over qcow2_max_alloc_run(s) go past the end of the image. */
int64_t qcow2_alloc_clusters(struct qcow2_state *s, uint64_t n);
/* Allocate `bytes` (< one cluster) for compressed data, packed after the
 * previous compressed cluster (possibly running into the next host cluster;
 * each host cluster touched gets one reference). Returns host offset or -errno. */
int64_t qcow2_alloc_bytes(struct qcow2_state *s, uint64_t bytes);
/* Drop one reference to every cluster touching the range, once the reference
 * is gone from disk (queued; applied by qcow2_flush_metadata). */
int qcow2_free_clusters(struct qcow2_state *s, uint64_t offset, uint64_t bytes);
/* Apply queued frees now (the caller has made the dropped references durable). */
int qcow2_apply_pending_frees(struct qcow2_state *s);
/* Free the cluster(s) an L2 entry points to (normal, zero-alloc or compressed). */
int qcow2_free_l2_entry(struct qcow2_state *s, uint64_t l2_entry);
/* Host offset just past the last cluster with a nonzero refcount. */
int64_t qcow2_refcount_end(struct qcow2_state *s);

/* ---- qcow2-cluster.c ----------------------------------------------------- */

/* L2 entry accessors on a cached (big-endian) L2 table. */
uint64_t qcow2_l2_get(struct qcow2_state *s, const void *l2, uint64_t idx);
uint64_t qcow2_l2_get_bitmap(struct qcow2_state *s, const void *l2, uint64_t idx);
void qcow2_l2_set(struct qcow2_state *s, void *l2, uint64_t idx, uint64_t entry);
void qcow2_l2_set_bitmap(struct qcow2_state *s, void *l2, uint64_t idx, uint64_t bitmap);
/* Type of a cluster (or, with extended L2, of subcluster `sc`) from its entries. */
enum qcow2_cluster_type qcow2_cluster_type(struct qcow2_state *s, uint64_t l2_entry,
                                           uint64_t bitmap, unsigned sc);

/* Map guest `offset`: sets *type, *host (host offset of `offset` for normal
 * and zero-alloc, the raw L2 entry for compressed) and *bytes (<= bytes in,
 * all sharing that type and contiguous on the host). */
int qcow2_get_host_offset(struct qcow2_state *s, uint64_t offset, uint64_t *bytes,
                          uint64_t *host, enum qcow2_cluster_type *type);
/* Wait (dropping s->lock) until no allocating write is in flight for guest
 * bytes [start, end); whoever changes L2 entries of a range calls this first
 * (UINT64_MAX as end to drain everything, e.g. before snapshot operations). */
void qcow2_wait_inflight(struct qcow2_state *s, uint64_t start, uint64_t end);
/* Write the L1 entry `idx` from s->l1_table to disk. */
int qcow2_write_l1_entry(struct qcow2_state *s, uint64_t idx);
/* Grow the active L1 table to at least min_size entries. */
int qcow2_grow_l1_table(struct qcow2_state *s, uint64_t min_size);
/* Get the L2 table for guest `offset` (allocating or COWing it when `alloc`);
 * *l2 == NULL and 0 returned if unallocated and !alloc. */
int qcow2_get_l2(struct qcow2_state *s, uint64_t offset, bool alloc, void **l2, uint64_t *idx);

/* The data path, called by the ops table (take s->lock themselves). */
int qcow2_co_preadv(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt);
int qcow2_co_pwritev(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt, int flags);
int qcow2_co_pwrite_zeroes(struct bdev *bs, uint64_t offset, uint64_t bytes, int flags);
int qcow2_co_pdiscard(struct bdev *bs, uint64_t offset, uint64_t bytes);
int qcow2_co_block_status(struct bdev *bs, uint64_t offset, uint64_t bytes,
                          uint64_t *pnum, uint64_t *map, struct bdev **file);
/* Allocate host clusters for [offset, offset+bytes) without writing data
 * (preallocation=metadata/falloc/full); returns 0 or -errno. Lock held. */
int qcow2_preallocate(struct qcow2_state *s, uint64_t offset, uint64_t bytes);
/* Discard every cluster at or beyond `offset` (shrink); lock held. */
int qcow2_discard_range(struct qcow2_state *s, uint64_t offset, uint64_t bytes, bool make_zero);
static inline uint64_t qcow2_max_alloc_run(struct qcow2_state *s)
{
    return (1ull << s->rb_bits) - 1;
}
/* Read guest data of this node into buf (lock held; used for COW). */
int qcow2_read_locked(struct qcow2_state *s, uint64_t offset, void *buf, uint64_t bytes);

/* ---- qcow2-compress.c ------------------------------------------------------ */

/* Compress one cluster; returns the compressed size, or -ENOSPC if it would
 * not fit in dst_len (write it uncompressed then). */
int64_t qcow2_compress(int type, void *dst, size_t dst_len, const void *src, size_t src_len);
/* Decompress until dst is full; trailing input is ignored. */
int qcow2_decompress(int type, void *dst, size_t dst_len, const void *src, size_t src_len);
/* Read and decompress the compressed cluster described by l2_entry. */
int qcow2_read_compressed(struct qcow2_state *s, uint64_t l2_entry, void *cluster_buf);
int qcow2_co_pwrite_compressed(struct bdev *bs, uint64_t offset, const void *buf, uint64_t bytes);

/* ---- Provided by qcow2-check.c / qcow2-snapshot.c / qcow2-amend.c ----------
 * The ops table in qcow2.c refers to these once those files exist:
 *   int qcow2_check(struct bdev *bs, struct bdev_check_result *res, int fix, FILE *log);
 *   int qcow2_snapshot_create/goto/delete(struct bdev *bs, const char *, struct error *);
 *   int qcow2_snapshot_list(struct bdev *bs, struct bdev_snapshot **list);
 *   int qcow2_amend(struct bdev *bs, struct opts *o, bool force, struct error *err);
 *   int qcow2_read_snapshots(struct qcow2_state *s);   (fills s->snapshots at open)
 *   void qcow2_free_snapshots(struct qcow2_state *s);
 * Until then the core leaves s->snapshots empty and keeps nb_snapshots /
 * snapshots_offset from the header untouched. */

#endif
