/* qcow2 refcounts: the refcount table, refcount blocks of 1..64-bit entries,
 * cluster allocation and (deferred) freeing.
 *
 * A refcount block for table index i is placed at the first cluster of the
 * range it describes (nothing there is in use, or the block would exist), so
 * it describes itself and creating it needs no other allocation. Growing
 * the table puts the new table and any refcount blocks it needs in a fresh
 * area past everything allocated, describing each other. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "block/qcow2.h"

static uint64_t rb_entry_get(struct qcow2_state *s, const void *rb, uint64_t i)
{
    const uint8_t *b = rb;
    switch (s->refcount_order) {
    case 0: return (b[i / 8] >> (i % 8)) & 1;
    case 1: return (b[i / 4] >> (2 * (i % 4))) & 3;
    case 2: return (b[i / 2] >> (4 * (i % 2))) & 15;
    case 3: return b[i];
    case 4: { uint16_t v; memcpy(&v, b + 2 * i, 2); return be16toh(v); }
    case 5: { uint32_t v; memcpy(&v, b + 4 * i, 4); return be32toh(v); }
    default: { uint64_t v; memcpy(&v, b + 8 * i, 8); return be64toh(v); }
    }
}

static void rb_entry_set(struct qcow2_state *s, void *rb, uint64_t i, uint64_t val)
{
    uint8_t *b = rb;
    switch (s->refcount_order) {
    case 0: case 1: case 2: {
        unsigned bits = s->refcount_bits, per = 8 / bits, sh = bits * (i % per);
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << sh);
        b[i / per] = (uint8_t)((b[i / per] & ~mask) | ((val << sh) & mask));
        break;
    }
    case 3: b[i] = (uint8_t)val; break;
    case 4: { uint16_t v = htobe16((uint16_t)val); memcpy(b + 2 * i, &v, 2); break; }
    case 5: { uint32_t v = htobe32((uint32_t)val); memcpy(b + 4 * i, &v, 4); break; }
    default: { uint64_t v = htobe64(val); memcpy(b + 8 * i, &v, 8); break; }
    }
}

int qcow2_refcount_init(struct qcow2_state *s)
{
    uint64_t bytes = (uint64_t)s->hdr.refcount_table_clusters << s->cluster_bits;
    if (bytes > QCOW2_MAX_REFTABLE_SIZE)
        return -EFBIG;
    s->refcount_table_size = bytes / 8;
    s->refcount_table_offset = s->hdr.refcount_table_offset;
    s->refcount_table = calloc(s->refcount_table_size ? s->refcount_table_size : 1, 8);
    if (!s->refcount_table)
        return -ENOMEM;
    if (bytes) {
        int ret = bdev_pread(s->bs->file, s->refcount_table_offset, s->refcount_table, bytes);
        if (ret < 0)
            return ret;
    }
    for (uint64_t i = 0; i < s->refcount_table_size; i++)
        s->refcount_table[i] = be64toh(s->refcount_table[i]);
    int64_t len = bdev_getlength(s->bs->file);
    s->alloc_end = len > 0 ? ((uint64_t)len + s->cluster_size - 1) >> s->cluster_bits : 0;
    return 0;
}

void qcow2_refcount_close(struct qcow2_state *s)
{
    free(s->refcount_table);
    s->refcount_table = NULL;
    free(s->pending);
    s->pending = NULL;
    s->n_pending = s->cap_pending = 0;
}

static uint64_t area_start(struct qcow2_state *s);

static uint64_t rb_offset(struct qcow2_state *s, uint64_t ti)
{
    if (ti >= s->refcount_table_size)
        return 0;
    return s->refcount_table[ti] & QCOW2_REFT_OFFSET_MASK;
}

int qcow2_get_refcount(struct qcow2_state *s, uint64_t cluster, uint64_t *refcount)
{
    uint64_t ti = cluster >> s->rb_bits, off = rb_offset(s, ti);
    void *rb;
    *refcount = 0;
    if (!off)
        return 0;
    if (qcow2_offset_in_cluster(s, off))
        return qcow2_signal_corruption(s, "refcount block offset %#llx unaligned",
                                       (unsigned long long)off);
    int ret = qcow2_cache_get(s, &s->rb_cache, off, &rb);
    if (ret < 0)
        return ret;
    *refcount = rb_entry_get(s, rb, cluster & ((1ull << s->rb_bits) - 1));
    qcow2_cache_put(&s->rb_cache, &rb);
    return 0;
}

static int write_reftable_entry(struct qcow2_state *s, uint64_t ti)
{
    uint64_t be = htobe64(s->refcount_table[ti]);
    return bdev_pwrite(s->bs->file, s->refcount_table_offset + ti * 8, &be, 8, 0);
}

static void note_allocated(struct qcow2_state *s, uint64_t cluster_end)
{
    if (cluster_end > s->alloc_end)
        s->alloc_end = cluster_end;
}

/* Clusters [A, A+k+m) hold a new table of `entries` entries and the m refcount
 * blocks that the area itself needs. Compute k and m. */
