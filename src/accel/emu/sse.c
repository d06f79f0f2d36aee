/* SSE, SSE2 and SSE3 instructions of the 0F map: moves, logic, packed
 * integer (XMM and, through the same tables, MMX forms), floating-point
 * arithmetic, compares and conversions. The computations are in sse_int.c
 * and sse_fp.c; this file fetches operands and writes results. */
#include "accel/emu/sse_exec.h"

/* ---- packed integer ops sharing one shape: P<op> (x)mm, (x)mm/m ---- */

static sse_int_fn *const int_0f[256] = {
    [0x60] = sse_punpcklbw, [0x61] = sse_punpcklwd, [0x62] = sse_punpckldq,
    [0x63] = sse_packsswb, [0x64] = sse_pcmpgtb, [0x65] = sse_pcmpgtw, [0x66] = sse_pcmpgtd,
    [0x67] = sse_packuswb, [0x68] = sse_punpckhbw, [0x69] = sse_punpckhwd,
    [0x6a] = sse_punpckhdq, [0x6b] = sse_packssdw, [0x6c] = sse_punpcklqdq,
    [0x6d] = sse_punpckhqdq, [0x74] = sse_pcmpeqb, [0x75] = sse_pcmpeqw, [0x76] = sse_pcmpeqd,
    [0xd1] = sse_psrlw, [0xd2] = sse_psrld, [0xd3] = sse_psrlq, [0xd4] = sse_paddq,
    [0xd5] = sse_pmullw, [0xd8] = sse_psubusb, [0xd9] = sse_psubusw, [0xda] = sse_pminub,
    [0xdb] = sse_pand, [0xdc] = sse_paddusb, [0xdd] = sse_paddusw, [0xde] = sse_pmaxub,
    [0xdf] = sse_pandn, [0xe0] = sse_pavgb, [0xe1] = sse_psraw, [0xe2] = sse_psrad,
    [0xe3] = sse_pavgw, [0xe4] = sse_pmulhuw, [0xe5] = sse_pmulhw, [0xe8] = sse_psubsb,
    [0xe9] = sse_psubsw, [0xea] = sse_pminsw, [0xeb] = sse_por, [0xec] = sse_paddsb,
    [0xed] = sse_paddsw, [0xee] = sse_pmaxsw, [0xef] = sse_pxor, [0xf1] = sse_psllw,
    [0xf2] = sse_pslld, [0xf3] = sse_psllq, [0xf4] = sse_pmuludq, [0xf5] = sse_pmaddwd,
    [0xf6] = sse_psadbw, [0xf8] = sse_psubb, [0xf9] = sse_psubw, [0xfa] = sse_psubd,
    [0xfb] = sse_psubq, [0xfc] = sse_paddb, [0xfd] = sse_paddw, [0xfe] = sse_paddd,
    /* float-typed logic and unpacks: same shape, 16 bytes only */
    [0x14] = sse_unpcklps, [0x15] = sse_unpckhps, [0x54] = sse_pand, [0x55] = sse_pandn,
    [0x56] = sse_por, [0x57] = sse_pxor,
};

static void xmm_int(struct x86_cpu *cpu, const struct x86_insn *in, sse_int_fn *fn, bool align)
{
    x86_xmm s;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, 16, align);
    fn(sse_reg(cpu, in->reg), &s, 16, (uint8_t)in->imm);
}

static void h_xmm_int(struct x86_cpu *cpu, const struct x86_insn *in)
{
    xmm_int(cpu, in, int_0f[in->op], true);
}

static void h_unpckpd(struct x86_cpu *cpu, const struct x86_insn *in)
{
    xmm_int(cpu, in, in->op == 0x14 ? sse_unpcklpd : sse_unpckhpd, true);
}

static void h_mmx_int(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_xmm d = {0}, s = {0};
    mmx_enter(cpu);
    s.q[0] = mmx_get_rm(cpu, in);
    d.q[0] = mmx_get(cpu, in->reg);
    int_0f[in->op](&d, &s, 8, (uint8_t)in->imm);
    mmx_set(cpu, in->reg, d.q[0]);
}

