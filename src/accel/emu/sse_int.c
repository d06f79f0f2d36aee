/* Packed integer operations of MMX, SSE2, SSSE3 and SSE4.1 (SDM vol. 2,
 * instruction pages). Each works on the low n bytes: n = 8 for MMX
 * registers, 16 for XMM. */
#include <string.h>
#include "accel/emu/sse_ops.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* d->F[i] = EXPR over each lane, with a = d's lane and b = s's lane. */
#define LANES(T, F, EXPR)                                    \
    for (unsigned i = 0; i < n / sizeof(T); i++) {           \
        T a = d->F[i], b = s->F[i];                          \
        (void)a; (void)b;                                    \
        d->F[i] = (T)(EXPR);                                 \
    }

static int8_t sat8(int v) { return v > 127 ? 127 : v < -128 ? -128 : v; }
static uint8_t satu8(int v) { return v > 255 ? 255 : v < 0 ? 0 : v; }
static int16_t sat16(int v) { return v > 32767 ? 32767 : v < -32768 ? -32768 : v; }
static uint16_t satu16(int v) { return v > 65535 ? 65535 : v < 0 ? 0 : v; }

void sse_paddb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint8_t, b, a + b) }
void sse_paddw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint16_t, w, a + b) }
void sse_paddd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint32_t, d, a + b) }
void sse_paddq(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint64_t, q, a + b) }
void sse_psubb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint8_t, b, a - b) }
void sse_psubw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint16_t, w, a - b) }
void sse_psubd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint32_t, d, a - b) }
void sse_psubq(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint64_t, q, a - b) }
void sse_paddsb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int8_t, sb, sat8(a + b)) }
void sse_paddsw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int16_t, sw, sat16(a + b)) }
void sse_paddusb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint8_t, b, satu8(a + b)) }
void sse_paddusw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint16_t, w, satu16(a + b)) }
void sse_psubsb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int8_t, sb, sat8(a - b)) }
void sse_psubsw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int16_t, sw, sat16(a - b)) }
void sse_psubusb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint8_t, b, satu8(a - b)) }
void sse_psubusw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint16_t, w, satu16(a - b)) }
void sse_pmullw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int16_t, sw, (int32_t)a * b) }
void sse_pmulhw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int16_t, sw, ((int32_t)a * b) >> 16) }
void sse_pmulhuw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint16_t, w, ((uint32_t)a * b) >> 16) }
void sse_pavgb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint8_t, b, (a + b + 1) >> 1) }
void sse_pavgw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint16_t, w, (a + b + 1) >> 1) }
void sse_pminub(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint8_t, b, a < b ? a : b) }
void sse_pmaxub(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint8_t, b, a > b ? a : b) }
void sse_pminsw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int16_t, sw, a < b ? a : b) }
void sse_pmaxsw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int16_t, sw, a > b ? a : b) }
void sse_pminsb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int8_t, sb, a < b ? a : b) }
void sse_pmaxsb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int8_t, sb, a > b ? a : b) }
void sse_pminuw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint16_t, w, a < b ? a : b) }
void sse_pmaxuw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint16_t, w, a > b ? a : b) }
void sse_pminsd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int32_t, sd, a < b ? a : b) }
void sse_pmaxsd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int32_t, sd, a > b ? a : b) }
void sse_pminud(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint32_t, d, a < b ? a : b) }
void sse_pmaxud(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint32_t, d, a > b ? a : b) }
void sse_pmulld(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint32_t, d, a * b) }
void sse_pand(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint64_t, q, a & b) }
void sse_pandn(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint64_t, q, ~a & b) }
void sse_por(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint64_t, q, a | b) }
void sse_pxor(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint64_t, q, a ^ b) }
void sse_pcmpeqb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
#ifdef __SSE2__
    if (n == 16) {
        __m128i r = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)d),
                                   _mm_loadu_si128((const __m128i *)s));
        _mm_storeu_si128((__m128i *)d, r);
        return;
    }
