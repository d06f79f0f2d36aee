/* Host-side kernel payload decompression (see linux-unpack.h). */
#include "machine/linux-unpack.h"

#include <errno.h>
#include <lzma.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

enum fmt { F_UNKNOWN, F_GZIP, F_XZ, F_ZSTD, F_LZMA, F_LZ4, F_BZIP2, F_LZO };

static const struct {
    enum fmt f;
    const char *name;
    size_t n;
    const char *magic;
} magics[] = {
    { F_GZIP, "gzip", 2, "\x1f\x8b" },
    { F_XZ, "xz", 6, "\xfd" "7zXZ\0" },
    { F_ZSTD, "zstd", 4, "\x28\xb5\x2f\xfd" },
    { F_LZMA, "lzma", 3, "\x5d\0\0" },
    { F_LZ4, "lz4", 4, "\x02\x21\x4c\x18" },
    { F_BZIP2, "bzip2", 3, "BZh" },
    { F_LZO, "lzo", 4, "\x89LZO" },
};

static enum fmt detect(const uint8_t *p, size_t len, const char **name)
{
    for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
        if (len >= magics[i].n && !memcmp(p, magics[i].magic, magics[i].n)) {
            *name = magics[i].name;
            return magics[i].f;
        }
    }
    *name = "unknown";
    return F_UNKNOWN;
}

const char *linux_unpack_format(const uint8_t *p, size_t len)
{
    const char *name;
    detect(p, len, &name);
    return name;
}

/* Each decoder fills exactly olen bytes of out or fails: a stream that ends
 * early or would run past the size the trailer announced is corrupt. */
static bool unpack_gzip(const uint8_t *p, size_t len, uint8_t *out, size_t olen)
{
    z_stream s;
    memset(&s, 0, sizeof(s));
    if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK)
        return false;
    s.next_in = (Bytef *)p;
    s.avail_in = (uInt)len;
    s.next_out = out;
    s.avail_out = (uInt)olen;
    int r = inflate(&s, Z_FINISH);
    bool ok = r == Z_STREAM_END && s.total_out == olen;
    inflateEnd(&s);
    return ok;
}

static bool unpack_xz(const uint8_t *p, size_t len, uint8_t *out, size_t olen)
{
    lzma_stream s = LZMA_STREAM_INIT;
    if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK)
        return false;
    s.next_in = p;
    s.avail_in = len;
    s.next_out = out;
    s.avail_out = olen;
    lzma_ret r = lzma_code(&s, LZMA_FINISH);
    bool ok = r == LZMA_STREAM_END && s.total_out == olen;
    lzma_end(&s);
    return ok;
}

static bool unpack_zstd(const uint8_t *p, size_t len, uint8_t *out, size_t olen)
{
    ZSTD_DStream *d = ZSTD_createDStream();
    if (!d)
        return false;
    /* The kernel compresses with --ultra -22: allow its 2^27+ windows. */
    ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 31);
    ZSTD_inBuffer in = { p, len, 0 };
    ZSTD_outBuffer ob = { out, olen, 0 };
    size_t r;
    do {
        size_t before = in.pos + ob.pos;
        r = ZSTD_decompressStream(d, &ob, &in);
        if (ZSTD_isError(r) || (r && in.pos + ob.pos == before))
            break;
    } while (r != 0);
    ZSTD_freeDStream(d);
    return !ZSTD_isError(r) && r == 0 && ob.pos == olen;
}

int linux_unpack(const uint8_t *p, size_t len, uint8_t **out, size_t *out_len,
                 struct error *err)
{
    const char *name;
    enum fmt f = detect(p, len, &name);
    bool (*fn)(const uint8_t *, size_t, uint8_t *, size_t) =
        f == F_GZIP ? unpack_gzip : f == F_XZ ? unpack_xz : f == F_ZSTD ? unpack_zstd : NULL;
    if (!fn)
        return error_set(err, -ENOTSUP, "%s payload is not decoded on the host", name);
    if (len < 8)
        return error_set(err, -EINVAL, "%s payload is truncated", name);
    const uint8_t *t = p + len - 4;
    uint32_t olen = t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    if (olen < 64 || olen > LINUX_UNPACK_MAX)
        return error_set(err, -EINVAL, "%s payload claims %u bytes unpacked", name, olen);
    uint8_t *buf = malloc(olen);
    if (!buf)
        return error_set(err, -ENOMEM, "out of memory unpacking the %s payload", name);
    if (!fn(p, len, buf, olen)) {
        free(buf);
        return error_set(err, -EINVAL, "%s payload is corrupt", name);
    }
    *out = buf;
    *out_len = olen;
    return 0;
}
