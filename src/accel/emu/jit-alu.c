/* JIT templates for integer arithmetic: ADD/OR/AND/SUB/XOR/CMP/TEST in
 * their register, memory and immediate forms, INC/DEC, NOT, shifts and
 * rotates by a constant or CL, IMUL. The host instruction computes the
 * result and, when a later instruction may read them, its operands and
 * result go to the lazy-flags record exactly as the interpreter's handler
 * would record them. Host flags then equal the guest's, which the next
 * Jcc/SETcc/CMOVcc can test directly. */
#include "accel/emu/flags.h"
#include "accel/emu/jit_int.h"

static unsigned lazy_op(unsigned alu)
{
    switch (alu) {
    case JALU_ADD: return X86_LF_ADD;
    case JALU_SUB: case JALU_CMP: return X86_LF_SUB;
    default: return X86_LF_LOGIC;
    }
}

/* Where an ALU source operand is. */
enum { SRC_LOC, SRC_IMM, SRC_RCX };

/* dst op= src. alu: JALU_* or 8 for TEST. A memory operand was resolved
 * (TLB lookup done) by the caller; mem says there was one. */
static void alu_op(struct jit_tr *t, bool mem, bool dst_is_reg, unsigned alu, unsigned size,
                   struct jit_mem dst, int src_kind, struct jit_mem src, int32_t imm)
{
    struct jit_buf *b = &t->b;
    bool test = alu == 8, writes = alu != JALU_CMP && !test;
    unsigned host = test ? JALU_AND : alu == JALU_CMP ? JALU_SUB : alu;
    unsigned lop = test ? X86_LF_LOGIC : lazy_op(alu);

    jit_load(b, size, JR_RAX, dst);
    if (src_kind == SRC_IMM)
        jit_mov_imm(b, JR_RCX, (uint64_t)(int64_t)imm);
    else if (src_kind == SRC_LOC)
        jit_load(b, size, JR_RCX, src);
    if (lop != X86_LF_LOGIC && t->live_mem) {
        jit_store(b, 8, JR_RAX, JIT_CPU(lf.a));
        jit_store(b, 8, JR_RCX, JIT_CPU(lf.b));
    }
    jit_alu_rr(b, size, host, JR_RAX, JR_RCX);
    jit_lf(t, lop, size, JR_NONE, JR_NONE, JR_RAX);
    if (writes)
        jit_store(b, (size == 4 && dst_is_reg) ? 8 : size, JR_RAX, dst);
    t->hf = !mem;               /* a TLB miss re-runs it in the interpreter */
}

static uint64_t lazy_cf(struct x86_cpu *cpu)
{
    return x86_lazy_cf(cpu);
}

/* Emit: host CF = the guest's CF, from the host flags when they hold the
 * guest's, else from the lazy-flags record (inline for the producers whose
 * record is a compare or an add, a call otherwise). Clobbers RAX, RCX, RDX,
 * RSI, RDI, R8-R11 (the caller keeps a host address in R13). */
static void carry_to_host(struct jit_tr *t)
{
    struct jit_buf *b = &t->b;
    int op = t->known_op;
    unsigned size = (unsigned)t->known_size;
    if (t->hf_in && (op == X86_LF_ADD || op == X86_LF_SUB || op == X86_LF_LOGIC ||
                     op == X86_LF_ADC || op == X86_LF_SBB))
        return;
    if (op == X86_LF_SUB || op == X86_LF_ADD) {
        jit_load(b, 8, JR_RAX, JIT_CPU(lf.a));
        jit_alu_rm(b, size, op == X86_LF_SUB ? JALU_CMP : JALU_ADD, JR_RAX, JIT_CPU(lf.b));
    } else if (op == X86_LF_LOGIC) {
        jit_byte(b, 0xf8);                                  /* CLC */
    } else if (op == X86_LF_INC || op == X86_LF_DEC || op == X86_LF_NONE) {
        jit_op_m(b, 4, 0x0fba, 4, JIT_CPU(rflags));         /* BT [rflags], 0 */
        jit_byte(b, 0);
    } else {
        jit_mov_rr(b, 8, JR_RDI, JR_RBX);
        jit_call(b, (const void *)lazy_cf);
        jit_op_r(b, 4, 0x0fba, 4, JR_RAX);                  /* BT eax, 0 */
        jit_byte(b, 0);
    }
}

/* ADC/SBB in all forms (10-1D, 80/81/83 /2 /3). The carry-in decides the
 * record, as in the interpreter: ADD/SUB with CF clear, ADC/SBB with it
 * set; SETC keeps it through the host instruction. */
