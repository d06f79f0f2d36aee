/* The 0F 38 and 0F 3A maps: SSSE3 (with MMX forms), SSE4.1 and SSE4.2
 * (PCMPGTQ, CRC32, PCMPxSTRx), PCLMULQDQ. */
#include "accel/emu/sse_exec.h"

static sse_int_fn *const int_0f38[256] = {
    [0x00] = sse_pshufb, [0x01] = sse_phaddw, [0x02] = sse_phaddd, [0x03] = sse_phaddsw,
    [0x04] = sse_pmaddubsw, [0x05] = sse_phsubw, [0x06] = sse_phsubd, [0x07] = sse_phsubsw,
    [0x08] = sse_psignb, [0x09] = sse_psignw, [0x0a] = sse_psignd, [0x0b] = sse_pmulhrsw,
    [0x1c] = sse_pabsb, [0x1d] = sse_pabsw, [0x1e] = sse_pabsd,
    /* SSE4.1 / 4.2: XMM only */
    [0x28] = sse_pmuldq, [0x29] = sse_pcmpeqq, [0x2b] = sse_packusdw, [0x37] = sse_pcmpgtq,
    [0x38] = sse_pminsb, [0x39] = sse_pminsd, [0x3a] = sse_pminuw, [0x3b] = sse_pminud,
    [0x3c] = sse_pmaxsb, [0x3d] = sse_pmaxsd, [0x3e] = sse_pmaxuw, [0x3f] = sse_pmaxud,
    [0x40] = sse_pmulld, [0x41] = sse_phminposuw,
};

static void h_xmm_0f38(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_xmm s;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, 16, true);
    int_0f38[in->op](sse_reg(cpu, in->reg), &s, 16, 0);
}

static void h_mmx_0f38(struct x86_cpu *cpu, const struct x86_insn *in)
{
    mmx_enter(cpu);
    x86_xmm d = {.q = {mmx_get(cpu, in->reg)}}, s = {.q = {mmx_get_rm(cpu, in)}};
    int_0f38[in->op](&d, &s, 8, 0);
    mmx_set(cpu, in->reg, d.q[0]);
}

/* PMOVSX / PMOVZX: source is the low 2, 4 or 8 bytes (memory unaligned). */
static sse_int_fn *const pmovx[2][6] = {
    { sse_pmovsxbw, sse_pmovsxbd, sse_pmovsxbq, sse_pmovsxwd, sse_pmovsxwq, sse_pmovsxdq },
    { sse_pmovzxbw, sse_pmovzxbd, sse_pmovzxbq, sse_pmovzxwd, sse_pmovzxwq, sse_pmovzxdq },
};

static void h_pmovx(struct x86_cpu *cpu, const struct x86_insn *in)
{
    static const uint8_t size[6] = { 8, 4, 2, 8, 4, 8 };
    unsigned k = in->op & 7;
    x86_xmm s;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, size[k], false);
    pmovx[in->op >= 0x30][k](sse_reg(cpu, in->reg), &s, 16, 0);
}

static void h_blendv(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_xmm s;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, 16, true);
    x86_xmm *d = sse_reg(cpu, in->reg), *m = sse_reg(cpu, 0);
    if (in->op == 0x10)
        sse_pblendvb(d, &s, m);
    else if (in->op == 0x14)
        sse_blendvps(d, &s, m);
    else
        sse_blendvpd(d, &s, m);
}

static void h_ptest(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_xmm s;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, 16, true);
    unsigned r = sse_ptest(sse_reg(cpu, in->reg), &s);
    x86_set_flags(cpu, ((r & 1) ? X86_ZF : 0) | ((r & 2) ? X86_CF : 0), X86_ARITH_FLAGS);
}

static void h_movntdqa(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_xmm s;
    if (in->mod == 3)
        x86_ud(cpu);
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, 16, true);
    *sse_reg(cpu, in->reg) = s;
}

