/* DNS answers for local names. Only the question section is read, with
 * uncompressed labels as every query carries them. */
#include "net/dnsd.h"

#include <errno.h>
#include <string.h>

#define TYPE_A 1
#define TYPE_ANY 255
#define LOCAL_TTL 60

int dnsd_qname(const uint8_t *q, size_t len, char *name, size_t name_max, size_t *end)
{
    size_t i = 12, o = 0;
    if (len < 17 || name_max < 2)
        return -EINVAL;
    while (i < len && q[i]) {
        size_t n = q[i];
        if (n > 63 || i + 1 + n >= len || o + n + 1 >= name_max)
            return -EINVAL;                    /* compressed or too long: not a query of ours */
        if (o)
            name[o++] = '.';
        memcpy(name + o, q + i + 1, n);
        o += n;
        i += 1 + n;
    }
    if (i + 5 > len)
        return -EINVAL;
    name[o] = 0;
    *end = i + 1;                              /* past the root label: QTYPE, QCLASS follow */
    return 0;
}

int dnsd_answer(const uint8_t *q, size_t len, dnsd_lookup_fn *lookup, void *opaque,
                uint8_t *out, size_t out_max)
{
    char name[256];
    size_t end;
    /* a standard query (QR=0, opcode 0) with exactly one question */
    if (len < 12 || (q[2] & 0xf8) || q[4] || q[5] != 1 ||
        dnsd_qname(q, len, name, sizeof(name), &end) < 0)
        return -EINVAL;
    uint16_t type = (uint16_t)(q[end] << 8 | q[end + 1]);
    uint32_t ip = lookup(opaque, name);
    if (!ip)
        return 0;
    size_t qlen = end + 4;
    if (out_max < qlen + 16)
        return -EINVAL;
    memcpy(out, q, qlen);
    out[2] = 0x84 | (q[2] & 1);                /* QR, AA, RD echoed */
    out[3] = 0x80;                             /* RA, NOERROR */
    memset(out + 6, 0, 6);                     /* AN, NS, AR counts */
    if (type != TYPE_A && type != TYPE_ANY)
        return (int)qlen;                      /* the name exists, no such record */
    out[7] = 1;
    uint8_t *a = out + qlen;
    const uint8_t rr[] = { 0xc0, 12, 0, TYPE_A, 0, 1, 0, 0, 0, LOCAL_TTL, 0, 4,
                           (uint8_t)(ip >> 24), (uint8_t)(ip >> 16), (uint8_t)(ip >> 8),
                           (uint8_t)ip };
    memcpy(a, rr, sizeof(rr));
    return (int)(qlen + sizeof(rr));
}