static bool t_adc(struct jit_tr *t, const struct x86_insn *in)
{
    struct jit_buf *b = &t->b;
    bool grp = in->op >= 0x80;
    unsigned alu = grp ? (in->modrm >> 3) & 7 : in->op >> 3, form = grp ? 6 : in->op & 7;
    unsigned size = grp ? (in->op == 0x80 ? 1 : in->osz) : (form & 1) ? in->osz : 1;
    bool mem = in->mod != 3 && form != 4 && form != 5, imm = form >= 4;
    if (!jit_rm_ok(t, in))
        return false;
    struct jit_mem rm = jit_greg(in, X86_RAX, size);
    if (form != 4 && form != 5) {
        rm = jit_rm(t, in, size, form != 2 && form != 3);
        if (mem) {
            jit_mov_rr(b, 8, JR_R13, JR_RDI);
            rm = jit_m(JR_R13, 0);
        }
    }
    bool to_reg = form == 2 || form == 3;
    struct jit_mem dst = to_reg ? jit_greg(in, in->reg, size) : rm;
    carry_to_host(t);
    if (t->live_mem)
        jit_setcc(b, JCC_B, JR_RDX);
    jit_load(b, size, JR_RAX, dst);
    if (imm)
        jit_mov_imm(b, JR_RCX, (uint64_t)(int64_t)in->imm);
    else
        jit_load(b, size, JR_RCX, to_reg ? rm : jit_greg(in, in->reg, size));
    if (t->live_mem) {
        jit_store(b, 8, JR_RAX, JIT_CPU(lf.a));
        jit_store(b, 8, JR_RCX, JIT_CPU(lf.b));
    }
    jit_alu_rr(b, size, alu, JR_RAX, JR_RCX);
    unsigned base = alu == JALU_ADC ? X86_LF_ADD : X86_LF_SUB;
    _Static_assert(X86_LF_ADC == X86_LF_ADD + 1 && X86_LF_SBB == X86_LF_SUB + 1,
                   "carry-in selects the record");
    if (t->live_mem) {
        jit_store(b, 8, JR_RAX, JIT_CPU(lf.res));
        jit_op_r(b, 4, 0x0fb6, JR_RDX, JR_RDX);             /* MOVZX edx, dl */
        jit_lea(b, JR_RDX, jit_m(JR_RDX, (int32_t)(base | size << 8)));
        jit_store(b, 2, JR_RDX, JIT_CPU(lf.op));
    }
    jit_store(b, (size == 4 && (to_reg || !mem)) ? 8 : size, JR_RAX, dst);
    t->known_op = (int)base + 1;
    t->known_size = (int)size;
    t->hf = !mem;
    return true;
}

/* 00-3D: the eight ALU operations in their six forms. */
static bool t_alu(struct jit_tr *t, const struct x86_insn *in)
{
    unsigned alu = in->op >> 3, form = in->op & 7;
    unsigned size = (form & 1) ? in->osz : 1;
    bool mem = in->mod != 3;
    if (alu == JALU_ADC || alu == JALU_SBB)
        return t_adc(t, in);
    if (!jit_rm_ok(t, in))
        return false;
    if (form >= 4) {
        struct jit_mem acc = jit_greg(in, X86_RAX, size);
        alu_op(t, false, true, alu, size, acc, SRC_IMM, acc, (int32_t)in->imm);
    } else if (form <= 1) {
        struct jit_mem dst = jit_rm(t, in, size, alu != JALU_CMP);
        alu_op(t, mem, !mem, alu, size, dst, SRC_LOC, jit_greg(in, in->reg, size), 0);
    } else {
        struct jit_mem src = jit_rm(t, in, size, false);
        jit_load(&t->b, size, JR_RCX, src);
        alu_op(t, mem, true, alu, size, jit_greg(in, in->reg, size), SRC_RCX, src, 0);
    }
    return true;
}

/* 80/81/83: ALU r/m, imm */
static bool t_alu_imm(struct jit_tr *t, const struct x86_insn *in)
{
    unsigned alu = (in->modrm >> 3) & 7, size = in->op == 0x80 ? 1 : in->osz;
    if (alu == JALU_ADC || alu == JALU_SBB)
        return t_adc(t, in);
    if (!jit_rm_ok(t, in))
        return false;
    struct jit_mem dst = jit_rm(t, in, size, alu != JALU_CMP);
    alu_op(t, in->mod != 3, in->mod == 3, alu, size, dst, SRC_IMM, dst, (int32_t)in->imm);
    return true;
}

