/* JIT templates for data movement: MOV forms, LEA, MOVZX/MOVSX/MOVSXD,
 * PUSH/POP of registers, PUSH imm and r/m, LEAVE, CBW..CQO, CMOVcc, SETcc,
 * BSWAP, NOP. None of them touches the guest's flags, so host flags
 * survive those that do no memory access. */
#include "accel/emu/jit_int.h"

/* 88/89: r/m <- reg */
static bool t_mov_store(struct jit_tr *t, const struct x86_insn *in)
{
    unsigned size = in->op == 0x88 ? 1 : in->osz;
    if (!jit_rm_ok(t, in))
        return false;
    struct jit_mem dst = jit_rm(t, in, size, true);
    jit_load(&t->b, size, JR_RAX, jit_greg(in, in->reg, size));
    jit_store_dest(t, in, size, JR_RAX, dst);
    t->hf = t->hf_in;
    return true;
}

/* 8A/8B: reg <- r/m */
static bool t_mov_load(struct jit_tr *t, const struct x86_insn *in)
{
    unsigned size = in->op == 0x8a ? 1 : in->osz;
    if (!jit_rm_ok(t, in))
        return false;
    struct jit_mem src = jit_rm(t, in, size, false);
    jit_load(&t->b, size, JR_RAX, src);
    jit_store(&t->b, size == 4 ? 8 : size, JR_RAX, jit_greg(in, in->reg, size));
    t->hf = t->hf_in;
    return true;
}

/* C6/C7 /0: r/m <- imm */
static bool t_mov_imm_rm(struct jit_tr *t, const struct x86_insn *in)
{
    unsigned size = in->op == 0xc6 ? 1 : in->osz;
    if (((in->modrm >> 3) & 7) != 0 || !jit_rm_ok(t, in))
        return false;
    struct jit_mem dst = jit_rm(t, in, size, true);
    if (size == 4 && in->mod == 3) {
        jit_mov_imm(&t->b, JR_RAX, (uint32_t)in->imm);
        jit_store(&t->b, 8, JR_RAX, dst);
    } else {
        jit_store_imm(&t->b, size, dst, (int32_t)in->imm);
    }
    t->hf = t->hf_in;
    return true;
}

/* B0+r / B8+r: reg <- imm */
static bool t_mov_imm_reg(struct jit_tr *t, const struct x86_insn *in)
{
    unsigned size = in->op < 0xb8 ? 1 : in->osz;
    uint64_t v = size == 8 ? in->imm : size == 4 ? (uint32_t)in->imm : in->imm;
    if (size == 1 || size == 2) {
        jit_store_imm(&t->b, size, jit_greg(in, in->reg, size), (int32_t)v);
    } else {
        jit_mov_imm(&t->b, JR_RAX, v);
        jit_store(&t->b, 8, JR_RAX, jit_greg(in, in->reg, 8));
    }
    t->hf = t->hf_in;
    return true;
}

static bool t_lea(struct jit_tr *t, const struct x86_insn *in)
{
    if (in->mod == 3 || !jit_ea_ok(t, in))
        return false;
    jit_ea(t, in, false);
    if (in->osz == 4)
        jit_mov_rr(&t->b, 4, JR_RSI, JR_RSI);
    jit_store(&t->b, in->osz == 4 ? 8 : in->osz, JR_RSI, jit_greg(in, in->reg, in->osz));
    t->hf = t->hf_in;
    return true;
}

/* 0F B6/B7 (MOVZX), 0F BE/BF (MOVSX), 63 (MOVSXD with REX.W). */
static bool t_movx(struct jit_tr *t, const struct x86_insn *in)
{
    bool sign = in->op == 0xbe || in->op == 0xbf || in->op == 0x63;
    unsigned src = in->op == 0x63 ? 4 : (in->op & 1) ? 2 : 1;
    if (!jit_rm_ok(t, in) || (in->op == 0x63 && in->osz != 8))
        return false;
    struct jit_mem m = jit_rm(t, in, src, false);
    if (!sign)
        jit_load(&t->b, src, JR_RAX, m);
    else if (in->op == 0x63)
        jit_op_m(&t->b, 8, 0x63, JR_RAX, m);
    else
        jit_op_m(&t->b, in->osz == 8 ? 8 : 4, 0x0f00 | in->op, JR_RAX, m);
    jit_store(&t->b, in->osz == 2 ? 2 : 8, JR_RAX, jit_greg(in, in->reg, in->osz));
    t->hf = t->hf_in;
    return true;
}

