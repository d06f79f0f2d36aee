/* qcow2 amend: change an existing image's compat level, lazy refcounts,
 * refcount width and size, in the order and with the refusals of
 * `qemu-img amend`. */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "block/qcow2-meta.h"

struct amend_req {
    int version;
    bool lazy;
    uint64_t refcount_bits;
    uint64_t size;
    const char *backing_file, *backing_fmt;
};

static bool streq0(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static int parse(struct qcow2_state *s, struct opts *o, struct amend_req *r, struct error *err)
{
    r->version = (int)s->hdr.version;
    const char *compat = opts_get(o, "compat");
    if (compat && (!strcmp(compat, "0.10") || !strcmp(compat, "v2")))
        r->version = 2;
    else if (compat && (!strcmp(compat, "1.1") || !strcmp(compat, "v3")))
        r->version = 3;
    else if (compat)
        return error_set(err, -EINVAL, "Unknown compatibility level %s", compat);
    int ret = opts_get_size(o, "size", 0, &r->size, err);
    if (ret == 0)
        ret = opts_get_bool(o, "lazy_refcounts", s->lazy_refcounts, &r->lazy, err);
    if (ret == 0)
        ret = opts_get_u64(o, "refcount_bits", s->refcount_bits, &r->refcount_bits, err);
    if (ret < 0)
        return ret;
    uint64_t b = r->refcount_bits;
    if (!b || b > 64 || (b & (b - 1)))
        return error_set(err, -EINVAL, "Refcount width must be a power of two and may not "
                         "exceed 64 bits");
    r->backing_file = opts_get(o, "backing_file");
    r->backing_fmt = opts_get(o, "backing_fmt");
    if (opts_get(o, "data_file"))
        return error_set(err, -EINVAL, "data-file can only be set for images that use an "
                         "external data file");
    bool raw = false;
    ret = opts_get_bool(o, "data_file_raw", false, &raw, err);
    if (ret == 0 && raw)
        ret = error_set(err, -EINVAL, "data-file-raw cannot be set on existing images");
    return ret;
}

/* ---- compat=1.1 -------------------------------------------------------------- */

static int upgrade(struct qcow2_state *s, struct error *err)
{
    /* v3 wants the VM state size and disk size in every snapshot entry. */
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        if (s->snapshots[i].extra_data_size < 16) {
            int ret = qcow2_write_snapshots(s, qcow2_snapshot_table_size(s));
            if (ret == 0)
                ret = qcow2_flush_metadata(s);
            if (ret < 0)
                return error_set_errno(err, ret, "Failed to update the snapshot table");
            break;
        }
    }
    s->hdr.version = 3;
    s->hdr.refcount_order = 4;
    int ret = qcow2_write_header(s);
    if (ret < 0) {
        s->hdr.version = 2;
        return error_set_errno(err, ret, "Failed to update the image header");
    }
    return 0;
}

/* ---- compat=0.10: zero clusters become data (or holes) --------------------- */

static int expand_entry(struct qcow2_state *s, uint64_t *e, uint64_t l2_rc)
{
    uint64_t off = *e & QCOW2_L2E_OFFSET_MASK, copied = *e & QCOW2_OFLAG_COPIED;
    if (!off && !s->backing_file) {
        *e = 0;                 /* unallocated reads as zero without a backing file */
        return 0;
    }
    if (!off) {
        int64_t a = qcow2_alloc_clusters(s, 1);
        if (a < 0)
            return (int)a;
        off = (uint64_t)a;
        int ret = l2_rc > 1 ? qcow2_update_refcount(s, off, 1, (int64_t)l2_rc - 1) : 0;
        if (ret < 0)
            return ret;
        copied = l2_rc == 1 ? QCOW2_OFLAG_COPIED : 0;
    }
    int ret = bdev_pwrite_zeroes(s->bs->file, off, s->cluster_size, 0);
    if (ret < 0)
        return ret;
    *e = off | copied;
    return 0;
}

static int expand_l2(struct qcow2_state *s, uint64_t l2_off, uint64_t *t)
{
    uint64_t l2_rc;
    int ret = bdev_pread(s->bs->file, l2_off, t, s->cluster_size);
    if (ret == 0)
        ret = qcow2_get_refcount(s, l2_off >> s->cluster_bits, &l2_rc);
    bool dirty = false;
    for (uint64_t j = 0; ret == 0 && j < s->l2_size; j++) {
        uint64_t e = be64toh(t[j]);
        if ((e & QCOW2_OFLAG_COMPRESSED) || !(e & QCOW2_OFLAG_ZERO))
            continue;
        ret = expand_entry(s, &e, l2_rc);
        t[j] = htobe64(e);
        dirty = true;
    }
    /* Refcounts and zeroed clusters first, then the entries using them. */
    if (ret == 0 && dirty)
        ret = qcow2_flush_metadata(s);
    if (ret == 0 && dirty)
        ret = bdev_pwrite(s->bs->file, l2_off, t, s->cluster_size, 0);
    return ret;
}