/* 0F 71/72/73: shift (x)mm by imm8; ModRM.reg picks the op. */
static sse_int_fn *const shift_grp[3][8] = {
    { [2] = sse_psrlw_imm, [4] = sse_psraw_imm, [6] = sse_psllw_imm },
    { [2] = sse_psrld_imm, [4] = sse_psrad_imm, [6] = sse_pslld_imm },
    { [2] = sse_psrlq_imm, [3] = sse_psrldq_imm, [6] = sse_psllq_imm, [7] = sse_pslldq_imm },
};

static void h_xmm_shift_imm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    sse_int_fn *fn = shift_grp[in->op - 0x71][in->reg & 7];
    if (in->mod != 3 || !fn)
        x86_ud(cpu);
    sse_check(cpu);
    fn(sse_reg(cpu, in->rm), NULL, 16, (uint8_t)in->imm);
}

static void h_mmx_shift_imm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned r = in->reg & 7;
    sse_int_fn *fn = shift_grp[in->op - 0x71][r];
    if (in->mod != 3 || !fn || r == 3 || r == 7)
        x86_ud(cpu);
    mmx_enter(cpu);
    x86_xmm d = {.q = {mmx_get(cpu, in->rm)}};
    fn(&d, NULL, 8, (uint8_t)in->imm);
    mmx_set(cpu, in->rm, d.q[0]);
}

/* ---- moves ---- */

/* MOVUPS/MOVAPS/MOVDQA/MOVDQU/LDDQU/MOVUPD/MOVAPD loads and stores. */
static void mov_load(struct x86_cpu *cpu, const struct x86_insn *in, bool align)
{
    x86_xmm v;
    sse_check(cpu);
    sse_get_rm(cpu, in, &v, 16, align);
    *sse_reg(cpu, in->reg) = v;
}

static void mov_store(struct x86_cpu *cpu, const struct x86_insn *in, bool align)
{
    sse_check(cpu);
    x86_xmm v = *sse_reg(cpu, in->reg);
    if (in->mod == 3)
        *sse_reg(cpu, in->rm) = v;
    else
        sse_put_mem(cpu, in, &v, 16, align);
}

static void h_movu_load(struct x86_cpu *cpu, const struct x86_insn *in) { mov_load(cpu, in, false); }
static void h_mova_load(struct x86_cpu *cpu, const struct x86_insn *in) { mov_load(cpu, in, true); }
static void h_movu_store(struct x86_cpu *cpu, const struct x86_insn *in) { mov_store(cpu, in, false); }
static void h_mova_store(struct x86_cpu *cpu, const struct x86_insn *in) { mov_store(cpu, in, true); }

/* MOVNTPS/PD, MOVNTDQ: memory only. */
static void h_movnt(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod == 3)
        x86_ud(cpu);
    mov_store(cpu, in, true);
}

static void h_lddqu(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod == 3)
        x86_ud(cpu);
    mov_load(cpu, in, false);
}

/* MOVSS / MOVSD: n = 4 or 8. */
static void movs_load(struct x86_cpu *cpu, const struct x86_insn *in, unsigned n)
{
    sse_check(cpu);
    x86_xmm *d = sse_reg(cpu, in->reg);
    if (in->mod == 3) {
        memcpy(d, sse_reg(cpu, in->rm), n);
    } else {
        x86_xmm v;
        sse_get_rm(cpu, in, &v, n, false);
        *d = v;
    }
}

static void movs_store(struct x86_cpu *cpu, const struct x86_insn *in, unsigned n)
{
    sse_check(cpu);
    x86_xmm v = *sse_reg(cpu, in->reg);
    if (in->mod == 3)
        memcpy(sse_reg(cpu, in->rm), &v, n);
    else
        sse_put_mem(cpu, in, &v, n, false);
}

