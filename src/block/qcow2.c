/* qcow2 core: header and extensions, open/close, create, resize, info, and
 * the ops table. The data path is in qcow2-cluster.c, refcounts in
 * qcow2-refcount.c, the metadata cache in qcow2-cache.c. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "block/qcow2.h"
#include "block/qcow2-meta.h"


static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static void wr32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static void wr64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }

/* ---- Header --------------------------------------------------------------- */

static void parse_header(struct qcow2_header *h, const uint8_t *b)
{
    memset(h, 0, sizeof(*h));
    h->magic = rd32(b);
    h->version = rd32(b + 4);
    h->backing_file_offset = rd64(b + 8);
    h->backing_file_size = rd32(b + 16);
    h->cluster_bits = rd32(b + 20);
    h->size = rd64(b + 24);
    h->crypt_method = rd32(b + 32);
    h->l1_size = rd32(b + 36);
    h->l1_table_offset = rd64(b + 40);
    h->refcount_table_offset = rd64(b + 48);
    h->refcount_table_clusters = rd32(b + 56);
    h->nb_snapshots = rd32(b + 60);
    h->snapshots_offset = rd64(b + 64);
    if (h->version >= 3) {
        h->incompatible_features = rd64(b + 72);
        h->compatible_features = rd64(b + 80);
        h->autoclear_features = rd64(b + 88);
        h->refcount_order = rd32(b + 96);
        h->header_length = rd32(b + 100);
        if (h->header_length > 104)
            h->compression_type = b[104];
    } else {
        h->refcount_order = 4;
        h->header_length = QCOW2_V2_HEADER_SIZE;
    }
}

static int add_ext(uint8_t *buf, size_t len, size_t *pos, uint32_t type, const void *data,
                   uint32_t n)
{
    size_t need = 8 + ((n + 7) & ~7u);
    if (*pos + need > len)
        return -ENOSPC;
    wr32(buf + *pos, type);
    wr32(buf + *pos + 4, n);
    memcpy(buf + *pos + 8, data, n);
    memset(buf + *pos + 8 + n, 0, need - 8 - n);
    *pos += need;
    return 0;
}

static const struct { uint8_t type, bit; const char *name; } feature_names[] = {
    { 0, 0, "dirty bit" }, { 0, 1, "corrupt bit" }, { 0, 2, "external data file" },
    { 0, 3, "compression type" }, { 0, 4, "extended L2 entries" },
    { 1, 0, "lazy refcounts" }, { 2, 0, "bitmaps" }, { 2, 1, "raw external data" },
};

/* Lay out the first cluster from s->hdr and the extensions; returns its length. */
static int build_header(struct qcow2_state *s, uint8_t *buf, size_t len)
{
    struct qcow2_header *h = &s->hdr;
    bool v3 = h->version >= 3;
    size_t pos = v3 ? QCOW2_V3_HEADER_SIZE_CT : QCOW2_V2_HEADER_SIZE;
    memset(buf, 0, len);
    wr32(buf, QCOW2_MAGIC);
    wr32(buf + 4, h->version);
    wr32(buf + 20, h->cluster_bits);
    wr64(buf + 24, h->size);
    wr32(buf + 32, h->crypt_method);
    wr32(buf + 36, h->l1_size);
    wr64(buf + 40, h->l1_table_offset);
    wr64(buf + 48, h->refcount_table_offset);
    wr32(buf + 56, h->refcount_table_clusters);
    wr32(buf + 60, h->nb_snapshots);
    wr64(buf + 64, h->snapshots_offset);
    if (v3) {
        wr64(buf + 72, h->incompatible_features);
        wr64(buf + 80, h->compatible_features);
        wr64(buf + 88, h->autoclear_features);
        wr32(buf + 96, h->refcount_order);
        wr32(buf + 100, QCOW2_V3_HEADER_SIZE_CT);
        buf[104] = h->compression_type;
    }
    int ret = 0;
    if (s->backing_format)
        ret = add_ext(buf, len, &pos, QCOW2_EXT_BACKING_FORMAT, s->backing_format,
                      (uint32_t)strlen(s->backing_format));
    for (struct qcow2_unknown_ext *e = s->unknown_exts; e && ret == 0; e = e->next)
        ret = add_ext(buf, len, &pos, e->type, e->data, e->len);
    if (ret < 0)
        return ret;
    size_t blen = s->backing_file ? strlen(s->backing_file) : 0;
    /* The feature name table only helps old readers: drop it if space is short. */
    if (v3) {
        uint8_t ft[sizeof(feature_names) / sizeof(feature_names[0]) * 48];
        memset(ft, 0, sizeof(ft));
        for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++) {
            ft[i * 48] = feature_names[i].type;
            ft[i * 48 + 1] = feature_names[i].bit;
            memcpy(ft + i * 48 + 2, feature_names[i].name, strlen(feature_names[i].name));
        }
        size_t save = pos;
        if (add_ext(buf, len, &pos, QCOW2_EXT_FEATURE_TABLE, ft, sizeof(ft)) < 0 ||
            pos + 8 + blen > len)
            pos = save;
    }
    if (pos + 8 + blen > len)
        return -ENOSPC;
    memset(buf + pos, 0, 8);     /* end of extensions */
    pos += 8;
    if (blen) {
        memcpy(buf + pos, s->backing_file, blen);
        wr64(buf + 8, pos);
        wr32(buf + 16, (uint32_t)blen);
        h->backing_file_offset = pos;
        h->backing_file_size = (uint32_t)blen;
        pos += blen;
    } else {
        h->backing_file_offset = 0;
        h->backing_file_size = 0;
    }
    return (int)pos;
}

