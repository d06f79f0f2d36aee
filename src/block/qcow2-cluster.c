/* qcow2 cluster mapping: L1/L2 lookup through the L2 cache, allocation and
 * copy-on-write of (sub)clusters, zero clusters, discard and block status.
 *
 * Guest data of clusters already allocated to us alone (COPIED) is read and
 * written outside s->lock, under s->io_lock held shared. Everything that
 * allocates runs under s->lock: new host space is written first, then the L2
 * entry is set in the cache, and the cache only reaches the disk after the
 * refcounts and the data (see qcow2.h). */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "block/aio.h"
#include "block/qcow2.h"
#include "util/iov.h"

uint64_t qcow2_l2_get(struct qcow2_state *s, const void *l2, uint64_t idx)
{
    uint64_t v;
    memcpy(&v, (const uint8_t *)l2 + idx * s->l2_entry_size, 8);
    return be64toh(v);
}

uint64_t qcow2_l2_get_bitmap(struct qcow2_state *s, const void *l2, uint64_t idx)
{
    uint64_t v;
    if (!s->extended_l2)
        return 0;
    memcpy(&v, (const uint8_t *)l2 + idx * s->l2_entry_size + 8, 8);
    return be64toh(v);
}

void qcow2_l2_set(struct qcow2_state *s, void *l2, uint64_t idx, uint64_t entry)
{
    uint64_t v = htobe64(entry);
    memcpy((uint8_t *)l2 + idx * s->l2_entry_size, &v, 8);
}

void qcow2_l2_set_bitmap(struct qcow2_state *s, void *l2, uint64_t idx, uint64_t bitmap)
{
    uint64_t v = htobe64(bitmap);
    if (s->extended_l2)
        memcpy((uint8_t *)l2 + idx * s->l2_entry_size + 8, &v, 8);
}

enum qcow2_cluster_type qcow2_cluster_type(struct qcow2_state *s, uint64_t e, uint64_t bitmap,
                                           unsigned sc)
{
    if (e & QCOW2_OFLAG_COMPRESSED)
        return QCOW2_CL_COMPRESSED;
    uint64_t off = e & QCOW2_L2E_OFFSET_MASK;
    if (s->extended_l2) {
        if ((bitmap >> (32 + sc)) & 1)
            return off ? QCOW2_CL_ZERO_ALLOC : QCOW2_CL_ZERO_PLAIN;
        if ((bitmap >> sc) & 1)
            return QCOW2_CL_NORMAL;
        return off ? QCOW2_CL_UNALLOC_ALLOC : QCOW2_CL_UNALLOCATED;
    }
    if ((e & QCOW2_OFLAG_ZERO) && s->hdr.version >= 3)
        return off ? QCOW2_CL_ZERO_ALLOC : QCOW2_CL_ZERO_PLAIN;
    return off ? QCOW2_CL_NORMAL : QCOW2_CL_UNALLOCATED;
}

int qcow2_write_l1_entry(struct qcow2_state *s, uint64_t idx)
{
    uint64_t be = htobe64(s->l1_table[idx]);
    return bdev_pwrite(s->bs->file, s->l1_table_offset + idx * 8, &be, 8, 0);
}

int qcow2_grow_l1_table(struct qcow2_state *s, uint64_t min_size)
{
    if (min_size <= s->l1_size)
        return 0;
    if (min_size * 8 > QCOW2_MAX_L1_SIZE)
        return -EFBIG;
    uint64_t bytes = qcow2_align_up(s, min_size * 8);
    uint64_t *t = calloc(1, bytes);
    if (!t)
        return -ENOMEM;
    int64_t off = qcow2_alloc_clusters(s, bytes >> s->cluster_bits);
    int ret = off < 0 ? (int)off : 0;
    if (ret < 0)
        goto out;
    for (uint64_t i = 0; i < s->l1_size; i++)
        t[i] = htobe64(s->l1_table[i]);
    ret = bdev_pwrite(s->bs->file, off, t, bytes, 0);
    if (ret == 0)
        ret = qcow2_cache_flush(s, &s->rb_cache);
    if (ret == 0)
        ret = qcow2_barrier(s);
    if (ret < 0)
        goto out;
    uint8_t hdr[12];
    uint32_t sz = htobe32((uint32_t)min_size);
    uint64_t o = htobe64((uint64_t)off);
    memcpy(hdr, &sz, 4);
    memcpy(hdr + 4, &o, 8);
    ret = bdev_pwrite(s->bs->file, QCOW2_HDR_L1_SIZE, hdr, 12, 0);
    if (ret == 0)
        ret = qcow2_barrier(s);
    if (ret < 0)
        goto out;
    uint64_t old_off = s->l1_table_offset, old_bytes = qcow2_align_up(s, (uint64_t)s->l1_size * 8);
    for (uint64_t i = 0; i < min_size; i++)
        t[i] = be64toh(t[i]);
    free(s->l1_table);
    s->l1_table = t;
    t = NULL;
    s->l1_size = (uint32_t)min_size;
    s->l1_table_offset = (uint64_t)off;
    s->hdr.l1_size = s->l1_size;
    s->hdr.l1_table_offset = s->l1_table_offset;
    if (old_off && old_bytes)
        ret = qcow2_free_clusters(s, old_off, old_bytes);
out:
    free(t);
    return ret;
}