#endif
    LANES(uint8_t, b, a == b ? 0xff : 0)
}
void sse_pcmpeqw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint16_t, w, a == b ? 0xffff : 0) }
void sse_pcmpeqd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint32_t, d, a == b ? ~0u : 0) }
void sse_pcmpeqq(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(uint64_t, q, a == b ? ~0ull : 0) }
void sse_pcmpgtb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int8_t, sb, a > b ? -1 : 0) }
void sse_pcmpgtw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int16_t, sw, a > b ? -1 : 0) }
void sse_pcmpgtd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int32_t, sd, a > b ? -1 : 0) }
void sse_pcmpgtq(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int64_t, sq, a > b ? -1 : 0) }
void sse_psignb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int8_t, sb, b < 0 ? -a : b ? a : 0) }
void sse_psignw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int16_t, sw, b < 0 ? -a : b ? a : 0) }
void sse_psignd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int32_t, sd, b < 0 ? (int32_t)-(uint32_t)a : b ? a : 0) }
void sse_pabsb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int8_t, sb, b < 0 ? -b : b) }
void sse_pabsw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int16_t, sw, b < 0 ? -b : b) }
void sse_pabsd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int32_t, sd, b < 0 ? (int32_t)-(uint32_t)b : b) }
void sse_pmulhrsw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { LANES(int16_t, sw, ((((int32_t)a * b) >> 14) + 1) >> 1) }

void sse_pmuludq(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    for (unsigned i = 0; i < n / 8; i++)
        d->q[i] = (uint64_t)d->d[2 * i] * s->d[2 * i];
}

void sse_pmuldq(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    for (unsigned i = 0; i < n / 8; i++)
        d->sq[i] = (int64_t)d->sd[2 * i] * s->sd[2 * i];
}

void sse_pmaddwd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    for (unsigned i = 0; i < n / 4; i++) {
        /* 0x8000*0x8000*2 wraps to 0x80000000, as the hardware does. */
        uint32_t p = (uint32_t)((int32_t)d->sw[2 * i] * s->sw[2 * i]) +
                     (uint32_t)((int32_t)d->sw[2 * i + 1] * s->sw[2 * i + 1]);
        d->d[i] = p;
    }
}

void sse_pmaddubsw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    for (unsigned i = 0; i < n / 2; i++)
        d->sw[i] = sat16(d->b[2 * i] * s->sb[2 * i] + d->b[2 * i + 1] * s->sb[2 * i + 1]);
}

void sse_psadbw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    for (unsigned i = 0; i < n / 8; i++) {
        unsigned sum = 0;
        for (int j = 0; j < 8; j++) {
            int v = d->b[8 * i + j] - s->b[8 * i + j];
            sum += v < 0 ? -v : v;
        }
        d->q[i] = sum;
    }
}

/* ---- pack / unpack ---- */
void sse_packsswb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r;
    unsigned h = n / 2;
    for (unsigned i = 0; i < h; i++) {
        r.sb[i] = sat8(d->sw[i]);
        r.sb[h + i] = sat8(s->sw[i]);
    }
    memcpy(d, &r, n);
}

void sse_packuswb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r;
    unsigned h = n / 2;
    for (unsigned i = 0; i < h; i++) {
        r.b[i] = satu8(d->sw[i]);
        r.b[h + i] = satu8(s->sw[i]);
    }
    memcpy(d, &r, n);
}

void sse_packssdw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r;
    unsigned h = n / 4;
    for (unsigned i = 0; i < h; i++) {
        r.sw[i] = sat16(d->sd[i] > 32767 ? 32767 : d->sd[i] < -32768 ? -32768 : d->sd[i]);
        r.sw[h + i] = sat16(s->sd[i] > 32767 ? 32767 : s->sd[i] < -32768 ? -32768 : s->sd[i]);
    }
    memcpy(d, &r, n);
}

void sse_packusdw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r;
    unsigned h = n / 4;
    for (unsigned i = 0; i < h; i++) {
        r.w[i] = d->sd[i] > 65535 ? 65535 : d->sd[i] < 0 ? 0 : d->sd[i];
        r.w[h + i] = s->sd[i] > 65535 ? 65535 : s->sd[i] < 0 ? 0 : s->sd[i];
    }
    memcpy(d, &r, n);
}

/* Interleave elements of `size` bytes from the low (hi=0) or high half. */
static void unpack(x86_xmm *d, const x86_xmm *s, unsigned n, unsigned size, int hi)
{
    x86_xmm r;
    unsigned half = n / 2, off = hi ? half : 0;
    for (unsigned i = 0; i < half / size; i++) {
        memcpy(&r.b[2 * i * size], &d->b[off + i * size], size);
        memcpy(&r.b[(2 * i + 1) * size], &s->b[off + i * size], size);
    }
    memcpy(d, &r, n);
}

