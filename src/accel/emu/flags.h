/* Recording lazy flags from ALU handlers (flags.c computes them). */
#ifndef QUOKKA_ACCEL_EMU_FLAGS_H
#define QUOKKA_ACCEL_EMU_FLAGS_H

#include "accel/emu/cpu_int.h"

/* ADC/SBB with carry-in 0 record ADD/SUB; with carry-in 1, ADC/SBB. */
static inline void x86_lf(struct x86_cpu *cpu, unsigned op, unsigned size, uint64_t a,
                          uint64_t b, uint64_t res)
{
    cpu->lf.op = op;
    cpu->lf.size = size;
    cpu->lf.a = a;
    cpu->lf.b = b;
    cpu->lf.res = res;
}

/* INC/DEC keep CF: materialize it first. */
static inline void x86_lf_incdec(struct x86_cpu *cpu, unsigned op, unsigned size, uint64_t res)
{
    if (cpu->lf.op != X86_LF_NONE)
        x86_get_flags(cpu);
    cpu->lf.op = op;
    cpu->lf.size = size;
    cpu->lf.res = res;
}

static inline bool x86_get_cf(struct x86_cpu *cpu)
{
    return x86_get_flags(cpu) & X86_CF;
}

#endif
