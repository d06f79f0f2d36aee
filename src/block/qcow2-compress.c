/* qcow2 compressed clusters: raw deflate (window 2^12, no zlib header) or a
 * zstd frame, stored byte-packed and described by an offset plus a count of
 * 512-byte sectors. Decompression stops once a cluster is produced, since
 * the last sector may hold the start of the next compressed cluster. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include "block/qcow2.h"

static int64_t zlib_compress(void *dst, size_t dst_len, const void *src, size_t src_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)src_len;
    z.next_out = dst;
    z.avail_out = (uInt)dst_len;
    int ret = deflate(&z, Z_FINISH);
    int64_t out = (int64_t)(dst_len - z.avail_out);
    deflateEnd(&z);
    return ret == Z_STREAM_END ? out : -ENOSPC;
}

static int zlib_decompress(void *dst, size_t dst_len, const void *src, size_t src_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -12) != Z_OK)
        return -ENOMEM;
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)src_len;
    z.next_out = dst;
    z.avail_out = (uInt)dst_len;
    int ret = inflate(&z, Z_FINISH);
    bool ok = ret == Z_STREAM_END || ((ret == Z_OK || ret == Z_BUF_ERROR) && z.avail_out == 0);
    ok = ok && z.avail_out == 0;
    inflateEnd(&z);
    return ok ? 0 : -EIO;
}

static int64_t zstd_compress(void *dst, size_t dst_len, const void *src, size_t src_len)
{
    size_t r = ZSTD_compress(dst, dst_len, src, src_len, ZSTD_CLEVEL_DEFAULT);
    if (ZSTD_isError(r))
        return -ENOSPC;   /* mostly "destination too small": store it plainly */
    return (int64_t)r;
}

static int zstd_decompress(void *dst, size_t dst_len, const void *src, size_t src_len)
{
    ZSTD_DStream *d = ZSTD_createDStream();
    if (!d)
        return -ENOMEM;
    ZSTD_inBuffer in = { src, src_len, 0 };
    ZSTD_outBuffer out = { dst, dst_len, 0 };
    int ret = 0;
    /* Several frames may follow each other; stop when the cluster is full. */
    while (out.pos < out.size) {
        size_t prev_in = in.pos, prev_out = out.pos;
        size_t r = ZSTD_decompressStream(d, &out, &in);
        if (ZSTD_isError(r) || (in.pos == prev_in && out.pos == prev_out)) {
            ret = -EIO;
            break;
        }
    }
    ZSTD_freeDStream(d);
    return ret;
}

int64_t qcow2_compress(int type, void *dst, size_t dst_len, const void *src, size_t src_len)
{
    if (type == QCOW2_COMPRESSION_ZSTD)
        return zstd_compress(dst, dst_len, src, src_len);
    return zlib_compress(dst, dst_len, src, src_len);
}

int qcow2_decompress(int type, void *dst, size_t dst_len, const void *src, size_t src_len)
{
    if (type == QCOW2_COMPRESSION_ZSTD)
        return zstd_decompress(dst, dst_len, src, src_len);
    return zlib_decompress(dst, dst_len, src, src_len);
}

int qcow2_read_compressed(struct qcow2_state *s, uint64_t e, void *cluster_buf)
{
    uint64_t coff = e & s->cluster_offset_mask;
    uint64_t nsec = ((e >> s->csize_shift) & s->csize_mask) + 1;
    uint64_t csize = nsec * QCOW2_SECTOR - (coff & (QCOW2_SECTOR - 1));
    int64_t flen = bdev_getlength(s->bs->file);
    if (flen < 0)
        return (int)flen;
    /* The last compressed cluster may end inside the file's last sector. */
    if (coff >= (uint64_t)flen)
        return -EIO;
    if (coff + csize > (uint64_t)flen)
        csize = (uint64_t)flen - coff;
    uint8_t *in = malloc(csize);
    if (!in)
        return -ENOMEM;
    int ret = bdev_pread(s->bs->file, coff, in, csize);
    if (ret >= 0)
        ret = qcow2_decompress(s->compression_type, cluster_buf, s->cluster_size, in, csize);
    free(in);
    return ret < 0 ? -EIO : 0;
}

