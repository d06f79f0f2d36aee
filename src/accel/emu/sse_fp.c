/* SSE/SSE2/SSE3/SSE4.1 floating point, computed by the host's own SSE unit
 * under the guest's MXCSR rounding, DAZ and FTZ with every exception masked,
 * so results, NaN propagation and exception flags are the hardware's
 * bit for bit. The caller turns unmasked flags into #XM.
 *
 * This file is the only place that needs an x86-64 host for SSE results;
 * a port to another host would replace it with a software implementation
 * of the same interface (sse_ops.h). */
#include <math.h>
#include <immintrin.h>
#include "accel/emu/sse_ops.h"

#if !defined(__x86_64__)
#error "sse_fp.c computes with the host's SSE unit: x86-64 hosts only"
#endif

/* Keep a value in a register "produced" at this point, so the compiler
 * cannot move the arithmetic that uses it across the MXCSR switches. */
#define FP_PIN(v) __asm__ volatile("" : "+x"(v))

/* Switch the host MXCSR to the guest's modes (flags clear, exceptions
 * masked) and back. LDMXCSR is the costly part: it is skipped when the
 * host already holds the wanted value (the common default 0x1f80). */
static inline uint32_t fp_enter(uint32_t guest)
{
    uint32_t host = _mm_getcsr();
    uint32_t want = (guest & (MXCSR_DAZ | MXCSR_FTZ | (3u << MXCSR_RC_SHIFT))) |
                    (0x3fu << MXCSR_MASK_SHIFT);
    if (host != want)
        _mm_setcsr(want);
    return host;
}

static inline unsigned fp_leave(uint32_t host)
{
    uint32_t now = _mm_getcsr();
    if (now != host)
        _mm_setcsr(host);
    return now & MXCSR_FLAGS;
}

static __m128 ld_ps(const x86_xmm *x) { return _mm_loadu_ps(x->fs); }
static __m128d ld_pd(const x86_xmm *x) { return _mm_loadu_pd(x->fd); }

static __m128 cmp_ps(__m128 a, __m128 b, unsigned p, bool scalar)
{
    if (scalar) {
        switch (p & 7) {
        case 0: return _mm_cmpeq_ss(a, b);
        case 1: return _mm_cmplt_ss(a, b);
        case 2: return _mm_cmple_ss(a, b);
        case 3: return _mm_cmpunord_ss(a, b);
        case 4: return _mm_cmpneq_ss(a, b);
        case 5: return _mm_cmpnlt_ss(a, b);
        case 6: return _mm_cmpnle_ss(a, b);
        default: return _mm_cmpord_ss(a, b);
        }
    }
    switch (p & 7) {
    case 0: return _mm_cmpeq_ps(a, b);
    case 1: return _mm_cmplt_ps(a, b);
    case 2: return _mm_cmple_ps(a, b);
    case 3: return _mm_cmpunord_ps(a, b);
    case 4: return _mm_cmpneq_ps(a, b);
    case 5: return _mm_cmpnlt_ps(a, b);
    case 6: return _mm_cmpnle_ps(a, b);
    default: return _mm_cmpord_ps(a, b);
    }
}

static __m128d cmp_pd(__m128d a, __m128d b, unsigned p, bool scalar)
{
    if (scalar) {
        switch (p & 7) {
        case 0: return _mm_cmpeq_sd(a, b);
        case 1: return _mm_cmplt_sd(a, b);
        case 2: return _mm_cmple_sd(a, b);
        case 3: return _mm_cmpunord_sd(a, b);
        case 4: return _mm_cmpneq_sd(a, b);
        case 5: return _mm_cmpnlt_sd(a, b);
        case 6: return _mm_cmpnle_sd(a, b);
        default: return _mm_cmpord_sd(a, b);
        }
    }
    switch (p & 7) {
    case 0: return _mm_cmpeq_pd(a, b);
    case 1: return _mm_cmplt_pd(a, b);
    case 2: return _mm_cmple_pd(a, b);
    case 3: return _mm_cmpunord_pd(a, b);
    case 4: return _mm_cmpneq_pd(a, b);
    case 5: return _mm_cmpnlt_pd(a, b);
    case 6: return _mm_cmpnle_pd(a, b);
    default: return _mm_cmpord_pd(a, b);
    }
}