/* 84/85: TEST r/m, reg; A8/A9: TEST acc, imm; F6/F7 /0: TEST r/m, imm */
static bool t_test(struct jit_tr *t, const struct x86_insn *in)
{
    unsigned size = (in->op & 1) ? in->osz : 1;
    if (in->op == 0xa8 || in->op == 0xa9) {
        struct jit_mem acc = jit_greg(in, X86_RAX, size);
        alu_op(t, false, true, 8, size, acc, SRC_IMM, acc, (int32_t)in->imm);
        return true;
    }
    if (!jit_rm_ok(t, in))
        return false;
    bool mem = in->mod != 3;
    struct jit_mem dst = jit_rm(t, in, size, false);
    if (in->op == 0x84 || in->op == 0x85)
        alu_op(t, mem, !mem, 8, size, dst, SRC_LOC, jit_greg(in, in->reg, size), 0);
    else
        alu_op(t, mem, !mem, 8, size, dst, SRC_IMM, dst, (int32_t)in->imm);
    return true;
}

/* CF of the record INC/DEC replaces must survive in rflags, as
 * x86_lf_incdec keeps it (nothing to do after another INC/DEC). */
static void save_cf(struct jit_tr *t)
{
    if (t->known_op == X86_LF_INC || t->known_op == X86_LF_DEC || t->known_op == X86_LF_NONE)
        return;
    carry_to_host(t);
    jit_setcc(&t->b, JCC_B, JR_RAX);
    jit_alu_mi(&t->b, 1, JALU_AND, JIT_CPU(rflags), (int32_t)(uint8_t)~X86_CF);
    jit_alu_rm(&t->b, 1, JALU_OR, JR_RAX, JIT_CPU(rflags));
    jit_store(&t->b, 1, JR_RAX, JIT_CPU(rflags));
}

/* F6/F7 (TEST, NOT, NEG) and FE/FF (INC, DEC) */
static bool t_unary(struct jit_tr *t, const struct x86_insn *in)
{
    unsigned digit = (in->modrm >> 3) & 7, size = (in->op & 1) ? in->osz : 1;
    bool incdec = in->op >= 0xfe;
    if (!incdec && digit <= 1)
        return t_test(t, in);
    if (!jit_rm_ok(t, in) || (incdec ? digit > 1 : digit != 2 && digit != 3))
        return false;
    struct jit_mem dst = jit_rm(t, in, size, true);
    if (incdec && (t->live & JF_CF)) {
        if (in->mod != 3) {
            jit_mov_rr(&t->b, 8, JR_R13, JR_RDI);   /* save_cf may call out */
            dst = jit_m(JR_R13, 0);
        }
        save_cf(t);
    }
    jit_load(&t->b, size, JR_RAX, dst);
    if (incdec) {
        jit_op_r(&t->b, size, jit_op_sz(0xfe, size), digit, JR_RAX);
        jit_lf(t, digit ? X86_LF_DEC : X86_LF_INC, size, JR_NONE, JR_NONE, JR_RAX);
        t->hf = in->mod == 3 && !(t->live & JF_CF);
    } else if (digit == 3) {
        /* NEG records 0 - value, as the interpreter does */
        if (t->live) {
            jit_store_imm(&t->b, 8, JIT_CPU(lf.a), 0);
            jit_store(&t->b, 8, JR_RAX, JIT_CPU(lf.b));
        }
        jit_op_r(&t->b, size, jit_op_sz(0xf6, size), 3, JR_RAX);
        jit_lf(t, X86_LF_SUB, size, JR_NONE, JR_NONE, JR_RAX);
        t->hf = in->mod == 3;
    } else {
        jit_op_r(&t->b, size, jit_op_sz(0xf6, size), 2, JR_RAX);
        t->hf = in->mod == 3 && t->hf_in;
    }
    jit_store_dest(t, in, size, JR_RAX, dst);
    return true;
}

static void materialize_flags(struct x86_cpu *cpu)
{
    x86_get_flags(cpu);
}

void jit_flags_to_rflags(struct jit_tr *t)
{
    struct jit_buf *b = &t->b;
    if (t->known_op == X86_LF_NONE)
        return;
    jit_alu_mi(b, 1, JALU_CMP, JIT_CPU(lf.op), X86_LF_NONE);
    uint8_t *done = jit_jcc(b, JCC_E);
    jit_mov_rr(b, 8, JR_RDI, JR_RBX);
    jit_call(b, (const void *)materialize_flags);
    jit_patch(b, done, b->p);
}

