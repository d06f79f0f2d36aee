/* JIT templates for read-modify-write instructions other vCPUs may race
 * with: CMPXCHG and XADD on memory (atomic with or without LOCK, as the
 * interpreter makes them), and LOCK ADD/OR/AND/SUB/XOR/INC/DEC. The host
 * executes the locked instruction on the guest page itself; when the
 * guest's flags are needed afterwards, a compare-exchange loop yields the
 * old value so the flags and the lazy-flags record come out as the
 * interpreter's handler leaves them. A uniprocessor Linux patches LOCK
 * prefixes out (CMPXCHG and XADD stay), a multiprocessor one runs them on
 * every spinlock. */
#include "accel/emu/flags.h"
#include "accel/emu/jit_int.h"

static void emit_lock(struct jit_tr *t)
{
    jit_byte(&t->b, 0xf0);
}

/* 0F B0/B1/C0/C1 with a memory operand: its host address in RDI
 * (writable); returns the operand size, 0 for the register forms. */
static unsigned rmw_operand(struct jit_tr *t, const struct x86_insn *in)
{
    unsigned size = (in->op & 1) ? in->osz : 1;
    if (in->mod == 3 || !jit_ea_ok(t, in))
        return 0;
    jit_mem_operand(t, in, size, true);
    return size;
}

/* 0F B0/B1: CMPXCHG r/m, reg (memory forms). Host CMPXCHG leaves the old
 * value in RAX and the flags of CMP acc, old: the guest's result. */
static bool t_cmpxchg(struct jit_tr *t, const struct x86_insn *in)
{
    struct jit_buf *b = &t->b;
    unsigned size = rmw_operand(t, in);
    if (!size)
        return false;
    jit_load(b, size, JR_RAX, jit_greg(in, X86_RAX, size));
    jit_load(b, size, JR_RCX, jit_greg(in, in->reg, size));
    jit_mov_rr(b, 8, JR_RDX, JR_RAX);
    emit_lock(t);
    jit_op_m(b, size, size == 1 ? 0x0fb0 : 0x0fb1, JR_RCX, jit_m(JR_RDI, 0));
    uint8_t *equal = jit_jcc(b, JCC_E);
    jit_store(b, size == 4 ? 8 : size, JR_RAX, jit_greg(in, X86_RAX, size));
    jit_patch(b, equal, b->p);
    if (t->live_mem) {
        jit_store(b, 8, JR_RDX, JIT_CPU(lf.a));
        jit_store(b, 8, JR_RAX, JIT_CPU(lf.b));
        jit_alu_rr(b, size, JALU_SUB, JR_RDX, JR_RAX);
    }
    jit_lf(t, X86_LF_SUB, size, JR_NONE, JR_NONE, JR_RDX);
    return true;
}

/* 0F C0/C1: XADD r/m, reg (memory forms) */
static bool t_xadd(struct jit_tr *t, const struct x86_insn *in)
{
    struct jit_buf *b = &t->b;
    unsigned size = rmw_operand(t, in);
    if (!size)
        return false;
    jit_load(b, size, JR_RCX, jit_greg(in, in->reg, size));
    jit_mov_rr(b, 8, JR_RDX, JR_RCX);
    emit_lock(t);
    jit_op_m(b, size, size == 1 ? 0x0fc0 : 0x0fc1, JR_RCX, jit_m(JR_RDI, 0));
    jit_store(b, size == 4 ? 8 : size, JR_RCX, jit_greg(in, in->reg, size));
    if (t->live_mem) {
        jit_store(b, 8, JR_RCX, JIT_CPU(lf.a));
        jit_store(b, 8, JR_RDX, JIT_CPU(lf.b));
        jit_alu_rr(b, size, JALU_ADD, JR_RCX, JR_RDX);
    }
    jit_lf(t, X86_LF_ADD, size, JR_NONE, JR_NONE, JR_RCX);
    return true;
}

/* The value at [RDI] becomes RAX = old, new = old op RCX, atomically:
 * load, compute, LOCK CMPXCHG, again if another CPU got there first.
 * `op` is a JALU_* or 8 + 0/1 for INC/DEC. Clobbers RDX. */