static void h_movss_load(struct x86_cpu *cpu, const struct x86_insn *in) { movs_load(cpu, in, 4); }
static void h_movsd_load(struct x86_cpu *cpu, const struct x86_insn *in) { movs_load(cpu, in, 8); }
static void h_movss_store(struct x86_cpu *cpu, const struct x86_insn *in) { movs_store(cpu, in, 4); }
static void h_movsd_store(struct x86_cpu *cpu, const struct x86_insn *in) { movs_store(cpu, in, 8); }

/* 0F 12 / 0F 16 (no prefix and 66): MOVLPS/MOVHLPS/MOVLPD, MOVHPS/MOVLHPS/MOVHPD. */
static void h_movlh_load(struct x86_cpu *cpu, const struct x86_insn *in)
{
    bool high = in->op == 0x16, pd = in->pfx & X86_PFX_66;
    sse_check(cpu);
    x86_xmm *d = sse_reg(cpu, in->reg);
    if (in->mod == 3) {
        if (pd)
            x86_ud(cpu);
        const x86_xmm *s = sse_reg(cpu, in->rm);
        if (high)
            d->q[1] = s->q[0];     /* MOVLHPS */
        else
            d->q[0] = s->q[1];     /* MOVHLPS */
        return;
    }
    d->q[high] = x86_read64(cpu, x86_ea(cpu, in));
}

static void h_movlh_store(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod == 3)
        x86_ud(cpu);
    sse_check(cpu);
    x86_write64(cpu, x86_ea(cpu, in), sse_reg(cpu, in->reg)->q[in->op == 0x17]);
}

/* F2 0F 12 MOVDDUP (m64) / F3 0F 12 MOVSLDUP / F3 0F 16 MOVSHDUP */
static void h_movddup(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_xmm s;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, 8, false);
    sse_movddup(sse_reg(cpu, in->reg), &s, 16, 0);
}

static void h_movsdup(struct x86_cpu *cpu, const struct x86_insn *in)
{
    xmm_int(cpu, in, in->op == 0x12 ? sse_movsldup : sse_movshdup, true);
}

/* 66 0F 6E: MOVD/MOVQ xmm, r/m32/64 */
static void h_movd_to_xmm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned n = (in->rex & 8) ? 8 : 4;
    sse_check(cpu);
    x86_xmm v = {.q = {x86_get_rm(cpu, in, n), 0}};
    *sse_reg(cpu, in->reg) = v;
}

/* 66 0F 7E: MOVD/MOVQ r/m32/64, xmm */
static void h_movd_from_xmm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned n = (in->rex & 8) ? 8 : 4;
    sse_check(cpu);
    x86_set_rm(cpu, in, n, sse_reg(cpu, in->reg)->q[0]);
}

/* F3 0F 7E: MOVQ xmm, xmm/m64 (upper half zeroed) */
static void h_movq_load(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_xmm v;
    sse_check(cpu);
    sse_get_rm(cpu, in, &v, 8, false);
    v.q[1] = 0;
    *sse_reg(cpu, in->reg) = v;
}

/* 66 0F D6: MOVQ xmm/m64, xmm */
static void h_movq_store(struct x86_cpu *cpu, const struct x86_insn *in)
{
    sse_check(cpu);
    x86_xmm v = {.q = {sse_reg(cpu, in->reg)->q[0], 0}};
    if (in->mod == 3)
        *sse_reg(cpu, in->rm) = v;
    else
        sse_put_mem(cpu, in, &v, 8, false);
}

/* F3 0F D6 MOVQ2DQ xmm, mm / F2 0F D6 MOVDQ2Q mm, xmm */
static void h_movq2dq(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod != 3)
        x86_ud(cpu);
    sse_check(cpu);
    mmx_enter(cpu);
    x86_xmm v = {.q = {mmx_get(cpu, in->rm), 0}};
    *sse_reg(cpu, in->reg) = v;
}

static void h_movdq2q(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod != 3)
        x86_ud(cpu);
    sse_check(cpu);
    mmx_enter(cpu);
    mmx_set(cpu, in->reg, sse_reg(cpu, in->rm)->q[0]);
}

/* 0F C3: MOVNTI m32/64, r32/64 */
static void h_movnti(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned n = (in->rex & 8) ? 8 : 4;
    if (in->mod == 3)
        x86_ud(cpu);
    x86_write(cpu, x86_ea(cpu, in), x86_get_reg(cpu, in, in->reg, n), n);
}