/* ROUNDPS/PD/SS/SD on the bit pattern of one element (mb mantissa bits,
 * eb exponent bits): only SNaN (#I) and inexact (#P) are reported, never
 * #D, so no host arithmetic touches the value. rc: 0 nearest-even, 1 down,
 * 2 up, 3 toward zero. */
static uint64_t round_bits(uint64_t x, int mb, int eb, unsigned rc, bool daz, unsigned *flags)
{
    uint64_t emax = (1u << eb) - 1, bias = emax >> 1;
    uint64_t e = (x >> mb) & emax, mant = x & ((1ull << mb) - 1);
    uint64_t sign = x & (1ull << (mb + eb)), one = bias << mb;
    bool neg = sign != 0;

    if (e == emax) {
        if (mant && !(mant >> (mb - 1))) {
            *flags |= MXCSR_IE;
            x |= 1ull << (mb - 1);
        }
        return x;
    }
    if (e == 0 && daz)
        return sign;
    if (e >= bias + mb || (e == 0 && !mant))
        return x;
    if (e < bias) {
        *flags |= MXCSR_PE;
        bool up = rc == 0 ? (e == bias - 1 && mant) : rc == 1 ? neg : rc == 2 ? !neg : false;
        return sign | (up ? one : 0);
    }
    unsigned fb = bias + mb - e;
    uint64_t mask = (1ull << fb) - 1, frac = x & mask, t = x & ~mask, half = 1ull << (fb - 1);
    if (!frac)
        return x;
    *flags |= MXCSR_PE;
    bool inc = rc == 0 ? (frac > half || (frac == half && ((t >> fb) & 1)))
             : rc == 1 ? neg : rc == 2 ? !neg : false;
    return inc ? t + (1ull << fb) : t;
}

static void fp_round(enum sse_fp_shape shape, x86_xmm *r, const x86_xmm *d, const x86_xmm *s,
                     uint8_t imm, uint32_t mxcsr, unsigned *flags)
{
    unsigned rc = (imm & 4) ? (mxcsr >> MXCSR_RC_SHIFT) & 3 : imm & 3;
    bool daz = mxcsr & MXCSR_DAZ;
    unsigned pe = 0;
    x86_xmm out = *d;

    switch (shape) {
    case FP_PS: for (int i = 0; i < 4; i++) out.d[i] = round_bits(s->d[i], 23, 8, rc, daz, &pe); break;
    case FP_PD: for (int i = 0; i < 2; i++) out.q[i] = round_bits(s->q[i], 52, 11, rc, daz, &pe); break;
    case FP_SS: out.d[0] = round_bits(s->d[0], 23, 8, rc, daz, &pe); break;
    case FP_SD: out.q[0] = round_bits(s->q[0], 52, 11, rc, daz, &pe); break;
    }
    if (imm & 8)
        pe &= ~MXCSR_PE;
    *flags |= pe;
    *r = out;
}

/* DPPS/DPPD in the SDM's order of operations. */
static void fp_dp(enum sse_fp_shape shape, x86_xmm *r, const x86_xmm *d, const x86_xmm *s,
                  uint8_t imm)
{
    x86_xmm out;
    if (shape == FP_PS) {
        volatile float t[4];
        for (int i = 0; i < 4; i++)
            t[i] = (imm & (0x10 << i)) ? d->fs[i] * s->fs[i] : 0.0f;
        volatile float t2 = t[0] + t[1], t3 = t[2] + t[3];
        volatile float t4 = t2 + t3;
        for (int i = 0; i < 4; i++)
            out.fs[i] = (imm & (1 << i)) ? t4 : 0.0f;
    } else {
        volatile double t[2];
        for (int i = 0; i < 2; i++)
            t[i] = (imm & (0x10 << i)) ? d->fd[i] * s->fd[i] : 0.0;
        volatile double t2 = t[0] + t[1];
        for (int i = 0; i < 2; i++)
            out.fd[i] = (imm & (1 << i)) ? t2 : 0.0;
    }
    *r = out;
}