int qcow2_write_header(struct qcow2_state *s)
{
    uint8_t *buf = malloc(s->cluster_size);
    if (!buf)
        return -ENOMEM;
    int n = build_header(s, buf, s->cluster_size);
    int ret = n < 0 ? n : bdev_pwrite(s->bs->file, 0, buf, (uint64_t)n, 0);
    free(buf);
    if (ret == 0)
        ret = qcow2_barrier(s);
    return ret;
}

static int write_incompat(struct qcow2_state *s)
{
    uint8_t b[8];
    wr64(b, s->hdr.incompatible_features);
    int ret = bdev_pwrite(s->bs->file, QCOW2_HDR_INCOMPAT, b, 8, 0);
    return ret == 0 ? qcow2_barrier(s) : ret;
}

int qcow2_mark_dirty(struct qcow2_state *s)
{
    if (s->hdr.version < 3 || (s->hdr.incompatible_features & QCOW2_INCOMPAT_DIRTY)) {
        s->dirty_on_disk = true;
        return 0;
    }
    int ret = qcow2_barrier(s);
    if (ret < 0)
        return ret;
    s->hdr.incompatible_features |= QCOW2_INCOMPAT_DIRTY;
    ret = write_incompat(s);
    if (ret == 0) {
        s->dirty_on_disk = true;
        s->l2_cache.depends = NULL;   /* refcounts may lag behind now */
    }
    return ret;
}

int qcow2_mark_clean(struct qcow2_state *s)
{
    if (!(s->hdr.incompatible_features & QCOW2_INCOMPAT_DIRTY))
        return 0;
    int ret = qcow2_flush_metadata(s);
    if (ret < 0)
        return ret;
    s->hdr.incompatible_features &= ~QCOW2_INCOMPAT_DIRTY;
    ret = write_incompat(s);
    if (ret == 0) {
        s->dirty_on_disk = false;
        s->l2_cache.depends = &s->rb_cache;
    }
    return ret;
}

int qcow2_signal_corruption(struct qcow2_state *s, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s->corrupt)
        return -EIO;
    s->corrupt = true;
    if (s->read_only || s->hdr.version < 3) {
        error_report("qcow2: Image is corrupt: %s; further corruption events will be suppressed",
                     msg);
        return -EIO;
    }
    error_report("qcow2: Marking image as corrupt: %s; further corruption events will be "
                 "suppressed", msg);
    s->hdr.incompatible_features |= QCOW2_INCOMPAT_CORRUPT;
    write_incompat(s);
    return -EIO;
}

int qcow2_barrier(struct qcow2_state *s)
{
    return bdev_flush(s->bs->file);
}

void qcow2_io_quiesce(struct qcow2_state *s)
{
    pthread_rwlock_wrlock(&s->io_lock);
    pthread_mutex_lock(&s->pin_lock);
    while (s->pins)
        pthread_cond_wait(&s->pin_cond, &s->pin_lock);
    pthread_mutex_unlock(&s->pin_lock);
}

void qcow2_io_resume(struct qcow2_state *s)
{
    pthread_rwlock_unlock(&s->io_lock);
}

int qcow2_flush_metadata(struct qcow2_state *s)
{
    int ret = qcow2_cache_flush(s, &s->rb_cache);
    if (ret == 0)
        ret = qcow2_barrier(s);
    if (ret == 0)
        ret = qcow2_cache_flush(s, &s->l2_cache);
    if (ret == 0 && s->n_pending) {
        /* The references they dropped must be durable before refcounts fall. */
        ret = qcow2_barrier(s);
        qcow2_io_quiesce(s);
        if (ret == 0)
            ret = qcow2_apply_pending_frees(s);
        qcow2_io_resume(s);
        if (ret == 0)
            ret = qcow2_cache_flush(s, &s->rb_cache);
    }
    if (ret == 0)
        ret = qcow2_barrier(s);
    return ret;
}

/* ---- Open ------------------------------------------------------------------ */

static int read_extensions(struct qcow2_state *s, const uint8_t *buf, size_t end,
                           char *features, size_t features_len, struct error *err)
{
    size_t pos = s->hdr.header_length;
    features[0] = 0;
    while (pos + 8 <= end) {
        uint32_t type = rd32(buf + pos), len = rd32(buf + pos + 4);
        pos += 8;
        if (type == QCOW2_EXT_END)
            return 0;
        if (len > end - pos)
            return error_set(err, -EINVAL, "Header extension too large");
        const uint8_t *d = buf + pos;
        if (type == QCOW2_EXT_BACKING_FORMAT) {
            if (len > 1023)
                return error_set(err, -EINVAL, "ERROR: ext_backing_format: len=%u too large",
                                 len);
            s->backing_format = strndup((const char *)d, len);
        } else if (type == QCOW2_EXT_FEATURE_TABLE) {
            for (uint32_t i = 0; i + 48 <= len; i += 48) {
                uint64_t bit = 1ull << (d[i + 1] & 63);
                if (d[i] == 0 && (s->hdr.incompatible_features & bit & ~QCOW2_INCOMPAT_KNOWN))
                    snprintf(features + strlen(features), features_len - strlen(features),
                             "%s%.46s", features[0] ? ", " : "", (const char *)d + i + 2);
            }
        } else if (type != QCOW2_EXT_DATA_FILE) {
            struct qcow2_unknown_ext *e = calloc(1, sizeof(*e)), **tail = &s->unknown_exts;
            if (!e || !(e->data = malloc(len ? len : 1))) {
                free(e);
                return -ENOMEM;
            }
            e->type = type;
            e->len = len;
            memcpy(e->data, d, len);
            while (*tail)
                tail = &(*tail)->next;
            *tail = e;
        }
        pos += (len + 7) & ~7u;
    }
    return 0;
}

