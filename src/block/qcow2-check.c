/* qcow2 check and repair, with the counts and messages of `qemu-img check`.
 *
 * Every reference in the image (header, L1/L2 tables, data and compressed
 * clusters, snapshot tables and their L1 trees, the refcount table and
 * blocks) is counted into an in-memory array, which is then compared with
 * the refcounts on disk. Repair adjusts refcounts in place when the
 * refcount structure itself is sound, and otherwise writes a new one from
 * the array (qcow2_rebuild_refcounts, shared with amend's refcount_bits). */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "block/qcow2-meta.h"

#define L1E_RESERVED_MASK      0x7f000000000001ffull
#define L2E_STD_RESERVED_MASK  0x3f000000000001feull
#define REFT_RESERVED_MASK     0x1ffull
#define L2_BITMAP_ALL_ALLOC    0x00000000ffffffffull
#define L2_BITMAP_ALL_ZEROES   0xffffffff00000000ull

struct chk {
    struct qcow2_state *s;
    struct bdev_check_result *res;
    int fix;
    FILE *log;
    uint64_t *rc;          /* references counted, per host cluster */
    uint64_t nb;           /* clusters in rc */
    int64_t file_len;
    uint64_t sn_table_size;
    bool rebuild;
    bool signalled;        /* broken refcount table reported once */
    struct bdev_check_result final;   /* what the caller gets */
};

static void say(struct chk *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct chk *c, const char *fmt, ...)
{
    if (!c->log)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->log, fmt, ap);
    va_end(ap);
}

static int grow_rc(uint64_t **rc, uint64_t *nb, uint64_t want)
{
    if (want <= *nb)
        return 0;
    uint64_t *p = realloc(*rc, want * sizeof(uint64_t));
    if (!p)
        return -ENOMEM;
    memset(p + *nb, 0, (want - *nb) * sizeof(uint64_t));
    *rc = p;
    *nb = want;
    return 0;
}

/* Count one reference to every cluster touching [off, off+size). */
static int inc_refs(struct chk *c, uint64_t off, uint64_t size)
{
    struct qcow2_state *s = c->s;
    if (!size)
        return 0;
    /* The last cluster may be partly written, so up to one cluster past the
     * end of the file is fine. */
    if (off > UINT64_MAX - size ||
        (off + size > (uint64_t)c->file_len && off + size - c->file_len >= s->cluster_size)) {
        say(c, "ERROR: counting reference for region exceeding the end of the file by one "
            "cluster or more: offset 0x%" PRIx64 " size 0x%" PRIx64 "\n", off, size);
        c->res->corruptions++;
        return 0;
    }
    uint64_t first = off >> s->cluster_bits, last = (off + size - 1) >> s->cluster_bits;
    for (uint64_t k = first; k <= last; k++) {
        if (k >= c->nb && grow_rc(&c->rc, &c->nb, k + 1) < 0) {
            c->res->check_errors++;
            return -ENOMEM;
        }
        if (c->rc[k] == s->refcount_max) {
            say(c, "ERROR: overflow cluster offset=0x%" PRIx64 "\n", k << s->cluster_bits);
            say(c, "Use qemu-img amend to increase the refcount entry width or qemu-img "
                "convert to create a clean copy if the image cannot be opened for writing\n");
            c->res->corruptions++;
            continue;
        }
        c->rc[k]++;
    }
    return 0;
}

static uint64_t l2e(struct qcow2_state *s, const uint8_t *t, uint64_t i, unsigned word)
{
    uint64_t v;
    memcpy(&v, t + i * s->l2_entry_size + word * 8, 8);
    return be64toh(v);
}

/* An unaligned preallocated zero cluster becomes a plain zero cluster. */
static int fix_l2_by_zero(struct chk *c, uint64_t l2_off, uint8_t *t, uint64_t i)
{
    struct qcow2_state *s = c->s;
    uint64_t e[2] = { htobe64(QCOW2_OFLAG_ZERO), 0 };
    if (s->extended_l2) {
        uint64_t bm = l2e(s, t, i, 1);
        bm = (bm | bm << 32) & L2_BITMAP_ALL_ZEROES;
        e[0] = 0;
        e[1] = htobe64(bm);
    }
    memcpy(t + i * s->l2_entry_size, e, s->l2_entry_size);
    int ret = bdev_pwrite(s->bs->file, l2_off + i * s->l2_entry_size, e, s->l2_entry_size, 0);
    if (ret == 0)
        ret = qcow2_barrier(s);
    if (ret < 0) {
        say(c, "ERROR: Failed to overwrite L2 table entry: %s\n", strerror(-ret));
        c->res->check_errors++;
        return ret;
    }
    c->res->corruptions--;
    c->res->corruptions_fixed++;
    return 0;
}

struct frag { bool on; uint64_t next; };