static void h_movmsk(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod != 3)
        x86_ud(cpu);
    sse_check(cpu);
    const x86_xmm *s = sse_reg(cpu, in->rm);
    uint32_t m;
    if (in->op == 0xd7)
        m = sse_pmovmskb(s, 16);
    else
        m = (in->pfx & X86_PFX_66) ? sse_movmskpd(s) : sse_movmskps(s);
    cpu->gpr[in->reg] = m;
}

/* ---- shuffles and word insert/extract ---- */

static void h_pshufd(struct x86_cpu *cpu, const struct x86_insn *in) { xmm_int(cpu, in, sse_pshufd, true); }
static void h_pshufhw(struct x86_cpu *cpu, const struct x86_insn *in) { xmm_int(cpu, in, sse_pshufhw, true); }
static void h_pshuflw(struct x86_cpu *cpu, const struct x86_insn *in) { xmm_int(cpu, in, sse_pshuflw, true); }

static void h_shufp(struct x86_cpu *cpu, const struct x86_insn *in)
{
    xmm_int(cpu, in, (in->pfx & X86_PFX_66) ? sse_shufpd : sse_shufps, true);
}

static void h_pinsrw(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint16_t v = in->mod == 3 ? (uint16_t)cpu->gpr[in->rm] : x86_read16(cpu, x86_ea(cpu, in));
    sse_check(cpu);
    sse_reg(cpu, in->reg)->w[in->imm & 7] = v;
}

static void h_pextrw(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod != 3)
        x86_ud(cpu);
    sse_check(cpu);
    cpu->gpr[in->reg] = sse_reg(cpu, in->rm)->w[in->imm & 7];
}

/* 66 0F F7: MASKMOVDQU xmm1, xmm2: byte stores to DS:rDI where xmm2's
 * byte has its top bit set. */
static void h_maskmovdqu(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod != 3)
        x86_ud(cpu);
    sse_check(cpu);
    const x86_xmm *d = sse_reg(cpu, in->reg), *m = sse_reg(cpu, in->rm);
    uint64_t addr = cpu->gpr[X86_RDI];
    if (in->asz == 4)
        addr = (uint32_t)addr;
    else if (in->asz == 2)
        addr = (uint16_t)addr;
    uint64_t la = addr + ((cpu->code64 && (in->seg < X86_FS || in->seg > X86_GS)) ? 0 : cpu->seg[in->seg].base);
    if (in->asz != 8)
        la = (uint32_t)la;
    for (int i = 0; i < 16; i++)
        if (m->b[i] & 0x80)
            x86_write8(cpu, la + i, d->b[i]);
}

/* ---- floating point ---- */

static void fp_exec(struct x86_cpu *cpu, const struct x86_insn *in, enum sse_fp_op op,
                    enum sse_fp_shape shape)
{
    static const uint8_t size[] = { [FP_PS] = 16, [FP_PD] = 16, [FP_SS] = 4, [FP_SD] = 8 };
    x86_xmm s, r;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, size[shape], size[shape] == 16);
    x86_xmm *d = sse_reg(cpu, in->reg);
    sse_fp_commit(cpu, sse_fp(op, shape, &r, d, &s, (uint8_t)in->imm, cpu->fpu.mxcsr));
    *d = r;
}

static const uint8_t fp_op_0f[256] = {
    [0x51] = FP_SQRT, [0x52] = FP_RSQRT, [0x53] = FP_RCP, [0x58] = FP_ADD, [0x59] = FP_MUL,
    [0x5c] = FP_SUB, [0x5d] = FP_MIN, [0x5e] = FP_DIV, [0x5f] = FP_MAX, [0xc2] = FP_CMP,
    [0x7c] = FP_HADD, [0x7d] = FP_HSUB, [0xd0] = FP_ADDSUB,
};