static int check_header(struct qcow2_state *s, int64_t flen, struct error *err)
{
    struct qcow2_header *h = &s->hdr;
    if (h->magic != QCOW2_MAGIC)
        return error_set(err, -EINVAL, "Image is not in qcow2 format");
    if (h->version < 2 || h->version > 3)
        return error_set(err, -ENOTSUP, "Unsupported qcow2 version %u", h->version);
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
        return error_set(err, -EINVAL, "Unsupported cluster size: 2^%u", h->cluster_bits);
    if (h->version >= 3 && (h->header_length < QCOW2_V3_HEADER_SIZE || h->header_length % 8))
        return error_set(err, -EINVAL, "qcow2 header too short");
    if (h->header_length > (1u << h->cluster_bits))
        return error_set(err, -EINVAL, "qcow2 header exceeds cluster size");
    if (h->crypt_method)
        return error_set(err, -ENOTSUP, "Encrypted qcow2 images are not supported");
    if (h->refcount_order > 6)
        return error_set(err, -EINVAL,
                         "Reference count entry width too large; may not exceed 64 bits");
    if (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE)
        return error_set(err, -ENOTSUP, "External data files are not supported");
    if ((h->incompatible_features & QCOW2_INCOMPAT_EXTL2) && h->cluster_bits < 14)
        return error_set(err, -EINVAL, "Extended L2 entries need clusters of at least 16 KiB");
    if (h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION) {
        if (h->header_length <= 104 || h->compression_type != QCOW2_COMPRESSION_ZSTD)
            return error_set(err, -EINVAL, "Unknown compression type %u", h->compression_type);
    } else if (h->compression_type) {
        return error_set(err, -EINVAL,
                         "Compression type bit is not set but compression type is %u",
                         h->compression_type);
    }
    if (h->backing_file_size > QCOW2_MAX_BACKING_NAME ||
        (h->backing_file_offset &&
         h->backing_file_offset + h->backing_file_size > (1ull << h->cluster_bits)))
        return error_set(err, -EINVAL, "Backing file name too long");
    if (h->refcount_table_offset % (1ull << h->cluster_bits) ||
        h->l1_table_offset % (1ull << h->cluster_bits))
        return error_set(err, -EINVAL, "Metadata table offset not aligned to a cluster");
    if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_SIZE)
        return error_set(err, -EFBIG, "Active L1 table too large");
    if (!h->refcount_table_clusters)
        return error_set(err, -EINVAL, "Image does not contain a reference count table");
    (void)flen;
    return 0;
}

