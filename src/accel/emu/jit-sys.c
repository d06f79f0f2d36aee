/* JIT templates for the system instructions a kernel runs on every system
 * call and interrupt-masking section: PUSHF, CLI, STI, SWAPGS, the fences.
 * Each does its work inline at CPL 0; at any other privilege the
 * interpreter's handler runs instead (it raises #GP or honours IOPL). */
#include "accel/emu/flags.h"
#include "accel/emu/jit_int.h"

/* Out-of-line: the interpreter runs the instruction unless CPL is 0. */
static void need_cpl0(struct jit_tr *t)
{
    jit_alu_mi(&t->b, 1, JALU_CMP, JIT_CPU(cpl), 0);
    jit_stub_if(t, JCC_NE);
}

/* FA: CLI */
static bool t_cli(struct jit_tr *t, const struct x86_insn *in)
{
    need_cpl0(t);
    jit_alu_mi(&t->b, 4, JALU_AND, JIT_CPU(rflags), (int32_t)~X86_IF);
    return true;
}

/* FB: STI. The interpreter ends the block here so that the run loop sees
 * a pending interrupt; translated code goes on instead, and the pending
 * check at the block's exit leaves for the run loop. By then the
 * instruction after STI has run, so the interrupt shadow only needs to be
 * set when STI is the block's last instruction, or the last before a
 * page-crossing tail, which may leave the block before it runs (STI; HLT
 * keeps working: HLT leaves the block with the shadow over). */
static bool t_sti(struct jit_tr *t, const struct x86_insn *in)
{
    struct jit_buf *b = &t->b;
    need_cpl0(t);
    /* a tail after it may leave the block before running (tail_check) */
    if (t->idx + 1 == t->blk->n || (t->blk->tail && t->idx + 2 == t->blk->n)) {
        jit_op_m(b, 1, 0xf6, 0, jit_m(JR_RBX, (int32_t)offsetof(struct x86_cpu, rflags) + 1));
        jit_byte(b, X86_IF >> 8);                           /* TEST byte [rflags+1], IF */
        uint8_t *was_set = jit_jcc(b, JCC_NE);
        jit_store_imm(b, 1, JIT_CPU(intr_shadow), 1);
        jit_patch(b, was_set, b->p);
    }
    jit_alu_mi(b, 4, JALU_OR, JIT_CPU(rflags), X86_IF);
    return true;
}

/* 9C: PUSHF (64-bit), the first half of every local_irq_save. VM and RF
 * read as 0; the stack slot is looked up before the flags are computed. */
static bool t_pushf(struct jit_tr *t, const struct x86_insn *in)
{
    struct jit_buf *b = &t->b;
    if (in->osz != 8)
        return false;
    jit_push_slot(t, in);
    jit_mov_rr(b, 8, JR_R13, JR_RDI);
    jit_flags_to_rflags(t);
    jit_load(b, 8, JR_RAX, JIT_CPU(rflags));
    jit_alu_ri(b, 8, JALU_AND, JR_RAX, (int32_t)~(X86_VM | X86_RF));
    jit_store(b, 8, JR_RAX, jit_m(JR_R13, 0));
    jit_alu_mi(b, 8, JALU_SUB, jit_greg(in, X86_RSP, 8), 8);
    t->known_op = X86_LF_NONE;
    return true;
}

/* 0F 01 F8: SWAPGS (64-bit code only, which is all the JIT translates) */
static bool t_swapgs(struct jit_tr *t, const struct x86_insn *in)
{
    struct jit_buf *b = &t->b;
    struct jit_mem base = JIT_CPU(seg[X86_GS].base), kernel = JIT_CPU(kernel_gs_base);
    need_cpl0(t);
    jit_load(b, 8, JR_RAX, base);
    jit_load(b, 8, JR_RCX, kernel);
    jit_store(b, 8, JR_RCX, base);
    jit_store(b, 8, JR_RCX, JIT_CPU(segbase[X86_GS]));
    jit_store(b, 8, JR_RAX, kernel);
    return true;
}

/* 0F AE E8/F0/F8: LFENCE, MFENCE, SFENCE. Translated code issues guest
 * loads and stores in program order on one host thread, so only MFENCE
 * (store-load order against other vCPUs) needs a host fence. */
static bool t_fence(struct jit_tr *t, const struct x86_insn *in)
{
    if (((in->modrm >> 3) & 7) == 6) {
        jit_byte(&t->b, 0x0f);
        jit_byte(&t->b, 0xae);
        jit_byte(&t->b, 0xf0);
    }
    t->hf = t->hf_in;
    return true;
}

jit_template *jit_sys_template(const struct x86_insn *in)
{
    if (in->map == X86_MAP_1B)
        return in->op == 0xfa ? t_cli : in->op == 0xfb ? t_sti : in->op == 0x9c ? t_pushf : NULL;
    if (in->map != X86_MAP_0F || (in->pfx & (X86_PFX_66 | X86_PFX_F2 | X86_PFX_F3)))
        return NULL;
    if (in->op == 0x01 && in->modrm == 0xf8)
        return t_swapgs;
    if (in->op == 0xae && in->mod == 3 && ((in->modrm >> 3) & 7) >= 5)
        return t_fence;
    return NULL;
}