static void plan_area(struct qcow2_state *s, uint64_t a, uint64_t *entries, uint64_t *k,
                      uint64_t *m)
{
    uint64_t per_cluster = s->cluster_size / 8;
    *m = 0;
    for (;;) {
        *k = (*entries + per_cluster - 1) / per_cluster;
        uint64_t end = a + *k + *m, mm = 0;
        for (uint64_t ti = a >> s->rb_bits; ti <= (end - 1) >> s->rb_bits; ti++)
            if (!rb_offset(s, ti))
                mm++;
        uint64_t need = ((end - 1) >> s->rb_bits) + 1;
        if (mm == *m && need <= *entries)
            break;
        *m = mm;
        if (need > *entries)
            *entries = need;
    }
    *entries = *k * per_cluster;
}

/* Claim clusters [a, end), all free: refcount blocks for the ranges that
 * lack one go to blocks_at, blocks_at + 1, ... (inside the area, counting
 * the area and themselves), tab[ti] receiving their offsets; clusters in
 * ranges whose blocks exist are counted there through the cache. */
static int claim_area(struct qcow2_state *s, uint64_t a, uint64_t end, uint64_t blocks_at,
                      uint64_t *tab)
{
    uint8_t *blk = malloc(s->cluster_size);
    if (!blk)
        return -ENOMEM;
    int ret = 0;
    uint64_t j = 0;
    for (uint64_t ti = a >> s->rb_bits; ret == 0 && ti <= (end - 1) >> s->rb_bits; ti++) {
        if (rb_offset(s, ti))
            continue;
        memset(blk, 0, s->cluster_size);
        uint64_t first = ti << s->rb_bits, lim = first + (1ull << s->rb_bits);
        for (uint64_t c = first > a ? first : a; c < end && c < lim; c++)
            rb_entry_set(s, blk, c - first, 1);
        tab[ti] = (blocks_at + j++) << s->cluster_bits;
        ret = bdev_pwrite(s->bs->file, tab[ti], blk, s->cluster_size, 0);
    }
    free(blk);
    for (uint64_t c = a; ret == 0 && c < end; c++)
        if (rb_offset(s, c >> s->rb_bits))
            ret = qcow2_update_refcount(s, c << s->cluster_bits, 1, 1);
    return ret;
}