int qcow2_get_l2(struct qcow2_state *s, uint64_t offset, bool alloc, void **l2, uint64_t *idx)
{
    uint64_t l1i = offset >> (s->cluster_bits + s->l2_bits);
    int ret;
    *l2 = NULL;
    *idx = (offset >> s->cluster_bits) & (s->l2_size - 1);
    if (l1i >= s->l1_size) {
        if (!alloc)
            return 0;
        ret = qcow2_grow_l1_table(s, l1i + 1);
        if (ret < 0)
            return ret;
    }
    uint64_t l1e = s->l1_table[l1i], l2off = l1e & QCOW2_L1E_OFFSET_MASK;
    if (l2off && qcow2_offset_in_cluster(s, l2off))
        return qcow2_signal_corruption(s, "L2 table offset %#llx unaligned",
                                       (unsigned long long)l2off);
    if (l2off && (!alloc || (l1e & QCOW2_OFLAG_COPIED)))
        return qcow2_cache_get(s, &s->l2_cache, l2off, l2);
    if (!alloc)
        return 0;

    /* New table, or a copy of one shared with a snapshot. */
    int64_t nt = qcow2_alloc_clusters(s, 1);
    if (nt < 0)
        return (int)nt;
    void *t;
    ret = qcow2_cache_get_empty(s, &s->l2_cache, (uint64_t)nt, &t);
    if (ret < 0)
        return ret;
    if (l2off) {
        void *old;
        ret = qcow2_cache_get(s, &s->l2_cache, l2off, &old);
        if (ret < 0) {
            qcow2_cache_discard(&s->l2_cache, (uint64_t)nt);
            qcow2_cache_put(&s->l2_cache, &t);
            return ret;
        }
        memcpy(t, old, s->cluster_size);
        qcow2_cache_put(&s->l2_cache, &old);
    } else {
        memset(t, 0, s->cluster_size);
    }
    qcow2_cache_mark_dirty(&s->l2_cache, t);
    ret = qcow2_cache_flush(s, &s->l2_cache);
    if (ret == 0)
        ret = qcow2_barrier(s);
    if (ret == 0) {
        s->l1_table[l1i] = (uint64_t)nt | QCOW2_OFLAG_COPIED;
        ret = qcow2_write_l1_entry(s, l1i);
    }
    if (ret == 0 && l2off)
        ret = qcow2_free_clusters(s, l2off, s->cluster_size);
    if (ret < 0) {
        qcow2_cache_put(&s->l2_cache, &t);
        return ret;
    }
    *l2 = t;
    return 0;
}

static uint64_t unit_size(struct qcow2_state *s)
{
    return s->subcluster_size;
}

/* Host offset of guest byte `offset` for a type that has one. */
static uint64_t host_of(struct qcow2_state *s, uint64_t e, enum qcow2_cluster_type t,
                        uint64_t offset)
{
    if (t == QCOW2_CL_COMPRESSED)
        return e;
    if (t == QCOW2_CL_NORMAL || t == QCOW2_CL_ZERO_ALLOC || t == QCOW2_CL_UNALLOC_ALLOC)
        return (e & QCOW2_L2E_OFFSET_MASK) + qcow2_offset_in_cluster(s, offset);
    return 0;
}

/* Shared by the read and write paths: map `offset`, and count the bytes after
 * it with the same type (contiguous on the host, and for NORMAL with the same
 * COPIED flag, so a writer knows the whole range is ours alone or not). */
static int map_range(struct qcow2_state *s, uint64_t offset, uint64_t *bytes, uint64_t *host,
                     enum qcow2_cluster_type *type, bool *copied)
{
    uint64_t per_l2 = s->cluster_size << s->l2_bits;
    uint64_t l2_end = (offset / per_l2 + 1) * per_l2;
    uint64_t max = *bytes < l2_end - offset ? *bytes : l2_end - offset;
    void *l2;
    uint64_t idx;
    int ret = qcow2_get_l2(s, offset, false, &l2, &idx);
    if (ret < 0)
        return ret;
    if (!l2) {
        *type = QCOW2_CL_UNALLOCATED;
        *host = 0;
        *copied = false;
        *bytes = max;
        return 0;
    }
    uint64_t unit = unit_size(s), pos = offset, n = 0, first_host = 0;
    enum qcow2_cluster_type t0 = QCOW2_CL_UNALLOCATED;
    bool c0 = false;
    while (n < max) {
        uint64_t i = idx + ((pos - offset + qcow2_offset_in_cluster(s, offset)) >> s->cluster_bits);
        uint64_t e = qcow2_l2_get(s, l2, i), bm = qcow2_l2_get_bitmap(s, l2, i);
        unsigned sc = (unsigned)(qcow2_offset_in_cluster(s, pos) / unit);
        enum qcow2_cluster_type t = qcow2_cluster_type(s, e, bm, sc);
        uint64_t h = host_of(s, e, t, pos);
        bool c = (e & QCOW2_OFLAG_COPIED) != 0;
        if ((t == QCOW2_CL_NORMAL || t == QCOW2_CL_ZERO_ALLOC) &&
            (!(e & QCOW2_L2E_OFFSET_MASK) || qcow2_offset_in_cluster(s, e & QCOW2_L2E_OFFSET_MASK))) {
            qcow2_cache_put(&s->l2_cache, &l2);
            return qcow2_signal_corruption(s, "bad L2 entry %#llx", (unsigned long long)e);
        }
        if (n == 0) {
            t0 = t;
            c0 = c;
            first_host = h;
        } else if (t != t0 || t == QCOW2_CL_COMPRESSED ||
                   ((t == QCOW2_CL_NORMAL || t == QCOW2_CL_ZERO_ALLOC ||
                     t == QCOW2_CL_UNALLOC_ALLOC) && h != first_host + n) ||
                   (t == QCOW2_CL_NORMAL && c != c0)) {
            break;
        }
        uint64_t step = unit - (pos & (unit - 1));
        if (t == QCOW2_CL_COMPRESSED)
            step = s->cluster_size - qcow2_offset_in_cluster(s, pos);
        n += step;
        pos += step;
    }
    qcow2_cache_put(&s->l2_cache, &l2);
    *bytes = n < max ? n : max;
    *type = t0;
    *host = first_host;
    *copied = c0;
    return 0;
}

