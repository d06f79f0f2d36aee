#include "util/iov.h"

#include <string.h>

size_t iov_size(const struct iovec *iov, int cnt)
{
    size_t n = 0;
    for (int i = 0; i < cnt; i++)
        n += iov[i].iov_len;
    return n;
}

/* Walk the list from `offset`, calling fn on each piece; shared by the copy helpers. */
static size_t iov_walk(const struct iovec *iov, int cnt, size_t offset, size_t len,
                       void (*fn)(void *piece, size_t n, size_t done, void *arg), void *arg)
{
    size_t done = 0;
    for (int i = 0; i < cnt && done < len; i++) {
        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        size_t n = iov[i].iov_len - offset;
        if (n > len - done)
            n = len - done;
        fn((char *)iov[i].iov_base + offset, n, done, arg);
        done += n;
        offset = 0;
    }
    return done;
}

static void to_buf(void *piece, size_t n, size_t done, void *arg) { memcpy((char *)arg + done, piece, n); }
static void from_buf(void *piece, size_t n, size_t done, void *arg) { memcpy(piece, (const char *)arg + done, n); }
static void set_byte(void *piece, size_t n, size_t done, void *arg) { memset(piece, *(int *)arg, n); }

size_t iov_to_buf(const struct iovec *iov, int cnt, size_t offset, void *buf, size_t len)
{
    return iov_walk(iov, cnt, offset, len, to_buf, buf);
}

size_t iov_from_buf(const struct iovec *iov, int cnt, size_t offset, const void *buf, size_t len)
{
    return iov_walk(iov, cnt, offset, len, from_buf, (void *)buf);
}

size_t iov_memset(const struct iovec *iov, int cnt, size_t offset, int c, size_t len)
{
    return iov_walk(iov, cnt, offset, len, set_byte, &c);
}

int iov_slice(const struct iovec *iov, int cnt, size_t offset, size_t len,
              struct iovec *out, int out_max)
{
    int n = 0;
    for (int i = 0; i < cnt && len; i++) {
        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        if (n == out_max)
            return -1;
        size_t piece = iov[i].iov_len - offset;
        if (piece > len)
            piece = len;
        out[n].iov_base = (char *)iov[i].iov_base + offset;
        out[n].iov_len = piece;
        n++;
        len -= piece;
        offset = 0;
    }
    return n;
}

int buffer_is_zero(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    /* Check head bytes until aligned, then 8 bytes at a time. */
    while (len && ((uintptr_t)p & 7)) {
        if (*p++)
            return 0;
        len--;
    }
    const uint64_t *q = (const uint64_t *)p;
    for (; len >= 64; len -= 64, q += 8)
        if (q[0] | q[1] | q[2] | q[3] | q[4] | q[5] | q[6] | q[7])
            return 0;
    p = (const unsigned char *)q;
    while (len--)
        if (*p++)
            return 0;
    return 1;
}
