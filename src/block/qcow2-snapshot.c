/* qcow2 internal snapshots: the snapshot table (read, validate, rewrite),
 * and create / goto / delete / list.
 *
 * A snapshot is a copy of the active L1 table plus one more reference on
 * every cluster it reaches. Every step keeps refcount >= references on
 * disk: increments are made durable before the table or L1 that adds the
 * reference, decrements are applied only after the reference is gone. */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "block/qcow2-meta.h"

static uint64_t align8(uint64_t x) { return (x + 7) & ~7ull; }

static uint64_t get_be64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static uint32_t get_be32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static uint16_t get_be16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static void put_be64(uint8_t *p, uint64_t x) { x = htobe64(x); memcpy(p, &x, 8); }
static void put_be32(uint8_t *p, uint32_t x) { x = htobe32(x); memcpy(p, &x, 4); }
static void put_be16(uint8_t *p, uint16_t x) { x = htobe16(x); memcpy(p, &x, 2); }

/* ---- the table ----------------------------------------------------------- */

static void free_one(struct qcow2_snapshot *sn)
{
    free(sn->id_str);
    free(sn->name);
    free(sn->unknown_extra);
    memset(sn, 0, sizeof(*sn));
}

void qcow2_free_snapshots(struct qcow2_state *s)
{
    for (uint32_t i = 0; i < s->nb_snapshots && s->snapshots; i++)
        free_one(&s->snapshots[i]);
    free(s->snapshots);
    s->snapshots = NULL;
    s->nb_snapshots = 0;
}

static uint64_t entry_size(const struct qcow2_snapshot *sn)
{
    return QCOW2_SN_HEADER_SIZE + sn->extra_data_size + strlen(sn->id_str) + strlen(sn->name);
}

uint64_t qcow2_snapshot_table_size(struct qcow2_state *s)
{
    uint64_t size = 0;
    for (uint32_t i = 0; i < s->nb_snapshots; i++)
        size = align8(size) + entry_size(&s->snapshots[i]);
    return size;
}

/* Reads of metadata that may run past the end of the file see zeroes there,
 * as QEMU's block layer gives them (check counts such cases as corruption). */
static int pread_zero_fill(struct qcow2_state *s, uint64_t off, void *buf, uint64_t len)
{
    int64_t flen = bdev_getlength(s->bs->file);
    if (flen < 0)
        return (int)flen;
    uint64_t have = off >= (uint64_t)flen ? 0 : (uint64_t)flen - off;
    if (have > len)
        have = len;
    memset((uint8_t *)buf + have, 0, len - have);
    return have ? bdev_pread(s->bs->file, off, buf, have) : 0;
}

static char *read_string(struct qcow2_state *s, uint64_t off, uint32_t len, int *ret)
{
    char *p = malloc(len + 1);
    if (!p) {
        *ret = -ENOMEM;
        return NULL;
    }
    *ret = pread_zero_fill(s, off, p, len);
    p[len] = 0;
    return p;
}

struct sn_reader {
    struct qcow2_state *s;
    bool check;        /* opened for check: tolerate, report, maybe repair */
    bool repair;
    struct qcow2_sn_check *out;
    FILE *log;         /* what repair drops is reported here, if set */
    struct error *err;
};