int qcow2_get_host_offset(struct qcow2_state *s, uint64_t offset, uint64_t *bytes,
                          uint64_t *host, enum qcow2_cluster_type *type)
{
    bool copied;
    return map_range(s, offset, bytes, host, type, &copied);
}

/* ---- Reading ---------------------------------------------------------- */

struct qiov {
    const struct iovec *iov;
    int cnt;
    struct iovec *tmp;   /* scratch for slices, cnt + 2 entries */
};

static int slice(struct qiov *q, uint64_t pos, uint64_t len)
{
    return iov_slice(q->iov, q->cnt, pos, len, q->tmp, q->cnt + 2);
}

static int read_backing(struct qcow2_state *s, uint64_t offset, struct qiov *q, uint64_t pos,
                        uint64_t n)
{
    struct bdev *b = s->bs->backing;
    uint64_t have = 0;
    if (b) {
        int64_t bl = bdev_getlength(b);
        if (bl < 0)
            return (int)bl;
        if (offset < (uint64_t)bl)
            have = (uint64_t)bl - offset < n ? (uint64_t)bl - offset : n;
        if (have) {
            int c = slice(q, pos, have);
            int ret = bdev_preadv(b, offset, q->tmp, c);
            if (ret < 0)
                return ret;
        }
    }
    iov_memset(q->iov, q->cnt, pos + have, 0, n - have);
    return 0;
}

static int read_compressed_into(struct qcow2_state *s, uint64_t e, uint64_t offset,
                                struct qiov *q, uint64_t pos, uint64_t n)
{
    uint8_t *buf = malloc(s->cluster_size);
    if (!buf)
        return -ENOMEM;
    int ret = qcow2_read_compressed(s, e, buf);
    if (ret == 0)
        iov_from_buf(q->iov, q->cnt, pos, buf + qcow2_offset_in_cluster(s, offset), n);
    free(buf);
    return ret;
}

/* Read [offset, offset+bytes) into q. With `locked`, s->lock stays held
 * (COW reads); otherwise data I/O runs with only io_lock held shared. */
static int do_read(struct qcow2_state *s, uint64_t offset, struct qiov *q, uint64_t bytes,
                   bool locked)
{
    uint64_t pos = 0;
    int ret = 0;
    while (pos < bytes && ret == 0) {
        uint64_t n = bytes - pos, host;
        enum qcow2_cluster_type t;
        ret = qcow2_get_host_offset(s, offset + pos, &n, &host, &t);
        if (ret < 0)
            break;
        switch (t) {
        case QCOW2_CL_ZERO_PLAIN:
        case QCOW2_CL_ZERO_ALLOC:
            iov_memset(q->iov, q->cnt, pos, 0, n);
            break;
        case QCOW2_CL_UNALLOCATED:
        case QCOW2_CL_UNALLOC_ALLOC:
            if (!locked)
                pthread_mutex_unlock(&s->lock);
            ret = read_backing(s, offset + pos, q, pos, n);
            if (!locked)
                pthread_mutex_lock(&s->lock);
            break;
        case QCOW2_CL_NORMAL:
        case QCOW2_CL_COMPRESSED:
            if (!locked) {
                pthread_rwlock_rdlock(&s->io_lock);
                pthread_mutex_unlock(&s->lock);
            }
            if (t == QCOW2_CL_NORMAL)
                ret = bdev_preadv(s->bs->file, host, q->tmp, slice(q, pos, n));
            else
                ret = read_compressed_into(s, host, offset + pos, q, pos, n);
            if (!locked) {
                pthread_rwlock_unlock(&s->io_lock);
                pthread_mutex_lock(&s->lock);
            }
            break;
        }
        pos += n;
    }
    return ret < 0 ? ret : 0;
}

int qcow2_read_locked(struct qcow2_state *s, uint64_t offset, void *buf, uint64_t bytes)
{
    struct iovec v = { buf, bytes }, tmp[3];
    struct qiov q = { &v, 1, tmp };
    if (!bytes)
        return 0;
    return do_read(s, offset, &q, bytes, true);
}

int qcow2_co_preadv(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt)
{
    struct qcow2_state *s = qcow2_state(bs);
    struct qiov q = { iov, cnt, malloc((cnt + 2) * sizeof(struct iovec)) };
    if (!q.tmp)
        return -ENOMEM;
    pthread_mutex_lock(&s->lock);
    int ret = do_read(s, offset, &q, iov_size(iov, cnt), false);
    pthread_mutex_unlock(&s->lock);
    free(q.tmp);
    return ret;
}

