/* JIT templates for near control transfers: Jcc, JMP rel, CALL rel, RET,
 * CALL/JMP indirect. Each ends the block: it goes on to the target's
 * translation when it can (jit_exit_to, jit_exit_dynamic), else sets
 * cpu->rip and returns to the run loop. */
#include "accel/emu/jit_int.h"

static bool t_jcc(struct jit_tr *t, const struct x86_insn *in)
{
    if (in->osz == 2)
        return false;           /* IP truncated to 16 bits: the interpreter */
    unsigned cc = jit_cond(t, in->op & 15);
    uint8_t *taken = jit_jcc(&t->b, cc);
    jit_exit_to(t, 0);
    jit_patch(&t->b, taken, t->b.p);
    jit_exit_to(t, (int64_t)in->imm);
    t->ends_block = true;
    return true;
}

static bool t_jmp(struct jit_tr *t, const struct x86_insn *in)
{
    if (in->osz == 2)
        return false;
    jit_exit_to(t, (int64_t)in->imm);
    t->ends_block = true;
    return true;
}

static bool t_call(struct jit_tr *t, const struct x86_insn *in)
{
    if (in->osz != 8)
        return false;
    jit_push_slot(t, in);
    jit_lea(&t->b, JR_RAX, jit_m(JR_R12, (int32_t)t->next));
    jit_store(&t->b, 8, JR_RAX, jit_m(JR_RDI, 0));
    jit_store(&t->b, 8, JR_RSI, jit_greg(in, X86_RSP, 8));
    jit_exit_to(t, (int64_t)in->imm);
    t->ends_block = true;
    return true;
}

static bool t_ret(struct jit_tr *t, const struct x86_insn *in)
{
    if (in->osz != 8)
        return false;
    int32_t pop = 8 + (in->op == 0xc2 ? (int32_t)(uint16_t)in->imm : 0);
    jit_load(&t->b, 8, JR_RSI, jit_greg(in, X86_RSP, 8));
    jit_tlb(t, 8, false);
    jit_load(&t->b, 8, JR_RAX, jit_m(JR_RDI, 0));
    jit_alu_mi(&t->b, 8, JALU_ADD, jit_greg(in, X86_RSP, 8), pop);
    jit_exit_dynamic(t);
    t->ends_block = true;
    return true;
}

/* FF /2 and FF /4: CALL and JMP through a register or memory (64-bit
 * operand in 64-bit mode whatever the prefixes, as the interpreter does).
 * The target is read before the return address is pushed, and both
 * lookups come before any state changes. */
static bool t_indirect(struct jit_tr *t, const struct x86_insn *in)
{
    bool call = ((in->modrm >> 3) & 7) == 2;
    if (!jit_rm_ok(t, in))
        return false;
    struct jit_mem src = jit_rm(t, in, 8, false);
    jit_load(&t->b, 8, JR_R13, src);
    if (call) {
        jit_push_slot(t, in);
        jit_lea(&t->b, JR_RAX, jit_m(JR_R12, (int32_t)t->next));
        jit_store(&t->b, 8, JR_RAX, jit_m(JR_RDI, 0));
        jit_store(&t->b, 8, JR_RSI, jit_greg(in, X86_RSP, 8));
    }
    jit_mov_rr(&t->b, 8, JR_RAX, JR_R13);
    jit_exit_dynamic(t);
    t->ends_block = true;
    return true;
}

jit_template *jit_flow_template(const struct x86_insn *in)
{
    if (in->map == X86_MAP_0F)
        return (in->op >= 0x80 && in->op <= 0x8f) ? t_jcc : NULL;
    if (in->map != X86_MAP_1B)
        return NULL;
    if (in->op >= 0x70 && in->op <= 0x7f)
        return t_jcc;
    switch (in->op) {
    case 0xe9: case 0xeb: return t_jmp;
    case 0xe8: return t_call;
    case 0xc2: case 0xc3: return t_ret;
    case 0xff: {
        unsigned digit = (in->modrm >> 3) & 7;
        return digit == 2 || digit == 4 ? t_indirect : NULL;
    }
    }
    return NULL;
}
