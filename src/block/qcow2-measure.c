/* qcow2 measure: how big a qcow2 image made with given -o options (and
 * optionally holding a source image's data) gets, computed the way
 * `qemu-img measure` does so the numbers match byte for byte. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "block/qcow2-meta.h"

static uint64_t div_up(uint64_t a, uint64_t b) { return (a + b - 1) / b; }
static uint64_t round_up(uint64_t a, uint64_t b) { return div_up(a, b) * b; }
static bool is_pow2(uint64_t x) { return x && !(x & (x - 1)); }
static unsigned log2u(uint64_t x) { return (unsigned)__builtin_ctzll(x); }

uint64_t qcow2_refcount_metadata_size(uint64_t clusters, uint64_t cluster_size,
                                      unsigned refcount_order)
{
    /* Refcount blocks count themselves and the table: iterate to the fixed
     * point where adding them needs no further blocks. */
    uint64_t per_table_cluster = cluster_size / 8;
    uint64_t per_block = cluster_size * 8 / (1ull << refcount_order);
    uint64_t table = 0, blocks = 0, n = 0, last;
    do {
        last = n;
        blocks = div_up(clusters + table + blocks, per_block);
        table = div_up(blocks, per_table_cluster);
        n = clusters + blocks + table;
    } while (n != last);
    return (blocks + table) * cluster_size;
}

uint64_t qcow2_prealloc_size(uint64_t size, unsigned cluster_bits, unsigned refcount_order,
                             bool extended_l2)
{
    uint64_t cs = 1ull << cluster_bits, l2e = extended_l2 ? 16 : 8;
    uint64_t total = round_up(size, cs);
    uint64_t meta = cs;                         /* header */
    uint64_t nl2e = round_up(total / cs, cs / l2e);
    meta += nl2e * l2e;                         /* L2 tables */
    uint64_t nl1e = round_up(nl2e * l2e / cs, cs / 8);
    meta += nl1e * 8;                           /* L1 table */
    meta += qcow2_refcount_metadata_size((meta + total) / cs, cs, refcount_order);
    return meta + total;
}

struct measure_opts {
    bool extended_l2;
    uint64_t cluster_size;
    int version;
    uint64_t refcount_bits;
    bool prealloc_full;
    bool has_backing;
};

/* The option checks in the order QEMU makes them, with its messages. */
static int parse_opts(struct opts *o, struct measure_opts *m, struct error *err)
{
    int ret = opts_get_bool(o, "extended_l2", false, &m->extended_l2, err);
    if (ret < 0)
        return ret;
    ret = opts_get_size(o, "cluster_size", 65536, &m->cluster_size, err);
    if (ret < 0)
        return ret;
    if (!is_pow2(m->cluster_size) || m->cluster_size < 512 || m->cluster_size > (2u << 20))
        return error_set(err, -EINVAL,
                         "Cluster size must be a power of two between 512 and 2048k");
    if (m->extended_l2 && m->cluster_size < 16384)
        return error_set(err, -EINVAL, "Extended L2 entries are only supported with "
                         "cluster sizes of at least 16384 bytes");
    const char *compat = opts_get(o, "compat");
    m->version = 3;
    if (compat && !strcmp(compat, "0.10"))
        m->version = 2;
    else if (compat && strcmp(compat, "1.1"))
        return error_set(err, -EINVAL, "Invalid compatibility level: '%s'", compat);
    ret = opts_get_u64(o, "refcount_bits", 16, &m->refcount_bits, err);
    if (ret < 0)
        return ret;
    if (m->refcount_bits > 64 || !is_pow2(m->refcount_bits))
        return error_set(err, -EINVAL, "Refcount width must be a power of two and may "
                         "not exceed 64 bits");
    if (m->version < 3 && m->refcount_bits != 16)
        return error_set(err, -EINVAL, "Different refcount widths than 16 bits require "
                         "compatibility level 1.1 or above (use compat=1.1 or greater)");
    const char *prealloc = opts_get(o, "preallocation");
    if (prealloc && strcmp(prealloc, "off") && strcmp(prealloc, "metadata") &&
        strcmp(prealloc, "falloc") && strcmp(prealloc, "full"))
        return error_set(err, -EINVAL, "invalid parameter value: %s", prealloc);
    m->prealloc_full = prealloc && (!strcmp(prealloc, "falloc") || !strcmp(prealloc, "full"));
    m->has_backing = opts_get(o, "backing_file") != NULL;
    const char *enc = opts_get(o, "encrypt.format");
    if (enc && strcmp(enc, "qcow"))
        return error_set(err, -ENOTSUP, "Encrypted qcow2 images are not supported");
    bool old_enc = false;
    ret = opts_get_bool(o, "encryption", false, &old_enc, err);
    if (ret < 0)
        return ret;
    if (old_enc || enc)
        return error_set(err, -ENOTSUP, "Encrypted qcow2 images are not supported");
    /* The rest of the create options don't change the size. */
    static const char *const ignored[] = {
        "size", "backing_fmt", "lazy_refcounts", "compression_type", "data_file",
        "data_file_raw", "nocow", "extent_size_hint", NULL };
    for (int i = 0; ignored[i]; i++)
        opts_get(o, ignored[i]);
    return 0;
}