/* ---- Writing ------------------------------------------------------------ */

static bool is_unallocated_plain(struct qcow2_state *s, uint64_t e)
{
    return !(e & QCOW2_OFLAG_COMPRESSED) && !(e & QCOW2_L2E_OFFSET_MASK);
}

/* ---- In-flight allocations ----------------------------------------------
 * An allocating write prepares under s->lock (host clusters, COW fill),
 * writes its data with the lock dropped, then links the L2 entry. While
 * it runs, its guest clusters are listed here: anything else that would
 * write them or change their L2 entries waits. Readers don't: until the
 * link they see the old mapping, which stays valid. */

static bool inflight_busy(struct qcow2_state *s, uint64_t start, uint64_t end)
{
    for (struct qcow2_inflight *f = s->inflight; f; f = f->next)
        if (start < f->end && f->start < end)
            return true;
    return false;
}

void qcow2_wait_inflight(struct qcow2_state *s, uint64_t start, uint64_t end)
{
    start &= ~(s->cluster_size - 1);
    while (inflight_busy(s, start, end))
        pthread_cond_wait(&s->inflight_cond, &s->lock);
}

static void inflight_add(struct qcow2_state *s, struct qcow2_inflight *f, uint64_t start,
                         uint64_t end)
{
    f->start = start;
    f->end = end;
    f->next = s->inflight;
    s->inflight = f;
}

static void inflight_del(struct qcow2_state *s, struct qcow2_inflight *f)
{
    struct qcow2_inflight **p = &s->inflight;
    while (*p && *p != f)
        p = &(*p)->next;
    if (*p)
        *p = f->next;
    pthread_cond_broadcast(&s->inflight_cond);
}

/* Point entries [idx, idx+k) of the L2 table for `offset` at host..,
 * dropping whatever they pointed at before. */
static int link_clusters(struct qcow2_state *s, uint64_t offset, uint64_t k, uint64_t host,
                         bool set_bitmap, uint64_t bm_set, uint64_t bm_all)
{
    void *l2;
    uint64_t idx;
    int ret = qcow2_get_l2(s, offset, true, &l2, &idx);
    if (ret < 0)
        return ret;
    for (uint64_t i = 0; i < k && ret == 0; i++) {
        uint64_t h = host + (i << s->cluster_bits), old = qcow2_l2_get(s, l2, idx + i);
        if (set_bitmap) {
            uint64_t bm = qcow2_l2_get_bitmap(s, l2, idx + i);
            bm = bm_all ? bm_all : ((bm | bm_set) & ~(bm_set << 32));
            qcow2_l2_set_bitmap(s, l2, idx + i, bm);
        }
        qcow2_l2_set(s, l2, idx + i, h | QCOW2_OFLAG_COPIED);
        if ((old & QCOW2_OFLAG_COMPRESSED) ||
            ((old & QCOW2_L2E_OFFSET_MASK) && (old & QCOW2_L2E_OFFSET_MASK) != h))
            ret = qcow2_free_l2_entry(s, old);
    }
    qcow2_cache_mark_dirty(&s->l2_cache, l2);
    qcow2_cache_put(&s->l2_cache, &l2);
    return ret;
}

/* Whole unallocated clusters in a row (standard L2 only): one host run. */
static int64_t write_new_run(struct qcow2_state *s, uint64_t offset, uint64_t k,
                             struct qiov *q, uint64_t pos)
{
    int64_t host = qcow2_alloc_clusters(s, k);
    if (host < 0)
        return host;
    struct qcow2_inflight f;
    inflight_add(s, &f, offset, offset + (k << s->cluster_bits));
    pthread_mutex_unlock(&s->lock);
    int ret = bdev_pwritev(s->bs->file, (uint64_t)host, q->tmp,
                           slice(q, pos, k << s->cluster_bits), 0);
    pthread_mutex_lock(&s->lock);
    inflight_del(s, &f);
    if (ret == 0)
        ret = link_clusters(s, offset, k, (uint64_t)host, s->extended_l2, 0, 0xffffffffull);
    if (ret < 0) {
        qcow2_free_clusters(s, (uint64_t)host, k << s->cluster_bits);
        return ret;
    }
    return (int64_t)(k << s->cluster_bits);
}

static bool fill_is_zero(const uint8_t *head, uint64_t hl, const uint8_t *tail, uint64_t tl)
{
    return (!head || buffer_is_zero(head, hl)) && (!tail || buffer_is_zero(tail, tl));
}

static bool past_eof(struct qcow2_state *s, uint64_t host)
{
    int64_t len = bdev_getlength(s->bs->file);
    return len >= 0 && host >= (uint64_t)len;
}