/* ROL/ROR by a constant with the flags read later: they set CF and OF
 * (computed from the result, as the interpreter does for every count) and
 * keep the rest, so the flags are materialized first and patched. */
static bool t_rotate_live(struct jit_tr *t, const struct x86_insn *in, unsigned digit,
                          unsigned size, int count)
{
    struct jit_buf *b = &t->b;
    unsigned bits = 8 * size, cf = digit ? JR_RCX : JR_RDX, of = digit ? JR_RDX : JR_RCX;
    struct jit_mem dst = jit_rm(t, in, size, true);
    if (in->mod != 3) {
        jit_mov_rr(b, 8, JR_R13, JR_RDI);
        dst = jit_m(JR_R13, 0);
    }
    jit_flags_to_rflags(t);
    jit_load(b, size, JR_RAX, dst);
    jit_shift_ri(b, size, digit, JR_RAX, count);
    jit_store_dest(t, in, size, JR_RAX, dst);
    /* the upper bits of RAX are clear: RCX = the result's top bit */
    jit_mov_rr(b, 8, JR_RCX, JR_RAX);
    jit_shift_ri(b, 8, 5, JR_RCX, (int)bits - 1);
    jit_mov_rr(b, 8, JR_RDX, JR_RAX);
    if (digit == 1)         /* ROR: CF = top bit, OF = CF ^ the bit below */
        jit_shift_ri(b, 8, 5, JR_RDX, (int)bits - 2);
    jit_alu_ri(b, 4, JALU_AND, JR_RDX, 1);      /* ROL: CF = bit 0, OF = CF ^ top */
    jit_alu_rr(b, 4, JALU_XOR, of, cf);
    jit_shift_ri(b, 4, 4, of, 11);
    jit_alu_rr(b, 4, JALU_OR, of, cf);
    jit_alu_mi(b, 4, JALU_AND, JIT_CPU(rflags), (int32_t)~(X86_CF | X86_OF));
    jit_alu_rm(b, 4, JALU_OR, of, JIT_CPU(rflags));
    jit_store(b, 4, of, JIT_CPU(rflags));
    t->known_op = X86_LF_NONE;
    return true;
}

/* C0/C1/D0/D1 (by a constant) and D2/D3 (by CL): ROL ROR SHL SHR SAR */
static bool t_shift(struct jit_tr *t, const struct x86_insn *in)
{
    unsigned digit = (in->modrm >> 3) & 7, size = (in->op & 1) ? in->osz : 1;
    bool by_cl = in->op >= 0xd2;
    int count = by_cl ? -1 : (int)((in->op >= 0xd0 ? 1 : in->imm) & (size == 8 ? 63 : 31));
    bool shift = digit == 4 || digit == 5 || digit == 7;
    if (!jit_rm_ok(t, in) || digit == 2 || digit == 3 || digit == 6 || count == 0)
        return false;
    if (t->live && !shift && !by_cl)
        return t_rotate_live(t, in, digit, size, count);
    /* records only for shifts by a known count; otherwise flags must be dead */
    if (t->live && by_cl)
        return false;
    struct jit_mem dst = jit_rm(t, in, size, true);
    jit_load(&t->b, size, JR_RAX, dst);
    if (by_cl)
        jit_load(&t->b, 1, JR_RCX, jit_greg(in, X86_RCX, 1));
    if (t->live)
        jit_store(&t->b, 8, JR_RAX, JIT_CPU(lf.a));
    jit_shift_ri(&t->b, size, digit, JR_RAX, count);
    if (t->live) {
        jit_store_imm(&t->b, 8, JIT_CPU(lf.b), count);
        jit_lf(t, digit == 4 ? X86_LF_SHL : digit == 5 ? X86_LF_SHR : X86_LF_SAR, size,
               JR_NONE, JR_NONE, JR_RAX);
    } else {
        t->known_op = -1;       /* no record: nobody reads one before the next */
    }
    jit_store_dest(t, in, size, JR_RAX, dst);
    return true;
}

/* 0F A3/AB/B3/BB: BT/BTS/BTR/BTC r/m, reg (register operand only: a
 * memory operand is addressed by the bit offset) and 0F BA /4-/7 with an
 * immediate. CF is the bit; the interpreter keeps ZF, SF, OF, AF, PF. With
 * those dead afterwards the record is "0 - CF" (a SUB whose CF is the bit);
 * live, the flags are materialized first and CF replaced in RFLAGS. */