/* F2 0F 38 F0/F1: CRC32 r32/64, r/m8/16/32/64 */
static void h_crc32(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned n = in->op == 0xf0 ? 1 : (in->rex & 8) ? 8 : in->osz == 2 ? 2 : 4;
    uint64_t v = x86_get_rm(cpu, in, n);
    uint32_t crc = sse_crc32c((uint32_t)cpu->gpr[in->reg], v, n);
    cpu->gpr[in->reg] = crc;
}

/* ---- 0F 3A ---- */

static sse_int_fn *const int_0f3a[256] = {
    [0x0c] = sse_blendps, [0x0d] = sse_blendpd, [0x0e] = sse_pblendw, [0x0f] = sse_palignr,
    [0x42] = sse_mpsadbw, [0x44] = sse_pclmulqdq,
};

static void h_xmm_0f3a(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_xmm s;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, 16, true);
    int_0f3a[in->op](sse_reg(cpu, in->reg), &s, 16, (uint8_t)in->imm);
}

static void h_palignr_mmx(struct x86_cpu *cpu, const struct x86_insn *in)
{
    mmx_enter(cpu);
    x86_xmm d = {.q = {mmx_get(cpu, in->reg)}}, s = {.q = {mmx_get_rm(cpu, in)}};
    sse_palignr(&d, &s, 8, (uint8_t)in->imm);
    mmx_set(cpu, in->reg, d.q[0]);
}

static void h_round(struct x86_cpu *cpu, const struct x86_insn *in)
{
    static const uint8_t shape[4] = { FP_PS, FP_PD, FP_SS, FP_SD };
    static const uint8_t size[4] = { 16, 16, 4, 8 };
    unsigned k = in->op - 0x08;
    x86_xmm s, r;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, size[k], size[k] == 16);
    x86_xmm *d = sse_reg(cpu, in->reg);
    sse_fp_commit(cpu, sse_fp(FP_ROUND, shape[k], &r, d, &s, (uint8_t)in->imm, cpu->fpu.mxcsr));
    *d = r;
}

static void h_dp(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_xmm s, r;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, 16, true);
    x86_xmm *d = sse_reg(cpu, in->reg);
    sse_fp_commit(cpu, sse_fp(FP_DP, in->op == 0x40 ? FP_PS : FP_PD, &r, d, &s,
                              (uint8_t)in->imm, cpu->fpu.mxcsr));
    *d = r;
}

/* PEXTRB/W/D/Q, EXTRACTPS: to a register (zero-extended) or memory. */
static void h_pextr(struct x86_cpu *cpu, const struct x86_insn *in)
{
    sse_check(cpu);
    const x86_xmm *s = sse_reg(cpu, in->reg);
    unsigned n;
    uint64_t v;
    switch (in->op) {
    case 0x14: n = 1; v = s->b[in->imm & 15]; break;
    case 0x15: n = 2; v = s->w[in->imm & 7]; break;
    case 0x16:
        if (in->rex & 8) { n = 8; v = s->q[in->imm & 1]; }
        else { n = 4; v = s->d[in->imm & 3]; }
        break;
    default: n = 4; v = s->d[in->imm & 3]; break;
    }
    if (in->mod == 3)
        cpu->gpr[in->rm] = v;
    else
        x86_write(cpu, x86_ea(cpu, in), v, n);
}

static void h_pinsr(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned n = in->op == 0x20 ? 1 : (in->rex & 8) ? 8 : 4;
    sse_check(cpu);
    uint64_t v = in->mod == 3 ? cpu->gpr[in->rm] : x86_read(cpu, x86_ea(cpu, in), n);
    x86_xmm *d = sse_reg(cpu, in->reg);
    if (n == 1)
        d->b[in->imm & 15] = (uint8_t)v;
    else if (n == 4)
        d->d[in->imm & 3] = (uint32_t)v;
    else
        d->q[in->imm & 1] = v;
}