/* Store one compressed cluster at guest `offset` (lock held). */
static int store_compressed(struct qcow2_state *s, uint64_t offset, const void *data,
                            uint64_t csize)
{
    void *l2;
    uint64_t idx;
    qcow2_wait_inflight(s, offset, offset + s->cluster_size);
    int ret = qcow2_get_l2(s, offset, true, &l2, &idx);
    if (ret < 0)
        return ret;
    int64_t coff = qcow2_alloc_bytes(s, csize);
    if (coff < 0) {
        qcow2_cache_put(&s->l2_cache, &l2);
        return (int)coff;
    }
    ret = bdev_pwrite(s->bs->file, (uint64_t)coff, data, csize, 0);
    if (ret == 0) {
        uint64_t nsec = (((uint64_t)coff + csize - 1) >> 9) - ((uint64_t)coff >> 9) + 1;
        uint64_t old = qcow2_l2_get(s, l2, idx);
        uint64_t e = QCOW2_OFLAG_COMPRESSED | ((nsec - 1) << s->csize_shift) | (uint64_t)coff;
        qcow2_l2_set(s, l2, idx, e);
        qcow2_l2_set_bitmap(s, l2, idx, 0);
        qcow2_cache_mark_dirty(&s->l2_cache, l2);
        if (old & (QCOW2_OFLAG_COMPRESSED | QCOW2_L2E_OFFSET_MASK))
            ret = qcow2_free_l2_entry(s, old);
    } else {
        qcow2_free_clusters(s, (uint64_t)coff, csize);
    }
    qcow2_cache_put(&s->l2_cache, &l2);
    return ret;
}

int qcow2_co_pwrite_compressed(struct bdev *bs, uint64_t offset, const void *buf, uint64_t bytes)
{
    struct qcow2_state *s = qcow2_state(bs);
    uint64_t size = s->hdr.size;
    /* Whole clusters, except that the image's last cluster may be cut short. */
    if (qcow2_offset_in_cluster(s, offset) || offset + bytes > size ||
        (qcow2_offset_in_cluster(s, bytes) &&
         qcow2_align_up(s, offset + bytes) != qcow2_align_up(s, size)))
        return -EINVAL;
    uint8_t *in = malloc(s->cluster_size), *out = malloc(s->cluster_size);
    int ret = (in && out) ? 0 : -ENOMEM;
    for (uint64_t pos = 0; ret == 0 && pos < bytes; pos += s->cluster_size) {
        uint64_t n = bytes - pos < s->cluster_size ? bytes - pos : s->cluster_size;
        memcpy(in, (const uint8_t *)buf + pos, n);
        memset(in + n, 0, s->cluster_size - n);
        /* Any gain at all is worth it: compressed clusters pack back to back. */
        int64_t c = qcow2_compress(s->compression_type, out, s->cluster_size - 1,
                                   in, s->cluster_size);
        if (c == -ENOSPC) {
            ret = bdev_pwrite(bs, offset + pos, in, n, 0);
            continue;
        }
        if (c < 0) {
            ret = (int)c;
            break;
        }
        pthread_mutex_lock(&s->lock);
        ret = s->corrupt ? -EIO : s->read_only ? -EACCES : 0;
        if (ret == 0 && s->lazy_refcounts && !s->dirty_on_disk)
            ret = qcow2_mark_dirty(s);
        if (ret == 0)
            ret = store_compressed(s, offset + pos, out, (uint64_t)c);
        if (ret == 0 && s->n_pending > 1024)
            ret = qcow2_flush_metadata(s);
        pthread_mutex_unlock(&s->lock);
    }
    free(in);
    free(out);
    return ret;
}