static void h_fp_ps(struct x86_cpu *cpu, const struct x86_insn *in) { fp_exec(cpu, in, fp_op_0f[in->op], FP_PS); }
static void h_fp_pd(struct x86_cpu *cpu, const struct x86_insn *in) { fp_exec(cpu, in, fp_op_0f[in->op], FP_PD); }
static void h_fp_ss(struct x86_cpu *cpu, const struct x86_insn *in) { fp_exec(cpu, in, fp_op_0f[in->op], FP_SS); }
static void h_fp_sd(struct x86_cpu *cpu, const struct x86_insn *in) { fp_exec(cpu, in, fp_op_0f[in->op], FP_SD); }

/* 0F 5A / 5B / E6: xmm <- xmm conversions; the column picks the op. */
static void cvt_exec(struct x86_cpu *cpu, const struct x86_insn *in, enum sse_fp_op op,
                     unsigned n)
{
    x86_xmm s, r;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, n, n == 16);
    x86_xmm *d = sse_reg(cpu, in->reg);
    sse_fp_commit(cpu, sse_fp(op, FP_PS, &r, d, &s, 0, cpu->fpu.mxcsr));
    *d = r;
}

static void h_cvtps2pd(struct x86_cpu *cpu, const struct x86_insn *in) { cvt_exec(cpu, in, FP_CVTPS2PD, 8); }
static void h_cvtpd2ps(struct x86_cpu *cpu, const struct x86_insn *in) { cvt_exec(cpu, in, FP_CVTPD2PS, 16); }
static void h_cvtss2sd(struct x86_cpu *cpu, const struct x86_insn *in) { cvt_exec(cpu, in, FP_CVTSS2SD, 4); }
static void h_cvtsd2ss(struct x86_cpu *cpu, const struct x86_insn *in) { cvt_exec(cpu, in, FP_CVTSD2SS, 8); }
static void h_cvtdq2ps(struct x86_cpu *cpu, const struct x86_insn *in) { cvt_exec(cpu, in, FP_CVTDQ2PS, 16); }
static void h_cvtps2dq(struct x86_cpu *cpu, const struct x86_insn *in) { cvt_exec(cpu, in, FP_CVTPS2DQ, 16); }
static void h_cvttps2dq(struct x86_cpu *cpu, const struct x86_insn *in) { cvt_exec(cpu, in, FP_CVTTPS2DQ, 16); }
static void h_cvtdq2pd(struct x86_cpu *cpu, const struct x86_insn *in) { cvt_exec(cpu, in, FP_CVTDQ2PD, 8); }
static void h_cvtpd2dq(struct x86_cpu *cpu, const struct x86_insn *in) { cvt_exec(cpu, in, FP_CVTPD2DQ, 16); }
static void h_cvttpd2dq(struct x86_cpu *cpu, const struct x86_insn *in) { cvt_exec(cpu, in, FP_CVTTPD2DQ, 16); }

/* F3/F2 0F 2A: CVTSI2SS/SD xmm, r/m32/64 */
static void cvtsi2fp(struct x86_cpu *cpu, const struct x86_insn *in, bool dbl)
{
    bool is64 = in->rex & 8;
    sse_check(cpu);
    int64_t v = (int64_t)x86_get_rm(cpu, in, is64 ? 8 : 4);
    x86_xmm r = *sse_reg(cpu, in->reg);
    sse_fp_commit(cpu, sse_cvtsi2fp(&r, v, dbl, is64, cpu->fpu.mxcsr));
    *sse_reg(cpu, in->reg) = r;
}

static void h_cvtsi2ss(struct x86_cpu *cpu, const struct x86_insn *in) { cvtsi2fp(cpu, in, false); }
static void h_cvtsi2sd(struct x86_cpu *cpu, const struct x86_insn *in) { cvtsi2fp(cpu, in, true); }

/* F3/F2 0F 2C/2D: CVT(T)SS2SI / CVT(T)SD2SI r32/64, xmm/m */
static void cvt2si(struct x86_cpu *cpu, const struct x86_insn *in, bool dbl)
{
    x86_xmm s;
    uint64_t v;
    bool is64 = in->rex & 8;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, dbl ? 8 : 4, false);
    sse_fp_commit(cpu, sse_cvt2si(&s, dbl, in->op == 0x2c, is64, cpu->fpu.mxcsr, &v));
    cpu->gpr[in->reg] = is64 ? v : (uint32_t)v;
}