static bool t_push(struct jit_tr *t, const struct x86_insn *in)
{
    if (in->osz != 8)
        return false;
    jit_push_slot(t, in);
    jit_load(&t->b, 8, JR_RAX, jit_greg(in, in->reg, 8));
    jit_store(&t->b, 8, JR_RAX, jit_m(JR_RDI, 0));
    jit_store(&t->b, 8, JR_RSI, jit_greg(in, X86_RSP, 8));
    return true;
}

static bool t_pop(struct jit_tr *t, const struct x86_insn *in)
{
    if (in->osz != 8)
        return false;
    jit_load(&t->b, 8, JR_RSI, jit_greg(in, X86_RSP, 8));
    jit_tlb(t, 8, false);
    jit_load(&t->b, 8, JR_RAX, jit_m(JR_RDI, 0));
    jit_lea(&t->b, JR_RSI, jit_m(JR_RSI, 8));
    jit_store(&t->b, 8, JR_RSI, jit_greg(in, X86_RSP, 8));
    jit_store(&t->b, 8, JR_RAX, jit_greg(in, in->reg, 8));   /* POP RSP keeps the value */
    return true;
}

/* FF /6: PUSH r/m64 (the decoder leaves 32 bits as FF's default; in
 * 64-bit code only a 66 prefix makes it narrower). The source is read
 * (and its TLB entry checked) before the stack slot's: either miss re-runs
 * the whole instruction. */
static bool t_push_rm(struct jit_tr *t, const struct x86_insn *in)
{
    if (in->osz == 2 || !jit_rm_ok(t, in))
        return false;
    jit_load(&t->b, 8, JR_R13, jit_rm(t, in, 8, false));
    jit_push_slot(t, in);
    jit_store(&t->b, 8, JR_R13, jit_m(JR_RDI, 0));
    jit_store(&t->b, 8, JR_RSI, jit_greg(in, X86_RSP, 8));
    return true;
}

/* 0F C8+r: BSWAP r32/r64 (the 16-bit form is undefined: the interpreter's) */
static bool t_bswap(struct jit_tr *t, const struct x86_insn *in)
{
    if (in->osz == 2)
        return false;
    jit_load(&t->b, in->osz, JR_RAX, jit_greg(in, in->reg, in->osz));
    if (in->osz == 8)
        jit_byte(&t->b, 0x48);
    jit_byte(&t->b, 0x0f);
    jit_byte(&t->b, 0xc8);                                  /* BSWAP eax / rax */
    jit_store(&t->b, 8, JR_RAX, jit_greg(in, in->reg, 8));
    t->hf = t->hf_in;
    return true;
}

/* 68/6A: PUSH imm (sign-extended to 64 bits) */
static bool t_push_imm(struct jit_tr *t, const struct x86_insn *in)
{
    if (in->osz != 8)
        return false;
    jit_push_slot(t, in);
    jit_store_imm(&t->b, 8, jit_m(JR_RDI, 0), (int32_t)in->imm);
    jit_store(&t->b, 8, JR_RSI, jit_greg(in, X86_RSP, 8));
    return true;
}

/* C9: LEAVE (RSP = RBP, then POP RBP) */
static bool t_leave(struct jit_tr *t, const struct x86_insn *in)
{
    if (in->osz != 8)
        return false;
    jit_load(&t->b, 8, JR_RSI, jit_greg(in, X86_RBP, 8));
    jit_tlb(t, 8, false);
    jit_load(&t->b, 8, JR_RAX, jit_m(JR_RDI, 0));
    jit_lea(&t->b, JR_RSI, jit_m(JR_RSI, 8));
    jit_store(&t->b, 8, JR_RSI, jit_greg(in, X86_RSP, 8));
    jit_store(&t->b, 8, JR_RAX, jit_greg(in, X86_RBP, 8));
    return true;
}