static int check_compressed(struct chk *c, uint64_t e, uint64_t bm, uint64_t i, struct frag *f)
{
    struct qcow2_state *s = c->s;
    uint64_t coff = e & s->cluster_offset_mask;
    if (e & QCOW2_OFLAG_COPIED) {
        say(c, "ERROR: coffset=0x%" PRIx64 ": copied flag must never be set for compressed "
            "clusters\n", coff);
        c->res->corruptions++;
    }
    if (s->extended_l2 && bm) {
        say(c, "ERROR compressed cluster %d with non-zero subcluster allocation bitmap, "
            "entry=0x%" PRIx64 "\n", (int)i, (uint64_t)(e & ~QCOW2_OFLAG_COPIED));
        c->res->corruptions++;
        return 0;
    }
    uint64_t nsec = ((e >> s->csize_shift) & s->csize_mask) + 1;
    int ret = inc_refs(c, coff, nsec * QCOW2_SECTOR - (coff & (QCOW2_SECTOR - 1)));
    if (f->on) {
        c->res->allocated_clusters++;
        c->res->compressed_clusters++;
        c->res->fragmented_clusters++;
    }
    return ret;
}

/* Returns 1 if the entry was repaired into a plain zero cluster. */
static int check_allocated(struct chk *c, uint64_t l2_off, uint8_t *t, uint64_t i,
                           uint64_t e, uint64_t bm, struct frag *f)
{
    struct qcow2_state *s = c->s;
    uint64_t off = e & QCOW2_L2E_OFFSET_MASK;
    if ((bm >> 32) & bm) {
        c->res->corruptions++;
        say(c, "ERROR offset=%" PRIx64 ": Allocated cluster has corrupted subcluster "
            "allocation bitmap\n", off);
    }
    if (qcow2_offset_in_cluster(s, off)) {
        c->res->corruptions++;
        bool data = s->extended_l2 ? (bm & L2_BITMAP_ALL_ALLOC) != 0
                                   : !(e & QCOW2_OFLAG_ZERO);
        if (data) {
            say(c, "ERROR offset=%" PRIx64 ": Data cluster is not properly aligned; L2 entry "
                "corrupted.\n", off);
        } else {
            bool fix = c->fix & BDEV_FIX_ERRORS;
            say(c, "%s offset=%" PRIx64 ": Preallocated cluster is not properly aligned; L2 "
                "entry corrupted.\n", fix ? "Repairing" : "ERROR", off);
            if (fix && fix_l2_by_zero(c, l2_off, t, i) == 0)
                return 1;
        }
    }
    if (f->on) {
        c->res->allocated_clusters++;
        if (f->next && off != f->next)
            c->res->fragmented_clusters++;
        f->next = off + s->cluster_size;
    }
    int ret = inc_refs(c, off, s->cluster_size);
    return ret < 0 ? ret : 0;
}

static int check_l2(struct chk *c, uint64_t l2_off, bool frag_info)
{
    struct qcow2_state *s = c->s;
    uint8_t *t = malloc(s->cluster_size);
    if (!t) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    int ret = bdev_pread(s->bs->file, l2_off, t, s->cluster_size);
    if (ret < 0) {
        say(c, "ERROR: I/O error in check_refcounts_l2\n");
        c->res->check_errors++;
        free(t);
        return ret;
    }
    struct frag f = { frag_info, 0 };
    for (uint64_t i = 0; i < s->l2_size && ret >= 0; i++) {
        uint64_t e = l2e(s, t, i, 0), bm = s->extended_l2 ? l2e(s, t, i, 1) : 0;
        uint64_t off = e & QCOW2_L2E_OFFSET_MASK;
        if (e & QCOW2_OFLAG_COMPRESSED) {
            ret = check_compressed(c, e, bm, i, &f);
            continue;
        }
        if (e & L2E_STD_RESERVED_MASK) {
            say(c, "ERROR found l2 entry with reserved bits set: %" PRIx64 "\n", e);
            c->res->corruptions++;
        }
        if (!s->extended_l2 && (e & QCOW2_OFLAG_ZERO) && !off)
            continue;                            /* plain zero cluster */
        if (off) {
            ret = check_allocated(c, l2_off, t, i, e, bm, &f);
        } else if (bm & L2_BITMAP_ALL_ALLOC) {
            c->res->corruptions++;
            say(c, "ERROR: Unallocated cluster has non-zero subcluster allocation map\n");
        }
    }
    free(t);
    return ret < 0 ? ret : 0;
}

static int check_l1(struct chk *c, uint64_t l1_off, uint32_t l1_size, bool frag_info)
{
    struct qcow2_state *s = c->s;
    if (!l1_size)
        return 0;
    int ret = inc_refs(c, l1_off, l1_size * 8ull);
    if (ret < 0)
        return ret;
    /* Past the end of the file the table reads as zeroes: read only the
     * part inside it (a bogus size would otherwise cost a long walk). */
    uint64_t in_file = l1_off >= (uint64_t)c->file_len ? 0 : (uint64_t)c->file_len - l1_off;
    uint32_t n = (in_file + 7) / 8 < l1_size ? (uint32_t)((in_file + 7) / 8) : l1_size;
    if (!n)
        return 0;
    uint64_t *l1 = malloc(n * 8ull);
    if (!l1) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    ret = bdev_pread(s->bs->file, l1_off, l1, n * 8ull);
    if (ret < 0) {
        say(c, "ERROR: I/O error in check_refcounts_l1\n");
        c->res->check_errors++;
        free(l1);
        return ret;
    }
    for (uint32_t i = 0; i < n && ret == 0; i++) {
        uint64_t e = be64toh(l1[i]);
        if (!e)
            continue;
        if (e & L1E_RESERVED_MASK) {
            say(c, "ERROR found L1 entry with reserved bits set: %" PRIx64 "\n", e);
            c->res->corruptions++;
        }
        uint64_t l2_off = e & QCOW2_L1E_OFFSET_MASK;
        ret = inc_refs(c, l2_off, s->cluster_size);
        if (ret == 0 && qcow2_offset_in_cluster(s, l2_off)) {
            say(c, "ERROR l2_offset=%" PRIx64 ": Table is not cluster aligned; L1 entry "
                "corrupted\n", l2_off);
            c->res->corruptions++;
        }
        if (ret == 0)
            ret = check_l2(c, l2_off, frag_info);
    }
    free(l1);
    return ret;
}

