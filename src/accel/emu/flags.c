/* Lazy arithmetic flags: ALU handlers record (op, size, a, b, result) and
 * the flags are computed here only when something reads them. */
#include "accel/emu/cpu_int.h"
#include "accel/emu/flags.h"

static inline uint64_t size_mask(unsigned size)
{
    return size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

static inline unsigned parity(uint64_t v)
{
    return __builtin_parity((unsigned)(v & 0xff)) ? 0 : X86_PF;
}

static uint64_t compute(const struct x86_lazy *lf, uint64_t old)
{
    uint64_t m = size_mask(lf->size), sign = 1ull << (8 * lf->size - 1);
    uint64_t r = lf->res & m, a = lf->a & m, b = lf->b & m;
    uint64_t f = parity(r) | (r ? 0 : X86_ZF) | ((r & sign) ? X86_SF : 0);

    switch (lf->op) {
    case X86_LF_ADD:
        f |= (r < a ? X86_CF : 0) | (((a ^ r) & (b ^ r) & sign) ? X86_OF : 0) | ((a ^ b ^ r) & X86_AF);
        break;
    case X86_LF_ADC:   /* ADD with carry-in 1 (ADC with CF=0 records ADD) */
        f |= (r <= a ? X86_CF : 0) | (((a ^ r) & (b ^ r) & sign) ? X86_OF : 0) | ((a ^ b ^ r) & X86_AF);
        break;
    case X86_LF_SBB:   /* SUB with borrow-in 1 */
        f |= (a <= b ? X86_CF : 0) | (((a ^ b) & (a ^ r) & sign) ? X86_OF : 0) | ((a ^ b ^ r) & X86_AF);
        break;
    case X86_LF_SUB:
        f |= (a < b ? X86_CF : 0) | (((a ^ b) & (a ^ r) & sign) ? X86_OF : 0) | ((a ^ b ^ r) & X86_AF);
        break;
    case X86_LF_LOGIC:
        break;
    case X86_LF_SHL: {
        unsigned bits = 8 * lf->size, c = (unsigned)lf->b;
        bool cf = c <= bits ? (a >> (bits - c)) & 1 : 0;
        f |= (cf ? X86_CF : 0) | ((((r & sign) != 0) ^ cf) ? X86_OF : 0);
        break;
    }
    case X86_LF_SHR:
        f |= ((a >> (lf->b - 1)) & 1 ? X86_CF : 0) | ((a & sign) ? X86_OF : 0);
        break;
    case X86_LF_SAR: {
        unsigned sh = 64 - 8 * lf->size, c = (unsigned)lf->b - 1;
        int64_t sa = (int64_t)(a << sh) >> sh;
        f |= ((uint64_t)(sa >> (c > 63 ? 63 : c)) & 1) ? X86_CF : 0;
        break;
    }
    case X86_LF_MUL:
        f |= lf->b & (X86_CF | X86_OF);
        break;
    case X86_LF_INC:
        f |= (old & X86_CF) | (r == sign ? X86_OF : 0) | ((r & 0xf) == 0 ? X86_AF : 0);
        break;
    case X86_LF_DEC:
        f |= (old & X86_CF) | (r == sign - 1 ? X86_OF : 0) | ((r & 0xf) == 0xf ? X86_AF : 0);
        break;
    }
    return f;
}

uint64_t x86_get_flags(struct x86_cpu *cpu)
{
    if (cpu->lf.op != X86_LF_NONE) {
        cpu->rflags = (cpu->rflags & ~(uint64_t)X86_ARITH_FLAGS) | compute(&cpu->lf, cpu->rflags);
        cpu->lf.op = X86_LF_NONE;
    }
    return cpu->rflags | 2;
}

void x86_set_flags(struct x86_cpu *cpu, uint64_t val, uint64_t mask)
{
    if (mask & X86_ARITH_FLAGS)
        x86_get_flags(cpu);
    cpu->rflags = (cpu->rflags & ~mask) | (val & mask);
}

bool x86_cond(struct x86_cpu *cpu, unsigned cc)
{
    return x86_cond_inline(cpu, cc);
}