/* 98: CBW/CWDE/CDQE and 99: CWD/CDQ/CQO, by the host's own */
static bool t_convert(struct jit_tr *t, const struct x86_insn *in)
{
    unsigned size = in->osz;
    unsigned dst = in->op == 0x98 ? JR_RAX : JR_RDX;
    jit_load(&t->b, 8, JR_RAX, jit_greg(in, X86_RAX, 8));
    if (in->op == 0x99)
        jit_load(&t->b, 8, JR_RDX, jit_greg(in, X86_RDX, 8));
    if (size == 2)
        jit_byte(&t->b, 0x66);
    else if (size == 8)
        jit_byte(&t->b, 0x48);
    jit_byte(&t->b, in->op);
    jit_store(&t->b, size == 2 ? 2 : 8, dst, jit_greg(in, dst == JR_RAX ? X86_RAX : X86_RDX, 8));
    t->hf = t->hf_in;
    return true;
}

static bool t_cmov(struct jit_tr *t, const struct x86_insn *in)
{
    unsigned size = in->osz;
    if (!jit_rm_ok(t, in))
        return false;
    /* the source is read whatever the condition (it may fault) */
    struct jit_mem src = jit_rm(t, in, size, false);
    jit_load(&t->b, size, JR_R13, src);
    unsigned cc = jit_cond(t, in->op & 15);
    struct jit_mem dst = jit_greg(in, in->reg, size);
    jit_load(&t->b, size, JR_RAX, dst);
    jit_cmov_rr(&t->b, size == 1 ? 4 : size, cc, JR_RAX, JR_R13);
    jit_store(&t->b, size == 4 ? 8 : size, JR_RAX, dst);
    return true;
}

static bool t_setcc(struct jit_tr *t, const struct x86_insn *in)
{
    if (!jit_rm_ok(t, in))
        return false;
    struct jit_mem dst = jit_rm(t, in, 1, true);
    if (in->mod != 3) {
        jit_mov_rr(&t->b, 8, JR_R13, JR_RDI);       /* jit_cond may call out */
        dst = jit_m(JR_R13, 0);
    }
    unsigned cc = jit_cond(t, in->op & 15);
    jit_setcc(&t->b, cc, JR_RAX);
    jit_store(&t->b, 1, JR_RAX, dst);
    return true;
}

static bool t_nop(struct jit_tr *t, const struct x86_insn *in)
{
    t->hf = t->hf_in;
    return true;
}

jit_template *jit_move_template(const struct x86_insn *in)
{
    unsigned op = in->op;
    if (in->map == X86_MAP_0F) {
        if (in->pfx & (X86_PFX_F2 | X86_PFX_F3))
            return NULL;
        if (op == 0xb6 || op == 0xb7 || op == 0xbe || op == 0xbf)
            return t_movx;
        if (op >= 0x40 && op <= 0x4f)
            return t_cmov;
        if (op >= 0x90 && op <= 0x9f)
            return t_setcc;
        if (op == 0x1f)
            return t_nop;
        return op >= 0xc8 && op <= 0xcf ? t_bswap : NULL;
    }
    if (in->map != X86_MAP_1B)
        return NULL;
    if (op >= 0x50 && op <= 0x57)
        return t_push;
    if (op >= 0x58 && op <= 0x5f)
        return t_pop;
    if (op >= 0xb0 && op <= 0xbf)
        return t_mov_imm_reg;
    switch (op) {
    case 0x88: case 0x89: return t_mov_store;
    case 0x8a: case 0x8b: return t_mov_load;
    case 0xc6: case 0xc7: return t_mov_imm_rm;
    case 0x8d: return t_lea;
    case 0x68: case 0x6a: return t_push_imm;
    case 0xc9: return t_leave;
    case 0x98: case 0x99: return t_convert;
    case 0x63: return t_movx;
    case 0x90: return (in->rex & 1) ? NULL : t_nop;
    case 0xff: return ((in->modrm >> 3) & 7) == 6 ? t_push_rm : NULL;
    }
    return NULL;
}