/* A refcount block past the end of the file: grow the file to hold it. */
static int refblock_outside(struct chk *c, uint64_t i, uint64_t off)
{
    struct qcow2_state *s = c->s;
    bool fix = c->fix & BDEV_FIX_ERRORS;
    c->res->corruptions++;
    say(c, "%s refcount block %" PRIu64 " is outside image\n", fix ? "Repairing" : "ERROR", i);
    if (!fix)
        return 0;
    struct error e = { 0 };
    int ret = off > (uint64_t)INT64_MAX - s->cluster_size ? -EINVAL :
              bdev_truncate(s->bs->file, off + s->cluster_size, false, NULL, &e);
    if (ret < 0 && e.msg[0])
        say(c, "%s: %s\n", error_progname(), e.msg);
    int64_t len = ret < 0 ? ret : bdev_getlength(s->bs->file);
    if (len < 0) {
        c->rebuild = true;
        say(c, "ERROR could not resize image: %s\n", strerror((int)-len));
        return 0;
    }
    c->file_len = len;
    if (grow_rc(&c->rc, &c->nb, ((uint64_t)len + s->cluster_size - 1) >> s->cluster_bits) < 0) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    c->res->corruptions--;
    c->res->corruptions_fixed++;
    return inc_refs(c, off, s->cluster_size);
}

static int check_refblocks(struct chk *c)
{
    struct qcow2_state *s = c->s;
    for (uint64_t i = 0; i < s->refcount_table_size; i++) {
        uint64_t e = s->refcount_table[i], off = e & QCOW2_REFT_OFFSET_MASK;
        uint64_t cl = off >> s->cluster_bits;
        int ret = 0;
        if (e & REFT_RESERVED_MASK) {
            say(c, "ERROR refcount table entry %" PRIu64 " has reserved bits set\n", i);
            c->res->corruptions++;
            c->rebuild = true;
            continue;
        }
        if (qcow2_offset_in_cluster(s, off)) {
            say(c, "ERROR refcount block %" PRIu64 " is not cluster aligned; refcount table "
                "entry corrupted\n", i);
            c->res->corruptions++;
            c->rebuild = true;
            continue;
        }
        if (off && cl >= c->nb) {
            ret = refblock_outside(c, i, off);
        } else if (off) {
            ret = inc_refs(c, off, s->cluster_size);
            if (ret == 0 && cl < c->nb && c->rc[cl] != 1) {
                say(c, "ERROR refcount block %" PRIu64 " refcount=%" PRIu64 "\n", i, c->rc[cl]);
                c->res->corruptions++;
                c->rebuild = true;
            }
        }
        if (ret < 0)
            return ret;
    }
    return 0;
}

