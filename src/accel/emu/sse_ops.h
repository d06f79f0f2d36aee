/* Pure SIMD computations on 64-bit (MMX) and 128-bit (XMM) values.
 *
 * Every integer operation has one signature: d = d OP s over the low n
 * bytes (8 for MMX, 16 for XMM); imm is the instruction's immediate where
 * it has one. Bytes of d above n are left alone. Floating-point operations
 * take the guest MXCSR and return the exception flags they raised. */
#ifndef QUOKKA_ACCEL_EMU_SSE_OPS_H
#define QUOKKA_ACCEL_EMU_SSE_OPS_H

#include <stdint.h>
#include "accel/emu/fpu.h"

typedef void sse_int_fn(x86_xmm *d, const x86_xmm *s, unsigned n, uint8_t imm);

/* Integer ops, named after the instruction (without the P prefix where
 * that reads better). */
sse_int_fn sse_paddb, sse_paddw, sse_paddd, sse_paddq;
sse_int_fn sse_psubb, sse_psubw, sse_psubd, sse_psubq;
sse_int_fn sse_paddsb, sse_paddsw, sse_paddusb, sse_paddusw;
sse_int_fn sse_psubsb, sse_psubsw, sse_psubusb, sse_psubusw;
sse_int_fn sse_pmullw, sse_pmulhw, sse_pmulhuw, sse_pmuludq, sse_pmaddwd;
sse_int_fn sse_pavgb, sse_pavgw, sse_psadbw;
sse_int_fn sse_pminub, sse_pmaxub, sse_pminsw, sse_pmaxsw;
sse_int_fn sse_pand, sse_pandn, sse_por, sse_pxor;
sse_int_fn sse_pcmpeqb, sse_pcmpeqw, sse_pcmpeqd, sse_pcmpgtb, sse_pcmpgtw, sse_pcmpgtd;
sse_int_fn sse_packsswb, sse_packssdw, sse_packuswb;
sse_int_fn sse_punpcklbw, sse_punpcklwd, sse_punpckldq, sse_punpcklqdq;
sse_int_fn sse_punpckhbw, sse_punpckhwd, sse_punpckhdq, sse_punpckhqdq;
/* Shifts by the count in s (low 64 bits), or by imm for the *_imm forms. */
sse_int_fn sse_psllw, sse_pslld, sse_psllq, sse_psrlw, sse_psrld, sse_psrlq, sse_psraw, sse_psrad;
sse_int_fn sse_psllw_imm, sse_pslld_imm, sse_psllq_imm, sse_psrlw_imm, sse_psrld_imm,
    sse_psrlq_imm, sse_psraw_imm, sse_psrad_imm, sse_pslldq_imm, sse_psrldq_imm;
/* d = shuffle of s by imm. */
sse_int_fn sse_pshufw, sse_pshufd, sse_pshufhw, sse_pshuflw;
sse_int_fn sse_shufps, sse_shufpd;
sse_int_fn sse_unpcklps, sse_unpckhps, sse_unpcklpd, sse_unpckhpd;
/* SSE3 moves. */
sse_int_fn sse_movsldup, sse_movshdup, sse_movddup;

/* SSSE3 */
sse_int_fn sse_pshufb, sse_phaddw, sse_phaddd, sse_phaddsw, sse_pmaddubsw, sse_phsubw,
    sse_phsubd, sse_phsubsw, sse_psignb, sse_psignw, sse_psignd, sse_pmulhrsw,
    sse_pabsb, sse_pabsw, sse_pabsd, sse_palignr;
/* SSE4.1 / 4.2 integer */
sse_int_fn sse_pmuldq, sse_pcmpeqq, sse_packusdw, sse_pcmpgtq, sse_pminsb, sse_pminsd,
    sse_pminuw, sse_pminud, sse_pmaxsb, sse_pmaxsd, sse_pmaxuw, sse_pmaxud, sse_pmulld,
    sse_phminposuw, sse_pblendw, sse_blendps, sse_blendpd, sse_mpsadbw,
    sse_pmovsxbw, sse_pmovsxbd, sse_pmovsxbq, sse_pmovsxwd, sse_pmovsxwq, sse_pmovsxdq,
    sse_pmovzxbw, sse_pmovzxbd, sse_pmovzxbq, sse_pmovzxwd, sse_pmovzxwq, sse_pmovzxdq,
    sse_insertps, sse_pclmulqdq;