static void h_cvtss2si(struct x86_cpu *cpu, const struct x86_insn *in) { cvt2si(cpu, in, false); }
static void h_cvtsd2si(struct x86_cpu *cpu, const struct x86_insn *in) { cvt2si(cpu, in, true); }

/* 0F 2A (none/66): CVTPI2PS / CVTPI2PD xmm, mm/m64 */
static void h_cvtpi2p(struct x86_cpu *cpu, const struct x86_insn *in)
{
    bool pd = in->pfx & X86_PFX_66;
    x86_xmm s = {0}, r;
    sse_check(cpu);
    if (in->mod == 3) {
        mmx_enter(cpu);
        s.q[0] = mmx_get(cpu, in->rm);
    } else {
        s.q[0] = x86_read64(cpu, x86_ea(cpu, in));
    }
    x86_xmm *d = sse_reg(cpu, in->reg);
    sse_fp_commit(cpu, sse_fp(pd ? FP_CVTPI2PD : FP_CVTPI2PS, FP_PS, &r, d, &s, 0,
                              cpu->fpu.mxcsr));
    *d = r;
}

/* 0F 2C/2D (none/66): CVT(T)PS2PI mm, xmm/m64; CVT(T)PD2PI mm, xmm/m128 */
static void h_cvtp2pi(struct x86_cpu *cpu, const struct x86_insn *in)
{
    bool pd = in->pfx & X86_PFX_66, t = in->op == 0x2c;
    x86_xmm s, r;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, pd ? 16 : 8, pd);
    mmx_enter(cpu);
    enum sse_fp_op op = pd ? (t ? FP_CVTTPD2PI : FP_CVTPD2PI) : (t ? FP_CVTTPS2PI : FP_CVTPS2PI);
    sse_fp_commit(cpu, sse_fp(op, FP_PS, &r, &s, &s, 0, cpu->fpu.mxcsr));
    mmx_set(cpu, in->reg, r.q[0]);
}

/* 0F 2E/2F: (U)COMISS / (U)COMISD */
static void h_comi(struct x86_cpu *cpu, const struct x86_insn *in)
{
    bool dbl = in->pfx & X86_PFX_66;
    x86_xmm s;
    uint32_t fl;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, dbl ? 8 : 4, false);
    sse_fp_commit(cpu, sse_comi(sse_reg(cpu, in->reg), &s, dbl, in->op == 0x2e,
                                cpu->fpu.mxcsr, &fl));
    x86_set_flags(cpu, fl, X86_ARITH_FLAGS);
}

/* ---- registration ---- */

static void set4(struct x86_op_table *t, int op, x86_handler *none, x86_handler *p66,
                 x86_handler *f3, x86_handler *f2)
{
    if (none)
        x86_op_set(t, X86_MAP_0F, X86_MP_NONE, op, none);
    if (p66)
        x86_op_set(t, X86_MAP_0F, X86_MP_66, op, p66);
    if (f3)
        x86_op_set(t, X86_MAP_0F, X86_MP_F3, op, f3);
    if (f2)
        x86_op_set(t, X86_MAP_0F, X86_MP_F2, op, f2);
}

