/* Helpers shared by the SIMD/x87 instruction handlers (sse.c, sse4.c,
 * mmx.c, x87.c, fxsave.c): operand access for XMM and MMX registers,
 * MXCSR exception delivery, and each file's registration hook. */
#ifndef QUOKKA_ACCEL_EMU_SSE_EXEC_H
#define QUOKKA_ACCEL_EMU_SSE_EXEC_H

#include "accel/emu/cpu_int.h"
#include "accel/emu/sse_ops.h"

void sse_register(struct x86_op_table *t);
void sse4_register(struct x86_op_table *t);
void mmx_register(struct x86_op_table *t);
void x87_register(struct x86_op_table *t);
void fxsave_register(struct x86_op_table *t);
void aes_register(struct x86_op_table *t);

/* #MF for a pending unmasked x87 exception (waiting x87 and MMX insns). */
void x87_check_pending(struct x86_cpu *cpu);

/* x86_check_sse() with the common case inline. */
static inline void sse_check(struct x86_cpu *cpu)
{
    if (X86_UNLIKELY((cpu->cr0 & (X86_CR0_EM | X86_CR0_TS)) || !(cpu->cr4 & X86_CR4_OSFXSR)))
        x86_check_sse(cpu);
}

static inline x86_xmm *sse_reg(struct x86_cpu *cpu, unsigned n)
{
    return &cpu->fpu.xmm[n & 15];
}

/* #GP(0) unless la is 16-byte aligned (legacy SSE m128 operands). */
static inline void sse_check_align(struct x86_cpu *cpu, uint64_t la)
{
    if (X86_UNLIKELY(la & 15))
        x86_gp0(cpu);
}

/* The r/m operand: an XMM register, or n bytes of memory (zero-extended);
 * align demands a 16-byte aligned m128. */
static inline void sse_get_rm(struct x86_cpu *cpu, const struct x86_insn *in, x86_xmm *v,
                              unsigned n, bool align)
{
    if (in->mod == 3) {
        *v = *sse_reg(cpu, in->rm);
        return;
    }
    uint64_t la = x86_ea(cpu, in);
    if (align)
        sse_check_align(cpu, la);
    v->q[0] = v->q[1] = 0;
    switch (n) {
    case 16:
        /* the TLB fast paths; a page-crossing read faults before use */
        v->q[0] = x86_read64(cpu, la);
        v->q[1] = x86_read64(cpu, la + 8);
        break;
    case 8: v->q[0] = x86_read64(cpu, la); break;
    case 4: v->d[0] = x86_read32(cpu, la); break;
    default: x86_read_mem(cpu, la, v, n); break;
    }
}

/* Store the low n bytes of v to memory operand (not for mod == 3). */
static inline void sse_put_mem(struct x86_cpu *cpu, const struct x86_insn *in, const x86_xmm *v,
                               unsigned n, bool align)
{
    uint64_t la = x86_ea(cpu, in);
    if (align)
        sse_check_align(cpu, la);
    if (n == 16 && (la & 0xfff) <= 4096 - 16) {
        /* one page: the second store cannot fault after the first */
        x86_write64(cpu, la, v->q[0]);
        x86_write64(cpu, la + 8, v->q[1]);
    } else if (n == 8) {
        x86_write64(cpu, la, v->q[0]);
    } else {
        x86_write_mem(cpu, la, v, n);
    }
}

/* Merge flags raised by an SSE float op into MXCSR; #XM (or #UD without
 * CR4.OSXMMEXCPT) if any is unmasked, before the destination is written.
 * An unmasked pre-computation exception (#I, #D, #Z) stops the operation
 * before the result exists: only those flags are recorded then. */
static inline void sse_fp_commit(struct x86_cpu *cpu, unsigned flags)
{
    uint32_t mx = cpu->fpu.mxcsr;
    unsigned unmasked = flags & ~(mx >> MXCSR_MASK_SHIFT) & MXCSR_FLAGS;
    if (X86_LIKELY(!unmasked)) {
        cpu->fpu.mxcsr = mx | flags;
        return;
    }
    if (unmasked & (MXCSR_IE | MXCSR_DE | MXCSR_ZE))
        flags &= MXCSR_IE | MXCSR_DE | MXCSR_ZE;
    cpu->fpu.mxcsr = mx | flags;
    x86_raise_noerr(cpu, (cpu->cr4 & X86_CR4_OSXMMEXCPT) ? X86_EXC_XM : X86_EXC_UD);
}

/* ---- MMX ---- */

/* MMX instructions: #UD with CR0.EM, #NM with CR0.TS, then #MF for a
 * pending x87 exception. */
static inline void mmx_check(struct x86_cpu *cpu)
{
    if (X86_UNLIKELY(cpu->cr0 & (X86_CR0_EM | X86_CR0_TS))) {
        if (cpu->cr0 & X86_CR0_EM)
            x86_ud(cpu);
        x86_raise_noerr(cpu, X86_EXC_NM);
    }
    if (X86_UNLIKELY(cpu->fpu.fsw & FSW_ES))
        x87_check_pending(cpu);
}

/* Entering MMX: x87 TOP = 0, all registers tagged valid. */
static inline void mmx_enter(struct x86_cpu *cpu)
{
    mmx_check(cpu);
    cpu->fpu.top = 0;
    cpu->fpu.tag_valid = 0xff;
}

static inline uint64_t mmx_get(struct x86_cpu *cpu, unsigned n)
{
    return cpu->fpu.st[n & 7].mant;
}

static inline void mmx_set(struct x86_cpu *cpu, unsigned n, uint64_t v)
{
    cpu->fpu.st[n & 7].mant = v;
    cpu->fpu.st[n & 7].sexp = 0xffff;
}

/* The MMX r/m operand (register or m64). */
static inline uint64_t mmx_get_rm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod == 3)
        return mmx_get(cpu, in->rm);
    return x86_read64(cpu, x86_ea(cpu, in));
}

#endif