static int expand_l1(struct qcow2_state *s, const uint64_t *l1, uint32_t n, uint64_t *t)
{
    for (uint32_t i = 0; i < n; i++) {
        uint64_t l2_off = l1[i] & QCOW2_L1E_OFFSET_MASK;
        if (!l2_off)
            continue;
        if (qcow2_offset_in_cluster(s, l2_off))
            return -EIO;
        int ret = expand_l2(s, l2_off, t);
        if (ret < 0)
            return ret;
    }
    return 0;
}

static int expand_zero_clusters(struct qcow2_state *s)
{
    uint64_t *t = malloc(s->cluster_size);
    int ret = t ? qcow2_flush_metadata(s) : -ENOMEM;
    if (ret == 0) {
        qcow2_cache_empty(&s->l2_cache);
        ret = expand_l1(s, s->l1_table, s->l1_size, t);
    }
    for (uint32_t i = 0; ret == 0 && i < s->nb_snapshots; i++) {
        struct qcow2_snapshot *sn = &s->snapshots[i];
        if (!sn->l1_size)
            continue;
        if (sn->l1_size > QCOW2_MAX_L1_SIZE / 8 ||
            qcow2_offset_in_cluster(s, sn->l1_table_offset)) {
            ret = -EIO;
            break;
        }
        uint64_t *l1 = malloc(sn->l1_size * 8ull);
        ret = l1 ? bdev_pread(s->bs->file, sn->l1_table_offset, l1, sn->l1_size * 8ull)
                 : -ENOMEM;
        for (uint32_t j = 0; ret == 0 && j < sn->l1_size; j++)
            l1[j] = be64toh(l1[j]);
        if (ret == 0)
            ret = expand_l1(s, l1, sn->l1_size, t);
        free(l1);
    }
    qcow2_cache_empty(&s->l2_cache);
    free(t);
    return ret < 0 ? ret : qcow2_barrier(s);
}

static int has_compressed_clusters(struct qcow2_state *s)
{
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t l2_off = s->l1_table[i] & QCOW2_L1E_OFFSET_MASK;
        void *l2;
        if (!l2_off)
            continue;
        int ret = qcow2_cache_get(s, &s->l2_cache, l2_off, &l2);
        if (ret < 0)
            return ret;
        bool found = false;
        for (uint64_t j = 0; j < s->l2_size && !found; j++)
            found = (qcow2_l2_get(s, l2, j) & QCOW2_OFLAG_COMPRESSED) != 0;
        qcow2_cache_put(&s->l2_cache, &l2);
        if (found)
            return 1;
    }
    return 0;
}

static int downgrade(struct qcow2_state *s, struct error *err)
{
    if (s->refcount_order != 4)
        return error_set(err, -ENOTSUP, "compat=0.10 requires refcount_bits=16");
    int ret = qcow2_mark_clean(s);
    if (ret < 0)
        return error_set_errno(err, ret, "Failed to make the image clean");
    uint64_t incompat = s->hdr.incompatible_features & ~QCOW2_INCOMPAT_COMPRESSION;
    if (incompat)
        return error_set(err, -ENOTSUP, "Cannot downgrade an image with incompatible "
                         "features 0x%" PRIx64 " set", incompat);
    if (s->compression_type != QCOW2_COMPRESSION_ZLIB) {
        ret = has_compressed_clusters(s);
        if (ret < 0)
            return error_set(err, -EINVAL, "Failed to check block status");
        if (ret)
            return error_set(err, -ENOTSUP, "Cannot downgrade an image with zstd compression "
                             "type and existing compressed clusters");
    }
    ret = expand_zero_clusters(s);
    if (ret < 0)
        return error_set_errno(err, ret, "Failed to turn zero into data clusters");
    struct qcow2_header old = s->hdr;
    s->hdr.compatible_features = 0;
    s->hdr.autoclear_features = 0;
    s->hdr.incompatible_features = 0;
    s->hdr.compression_type = 0;
    s->hdr.version = 2;
    ret = qcow2_write_header(s);
    if (ret < 0) {
        s->hdr = old;
        return error_set_errno(err, ret, "Failed to update the image header");
    }
    s->lazy_refcounts = false;
    s->compression_type = QCOW2_COMPRESSION_ZLIB;
    s->unknown_autoclear = 0;
    return 0;
}

/* ---- refcount_bits ------------------------------------------------------------ */

