/* qcow2 metadata work beyond the data path: internal snapshots, check and
 * repair, amend, measure. The ops table in qcow2.c points at the entry
 * points below; tests may call them directly.
 *
 * Entry points taking a `struct bdev *` take s->lock themselves. Helpers
 * taking a `struct qcow2_state *` expect it held (as in qcow2.h). */
#ifndef QUOKKA_BLOCK_QCOW2_META_H
#define QUOKKA_BLOCK_QCOW2_META_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "block/qcow2.h"
#include "util/opts.h"

#define QCOW2_MAX_SNAPSHOTS        65536
#define QCOW2_MAX_SNAPSHOTS_SIZE   (1024u * QCOW2_MAX_SNAPSHOTS)  /* bytes */
#define QCOW2_MAX_SN_EXTRA_DATA    1024
#define QCOW2_SN_HEADER_SIZE       40
#define QCOW2_SN_EXTRA_SIZE        24   /* vm_state_size_large, disk_size, icount */

/* ---- qcow2-snapshot.c ---------------------------------------------------- */

/* Read the snapshot table the header points at into s->snapshots. Called by
 * open: a bad count, offset or entry (or, unless opened BDEV_O_CHECK, a table
 * running past the end of the file) fails with a message naming it. */
int qcow2_read_snapshots(struct qcow2_state *s, struct error *err);
/* The same for check: past-EOF parts read as zeroes, and with `repair`
 * (check -r all) what can't be kept is dropped (said on `log`) and counted. */
struct qcow2_sn_check {
    int extra_dropped;     /* entries whose excess extra data was cut */
    int reduced;           /* overhanging entries dropped */
    uint64_t table_size;   /* bytes of the table as found on disk */
    bool bad_pointer;      /* the header's count/offset itself is invalid */
};
int qcow2_read_snapshots_repair(struct qcow2_state *s, bool repair,
                                struct qcow2_sn_check *out, FILE *log, struct error *err);
void qcow2_free_snapshots(struct qcow2_state *s);
/* True if every cluster touching the range has a nonzero refcount (so
 * freeing it can't underflow). */
bool qcow2_range_refcounted(struct qcow2_state *s, uint64_t off, uint64_t bytes);
/* Bytes the snapshot table occupies on disk as currently described. */
uint64_t qcow2_snapshot_table_size(struct qcow2_state *s);
/* Write s->snapshots as a new table, point the header at it (synced), then
 * free the old table (old_size bytes at s->snapshots_offset): a crash
 * leaves either table, never a broken one. */
int qcow2_write_snapshots(struct qcow2_state *s, uint64_t old_size);
/* Add `delta` (+1, -1 or 0) to the refcount of every cluster the L1 table
 * `l1` (l1_size entries, host order) reaches, then set QCOW2_OFLAG_COPIED in
 * its L2 entries and in l1[] exactly where the refcount is 1. Sets
 * *l1_changed if l1[] was modified (the caller writes it). A -1 is applied
 * at once: only for a tree already unreachable on disk, with s->io_lock
 * held exclusive. */
int qcow2_update_tree_refcounts(struct qcow2_state *s, uint64_t *l1, uint32_t l1_size,
                                int delta, bool *l1_changed);

/* As `qemu-img snapshot`: -c gives the next numeric id and allows duplicate
 * names; -a finds by id, then by name, and brings back the snapshot's
 * virtual size; -d finds by name only (the first match). Errors name the
 * problem ("snapshot not found", "Failed to load snapshot: ..."). */
int qcow2_snapshot_create(struct bdev *bs, const char *name, struct error *err);
int qcow2_snapshot_goto(struct bdev *bs, const char *id_or_name, struct error *err);
int qcow2_snapshot_delete(struct bdev *bs, const char *name, struct error *err);
/* Fills *list (malloc'd, caller frees) and returns the count. */
int qcow2_snapshot_list(struct bdev *bs, struct bdev_snapshot **list);

/* ---- qcow2-check.c ------------------------------------------------------- */

/* `qemu-img check [-r leaks|all]`: messages go to `log` (none if NULL). */
int qcow2_check(struct bdev *bs, struct bdev_check_result *res, int fix, FILE *log);
/* Write a fresh refcount structure of 2^order-bit entries holding refcounts
 * rc[0..n) (new clusters it needs are taken from free ones and counted in
 * rc, which may grow: *rc and *n are updated), switch the header to it, and
 * reload the in-memory refcount table. The old structure is left leaked. */
int qcow2_rebuild_refcounts(struct qcow2_state *s, uint64_t **rc, uint64_t *n,
                            unsigned order, struct error *err);

/* ---- qcow2-amend.c ------------------------------------------------------- */

/* `qemu-img amend -o ...`: compat, lazy_refcounts, refcount_bits, size;
 * backing_file/backing_fmt only if unchanged (as QEMU: use rebase). */
int qcow2_amend(struct bdev *bs, struct opts *o, bool force, struct error *err);

/* ---- qcow2-measure.c ----------------------------------------------------- */

struct qcow2_measure_info {
    uint64_t required;          /* "required size" */
    uint64_t fully_allocated;   /* "fully allocated size" */
    bool has_bitmaps;           /* print "bitmaps size" */
    uint64_t bitmaps;
};
/* `qemu-img measure -O qcow2 [-o opts] (--size N | [source])`: `o` holds the
 * target's -o options (every qcow2 create option is consumed); `size` is
 * used when in_bs is NULL; in_bs is the opened source image, or NULL. */
int qcow2_measure(struct opts *o, uint64_t size, struct bdev *in_bs,
                  struct qcow2_measure_info *out, struct error *err);
/* Metadata + data bytes of a fully allocated image (QEMU's formula). */
uint64_t qcow2_prealloc_size(uint64_t size, unsigned cluster_bits, unsigned refcount_order,
                             bool extended_l2);
/* Refcount table + blocks needed to count `clusters` clusters (fixed point). */
uint64_t qcow2_refcount_metadata_size(uint64_t clusters, uint64_t cluster_size,
                                      unsigned refcount_order);

#endif