static int grow_refcount_table(struct qcow2_state *s, uint64_t min_ti)
{
    uint64_t entries = min_ti + 1, k, m;
    if (entries < s->refcount_table_size * 3 / 2)
        entries = s->refcount_table_size * 3 / 2;
    uint64_t a = area_start(s);
    plan_area(s, a, &entries, &k, &m);
    if (entries * 8 > QCOW2_MAX_REFTABLE_SIZE)
        return -EFBIG;

    uint64_t *nt = calloc(entries, 8);
    if (!nt)
        return -ENOMEM;
    memcpy(nt, s->refcount_table, s->refcount_table_size * 8);
    uint64_t end = a + k + m;
    int ret = claim_area(s, a, end, a + k, nt);
    if (ret < 0)
        goto out;
    for (uint64_t i = 0; i < entries; i++)
        nt[i] = htobe64(nt[i]);
    ret = bdev_pwrite(s->bs->file, a << s->cluster_bits, nt, entries * 8, 0);
    for (uint64_t i = 0; i < entries; i++)
        nt[i] = be64toh(nt[i]);
    if (ret < 0)
        goto out;
    ret = qcow2_cache_flush(s, &s->rb_cache);
    if (ret == 0)
        ret = qcow2_barrier(s);
    if (ret < 0)
        goto out;
    uint8_t hdr[12];
    uint64_t off_be = htobe64(a << s->cluster_bits);
    uint32_t cl_be = htobe32((uint32_t)k);
    memcpy(hdr, &off_be, 8);
    memcpy(hdr + 8, &cl_be, 4);
    ret = bdev_pwrite(s->bs->file, QCOW2_HDR_REFTABLE, hdr, 12, 0);
    if (ret == 0)
        ret = qcow2_barrier(s);
    if (ret < 0)
        goto out;
    uint64_t old_off = s->refcount_table_offset, old_clusters = s->hdr.refcount_table_clusters;
    free(s->refcount_table);
    s->refcount_table = nt;
    nt = NULL;
    s->refcount_table_size = entries;
    s->refcount_table_offset = a << s->cluster_bits;
    s->hdr.refcount_table_offset = s->refcount_table_offset;
    s->hdr.refcount_table_clusters = (uint32_t)k;
    note_allocated(s, end);
    /* The header no longer points at the old table, durably: free it now. */
    if (old_clusters)
        ret = qcow2_update_refcount(s, old_off, old_clusters << s->cluster_bits, -1);
out:
    free(nt);
    return ret;
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return blen && a < b + blen && b < a + alen;
}

static bool overlaps_metadata(struct qcow2_state *s, uint64_t off, uint64_t len)
{
    return off < s->cluster_size ||
           overlap(off, len, s->refcount_table_offset, s->refcount_table_size * 8) ||
           overlap(off, len, s->l1_table_offset, (uint64_t)s->l1_size * 8) ||
           overlap(off, len, s->hdr.snapshots_offset, s->hdr.nb_snapshots ? s->cluster_size : 0);
}

/* Make sure refcount block `ti` exists. */
static int ensure_refblock(struct qcow2_state *s, uint64_t ti)
{
    int ret;
    if (ti >= s->refcount_table_size) {
        ret = grow_refcount_table(s, ti);
        if (ret < 0)
            return ret;
    }
    if (s->refcount_table[ti])
        return 0;
    uint64_t off = (ti << s->rb_bits) << s->cluster_bits;
    /* A range without a block holds nothing in use; if metadata we know of
     * lies there, the refcount table is damaged: don't write over it. */
    if (overlaps_metadata(s, off, s->cluster_size))
        return qcow2_signal_corruption(s, "refcount block %llu missing for clusters in use",
                                       (unsigned long long)ti);
    void *rb;
    ret = qcow2_cache_get_empty(s, &s->rb_cache, off, &rb);
    if (ret < 0)
        return ret;
    memset(rb, 0, s->cluster_size);
    rb_entry_set(s, rb, 0, 1);
    qcow2_cache_mark_dirty(&s->rb_cache, rb);
    qcow2_cache_put(&s->rb_cache, &rb);
    ret = qcow2_cache_flush(s, &s->rb_cache);
    if (ret == 0)
        ret = qcow2_barrier(s);
    if (ret < 0)
        return ret;
    s->refcount_table[ti] = off;
    note_allocated(s, (ti << s->rb_bits) + 1);
    return write_reftable_entry(s, ti);
}