static uint64_t be64_at(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static uint32_t be32_at(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }

/* One persistent dirty bitmap: its table and the clusters it points to. */
static int count_bitmap_table(struct chk *c, uint64_t off, uint32_t entries)
{
    struct qcow2_state *s = c->s;
    int ret = inc_refs(c, off, entries * 8ull);
    uint64_t in_file = off >= (uint64_t)c->file_len ? 0 : (uint64_t)c->file_len - off;
    uint32_t n = in_file / 8 < entries ? (uint32_t)(in_file / 8) : entries;
    if (ret < 0 || !n)
        return ret;
    uint64_t *t = malloc(n * 8ull);
    if (!t) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    ret = bdev_pread(s->bs->file, off, t, n * 8ull);
    for (uint32_t i = 0; ret == 0 && i < n; i++) {
        uint64_t e = be64toh(t[i]), data = e & QCOW2_L2E_OFFSET_MASK;
        if ((e & 0xff000000000001feull) || qcow2_offset_in_cluster(s, data)) {
            c->res->corruptions++;
            continue;
        }
        if (data)
            ret = inc_refs(c, data, s->cluster_size);
    }
    free(t);
    return ret;
}

/* Bitmaps count only while the autoclear bit vouches for them. */
static int count_bitmaps(struct chk *c)
{
    struct qcow2_state *s = c->s;
    if (s->hdr.version < 3 || !(s->hdr.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
        return 0;
    const struct qcow2_unknown_ext *x = s->unknown_exts;
    while (x && (x->type != QCOW2_EXT_BITMAPS || x->len < 24))
        x = x->next;
    if (!x)
        return 0;
    uint32_t nb = be32_at(x->data);
    uint64_t dir_size = be64_at(x->data + 8), dir_off = be64_at(x->data + 16);
    int ret = inc_refs(c, dir_off, dir_size);
    if (ret < 0 || !nb)
        return ret;
    if (dir_size > 64u << 20 || dir_off + dir_size > (uint64_t)c->file_len ||
        dir_off + dir_size < dir_off) {
        say(c, "ERROR bitmap directory offset %#" PRIx64 " size %#" PRIx64 " invalid\n",
            dir_off, dir_size);
        c->res->corruptions++;
        return 0;
    }
    uint8_t *d = malloc(dir_size ? dir_size : 1);
    if (!d) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    ret = bdev_pread(s->bs->file, dir_off, d, dir_size);
    uint64_t pos = 0;
    for (uint32_t i = 0; ret == 0 && i < nb; i++) {
        if (pos + 24 > dir_size) {
            say(c, "ERROR bitmap directory entry %u out of bounds\n", i);
            c->res->corruptions++;
            break;
        }
        uint64_t table = be64_at(d + pos);
        uint32_t entries = be32_at(d + pos + 8), extra = be32_at(d + pos + 20);
        uint16_t name_len = (uint16_t)(d[pos + 18] << 8 | d[pos + 19]);
        ret = count_bitmap_table(c, table, entries);
        pos = (pos + 24 + extra + name_len + 7) & ~7ull;
    }
    free(d);
    return ret;
}

static int calculate_refcounts(struct chk *c)
{
    struct qcow2_state *s = c->s;
    int ret = inc_refs(c, 0, s->cluster_size);
    if (ret == 0)
        ret = check_l1(c, s->l1_table_offset, s->l1_size, true);
    for (uint32_t i = 0; ret == 0 && i < s->nb_snapshots; i++) {
        struct qcow2_snapshot *sn = &s->snapshots[i];
        if (qcow2_offset_in_cluster(s, sn->l1_table_offset)) {
            say(c, "ERROR snapshot %s (%s) l1_offset=%#" PRIx64 ": L1 table is not cluster "
                "aligned; snapshot table entry corrupted\n", sn->id_str, sn->name,
                sn->l1_table_offset);
            c->res->corruptions++;
            continue;
        }
        if (sn->l1_size > QCOW2_MAX_L1_SIZE / 8) {
            say(c, "ERROR snapshot %s (%s) l1_size=%#" PRIx32 ": L1 table is too large; "
                "snapshot table entry corrupted\n", sn->id_str, sn->name, sn->l1_size);
            c->res->corruptions++;
            continue;
        }
        ret = check_l1(c, sn->l1_table_offset, sn->l1_size, false);
    }
    if (ret == 0)
        ret = inc_refs(c, s->snapshots_offset, c->sn_table_size);
    if (ret == 0)
        ret = inc_refs(c, s->refcount_table_offset, s->refcount_table_size * 8);
    if (ret == 0)
        ret = count_bitmaps(c);
    if (ret == 0)
        ret = check_refblocks(c);
    return ret;
}

/* The refcount on disk, read around the core's checks so that a broken
 * refcount table is reported rather than acted upon. */
static int disk_refcount(struct qcow2_state *s, uint64_t cluster, uint64_t *rc)
{
    uint64_t ti = cluster >> s->rb_bits;
    *rc = 0;
    if (ti >= s->refcount_table_size)
        return 0;
    uint64_t off = s->refcount_table[ti] & QCOW2_REFT_OFFSET_MASK;
    if (off && (qcow2_offset_in_cluster(s, off) || off > (uint64_t)INT64_MAX - s->cluster_size))
        return -EIO;
    return qcow2_get_refcount(s, cluster, rc);
}

/* What QEMU's refcount lookup does on an unaligned refcount block: say so
 * once and, if the image is writable, flag it corrupt on disk. */
static void signal_unaligned_refblock(struct chk *c, uint64_t cluster)
{
    struct qcow2_state *s = c->s;
    uint64_t ti = cluster >> s->rb_bits;
    uint64_t off = s->refcount_table[ti] & QCOW2_REFT_OFFSET_MASK;
    if (c->signalled)
        return;
    c->signalled = true;
    bool rw = !s->read_only && !s->bs->read_only && s->hdr.version >= 3;
    say(c, "qcow2: %s: Refblock offset %#" PRIx64 " unaligned (reftable index: %#" PRIx64
        "); further %scorruption events will be suppressed\n",
        rw ? "Marking image as corrupt" : "Image is corrupt", off, ti, rw ? "" : "non-fatal ");
    if (!rw)
        return;
    uint64_t v = htobe64(s->hdr.incompatible_features | QCOW2_INCOMPAT_CORRUPT);
    if (bdev_pwrite(s->bs->file, QCOW2_HDR_INCOMPAT, &v, 8, 0) == 0 && qcow2_barrier(s) == 0)
        s->hdr.incompatible_features |= QCOW2_INCOMPAT_CORRUPT;
    s->corrupt = true;
}

static void compare_refcounts(struct chk *c, int fix, int64_t *highest)
{
    struct qcow2_state *s = c->s;
    *highest = 0;
    for (uint64_t i = 0; i < c->nb; i++) {
        uint64_t r1, r2 = c->rc[i];
        int ret = disk_refcount(s, i, &r1);
        uint64_t ti = i >> s->rb_bits;
        if (ret == -EIO &&
            qcow2_offset_in_cluster(s, s->refcount_table[ti] & QCOW2_REFT_OFFSET_MASK))
            signal_unaligned_refblock(c, i);
        if (ret < 0) {
            say(c, "Can't get refcount for cluster %" PRIu64 ": %s\n", i, strerror(-ret));
            c->res->check_errors++;
            continue;
        }
        if (r1 || r2)
            *highest = (int64_t)i;
        if (r1 == r2)
            continue;
        int *fixed = NULL;
        if (r1 == 0)
            c->rebuild = true;
        else if (r1 > r2 && (fix & BDEV_FIX_LEAKS))
            fixed = &c->res->leaks_fixed;
        else if (r1 < r2 && (fix & BDEV_FIX_ERRORS))
            fixed = &c->res->corruptions_fixed;
        say(c, "%s cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64 "\n",
            fixed ? "Repairing" : r1 < r2 ? "ERROR" : "Leaked", i, r1, r2);
        if (fixed && qcow2_update_refcount(s, i << s->cluster_bits, 1,
                                           (int64_t)(r2 - r1)) == 0) {
            (*fixed)++;
            continue;
        }
        if (r1 < r2)
            c->res->corruptions++;
        else
            c->res->leaks++;
    }
}

static int check_oflag_l2(struct chk *c, uint64_t l2_off, bool repair)
{
    struct qcow2_state *s = c->s;
    uint8_t *t = malloc(s->cluster_size);
    if (!t)
        return -ENOMEM;
    int ret = bdev_pread(s->bs->file, l2_off, t, s->cluster_size), dirty = 0;
    if (ret < 0) {
        say(c, "ERROR: Could not read L2 table: %s\n", strerror(-ret));
        c->res->check_errors++;
        free(t);
        return ret;
    }
    for (uint64_t j = 0; j < s->l2_size; j++) {
        uint64_t e = l2e(s, t, j, 0), off = e & QCOW2_L2E_OFFSET_MASK, rc;
        if ((e & QCOW2_OFLAG_COMPRESSED) || !off)
            continue;
        if (disk_refcount(s, off >> s->cluster_bits, &rc) < 0)
            continue;
        if ((rc == 1) == ((e & QCOW2_OFLAG_COPIED) != 0))
            continue;
        c->res->corruptions++;
        say(c, "%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64 " refcount=%" PRIu64 "\n",
            repair ? "Repairing" : "ERROR", e, rc);
        if (repair) {
            uint64_t ne = htobe64(rc == 1 ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED);
            memcpy(t + j * s->l2_entry_size, &ne, 8);
            dirty++;
        }
    }
    if (dirty) {
        ret = bdev_pwrite(s->bs->file, l2_off, t, s->cluster_size, 0);
        if (ret < 0) {
            say(c, "ERROR: Could not write L2 table: %s\n", strerror(-ret));
            c->res->check_errors++;
        } else {
            c->res->corruptions -= dirty;
            c->res->corruptions_fixed += dirty;
        }
    }
    free(t);
    return ret;
}

static int check_oflag_copied(struct chk *c)
{
    struct qcow2_state *s = c->s;
    bool repair = (c->fix & BDEV_FIX_ERRORS) ||
                  ((c->fix & BDEV_FIX_LEAKS) && !c->res->check_errors &&
                   !c->res->corruptions && !c->res->leaks);
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t e = s->l1_table[i], l2_off = e & QCOW2_L1E_OFFSET_MASK, rc;
        if (!l2_off)
            continue;
        if (disk_refcount(s, l2_off >> s->cluster_bits, &rc) < 0)
            continue;
        if ((rc == 1) != ((e & QCOW2_OFLAG_COPIED) != 0)) {
            c->res->corruptions++;
            say(c, "%s OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%" PRIx64 " refcount=%"
                PRIu64 "\n", repair ? "Repairing" : "ERROR", i, e, rc);
            if (repair) {
                s->l1_table[i] = rc == 1 ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
                int ret = qcow2_write_l1_entry(s, i);
                if (ret < 0) {
                    c->res->check_errors++;
                    return ret;
                }
                c->res->corruptions--;
                c->res->corruptions_fixed++;
            }
        }
        int ret = check_oflag_l2(c, l2_off, repair);
        if (ret < 0)
            return ret;
    }
    return 0;
}

static int recount(struct chk *c)
{
    memset(c->rc, 0, c->nb * sizeof(uint64_t));
    c->rebuild = false;
    return calculate_refcounts(c);
}

/* The refcount structure is broken: write a new one from the counted
 * references, then free the old one (now leaked). */
static int rebuild(struct chk *c, int64_t *highest)
{
    struct bdev_check_result old = *c->res;
    struct error err = { 0 };
    say(c, "Rebuilding refcount structure\n");
    int ret = qcow2_rebuild_refcounts(c->s, &c->rc, &c->nb, c->s->refcount_order, &err);
    if (ret < 0) {
        say(c, "%s\n", err.msg);
        return ret;
    }
    c->res->corruptions = 0;
    c->res->leaks = 0;
    c->file_len = bdev_getlength(c->s->bs->file);
    ret = recount(c);
    if (ret < 0)
        return ret;
    int fresh_leaks = 0;
    if (c->fix & BDEV_FIX_LEAKS) {
        struct bdev_check_result saved = *c->res;
        memset(c->res, 0, sizeof(*c->res));
        compare_refcounts(c, BDEV_FIX_LEAKS, highest);
        if (c->rebuild)
            say(c, "ERROR rebuilt refcount structure is still broken\n");
        fresh_leaks = c->res->leaks;
        *c->res = saved;
    }
    if (c->res->corruptions < old.corruptions)
        c->res->corruptions_fixed += old.corruptions - c->res->corruptions;
    if (c->res->leaks < old.leaks)
        c->res->leaks_fixed += old.leaks - c->res->leaks;
    c->res->leaks += fresh_leaks;
    return 0;
}

static int check_refcounts(struct chk *c)
{
    struct qcow2_state *s = c->s;
    c->file_len = bdev_getlength(s->bs->file);
    if (c->file_len < 0) {
        c->res->check_errors++;
        return (int)c->file_len;
    }
    uint64_t nb = ((uint64_t)c->file_len + s->cluster_size - 1) >> s->cluster_bits;
    if (nb > INT32_MAX) {
        c->res->check_errors++;
        return -EFBIG;
    }
    c->res->total_clusters = (s->hdr.size + s->cluster_size - 1) >> s->cluster_bits;
    if (grow_rc(&c->rc, &c->nb, nb ? nb : 1) < 0) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    c->nb = nb;
    int ret = calculate_refcounts(c);
    if (ret < 0)
        return ret;
    struct bdev_check_result pre = *c->res;
    int64_t highest = 0;
    compare_refcounts(c, 0, &highest);
    if (c->rebuild && (c->fix & BDEV_FIX_ERRORS)) {
        ret = rebuild(c, &highest);
        if (ret < 0)
            return ret;
    } else if (c->fix) {
        if (c->rebuild) {
            say(c, "ERROR need to rebuild refcount structures\n");
            c->res->check_errors++;
            return -EIO;
        }
        if (c->res->leaks || c->res->corruptions) {
            *c->res = pre;
            compare_refcounts(c, c->fix, &highest);
        }
    }
    ret = check_oflag_copied(c);
    if (ret < 0)
        return ret;
    c->res->image_end_offset = (highest + 1) * (int64_t)s->cluster_size;
    return 0;
}

/* Snapshot table: reread it as check sees it, dropping what can't be kept
 * when repairing; returns its own counts in *sr. */
static int check_snapshot_table(struct chk *c, struct bdev_check_result *sr)
{
    struct qcow2_state *s = c->s;
    struct qcow2_sn_check sc;
    struct error err = { 0 };
    bool repair = c->fix & BDEV_FIX_ERRORS;
    int ret = qcow2_read_snapshots_repair(s, repair, &sc, c->log, &err);
    if (ret < 0) {
        sr->check_errors++;
        say(c, "%s: ERROR %s%s\n", error_progname(),
            sc.bad_pointer ? "" : "failed to read the snapshot table: ", err.msg);
        s->snapshots_offset = 0;
        c->sn_table_size = 0;
        return ret;
    }
    c->sn_table_size = sc.table_size;
    sr->corruptions += sc.extra_dropped + sc.reduced;
    if (sc.reduced) {
        /* The header must agree with the table before refcounts are checked. */
        uint32_t nb = htobe32(s->nb_snapshots);
        ret = bdev_pwrite(s->bs->file, QCOW2_HDR_NB_SNAPSHOTS, &nb, 4, 0);
        if (ret == 0)
            ret = qcow2_barrier(s);
        if (ret < 0) {
            sr->check_errors++;
            say(c, "ERROR failed to update the snapshot count in the image header: %s\n",
                strerror(-ret));
            return ret;
        }
        s->hdr.nb_snapshots = s->nb_snapshots;
        sr->corruptions_fixed += sc.reduced;
        sr->corruptions -= sc.reduced;
    }
    if (s->hdr.version >= 3) {
        for (uint32_t i = 0; i < s->nb_snapshots; i++) {
            if (s->snapshots[i].extra_data_size < 16) {
                sr->corruptions++;
                say(c, "%s snapshot table entry %u is incomplete\n",
                    repair ? "Repairing" : "ERROR", i);
            }
        }
    }
    return 0;
}

static int fix_snapshot_table(struct chk *c, struct bdev_check_result *sr)
{
    if (!sr->corruptions || !(c->fix & BDEV_FIX_ERRORS))
        return 0;
    /* Free the old table only if check counted it (it lies inside the file):
     * otherwise its refcounts were never accounted for. */
    uint64_t old = c->sn_table_size, end = c->s->snapshots_offset + old;
    if (old && (end < old || (end > (uint64_t)c->file_len &&
                              end - c->file_len >= c->s->cluster_size) ||
                !qcow2_range_refcounted(c->s, c->s->snapshots_offset, old))) {
        say(c, "qcow2_free_clusters failed: Invalid argument\n");
        old = 0;
    }
    int ret = qcow2_write_snapshots(c->s, old);
    if (ret < 0) {
        sr->check_errors++;
        say(c, "ERROR failed to update snapshot table: %s\n", strerror(-ret));
        return ret;
    }
    sr->corruptions_fixed += sr->corruptions;
    sr->corruptions = 0;
    return 0;
}

static void add_result(struct bdev_check_result *to, const struct bdev_check_result *r)
{
    to->corruptions += r->corruptions;
    to->leaks += r->leaks;
    to->check_errors += r->check_errors;
    to->corruptions_fixed += r->corruptions_fixed;
    to->leaks_fixed += r->leaks_fixed;
}

static int mark_consistent(struct qcow2_state *s)
{
    if (!(s->hdr.incompatible_features & QCOW2_INCOMPAT_CORRUPT)) {
        s->corrupt = false;
        return 0;
    }
    int ret = qcow2_flush_metadata(s);
    if (ret < 0)
        return ret;
    uint64_t v = htobe64(s->hdr.incompatible_features & ~QCOW2_INCOMPAT_CORRUPT);
    ret = bdev_pwrite(s->bs->file, QCOW2_HDR_INCOMPAT, &v, 8, 0);
    if (ret == 0)
        ret = qcow2_barrier(s);
    if (ret == 0) {
        s->hdr.incompatible_features &= ~QCOW2_INCOMPAT_CORRUPT;
        s->corrupt = false;
    }
    return ret;
}

static bool cache_dirty(const struct qcow2_cache *cache)
{
    for (int i = 0; i < cache->n; i++)
        if (cache->e[i].dirty)
            return true;
    return false;
}

static bool metadata_dirty(struct qcow2_state *s)
{
    return s->n_pending || cache_dirty(&s->rb_cache) || cache_dirty(&s->l2_cache);
}

static int check_locked(struct chk *c)
{
    struct qcow2_state *s = c->s;
    struct bdev_check_result sr = { 0 }, rr = { 0 };
    int ret = 0;
    if (!s->read_only && metadata_dirty(s)) {
        /* Check reads the disk, and repairs write it directly: nothing may
         * be pending in the caches. */
        ret = qcow2_flush_metadata(s);
        if (ret < 0)
            return ret;
    }
    ret = check_snapshot_table(c, &sr);
    if (ret < 0) {
        add_result(c->res, &sr);
        return ret;
    }
    c->res = &rr;
    ret = check_refcounts(c);
    qcow2_cache_empty(&s->l2_cache);
    c->res = &c->final;
    *c->res = rr;
    if (ret < 0) {
        add_result(c->res, &sr);
        return ret;
    }
    ret = fix_snapshot_table(c, &sr);
    add_result(c->res, &sr);
    if (ret < 0)
        return ret;
    if (c->fix && !c->res->check_errors && !c->res->corruptions) {
        ret = qcow2_mark_clean(s);
        if (ret == 0)
            ret = mark_consistent(s);
    }
    if (ret == 0 && c->fix && metadata_dirty(s))
        ret = qcow2_flush_metadata(s);
    return ret;
}

int qcow2_check(struct bdev *bs, struct bdev_check_result *res, int fix, FILE *log)
{
    struct qcow2_state *s = qcow2_state(bs);
    struct chk c = { .s = s, .fix = fix, .log = log };
    c.res = &c.final;
    if (fix && (s->read_only || bs->read_only))
        return -EACCES;
    pthread_mutex_lock(&s->lock);
    int ret = check_locked(&c);
    pthread_mutex_unlock(&s->lock);
    *res = c.final;
    free(c.rc);
    return ret;
}

/* ---- writing a new refcount structure --------------------------------------- */

struct rebuild_plan {
    uint64_t **rc, *n;
    unsigned rb_bits;
    uint64_t *table;       /* refcount block offsets, host order */
    uint64_t entries;      /* table entries (whole clusters of them) */
    uint64_t cursor;       /* first-fit start for single clusters */
    uint64_t table_at, table_clusters;
};

static int64_t alloc_one(struct rebuild_plan *p)
{
    while (p->cursor < *p->n && (*p->rc)[p->cursor])
        p->cursor++;
    if (p->cursor >= *p->n && grow_rc(p->rc, p->n, p->cursor + 1) < 0)
        return -ENOMEM;
    (*p->rc)[p->cursor] = 1;
    return (int64_t)p->cursor++;
}

static int64_t alloc_run(struct rebuild_plan *p, uint64_t k)
{
    uint64_t start = 0, len = 0;
    for (uint64_t c = 0; c < *p->n && len < k; c++) {
        if ((*p->rc)[c]) {
            len = 0;
            start = c + 1;
        } else {
            len++;
        }
    }
    if (grow_rc(p->rc, p->n, start + k) < 0)
        return -ENOMEM;
    for (uint64_t c = start; c < start + k; c++)
        (*p->rc)[c] = 1;
    return (int64_t)start;
}

/* Give every refcount block range holding a nonzero refcount a block;
 * returns how many were added. */
static int64_t place_blocks(struct rebuild_plan *p, unsigned cluster_bits)
{
    int64_t added = 0;
    uint64_t per_cluster = (1ull << cluster_bits) / 8;
    for (uint64_t c = 0; c < *p->n; c++) {
        if (!(*p->rc)[c])
            continue;
        uint64_t ti = c >> p->rb_bits;
        if (ti >= p->entries) {
            uint64_t ne = (ti / per_cluster + 1) * per_cluster;
            uint64_t *t = realloc(p->table, ne * 8);
            if (!t)
                return -ENOMEM;
            memset(t + p->entries, 0, (ne - p->entries) * 8);
            p->table = t;
            p->entries = ne;
        }
        if (!p->table[ti]) {
            int64_t b = alloc_one(p);
            if (b < 0)
                return b;
            p->table[ti] = (uint64_t)b << cluster_bits;
            added++;
        }
        c = ((ti + 1) << p->rb_bits) - 1;
    }
    return added;
}

static int plan_structure(struct rebuild_plan *p, unsigned cluster_bits)
{
    uint64_t per_cluster = (1ull << cluster_bits) / 8;
    for (;;) {
        int64_t added = place_blocks(p, cluster_bits);
        if (added < 0)
            return (int)added;
        uint64_t need = p->entries / per_cluster;
        if (!added && need == p->table_clusters)
            return 0;
        if (need != p->table_clusters) {
            for (uint64_t i = 0; i < p->table_clusters; i++)
                (*p->rc)[p->table_at + i] = 0;
            int64_t at = alloc_run(p, need);
            if (at < 0)
                return (int)at;
            p->table_at = (uint64_t)at;
            p->table_clusters = need;
            if (p->cursor > p->table_at)
                p->cursor = p->table_at;
        }
    }
}

static void rb_encode(uint8_t *b, unsigned order, uint64_t i, uint64_t v)
{
    switch (order) {
    case 0: case 1: case 2: {
        unsigned bits = 1u << order, per = 8 / bits, sh = bits * (i % per);
        b[i / per] |= (uint8_t)(v << sh);
        break;
    }
    case 3: b[i] = (uint8_t)v; break;
    case 4: { uint16_t x = htobe16((uint16_t)v); memcpy(b + 2 * i, &x, 2); break; }
    case 5: { uint32_t x = htobe32((uint32_t)v); memcpy(b + 4 * i, &x, 4); break; }
    default: { uint64_t x = htobe64(v); memcpy(b + 8 * i, &x, 8); break; }
    }
}

static int write_structure(struct qcow2_state *s, struct rebuild_plan *p, unsigned order)
{
    uint8_t *b = malloc(s->cluster_size);
    if (!b)
        return -ENOMEM;
    int ret = 0;
    uint64_t per_rb = 1ull << p->rb_bits;
    for (uint64_t ti = 0; ti < p->entries && ret == 0; ti++) {
        if (!p->table[ti])
            continue;
        memset(b, 0, s->cluster_size);
        for (uint64_t i = 0; i < per_rb && (ti * per_rb + i) < *p->n; i++)
            rb_encode(b, order, i, (*p->rc)[ti * per_rb + i]);
        ret = bdev_pwrite(s->bs->file, p->table[ti], b, s->cluster_size, 0);
    }
    free(b);
    if (ret < 0)
        return ret;
    uint64_t *t = calloc(p->table_clusters, s->cluster_size);
    if (!t)
        return -ENOMEM;
    for (uint64_t i = 0; i < p->entries; i++)
        t[i] = htobe64(p->table[i]);
    ret = bdev_pwrite(s->bs->file, p->table_at << s->cluster_bits, t,
                      p->table_clusters << s->cluster_bits, 0);
    free(t);
    return ret < 0 ? ret : qcow2_barrier(s);
}

/* Point the header at the new structure and make the core use it. */
static int switch_structure(struct qcow2_state *s, struct rebuild_plan *p, unsigned order)
{
    uint64_t off = p->table_at << s->cluster_bits;
    int ret;
    s->hdr.refcount_table_offset = off;
    s->hdr.refcount_table_clusters = (uint32_t)p->table_clusters;
    if (order != s->refcount_order) {
        s->hdr.refcount_order = order;
        ret = qcow2_write_header(s);
    } else {
        uint8_t h[12];
        uint64_t o = htobe64(off);
        uint32_t n = htobe32((uint32_t)p->table_clusters);
        memcpy(h, &o, 8);
        memcpy(h + 8, &n, 4);
        ret = bdev_pwrite(s->bs->file, QCOW2_HDR_REFTABLE, h, 12, 0);
        if (ret == 0)
            ret = qcow2_barrier(s);
    }
    if (ret < 0)
        return ret;
    qcow2_cache_empty(&s->rb_cache);
    free(s->refcount_table);
    s->refcount_table = p->table;
    p->table = NULL;
    s->refcount_table_size = p->entries;
    s->refcount_table_offset = off;
    s->refcount_order = order;
    s->refcount_bits = 1u << order;
    s->refcount_max = order == 6 ? UINT64_MAX : (1ull << s->refcount_bits) - 1;
    s->rb_bits = p->rb_bits;
    s->free_cluster_index = 0;
    if (*p->n > s->alloc_end)
        s->alloc_end = *p->n;
    return 0;
}

int qcow2_rebuild_refcounts(struct qcow2_state *s, uint64_t **rc, uint64_t *n,
                            unsigned order, struct error *err)
{
    uint64_t max = order == 6 ? UINT64_MAX : (1ull << (1u << order)) - 1;
    for (uint64_t i = 0; i < *n; i++)
        if ((*rc)[i] > max)
            return error_set(err, -EINVAL, "Cannot decrease refcount entry width to %u bits: "
                             "Cluster at offset %#" PRIx64 " has a refcount of %" PRIu64,
                             1u << order, i << s->cluster_bits, (*rc)[i]);
    struct rebuild_plan p = { .rc = rc, .n = n, .rb_bits = s->cluster_bits + 3 - order };
    int ret = plan_structure(&p, s->cluster_bits);
    if (ret == 0)
        ret = write_structure(s, &p, order);
    if (ret == 0)
        ret = switch_structure(s, &p, order);
    free(p.table);
    if (ret < 0)
        return error_set_errno(err, ret, "ERROR writing the new refcount structure");
    return 0;
}
