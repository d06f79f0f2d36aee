/* Control transfer: Jcc, JMP, CALL, RET (near and far), LOOP/JCXZ,
 * group 5 (FF), INT n/INT3/INTO/INT1, IRET, HLT. */
#include "accel/emu/exec.h"
#include "accel/emu/flags.h"

void x86_jump(struct x86_cpu *cpu, uint64_t target, unsigned osz)
{
    if (cpu->code64)
        cpu->rip = target;
    else if (osz == 2)
        cpu->rip = (uint16_t)target;
    else
        cpu->rip = (uint32_t)target;
}

/* one Jcc handler per condition so the flag test is specialised */
#define JCC(cc)                                                                   \
    static void op_jcc_##cc(struct x86_cpu *cpu, const struct x86_insn *in)      \
    {                                                                             \
        if (x86_cond_inline(cpu, cc))                                             \
            x86_jump(cpu, cpu->rip + in->imm, in->osz);                           \
    }
JCC(0) JCC(1) JCC(2) JCC(3) JCC(4) JCC(5) JCC(6) JCC(7)
JCC(8) JCC(9) JCC(10) JCC(11) JCC(12) JCC(13) JCC(14) JCC(15)
#undef JCC
static x86_handler *const jcc_fn[16] = {
    op_jcc_0, op_jcc_1, op_jcc_2, op_jcc_3, op_jcc_4, op_jcc_5, op_jcc_6, op_jcc_7,
    op_jcc_8, op_jcc_9, op_jcc_10, op_jcc_11, op_jcc_12, op_jcc_13, op_jcc_14, op_jcc_15,
};

static void op_jmp_rel(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_jump(cpu, cpu->rip + in->imm, in->osz);
}

static void op_call_rel(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_push(cpu, cpu->rip, in->osz);
    x86_jump(cpu, cpu->rip + in->imm, in->osz);
}

static void op_ret(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint64_t t = x86_pop(cpu, in->osz);
    if (in->op == 0xc2) {
        uint64_t n = in->imm;
        if (cpu->code64)
            cpu->gpr[X86_RSP] += n;
        else if (cpu->stack32)
            cpu->gpr[X86_RSP] = (uint32_t)(cpu->gpr[X86_RSP] + n);
        else
            cpu->gpr[X86_RSP] = (cpu->gpr[X86_RSP] & ~0xffffull) | (uint16_t)(cpu->gpr[X86_RSP] + n);
    }
    x86_jump(cpu, t, in->osz);
}

static void op_loop(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned asz = in->asz;
    uint64_t c = cpu->gpr[X86_RCX];
    uint64_t m = asz == 8 ? ~0ull : asz == 4 ? 0xffffffffull : 0xffff;
    bool take;
    if (in->op == 0xe3) {
        take = (c & m) == 0;
    } else {
        c = (c & ~m) | ((c - 1) & m);
        if (asz == 4)
            c = (uint32_t)c;
        cpu->gpr[X86_RCX] = c;
        take = (c & m) != 0;
        if (in->op == 0xe1)
            take = take && x86_cond(cpu, 4);
        else if (in->op == 0xe0)
            take = take && x86_cond(cpu, 5);
    }
    if (take)
        x86_jump(cpu, cpu->rip + in->imm, in->osz);
}

/* Far pointer m16:16/32/64 at the ModRM operand. */
static void far_ptr(struct x86_cpu *cpu, const struct x86_insn *in, uint16_t *sel, uint64_t *off)
{
    if (in->mod == 3)
        x86_ud(cpu);
    uint64_t la = x86_ea(cpu, in);
    unsigned size = in->osz;
    *off = x86_read(cpu, la, size);
    *sel = (uint16_t)x86_read(cpu, la + size, 2);
}