static void cluster_freed(struct qcow2_state *s, uint64_t cluster)
{
    uint64_t off = cluster << s->cluster_bits;
    if (cluster < s->free_cluster_index)
        s->free_cluster_index = cluster;
    qcow2_cache_discard(&s->l2_cache, off);
    qcow2_cache_discard(&s->rb_cache, off);
    if (s->free_byte_offset && (s->free_byte_offset >> s->cluster_bits) == cluster)
        s->free_byte_offset = 0;
}

int qcow2_update_refcount(struct qcow2_state *s, uint64_t offset, uint64_t bytes, int64_t delta)
{
    if (!bytes)
        return 0;
    uint64_t first = offset >> s->cluster_bits, last = (offset + bytes - 1) >> s->cluster_bits;
    for (uint64_t c = first; c <= last; c++) {
        uint64_t ti = c >> s->rb_bits;
        int ret;
        if (!rb_offset(s, ti)) {
            if (delta < 0)
                return qcow2_signal_corruption(s, "freeing cluster %#llx without refcount block",
                                               (unsigned long long)c);
            ret = ensure_refblock(s, ti);
            if (ret < 0)
                return ret;
        }
        void *rb;
        ret = qcow2_cache_get(s, &s->rb_cache, rb_offset(s, ti), &rb);
        if (ret < 0)
            return ret;
        uint64_t i = c & ((1ull << s->rb_bits) - 1), rc = rb_entry_get(s, rb, i);
        if ((delta < 0 && rc < (uint64_t)-delta) ||
            (delta > 0 && s->refcount_max - rc < (uint64_t)delta)) {
            qcow2_cache_put(&s->rb_cache, &rb);
            if (delta > 0)
                return -ERANGE;
            return qcow2_signal_corruption(s, "refcount of cluster %#llx would drop below 0",
                                           (unsigned long long)c);
        }
        rc += delta;
        rb_entry_set(s, rb, i, rc);
        qcow2_cache_mark_dirty(&s->rb_cache, rb);
        qcow2_cache_put(&s->rb_cache, &rb);
        if (rc == 0)
            cluster_freed(s, c);
    }
    if (delta > 0)
        note_allocated(s, last + 1);
    return 0;
}

int qcow2_set_refcount(struct qcow2_state *s, uint64_t cluster, uint64_t refcount)
{
    uint64_t rc;
    int ret = qcow2_get_refcount(s, cluster, &rc);
    if (ret < 0 || rc == refcount)
        return ret;
    return qcow2_update_refcount(s, cluster << s->cluster_bits, 1, (int64_t)(refcount - rc));
}

/* First run of n free clusters at or after `from`. */
static int find_free(struct qcow2_state *s, uint64_t from, uint64_t n, uint64_t *out)
{
    uint64_t start = from, c = from;
    while (c < start + n) {
        uint64_t ti = c >> s->rb_bits, rc;
        if (!rb_offset(s, ti)) {        /* no block: the whole range is free */
            c = (ti + 1) << s->rb_bits;
            continue;
        }
        int ret = qcow2_get_refcount(s, c, &rc);
        if (ret < 0)
            return ret;
        c++;
        if (rc)
            start = c;
    }
    *out = start;
    return 0;
}

/* First cluster past everything allocated (and past the file). */
static uint64_t area_start(struct qcow2_state *s)
{
    uint64_t a = s->alloc_end, rc;
    int64_t flen = bdev_getlength(s->bs->file);
    if (flen > 0 && qcow2_align_up(s, (uint64_t)flen) >> s->cluster_bits > a)
        a = qcow2_align_up(s, (uint64_t)flen) >> s->cluster_bits;
    while (qcow2_get_refcount(s, a, &rc) == 0 && rc)
        a++;
    return a;
}

/* A run longer than one refcount block's range (big L1 tables with small
 * clusters): put it past the end, with the refcount blocks it lacks right
 * after it. */