static __m128 fp_ps(enum sse_fp_op op, __m128 a, __m128 b, bool sc, uint8_t imm)
{
    switch (op) {
    case FP_ADD: return sc ? _mm_add_ss(a, b) : _mm_add_ps(a, b);
    case FP_SUB: return sc ? _mm_sub_ss(a, b) : _mm_sub_ps(a, b);
    case FP_MUL: return sc ? _mm_mul_ss(a, b) : _mm_mul_ps(a, b);
    case FP_DIV: return sc ? _mm_div_ss(a, b) : _mm_div_ps(a, b);
    case FP_MIN: return sc ? _mm_min_ss(a, b) : _mm_min_ps(a, b);
    case FP_MAX: return sc ? _mm_max_ss(a, b) : _mm_max_ps(a, b);
    case FP_SQRT: return sc ? _mm_move_ss(a, _mm_sqrt_ss(b)) : _mm_sqrt_ps(b);
    case FP_RCP: return sc ? _mm_move_ss(a, _mm_rcp_ss(b)) : _mm_rcp_ps(b);
    case FP_RSQRT: return sc ? _mm_move_ss(a, _mm_rsqrt_ss(b)) : _mm_rsqrt_ps(b);
    case FP_CMP: return cmp_ps(a, b, imm, sc);
    case FP_ADDSUB: {
        /* lane by lane: computing both ops everywhere would raise the
         * flags of results that are thrown away */
        volatile float x[4], y[4], r[4];
        _mm_storeu_ps((float *)x, a);
        _mm_storeu_ps((float *)y, b);
        for (int i = 0; i < 4; i++)
            r[i] = (i & 1) ? x[i] + y[i] : x[i] - y[i];
        return _mm_loadu_ps((const float *)r);
    }
    case FP_HADD: case FP_HSUB: {
        __m128 x = _mm_shuffle_ps(a, b, 0x88), y = _mm_shuffle_ps(a, b, 0xdd);
        return op == FP_HADD ? _mm_add_ps(x, y) : _mm_sub_ps(x, y);
    }
    default: return a;
    }
}

static __m128d fp_pd(enum sse_fp_op op, __m128d a, __m128d b, bool sc, uint8_t imm)
{
    switch (op) {
    case FP_ADD: return sc ? _mm_add_sd(a, b) : _mm_add_pd(a, b);
    case FP_SUB: return sc ? _mm_sub_sd(a, b) : _mm_sub_pd(a, b);
    case FP_MUL: return sc ? _mm_mul_sd(a, b) : _mm_mul_pd(a, b);
    case FP_DIV: return sc ? _mm_div_sd(a, b) : _mm_div_pd(a, b);
    case FP_MIN: return sc ? _mm_min_sd(a, b) : _mm_min_pd(a, b);
    case FP_MAX: return sc ? _mm_max_sd(a, b) : _mm_max_pd(a, b);
    case FP_SQRT: return sc ? _mm_sqrt_sd(a, b) : _mm_sqrt_pd(b);
    case FP_CMP: return cmp_pd(a, b, imm, sc);
    case FP_ADDSUB: {
        volatile double x[2], y[2], r[2];
        _mm_storeu_pd((double *)x, a);
        _mm_storeu_pd((double *)y, b);
        r[0] = x[0] - y[0];
        r[1] = x[1] + y[1];
        return _mm_loadu_pd((const double *)r);
    }
    case FP_HADD: case FP_HSUB: {
        __m128d x = _mm_unpacklo_pd(a, b), y = _mm_unpackhi_pd(a, b);
        return op == FP_HADD ? _mm_add_pd(x, y) : _mm_sub_pd(x, y);
    }
    default: return a;
    }
}

