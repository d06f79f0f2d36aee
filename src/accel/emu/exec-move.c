/* Data movement: MOV forms, LEA, MOVZX/MOVSX/MOVSXD, XCHG, PUSH/POP,
 * PUSHA/POPA, ENTER/LEAVE, XLAT, NOP/PAUSE, IN/OUT. */
#include "accel/emu/exec.h"

static inline uint64_t sext(uint64_t v, unsigned size)
{
    unsigned sh = 64 - 8 * size;
    return (uint64_t)((int64_t)(v << sh) >> sh);
}

/* ---- stack ----------------------------------------------------------------- */

void x86_push(struct x86_cpu *cpu, uint64_t v, unsigned size)
{
    uint64_t sp = cpu->gpr[X86_RSP] - size;
    if (cpu->code64) {
        x86_write(cpu, sp, v, size);
        cpu->gpr[X86_RSP] = sp;
    } else if (cpu->stack32) {
        x86_write(cpu, (uint32_t)(cpu->seg[X86_SS].base + (uint32_t)sp), v, size);
        cpu->gpr[X86_RSP] = (uint32_t)sp;
    } else {
        x86_write(cpu, (uint32_t)(cpu->seg[X86_SS].base + (uint16_t)sp), v, size);
        cpu->gpr[X86_RSP] = (cpu->gpr[X86_RSP] & ~0xffffull) | (uint16_t)sp;
    }
}

static uint64_t stack_la(struct x86_cpu *cpu, uint64_t off)
{
    if (cpu->code64)
        return cpu->gpr[X86_RSP] + off;
    if (cpu->stack32)
        return (uint32_t)(cpu->seg[X86_SS].base + (uint32_t)(cpu->gpr[X86_RSP] + off));
    return (uint32_t)(cpu->seg[X86_SS].base + (uint16_t)(cpu->gpr[X86_RSP] + off));
}

static void sp_add(struct x86_cpu *cpu, uint64_t n)
{
    if (cpu->code64)
        cpu->gpr[X86_RSP] += n;
    else if (cpu->stack32)
        cpu->gpr[X86_RSP] = (uint32_t)(cpu->gpr[X86_RSP] + n);
    else
        cpu->gpr[X86_RSP] = (cpu->gpr[X86_RSP] & ~0xffffull) | (uint16_t)(cpu->gpr[X86_RSP] + n);
}

uint64_t x86_pop(struct x86_cpu *cpu, unsigned size)
{
    uint64_t v = x86_read(cpu, stack_la(cpu, 0), size);
    sp_add(cpu, size);
    return v;
}

static void op_push_r(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_push(cpu, cpu->gpr[in->reg], in->osz);
}

static void op_pop_r(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint64_t v = x86_pop(cpu, in->osz);
    x86_set_reg(cpu, in, in->reg, in->osz, v);
}

static void op_push_imm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_push(cpu, in->imm, in->osz);
}

static void op_pop_rm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t v = x86_read(cpu, stack_la(cpu, 0), size);
    if (in->mod == 3) {
        sp_add(cpu, size);
        x86_set_reg(cpu, in, in->rm, size, v);
        return;
    }
    /* the address uses RSP after the pop */
    uint64_t old = cpu->gpr[X86_RSP];
    sp_add(cpu, size);
    uint64_t la = x86_ea(cpu, in);
    cpu->gpr[X86_RSP] = old;
    x86_write(cpu, la, v, size);
    sp_add(cpu, size);
}

static void op_pusha(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t sp = cpu->gpr[X86_RSP];
    for (int r = 0; r < 8; r++)
        x86_push(cpu, r == X86_RSP ? sp : cpu->gpr[r], size);
}

static void op_popa(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    for (int r = 7; r >= 0; r--) {
        uint64_t v = x86_pop(cpu, size);
        if (r != X86_RSP)
            x86_set_reg(cpu, in, r, size, v);
    }
}