static void h_insertps(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_xmm s;
    uint8_t imm = (uint8_t)in->imm;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, 4, false);
    if (in->mod != 3)
        imm &= 0x3f;               /* memory source: the dword itself */
    sse_insertps(sse_reg(cpu, in->reg), &s, 16, imm);
}

/* 66 0F 3A 60..63: PCMPESTRM, PCMPESTRI, PCMPISTRM, PCMPISTRI */
static void h_pcmpstr(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_xmm s;
    uint32_t fl;
    uint8_t imm = (uint8_t)in->imm;
    bool implicit = in->op & 2, index = in->op & 1;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, 16, false);
    int64_t la = (int64_t)cpu->gpr[X86_RAX], lb = (int64_t)cpu->gpr[X86_RDX];
    if (!(in->rex & 8)) {
        la = (int32_t)la;
        lb = (int32_t)lb;
    }
    uint32_t res = sse_pcmpstr(sse_reg(cpu, in->reg), &s, la, lb, implicit, imm, &fl);
    if (index)
        cpu->gpr[X86_RCX] = sse_pcmpstr_index(res, imm);
    else
        sse_pcmpstr_mask(sse_reg(cpu, 0), res, imm);
    x86_set_flags(cpu, fl, X86_ARITH_FLAGS);
}

void sse4_register(struct x86_op_table *t)
{
    for (int op = 0; op < 256; op++) {
        if (int_0f38[op]) {
            x86_op_set(t, X86_MAP_0F38, X86_MP_66, op, h_xmm_0f38);
            if (op < 0x20)
                x86_op_set(t, X86_MAP_0F38, X86_MP_NONE, op, h_mmx_0f38);
        }
        if (int_0f3a[op])
            x86_op_set(t, X86_MAP_0F3A, X86_MP_66, op, h_xmm_0f3a);
    }
    for (int op = 0; op < 6; op++) {
        x86_op_set(t, X86_MAP_0F38, X86_MP_66, 0x20 + op, h_pmovx);
        x86_op_set(t, X86_MAP_0F38, X86_MP_66, 0x30 + op, h_pmovx);
    }
    x86_op_set(t, X86_MAP_0F38, X86_MP_66, 0x10, h_blendv);
    x86_op_set(t, X86_MAP_0F38, X86_MP_66, 0x14, h_blendv);
    x86_op_set(t, X86_MAP_0F38, X86_MP_66, 0x15, h_blendv);
    x86_op_set(t, X86_MAP_0F38, X86_MP_66, 0x17, h_ptest);
    x86_op_set(t, X86_MAP_0F38, X86_MP_66, 0x2a, h_movntdqa);
    x86_op_set(t, X86_MAP_0F38, X86_MP_F2, 0xf0, h_crc32);
    x86_op_set(t, X86_MAP_0F38, X86_MP_F2, 0xf1, h_crc32);

    x86_op_set(t, X86_MAP_0F3A, X86_MP_NONE, 0x0f, h_palignr_mmx);
    for (int op = 0x08; op <= 0x0b; op++)
        x86_op_set(t, X86_MAP_0F3A, X86_MP_66, op, h_round);
    for (int op = 0x14; op <= 0x17; op++)
        x86_op_set(t, X86_MAP_0F3A, X86_MP_66, op, h_pextr);
    x86_op_set(t, X86_MAP_0F3A, X86_MP_66, 0x20, h_pinsr);
    x86_op_set(t, X86_MAP_0F3A, X86_MP_66, 0x21, h_insertps);
    x86_op_set(t, X86_MAP_0F3A, X86_MP_66, 0x22, h_pinsr);
    x86_op_set(t, X86_MAP_0F3A, X86_MP_66, 0x40, h_dp);
    x86_op_set(t, X86_MAP_0F3A, X86_MP_66, 0x41, h_dp);
    for (int op = 0x60; op <= 0x63; op++)
        x86_op_set(t, X86_MAP_0F3A, X86_MP_66, op, h_pcmpstr);
}