/* Conversions; a is the destination's old value where lanes survive. */
static void fp_cvt(enum sse_fp_op op, x86_xmm *r, const x86_xmm *d, const x86_xmm *s)
{
    __m128 a = ld_ps(d), bs = ld_ps(s);
    __m128d ad = ld_pd(d), bd = ld_pd(s);
    __m128i bi = _mm_loadu_si128((const __m128i *)s);
    FP_PIN(a); FP_PIN(bs); FP_PIN(ad); FP_PIN(bd); FP_PIN(bi);
    __m128i ri;
    switch (op) {
    case FP_CVTPS2PD: ad = _mm_cvtps_pd(bs); FP_PIN(ad); _mm_storeu_pd(r->fd, ad); return;
    case FP_CVTPD2PS: a = _mm_cvtpd_ps(bd); FP_PIN(a); _mm_storeu_ps(r->fs, a); return;
    case FP_CVTSS2SD: ad = _mm_cvtss_sd(ad, bs); FP_PIN(ad); _mm_storeu_pd(r->fd, ad); return;
    case FP_CVTSD2SS: a = _mm_cvtsd_ss(a, bd); FP_PIN(a); _mm_storeu_ps(r->fs, a); return;
    case FP_CVTDQ2PS: a = _mm_cvtepi32_ps(bi); FP_PIN(a); _mm_storeu_ps(r->fs, a); return;
    case FP_CVTDQ2PD: case FP_CVTPI2PD:
        ad = _mm_cvtepi32_pd(bi); FP_PIN(ad); _mm_storeu_pd(r->fd, ad); return;
    case FP_CVTPI2PS:
        /* Only the two low lanes convert; the upper two of d survive. */
        bi = _mm_move_epi64(bi); FP_PIN(bi);
        bs = _mm_cvtepi32_ps(bi); FP_PIN(bs);
        a = _mm_shuffle_ps(bs, a, 0xe4); FP_PIN(a);
        _mm_storeu_ps(r->fs, a); return;
    case FP_CVTPS2DQ: ri = _mm_cvtps_epi32(bs); break;
    case FP_CVTTPS2DQ: ri = _mm_cvttps_epi32(bs); break;
    case FP_CVTPD2DQ: case FP_CVTPD2PI: ri = _mm_cvtpd_epi32(bd); break;
    case FP_CVTTPD2DQ: case FP_CVTTPD2PI: ri = _mm_cvttpd_epi32(bd); break;
    case FP_CVTPS2PI: case FP_CVTTPS2PI:
        bs = _mm_castsi128_ps(_mm_move_epi64(_mm_castps_si128(bs))); FP_PIN(bs);
        ri = op == FP_CVTPS2PI ? _mm_cvtps_epi32(bs) : _mm_cvttps_epi32(bs);
        break;
    default: *r = *d; return;
    }
    FP_PIN(ri);
    _mm_storeu_si128((__m128i *)r, ri);
}

unsigned sse_fp(enum sse_fp_op op, enum sse_fp_shape shape, x86_xmm *r, const x86_xmm *d,
                const x86_xmm *s, uint8_t imm, uint32_t mxcsr)
{
    unsigned flags = 0;
    uint32_t host = fp_enter(mxcsr);
    bool sc = shape == FP_SS || shape == FP_SD;

    if (op == FP_ROUND) {
        fp_round(shape, r, d, s, imm, mxcsr, &flags);
    } else if (op == FP_DP) {
        fp_dp(shape, r, d, s, imm);
    } else if (op >= FP_CVTPS2PD) {
        fp_cvt(op, r, d, s);
    } else if (shape == FP_PS || shape == FP_SS) {
        __m128 a = ld_ps(d), b = ld_ps(s);
        FP_PIN(a); FP_PIN(b);
        __m128 v = fp_ps(op, a, b, sc, imm);
        FP_PIN(v);
        _mm_storeu_ps(r->fs, v);
    } else {
        __m128d a = ld_pd(d), b = ld_pd(s);
        FP_PIN(a); FP_PIN(b);
        __m128d v = fp_pd(op, a, b, sc, imm);
        FP_PIN(v);
        _mm_storeu_pd(r->fd, v);
    }
    return flags | fp_leave(host);
}