/* Parse entry i at *off (advanced past it). */
static int read_entry(struct sn_reader *r, uint32_t i, uint64_t *off, struct qcow2_snapshot *sn)
{
    struct qcow2_state *s = r->s;
    uint8_t h[QCOW2_SN_HEADER_SIZE], ex[QCOW2_SN_EXTRA_SIZE] = {0};
    int ret = pread_zero_fill(s, *off, h, sizeof(h));
    if (ret < 0)
        return error_set_errno(r->err, ret, "Failed to read snapshot table");
    *off += sizeof(h);
    sn->l1_table_offset = get_be64(h);
    sn->l1_size = get_be32(h + 8);
    uint16_t id_size = get_be16(h + 12), name_size = get_be16(h + 14);
    sn->date_sec = get_be32(h + 16);
    sn->date_nsec = get_be32(h + 20);
    sn->vm_clock_nsec = get_be64(h + 24);
    sn->vm_state_size = get_be32(h + 32);
    uint32_t extra = get_be32(h + 36), extra_end_skip = 0;
    if (extra > QCOW2_MAX_SN_EXTRA_DATA) {
        if (!r->repair)
            return error_set(r->err, -EFBIG, "Too much extra metadata in snapshot table "
                             "entry %u\nYou can force-remove this extra metadata with "
                             "qemu-img check -r all", i);
        if (r->log)
            fprintf(r->log, "Discarding too much extra metadata in snapshot table entry %u "
                "(%u > %u)\n", i, extra, QCOW2_MAX_SN_EXTRA_DATA);
        r->out->extra_dropped++;
        extra_end_skip = extra - QCOW2_MAX_SN_EXTRA_DATA;
        extra = QCOW2_MAX_SN_EXTRA_DATA;
    }
    sn->extra_data_size = extra;
    uint32_t known = extra < sizeof(ex) ? extra : sizeof(ex);
    ret = pread_zero_fill(s, *off, ex, known);
    if (ret < 0)
        return error_set_errno(r->err, ret, "Failed to read snapshot table");
    *off += known;
    if (extra >= 8)
        sn->vm_state_size = get_be64(ex);
    sn->disk_size = extra >= 16 ? get_be64(ex + 8) : s->hdr.size;
    sn->icount = extra >= 24 ? get_be64(ex + 16) : UINT64_MAX;
    if (extra > sizeof(ex)) {
        sn->unknown_extra_size = extra - sizeof(ex);
        sn->unknown_extra = malloc(sn->unknown_extra_size);
        if (!sn->unknown_extra)
            return error_set(r->err, -ENOMEM, "Failed to read snapshot table");
        ret = pread_zero_fill(s, *off, sn->unknown_extra, sn->unknown_extra_size);
        if (ret < 0)
            return error_set_errno(r->err, ret, "Failed to read snapshot table");
        *off += sn->unknown_extra_size + extra_end_skip;
    }
    sn->id_str = read_string(s, *off, id_size, &ret);
    if (ret == 0) {
        *off += id_size;
        sn->name = read_string(s, *off, name_size, &ret);
        *off += name_size;
    }
    if (ret < 0)
        return error_set_errno(r->err, ret, "Failed to read snapshot table");
    return 0;
}

static int check_table_pointer(struct sn_reader *r, uint32_t *n)
{
    struct qcow2_state *s = r->s;
    uint64_t off = s->hdr.snapshots_offset;
    /* check names the table in lower case, as QEMU does */
    const char *name = r->check ? "snapshot table" : "Snapshot table";
    if (*n > QCOW2_MAX_SNAPSHOTS && r->repair) {
        if (r->log)
            fprintf(r->log, "Discarding %u overhanging snapshots\n", *n - QCOW2_MAX_SNAPSHOTS);
        r->out->reduced += *n - QCOW2_MAX_SNAPSHOTS;
        *n = QCOW2_MAX_SNAPSHOTS;
    }
    if (*n > QCOW2_MAX_SNAPSHOTS) {
        r->out->bad_pointer = true;
        if (!r->check)
            return error_set(r->err, -EFBIG, "Too many snapshots");
        return error_set(r->err, -EFBIG, "%s too large\nYou can force-remove all %u "
                         "overhanging snapshots with qemu-img check -r all", name,
                         *n - QCOW2_MAX_SNAPSHOTS);
    }
    if (*n && (qcow2_offset_in_cluster(s, off) ||
               off > INT64_MAX - (uint64_t)*n * QCOW2_SN_HEADER_SIZE)) {
        r->out->bad_pointer = true;
        return error_set(r->err, -EINVAL, "%s offset invalid", name);
    }
    int64_t flen = bdev_getlength(s->bs->file);
    if (flen < 0)
        return error_set_errno(r->err, (int)flen, "Could not get the file size");
    if (*n && !r->check && off + (uint64_t)*n * QCOW2_SN_HEADER_SIZE > (uint64_t)flen)
        return error_set(r->err, -EINVAL, "Snapshot table exceeds the end of the file "
                         "(offset %#llx, %u entries)", (unsigned long long)off, *n);
    return 0;
}