static int64_t alloc_large(struct qcow2_state *s, uint64_t n)
{
    uint64_t a, m, end;
    int ret;
    for (;;) {
        a = area_start(s);
        m = 0;
        for (;;) {
            uint64_t mm = 0;
            end = a + n + m;
            for (uint64_t ti = a >> s->rb_bits; ti <= (end - 1) >> s->rb_bits; ti++)
                if (!rb_offset(s, ti))
                    mm++;
            if (mm == m)
                break;
            m = mm;
        }
        uint64_t last_ti = (end - 1) >> s->rb_bits;
        if (last_ti < s->refcount_table_size)
            break;
        ret = grow_refcount_table(s, last_ti);
        if (ret < 0)
            return ret;
    }
    uint64_t *tab = calloc(s->refcount_table_size, 8);
    if (!tab)
        return -ENOMEM;
    ret = claim_area(s, a, end, a + n, tab);
    if (ret == 0)
        ret = qcow2_cache_flush(s, &s->rb_cache);
    if (ret == 0)
        ret = qcow2_barrier(s);
    /* The new blocks are durable: now the table may point at them. */
    for (uint64_t ti = a >> s->rb_bits; ret == 0 && ti <= (end - 1) >> s->rb_bits; ti++) {
        if (tab[ti]) {
            s->refcount_table[ti] = tab[ti];
            ret = write_reftable_entry(s, ti);
        }
    }
    free(tab);
    if (ret < 0)
        return ret;
    note_allocated(s, end);
    return (int64_t)(a << s->cluster_bits);
}

int64_t qcow2_alloc_clusters(struct qcow2_state *s, uint64_t n)
{
    if (!n)
        return -EINVAL;
    if (n > qcow2_max_alloc_run(s))
        return alloc_large(s, n);
    for (;;) {
        uint64_t c;
        int ret = find_free(s, s->free_cluster_index, n, &c);
        if (ret < 0)
            return ret;
        if (((c + n) << s->cluster_bits) >> 56)
            return -EFBIG;
        bool restart = false;
        for (uint64_t ti = c >> s->rb_bits; ti <= (c + n - 1) >> s->rb_bits; ti++) {
            if (!rb_offset(s, ti)) {
                ret = ensure_refblock(s, ti);
                if (ret < 0)
                    return ret;
                restart = true;
            }
        }
        if (restart)
            continue;
        ret = qcow2_update_refcount(s, c << s->cluster_bits, n << s->cluster_bits, 1);
        if (ret < 0)
            return ret;
        /* With n == 1 every cluster below c was in use. */
        if (c == s->free_cluster_index || n == 1)
            s->free_cluster_index = c + n;
        return (int64_t)(c << s->cluster_bits);
    }
}

/* Take cluster c if it is free (and can be counted without placing a new
 * refcount block on it); true if it is ours now. */
static int take_cluster(struct qcow2_state *s, uint64_t c, bool *taken)
{
    uint64_t rc;
    *taken = false;
    if (!rb_offset(s, c >> s->rb_bits) || ((c + 1) << s->cluster_bits) >> 56)
        return 0;
    int ret = qcow2_get_refcount(s, c, &rc);
    if (ret < 0 || rc)
        return ret;
    ret = qcow2_update_refcount(s, c << s->cluster_bits, s->cluster_size, 1);
    *taken = ret == 0;
    return ret;
}

/* Compressed clusters are packed back to back, as QEMU does: one may start
 * in the tail of a partly used host cluster and run on into the next one
 * when that is free. Every host cluster a compressed cluster touches holds
 * one reference for it. */
