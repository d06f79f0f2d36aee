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

/* CF of the pending lazy result without materializing the other flags;
 * with no pending op (or INC/DEC, which keep CF) it is in rflags. */
static inline bool x86_lazy_cf(struct x86_cpu *cpu)
{
    const struct x86_lazy *lf = &cpu->lf;
    unsigned sh = 64 - 8 * lf->size;
    switch (lf->op) {
    case X86_LF_NONE: case X86_LF_INC: case X86_LF_DEC:
        return cpu->rflags & X86_CF;
    case X86_LF_LOGIC:
        return false;
    case X86_LF_SUB:
        return (lf->a << sh) < (lf->b << sh);
    case X86_LF_SBB:
        return (lf->a << sh) <= (lf->b << sh);
    case X86_LF_ADD:
        return (lf->res << sh) < (lf->a << sh);
    case X86_LF_ADC:
        return (lf->res << sh) <= (lf->a << sh);
    case X86_LF_MUL:
        return lf->b & X86_CF;
    default:
        return x86_get_flags(cpu) & X86_CF;
    }
}

/* INC/DEC keep CF: only CF of the pending result must land in rflags, as
 * the INC/DEC record recomputes every other arithmetic flag. */
static inline void x86_lf_incdec(struct x86_cpu *cpu, unsigned op, unsigned size, uint64_t res)
{
    if (cpu->lf.op != X86_LF_NONE && cpu->lf.op != X86_LF_INC && cpu->lf.op != X86_LF_DEC)
        cpu->rflags = (cpu->rflags & ~(uint64_t)X86_CF) | (x86_lazy_cf(cpu) ? X86_CF : 0);
    cpu->lf.op = op;
    cpu->lf.size = size;
    cpu->lf.res = res;
}

static inline bool x86_get_cf(struct x86_cpu *cpu)
{
    return x86_lazy_cf(cpu);
}

/* x86_cond for callers with a constant cc: the compiler keeps one path. */
static inline __attribute__((always_inline)) bool x86_cond_inline(struct x86_cpu *cpu, unsigned cc)
{
    bool r;
    const struct x86_lazy *lf = &cpu->lf;

    /* the common compare-and-branch shapes without materializing */
    if (lf->op != X86_LF_NONE) {
        unsigned sh = 64 - 8 * lf->size;
        switch (cc >> 1) {
        case 2: r = (lf->res << sh) == 0; goto out;                /* Z from any result */
        case 4: r = (int64_t)(lf->res << sh) < 0; goto out;        /* S */
        }
    }
    if ((cc >> 1) == 1) {
        r = x86_lazy_cf(cpu);                                       /* B */
        goto out;
    }
    if (lf->op == X86_LF_SUB) {
        unsigned sh = 64 - 8 * lf->size;
        uint64_t a = lf->a << sh, b = lf->b << sh;
        switch (cc >> 1) {
        case 1: r = a < b; goto out;                                  /* B */
        case 2: r = a == b; goto out;                                 /* Z */
        case 3: r = a <= b; goto out;                                 /* BE */
        case 6: r = (int64_t)a < (int64_t)b; goto out;                /* L */
        case 7: r = (int64_t)a <= (int64_t)b; goto out;               /* LE */
        }
    } else if (lf->op == X86_LF_ADD && (cc >> 1) == 1) {
        unsigned sh = 64 - 8 * lf->size;
        r = (lf->res << sh) < (lf->a << sh);
        goto out;
    } else if (lf->op == X86_LF_LOGIC) {
        unsigned sh = 64 - 8 * lf->size;
        int64_t v = (int64_t)(lf->res << sh);
        switch (cc >> 1) {
        case 0: r = false; goto out;    /* O */
        case 1: r = false; goto out;    /* B */
        case 2: r = v == 0; goto out;
        case 3: r = v == 0; goto out;
        case 4: r = v < 0; goto out;
        case 6: r = v < 0; goto out;
        case 7: r = v <= 0; goto out;
        }
    }
    uint64_t f = x86_get_flags(cpu);
    switch (cc >> 1) {
    case 0: r = f & X86_OF; break;
    case 1: r = f & X86_CF; break;
    case 2: r = f & X86_ZF; break;
    case 3: r = f & (X86_CF | X86_ZF); break;
    case 4: r = f & X86_SF; break;
    case 5: r = f & X86_PF; break;
    case 6: r = !(f & X86_SF) != !(f & X86_OF); break;
    default: r = (f & X86_ZF) || (!(f & X86_SF) != !(f & X86_OF)); break;
    }
out:
    return r ^ (cc & 1);
}

#endif