static int read_table(struct sn_reader *r)
{
    uint64_t *table_size = &r->out->table_size;
    struct qcow2_state *s = r->s;
    uint32_t n = s->hdr.nb_snapshots;
    qcow2_free_snapshots(s);
    *table_size = 0;
    s->snapshots_offset = s->hdr.snapshots_offset;
    int ret = check_table_pointer(r, &n);
    if (ret < 0 || n == 0)
        return ret;
    int64_t flen = bdev_getlength(s->bs->file);
    s->snapshots = calloc(n, sizeof(*s->snapshots));
    if (!s->snapshots)
        return error_set(r->err, -ENOMEM, "Snapshot table too large");
    uint64_t off = s->snapshots_offset;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t start = off;
        off = s->snapshots_offset + align8(off - s->snapshots_offset);
        s->nb_snapshots = i + 1;
        ret = read_entry(r, i, &off, &s->snapshots[i]);
        if (ret < 0)
            return ret;
        if (!r->check && off > (uint64_t)flen)
            return error_set(r->err, -EINVAL, "Snapshot table entry %u exceeds the end of "
                             "the file", i);
        if (off - s->snapshots_offset > QCOW2_MAX_SNAPSHOTS_SIZE) {
            if (!r->repair)
                return error_set(r->err, -EFBIG, "Snapshot table is too big\nYou can "
                                 "force-remove all %u overhanging snapshots with qemu-img "
                                 "check -r all", n - i);
            if (r->log)
                fprintf(r->log, "Discarding %u overhanging snapshots (snapshot table is too "
                    "big)\n", n - i);
            r->out->reduced += n - i;
            free_one(&s->snapshots[i]);
            s->nb_snapshots = i;
            off = start;
            break;
        }
    }
    *table_size = off - s->snapshots_offset;
    return 0;
}

int qcow2_read_snapshots(struct qcow2_state *s, struct error *err)
{
    struct qcow2_sn_check out = { 0 };
    struct sn_reader r = { s, (s->bs->flags & BDEV_O_CHECK) != 0, false, &out, NULL, err };
    int ret = read_table(&r);
    if (ret < 0)
        qcow2_free_snapshots(s);
    return ret;
}

int qcow2_read_snapshots_repair(struct qcow2_state *s, bool repair,
                                struct qcow2_sn_check *out, FILE *log, struct error *err)
{
    memset(out, 0, sizeof(*out));
    struct sn_reader r = { s, true, repair, out, log, err };
    int ret = read_table(&r);
    if (ret < 0)
        qcow2_free_snapshots(s);
    return ret;
}

static void encode_entry(const struct qcow2_snapshot *sn, uint8_t *p)
{
    uint32_t extra = sn->extra_data_size > QCOW2_SN_EXTRA_SIZE ? sn->extra_data_size
                                                               : QCOW2_SN_EXTRA_SIZE;
    size_t id_len = strlen(sn->id_str), name_len = strlen(sn->name);
    put_be64(p, sn->l1_table_offset);
    put_be32(p + 8, sn->l1_size);
    put_be16(p + 12, (uint16_t)id_len);
    put_be16(p + 14, (uint16_t)name_len);
    put_be32(p + 16, sn->date_sec);
    put_be32(p + 20, sn->date_nsec);
    put_be64(p + 24, sn->vm_clock_nsec);
    put_be32(p + 32, sn->vm_state_size > UINT32_MAX ? 0 : (uint32_t)sn->vm_state_size);
    put_be32(p + 36, extra);
    p += QCOW2_SN_HEADER_SIZE;
    put_be64(p, sn->vm_state_size);
    put_be64(p + 8, sn->disk_size);
    put_be64(p + 16, sn->icount);
    p += QCOW2_SN_EXTRA_SIZE;
    if (sn->unknown_extra_size && sn->unknown_extra) {
        memcpy(p, sn->unknown_extra, sn->unknown_extra_size);
        p += sn->unknown_extra_size;
    }
    memcpy(p, sn->id_str, id_len);
    memcpy(p + id_len, sn->name, name_len);
}

static int write_header_pointer(struct qcow2_state *s, uint32_t n, uint64_t off)
{
    uint8_t b[12];
    put_be32(b, n);
    put_be64(b + 4, off);
    int ret = bdev_pwrite(s->bs->file, QCOW2_HDR_NB_SNAPSHOTS, b, sizeof(b), 0);
    return ret < 0 ? ret : qcow2_barrier(s);
}