int64_t qcow2_alloc_bytes(struct qcow2_state *s, uint64_t bytes)
{
    uint64_t off = s->free_byte_offset, in = qcow2_offset_in_cluster(s, off);
    int ret;
    if (off && in && bytes <= s->cluster_size) {
        uint64_t cur = off >> s->cluster_bits;
        bool spill = bytes > s->cluster_size - in, next_ok = !spill;
        if (spill && (ret = take_cluster(s, cur + 1, &next_ok)) < 0)
            return ret;
        if (next_ok) {
            ret = qcow2_update_refcount(s, off, 1, 1);
            if (ret == 0) {
                s->free_byte_offset = qcow2_offset_in_cluster(s, off + bytes) ? off + bytes : 0;
                return (int64_t)off;
            }
            if (spill)   /* this cluster can't take another reference: give the next back */
                qcow2_update_refcount(s, (cur + 1) << s->cluster_bits, 1, -1);
            if (ret != -ERANGE)
                return ret;
        }
    }
    int64_t n = (int64_t)((bytes + s->cluster_size - 1) >> s->cluster_bits);
    int64_t r = qcow2_alloc_clusters(s, n);
    if (r < 0)
        return r;
    s->free_byte_offset = qcow2_offset_in_cluster(s, bytes) ? (uint64_t)r + bytes : 0;
    return r;
}

int qcow2_free_clusters(struct qcow2_state *s, uint64_t offset, uint64_t bytes)
{
    if (!bytes)
        return 0;
    if (s->n_pending == s->cap_pending) {
        int cap = s->cap_pending ? s->cap_pending * 2 : 64;
        void *p = realloc(s->pending, cap * sizeof(*s->pending));
        if (!p)
            return -ENOMEM;
        s->pending = p;
        s->cap_pending = cap;
    }
    s->pending[s->n_pending].offset = offset;
    s->pending[s->n_pending].bytes = bytes;
    s->n_pending++;
    return 0;
}

/* Give the host file back the space of clusters that became free. */
static void punch_free(struct qcow2_state *s, uint64_t offset, uint64_t bytes)
{
    uint64_t first = offset >> s->cluster_bits, last = (offset + bytes - 1) >> s->cluster_bits;
    uint64_t run = 0, n = 0, rc;
    for (uint64_t c = first; c <= last + 1; c++) {
        bool is_free = c <= last && qcow2_get_refcount(s, c, &rc) == 0 && rc == 0;
        if (is_free && !n)
            run = c;
        if (is_free) {
            n++;
            continue;
        }
        if (n)
            bdev_pdiscard(s->bs->file, run << s->cluster_bits, n << s->cluster_bits);
        n = 0;
    }
}

int qcow2_apply_pending_frees(struct qcow2_state *s)
{
    int ret = 0;
    for (int i = 0; i < s->n_pending && ret == 0; i++) {
        ret = qcow2_update_refcount(s, s->pending[i].offset, s->pending[i].bytes, -1);
        if (ret == 0)
            punch_free(s, s->pending[i].offset, s->pending[i].bytes);
    }
    s->n_pending = 0;
    return ret;
}

int qcow2_free_l2_entry(struct qcow2_state *s, uint64_t e)
{
    if (e & QCOW2_OFLAG_COMPRESSED) {
        uint64_t coff = e & s->cluster_offset_mask;
        uint64_t nsec = ((e >> s->csize_shift) & s->csize_mask) + 1;
        return qcow2_free_clusters(s, coff & ~(uint64_t)(QCOW2_SECTOR - 1), nsec * QCOW2_SECTOR);
    }
    uint64_t off = e & QCOW2_L2E_OFFSET_MASK;
    return off ? qcow2_free_clusters(s, off, s->cluster_size) : 0;
}

int64_t qcow2_refcount_end(struct qcow2_state *s)
{
    for (uint64_t ti = s->refcount_table_size; ti-- > 0; ) {
        if (!rb_offset(s, ti))
            continue;
        for (uint64_t i = 1ull << s->rb_bits; i-- > 0; ) {
            uint64_t rc, c = (ti << s->rb_bits) + i;
            int ret = qcow2_get_refcount(s, c, &rc);
            if (ret < 0)
                return ret;
            if (rc)
                return (int64_t)((c + 1) << s->cluster_bits);
        }
    }
    return 0;
}