static void op_enter(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, level = in->imm2 & 31;
    uint64_t bp = cpu->gpr[X86_RBP];
    x86_push(cpu, bp, size);
    uint64_t frame = cpu->gpr[X86_RSP];
    for (unsigned i = 1; i < level; i++) {
        uint64_t a;
        if (cpu->code64)
            a = bp - i * size;
        else if (cpu->stack32)
            a = cpu->seg[X86_SS].base + (uint32_t)(bp - i * size);
        else
            a = cpu->seg[X86_SS].base + (uint16_t)(bp - i * size);
        x86_push(cpu, x86_read(cpu, a, size), size);
    }
    if (level)
        x86_push(cpu, frame, size);
    x86_set_reg(cpu, in, X86_RBP, cpu->code64 ? size : cpu->stack32 ? 4 : 2, frame);
    uint64_t sp = cpu->gpr[X86_RSP] - in->imm;
    if (cpu->code64)
        cpu->gpr[X86_RSP] = sp;
    else if (cpu->stack32)
        cpu->gpr[X86_RSP] = (uint32_t)sp;
    else
        cpu->gpr[X86_RSP] = (cpu->gpr[X86_RSP] & ~0xffffull) | (uint16_t)sp;
}

static void op_leave(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (cpu->code64)
        cpu->gpr[X86_RSP] = cpu->gpr[X86_RBP];
    else if (cpu->stack32)
        cpu->gpr[X86_RSP] = (uint32_t)cpu->gpr[X86_RBP];
    else
        cpu->gpr[X86_RSP] = (cpu->gpr[X86_RSP] & ~0xffffull) | (uint16_t)cpu->gpr[X86_RBP];
    uint64_t v = x86_pop(cpu, in->osz);
    x86_set_reg(cpu, in, X86_RBP, in->osz, v);
}

/* ---- MOV ---------------------------------------------------------------------- */

static void op_mov_rm_r(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_set_rm(cpu, in, in->osz, x86_get_reg(cpu, in, in->reg, in->osz));
}

static void op_mov_r_rm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_set_reg(cpu, in, in->reg, in->osz, x86_get_rm(cpu, in, in->osz));
}

/* 64-bit register-to-register and load/store fast paths */
static void op_mov_rm_r64(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod == 3)
        cpu->gpr[in->rm] = cpu->gpr[in->reg];
    else
        x86_write64(cpu, x86_ea(cpu, in), cpu->gpr[in->reg]);
}

static void op_mov_r_rm64(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod == 3)
        cpu->gpr[in->reg] = cpu->gpr[in->rm];
    else
        cpu->gpr[in->reg] = x86_read64(cpu, x86_ea(cpu, in));
}

static void op_mov_rm_imm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (((in->modrm >> 3) & 7) != 0)
        x86_unimp(cpu, in);
    x86_set_rm(cpu, in, in->osz, in->imm);
}

static void op_mov_r_imm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_set_reg(cpu, in, in->reg, in->osz, in->imm);
}

static void op_mov_moffs(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint64_t la = in->imm + cpu->segbase[in->seg];
    if (!cpu->code64)
        la = (uint32_t)la;
    if (in->op & 2)
        x86_write(cpu, la, x86_get_reg(cpu, in, X86_RAX, in->osz), in->osz);
    else
        x86_set_reg(cpu, in, X86_RAX, in->osz, x86_read(cpu, la, in->osz));
}

static void op_lea(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod == 3)
        x86_ud(cpu);
    x86_set_reg(cpu, in, in->reg, in->osz, x86_ea_offset(cpu, in));
}

static void op_movzx(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned ssize = in->op == 0xb6 ? 1 : 2;
    uint64_t v = in->mod == 3 ? x86_get_reg(cpu, in, in->rm, ssize)
                              : x86_read(cpu, x86_ea(cpu, in), ssize);
    x86_set_reg(cpu, in, in->reg, in->osz, v);
}

/* MOVZX r32/64, m8 and r32, m16: the common load forms */
static void op_movzx_b_mem32(struct x86_cpu *cpu, const struct x86_insn *in)
{
    cpu->gpr[in->reg] = x86_read8(cpu, x86_ea(cpu, in));
}