int qcow2_write_snapshots(struct qcow2_state *s, uint64_t old_size)
{
    uint64_t old_off = s->snapshots_offset;
    /* Entries are written with at least the v3 extra data. */
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        struct qcow2_snapshot *sn = &s->snapshots[i];
        if (sn->extra_data_size < QCOW2_SN_EXTRA_SIZE)
            sn->extra_data_size = QCOW2_SN_EXTRA_SIZE;
    }
    uint64_t size = qcow2_snapshot_table_size(s), off = 0;
    if (size > QCOW2_MAX_SNAPSHOTS_SIZE)
        return -EFBIG;
    int ret = 0;
    if (size) {
        uint8_t *buf = calloc(1, size);
        if (!buf)
            return -ENOMEM;
        int64_t a = qcow2_alloc_clusters(s, (size + s->cluster_size - 1) >> s->cluster_bits);
        ret = a < 0 ? (int)a : 0;
        uint64_t pos = 0;
        for (uint32_t i = 0; ret == 0 && i < s->nb_snapshots; i++) {
            pos = align8(pos);
            encode_entry(&s->snapshots[i], buf + pos);
            pos += entry_size(&s->snapshots[i]);
        }
        if (ret == 0)
            ret = bdev_pwrite(s->bs->file, (uint64_t)a, buf, size, 0);
        free(buf);
        if (ret < 0)
            return ret;
        off = (uint64_t)a;
    }
    /* The new table and every refcount it relies on, durable first. */
    ret = qcow2_flush_metadata(s);
    if (ret == 0)
        ret = qcow2_barrier(s);
    if (ret == 0)
        ret = write_header_pointer(s, s->nb_snapshots, off);
    if (ret < 0)
        return ret;
    s->snapshots_offset = s->hdr.snapshots_offset = off;
    s->hdr.nb_snapshots = s->nb_snapshots;
    if (old_off && old_size && qcow2_range_refcounted(s, old_off, old_size)) {
        /* Never the clusters the new table now uses (only possible when a
         * repair already freed the old table's). */
        uint64_t cs = s->cluster_size, a0 = old_off & ~(cs - 1);
        uint64_t a1 = (old_off + old_size + cs - 1) & ~(cs - 1);
        uint64_t n0 = off, n1 = off + ((size + cs - 1) & ~(cs - 1));
        qcow2_io_quiesce(s);     /* no request may still use them */
        for (uint64_t c = a0; c < a1 && ret == 0; c += cs)
            if (!size || c < n0 || c >= n1)
                ret = qcow2_update_refcount(s, c, cs, -1);
        qcow2_io_resume(s);
    }
    return ret;
}

bool qcow2_range_refcounted(struct qcow2_state *s, uint64_t off, uint64_t bytes)
{
    uint64_t first = off >> s->cluster_bits, last = (off + bytes - 1) >> s->cluster_bits, rc;
    if (!bytes || off + bytes < off)
        return false;
    for (uint64_t c = first; c <= last; c++) {
        uint64_t ti = c >> s->rb_bits;
        if (ti >= s->refcount_table_size ||
            qcow2_offset_in_cluster(s, s->refcount_table[ti] & QCOW2_REFT_OFFSET_MASK) ||
            qcow2_get_refcount(s, c, &rc) < 0 || rc == 0)
            return false;
    }
    return true;
}

/* ---- walking a snapshot's (or the active) tree ---------------------------- */