/* The data part of write_one_cluster (runs without s->lock). */
static int write_cluster_data(struct qcow2_state *s, uint64_t host, uint64_t a, uint64_t in,
                              uint64_t end, uint64_t b, uint8_t *head, uint8_t *tail,
                              bool skip_zero_fill, struct qiov *q, uint64_t pos)
{
    uint64_t n = end - in;
    if (skip_zero_fill) {
        /* A new cluster past the end of the file reads as zeroes already:
         * write the data alone, and extend the file over the tail. */
        int ret = bdev_pwritev(s->bs->file, host + in, q->tmp, slice(q, pos, n), 0);
        if (ret == 0 && tail)
            ret = bdev_pwrite_zeroes(s->bs->file, host + end, b - end, 0);
        return ret;
    }
    struct iovec *v = malloc((q->cnt + 4) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    int c = 0;
    if (head)
        v[c++] = (struct iovec){ head, in - a };
    c += iov_slice(q->iov, q->cnt, pos, n, v + c, q->cnt + 2);
    if (tail)
        v[c++] = (struct iovec){ tail, b - end };
    int ret = bdev_pwritev(s->bs->file, host + a, v, c, 0);
    free(v);
    return ret;
}

/* Allocating write of [offset, offset+n) within one cluster: fill the rest
 * of the touched (sub)clusters from the current guest view, write, then
 * point the L2 entry at the result. */
static int write_one_cluster(struct qcow2_state *s, uint64_t e, uint64_t offset, uint64_t n,
                             struct qiov *q, uint64_t pos)
{
    uint64_t cstart = offset & ~(s->cluster_size - 1), in = offset - cstart, end = in + n;
    uint64_t hostc = e & QCOW2_L2E_OFFSET_MASK, unit = unit_size(s);
    bool full_cow = (e & QCOW2_OFLAG_COMPRESSED) || (hostc && !(e & QCOW2_OFLAG_COPIED));
    uint64_t a = in & ~(unit - 1), b = (end + unit - 1) & ~(unit - 1);
    if (full_cow) {
        a = 0;
        b = s->cluster_size;
    }
    uint64_t host = hostc;
    bool fresh = full_cow || !hostc;
    if (fresh) {
        int64_t r = qcow2_alloc_clusters(s, 1);
        if (r < 0)
            return (int)r;
        host = (uint64_t)r;
    }
    uint8_t *head = NULL, *tail = NULL;
    int ret = 0;
    if (in > a && !(head = malloc(in - a)))
        ret = -ENOMEM;
    if (b > end && !(tail = malloc(b - end)))
        ret = -ENOMEM;
    if (ret == 0 && head)
        ret = qcow2_read_locked(s, cstart + a, head, in - a);
    if (ret == 0 && tail)
        ret = qcow2_read_locked(s, cstart + end, tail, b - end);
    if (ret == 0) {
        bool skip = fresh && fill_is_zero(head, in - a, tail, b - end) && past_eof(s, host);
        struct qcow2_inflight f;
        inflight_add(s, &f, cstart, cstart + s->cluster_size);
        pthread_mutex_unlock(&s->lock);
        ret = write_cluster_data(s, host, a, in, end, b, head, tail, skip, q, pos);
        pthread_mutex_lock(&s->lock);
        inflight_del(s, &f);
    }
    free(head);
    free(tail);
    uint64_t mask = 0;
    for (uint64_t u = a / unit; u < b / unit && s->extended_l2; u++)
        mask |= 1ull << u;
    if (ret == 0)
        ret = link_clusters(s, cstart, 1, host, s->extended_l2, mask,
                            full_cow ? 0xffffffffull : 0);
    if (ret < 0 && fresh)
        qcow2_free_clusters(s, host, s->cluster_size);
    return ret;
}

/* Allocating part of a write: handles a prefix of [offset, offset+bytes)
 * within one L2 table; returns the bytes done. Drops s->lock meanwhile. */
static int64_t write_alloc(struct qcow2_state *s, uint64_t offset, uint64_t bytes,
                           struct qiov *q, uint64_t pos)
{
    void *l2;
    uint64_t idx, k = 0, in = qcow2_offset_in_cluster(s, offset);
    int ret = qcow2_get_l2(s, offset, true, &l2, &idx);
    if (ret < 0)
        return ret;
    uint64_t e = qcow2_l2_get(s, l2, idx);
    if (!s->extended_l2 && in == 0 && bytes >= s->cluster_size && is_unallocated_plain(s, e)) {
        uint64_t maxk = bytes >> s->cluster_bits;
        if (maxk > s->l2_size - idx)
            maxk = s->l2_size - idx;
        if (maxk > qcow2_max_alloc_run(s))
            maxk = qcow2_max_alloc_run(s);
        k = 1;
        while (k < maxk && is_unallocated_plain(s, qcow2_l2_get(s, l2, idx + k)))
            k++;
    }
    qcow2_cache_put(&s->l2_cache, &l2);
    if (k)
        return write_new_run(s, offset, k, q, pos);
    uint64_t n = s->cluster_size - in < bytes ? s->cluster_size - in : bytes;
    ret = write_one_cluster(s, e, offset, n, q, pos);
    return ret < 0 ? ret : (int64_t)n;
}

static int check_writable(struct qcow2_state *s)
{
    if (s->corrupt)
        return -EIO;
    if (s->read_only)
        return -EACCES;
    if (s->lazy_refcounts && !s->dirty_on_disk)
        return qcow2_mark_dirty(s);
    return 0;
}

/* Keep the queue of deferred frees short. */
static int maybe_flush(struct qcow2_state *s)
{
    return s->n_pending > 1024 ? qcow2_flush_metadata(s) : 0;
}

/* ---- Direct I/O for block/aio.c -------------------------------------------
 * A request whose whole range maps to one run of host bytes that need no
 * metadata change (reads of data or zero clusters; writes of clusters that
 * are ours alone) can go to the host file straight from the submitting
 * thread, without a pool worker. Only when it costs no I/O: s->lock free,
 * the L2 table cached. Anything else takes the synchronous path. */

/* The L2 table for `offset` is in the cache, or there is none. */
static bool l2_cached(struct qcow2_state *s, uint64_t offset)
{
    uint64_t l1i = offset >> (s->cluster_bits + s->l2_bits);
    if (l1i >= s->l1_size)
        return true;
    uint64_t l2off = s->l1_table[l1i] & QCOW2_L1E_OFFSET_MASK;
    return !l2off || qcow2_cache_has(&s->l2_cache, l2off);
}

static int aio_map_locked(struct qcow2_state *s, uint64_t offset, uint64_t bytes, bool write,
                          uint64_t *host)
{
    uint64_t n = bytes;
    enum qcow2_cluster_type t;
    bool copied;
    if (write && (s->corrupt || s->read_only || (s->lazy_refcounts && !s->dirty_on_disk)))
        return QCOW2_AIO_SLOW;
    if (!l2_cached(s, offset) || (write && inflight_busy(s, offset & ~(s->cluster_size - 1),
                                                         offset + bytes)))
        return QCOW2_AIO_SLOW;
    if (map_range(s, offset, &n, host, &t, &copied) < 0 || n < bytes)
        return QCOW2_AIO_SLOW;
    if (t == QCOW2_CL_NORMAL && (copied || !write))
        return QCOW2_AIO_HOST;
    if (write)
        return QCOW2_AIO_SLOW;
    if (t == QCOW2_CL_ZERO_PLAIN || t == QCOW2_CL_ZERO_ALLOC ||
        (t == QCOW2_CL_UNALLOCATED && !s->bs->backing))
        return QCOW2_AIO_ZERO;
    return QCOW2_AIO_SLOW;
}

int qcow2_aio_map(struct bdev *bs, uint64_t offset, uint64_t bytes, bool write, uint64_t *host)
{
    struct qcow2_state *s = qcow2_state(bs);
    if (!bytes || pthread_mutex_trylock(&s->lock))
        return QCOW2_AIO_SLOW;
    int ret = aio_map_locked(s, offset, bytes, write, host);
    if (ret == QCOW2_AIO_HOST) {
        pthread_mutex_lock(&s->pin_lock);
        s->pins++;
        pthread_mutex_unlock(&s->pin_lock);
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

void qcow2_aio_unpin(struct bdev *bs)
{
    struct qcow2_state *s = qcow2_state(bs);
    pthread_mutex_lock(&s->pin_lock);
    if (--s->pins == 0)
        pthread_cond_broadcast(&s->pin_cond);
    pthread_mutex_unlock(&s->pin_lock);
}

int qcow2_co_pwritev(struct bdev *bs, uint64_t offset, const struct iovec *iov, int cnt, int flags)
{
    struct qcow2_state *s = qcow2_state(bs);
    uint64_t bytes = iov_size(iov, cnt), pos = 0;
    struct qiov q = { iov, cnt, malloc((cnt + 2) * sizeof(struct iovec)) };
    if (!q.tmp)
        return -ENOMEM;
    pthread_mutex_lock(&s->lock);
    int ret = check_writable(s);
    while (ret == 0 && pos < bytes) {
        uint64_t n = bytes - pos, host;
        enum qcow2_cluster_type t;
        bool copied;
        qcow2_wait_inflight(s, offset + pos, offset + bytes);
        ret = map_range(s, offset + pos, &n, &host, &t, &copied);
        if (ret < 0)
            break;
        if (t == QCOW2_CL_NORMAL && copied) {
            pthread_rwlock_rdlock(&s->io_lock);
            pthread_mutex_unlock(&s->lock);
            ret = bdev_pwritev(bs->file, host, q.tmp, slice(&q, pos, n), 0);
            pthread_rwlock_unlock(&s->io_lock);
            pthread_mutex_lock(&s->lock);
        } else {
            int64_t r = write_alloc(s, offset + pos, bytes - pos, &q, pos);
            ret = r < 0 ? (int)r : 0;
            n = r < 0 ? 0 : (uint64_t)r;
        }
        pos += n;
    }
    if (ret == 0)
        ret = maybe_flush(s);
    if (ret == 0 && (flags & BDEV_REQ_FUA))
        ret = qcow2_flush_metadata(s);
    pthread_mutex_unlock(&s->lock);
    free(q.tmp);
    return ret;
}

/* ---- Zeroes and discard ------------------------------------------------- */

/* Does the whole cluster around `offset` already read as zeroes? */
static int cluster_reads_zero(struct qcow2_state *s, uint64_t offset, bool *zero)
{
    uint64_t cstart = offset & ~(s->cluster_size - 1), n = s->cluster_size, host;
    enum qcow2_cluster_type t;
    int ret = qcow2_get_host_offset(s, cstart, &n, &host, &t);
    if (ret < 0)
        return ret;
    *zero = n >= s->cluster_size &&
            (t == QCOW2_CL_ZERO_PLAIN || t == QCOW2_CL_ZERO_ALLOC ||
             (t == QCOW2_CL_UNALLOCATED && !s->bs->backing));
    return 0;
}

/* Set whole clusters [offset, offset+bytes) (within one L2 table) to read as
 * zero (`zero`) or as unallocated (discard), dropping host clusters unless
 * `keep` and they are ours alone. */
static int zero_clusters(struct qcow2_state *s, uint64_t offset, uint64_t bytes, bool zero,
                         bool keep)
{
    void *l2;
    uint64_t idx;
    qcow2_wait_inflight(s, offset, offset + bytes);
    int ret = qcow2_get_l2(s, offset, true, &l2, &idx);
    if (ret < 0)
        return ret;
    for (uint64_t i = 0; i < bytes >> s->cluster_bits && ret == 0; i++) {
        uint64_t e = qcow2_l2_get(s, l2, idx + i), ne, nbm = 0;
        uint64_t hostc = e & QCOW2_L2E_OFFSET_MASK;
        bool mine = hostc && !(e & QCOW2_OFLAG_COMPRESSED) && (e & QCOW2_OFLAG_COPIED);
        if (keep && mine) {
            ne = hostc | QCOW2_OFLAG_COPIED;
        } else {
            ne = 0;
            if (e & (QCOW2_OFLAG_COMPRESSED | QCOW2_L2E_OFFSET_MASK))
                ret = qcow2_free_l2_entry(s, e);
        }
        if (zero) {
            if (s->extended_l2)
                nbm = 0xffffffffull << 32;
            else
                ne |= QCOW2_OFLAG_ZERO;
        }
        qcow2_l2_set(s, l2, idx + i, ne);
        qcow2_l2_set_bitmap(s, l2, idx + i, nbm);
    }
    qcow2_cache_mark_dirty(&s->l2_cache, l2);
    qcow2_cache_put(&s->l2_cache, &l2);
    return ret;
}

/* Apply zero_clusters over whole clusters, one L2 table at a time. */
static int for_whole_clusters(struct qcow2_state *s, uint64_t start, uint64_t end, bool zero,
                              bool keep)
{
    uint64_t per_l2 = s->cluster_size << s->l2_bits;
    while (start < end) {
        uint64_t n = (start / per_l2 + 1) * per_l2 - start;
        if (n > end - start)
            n = end - start;
        uint64_t l1i = start / per_l2;
        bool unmapped = l1i >= s->l1_size || !(s->l1_table[l1i] & QCOW2_L1E_OFFSET_MASK);
        /* A whole unmapped L2 range already reads zero without a backing file. */
        if (!(unmapped && !s->bs->backing)) {
            int ret = zero_clusters(s, start, n, zero, keep);
            if (ret < 0)
                return ret;
        }
        start += n;
    }
    return 0;
}

static int write_zero_buf(struct qcow2_state *s, uint64_t offset, uint64_t bytes)
{
    uint64_t chunk = bytes < (1u << 20) ? bytes : (1u << 20), pos = 0;
    void *z = calloc(1, chunk);
    int ret = z ? 0 : -ENOMEM;
    while (ret == 0 && pos < bytes) {
        uint64_t n = bytes - pos < chunk ? bytes - pos : chunk;
        struct iovec v = { z, n }, tmp[3];
        struct qiov q = { &v, 1, tmp };
        uint64_t done = 0;
        while (ret == 0 && done < n) {
            uint64_t m = n - done, host;
            enum qcow2_cluster_type t;
            bool copied;
            qcow2_wait_inflight(s, offset + pos + done, offset + pos + n);
            ret = map_range(s, offset + pos + done, &m, &host, &t, &copied);
            if (ret < 0)
                break;
            if (t == QCOW2_CL_NORMAL && copied) {
                ret = bdev_pwritev(s->bs->file, host, q.tmp, slice(&q, done, m), 0);
            } else {
                int64_t r = write_alloc(s, offset + pos + done, n - done, &q, done);
                ret = r < 0 ? (int)r : 0;
                m = r < 0 ? 0 : (uint64_t)r;
            }
            done += m;
        }
        pos += n;
    }
    free(z);
    return ret;
}

int qcow2_co_pwrite_zeroes(struct bdev *bs, uint64_t offset, uint64_t bytes, int flags)
{
    struct qcow2_state *s = qcow2_state(bs);
    bool can_flag = s->hdr.version >= 3;
    uint64_t end = offset + bytes;
    uint64_t a = qcow2_align_up(s, offset), b = end & ~(s->cluster_size - 1);
    pthread_mutex_lock(&s->lock);
    int ret = check_writable(s);
    if (ret == 0 && !can_flag && (s->bs->backing || !(flags & BDEV_REQ_MAY_UNMAP)))
        ret = (flags & BDEV_REQ_NO_FALLBACK) ? -ENOTSUP : write_zero_buf(s, offset, bytes);
    else if (ret == 0) {
        if (a > b) {               /* within one cluster */
            a = b = offset;
        }
        /* Partial clusters at the ends: nothing to do if they read zero already. */
        uint64_t parts[2][2] = { { offset, a }, { b > a ? b : a, end } };
        for (int i = 0; i < 2 && ret == 0; i++) {
            uint64_t ps = parts[i][0], pe = parts[i][1];
            bool z;
            if (pe <= ps)
                continue;
            ret = cluster_reads_zero(s, ps, &z);
            if (ret == 0 && !z)
                ret = (flags & BDEV_REQ_NO_FALLBACK) ? -ENOTSUP : write_zero_buf(s, ps, pe - ps);
        }
        if (ret == 0 && b > a)
            ret = for_whole_clusters(s, a, b, can_flag, !(flags & BDEV_REQ_MAY_UNMAP));
    }
    if (ret == 0)
        ret = maybe_flush(s);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

int qcow2_discard_range(struct qcow2_state *s, uint64_t offset, uint64_t bytes, bool make_zero)
{
    uint64_t a = qcow2_align_up(s, offset), b = (offset + bytes) & ~(s->cluster_size - 1);
    if (b <= a)
        return 0;
    /* Only clusters that exist in the L1 range need touching. */
    uint64_t per_l2 = s->cluster_size << s->l2_bits, lim = (uint64_t)s->l1_size * per_l2;
    if (b > lim)
        b = lim;
    while (a < b) {
        uint64_t n = (a / per_l2 + 1) * per_l2 - a;
        if (n > b - a)
            n = b - a;
        uint64_t l1i = a / per_l2;
        if (s->l1_table[l1i] & QCOW2_L1E_OFFSET_MASK) {
            int ret = zero_clusters(s, a, n, make_zero, false);
            if (ret < 0)
                return ret;
        }
        a += n;
    }
    return 0;
}

int qcow2_co_pdiscard(struct bdev *bs, uint64_t offset, uint64_t bytes)
{
    struct qcow2_state *s = qcow2_state(bs);
    pthread_mutex_lock(&s->lock);
    int ret = check_writable(s);
    /* v3 reads discarded clusters as zero, so no backing data shows through. */
    if (ret == 0)
        ret = qcow2_discard_range(s, offset, bytes, s->hdr.version >= 3 && bs->backing);
    if (ret == 0)
        ret = maybe_flush(s);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* ---- Status and preallocation -------------------------------------------- */

int qcow2_co_block_status(struct bdev *bs, uint64_t offset, uint64_t bytes,
                          uint64_t *pnum, uint64_t *map, struct bdev **file)
{
    struct qcow2_state *s = qcow2_state(bs);
    uint64_t n = bytes, host;
    enum qcow2_cluster_type t;
    pthread_mutex_lock(&s->lock);
    int ret = qcow2_get_host_offset(s, offset, &n, &host, &t);
    pthread_mutex_unlock(&s->lock);
    if (ret < 0)
        return ret;
    *pnum = n;
    *map = 0;
    if (file)
        *file = NULL;
    switch (t) {
    case QCOW2_CL_NORMAL:
        *map = host;
        if (file)
            *file = bs->file;
        return BDEV_STATUS_DATA | BDEV_STATUS_OFFSET | BDEV_STATUS_ALLOCATED;
    case QCOW2_CL_ZERO_ALLOC:
        *map = host;
        if (file)
            *file = bs->file;
        return BDEV_STATUS_ZERO | BDEV_STATUS_OFFSET | BDEV_STATUS_ALLOCATED;
    case QCOW2_CL_ZERO_PLAIN:
        return BDEV_STATUS_ZERO | BDEV_STATUS_ALLOCATED;
    case QCOW2_CL_COMPRESSED:
        return BDEV_STATUS_DATA | BDEV_STATUS_ALLOCATED | BDEV_STATUS_COMPRESSED;
    default: {
        int st = 0;
        if (t == QCOW2_CL_UNALLOC_ALLOC) {   /* preallocated, contents from below */
            *map = host;
            if (file)
                *file = bs->file;
            st = BDEV_STATUS_OFFSET;
        }
        /* Not ours: the generic layer says ZERO where nothing lies below.
         * Stop at the backing file's end so that part is answered apart. */
        int64_t bl = bs->backing ? bdev_getlength(bs->backing) : -1;
        if (bl >= 0 && offset < (uint64_t)bl && offset + n > (uint64_t)bl)
            *pnum = (uint64_t)bl - offset;
        return st;
    }
    }
}

int qcow2_preallocate(struct qcow2_state *s, uint64_t offset, uint64_t bytes)
{
    uint64_t pos = offset & ~(s->cluster_size - 1), end = qcow2_align_up(s, offset + bytes);
    while (pos < end) {
        void *l2;
        uint64_t idx;
        int ret = qcow2_get_l2(s, pos, true, &l2, &idx);
        if (ret < 0)
            return ret;
        uint64_t k = 0, maxk = (end - pos) >> s->cluster_bits;
        if (maxk > s->l2_size - idx)
            maxk = s->l2_size - idx;
        if (maxk > qcow2_max_alloc_run(s))
            maxk = qcow2_max_alloc_run(s);
        while (k < maxk && is_unallocated_plain(s, qcow2_l2_get(s, l2, idx + k)))
            k++;
        if (k == 0) {            /* already allocated: skip it */
            qcow2_cache_put(&s->l2_cache, &l2);
            pos += s->cluster_size;
            continue;
        }
        int64_t host = qcow2_alloc_clusters(s, k);
        if (host < 0) {
            qcow2_cache_put(&s->l2_cache, &l2);
            return (int)host;
        }
        for (uint64_t i = 0; i < k; i++) {
            uint64_t e = ((uint64_t)host + (i << s->cluster_bits)) | QCOW2_OFLAG_COPIED;
            qcow2_l2_set(s, l2, idx + i, e);
            /* Sub-clusters stay unallocated: a backing file still shows through. */
            qcow2_l2_set_bitmap(s, l2, idx + i, 0);
        }
        qcow2_cache_mark_dirty(&s->l2_cache, l2);
        qcow2_cache_put(&s->l2_cache, &l2);
        pos += k << s->cluster_bits;
    }
    return 0;
}