/* Bytes of the source that hold data, counted per target cluster. */
static int source_data_bytes(struct bdev *in, uint64_t ssize, uint64_t cs, uint64_t *out)
{
    uint64_t required = 0, pnum = 0, map;
    struct bdev *file;
    int depth;
    for (uint64_t off = 0; off < ssize; off += pnum) {
        int ret = bdev_block_status_above(in, off, ssize - off, &pnum, &map, &file, &depth);
        if (ret < 0)
            return ret;
        if (pnum == 0)
            return -EIO;
        if (ret & BDEV_STATUS_ZERO)
            continue;
        if ((ret & (BDEV_STATUS_DATA | BDEV_STATUS_ALLOCATED)) ==
            (BDEV_STATUS_DATA | BDEV_STATUS_ALLOCATED)) {
            pnum = round_up(off + pnum, cs) - off;
            required += off % cs + pnum;
        }
    }
    *out = required;
    return 0;
}

/* Room the source's persistent bitmaps would take in an image of cluster
 * size cs: every bitmap fully allocated, its table, and the directory. */
static int bitmaps_size(struct bdev *in, uint64_t cs, uint64_t *out)
{
    struct qcow2_state *s = qcow2_state(in);
    *out = 0;
    if (!(s->hdr.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
        return 0;
    const struct qcow2_unknown_ext *x = s->unknown_exts;
    while (x && (x->type != QCOW2_EXT_BITMAPS || x->len < 24))
        x = x->next;
    if (!x)
        return 0;
    uint32_t nb;
    uint64_t dsize, doff;
    memcpy(&nb, x->data, 4);
    memcpy(&dsize, x->data + 8, 8);
    memcpy(&doff, x->data + 16, 8);
    nb = be32toh(nb);
    dsize = be64toh(dsize);
    doff = be64toh(doff);
    if (!nb)
        return 0;
    if (dsize > (64u << 20))
        return -EINVAL;
    uint8_t *d = malloc(dsize ? dsize : 1);
    if (!d)
        return -ENOMEM;
    int ret = bdev_pread(in->file, doff, d, dsize);
    uint64_t pos = 0, total = 0, dir = 0;
    for (uint32_t i = 0; ret == 0 && i < nb; i++) {
        if (pos + 24 > dsize) {
            ret = -EINVAL;
            break;
        }
        unsigned gbits = d[pos + 17];
        uint32_t extra;
        memcpy(&extra, d + pos + 20, 4);
        extra = be32toh(extra);
        uint16_t name_len = (uint16_t)(d[pos + 18] << 8 | d[pos + 19]);
        if (gbits > 63) {
            ret = -EINVAL;
            break;
        }
        uint64_t bits = div_up(s->hdr.size, 1ull << gbits);
        uint64_t clusters = div_up(div_up(bits, 8), cs);
        total += clusters * cs + round_up(clusters * 8, cs);
        dir += (24 + name_len + 7) & ~7ull;
        pos = (pos + 24 + extra + name_len + 7) & ~7ull;
    }
    free(d);
    *out = total + round_up(dir, cs);
    return ret;
}

int qcow2_measure(struct opts *o, uint64_t size, struct bdev *in_bs,
                  struct qcow2_measure_info *out, struct error *err)
{
    struct measure_opts m;
    memset(out, 0, sizeof(*out));
    int ret = parse_opts(o, &m, err);
    if (ret < 0)
        return ret;
    uint64_t cs = m.cluster_size, l2e = m.extended_l2 ? 16 : 8;
    if (size > UINT64_MAX - cs)
        return error_set(err, -EFBIG, "The image size is too large "
                         "(try using a larger cluster size)");
    uint64_t vsize = round_up(size, cs);
    if (div_up(vsize / cs, cs / l2e) * 8 > QCOW2_MAX_L1_SIZE)
        return error_set(err, -EFBIG, "The image size is too large "
                         "(try using a larger cluster size)");
    uint64_t required = 0;
    if (in_bs) {
        int64_t ssize = bdev_getlength(in_bs);
        if (ssize < 0)
            return error_set_errno(err, (int)ssize, "Unable to get image virtual_size");
        vsize = round_up((uint64_t)ssize, cs);
        if (m.has_backing) {
            /* The new backing chain may share nothing with the source. */
            required = vsize;
        } else {
            ret = source_data_bytes(in_bs, (uint64_t)ssize, cs, &required);
            if (ret < 0)
                return error_set_errno(err, ret, "Unable to get block status");
        }
    }
    if (m.prealloc_full)
        required = vsize;
    out->fully_allocated = qcow2_prealloc_size(vsize, log2u(cs), log2u(m.refcount_bits),
                                               m.extended_l2);
    /* Metadata is counted as for the fully allocated image (an overestimate). */
    out->required = out->fully_allocated - vsize + required;
    out->has_bitmaps = m.version >= 3 && in_bs && !strcmp(in_bs->drv->name, "qcow2") &&
                       qcow2_state(in_bs)->hdr.version >= 3;
    if (out->has_bitmaps && (ret = bitmaps_size(in_bs, cs, &out->bitmaps)) < 0)
        return error_set_errno(err, ret, "Could not read the source's bitmap directory");
    return 0;
}