static int l2_walk(struct qcow2_state *s, uint64_t l2_off, int delta)
{
    void *l2;
    int ret = qcow2_cache_get(s, &s->l2_cache, l2_off, &l2);
    if (ret < 0)
        return ret;
    for (uint64_t j = 0; j < s->l2_size && ret == 0; j++) {
        uint64_t e = qcow2_l2_get(s, l2, j), rc;
        if (e & QCOW2_OFLAG_COMPRESSED) {
            uint64_t coff = e & s->cluster_offset_mask;
            uint64_t nsec = ((e >> s->csize_shift) & s->csize_mask) + 1;
            if (delta)
                ret = qcow2_update_refcount(s, coff, nsec * QCOW2_SECTOR - (coff & 511),
                                            delta);
            continue;
        }
        uint64_t off = e & QCOW2_L2E_OFFSET_MASK;
        if (!off)
            continue;
        if (qcow2_offset_in_cluster(s, off)) {
            ret = qcow2_signal_corruption(s, "Cluster allocation offset %#llx unaligned (L2 "
                                          "offset: %#llx, L2 index: %#llx)",
                                          (unsigned long long)off,
                                          (unsigned long long)l2_off, (unsigned long long)j);
            break;
        }
        if (delta)
            ret = qcow2_update_refcount(s, off, s->cluster_size, delta);
        if (ret == 0)
            ret = qcow2_get_refcount(s, off >> s->cluster_bits, &rc);
        if (ret < 0)
            break;
        uint64_t ne = rc == 1 ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
        if (ne != e) {
            qcow2_l2_set(s, l2, j, ne);
            qcow2_cache_mark_dirty(&s->l2_cache, l2);
        }
    }
    qcow2_cache_put(&s->l2_cache, &l2);
    return ret;
}

int qcow2_update_tree_refcounts(struct qcow2_state *s, uint64_t *l1, uint32_t l1_size,
                                int delta, bool *l1_changed)
{
    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t l2_off = l1[i] & QCOW2_L1E_OFFSET_MASK, rc;
        if (!l2_off)
            continue;
        if (qcow2_offset_in_cluster(s, l2_off))
            return qcow2_signal_corruption(s, "L2 table offset %#llx unaligned (L1 index: "
                                           "%#x)", (unsigned long long)l2_off, i);
        int ret = l2_walk(s, l2_off, delta);
        if (ret == 0 && delta)
            ret = qcow2_update_refcount(s, l2_off, s->cluster_size, delta);
        if (ret == 0)
            ret = qcow2_get_refcount(s, l2_off >> s->cluster_bits, &rc);
        if (ret < 0)
            return ret;
        uint64_t ne = rc == 1 ? l1[i] | QCOW2_OFLAG_COPIED : l1[i] & ~QCOW2_OFLAG_COPIED;
        if (ne != l1[i]) {
            l1[i] = ne;
            if (l1_changed)
                *l1_changed = true;
        }
    }
    return 0;
}

/* ---- L1 tables on disk ---------------------------------------------------- */

static int write_l1(struct qcow2_state *s, uint64_t off, const uint64_t *l1, uint32_t n,
                    uint32_t pad_to)
{
    uint32_t total = n > pad_to ? n : pad_to;
    if (!total)
        return 0;
    uint64_t *be = calloc(total, 8);
    if (!be)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        be[i] = htobe64(l1[i]);
    int ret = bdev_pwrite(s->bs->file, off, be, (uint64_t)total * 8, 0);
    free(be);
    return ret;
}

static int write_size(struct qcow2_state *s, uint64_t size)
{
    uint8_t b[8];
    put_be64(b, size);
    int ret = bdev_pwrite(s->bs->file, QCOW2_HDR_SIZE, b, 8, 0);
    if (ret == 0)
        ret = qcow2_barrier(s);
    if (ret == 0)
        s->hdr.size = size;
    return ret;
}

static int validate_sn_l1(struct qcow2_state *s, const struct qcow2_snapshot *sn,
                          struct error *err)
{
    if (sn->l1_size > QCOW2_MAX_L1_SIZE / 8)
        return error_set(err, -EFBIG, "Snapshot L1 table too large");
    int64_t flen = bdev_getlength(s->bs->file);
    if (flen < 0)
        return error_set_errno(err, (int)flen, "Could not get the file size");
    if (sn->l1_size && (qcow2_offset_in_cluster(s, sn->l1_table_offset) ||
                        sn->l1_table_offset + (uint64_t)sn->l1_size * 8 > (uint64_t)flen))
        return error_set(err, -EINVAL, "Snapshot L1 table offset invalid");
    return 0;
}

static int read_sn_l1(struct qcow2_state *s, const struct qcow2_snapshot *sn, uint32_t n,
                      uint64_t **out)
{
    uint64_t *l1 = calloc(n ? n : 1, 8);
    if (!l1)
        return -ENOMEM;
    int ret = sn->l1_size ? bdev_pread(s->bs->file, sn->l1_table_offset, l1,
                                       (uint64_t)sn->l1_size * 8) : 0;
    if (ret < 0) {
        free(l1);
        return ret;
    }
    for (uint32_t i = 0; i < sn->l1_size; i++)
        l1[i] = be64toh(l1[i]);
    *out = l1;
    return 0;
}