void sse_register(struct x86_op_table *t)
{
    for (int op = 0; op < 256; op++) {
        if (!int_0f[op])
            continue;
        if (op >= 0x60)
            set4(t, op, op == 0x6c || op == 0x6d ? NULL : h_mmx_int, h_xmm_int, NULL, NULL);
        else
            set4(t, op, h_xmm_int, h_xmm_int, NULL, NULL);
    }
    set4(t, 0x14, h_xmm_int, h_unpckpd, NULL, NULL);
    set4(t, 0x15, h_xmm_int, h_unpckpd, NULL, NULL);
    for (int op = 0x71; op <= 0x73; op++)
        set4(t, op, h_mmx_shift_imm, h_xmm_shift_imm, NULL, NULL);

    set4(t, 0x10, h_movu_load, h_movu_load, h_movss_load, h_movsd_load);
    set4(t, 0x11, h_movu_store, h_movu_store, h_movss_store, h_movsd_store);
    set4(t, 0x12, h_movlh_load, h_movlh_load, h_movsdup, h_movddup);
    set4(t, 0x13, h_movlh_store, h_movlh_store, NULL, NULL);
    set4(t, 0x16, h_movlh_load, h_movlh_load, h_movsdup, NULL);
    set4(t, 0x17, h_movlh_store, h_movlh_store, NULL, NULL);
    set4(t, 0x28, h_mova_load, h_mova_load, NULL, NULL);
    set4(t, 0x29, h_mova_store, h_mova_store, NULL, NULL);
    set4(t, 0x2a, h_cvtpi2p, h_cvtpi2p, h_cvtsi2ss, h_cvtsi2sd);
    set4(t, 0x2b, h_movnt, h_movnt, NULL, NULL);
    set4(t, 0x2c, h_cvtp2pi, h_cvtp2pi, h_cvtss2si, h_cvtsd2si);
    set4(t, 0x2d, h_cvtp2pi, h_cvtp2pi, h_cvtss2si, h_cvtsd2si);
    set4(t, 0x2e, h_comi, h_comi, NULL, NULL);
    set4(t, 0x2f, h_comi, h_comi, NULL, NULL);
    set4(t, 0x50, h_movmsk, h_movmsk, NULL, NULL);
    set4(t, 0x51, h_fp_ps, h_fp_pd, h_fp_ss, h_fp_sd);
    set4(t, 0x52, h_fp_ps, NULL, h_fp_ss, NULL);
    set4(t, 0x53, h_fp_ps, NULL, h_fp_ss, NULL);
    for (int op = 0x58; op <= 0x5f; op++)
        if (fp_op_0f[op] || op == 0x58)
            set4(t, op, h_fp_ps, h_fp_pd, h_fp_ss, h_fp_sd);
    set4(t, 0x5a, h_cvtps2pd, h_cvtpd2ps, h_cvtss2sd, h_cvtsd2ss);
    set4(t, 0x5b, h_cvtdq2ps, h_cvtps2dq, h_cvttps2dq, NULL);
    set4(t, 0x6e, NULL, h_movd_to_xmm, NULL, NULL);
    set4(t, 0x6f, NULL, h_mova_load, h_movu_load, NULL);
    set4(t, 0x70, NULL, h_pshufd, h_pshufhw, h_pshuflw);
    set4(t, 0x7c, NULL, h_fp_pd, NULL, h_fp_ps);
    set4(t, 0x7d, NULL, h_fp_pd, NULL, h_fp_ps);
    set4(t, 0x7e, NULL, h_movd_from_xmm, h_movq_load, NULL);
    set4(t, 0x7f, NULL, h_mova_store, h_movu_store, NULL);
    set4(t, 0xc2, h_fp_ps, h_fp_pd, h_fp_ss, h_fp_sd);
    set4(t, 0xc3, h_movnti, NULL, NULL, NULL);
    set4(t, 0xc4, NULL, h_pinsrw, NULL, NULL);
    set4(t, 0xc5, NULL, h_pextrw, NULL, NULL);
    set4(t, 0xc6, h_shufp, h_shufp, NULL, NULL);
    set4(t, 0xd0, NULL, h_fp_pd, NULL, h_fp_ps);
    set4(t, 0xd6, NULL, h_movq_store, h_movq2dq, h_movdq2q);
    set4(t, 0xd7, NULL, h_movmsk, NULL, NULL);
    set4(t, 0xe6, NULL, h_cvttpd2dq, h_cvtdq2pd, h_cvtpd2dq);
    set4(t, 0xe7, NULL, h_movnt, NULL, NULL);
    set4(t, 0xf0, NULL, NULL, NULL, h_lddqu);
    set4(t, 0xf7, NULL, h_maskmovdqu, NULL, NULL);
}