unsigned sse_cvt2si(const x86_xmm *s, bool dbl, bool truncate, bool is64, uint32_t mxcsr,
                    uint64_t *out)
{
    uint32_t host = fp_enter(mxcsr);
    __m128 f = ld_ps(s);
    __m128d g = ld_pd(s);
    FP_PIN(f); FP_PIN(g);
    uint64_t v;
    if (dbl) {
        if (is64)
            v = truncate ? (uint64_t)_mm_cvttsd_si64(g) : (uint64_t)_mm_cvtsd_si64(g);
        else
            v = truncate ? (uint32_t)_mm_cvttsd_si32(g) : (uint32_t)_mm_cvtsd_si32(g);
    } else {
        if (is64)
            v = truncate ? (uint64_t)_mm_cvttss_si64(f) : (uint64_t)_mm_cvtss_si64(f);
        else
            v = truncate ? (uint32_t)_mm_cvttss_si32(f) : (uint32_t)_mm_cvtss_si32(f);
    }
    __asm__ volatile("" : "+r"(v));
    *out = v;
    return fp_leave(host);
}

unsigned sse_cvtsi2fp(x86_xmm *r, int64_t v, bool dbl, bool is64, uint32_t mxcsr)
{
    uint32_t host = fp_enter(mxcsr);
    __asm__ volatile("" : "+r"(v));
    if (dbl) {
        __m128d a = ld_pd(r);
        a = is64 ? _mm_cvtsi64_sd(a, v) : _mm_cvtsi32_sd(a, (int32_t)v);
        FP_PIN(a);
        _mm_storeu_pd(r->fd, a);
    } else {
        __m128 a = ld_ps(r);
        a = is64 ? _mm_cvtsi64_ss(a, v) : _mm_cvtsi32_ss(a, (int32_t)v);
        FP_PIN(a);
        _mm_storeu_ps(r->fs, a);
    }
    return fp_leave(host);
}

unsigned sse_comi(const x86_xmm *a, const x86_xmm *b, bool dbl, bool quiet, uint32_t mxcsr,
                  uint32_t *rflags)
{
    uint8_t zf, pf, cf;
    uint32_t host = fp_enter(mxcsr);
    __m128 x = ld_ps(a), y = ld_ps(b);
    if (dbl && quiet)
        __asm__ volatile("ucomisd %3, %4; setz %0; setp %1; setc %2"
                         : "=r"(zf), "=r"(pf), "=r"(cf) : "x"(y), "x"(x) : "cc");
    else if (dbl)
        __asm__ volatile("comisd %3, %4; setz %0; setp %1; setc %2"
                         : "=r"(zf), "=r"(pf), "=r"(cf) : "x"(y), "x"(x) : "cc");
    else if (quiet)
        __asm__ volatile("ucomiss %3, %4; setz %0; setp %1; setc %2"
                         : "=r"(zf), "=r"(pf), "=r"(cf) : "x"(y), "x"(x) : "cc");
    else
        __asm__ volatile("comiss %3, %4; setz %0; setp %1; setc %2"
                         : "=r"(zf), "=r"(pf), "=r"(cf) : "x"(y), "x"(x) : "cc");
    *rflags = (uint32_t)cf | (uint32_t)pf << 2 | (uint32_t)zf << 6;
    return fp_leave(host);
}