static void op_grp5(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned r = (in->modrm >> 3) & 7, osz = in->osz;
    uint64_t t;
    uint16_t sel;
    switch (r) {
    case 0: case 1:
        x86_incdec_rm(cpu, in, r == 1);
        return;
    case 2:   /* CALL near indirect: 64-bit operand in long mode */
        if (cpu->code64)
            osz = 8;
        t = x86_get_rm(cpu, in, osz);
        x86_push(cpu, cpu->rip, osz);
        x86_jump(cpu, t, osz);
        cpu->block_end = true;
        return;
    case 4:
        if (cpu->code64)
            osz = 8;
        x86_jump(cpu, x86_get_rm(cpu, in, osz), osz);
        cpu->block_end = true;
        return;
    case 3:
        far_ptr(cpu, in, &sel, &t);
        x86_far_call(cpu, sel, t, in->osz);
        cpu->block_end = true;
        return;
    case 5:
        far_ptr(cpu, in, &sel, &t);
        x86_far_jump(cpu, sel, t, in->osz);
        cpu->block_end = true;
        return;
    case 6:
        if (cpu->code64 && osz == 4)
            osz = 8;
        x86_push(cpu, x86_get_rm(cpu, in, osz), osz);
        return;
    default:
        x86_unimp(cpu, in);
    }
}

static void op_far_direct(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint16_t sel = (uint16_t)in->disp;
    if (in->op == 0x9a)
        x86_far_call(cpu, sel, in->imm, in->osz);
    else
        x86_far_jump(cpu, sel, in->imm, in->osz);
}

static void op_retf(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_far_ret(cpu, in->osz, in->op == 0xca ? (uint16_t)in->imm : 0);
}

static void op_int(struct x86_cpu *cpu, const struct x86_insn *in)
{
    switch (in->op) {
    case 0xcc:
        x86_interrupt(cpu, X86_EXC_BP, false, 0, X86_INT_SOFT);
        break;
    case 0xcd:
        if ((x86_get_flags(cpu) & X86_VM) && ((cpu->rflags >> 12) & 3) < 3)
            x86_gp0(cpu);
        x86_interrupt(cpu, (int)in->imm, false, 0, X86_INT_SOFT);
        break;
    case 0xce:
        if (x86_cond(cpu, 0))
            x86_interrupt(cpu, X86_EXC_OF, false, 0, X86_INT_SOFT);
        break;
    default:  /* F1: INT1 behaves like a debug trap */
        x86_interrupt(cpu, X86_EXC_DB, false, 0, X86_INT_EXT);
        break;
    }
}

static void op_iret(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_iret(cpu, in->osz);
}

static void op_hlt(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (cpu->cpl)
        x86_gp0(cpu);
    cpu->halted = true;
    cpu->block_end = true;
}

void x86_flow_register(struct x86_op_table *t)
{
    for (unsigned i = 0; i < 16; i++) {
        x86_op_set(t, X86_MAP_1B, 0, 0x70 + i, jcc_fn[i]);
        x86_op_set(t, X86_MAP_0F, 0, 0x80 + i, jcc_fn[i]);
    }
    x86_op_set(t, X86_MAP_1B, 0, 0x9a, op_far_direct);
    x86_op_set(t, X86_MAP_1B, 0, 0xea, op_far_direct);
    x86_op_set(t, X86_MAP_1B, 0, 0xc2, op_ret);
    x86_op_set(t, X86_MAP_1B, 0, 0xc3, op_ret);
    x86_op_set(t, X86_MAP_1B, 0, 0xca, op_retf);
    x86_op_set(t, X86_MAP_1B, 0, 0xcb, op_retf);
    x86_op_set(t, X86_MAP_1B, 0, 0xcc, op_int);
    x86_op_set(t, X86_MAP_1B, 0, 0xcd, op_int);
    x86_op_set(t, X86_MAP_1B, 0, 0xce, op_int);
    x86_op_set(t, X86_MAP_1B, 0, 0xf1, op_int);
    x86_op_set(t, X86_MAP_1B, 0, 0xcf, op_iret);
    for (unsigned i = 0xe0; i < 0xe4; i++)
        x86_op_set(t, X86_MAP_1B, 0, i, op_loop);
    x86_op_set(t, X86_MAP_1B, 0, 0xe8, op_call_rel);
    x86_op_set(t, X86_MAP_1B, 0, 0xe9, op_jmp_rel);
    x86_op_set(t, X86_MAP_1B, 0, 0xeb, op_jmp_rel);
    x86_op_set(t, X86_MAP_1B, 0, 0xf4, op_hlt);
    x86_op_set(t, X86_MAP_1B, 0, 0xff, op_grp5);
}