static void op_movzx_w_mem32(struct x86_cpu *cpu, const struct x86_insn *in)
{
    cpu->gpr[in->reg] = x86_read16(cpu, x86_ea(cpu, in));
}

/* 32-bit MOV forms (writing a 32-bit register clears the upper half) */
static void op_mov_rm_r32(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod == 3)
        cpu->gpr[in->rm] = (uint32_t)cpu->gpr[in->reg];
    else
        x86_write32(cpu, x86_ea(cpu, in), (uint32_t)cpu->gpr[in->reg]);
}

static void op_mov_r_rm32(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod == 3)
        cpu->gpr[in->reg] = (uint32_t)cpu->gpr[in->rm];
    else
        cpu->gpr[in->reg] = x86_read32(cpu, x86_ea(cpu, in));
}

static void op_store8(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_write8(cpu, x86_ea(cpu, in), (uint8_t)x86_get_reg(cpu, in, in->reg, 1));
}

static void op_load8(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_set_reg(cpu, in, in->reg, 1, x86_read8(cpu, x86_ea(cpu, in)));
}

static void op_mov_r_imm64(struct x86_cpu *cpu, const struct x86_insn *in)
{
    cpu->gpr[in->reg] = in->imm;
}

static void op_mov_r_imm32(struct x86_cpu *cpu, const struct x86_insn *in)
{
    cpu->gpr[in->reg] = (uint32_t)in->imm;
}

static void op_movsx(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned ssize = in->op == 0xbe ? 1 : 2;
    uint64_t v = in->mod == 3 ? x86_get_reg(cpu, in, in->rm, ssize)
                              : x86_read(cpu, x86_ea(cpu, in), ssize);
    x86_set_reg(cpu, in, in->reg, in->osz, sext(v, ssize));
}

/* 63: MOVSXD in 64-bit mode, ARPL elsewhere */
static void op_movsxd(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (!cpu->code64) {
        if (!x86_protected(cpu))
            x86_ud(cpu);
        /* ARPL */
        uint64_t d = x86_get_rm(cpu, in, 2), s = x86_get_reg(cpu, in, in->reg, 2);
        uint64_t f = x86_get_flags(cpu) & ~(uint64_t)X86_ZF;
        if ((d & 3) < (s & 3)) {
            x86_set_rm(cpu, in, 2, (d & ~3ull) | (s & 3));
            f |= X86_ZF;
        }
        cpu->rflags = f;
        return;
    }
    uint64_t v = x86_get_rm(cpu, in, 4);
    x86_set_reg(cpu, in, in->reg, in->osz, in->osz == 8 ? sext(v, 4) : v);
}

/* ---- XCHG, NOP --------------------------------------------------------------------- */

static void op_xchg_rm_r(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t r = x86_get_reg(cpu, in, in->reg, size), old;
    if (in->mod == 3) {
        old = x86_get_reg(cpu, in, in->rm, size);
        x86_set_reg(cpu, in, in->rm, size, r);
    } else {
        uint64_t la = x86_ea(cpu, in);
        uint8_t *p = x86_host_ptr_w(cpu, la, size);
        if (p) {
            old = x86_load(p, size);
            while (!x86_cas(p, size, &old, r))
                ;
        } else {
            old = x86_read(cpu, la, size);
            x86_write(cpu, la, r, size);
        }
    }
    x86_set_reg(cpu, in, in->reg, size, old);
}

static void op_xchg_acc(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    if (in->reg == 0) {           /* 90: NOP (PAUSE with F3); XCHG EAX,EAX too */
        if (in->pfx & X86_PFX_F3)
            __builtin_ia32_pause();
        return;
    }
    uint64_t a = x86_get_reg(cpu, in, X86_RAX, size), b = x86_get_reg(cpu, in, in->reg, size);
    x86_set_reg(cpu, in, X86_RAX, size, b);
    x86_set_reg(cpu, in, in->reg, size, a);
}