/* ---- operations ----------------------------------------------------------- */

static int find_by_id(struct qcow2_state *s, const char *id)
{
    for (uint32_t i = 0; i < s->nb_snapshots; i++)
        if (!strcmp(s->snapshots[i].id_str, id))
            return (int)i;
    return -1;
}

static int find_by_name(struct qcow2_state *s, const char *name)
{
    for (uint32_t i = 0; i < s->nb_snapshots; i++)
        if (!strcmp(s->snapshots[i].name, name))
            return (int)i;
    return -1;
}

static char *new_id(struct qcow2_state *s)
{
    unsigned long max = 0;
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        unsigned long id = strtoul(s->snapshots[i].id_str, NULL, 10);
        if (id > max)
            max = id;
    }
    char buf[32];
    snprintf(buf, sizeof(buf), "%lu", max + 1);
    return strdup(buf);
}

/* Clear QCOW2_OFLAG_COPIED in the active L1 and every L2 entry it reaches. */
static int clear_copied(struct qcow2_state *s, bool *l1_changed)
{
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t l2_off = s->l1_table[i] & QCOW2_L1E_OFFSET_MASK;
        void *l2;
        if (!l2_off)
            continue;
        if (qcow2_offset_in_cluster(s, l2_off))
            return qcow2_signal_corruption(s, "L2 table offset %#llx unaligned (L1 index: "
                                           "%#x)", (unsigned long long)l2_off, i);
        int ret = qcow2_cache_get(s, &s->l2_cache, l2_off, &l2);
        if (ret < 0)
            return ret;
        for (uint64_t j = 0; j < s->l2_size; j++) {
            uint64_t e = qcow2_l2_get(s, l2, j);
            if (!(e & QCOW2_OFLAG_COMPRESSED) && (e & QCOW2_OFLAG_COPIED)) {
                qcow2_l2_set(s, l2, j, e & ~QCOW2_OFLAG_COPIED);
                qcow2_cache_mark_dirty(&s->l2_cache, l2);
            }
        }
        qcow2_cache_put(&s->l2_cache, &l2);
        if (s->l1_table[i] & QCOW2_OFLAG_COPIED) {
            s->l1_table[i] &= ~QCOW2_OFLAG_COPIED;
            *l1_changed = true;
        }
    }
    return 0;
}

static int create_locked(struct qcow2_state *s, const char *name, struct error *err)
{
    if (s->nb_snapshots >= QCOW2_MAX_SNAPSHOTS)
        return error_set(err, -EFBIG, "Too many snapshots");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct qcow2_snapshot sn = {
        .l1_size = s->l1_size, .disk_size = s->hdr.size,
        .date_sec = (uint32_t)ts.tv_sec, .date_nsec = (uint32_t)(ts.tv_nsec / 1000 * 1000),
        .extra_data_size = QCOW2_SN_EXTRA_SIZE, .icount = 0,
        .id_str = new_id(s), .name = strndup(name, 255),
    };
    struct qcow2_snapshot *arr = realloc(s->snapshots, (s->nb_snapshots + 1) * sizeof(sn));
    if (arr)
        s->snapshots = arr;
    int ret = qcow2_flush_metadata(s);
    if (!sn.id_str || !sn.name || !arr)
        ret = -ENOMEM;
    /* COPIED goes first: a crash then leaves flags that merely cost a
     * needless copy-on-write, never a shared cluster written in place. */
    bool changed = false;
    if (ret == 0)
        ret = clear_copied(s, &changed);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    if (ret == 0 && changed)
        ret = write_l1(s, s->l1_table_offset, s->l1_table, s->l1_size, 0);
    if (ret == 0 && changed)
        ret = qcow2_barrier(s);
    if (ret == 0 && s->l1_size) {
        int64_t a = qcow2_alloc_clusters(s, (s->l1_size * 8ull + s->cluster_size - 1) >>
                                            s->cluster_bits);
        ret = a < 0 ? (int)a : 0;
        sn.l1_table_offset = a < 0 ? 0 : (uint64_t)a;
    }
    /* One more reference on everything the active L1 reaches. */
    if (ret == 0)
        ret = qcow2_update_tree_refcounts(s, s->l1_table, s->l1_size, 1, NULL);
    if (ret == 0 && s->l1_size)
        ret = write_l1(s, sn.l1_table_offset, s->l1_table, s->l1_size, 0);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    if (ret < 0) {
        free_one(&sn);
        return error_set_errno(err, ret, "Failed to create snapshot");
    }
    uint64_t old_size = qcow2_snapshot_table_size(s);
    s->snapshots[s->nb_snapshots++] = sn;
    ret = qcow2_write_snapshots(s, old_size);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    if (ret < 0) {
        /* Not in the table: its references are at worst leaked. */
        free_one(&s->snapshots[--s->nb_snapshots]);
        return error_set_errno(err, ret, "Failed to create snapshot");
    }
    return 0;
}