/* Variable blends: mask is XMM0. */
void sse_pblendvb(x86_xmm *d, const x86_xmm *s, const x86_xmm *mask);
void sse_blendvps(x86_xmm *d, const x86_xmm *s, const x86_xmm *mask);
void sse_blendvpd(x86_xmm *d, const x86_xmm *s, const x86_xmm *mask);
/* PTEST: returns ZF (bit 0) and CF (bit 1). */
unsigned sse_ptest(const x86_xmm *d, const x86_xmm *s);
/* PMOVMSKB / MOVMSKPS / MOVMSKPD. */
uint32_t sse_pmovmskb(const x86_xmm *s, unsigned n);
uint32_t sse_movmskps(const x86_xmm *s);
uint32_t sse_movmskpd(const x86_xmm *s);
/* CRC32C (Castagnoli) of the low `bytes` bytes of v, continuing crc. */
uint32_t sse_crc32c(uint32_t crc, uint64_t v, unsigned bytes);

/* SSE4.2 string compares. PCMPxSTRx with imm; la/lb are the explicit
 * lengths (RAX/RDX, ignored when implicit). Returns the IntRes2 bit mask;
 * flags gets CF ZF SF OF as RFLAGS bits (others zero). */
uint32_t sse_pcmpstr(const x86_xmm *a, const x86_xmm *b, int64_t la, int64_t lb, bool implicit,
                     uint8_t imm, uint32_t *flags);
/* Index (PCMPxSTRI, ECX) or mask (PCMPxSTRM, XMM0) from the IntRes2 mask. */
uint32_t sse_pcmpstr_index(uint32_t res, uint8_t imm);
void sse_pcmpstr_mask(x86_xmm *out, uint32_t res, uint8_t imm);

/* ---- floating point (sse_fp.c) ---- */
enum sse_fp_op {
    FP_ADD, FP_SUB, FP_MUL, FP_DIV, FP_MIN, FP_MAX, FP_SQRT, FP_CMP,
    FP_RCP, FP_RSQRT, FP_ADDSUB, FP_HADD, FP_HSUB, FP_ROUND, FP_DP,
    /* conversions xmm -> xmm */
    FP_CVTPS2PD, FP_CVTPD2PS, FP_CVTSS2SD, FP_CVTSD2SS,
    FP_CVTDQ2PS, FP_CVTPS2DQ, FP_CVTTPS2DQ, FP_CVTDQ2PD, FP_CVTPD2DQ, FP_CVTTPD2DQ,
    FP_CVTPI2PS, FP_CVTPI2PD, FP_CVTPS2PI, FP_CVTTPS2PI, FP_CVTPD2PI, FP_CVTTPD2PI,
};
/* Element shape. */
enum sse_fp_shape { FP_PS, FP_PD, FP_SS, FP_SD };

/* r = d OP s for one instruction, under the guest mxcsr (rounding, DAZ,
 * FTZ). Returns the MXCSR exception flags raised. r may alias d. */
unsigned sse_fp(enum sse_fp_op op, enum sse_fp_shape shape, x86_xmm *r, const x86_xmm *d,
                const x86_xmm *s, uint8_t imm, uint32_t mxcsr);
/* CVT(T)SS2SI / CVT(T)SD2SI: s's low element to a 32/64-bit integer. */
unsigned sse_cvt2si(const x86_xmm *s, bool dbl, bool truncate, bool is64, uint32_t mxcsr,
                    uint64_t *out);
/* CVTSI2SS / CVTSI2SD into the low element of r (r's other lanes kept). */
unsigned sse_cvtsi2fp(x86_xmm *r, int64_t v, bool dbl, bool is64, uint32_t mxcsr);
/* (U)COMISS/SD: returns RFLAGS ZF PF CF bits (OF SF AF cleared). */
unsigned sse_comi(const x86_xmm *a, const x86_xmm *b, bool dbl, bool quiet, uint32_t mxcsr,
                  uint32_t *rflags);

#endif