void sse_punpcklbw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { unpack(d, s, n, 1, 0); }
void sse_punpcklwd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { unpack(d, s, n, 2, 0); }
void sse_punpckldq(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { unpack(d, s, n, 4, 0); }
void sse_punpcklqdq(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { unpack(d, s, n, 8, 0); }
void sse_punpckhbw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { unpack(d, s, n, 1, 1); }
void sse_punpckhwd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { unpack(d, s, n, 2, 1); }
void sse_punpckhdq(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { unpack(d, s, n, 4, 1); }
void sse_punpckhqdq(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { unpack(d, s, n, 8, 1); }
void sse_unpcklps(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { unpack(d, s, 16, 4, 0); }
void sse_unpckhps(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { unpack(d, s, 16, 4, 1); }
void sse_unpcklpd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { unpack(d, s, 16, 8, 0); }
void sse_unpckhpd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { unpack(d, s, 16, 8, 1); }

/* ---- shifts ---- */
static uint64_t shift_count(const x86_xmm *s) { return s->q[0]; }

static void shl_lanes(x86_xmm *d, unsigned n, unsigned size, uint64_t c)
{
    for (unsigned i = 0; i < n / size; i++) {
        switch (size) {
        case 2: d->w[i] = c > 15 ? 0 : (uint16_t)(d->w[i] << c); break;
        case 4: d->d[i] = c > 31 ? 0 : d->d[i] << c; break;
        case 8: d->q[i] = c > 63 ? 0 : d->q[i] << c; break;
        }
    }
}

static void shr_lanes(x86_xmm *d, unsigned n, unsigned size, uint64_t c)
{
    for (unsigned i = 0; i < n / size; i++) {
        switch (size) {
        case 2: d->w[i] = c > 15 ? 0 : d->w[i] >> c; break;
        case 4: d->d[i] = c > 31 ? 0 : d->d[i] >> c; break;
        case 8: d->q[i] = c > 63 ? 0 : d->q[i] >> c; break;
        }
    }
}

static void sar_lanes(x86_xmm *d, unsigned n, unsigned size, uint64_t c)
{
    for (unsigned i = 0; i < n / size; i++) {
        if (size == 2)
            d->sw[i] = d->sw[i] >> (c > 15 ? 15 : c);
        else
            d->sd[i] = d->sd[i] >> (c > 31 ? 31 : c);
    }
}

void sse_psllw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { shl_lanes(d, n, 2, shift_count(s)); }
void sse_pslld(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { shl_lanes(d, n, 4, shift_count(s)); }
void sse_psllq(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { shl_lanes(d, n, 8, shift_count(s)); }
void sse_psrlw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { shr_lanes(d, n, 2, shift_count(s)); }
void sse_psrld(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { shr_lanes(d, n, 4, shift_count(s)); }
void sse_psrlq(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { shr_lanes(d, n, 8, shift_count(s)); }
void sse_psraw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { sar_lanes(d, n, 2, shift_count(s)); }
void sse_psrad(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { sar_lanes(d, n, 4, shift_count(s)); }
void sse_psllw_imm(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { shl_lanes(d, n, 2, imm); }
void sse_pslld_imm(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { shl_lanes(d, n, 4, imm); }
void sse_psllq_imm(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { shl_lanes(d, n, 8, imm); }
void sse_psrlw_imm(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { shr_lanes(d, n, 2, imm); }
void sse_psrld_imm(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { shr_lanes(d, n, 4, imm); }
void sse_psrlq_imm(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { shr_lanes(d, n, 8, imm); }
void sse_psraw_imm(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { sar_lanes(d, n, 2, imm); }
void sse_psrad_imm(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { sar_lanes(d, n, 4, imm); }

void sse_pslldq_imm(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r = {0};
    unsigned c = imm > 16 ? 16 : imm;
    memcpy(&r.b[c], d->b, 16 - c);
    *d = r;
}

void sse_psrldq_imm(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r = {0};
    unsigned c = imm > 16 ? 16 : imm;
    memcpy(r.b, &d->b[c], 16 - c);
    *d = r;
}

/* PALIGNR: (d:s) >> imm bytes, over a 2n-byte concatenation. */
void sse_palignr(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    uint8_t cat[48] = {0};
    memcpy(cat, s->b, n);
    memcpy(cat + n, d->b, n);
    unsigned c = imm > 2 * n ? 2 * n : imm;
    memcpy(d->b, cat + c, n);
}

/* ---- shuffles ---- */
void sse_pshufw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r = *d;
    for (int i = 0; i < 4; i++)
        r.w[i] = s->w[(imm >> (2 * i)) & 3];
    *d = r;
}

void sse_pshufd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r;
    for (int i = 0; i < 4; i++)
        r.d[i] = s->d[(imm >> (2 * i)) & 3];
    *d = r;
}

void sse_pshuflw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r = *s;
    for (int i = 0; i < 4; i++)
        r.w[i] = s->w[(imm >> (2 * i)) & 3];
    *d = r;
}

void sse_pshufhw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r = *s;
    for (int i = 0; i < 4; i++)
        r.w[4 + i] = s->w[4 + ((imm >> (2 * i)) & 3)];
    *d = r;
}

void sse_shufps(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r;
    r.d[0] = d->d[imm & 3];
    r.d[1] = d->d[(imm >> 2) & 3];
    r.d[2] = s->d[(imm >> 4) & 3];
    r.d[3] = s->d[(imm >> 6) & 3];
    *d = r;
}

void sse_shufpd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r;
    r.q[0] = d->q[imm & 1];
    r.q[1] = s->q[(imm >> 1) & 1];
    *d = r;
}

void sse_movsldup(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r = {.d = {s->d[0], s->d[0], s->d[2], s->d[2]}};
    *d = r;
}

void sse_movshdup(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r = {.d = {s->d[1], s->d[1], s->d[3], s->d[3]}};
    *d = r;
}

void sse_movddup(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r = {.q = {s->q[0], s->q[0]}};
    *d = r;
}

void sse_pshufb(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    x86_xmm r;
    for (unsigned i = 0; i < n; i++)
        r.b[i] = (s->b[i] & 0x80) ? 0 : d->b[s->b[i] & (n - 1)];
    memcpy(d, &r, n);
}

/* ---- horizontal ---- */
static void hop16(x86_xmm *d, const x86_xmm *s, unsigned n, int sub, int sat)
{
    x86_xmm r;
    unsigned h = n / 4;            /* pairs per source */
    for (unsigned i = 0; i < h; i++) {
        int a = d->sw[2 * i], b = d->sw[2 * i + 1];
        int c = s->sw[2 * i], e = s->sw[2 * i + 1];
        int x = sub ? a - b : a + b, y = sub ? c - e : c + e;
        r.sw[i] = sat ? sat16(x) : (int16_t)x;
        r.sw[h + i] = sat ? sat16(y) : (int16_t)y;
    }
    memcpy(d, &r, n);
}

static void hop32(x86_xmm *d, const x86_xmm *s, unsigned n, int sub)
{
    x86_xmm r;
    unsigned h = n / 8;
    for (unsigned i = 0; i < h; i++) {
        uint32_t a = d->d[2 * i], b = d->d[2 * i + 1], c = s->d[2 * i], e = s->d[2 * i + 1];
        r.d[i] = sub ? a - b : a + b;
        r.d[h + i] = sub ? c - e : c + e;
    }
    memcpy(d, &r, n);
}

void sse_phaddw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { hop16(d, s, n, 0, 0); }
void sse_phaddsw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { hop16(d, s, n, 0, 1); }
void sse_phsubw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { hop16(d, s, n, 1, 0); }
void sse_phsubsw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { hop16(d, s, n, 1, 1); }
void sse_phaddd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { hop32(d, s, n, 0); }
void sse_phsubd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm) { hop32(d, s, n, 1); }

void sse_phminposuw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    unsigned best = 0;
    for (unsigned i = 1; i < 8; i++)
        if (s->w[i] < s->w[best])
            best = i;
    x86_xmm r = {0};
    r.w[0] = s->w[best];
    r.w[1] = best;
    *d = r;
}

/* ---- blends, extensions, inserts ---- */
void sse_pblendw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    for (int i = 0; i < 8; i++)
        if (imm & (1 << i))
            d->w[i] = s->w[i];
}

void sse_blendps(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    for (int i = 0; i < 4; i++)
        if (imm & (1 << i))
            d->d[i] = s->d[i];
}

void sse_blendpd(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    for (int i = 0; i < 2; i++)
        if (imm & (1 << i))
            d->q[i] = s->q[i];
}

void sse_pblendvb(x86_xmm *d, const x86_xmm *s, const x86_xmm *m)
{
    for (int i = 0; i < 16; i++)
        if (m->b[i] & 0x80)
            d->b[i] = s->b[i];
}

void sse_blendvps(x86_xmm *d, const x86_xmm *s, const x86_xmm *m)
{
    for (int i = 0; i < 4; i++)
        if (m->d[i] >> 31)
            d->d[i] = s->d[i];
}

void sse_blendvpd(x86_xmm *d, const x86_xmm *s, const x86_xmm *m)
{
    for (int i = 0; i < 2; i++)
        if (m->q[i] >> 63)
            d->q[i] = s->q[i];
}

unsigned sse_ptest(const x86_xmm *d, const x86_xmm *s)
{
    unsigned zf = !((d->q[0] & s->q[0]) | (d->q[1] & s->q[1]));
    unsigned cf = !((~d->q[0] & s->q[0]) | (~d->q[1] & s->q[1]));
    return zf | cf << 1;
}

#define PMOVX(NAME, DT, DF, ST, SF)                                          \
    void NAME(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)         \
    {                                                                        \
        x86_xmm r;                                                           \
        for (unsigned i = 0; i < 16 / sizeof(DT); i++)                       \
            r.DF[i] = (DT)s->SF[i];                                          \
        *d = r;                                                              \
    }
PMOVX(sse_pmovsxbw, int16_t, sw, int8_t, sb)
PMOVX(sse_pmovsxbd, int32_t, sd, int8_t, sb)
PMOVX(sse_pmovsxbq, int64_t, sq, int8_t, sb)
PMOVX(sse_pmovsxwd, int32_t, sd, int16_t, sw)
PMOVX(sse_pmovsxwq, int64_t, sq, int16_t, sw)
PMOVX(sse_pmovsxdq, int64_t, sq, int32_t, sd)
PMOVX(sse_pmovzxbw, uint16_t, w, uint8_t, b)
PMOVX(sse_pmovzxbd, uint32_t, d, uint8_t, b)
PMOVX(sse_pmovzxbq, uint64_t, q, uint8_t, b)
PMOVX(sse_pmovzxwd, uint32_t, d, uint16_t, w)
PMOVX(sse_pmovzxwq, uint64_t, q, uint16_t, w)
PMOVX(sse_pmovzxdq, uint64_t, q, uint32_t, d)

/* INSERTPS: s is the register or a 32-bit memory value in s->d[0]
 * (the caller passes count_s = 0 for memory through imm bits 7:6). */
void sse_insertps(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    d->d[(imm >> 4) & 3] = s->d[imm >> 6];
    for (int i = 0; i < 4; i++)
        if (imm & (1 << i))
            d->d[i] = 0;
}

void sse_mpsadbw(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    unsigned so = (imm & 3) * 4, doff = ((imm >> 2) & 1) * 4;
    x86_xmm r;
    for (int i = 0; i < 8; i++) {
        unsigned sum = 0;
        for (int j = 0; j < 4; j++) {
            int v = d->b[doff + i + j] - s->b[so + j];
            sum += v < 0 ? -v : v;
        }
        r.w[i] = sum;
    }
    *d = r;
}

void sse_pclmulqdq(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm)
{
    uint64_t a = d->q[imm & 1], b = s->q[(imm >> 4) & 1], lo = 0, hi = 0;
    for (int i = 0; i < 64; i++) {
        if (b & (1ull << i)) {
            lo ^= a << i;
            hi ^= i ? a >> (64 - i) : 0;
        }
    }
    d->q[0] = lo;
    d->q[1] = hi;
}

/* ---- masks ---- */
uint32_t sse_pmovmskb(const x86_xmm *s, unsigned n)
{
#ifdef __SSE2__
    /* the hot half of glibc's string loops */
    uint32_t all = (uint32_t)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)s));
    return n == 16 ? all : all & 0xff;
#endif
    uint32_t m = 0;
    for (unsigned i = 0; i < n && i < 16; i++)
        m |= (uint32_t)(s->b[i] >> 7) << i;
    return m;
}

uint32_t sse_movmskps(const x86_xmm *s)
{
    return (s->d[0] >> 31) | (s->d[1] >> 31) << 1 | (s->d[2] >> 31) << 2 | (s->d[3] >> 31) << 3;
}

uint32_t sse_movmskpd(const x86_xmm *s)
{
    return (uint32_t)(s->q[0] >> 63) | (uint32_t)(s->q[1] >> 63) << 1;
}

/* ---- CRC32 (SSE4.2): reflected CRC-32C, polynomial 0x82f63b78 ---- */
uint32_t sse_crc32c(uint32_t crc, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++) {
        crc ^= (uint8_t)(v >> (8 * i));
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82f63b78 & -(crc & 1));
    }
    return crc;
}

/* ---- SSE4.2 PCMPxSTRx (SDM vol. 2, 4.1 "Imm8 Control Byte Operation") ---- */

static int64_t str_elem(const x86_xmm *v, int i, unsigned fmt)
{
    switch (fmt) {
    case 0: return v->b[i];
    case 1: return v->w[i];
    case 2: return v->sb[i];
    default: return v->sw[i];
    }
}

uint32_t sse_pcmpstr(const x86_xmm *a, const x86_xmm *b, int64_t la, int64_t lb, bool implicit,
                     uint8_t imm, uint32_t *flags)
{
    unsigned fmt = imm & 3, agg = (imm >> 2) & 3, pol = (imm >> 4) & 3;
    int n = (imm & 1) ? 8 : 16;

    /* Implicit lengths: up to the first zero element. */
    if (implicit) {
        for (la = 0; la < n && str_elem(a, la, fmt); la++)
            ;
        for (lb = 0; lb < n && str_elem(b, lb, fmt); lb++)
            ;
    } else {
        la = la < 0 ? (la == INT64_MIN ? n : -la) : la;
        lb = lb < 0 ? (lb == INT64_MIN ? n : -lb) : lb;
        if (la > n) la = n;
        if (lb > n) lb = n;
    }

    uint32_t res1 = 0;
    for (int j = 0; j < n; j++) {
        bool r = false;
        int64_t bj = str_elem(b, j, fmt);
        switch (agg) {
        case 0:                    /* equal any */
            for (int i = 0; i < la && j < lb && !r; i++)
                r = str_elem(a, i, fmt) == bj;
            break;
        case 1:                    /* ranges */
            for (int i = 0; i + 1 < la && j < lb && !r; i += 2)
                r = bj >= str_elem(a, i, fmt) && bj <= str_elem(a, i + 1, fmt);
            break;
        case 2:                    /* equal each */
            if (j >= la && j >= lb)
                r = true;
            else if (j < la && j < lb)
                r = str_elem(a, j, fmt) == bj;
            break;
        default:                   /* equal ordered */
            r = true;
            for (int i = 0; i < n - j && r; i++) {
                if (i >= la)
                    break;         /* rest of the needle is past its end */
                if (j + i >= lb)
                    r = false;
                else
                    r = str_elem(a, i, fmt) == str_elem(b, j + i, fmt);
            }
            break;
        }
        res1 |= (uint32_t)r << j;
    }

    uint32_t all = (1u << n) - 1, res2 = res1;
    if (pol == 1)
        res2 = ~res1 & all;
    else if (pol == 3)
        res2 = (res1 ^ ((1u << lb) - 1)) & all;

    *flags = (res2 ? 0x0001u : 0)          /* CF */
           | (lb < n ? 0x0040u : 0)        /* ZF */
           | (la < n ? 0x0080u : 0)        /* SF */
           | ((res2 & 1) ? 0x0800u : 0);   /* OF */
    return res2;
}

uint32_t sse_pcmpstr_index(uint32_t res, uint8_t imm)
{
    int n = (imm & 1) ? 8 : 16;
    if (!res)
        return n;
    return (imm & 0x40) ? 31 - __builtin_clz(res) : __builtin_ctz(res);
}

void sse_pcmpstr_mask(x86_xmm *out, uint32_t res, uint8_t imm)
{
    x86_xmm r = {0};
    if (!(imm & 0x40)) {
        r.d[0] = res;
    } else if (imm & 1) {
        for (int i = 0; i < 8; i++)
            r.w[i] = (res >> i) & 1 ? 0xffff : 0;
    } else {
        for (int i = 0; i < 16; i++)
            r.b[i] = (res >> i) & 1 ? 0xff : 0;
    }
    *out = r;
}