static int goto_locked(struct qcow2_state *s, int idx, struct error *err)
{
    struct qcow2_snapshot *sn = &s->snapshots[idx];
    int ret = validate_sn_l1(s, sn, err);
    if (ret < 0)
        return ret;
    uint32_t l1_max = sn->l1_size > s->l1_size ? sn->l1_size : s->l1_size;
    if (sn->disk_size % QCOW2_SECTOR || sn->disk_size > (uint64_t)INT64_MAX ||
        qcow2_l1_entries(s, sn->disk_size) > l1_max)
        return error_set(err, -EINVAL, "Snapshot %s has an invalid disk size (%" PRIu64 ")",
                         sn->id_str, sn->disk_size);
    ret = qcow2_flush_metadata(s);
    if (ret == 0 && sn->l1_size > s->l1_size)
        ret = qcow2_grow_l1_table(s, sn->l1_size);
    if (ret < 0)
        return error_set_errno(err, ret, "Failed to load snapshot");
    uint32_t n = s->l1_size;
    uint64_t *new_l1 = NULL, *old_l1 = malloc((n ? n : 1) * 8ull);
    ret = old_l1 ? read_sn_l1(s, sn, n, &new_l1) : -ENOMEM;
    if (ret < 0) {
        free(old_l1);
        return error_set_errno(err, ret, "Failed to load snapshot");
    }
    memcpy(old_l1, s->l1_table, n * 8ull);
    /* Take the snapshot's references before the active L1 points at them. */
    ret = qcow2_update_tree_refcounts(s, new_l1, sn->l1_size, 1, NULL);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    if (ret == 0)
        ret = write_l1(s, s->l1_table_offset, new_l1, sn->l1_size, n);
    if (ret == 0)
        ret = qcow2_barrier(s);
    /* The snapshot brings back its own virtual size: nothing past it is
     * reachable once its L1 table is the active one. */
    if (ret == 0 && sn->disk_size != s->hdr.size)
        ret = write_size(s, sn->disk_size);
    if (ret == 0) {
        memcpy(s->l1_table, new_l1, n * 8ull);
        qcow2_cache_empty(&s->l2_cache);
        /* The old tree is unreachable on disk now: drop its references
         * once no request is using its clusters. */
        qcow2_io_quiesce(s);
        ret = qcow2_update_tree_refcounts(s, old_l1, n, -1, NULL);
        qcow2_io_resume(s);
    }
    bool changed = false;
    if (ret == 0)
        ret = qcow2_update_tree_refcounts(s, s->l1_table, n, 0, &changed);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    if (ret == 0 && changed)
        ret = write_l1(s, s->l1_table_offset, s->l1_table, n, 0);
    if (ret == 0)
        ret = qcow2_barrier(s);
    free(old_l1);
    free(new_l1);
    if (ret < 0)
        return error_set_errno(err, ret, "Failed to load snapshot");
    return 0;
}