static void op_nop_rm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    /* 0F 18-1F: hint NOPs and prefetches; 0F 0D prefetchw */
}

static void op_xlat(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint64_t a = cpu->gpr[X86_RBX] + (uint8_t)cpu->gpr[X86_RAX];
    if (in->asz == 4)
        a = (uint32_t)a;
    else if (in->asz == 2)
        a = (uint16_t)a;
    x86_set_reg(cpu, in, X86_RAX, 1, x86_read8(cpu, a + cpu->segbase[in->seg]));
}

/* ---- port I/O --------------------------------------------------------------------- */

void x86_check_io(struct x86_cpu *cpu, uint16_t port, unsigned size)
{
    if (!x86_protected(cpu) && !(x86_get_flags(cpu) & X86_VM))
        return;
    unsigned iopl = (cpu->rflags >> 12) & 3;
    if (cpu->cpl <= iopl && !(cpu->rflags & X86_VM))
        return;
    /* the TSS I/O permission bitmap */
    const struct x86_seg *tr = &cpu->seg[X86_TR];
    if (tr->limit < 0x67)
        x86_gp0(cpu);
    uint16_t base = (uint16_t)x86_sys_read(cpu, tr->base + 0x66, 2);
    if ((uint32_t)base + port / 8 + 1 > tr->limit)
        x86_gp0(cpu);
    uint16_t bits = (uint16_t)x86_sys_read(cpu, tr->base + base + port / 8, 2);
    if ((bits >> (port & 7)) & ((1u << size) - 1))
        x86_gp0(cpu);
}

static void op_in(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz == 8 ? 4 : in->osz;
    uint16_t port = (in->op & 8) ? (uint16_t)cpu->gpr[X86_RDX] : (uint16_t)in->imm;
    x86_check_io(cpu, port, size);
    uint32_t v = cpu->bus.pio_in(cpu->bus.opaque, port, size);
    x86_set_reg(cpu, in, X86_RAX, size, v);
}

static void op_out(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz == 8 ? 4 : in->osz;
    uint16_t port = (in->op & 8) ? (uint16_t)cpu->gpr[X86_RDX] : (uint16_t)in->imm;
    x86_check_io(cpu, port, size);
    cpu->bus.pio_out(cpu->bus.opaque, port, (uint32_t)x86_get_reg(cpu, in, X86_RAX, size), size);
}

