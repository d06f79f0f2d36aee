/* MMX-register instructions that are not plain "op mm, mm/m64" (those go
 * through sse.c's tables): moves, EMMS, PSHUFW, PINSRW/PEXTRW, PMOVMSKB,
 * MOVNTQ, MASKMOVQ. MMX registers alias the x87 significands (fpu.h). */
#include "accel/emu/sse_exec.h"

static void h_emms(struct x86_cpu *cpu, const struct x86_insn *in)
{
    mmx_check(cpu);
    cpu->fpu.tag_valid = 0;
    cpu->fpu.top = 0;
}

/* 0F 6E: MOVD/MOVQ mm, r/m32/64 */
static void h_movd_to_mm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned n = (in->rex & 8) ? 8 : 4;
    mmx_enter(cpu);
    mmx_set(cpu, in->reg, x86_get_rm(cpu, in, n));
}

/* 0F 7E: MOVD/MOVQ r/m32/64, mm */
static void h_movd_from_mm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned n = (in->rex & 8) ? 8 : 4;
    mmx_enter(cpu);
    x86_set_rm(cpu, in, n, mmx_get(cpu, in->reg));
}

/* 0F 6F: MOVQ mm, mm/m64 */
static void h_movq_load(struct x86_cpu *cpu, const struct x86_insn *in)
{
    mmx_enter(cpu);
    mmx_set(cpu, in->reg, mmx_get_rm(cpu, in));
}

/* 0F 7F: MOVQ mm/m64, mm; 0F E7: MOVNTQ m64, mm */
static void h_movq_store(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->op == 0xe7 && in->mod == 3)
        x86_ud(cpu);
    mmx_enter(cpu);
    uint64_t v = mmx_get(cpu, in->reg);
    if (in->mod == 3)
        mmx_set(cpu, in->rm, v);
    else
        x86_write64(cpu, x86_ea(cpu, in), v);
}

static void h_pshufw(struct x86_cpu *cpu, const struct x86_insn *in)
{
    mmx_enter(cpu);
    x86_xmm d = {0}, s = {.q = {mmx_get_rm(cpu, in)}};
    sse_pshufw(&d, &s, 8, (uint8_t)in->imm);
    mmx_set(cpu, in->reg, d.q[0]);
}

static void h_pinsrw(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint16_t v = in->mod == 3 ? (uint16_t)cpu->gpr[in->rm] : x86_read16(cpu, x86_ea(cpu, in));
    mmx_enter(cpu);
    x86_xmm d = {.q = {mmx_get(cpu, in->reg)}};
    d.w[in->imm & 3] = v;
    mmx_set(cpu, in->reg, d.q[0]);
}

static void h_pextrw(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod != 3)
        x86_ud(cpu);
    mmx_enter(cpu);
    cpu->gpr[in->reg] = (uint16_t)(mmx_get(cpu, in->rm) >> (16 * (in->imm & 3)));
}

static void h_pmovmskb(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod != 3)
        x86_ud(cpu);
    mmx_enter(cpu);
    x86_xmm s = {.q = {mmx_get(cpu, in->rm)}};
    cpu->gpr[in->reg] = sse_pmovmskb(&s, 8);
}

/* 0F F7: MASKMOVQ mm1, mm2 -> DS:rDI */
static void h_maskmovq(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod != 3)
        x86_ud(cpu);
    mmx_enter(cpu);
    uint64_t d = mmx_get(cpu, in->reg), m = mmx_get(cpu, in->rm);
    uint64_t addr = cpu->gpr[X86_RDI];
    if (in->asz == 4)
        addr = (uint32_t)addr;
    else if (in->asz == 2)
        addr = (uint16_t)addr;
    uint64_t la = addr + ((cpu->code64 && (in->seg < X86_FS || in->seg > X86_GS)) ? 0 : cpu->seg[in->seg].base);
    if (in->asz != 8)
        la = (uint32_t)la;
    for (int i = 0; i < 8; i++)
        if ((m >> (8 * i + 7)) & 1)
            x86_write8(cpu, la + i, (uint8_t)(d >> (8 * i)));
}

void mmx_register(struct x86_op_table *t)
{
    x86_op_set(t, X86_MAP_0F, X86_MP_NONE, 0x77, h_emms);
    x86_op_set(t, X86_MAP_0F, X86_MP_NONE, 0x6e, h_movd_to_mm);
    x86_op_set(t, X86_MAP_0F, X86_MP_NONE, 0x7e, h_movd_from_mm);
    x86_op_set(t, X86_MAP_0F, X86_MP_NONE, 0x6f, h_movq_load);
    x86_op_set(t, X86_MAP_0F, X86_MP_NONE, 0x7f, h_movq_store);
    x86_op_set(t, X86_MAP_0F, X86_MP_NONE, 0xe7, h_movq_store);
    x86_op_set(t, X86_MAP_0F, X86_MP_NONE, 0x70, h_pshufw);
    x86_op_set(t, X86_MAP_0F, X86_MP_NONE, 0xc4, h_pinsrw);
    x86_op_set(t, X86_MAP_0F, X86_MP_NONE, 0xc5, h_pextrw);
    x86_op_set(t, X86_MAP_0F, X86_MP_NONE, 0xd7, h_pmovmskb);
    x86_op_set(t, X86_MAP_0F, X86_MP_NONE, 0xf7, h_maskmovq);
}