static void cas_loop(struct jit_tr *t, unsigned size, unsigned op)
{
    struct jit_buf *b = &t->b;
    jit_load(b, size, JR_RAX, jit_m(JR_RDI, 0));
    uint8_t *again = b->p;
    jit_mov_rr(b, 8, JR_RDX, JR_RAX);
    if (op >= 8)
        jit_op_r(b, size, jit_op_sz(0xfe, size), op - 8, JR_RDX);
    else
        jit_alu_rr(b, size, op, JR_RDX, JR_RCX);
    emit_lock(t);
    jit_op_m(b, size, size == 1 ? 0x0fb0 : 0x0fb1, JR_RDX, jit_m(JR_RDI, 0));
    jit_patch(b, jit_jcc(b, JCC_NE), again);
}

/* LOCK 00-35 (r/m, reg forms), LOCK 80/81/83 (r/m, imm), LOCK FE/FF /0 /1 */
static bool t_lock_alu(struct jit_tr *t, const struct x86_insn *in)
{
    struct jit_buf *b = &t->b;
    bool incdec = in->op >= 0xfe, imm = in->op >= 0x80 && in->op <= 0x83;
    unsigned op = incdec || imm ? (in->modrm >> 3) & 7 : in->op >> 3;
    unsigned size = (in->op & 1) ? in->osz : 1;
    if (in->mod == 3 || !jit_ea_ok(t, in) || (incdec ? op > 1 : op == JALU_ADC ||
                                              op == JALU_SBB || op == JALU_CMP))
        return false;
    if (incdec && (t->live & JF_CF))
        return false;           /* INC/DEC keep CF: the interpreter's business */
    jit_mem_operand(t, in, size, true);
    if (imm)
        jit_mov_imm(b, JR_RCX, (uint64_t)(int64_t)in->imm);
    else if (!incdec)
        jit_load(b, size, JR_RCX, jit_greg(in, in->reg, size));
    if (!t->live) {
        emit_lock(t);
        if (incdec)
            jit_op_m(b, size, jit_op_sz(0xfe, size), op, jit_m(JR_RDI, 0));
        else
            jit_op_m(b, size, jit_op_sz((uint32_t)op << 3, size), JR_RCX, jit_m(JR_RDI, 0));
        t->known_op = -1;       /* no record: nobody reads one before the next */
        return true;
    }
    cas_loop(t, size, incdec ? 8 + op : op);
    if (incdec) {
        jit_op_r(b, size, jit_op_sz(0xfe, size), op, JR_RAX);
        jit_lf(t, op ? X86_LF_DEC : X86_LF_INC, size, JR_NONE, JR_NONE, JR_RAX);
        return true;
    }
    bool logic = op == JALU_OR || op == JALU_AND || op == JALU_XOR;
    if (!logic && t->live_mem) {
        jit_store(b, 8, JR_RAX, JIT_CPU(lf.a));
        jit_store(b, 8, JR_RCX, JIT_CPU(lf.b));
    }
    jit_alu_rr(b, size, op, JR_RAX, JR_RCX);
    jit_lf(t, logic ? X86_LF_LOGIC : op == JALU_ADD ? X86_LF_ADD : X86_LF_SUB, size,
           JR_NONE, JR_NONE, JR_RAX);
    return true;
}

jit_template *jit_atomic_template(const struct x86_insn *in)
{
    unsigned op = in->op;
    if (in->map == X86_MAP_0F) {
        if (in->pfx & (X86_PFX_F2 | X86_PFX_F3))
            return NULL;
        if (op == 0xb0 || op == 0xb1)
            return t_cmpxchg;
        return op == 0xc0 || op == 0xc1 ? t_xadd : NULL;
    }
    if (in->map != X86_MAP_1B || !(in->pfx & X86_PFX_LOCK))
        return NULL;
    if ((op < 0x40 && (op & 7) < 2) || op == 0x80 || op == 0x81 || op == 0x83 ||
        op == 0xfe || op == 0xff)
        return t_lock_alu;
    return NULL;
}