static void setup_geometry(struct qcow2_state *s)
{
    struct qcow2_header *h = &s->hdr;
    s->cluster_bits = h->cluster_bits;
    s->cluster_size = 1ull << h->cluster_bits;
    s->extended_l2 = (h->incompatible_features & QCOW2_INCOMPAT_EXTL2) != 0;
    s->l2_entry_size = s->extended_l2 ? 16 : 8;
    s->l2_bits = s->cluster_bits - (s->extended_l2 ? 4 : 3);
    s->l2_size = 1ull << s->l2_bits;
    s->subcluster_size = s->extended_l2 ? s->cluster_size / QCOW2_SUBCLUSTERS : s->cluster_size;
    s->csize_shift = 62 - (s->cluster_bits - 8);
    s->csize_mask = (1ull << (s->cluster_bits - 8)) - 1;
    s->cluster_offset_mask = (1ull << s->csize_shift) - 1;
    s->refcount_order = h->refcount_order;
    s->refcount_bits = 1u << h->refcount_order;
    s->refcount_max = s->refcount_bits == 64 ? UINT64_MAX : (1ull << s->refcount_bits) - 1;
    s->rb_bits = s->cluster_bits + 3 - s->refcount_order;
    s->compression_type = h->compression_type;
    s->lazy_refcounts = (h->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0;
}

static int load_l1(struct qcow2_state *s, struct error *err)
{
    s->l1_size = s->hdr.l1_size;
    s->l1_table_offset = s->hdr.l1_table_offset;
    if (s->l1_size < qcow2_l1_entries(s, s->hdr.size))
        return error_set(err, -EINVAL, "L1 table is too small");
    s->l1_table = calloc(s->l1_size ? s->l1_size : 1, 8);
    if (!s->l1_table)
        return -ENOMEM;
    if (s->l1_size) {
        int ret = bdev_pread(s->bs->file, s->l1_table_offset, s->l1_table, s->l1_size * 8ull);
        if (ret < 0)
            return error_set_errno(err, ret, "Could not read L1 table");
    }
    for (uint32_t i = 0; i < s->l1_size; i++)
        s->l1_table[i] = be64toh(s->l1_table[i]);
    return 0;
}

static int init_caches(struct qcow2_state *s)
{
    /* Enough L2 tables to map the whole disk, within 32 MiB. */
    uint64_t per_l2 = s->cluster_size << s->l2_bits;
    uint64_t want = (s->hdr.size + per_l2 - 1) / per_l2 + 1;
    uint64_t cap = (32ull << 20) / s->cluster_size;
    if (cap > 8192)
        cap = 8192;
    if (want > cap)
        want = cap;
    if (want < 16)
        want = 16;
    int ret = qcow2_cache_init(&s->l2_cache, (int)want, s->cluster_size);
    if (ret == 0)
        ret = qcow2_cache_init(&s->rb_cache, s->cluster_size >= (1u << 20) ? 8 : 64,
                               s->cluster_size);
    s->l2_cache.depends = &s->rb_cache;
    return ret;
}

static void free_state(struct qcow2_state *s)
{
    qcow2_free_snapshots(s);
    qcow2_cache_destroy(&s->l2_cache);
    qcow2_cache_destroy(&s->rb_cache);
    qcow2_refcount_close(s);
    free(s->l1_table);
    s->l1_table = NULL;
    free(s->backing_file);
    free(s->backing_format);
    s->backing_file = s->backing_format = NULL;
    while (s->unknown_exts) {
        struct qcow2_unknown_ext *e = s->unknown_exts;
        s->unknown_exts = e->next;
        free(e->data);
        free(e);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_rwlock_destroy(&s->io_lock);
    pthread_cond_destroy(&s->inflight_cond);
    pthread_mutex_destroy(&s->pin_lock);
    pthread_cond_destroy(&s->pin_cond);
}

static int open_metadata(struct qcow2_state *s, const uint8_t *buf, size_t buflen,
                         struct error *err)
{
    char features[512];
    size_t ext_end = buflen;
    if (s->hdr.backing_file_offset && s->hdr.backing_file_offset < ext_end)
        ext_end = s->hdr.backing_file_offset;
    int ret = read_extensions(s, buf, ext_end, features, sizeof(features), err);
    if (ret < 0)
        return ret;
    uint64_t unknown = s->hdr.incompatible_features & ~QCOW2_INCOMPAT_KNOWN;
    if (unknown) {
        if (features[0])
            return error_set(err, -ENOTSUP, "Unsupported qcow2 feature(s): %s", features);
        return error_set(err, -ENOTSUP,
                         "Unsupported qcow2 feature(s): Unknown incompatible feature: %llx",
                         (unsigned long long)unknown);
    }
    if (s->hdr.backing_file_offset) {
        s->backing_file = strndup((const char *)buf + s->hdr.backing_file_offset,
                                  s->hdr.backing_file_size);
        if (!s->backing_file)
            return -ENOMEM;
    }
    ret = load_l1(s, err);
    if (ret < 0)
        return ret;
    ret = qcow2_refcount_init(s);
    if (ret < 0)
        return error_set_errno(err, ret, "Could not read refcount table");
    ret = init_caches(s);
    if (ret < 0)
        return error_set_errno(err, ret, "Could not allocate metadata caches");
    return 0;
}

/* Repair an image left dirty (lazy refcounts) before writing to it. */
static int repair_dirty(struct bdev *bs, struct qcow2_state *s, struct error *err)
{
    struct bdev_check_result res;
    memset(&res, 0, sizeof(res));
    int ret = qcow2_check(bs, &res, BDEV_FIX_ERRORS | BDEV_FIX_LEAKS, NULL);
    if (ret < 0)
        return error_set_errno(err, ret, "Could not repair dirty image");
    pthread_mutex_lock(&s->lock);
    ret = qcow2_mark_clean(s);
    pthread_mutex_unlock(&s->lock);
    return ret < 0 ? error_set_errno(err, ret, "Could not mark image clean") : 0;
}

/* Header, extensions, L1 and refcount tables, caches. */
static int load_image(struct bdev *bs, struct qcow2_state *s, struct error *err)
{
    uint8_t hb[QCOW2_V3_HEADER_SIZE_CT];
    int64_t flen = bdev_getlength(bs->file);
    memset(hb, 0, sizeof(hb));
    int ret = flen < 0 ? (int)flen
                       : bdev_pread(bs->file, 0, hb, (uint64_t)flen < sizeof(hb) ? (uint64_t)flen
                                                                             : sizeof(hb));
    if (ret < 0)
        return error_set_errno(err, ret, "Could not read qcow2 header");
    parse_header(&s->hdr, hb);
    ret = check_header(s, flen, err);
    if (ret < 0)
        return ret;
    setup_geometry(s);
    uint8_t *buf = calloc(1, s->cluster_size);
    uint64_t n = (uint64_t)flen < s->cluster_size ? (uint64_t)flen : s->cluster_size;
    ret = buf ? bdev_pread(bs->file, 0, buf, n) : -ENOMEM;
    if (ret == 0)
        ret = open_metadata(s, buf, s->cluster_size, err);
    free(buf);
    if (ret == 0 && s->hdr.nb_snapshots) {
        ret = qcow2_read_snapshots(s, err);
        if (ret < 0 && (bs->flags & BDEV_O_CHECK)) {
            ret = 0;           /* check reports and repairs it */
            *err = (struct error){ 0 };
        }
    }
    if (ret == 0 && (s->hdr.incompatible_features & QCOW2_INCOMPAT_CORRUPT)) {
        s->corrupt = true;
        if (!bs->read_only && !(bs->flags & BDEV_O_CHECK))
            ret = error_set(err, -EACCES, "qcow2: Image is corrupt; cannot be opened read/write");
    }
    return ret;
}

/* What a read-write open settles before the first write. */
static int open_rw(struct bdev *bs, struct qcow2_state *s, struct error *err)
{
    int ret = 0;
    if (s->hdr.version >= 3 && s->hdr.autoclear_features) {
        /* We maintain none of these: clearing them is how we say so. */
        s->hdr.autoclear_features = 0;
        ret = qcow2_write_header(s);
    }
    if (ret == 0 && (s->hdr.incompatible_features & QCOW2_INCOMPAT_DIRTY) &&
        !(bs->flags & BDEV_O_CHECK))
        ret = repair_dirty(bs, s, err);
    return ret;
}

static int qcow2_open(struct bdev *bs, const struct bdev_open_opts *o, struct error *err)
{
    struct qcow2_state *s = qcow2_state(bs);
    s->bs = bs;
    pthread_mutex_init(&s->lock, NULL);
    pthread_rwlock_init(&s->io_lock, NULL);
    pthread_cond_init(&s->inflight_cond, NULL);
    pthread_mutex_init(&s->pin_lock, NULL);
    pthread_cond_init(&s->pin_cond, NULL);
    s->read_only = bs->read_only;
    int ret = load_image(bs, s, err);
    if (ret == 0) {
        bs->backing_file = s->backing_file ? strdup(s->backing_file) : NULL;
        bs->backing_format = s->backing_format ? strdup(s->backing_format) : NULL;
    }
    if (ret == 0 && !bs->read_only)
        ret = open_rw(bs, s, err);
    if (ret < 0) {
        free_state(s);
        s->bs = NULL;
        if (!error_is_set(err))
            error_set_errno(err, ret, "Could not open '%s'", bs->filename);
    }
    (void)o;
    return ret;
}

static void qcow2_close(struct bdev *bs)
{
    struct qcow2_state *s = qcow2_state(bs);
    if (!s->bs)
        return;
    if (!s->read_only && !s->corrupt) {
        pthread_mutex_lock(&s->lock);
        if (qcow2_flush_metadata(s) == 0 && s->dirty_on_disk)
            qcow2_mark_clean(s);
        pthread_mutex_unlock(&s->lock);
    }
    free_state(s);
    s->bs = NULL;
}

static int qcow2_flush(struct bdev *bs)
{
    struct qcow2_state *s = qcow2_state(bs);
    if (s->read_only || s->corrupt)
        return 0;
    pthread_mutex_lock(&s->lock);
    int ret = qcow2_flush_metadata(s);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static int64_t qcow2_getlength(struct bdev *bs)
{
    return (int64_t)qcow2_state(bs)->hdr.size;
}

static int64_t qcow2_allocated_size(struct bdev *bs)
{
    return bdev_allocated_size(bs->file);
}

static int qcow2_probe(const uint8_t *buf, int len, const char *filename)
{
    if (len >= 8 && rd32(buf) == QCOW2_MAGIC && rd32(buf + 4) >= 2)
        return 100;
    return 0;
}

/* ---- Resize ------------------------------------------------------------------ */

static int write_size(struct qcow2_state *s, uint64_t size)
{
    uint8_t b[8];
    wr64(b, size);
    int ret = bdev_pwrite(s->bs->file, QCOW2_HDR_SIZE, b, 8, 0);
    if (ret == 0)
        ret = qcow2_barrier(s);
    if (ret == 0)
        s->hdr.size = size;
    return ret;
}

/* Give the data clusters of [start, end) real space (falloc/full) and make
 * the file cover everything allocated. */
static int prealloc_data(struct qcow2_state *s, uint64_t start, uint64_t end, const char *mode)
{
    int ret = 0;
    bool full = !strcmp(mode, "full"), falloc = !strcmp(mode, "falloc");
    uint8_t *z = full ? calloc(1, 1u << 20) : NULL;
    if (full && !z)
        return -ENOMEM;
    for (uint64_t pos = start; ret == 0 && pos < end && (full || falloc); ) {
        uint64_t n = end - pos, host;
        enum qcow2_cluster_type t;
        ret = qcow2_get_host_offset(s, pos, &n, &host, &t);
        if (ret == 0 && (t == QCOW2_CL_NORMAL || t == QCOW2_CL_UNALLOC_ALLOC)) {
            host &= ~(s->cluster_size - 1);
            uint64_t len = qcow2_align_up(s, (pos & (s->cluster_size - 1)) + n);
            for (uint64_t d = 0; ret == 0 && d < len; ) {
                uint64_t m = len - d < (1u << 20) ? len - d : (1u << 20);
                ret = full ? bdev_pwrite(s->bs->file, host + d, z, m, 0)
                           : bdev_pwrite_zeroes(s->bs->file, host + d, m, 0);
                d += m;
            }
        }
        pos += n;
    }
    free(z);
    int64_t flen = bdev_getlength(s->bs->file);
    uint64_t want = s->alloc_end << s->cluster_bits;
    if (ret == 0 && flen >= 0 && (uint64_t)flen < want)
        ret = bdev_truncate(s->bs->file, want, false, NULL, NULL);
    return ret;
}

static int grow(struct qcow2_state *s, uint64_t size, const char *prealloc, struct error *err)
{
    uint64_t old = s->hdr.size;
    int ret = qcow2_grow_l1_table(s, qcow2_l1_entries(s, size));
    if (ret < 0)
        return error_set_errno(err, ret, "Failed to grow the L1 table");
    if (strcmp(prealloc, "off")) {
        /* Preallocated clusters go past everything in use, where the file reads zero. */
        uint64_t hint = s->free_cluster_index;
        if (s->free_cluster_index < s->alloc_end)
            s->free_cluster_index = s->alloc_end;
        ret = qcow2_preallocate(s, old, size - old);
        if (hint < s->free_cluster_index)
            s->free_cluster_index = hint;
        if (ret == 0)
            ret = qcow2_flush_metadata(s);
        if (ret == 0)
            ret = prealloc_data(s, old, size, prealloc);
        if (ret < 0)
            return error_set_errno(err, ret, "Preallocation failed");
    }
    ret = qcow2_flush_metadata(s);
    if (ret == 0)
        ret = write_size(s, size);
    return ret < 0 ? error_set_errno(err, ret, "Failed to update the image size") : 0;
}

/* Drop the L2 tables wholly past the new end (their clusters too). */
static int drop_l2_tables(struct qcow2_state *s, uint64_t first)
{
    for (uint64_t i = first; i < s->l1_size; i++) {
        uint64_t l2off = s->l1_table[i] & QCOW2_L1E_OFFSET_MASK;
        if (!l2off)
            continue;
        void *l2;
        int ret = qcow2_cache_get(s, &s->l2_cache, l2off, &l2);
        for (uint64_t j = 0; ret == 0 && j < s->l2_size; j++) {
            uint64_t e = qcow2_l2_get(s, l2, j);
            if (e & (QCOW2_OFLAG_COMPRESSED | QCOW2_L2E_OFFSET_MASK))
                ret = qcow2_free_l2_entry(s, e);
        }
        if (ret == 0)
            qcow2_cache_put(&s->l2_cache, &l2);
        s->l1_table[i] = 0;
        if (ret == 0)
            ret = qcow2_write_l1_entry(s, i);
        if (ret == 0)
            ret = qcow2_free_clusters(s, l2off, s->cluster_size);
        if (ret < 0)
            return ret;
    }
    return 0;
}

static int shrink(struct qcow2_state *s, uint64_t size, struct error *err)
{
    if (s->hdr.nb_snapshots)
        return error_set(err, -ENOTSUP, "Can't shrink an image which has snapshots");
    uint64_t keep = qcow2_l1_entries(s, size);
    uint64_t per_l2 = s->cluster_size << s->l2_bits;
    uint64_t l2_end = keep * per_l2 < s->hdr.size ? keep * per_l2 : s->hdr.size;
    int ret = qcow2_discard_range(s, size, l2_end > size ? l2_end - size : 0, false);
    if (ret == 0)
        ret = drop_l2_tables(s, keep);
    if (ret == 0)
        ret = write_size(s, size);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    if (ret < 0)
        return error_set_errno(err, ret, "Failed to shrink the image");
    int64_t end = qcow2_refcount_end(s), flen = bdev_getlength(s->bs->file);
    if (end > 0 && flen > end)
        bdev_truncate(s->bs->file, (uint64_t)end, true, NULL, NULL);
    return 0;
}

static int qcow2_truncate(struct bdev *bs, uint64_t size, bool do_shrink, const char *prealloc,
                          struct error *err)
{
    struct qcow2_state *s = qcow2_state(bs);
    if (!prealloc)
        prealloc = "off";
    if (strcmp(prealloc, "off") && strcmp(prealloc, "metadata") && strcmp(prealloc, "falloc") &&
        strcmp(prealloc, "full"))
        return error_set(err, -EINVAL, "Invalid preallocation mode: '%s'", prealloc);
    if (size % QCOW2_SECTOR)
        return error_set(err, -EINVAL, "The new size must be a multiple of 512");
    if (s->corrupt)
        return error_set(err, -EIO, "Image is corrupt");
    if (s->hdr.nb_snapshots && s->hdr.version < 3)
        return error_set(err, -ENOTSUP, "Can't resize a v2 image which has snapshots");
    pthread_mutex_lock(&s->lock);
    qcow2_wait_inflight(s, 0, UINT64_MAX);
    int ret = 0;
    if (s->lazy_refcounts && !s->dirty_on_disk)
        ret = qcow2_mark_dirty(s);
    if (ret < 0)
        error_set_errno(err, ret, "Could not mark image dirty");
    else if (size > s->hdr.size)
        ret = grow(s, size, prealloc, err);
    else if (size < s->hdr.size && !do_shrink)
        ret = error_set(err, -EINVAL,
                        "Use the --shrink option to perform a shrink operation.");
    else if (size < s->hdr.size && strcmp(prealloc, "off"))
        ret = error_set(err, -ENOTSUP, "Preallocation can't be used for shrinking an image");
    else if (size < s->hdr.size)
        ret = shrink(s, size, err);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* ---- Info, backing, make_empty ------------------------------------------------ */

static int qcow2_get_info(struct bdev *bs, struct bdev_info *info)
{
    struct qcow2_state *s = qcow2_state(bs);
    struct json_object *d = json_object_new_object(), *o = json_object_new_object();
    bool v3 = s->hdr.version >= 3;
    info->cluster_size = s->cluster_size;
    info->dirty = (s->hdr.incompatible_features & QCOW2_INCOMPAT_DIRTY) != 0;
    json_object_object_add(d, "compat", json_object_new_string(v3 ? "1.1" : "0.10"));
    json_object_object_add(d, "compression-type", json_object_new_string(
        s->compression_type == QCOW2_COMPRESSION_ZSTD ? "zstd" : "zlib"));
    if (v3)
        json_object_object_add(d, "lazy-refcounts", json_object_new_boolean(s->lazy_refcounts));
    json_object_object_add(d, "refcount-bits", json_object_new_int((int)s->refcount_bits));
    if (v3) {
        json_object_object_add(d, "corrupt", json_object_new_boolean(s->corrupt));
        json_object_object_add(d, "extended-l2", json_object_new_boolean(s->extended_l2));
    }
    json_object_object_add(o, "type", json_object_new_string("qcow2"));
    json_object_object_add(o, "data", d);
    info->format_specific = o;
    return 0;
}

static int qcow2_change_backing_file(struct bdev *bs, const char *file, const char *fmt)
{
    struct qcow2_state *s = qcow2_state(bs);
    if (file && strlen(file) > QCOW2_MAX_BACKING_NAME)
        return -EINVAL;
    pthread_mutex_lock(&s->lock);
    char *of = s->backing_file, *ofmt = s->backing_format;
    s->backing_file = file && file[0] ? strdup(file) : NULL;
    s->backing_format = s->backing_file && fmt && fmt[0] ? strdup(fmt) : NULL;
    int ret = qcow2_write_header(s);
    if (ret < 0) {
        free(s->backing_file);
        free(s->backing_format);
        s->backing_file = of;
        s->backing_format = ofmt;
    } else {
        free(of);
        free(ofmt);
        free(bs->backing_file);
        free(bs->backing_format);
        bs->backing_file = s->backing_file ? strdup(s->backing_file) : NULL;
        bs->backing_format = s->backing_format ? strdup(s->backing_format) : NULL;
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static int qcow2_make_empty(struct bdev *bs)
{
    struct qcow2_state *s = qcow2_state(bs);
    pthread_mutex_lock(&s->lock);
    qcow2_wait_inflight(s, 0, UINT64_MAX);
    int ret = qcow2_discard_range(s, 0, qcow2_align_up(s, s->hdr.size), false);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* ---- Create -------------------------------------------------------------------- */

struct create_params {
    uint64_t cluster_size, refcount_bits;
    int version;
    bool lazy, extl2;
    int ctype;
    const char *backing, *backing_fmt, *prealloc;
};

static int parse_create_opts(struct opts *o, struct create_params *p, struct error *err)
{
    const char *compat = opts_get(o, "compat");
    const char *ct = opts_get(o, "compression_type");
    int ret;
    memset(p, 0, sizeof(*p));
    p->version = 3;
    if (compat && (!strcmp(compat, "0.10") || !strcmp(compat, "v2")))
        p->version = 2;
    else if (compat && strcmp(compat, "1.1") && strcmp(compat, "v3"))
        return error_set(err, -EINVAL, "Invalid parameter '%s'", compat);
    if ((ret = opts_get_size(o, "cluster_size", 65536, &p->cluster_size, err)) < 0 ||
        (ret = opts_get_u64(o, "refcount_bits", 16, &p->refcount_bits, err)) < 0 ||
        (ret = opts_get_bool(o, "lazy_refcounts", false, &p->lazy, err)) < 0 ||
        (ret = opts_get_bool(o, "extended_l2", false, &p->extl2, err)) < 0)
        return ret;
    p->backing = opts_get(o, "backing_file");
    p->backing_fmt = opts_get(o, "backing_fmt");
    p->prealloc = opts_get(o, "preallocation");
    if (!p->prealloc)
        p->prealloc = "off";
    if (opts_get(o, "data_file"))
        return error_set(err, -ENOTSUP, "External data files are not supported");
    if (opts_get(o, "encryption") || opts_get(o, "encrypt.format"))
        return error_set(err, -ENOTSUP, "Encrypted qcow2 images are not supported");
    if (!ct || !strcmp(ct, "zlib"))
        p->ctype = QCOW2_COMPRESSION_ZLIB;
    else if (!strcmp(ct, "zstd"))
        p->ctype = QCOW2_COMPRESSION_ZSTD;
    else
        return error_set(err, -EINVAL, "Invalid parameter '%s'", ct);
    return 0;
}

static int validate_create(const struct create_params *p, struct error *err)
{
    uint64_t cs = p->cluster_size, rb = p->refcount_bits;
    if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1)))
        return error_set(err, -EINVAL,
                         "Cluster size must be a power of two between 512 and 2048k");
    if (!rb || rb > 64 || (rb & (rb - 1)))
        return error_set(err, -EINVAL,
                         "Refcount width must be a power of two and may not exceed 64 bits");
    if (p->version < 3 && rb != 16)
        return error_set(err, -EINVAL, "Different refcount widths than 16 bits require "
                         "compatibility level 1.1 or above (use version=v3 or greater)");
    if (p->version < 3 && p->lazy)
        return error_set(err, -EINVAL, "Lazy refcounts only supported with compatibility "
                         "level 1.1 and above (use version=v3 or greater)");
    if (p->version < 3 && p->ctype)
        return error_set(err, -EINVAL, "Non-zlib compression type is only supported with "
                         "compatibility level 1.1 and above (use version=v3 or greater)");
    if (p->extl2 && p->version < 3)
        return error_set(err, -EINVAL, "Extended L2 entries are only supported with "
                         "compatibility level 1.1 and above (use version=v3 or greater)");
    if (p->extl2 && cs < 16384)
        return error_set(err, -EINVAL, "Extended L2 entries are only supported with cluster "
                         "sizes of at least 16384 bytes");
    if (p->backing_fmt && !p->backing)
        return error_set(err, -EINVAL, "Backing format cannot be used without backing file");
    if (p->backing && strlen(p->backing) > QCOW2_MAX_BACKING_NAME)
        return error_set(err, -EINVAL, "Backing file name too long");
    if (strcmp(p->prealloc, "off") && strcmp(p->prealloc, "metadata") &&
        strcmp(p->prealloc, "falloc") && strcmp(p->prealloc, "full"))
        return error_set(err, -EINVAL, "Invalid parameter '%s'", p->prealloc);
    if (p->backing && strcmp(p->prealloc, "off") && !p->extl2)
        return error_set(err, -EINVAL, "Backing file and preallocation can only be used at "
                         "the same time if extended_l2 is on");
    return 0;
}

/* Header, a one-cluster refcount table and one refcount block; no L1 yet. */
static int write_empty_image(const char *filename, const struct create_params *p,
                             struct error *err)
{
    struct qcow2_state s;
    memset(&s, 0, sizeof(s));
    unsigned cb = (unsigned)__builtin_ctzll(p->cluster_size);
    unsigned order = (unsigned)__builtin_ctzll(p->refcount_bits);
    s.cluster_size = p->cluster_size;
    s.hdr.version = (uint32_t)p->version;
    s.hdr.cluster_bits = cb;
    s.hdr.refcount_table_offset = p->cluster_size;
    s.hdr.refcount_table_clusters = 1;
    s.hdr.refcount_order = order;
    s.hdr.compression_type = (uint8_t)p->ctype;
    if (p->ctype)
        s.hdr.incompatible_features |= QCOW2_INCOMPAT_COMPRESSION;
    if (p->extl2)
        s.hdr.incompatible_features |= QCOW2_INCOMPAT_EXTL2;
    if (p->lazy)
        s.hdr.compatible_features |= QCOW2_COMPAT_LAZY_REFCOUNTS;
    s.backing_file = (char *)p->backing;
    s.backing_format = (char *)p->backing_fmt;
    size_t cs = p->cluster_size;
    uint8_t *img = calloc(3, cs);
    if (!img)
        return error_set(err, -ENOMEM, "Could not create '%s': out of memory", filename);
    int n = build_header(&s, img, cs);
    if (n < 0) {
        free(img);
        return error_set(err, -EINVAL, "Backing file name too long for the header");
    }
    wr64(img + cs, 2 * cs);                         /* refcount table -> block */
    s.refcount_order = order;                       /* refcounts 1 for clusters 0..2 */
    for (int c = 0; c < 3; c++) {
        uint64_t bit = (uint64_t)c << order;
        uint8_t *rb = img + 2 * cs;
        switch (order) {
        case 0: case 1: case 2: rb[bit / 8] |= (uint8_t)(1u << (bit % 8)); break;
        default: rb[(bit >> 3) + (p->refcount_bits / 8) - 1] = 1; break;
        }
    }
    int fd = open(filename, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(img);
        return error_set_errno(err, -errno, "Could not create '%s'", filename);
    }
    ssize_t w = pwrite(fd, img, 3 * cs, 0);
    int ret = w == (ssize_t)(3 * cs) ? 0 : (w < 0 ? -errno : -EIO);
    if (close(fd) < 0 && ret == 0)
        ret = -errno;
    free(img);
    return ret < 0 ? error_set_errno(err, ret, "Could not write '%s'", filename) : 0;
}

static int qcow2_create(const char *filename, uint64_t size, struct opts *o, struct error *err)
{
    struct create_params p;
    int ret = parse_create_opts(o, &p, err);
    if (ret == 0)
        ret = validate_create(&p, err);
    if (ret < 0)
        return ret;
    size = (size + QCOW2_SECTOR - 1) & ~(uint64_t)(QCOW2_SECTOR - 1);
    ret = write_empty_image(filename, &p, err);
    if (ret < 0)
        return ret;
    struct bdev *bs;
    ret = bdev_open_simple(&bs, filename, "qcow2", BDEV_O_RDWR | BDEV_O_NO_BACKING, err);
    if (ret < 0)
        return ret;
    ret = bdev_truncate(bs, size, false, p.prealloc, err);
    int r2 = bdev_flush(bs);
    bdev_close(bs);
    if (ret == 0 && r2 < 0)
        ret = error_set_errno(err, r2, "Could not write '%s'", filename);
    return ret;
}

static const struct create_opt_desc qcow2_create_opts[] = {
    { "size", "size", "Virtual disk size" },
    { "compat", "str", "Compatibility level (v2 [0.10] or v3 [1.1])" },
    { "backing_file", "str", "File name of a base image" },
    { "backing_fmt", "str", "Image format of the base image" },
    { "cluster_size", "size", "qcow2 cluster size" },
    { "preallocation", "str", "Preallocation mode (allowed values: off, metadata, falloc, full)" },
    { "lazy_refcounts", "bool", "Postpone refcount updates" },
    { "refcount_bits", "num", "Width of a reference count entry in bits" },
    { "compression_type", "str", "Compression method used for image cluster compression" },
    { "extended_l2", "bool", "Extended L2 tables" },
    { NULL, NULL, NULL },
};

const struct block_driver bdrv_qcow2 = {
    .name = "qcow2",
    .state_size = sizeof(struct qcow2_state),
    .probe = qcow2_probe,
    .open = qcow2_open,
    .close = qcow2_close,
    .preadv = qcow2_co_preadv,
    .pwritev = qcow2_co_pwritev,
    .pwrite_zeroes = qcow2_co_pwrite_zeroes,
    .pdiscard = qcow2_co_pdiscard,
    .flush = qcow2_flush,
    .pwrite_compressed = qcow2_co_pwrite_compressed,
    .block_status = qcow2_co_block_status,
    .getlength = qcow2_getlength,
    .allocated_size = qcow2_allocated_size,
    .truncate = qcow2_truncate,
    .create = qcow2_create,
    .create_opts = qcow2_create_opts,
    .amend = qcow2_amend,
    .get_info = qcow2_get_info,
    .check = qcow2_check,
    .change_backing_file = qcow2_change_backing_file,
    .make_empty = qcow2_make_empty,
    .snapshot_create = qcow2_snapshot_create,
    .snapshot_goto = qcow2_snapshot_goto,
    .snapshot_delete = qcow2_snapshot_delete,
    .snapshot_list = qcow2_snapshot_list,
};