static bool t_bt(struct jit_tr *t, const struct x86_insn *in)
{
    struct jit_buf *b = &t->b;
    bool imm = in->op == 0xba;
    unsigned kind = imm ? ((in->modrm >> 3) & 7) - 4 : (in->op >> 3) & 3;
    unsigned size = in->osz;
    static const uint16_t host_op[4] = { 0x0fa3, 0x0fab, 0x0fb3, 0x0fbb };
    if ((imm && ((in->modrm >> 3) & 7) < 4) || (!imm && in->mod != 3) || !jit_rm_ok(t, in))
        return false;
    bool mem = in->mod != 3, keep = (t->live & JF_OSZ) != 0;
    struct jit_mem dst = jit_rm(t, in, size, kind != 0);
    if (keep) {
        if (mem) {
            jit_mov_rr(b, 8, JR_R13, JR_RDI);
            dst = jit_m(JR_R13, 0);
        }
        jit_flags_to_rflags(t);
    }
    jit_load(b, size, JR_RAX, dst);
    if (imm) {
        jit_op_r(b, size, 0x0fba, 4 + kind, JR_RAX);
        jit_byte(b, (uint8_t)(in->imm & (8 * size - 1)));
    } else {
        jit_load(b, size, JR_RCX, jit_greg(in, in->reg, size));
        jit_op_r(b, size, host_op[kind], JR_RCX, JR_RAX);
    }
    if (t->live) {
        jit_setcc(b, JCC_B, JR_RCX);
        jit_op_r(b, 4, 0x0fb6, JR_RCX, JR_RCX);             /* MOVZX ecx, cl */
    }
    if (kind)
        jit_store_dest(t, in, size, JR_RAX, dst);
    if (keep) {
        jit_alu_mi(b, 1, JALU_AND, JIT_CPU(rflags), (int32_t)(uint8_t)~X86_CF);
        jit_alu_rm(b, 1, JALU_OR, JR_RCX, JIT_CPU(rflags));
        jit_store(b, 1, JR_RCX, JIT_CPU(rflags));
        t->known_op = X86_LF_NONE;
        t->hf = false;
    } else if (t->live) {
        jit_store_imm(b, 8, JIT_CPU(lf.a), 0);
        jit_store(b, 8, JR_RCX, JIT_CPU(lf.b));
        jit_op_r(b, 8, 0xf7, 3, JR_RCX);                    /* NEG rcx */
        jit_lf(t, X86_LF_SUB, 8, JR_NONE, JR_NONE, JR_RCX);
        t->hf = !mem;           /* host CF: NEG of the bit */
        if (mem)
            t->known_op = -1;   /* after a TLB miss, the interpreter's record */
    } else {
        t->known_op = -1;
    }
    return true;
}

/* 0F AF: IMUL reg, r/m; 69/6B: IMUL reg, r/m, imm — only with dead flags */
static bool t_imul(struct jit_tr *t, const struct x86_insn *in)
{
    unsigned size = in->osz;
    if (t->live || size == 2 || !jit_rm_ok(t, in))
        return false;
    struct jit_mem src = jit_rm(t, in, size, false);
    if (in->map == X86_MAP_0F) {
        jit_load(&t->b, size, JR_RAX, jit_greg(in, in->reg, size));
        jit_op_m(&t->b, size, 0x0faf, JR_RAX, src);
    } else {
        jit_op_m(&t->b, size, 0x69, JR_RAX, src);
        jit_u32(&t->b, (uint32_t)in->imm);
    }
    jit_store(&t->b, size == 4 ? 8 : size, JR_RAX, jit_greg(in, in->reg, size));
    t->known_op = -1;
    return true;
}

jit_template *jit_alu_template(const struct x86_insn *in)
{
    unsigned op = in->op;
    if (in->map == X86_MAP_0F) {
        if (in->pfx & (X86_PFX_F2 | X86_PFX_F3))
            return NULL;
        if (op == 0xa3 || op == 0xab || op == 0xb3 || op == 0xbb || op == 0xba)
            return t_bt;
        return op == 0xaf ? t_imul : NULL;
    }
    if (in->map != X86_MAP_1B)
        return NULL;
    if (op < 0x40 && (op & 7) < 6)
        return t_alu;
    switch (op) {
    case 0x80: case 0x81: case 0x83: return t_alu_imm;
    case 0x84: case 0x85: case 0xa8: case 0xa9: return t_test;
    case 0xf6: case 0xf7: return t_unary;
    case 0xfe: case 0xff: return ((in->modrm >> 3) & 7) <= 1 ? t_unary : NULL;
    case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3: return t_shift;
    case 0x69: case 0x6b: return t_imul;
    }
    return NULL;
}