static int delete_locked(struct qcow2_state *s, int idx, struct error *err)
{
    struct qcow2_snapshot sn = s->snapshots[idx];
    int ret = validate_sn_l1(s, &sn, err);
    if (ret < 0)
        return ret;
    uint64_t *l1 = NULL;
    ret = qcow2_flush_metadata(s);
    if (ret == 0)
        ret = read_sn_l1(s, &sn, sn.l1_size, &l1);
    if (ret < 0)
        return error_set_errno(err, ret, "Failed to delete snapshot");
    /* Out of the table first: a crash after this only leaks. */
    uint64_t old_size = qcow2_snapshot_table_size(s);
    memmove(&s->snapshots[idx], &s->snapshots[idx + 1],
            (s->nb_snapshots - idx - 1) * sizeof(sn));
    s->nb_snapshots--;
    ret = qcow2_write_snapshots(s, old_size);
    if (ret < 0) {
        memmove(&s->snapshots[idx + 1], &s->snapshots[idx],
                (s->nb_snapshots - idx) * sizeof(sn));
        s->snapshots[idx] = sn;
        s->nb_snapshots++;
        free(l1);
        return error_set_errno(err, ret, "Failed to delete snapshot");
    }
    qcow2_io_quiesce(s);
    ret = qcow2_update_tree_refcounts(s, l1, sn.l1_size, -1, NULL);
    if (ret == 0 && sn.l1_size)
        ret = qcow2_update_refcount(s, sn.l1_table_offset, sn.l1_size * 8ull, -1);
    qcow2_io_resume(s);
    bool changed = false;
    if (ret == 0)
        ret = qcow2_update_tree_refcounts(s, s->l1_table, s->l1_size, 0, &changed);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    if (ret == 0 && changed)
        ret = write_l1(s, s->l1_table_offset, s->l1_table, s->l1_size, 0);
    if (ret == 0)
        ret = qcow2_barrier(s);
    free(l1);
    free_one(&sn);
    if (ret < 0)
        return error_set_errno(err, ret, "Failed to free the snapshot's clusters");
    return 0;
}

static int writable(struct qcow2_state *s, struct error *err)
{
    if (s->read_only || s->bs->read_only)
        return error_set(err, -EACCES, "The image is opened read-only");
    if (s->corrupt)
        return error_set(err, -EIO, "The image is marked corrupt; repair it with check -r all");
    return 0;
}

int qcow2_snapshot_create(struct bdev *bs, const char *name, struct error *err)
{
    struct qcow2_state *s = qcow2_state(bs);
    pthread_mutex_lock(&s->lock);
    int ret = writable(s, err);
    if (ret == 0)
        ret = create_locked(s, name, err);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

int qcow2_snapshot_goto(struct bdev *bs, const char *id_or_name, struct error *err)
{
    struct qcow2_state *s = qcow2_state(bs);
    pthread_mutex_lock(&s->lock);
    int ret = writable(s, err);
    int idx = find_by_id(s, id_or_name);
    if (idx < 0)
        idx = find_by_name(s, id_or_name);
    if (ret == 0 && idx < 0)
        ret = error_set_errno(err, -ENOENT, "Failed to load snapshot");
    if (ret == 0)
        ret = goto_locked(s, idx, err);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

int qcow2_snapshot_delete(struct bdev *bs, const char *name, struct error *err)
{
    struct qcow2_state *s = qcow2_state(bs);
    pthread_mutex_lock(&s->lock);
    int ret = writable(s, err);
    /* By name, the first match, as `qemu-img snapshot -d` finds it. */
    int idx = find_by_name(s, name);
    if (ret == 0 && idx < 0)
        ret = error_set(err, -ENOENT, "snapshot not found");
    if (ret == 0)
        ret = delete_locked(s, idx, err);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

int qcow2_snapshot_list(struct bdev *bs, struct bdev_snapshot **list)
{
    struct qcow2_state *s = qcow2_state(bs);
    pthread_mutex_lock(&s->lock);
    uint32_t n = s->nb_snapshots;
    struct bdev_snapshot *v = calloc(n ? n : 1, sizeof(*v));
    if (!v) {
        pthread_mutex_unlock(&s->lock);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct qcow2_snapshot *sn = &s->snapshots[i];
        snprintf(v[i].id, sizeof(v[i].id), "%s", sn->id_str);
        snprintf(v[i].name, sizeof(v[i].name), "%s", sn->name);
        v[i].vm_state_size = sn->vm_state_size;
        v[i].date_sec = sn->date_sec;
        v[i].date_nsec = sn->date_nsec;
        v[i].vm_clock_nsec = sn->vm_clock_nsec;
        v[i].icount = sn->icount;
    }
    pthread_mutex_unlock(&s->lock);
    *list = v;
    return (int)n;
}