static int change_refcount_order(struct qcow2_state *s, unsigned order, struct error *err)
{
    int ret = qcow2_flush_metadata(s);
    int64_t end = ret < 0 ? ret : qcow2_refcount_end(s), flen = bdev_getlength(s->bs->file);
    if (end < 0 || flen < 0)
        return error_set_errno(err, (int)(end < 0 ? end : flen), "Failed to read refcounts");
    uint64_t n = ((uint64_t)(end > flen ? end : flen) + s->cluster_size - 1) >> s->cluster_bits;
    uint64_t *rc = calloc(n ? n : 1, sizeof(uint64_t));
    if (!rc)
        return error_set(err, -ENOMEM, "Failed to read refcounts");
    for (uint64_t i = 0; i < n && ret == 0; i++)
        ret = qcow2_get_refcount(s, i, &rc[i]);
    /* The old structure, to be freed once the header has moved on. */
    uint64_t old_table = s->refcount_table_offset, old_clusters = s->hdr.refcount_table_clusters;
    uint64_t old_n = s->refcount_table_size, *old_blocks = malloc((old_n ? old_n : 1) * 8);
    if (ret == 0 && !old_blocks)
        ret = -ENOMEM;
    if (ret < 0) {
        free(rc);
        free(old_blocks);
        return error_set_errno(err, ret, "Failed to read refcounts");
    }
    memcpy(old_blocks, s->refcount_table, old_n * 8);
    ret = qcow2_rebuild_refcounts(s, &rc, &n, order, err);
    free(rc);
    for (uint64_t i = 0; ret == 0 && i < old_n; i++) {
        uint64_t off = old_blocks[i] & QCOW2_REFT_OFFSET_MASK;
        if (off)
            ret = qcow2_update_refcount(s, off, s->cluster_size, -1);
    }
    if (ret == 0 && old_clusters)
        ret = qcow2_update_refcount(s, old_table, old_clusters << s->cluster_bits, -1);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    free(old_blocks);
    if (ret < 0 && !error_is_set(err))
        error_set_errno(err, ret, "Failed to free the old refcount structure");
    return ret;
}

/* ---- lazy_refcounts -------------------------------------------------------------- */

static int set_lazy(struct qcow2_state *s, bool lazy, int version, struct error *err)
{
    if (lazy && version < 3)
        return error_set(err, -EINVAL, "Lazy refcounts only supported with compatibility "
                         "level 1.1 and above (use compat=1.1 or greater)");
    int ret = lazy ? 0 : qcow2_mark_clean(s);
    if (ret < 0)
        return error_set_errno(err, ret, "Failed to make the image clean");
    uint64_t old = s->hdr.compatible_features;
    if (lazy)
        s->hdr.compatible_features |= QCOW2_COMPAT_LAZY_REFCOUNTS;
    else
        s->hdr.compatible_features &= ~QCOW2_COMPAT_LAZY_REFCOUNTS;
    ret = qcow2_write_header(s);
    if (ret < 0) {
        s->hdr.compatible_features = old;
        return error_set_errno(err, ret, "Failed to update the image header");
    }
    s->lazy_refcounts = lazy;
    return 0;
}

static int amend_locked(struct qcow2_state *s, struct amend_req *r, struct error *err)
{
    int ret = 0, old_version = (int)s->hdr.version;
    if (r->version > old_version)
        ret = upgrade(s, err);
    if (ret == 0 && r->refcount_bits != s->refcount_bits) {
        if (r->version < 3 && r->refcount_bits != 16)
            return error_set(err, -EINVAL, "Refcount widths other than 16 bits require "
                             "compatibility level 1.1 or above (use compat=1.1 or greater)");
        ret = change_refcount_order(s, (unsigned)__builtin_ctzll(r->refcount_bits), err);
    }
    if (ret == 0 && (r->backing_file || r->backing_fmt) &&
        (!streq0(r->backing_file, s->backing_file) || !streq0(r->backing_fmt, s->backing_format)))
        return error_set(err, -EINVAL, "Cannot amend the backing file\n"
                         "You can use 'qemu-img rebase' instead.");
    if (ret == 0 && r->lazy != s->lazy_refcounts)
        ret = set_lazy(s, r->lazy, r->version, err);
    return ret;
}

int qcow2_amend(struct bdev *bs, struct opts *o, bool force, struct error *err)
{
    struct qcow2_state *s = qcow2_state(bs);
    struct amend_req r;
    (void)force;
    if (s->read_only || bs->read_only)
        return error_set(err, -EACCES, "The image is opened read-only");
    pthread_mutex_lock(&s->lock);
    int ret = parse(s, o, &r, err);
    if (ret == 0)
        ret = amend_locked(s, &r, err);
    pthread_mutex_unlock(&s->lock);
    if (ret == 0 && r.size && r.size != s->hdr.size)
        ret = bdev_truncate(bs, r.size, true, NULL, err);
    if (ret == 0 && r.version < (int)s->hdr.version) {
        pthread_mutex_lock(&s->lock);
        ret = downgrade(s, err);
        pthread_mutex_unlock(&s->lock);
    }
    return ret;
}