void x86_move_register(struct x86_op_table *t)
{
    for (unsigned i = 0; i < 8; i++) {
        x86_op_set(t, X86_MAP_1B, 0, 0x50 + i, op_push_r);
        x86_op_set(t, X86_MAP_1B, 0, 0x58 + i, op_pop_r);
        x86_op_set(t, X86_MAP_1B, 0, 0x90 + i, op_xchg_acc);
        x86_op_set(t, X86_MAP_1B, 0, 0xb0 + i, op_mov_r_imm);
        x86_op_set(t, X86_MAP_1B, 0, 0xb8 + i, op_mov_r_imm);
    }
    x86_op_set(t, X86_MAP_1B, 0, 0x60, op_pusha);
    x86_op_set(t, X86_MAP_1B, 0, 0x61, op_popa);
    x86_op_set(t, X86_MAP_1B, 0, 0x63, op_movsxd);
    x86_op_set(t, X86_MAP_1B, 0, 0x68, op_push_imm);
    x86_op_set(t, X86_MAP_1B, 0, 0x6a, op_push_imm);
    x86_op_set(t, X86_MAP_1B, 0, 0x86, op_xchg_rm_r);
    x86_op_set(t, X86_MAP_1B, 0, 0x87, op_xchg_rm_r);
    x86_op_set(t, X86_MAP_1B, 0, 0x88, op_mov_rm_r);
    x86_op_set(t, X86_MAP_1B, 0, 0x89, op_mov_rm_r);
    x86_op_set(t, X86_MAP_1B, 0, 0x8a, op_mov_r_rm);
    x86_op_set(t, X86_MAP_1B, 0, 0x8b, op_mov_r_rm);
    x86_op_set(t, X86_MAP_1B, 0, 0x8d, op_lea);
    x86_op_set(t, X86_MAP_1B, 0, 0x8f, op_pop_rm);
    for (unsigned i = 0xa0; i < 0xa4; i++)
        x86_op_set(t, X86_MAP_1B, 0, i, op_mov_moffs);
    x86_op_set(t, X86_MAP_1B, 0, 0xc6, op_mov_rm_imm);
    x86_op_set(t, X86_MAP_1B, 0, 0xc7, op_mov_rm_imm);
    x86_op_set(t, X86_MAP_1B, 0, 0xc8, op_enter);
    x86_op_set(t, X86_MAP_1B, 0, 0xc9, op_leave);
    x86_op_set(t, X86_MAP_1B, 0, 0xd7, op_xlat);
    x86_op_set(t, X86_MAP_1B, 0, 0xe4, op_in);
    x86_op_set(t, X86_MAP_1B, 0, 0xe5, op_in);
    x86_op_set(t, X86_MAP_1B, 0, 0xec, op_in);
    x86_op_set(t, X86_MAP_1B, 0, 0xed, op_in);
    x86_op_set(t, X86_MAP_1B, 0, 0xe6, op_out);
    x86_op_set(t, X86_MAP_1B, 0, 0xe7, op_out);
    x86_op_set(t, X86_MAP_1B, 0, 0xee, op_out);
    x86_op_set(t, X86_MAP_1B, 0, 0xef, op_out);
    x86_op_set(t, X86_MAP_0F, 0, 0xb6, op_movzx);
    x86_op_set(t, X86_MAP_0F, 0, 0xb7, op_movzx);
    x86_op_set(t, X86_MAP_0F, 0, 0xbe, op_movsx);
    x86_op_set(t, X86_MAP_0F, 0, 0xbf, op_movsx);
    x86_op_set(t, X86_MAP_0F, 0, 0x0d, op_nop_rm);
    for (unsigned i = 0x18; i < 0x20; i++)
        x86_op_set(t, X86_MAP_0F, 0, i, op_nop_rm);
}

/* 64-bit PUSH/POP r (only 64-bit mode has osz 8 here): flat stack */
static void op_push_r64(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint64_t v = cpu->gpr[in->reg], sp = cpu->gpr[X86_RSP] - 8;
    x86_write64(cpu, sp, v);
    cpu->gpr[X86_RSP] = sp;
}

static void op_pop_r64(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint64_t v = x86_read64(cpu, cpu->gpr[X86_RSP]);
    cpu->gpr[X86_RSP] += 8;
    cpu->gpr[in->reg] = v;
}

/* Specialised handlers the decoder substitutes for common forms. */
x86_handler *x86_move_fast(const struct x86_insn *in)
{
    if (in->map == X86_MAP_1B) {
        switch (in->op) {
        case 0x50 ... 0x57:
            return in->osz == 8 ? op_push_r64 : NULL;
        case 0x58 ... 0x5f:
            return in->osz == 8 ? op_pop_r64 : NULL;
        case 0x88:
            return in->mod != 3 ? op_store8 : NULL;
        case 0x8a:
            return in->mod != 3 ? op_load8 : NULL;
        case 0x89:
            return in->osz == 8 ? op_mov_rm_r64 : in->osz == 4 ? op_mov_rm_r32 : NULL;
        case 0x8b:
            return in->osz == 8 ? op_mov_r_rm64 : in->osz == 4 ? op_mov_r_rm32 : NULL;
        case 0xb8 ... 0xbf:
            return in->osz == 8 ? op_mov_r_imm64 : in->osz == 4 ? op_mov_r_imm32 : NULL;
        }
        return NULL;
    }
    if (in->map == X86_MAP_0F && in->mod != 3 && (in->osz == 4 || in->osz == 8)) {
        if (in->op == 0xb6)
            return op_movzx_b_mem32;
        if (in->op == 0xb7)
            return op_movzx_w_mem32;
    }
    return NULL;
}
