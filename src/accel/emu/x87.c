/* x87 FPU (D8..DF, 9B FWAIT). Values stay in the guest's 80-bit format;
 * arithmetic runs on the host's own x87 unit under the guest's control word
 * (precision and rounding) with exceptions masked, so results, condition
 * codes and flags match the hardware. Stack faults (SF), tags, TOP and the
 * masked/unmasked exception rules are ours. x86-64 hosts only, like sse_fp.c. */
#include "accel/emu/sse_exec.h"

#if !defined(__x86_64__)
#error "x87.c computes with the host's x87 unit: x86-64 hosts only"
#endif

static const struct x87_reg x87_indefinite = { 0xc000000000000000ull, 0xffff };

/* ---- host execution ---- */

enum x87_hop {
    H_ADD, H_SUB, H_SUBR, H_MUL, H_DIV, H_DIVR, H_PREM, H_PREM1, H_SCALE,
    H_PATAN, H_YL2X, H_YL2XP1, H_SQRT, H_RNDINT, H_F2XM1, H_SIN, H_COS,
    H_PTAN, H_SINCOS, H_XTRACT, H_COM, H_UCOM, H_TST,
    H_LD32, H_LD64, H_ILD16, H_ILD32, H_ILD64, H_BLD,
    H_ST32, H_ST64, H_IST16, H_IST32, H_IST64, H_ISTT16, H_ISTT32, H_ISTT64, H_BSTP,
    H_LD1, H_LDL2T, H_LDL2E, H_LDPI, H_LDLG2, H_LDLN2, H_LDZ,
    /* ST(0) op memory, in one step as the hardware does (NaN choice and
     * flags differ from converting first): H_MEM + 8 * type + ModRM.reg,
     * type 0 m32fp, 1 m64fp, 2 m32int, 3 m16int. */
    H_MEM,
};

struct x87_io {
    struct x87_reg a, b, r0, r1;
    uint16_t sw;                   /* status right after the operation */
    union { float f; double d; int16_t w; int32_t l; int64_t q; uint8_t bcd[10]; } m;
};

/* Each sequence records the status word right after the operation, before
 * the stores that move results out (which would clear C1). */
#define BIN(insn) __asm__ volatile("fldt %1\n\tfldt %0\n\t" insn "\n\tfnstsw %3\n\tfstpt %2\n\tfstp %%st(0)" \
                                   : : "m"(io->a), "m"(io->b), "m"(io->r0), "m"(io->sw) : "memory", "st", "st(1)")
#define BINPOP(insn) __asm__ volatile("fldt %1\n\tfldt %0\n\t" insn "\n\tfnstsw %3\n\tfstpt %2" \
                                      : : "m"(io->a), "m"(io->b), "m"(io->r0), "m"(io->sw) : "memory", "st", "st(1)")
#define UN(insn) __asm__ volatile("fldt %0\n\t" insn "\n\tfnstsw %2\n\tfstpt %1" \
                                  : : "m"(io->a), "m"(io->r0), "m"(io->sw) : "memory", "st")
/* Two results; a zero below catches the "no push" case (C2 set). */
#define UN2(insn) __asm__ volatile("fldz\n\tfldt %0\n\t" insn "\n\tfnstsw %3\n\tfstpt %1\n\tfstpt %2\n\tfstp %%st(0)" \
                                   : : "m"(io->a), "m"(io->r0), "m"(io->r1), "m"(io->sw) : "memory", "st", "st(1)", "st(2)")
#define CMP(insn) __asm__ volatile("fldt %1\n\tfldt %0\n\t" insn "\n\tfnstsw %2" \
                                   : : "m"(io->a), "m"(io->b), "m"(io->sw) : "memory", "st", "st(1)")
#define LD(insn) __asm__ volatile(insn " %0\n\tfnstsw %2\n\tfstpt %1" : : "m"(io->m), "m"(io->r0), "m"(io->sw) : "memory", "st")
#define CONST(insn) __asm__ volatile(insn "\n\tfnstsw %1\n\tfstpt %0" : : "m"(io->r0), "m"(io->sw) : "memory", "st")
#define ST(insn) __asm__ volatile("fldt %0\n\t" insn " %1\n\tfnstsw %2" : : "m"(io->a), "m"(io->m), "m"(io->sw) : "memory", "st")

#define MOP(insn) __asm__ volatile("fldt %0\n\t" insn " %1\n\tfnstsw %3\n\tfstpt %2" \
                                   : : "m"(io->a), "m"(io->m), "m"(io->r0), "m"(io->sw) : "memory", "st")
#define MCMP(insn) __asm__ volatile("fldt %0\n\t" insn " %1\n\tfnstsw %2\n\tfstp %%st(0)" \
                                    : : "m"(io->a), "m"(io->m), "m"(io->sw) : "memory", "st")
#define MOPS(base, s)                                                            \
    case base + 0: MOP("fadd" s); break;  case base + 1: MOP("fmul" s); break;   \
    case base + 2: MCMP("fcom" s); break; case base + 3: MCMP("fcom" s); break;  \
    case base + 4: MOP("fsub" s); break;  case base + 5: MOP("fsubr" s); break;  \
    case base + 6: MOP("fdiv" s); break;  case base + 7: MOP("fdivr" s); break;
#define IMOPS(base, s)                                                             \
    case base + 0: MOP("fiadd" s); break;  case base + 1: MOP("fimul" s); break;   \
    case base + 2: MCMP("ficom" s); break; case base + 3: MCMP("ficom" s); break;  \
    case base + 4: MOP("fisub" s); break;  case base + 5: MOP("fisubr" s); break;  \
    case base + 6: MOP("fidiv" s); break;  case base + 7: MOP("fidivr" s); break;

static void x87_host_mem(unsigned op, struct x87_io *io)
{
    switch (op - H_MEM) {
    MOPS(0, "s")
    MOPS(8, "l")
    IMOPS(16, "l")
    IMOPS(24, "s")
    }
}

/* Returns the host status word after the operation: exception flags, and
 * C0..C3 as the operation left them. The host starts from the guest's
 * control word (exceptions masked) and condition codes, so "unchanged"
 * and "undefined" condition codes come out as the hardware's. */
static uint16_t x87_host(enum x87_hop op, const struct x86_fpu_state *f, struct x87_io *io)
{
    uint16_t old;
    uint32_t env[7] = { f->fcw | 0x3fu, f->fsw & 0x4700u, 0xffffu, 0, 0, 0, 0 };
    __asm__ volatile("fnstcw %0" : "=m"(old));
    __asm__ volatile("fldenv %0" : : "m"(env) : "memory");
    if (op >= H_MEM)
        x87_host_mem(op, io);
    switch (op) {
    case H_ADD: BIN("fadd %%st(1), %%st"); break;
    case H_SUB: BIN("fsub %%st(1), %%st"); break;
    case H_SUBR: BIN("fsubr %%st(1), %%st"); break;
    case H_MUL: BIN("fmul %%st(1), %%st"); break;
    case H_DIV: BIN("fdiv %%st(1), %%st"); break;
    case H_DIVR: BIN("fdivr %%st(1), %%st"); break;
    case H_PREM: BIN("fprem"); break;
    case H_PREM1: BIN("fprem1"); break;
    case H_SCALE: BIN("fscale"); break;
    case H_PATAN: BINPOP("fpatan"); break;
    case H_YL2X: BINPOP("fyl2x"); break;
    case H_YL2XP1: BINPOP("fyl2xp1"); break;
    case H_SQRT: UN("fsqrt"); break;
    case H_RNDINT: UN("frndint"); break;
    case H_F2XM1: UN("f2xm1"); break;
    case H_SIN: UN("fsin"); break;
    case H_COS: UN("fcos"); break;
    case H_PTAN: UN2("fptan"); break;
    case H_SINCOS: UN2("fsincos"); break;
    case H_XTRACT: UN2("fxtract"); break;
    case H_COM: CMP("fcompp"); break;
    case H_UCOM: CMP("fucompp"); break;
    case H_TST: __asm__ volatile("fldt %0\n\tftst\n\tfstp %%st(0)" : : "m"(io->a) : "memory", "st"); break;
    case H_LD32: LD("flds"); break;
    case H_LD64: LD("fldl"); break;
    case H_ILD16: LD("filds"); break;
    case H_ILD32: LD("fildl"); break;
    case H_ILD64: LD("fildll"); break;
    case H_BLD: LD("fbld"); break;
    case H_ST32: ST("fstps"); break;
    case H_ST64: ST("fstpl"); break;
    case H_IST16: ST("fistps"); break;
    case H_IST32: ST("fistpl"); break;
    case H_IST64: ST("fistpll"); break;
    case H_ISTT16: ST("fisttps"); break;
    case H_ISTT32: ST("fisttpl"); break;
    case H_ISTT64: ST("fisttpll"); break;
    case H_BSTP: ST("fbstp"); break;
    case H_LD1: CONST("fld1"); break;
    case H_LDL2T: CONST("fldl2t"); break;
    case H_LDL2E: CONST("fldl2e"); break;
    case H_LDPI: CONST("fldpi"); break;
    case H_LDLG2: CONST("fldlg2"); break;
    case H_LDLN2: CONST("fldln2"); break;
    case H_LDZ: CONST("fldz"); break;
    default: break;
    }
    /* io->sw has all the operation's flags: the stores that follow it
     * raise none (UN2's extra pop may underflow when nothing was pushed) */
    __asm__ volatile("fnclex\n\tfldcw %0" : : "m"(old) : "memory");
    return io->sw & 0x477f;
}

/* ---- guest stack ---- */

static inline struct x87_reg *st(struct x86_cpu *cpu, unsigned i)
{
    return &cpu->fpu.st[(cpu->fpu.top + i) & 7];
}

static inline bool st_empty(struct x86_cpu *cpu, unsigned i)
{
    return !(cpu->fpu.tag_valid & (1u << ((cpu->fpu.top + i) & 7)));
}

/* Write a register (by pointer into fpu.st) and tag it valid. */
static void put_reg(struct x86_cpu *cpu, struct x87_reg *dst, const struct x87_reg *v)
{
    *dst = *v;
    cpu->fpu.tag_valid |= 1u << (dst - cpu->fpu.st);
}

static void set_cc(struct x86_cpu *cpu, uint16_t sw, uint16_t mask)
{
    cpu->fpu.fsw = (cpu->fpu.fsw & ~mask) | (sw & mask);
}

#define CC_ALL (FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3)

/* Record exception flags; false if an unmasked #I/#D/#Z forbids writing
 * the result (the handler for #MF sees the operands unchanged). */
static bool x87_exc(struct x86_cpu *cpu, unsigned exc)
{
    struct x86_fpu_state *f = &cpu->fpu;
    exc &= 0x7f;
    f->fsw |= exc;
    unsigned unmasked = exc & ~f->fcw & 0x3f;
    if (unmasked) {
        f->fsw |= FSW_ES | FSW_B;
        return !(unmasked & (FSW_IE | FSW_DE | FSW_ZE));
    }
    return true;
}

/* Stack underflow (reading an empty register): true if the masked
 * response (indefinite) should proceed. */
static bool x87_underflow(struct x86_cpu *cpu)
{
    set_cc(cpu, 0, FSW_C1);
    return x87_exc(cpu, FSW_IE | FSW_SF);
}

static void x87_pop(struct x86_cpu *cpu)
{
    cpu->fpu.tag_valid &= ~(1u << cpu->fpu.top);
    cpu->fpu.top = (cpu->fpu.top + 1) & 7;
}

/* Push v (overflow if ST(7) is in use: indefinite when masked). */
static void x87_push(struct x86_cpu *cpu, const struct x87_reg *v)
{
    struct x86_fpu_state *f = &cpu->fpu;
    unsigned n = (f->top - 1) & 7;
    if (f->tag_valid & (1u << n)) {
        set_cc(cpu, FSW_C1, FSW_C1);
        if (!x87_exc(cpu, FSW_IE | FSW_SF))
            return;
        v = &x87_indefinite;
    }
    f->top = n;
    f->st[n] = *v;
    f->tag_valid |= 1u << n;
}

void x87_check_pending(struct x86_cpu *cpu)
{
    if ((cpu->fpu.fsw & FSW_ES) && (cpu->cr0 & X86_CR0_NE))
        x86_raise_noerr(cpu, X86_EXC_MF);
}

/* Entry of every waiting x87 instruction. */
static void x87_enter(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_check_fpu(cpu);
    if (X86_UNLIKELY(cpu->fpu.fsw & FSW_ES))
        x87_check_pending(cpu);
    cpu->fpu.fop = ((in->op & 7) << 8) | in->modrm;
    cpu->fpu.fip = cpu->insn_rip;
    cpu->fpu.fcs = cpu->seg[X86_CS].sel;
}

static uint64_t x87_ea(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint64_t la = x86_ea(cpu, in);
    cpu->fpu.fdp = la;
    cpu->fpu.fds = cpu->seg[in->seg < 6 ? in->seg : X86_DS].sel;
    return la;
}

/* ---- arithmetic and compares ---- */

/* *dst = a OP b. pre: flags from converting a memory operand. */
static void arith(struct x86_cpu *cpu, enum x87_hop op, struct x87_reg *dst,
                  const struct x87_reg *a, bool a_empty, const struct x87_reg *b, bool b_empty,
                  unsigned pre)
{
    if (a_empty || b_empty) {
        if (x87_underflow(cpu))
            put_reg(cpu, dst, &x87_indefinite);
        return;
    }
    struct x87_io io = { .a = *a, .b = *b };
    uint16_t sw = x87_host(op, &cpu->fpu, &io);
    set_cc(cpu, sw, CC_ALL);
    if (x87_exc(cpu, pre | (sw & 0x3f)))
        put_reg(cpu, dst, &io.r0);
}

/* FCOM/FUCOM family: condition codes C3 C2 C0 (C1 cleared); returns
 * them for FCOMI (ZF = C3, PF = C2, CF = C0). */
static uint16_t compare(struct x86_cpu *cpu, enum x87_hop op, const struct x87_reg *a, bool a_empty,
                        const struct x87_reg *b, bool b_empty, unsigned pre)
{
    uint16_t cc = FSW_C0 | FSW_C2 | FSW_C3;
    if (a_empty || b_empty) {
        x87_underflow(cpu);
    } else {
        struct x87_io io = { .a = *a, .b = *b };
        uint16_t sw = x87_host(op, &cpu->fpu, &io);
        x87_exc(cpu, pre | (sw & 0x3f));
        cc = sw & (FSW_C0 | FSW_C2 | FSW_C3);
    }
    set_cc(cpu, cc, CC_ALL);
    return cc;
}

static const uint8_t d8_hop[8] = { H_ADD, H_MUL, H_COM, H_COM, H_SUB, H_SUBR, H_DIV, H_DIVR };
static const uint8_t dc_hop[8] = { H_ADD, H_MUL, H_COM, H_COM, H_SUBR, H_SUB, H_DIVR, H_DIV };

/* ST(0) OP= v, or compare ST(0) with v (r = ModRM.reg). */
static void op_st0(struct x86_cpu *cpu, unsigned r, const struct x87_reg *v, bool v_empty,
                   unsigned pre)
{
    if (r == 2 || r == 3) {
        compare(cpu, H_COM, st(cpu, 0), st_empty(cpu, 0), v, v_empty, pre);
        if (r == 3)
            x87_pop(cpu);
        return;
    }
    arith(cpu, d8_hop[r], st(cpu, 0), st(cpu, 0), st_empty(cpu, 0), v, v_empty, pre);
}

/* Memory operand of D8/DA/DC/DE converted to 80 bits. */
static unsigned load_mem(struct x86_cpu *cpu, const struct x86_insn *in, enum x87_hop op,
                         struct x87_reg *out)
{
    static const uint8_t size[] = { [H_LD32] = 4, [H_LD64] = 8, [H_ILD16] = 2, [H_ILD32] = 4,
                                    [H_ILD64] = 8, [H_BLD] = 10 };
    struct x87_io io = {0};
    x86_read_mem(cpu, x87_ea(cpu, in), &io.m, size[op]);
    uint16_t sw = x87_host(op, &cpu->fpu, &io);
    *out = io.r0;
    return sw & 0x3f;
}

/* D8/DC/DA/DE with a memory operand: ST(0) op m (type: 0 m32fp, 1 m64fp,
 * 2 m32int, 3 m16int), or FCOM/FCOMP/FICOM/FICOMP. */
static void mem_op(struct x86_cpu *cpu, const struct x86_insn *in, unsigned type)
{
    static const uint8_t size[4] = { 4, 8, 4, 2 };
    unsigned r = in->reg & 7;
    bool cmp = r == 2 || r == 3;
    struct x87_io io = {0};
    x86_read_mem(cpu, x87_ea(cpu, in), &io.m, size[type]);
    if (st_empty(cpu, 0)) {
        if (cmp) {
            x87_underflow(cpu);
            set_cc(cpu, FSW_C0 | FSW_C2 | FSW_C3, CC_ALL);
            if (r == 3 && !(cpu->fpu.fsw & FSW_ES))
                x87_pop(cpu);
        } else if (x87_underflow(cpu)) {
            put_reg(cpu, st(cpu, 0), &x87_indefinite);
        }
        return;
    }
    io.a = *st(cpu, 0);
    uint16_t sw = x87_host(H_MEM + 8 * type + r, &cpu->fpu, &io);
    if (cmp) {
        bool ok = x87_exc(cpu, sw & 0x3f);
        set_cc(cpu, sw, CC_ALL);
        if (r == 3 && ok)
            x87_pop(cpu);
        return;
    }
    set_cc(cpu, sw, CC_ALL);
    if (x87_exc(cpu, sw & 0x3f))
        put_reg(cpu, st(cpu, 0), &io.r0);
}

static void h_d8(struct x86_cpu *cpu, const struct x86_insn *in)
{
    struct x87_reg v;
    unsigned r = in->reg & 7;
    x87_enter(cpu, in);
    if (in->mod == 3) {
        unsigned i = in->rm & 7;
        v = *st(cpu, i);
        op_st0(cpu, r, &v, st_empty(cpu, i), 0);
        return;
    }
    mem_op(cpu, in, 0);
}

static void fcmov(struct x86_cpu *cpu, const struct x86_insn *in, unsigned cc)
{
    unsigned i = in->rm & 7;
    if (st_empty(cpu, 0) || st_empty(cpu, i)) {
        if (x87_underflow(cpu))
            put_reg(cpu, st(cpu, 0), &x87_indefinite);
        return;
    }
    if (x86_cond(cpu, cc))
        *st(cpu, 0) = *st(cpu, i);
}

static void h_da(struct x86_cpu *cpu, const struct x86_insn *in)
{
    static const uint8_t cc[4] = { 2, 4, 6, 10 };    /* B E BE U */
    x87_enter(cpu, in);
    if (in->mod != 3) {
        mem_op(cpu, in, 2);
        return;
    }
    unsigned r = in->reg & 7;
    if (r < 4) {
        fcmov(cpu, in, cc[r]);
    } else if (in->modrm == 0xe9) {                /* FUCOMPP */
        compare(cpu, H_UCOM, st(cpu, 0), st_empty(cpu, 0), st(cpu, 1), st_empty(cpu, 1), 0);
        x87_pop(cpu);
        x87_pop(cpu);
    } else {
        x86_unimp(cpu, in);
    }
}

static void h_dc(struct x86_cpu *cpu, const struct x86_insn *in)
{
    struct x87_reg v;
    unsigned r = in->reg & 7;
    x87_enter(cpu, in);
    if (in->mod != 3) {
        mem_op(cpu, in, 1);
        return;
    }
    unsigned i = in->rm & 7;
    if (r == 2 || r == 3) {
        v = *st(cpu, i);
        op_st0(cpu, r, &v, st_empty(cpu, i), 0);
        return;
    }
    v = *st(cpu, 0);
    arith(cpu, dc_hop[r], st(cpu, i), st(cpu, i), st_empty(cpu, i), &v, st_empty(cpu, 0), 0);
}

static void h_de(struct x86_cpu *cpu, const struct x86_insn *in)
{
    struct x87_reg v;
    unsigned r = in->reg & 7;
    x87_enter(cpu, in);
    if (in->mod != 3) {
        mem_op(cpu, in, 3);
        return;
    }
    unsigned i = in->rm & 7;
    if (r == 3 && i != 1)
        x86_unimp(cpu, in);
    if (r == 2 || r == 3) {                        /* FCOMP alias, FCOMPP */
        v = *st(cpu, i);
        op_st0(cpu, 3, &v, st_empty(cpu, i), 0);
        if (r == 3)
            x87_pop(cpu);
        return;
    }
    v = *st(cpu, 0);
    arith(cpu, dc_hop[r], st(cpu, i), st(cpu, i), st_empty(cpu, i), &v, st_empty(cpu, 0), 0);
    x87_pop(cpu);
}

/* ---- loads and stores ---- */

static void fld_value(struct x86_cpu *cpu, const struct x87_reg *v, unsigned exc)
{
    set_cc(cpu, 0, FSW_C1);
    if (x87_exc(cpu, exc))
        x87_push(cpu, v);
}

static void fld_mem(struct x86_cpu *cpu, const struct x86_insn *in, enum x87_hop op)
{
    struct x87_reg v = x87_indefinite;
    unsigned exc = 0;
    if (st_empty(cpu, 7))          /* on overflow the operand is not converted */
        exc = load_mem(cpu, in, op, &v);
    else
        x86_read8(cpu, x87_ea(cpu, in));
    fld_value(cpu, &v, exc);
}

/* FST/FIST/FISTTP/FBSTP to memory, popping if asked. */
static void store_mem(struct x86_cpu *cpu, const struct x86_insn *in, enum x87_hop op,
                      unsigned size, bool pop)
{
    struct x87_io io = { .a = *st(cpu, 0) };
    uint64_t la = x87_ea(cpu, in);
    unsigned exc = 0;
    if (st_empty(cpu, 0)) {
        io.a = x87_indefinite;
        exc = FSW_IE | FSW_SF;
    }
    uint16_t sw = x87_host(op, &cpu->fpu, &io);
    exc |= sw & 0x3f;
    if (!(exc & ~cpu->fpu.fcw & (FSW_IE | FSW_DE | FSW_ZE)))
        x86_write_mem(cpu, la, &io.m, size);
    set_cc(cpu, (exc & FSW_SF) ? cpu->fpu.fsw & ~FSW_C1 : sw, CC_ALL);
    if (x87_exc(cpu, exc) && pop)
        x87_pop(cpu);
}

static void fld_m80(struct x86_cpu *cpu, const struct x86_insn *in)
{
    struct x87_reg v = {0};
    x86_read_mem(cpu, x87_ea(cpu, in), &v, 10);
    fld_value(cpu, &v, 0);
}

static void fstp_m80(struct x86_cpu *cpu, const struct x86_insn *in)
{
    struct x87_reg v = *st(cpu, 0);
    uint64_t la = x87_ea(cpu, in);
    if (st_empty(cpu, 0)) {
        if (!x87_underflow(cpu))
            return;
        v = x87_indefinite;
    }
    x86_write_mem(cpu, la, &v, 10);
    set_cc(cpu, 0, FSW_C1);
    x87_pop(cpu);
}

/* FST/FSTP ST(i) */
static void fst_reg(struct x86_cpu *cpu, unsigned i, bool pop)
{
    struct x87_reg v = *st(cpu, 0);
    set_cc(cpu, 0, FSW_C1);
    if (st_empty(cpu, 0)) {
        if (!x87_underflow(cpu))
            return;
        v = x87_indefinite;
    }
    *st(cpu, i) = v;
    cpu->fpu.tag_valid |= 1u << ((cpu->fpu.top + i) & 7);
    if (pop)
        x87_pop(cpu);
}

/* ---- environment ---- */

static void fpu_init(struct x86_fpu_state *f)
{
    f->fcw = FCW_RESET;
    f->fsw = 0;
    f->top = 0;
    f->tag_valid = 0;
    f->fop = 0;
    f->fip = f->fdp = 0;
    f->fcs = f->fds = 0;
}

/* FNSTENV image: 14 bytes (16-bit operand size) or 28 bytes, protected-
 * mode layout (also used in real mode; nothing there reads the pointers). */
static unsigned env_store(struct x86_cpu *cpu, const struct x86_insn *in, uint8_t *b)
{
    struct x86_fpu_state *f = &cpu->fpu;
    uint32_t v[7] = {
        0xffff0000u | f->fcw, 0xffff0000u | fpu_get_fsw(f), 0xffff0000u | fpu_get_ftw_full(f),
        (uint32_t)f->fip, f->fcs | (uint32_t)(f->fop & 0x7ff) << 16, (uint32_t)f->fdp,
        0xffff0000u | f->fds,
    };
    if (in->osz == 2) {
        for (int i = 0; i < 7; i++)
            memcpy(b + 2 * i, &v[i], 2);
        return 14;
    }
    memcpy(b, v, 28);
    return 28;
}

static unsigned env_load(struct x86_cpu *cpu, const struct x86_insn *in, const uint8_t *b)
{
    struct x86_fpu_state *f = &cpu->fpu;
    uint32_t v[7] = {0};
    unsigned n = in->osz == 2 ? 14 : 28;
    for (int i = 0; i < 7; i++)
        memcpy(&v[i], b + (n == 14 ? 2 : 4) * i, n == 14 ? 2 : 4);
    f->fcw = (v[0] & 0x1f3f) | 0x40;
    f->top = (v[1] >> 11) & 7;
    f->fsw = v[1] & ~0x3800;
    f->tag_valid = 0;
    for (int i = 0; i < 8; i++)
        if (((v[2] >> (2 * i)) & 3) != 3)
            f->tag_valid |= 1u << i;
    f->fip = v[3];
    f->fcs = (uint16_t)v[4];
    f->fop = n == 28 ? (v[4] >> 16) & 0x7ff : 0;
    f->fdp = v[5];
    f->fds = (uint16_t)v[6];
    /* pending unmasked exceptions after the load show as ES */
    if (f->fsw & ~f->fcw & 0x3f)
        f->fsw |= FSW_ES | FSW_B;
    else
        f->fsw &= ~(FSW_ES | FSW_B);
    return n;
}

static void fnstenv(struct x86_cpu *cpu, const struct x86_insn *in, bool save)
{
    uint8_t b[108];
    unsigned n = env_store(cpu, in, b);
    if (save) {
        for (int i = 0; i < 8; i++)
            memcpy(b + n + 10 * i, st(cpu, i), 10);
        n += 80;
    }
    x86_write_mem(cpu, x86_ea(cpu, in), b, n);
    if (save)
        fpu_init(&cpu->fpu);
    else
        cpu->fpu.fcw |= 0x3f;
}

static void fldenv(struct x86_cpu *cpu, const struct x86_insn *in, bool rstor)
{
    uint8_t b[108];
    unsigned n = in->osz == 2 ? 14 : 28;
    x86_read_mem(cpu, x86_ea(cpu, in), b, n + (rstor ? 80 : 0));
    env_load(cpu, in, b);
    if (rstor)
        for (int i = 0; i < 8; i++)
            memcpy(st(cpu, i), b + n + 10 * i, 10);
}

/* ---- D9 ---- */

static unsigned fxam(struct x86_cpu *cpu)
{
    const struct x87_reg *r = st(cpu, 0);
    unsigned exp = r->sexp & 0x7fff, c = (r->sexp & 0x8000) ? FSW_C1 : 0;
    bool j = r->mant >> 63;
    if (st_empty(cpu, 0))
        return c | FSW_C3 | FSW_C0;
    if (exp == 0x7fff)
        return c | (!j ? 0 : (r->mant << 1) ? FSW_C0 : FSW_C2 | FSW_C0);
    if (exp == 0)
        return c | (r->mant ? FSW_C3 | FSW_C2 : FSW_C3);
    return c | (j ? FSW_C2 : 0);
}

/* Unary ops on ST(0) done by the host (FSQRT, FRNDINT, F2XM1, FSIN, FCOS).
 * fault_clr: condition codes cleared on a stack fault. */
static void unary(struct x86_cpu *cpu, enum x87_hop op, uint16_t fault_clr)
{
    if (st_empty(cpu, 0)) {
        set_cc(cpu, 0, fault_clr);
        if (x87_underflow(cpu))
            put_reg(cpu, st(cpu, 0), &x87_indefinite);
        return;
    }
    struct x87_io io = { .a = *st(cpu, 0) };
    uint16_t sw = x87_host(op, &cpu->fpu, &io);
    set_cc(cpu, sw, CC_ALL);
    if (x87_exc(cpu, sw & 0x3f))
        *st(cpu, 0) = io.r0;
}

/* FPTAN, FSINCOS, FXTRACT: ST(0) replaced, one more value pushed. */
static void unary2(struct x86_cpu *cpu, enum x87_hop op)
{
    if (st_empty(cpu, 0) || !st_empty(cpu, 7)) {
        bool under = st_empty(cpu, 0);
        set_cc(cpu, under ? 0 : FSW_C1, op == H_XTRACT ? FSW_C1 : FSW_C1 | FSW_C2);
        if (x87_exc(cpu, FSW_IE | FSW_SF)) {
            put_reg(cpu, st(cpu, 0), &x87_indefinite);
            cpu->fpu.top = (cpu->fpu.top - 1) & 7;
            put_reg(cpu, st(cpu, 0), &x87_indefinite);
        }
        return;
    }
    struct x87_io io = { .a = *st(cpu, 0) };
    uint16_t sw = x87_host(op, &cpu->fpu, &io);
    set_cc(cpu, sw, CC_ALL);
    if (!x87_exc(cpu, sw & 0x3f) || (op != H_XTRACT && (sw & FSW_C2)))
        return;
    *st(cpu, 0) = io.r1;
    x87_push(cpu, &io.r0);
}

/* FPREM, FPREM1, FSCALE (ST0 op ST1 -> ST0); FPATAN, FYL2X, FYL2XP1
 * (-> ST1, pop). */
static void binary_st(struct x86_cpu *cpu, enum x87_hop op, bool to_st1, uint16_t fault_clr)
{
    struct x87_reg *dst = st(cpu, to_st1 ? 1 : 0);
    if (st_empty(cpu, 0) || st_empty(cpu, 1)) {
        set_cc(cpu, 0, fault_clr);
        if (x87_underflow(cpu)) {
            *dst = x87_indefinite;
            cpu->fpu.tag_valid |= 1u << ((cpu->fpu.top + (to_st1 ? 1 : 0)) & 7);
            if (to_st1)
                x87_pop(cpu);
        }
        return;
    }
    struct x87_io io = { .a = *st(cpu, 0), .b = *st(cpu, 1) };
    uint16_t sw = x87_host(op, &cpu->fpu, &io);
    set_cc(cpu, sw, CC_ALL);
    if (!x87_exc(cpu, sw & 0x3f))
        return;
    *dst = io.r0;
    if (to_st1)
        x87_pop(cpu);
}

static void h_d9_reg(struct x86_cpu *cpu, const struct x86_insn *in)
{
    static const uint8_t consts[7] = { H_LD1, H_LDL2T, H_LDL2E, H_LDPI, H_LDLG2, H_LDLN2, H_LDZ };
    unsigned i = in->rm & 7, m = in->modrm;
    struct x87_reg v;

    switch (in->reg & 7) {
    case 0:                                        /* FLD ST(i) */
        v = *st(cpu, i);
        if (st_empty(cpu, i)) {
            /* underflow wins over a full stack: no overflow reported */
            if (x87_underflow(cpu)) {
                cpu->fpu.top = (cpu->fpu.top - 1) & 7;
                put_reg(cpu, st(cpu, 0), &x87_indefinite);
            }
            return;
        }
        fld_value(cpu, &v, 0);
        return;
    case 1:                                        /* FXCH */
        set_cc(cpu, 0, FSW_C1);
        if (st_empty(cpu, 0) || st_empty(cpu, i)) {
            if (!x87_underflow(cpu))
                return;
            for (unsigned k = 0; k < 2; k++) {
                unsigned n = k ? i : 0;
                if (st_empty(cpu, n)) {
                    *st(cpu, n) = x87_indefinite;
                    cpu->fpu.tag_valid |= 1u << ((cpu->fpu.top + n) & 7);
                }
            }
        }
        v = *st(cpu, 0);
        *st(cpu, 0) = *st(cpu, i);
        *st(cpu, i) = v;
        return;
    case 3:                                        /* FSTP1 (alias) */
        fst_reg(cpu, i, true);
        return;
    }
    switch (m) {
    case 0xd0: return;                             /* FNOP */
    case 0xe0: case 0xe1:                          /* FCHS, FABS */
        if (st_empty(cpu, 0)) {
            if (x87_underflow(cpu))
                put_reg(cpu, st(cpu, 0), &x87_indefinite);
            return;
        }
        set_cc(cpu, 0, FSW_C1);
        if (m == 0xe0)
            st(cpu, 0)->sexp ^= 0x8000;
        else
            st(cpu, 0)->sexp &= 0x7fff;
        return;
    case 0xe4: {                                   /* FTST */
        static const struct x87_reg zero = {0, 0};
        compare(cpu, H_COM, st(cpu, 0), st_empty(cpu, 0), &zero, false, 0);
        return;
    }
    case 0xe5: set_cc(cpu, fxam(cpu), CC_ALL); return;
    case 0xe8 ... 0xee: {
        struct x87_io io = {0};
        x87_host(consts[m - 0xe8], &cpu->fpu, &io);
        fld_value(cpu, &io.r0, 0);
        return;
    }
    case 0xf0: unary(cpu, H_F2XM1, FSW_C1); return;
    case 0xf1: binary_st(cpu, H_YL2X, true, FSW_C1); return;
    case 0xf2: unary2(cpu, H_PTAN); return;
    case 0xf3: binary_st(cpu, H_PATAN, true, FSW_C1); return;
    case 0xf4: unary2(cpu, H_XTRACT); return;
    case 0xf5: binary_st(cpu, H_PREM1, false, FSW_C1 | FSW_C2); return;
    case 0xf6: cpu->fpu.top = (cpu->fpu.top - 1) & 7; set_cc(cpu, 0, FSW_C1); return;
    case 0xf7: cpu->fpu.top = (cpu->fpu.top + 1) & 7; set_cc(cpu, 0, FSW_C1); return;
    case 0xf8: binary_st(cpu, H_PREM, false, FSW_C1 | FSW_C2); return;
    case 0xf9: binary_st(cpu, H_YL2XP1, true, FSW_C1); return;
    case 0xfa: unary(cpu, H_SQRT, FSW_C1); return;
    case 0xfb: unary2(cpu, H_SINCOS); return;
    case 0xfc: unary(cpu, H_RNDINT, FSW_C1); return;
    case 0xfd: binary_st(cpu, H_SCALE, false, FSW_C1); return;
    case 0xfe: unary(cpu, H_SIN, FSW_C1 | FSW_C2); return;
    case 0xff: unary(cpu, H_COS, FSW_C1 | FSW_C2); return;
    }
    x86_unimp(cpu, in);
}

static void h_d9(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned r = in->reg & 7;
    x86_check_fpu(cpu);
    if (in->mod != 3 && (r == 6 || r == 7)) {      /* FNSTENV, FNSTCW: no wait */
        if (r == 6)
            fnstenv(cpu, in, false);
        else
            x86_write16(cpu, x86_ea(cpu, in), cpu->fpu.fcw);
        return;
    }
    x87_enter(cpu, in);
    if (in->mod == 3) {
        h_d9_reg(cpu, in);
        return;
    }
    switch (r) {
    case 0: fld_mem(cpu, in, H_LD32); return;
    case 2: store_mem(cpu, in, H_ST32, 4, false); return;
    case 3: store_mem(cpu, in, H_ST32, 4, true); return;
    case 4: fldenv(cpu, in, false); return;
    case 5: {
        uint16_t v = x86_read16(cpu, x86_ea(cpu, in));
        cpu->fpu.fcw = (v & 0x1f3f) | 0x40;
        if (cpu->fpu.fsw & ~cpu->fpu.fcw & 0x3f)
            cpu->fpu.fsw |= FSW_ES | FSW_B;
        else
            cpu->fpu.fsw &= ~(FSW_ES | FSW_B);
        return;
    }
    }
    x86_unimp(cpu, in);
}

/* ---- DB, DD, DF ---- */

static void fcomi(struct x86_cpu *cpu, const struct x86_insn *in, bool quiet, bool pop)
{
    unsigned i = in->rm & 7;
    bool under = st_empty(cpu, 0) || st_empty(cpu, i);
    uint16_t keep = cpu->fpu.fsw & (under ? FSW_C0 | FSW_C2 | FSW_C3 : CC_ALL);
    uint16_t cc = compare(cpu, quiet ? H_UCOM : H_COM, st(cpu, 0), st_empty(cpu, 0), st(cpu, i),
                          st_empty(cpu, i), 0);
    uint64_t fl = ((cc & FSW_C3) ? X86_ZF : 0) | ((cc & FSW_C2) ? X86_PF : 0) |
                  ((cc & FSW_C0) ? X86_CF : 0);
    /* FCOMI leaves C0 C2 C3 alone, and C1 unless the stack underflowed */
    set_cc(cpu, keep, under ? FSW_C0 | FSW_C2 | FSW_C3 : CC_ALL);
    x86_set_flags(cpu, fl, X86_ARITH_FLAGS);
    if (pop)
        x87_pop(cpu);
}

static void h_db(struct x86_cpu *cpu, const struct x86_insn *in)
{
    static const uint8_t cc[4] = { 3, 5, 7, 11 };   /* NB NE NBE NU */
    unsigned r = in->reg & 7;
    x86_check_fpu(cpu);
    if (in->modrm == 0xe2) {                       /* FNCLEX */
        cpu->fpu.fsw &= ~(0x7f | FSW_ES | FSW_B);
        return;
    }
    if (in->modrm == 0xe3) {                       /* FNINIT */
        fpu_init(&cpu->fpu);
        return;
    }
    x87_enter(cpu, in);
    if (in->mod == 3) {
        if (r < 4)
            fcmov(cpu, in, cc[r]);
        else if (r == 5 || r == 6)
            fcomi(cpu, in, r == 5, false);
        else if (!(in->modrm == 0xe0 || in->modrm == 0xe1 || in->modrm == 0xe4))
            x86_unimp(cpu, in);
        return;
    }
    switch (r) {
    case 0: fld_mem(cpu, in, H_ILD32); return;
    case 1: store_mem(cpu, in, H_ISTT32, 4, true); return;
    case 2: store_mem(cpu, in, H_IST32, 4, false); return;
    case 3: store_mem(cpu, in, H_IST32, 4, true); return;
    case 5: fld_m80(cpu, in); return;
    case 7: fstp_m80(cpu, in); return;
    }
    x86_unimp(cpu, in);
}

static void h_dd(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned r = in->reg & 7, i = in->rm & 7;
    x86_check_fpu(cpu);
    if (in->mod != 3 && (r == 6 || r == 7)) {      /* FNSAVE, FNSTSW m16 */
        if (r == 6)
            fnstenv(cpu, in, true);
        else
            x86_write16(cpu, x86_ea(cpu, in), fpu_get_fsw(&cpu->fpu));
        return;
    }
    x87_enter(cpu, in);
    if (in->mod == 3) {
        switch (r) {
        case 0:                                    /* FFREE */
            cpu->fpu.tag_valid &= ~(1u << ((cpu->fpu.top + i) & 7));
            set_cc(cpu, 0, FSW_C1);
            return;
        case 1: {                                  /* FXCH4 alias */
            struct x87_reg v = *st(cpu, 0);
            *st(cpu, 0) = *st(cpu, i);
            *st(cpu, i) = v;
            return;
        }
        case 2: fst_reg(cpu, i, false); return;
        case 3: fst_reg(cpu, i, true); return;
        case 4: case 5:
            compare(cpu, H_UCOM, st(cpu, 0), st_empty(cpu, 0), st(cpu, i), st_empty(cpu, i), 0);
            if (r == 5)
                x87_pop(cpu);
            return;
        }
        x86_unimp(cpu, in);
    }
    switch (r) {
    case 0: fld_mem(cpu, in, H_LD64); return;
    case 1: store_mem(cpu, in, H_ISTT64, 8, true); return;
    case 2: store_mem(cpu, in, H_ST64, 8, false); return;
    case 3: store_mem(cpu, in, H_ST64, 8, true); return;
    case 4: fldenv(cpu, in, true); return;
    }
    x86_unimp(cpu, in);
}

static void h_df(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned r = in->reg & 7;
    x86_check_fpu(cpu);
    if (in->modrm == 0xe0) {                       /* FNSTSW AX */
        cpu->gpr[X86_RAX] = (cpu->gpr[X86_RAX] & ~0xffffull) | fpu_get_fsw(&cpu->fpu);
        return;
    }
    x87_enter(cpu, in);
    if (in->mod == 3) {
        if (r == 0) {                              /* FFREEP */
            set_cc(cpu, 0, FSW_C1);
            cpu->fpu.tag_valid &= ~(1u << ((cpu->fpu.top + (in->rm & 7)) & 7));
            x87_pop(cpu);
        } else if (r == 5 || r == 6) {
            fcomi(cpu, in, r == 5, true);
        } else {
            x86_unimp(cpu, in);
        }
        return;
    }
    switch (r) {
    case 0: fld_mem(cpu, in, H_ILD16); return;
    case 1: store_mem(cpu, in, H_ISTT16, 2, true); return;
    case 2: store_mem(cpu, in, H_IST16, 2, false); return;
    case 3: store_mem(cpu, in, H_IST16, 2, true); return;
    case 4: fld_mem(cpu, in, H_BLD); return;
    case 5: fld_mem(cpu, in, H_ILD64); return;
    case 6: store_mem(cpu, in, H_BSTP, 10, true); return;
    case 7: store_mem(cpu, in, H_IST64, 8, true); return;
    }
}

/* 9B: FWAIT: #NM only with CR0.MP and TS; then pending exceptions. */
static void h_fwait(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if ((cpu->cr0 & (X86_CR0_MP | X86_CR0_TS)) == (X86_CR0_MP | X86_CR0_TS))
        x86_raise_noerr(cpu, X86_EXC_NM);
    x87_check_pending(cpu);
}

void x87_register(struct x86_op_table *t)
{
    x86_op_set(t, X86_MAP_1B, X86_MP_NONE, 0xd8, h_d8);
    x86_op_set(t, X86_MAP_1B, X86_MP_NONE, 0xd9, h_d9);
    x86_op_set(t, X86_MAP_1B, X86_MP_NONE, 0xda, h_da);
    x86_op_set(t, X86_MAP_1B, X86_MP_NONE, 0xdb, h_db);
    x86_op_set(t, X86_MAP_1B, X86_MP_NONE, 0xdc, h_dc);
    x86_op_set(t, X86_MAP_1B, X86_MP_NONE, 0xdd, h_dd);
    x86_op_set(t, X86_MAP_1B, X86_MP_NONE, 0xde, h_de);
    x86_op_set(t, X86_MAP_1B, X86_MP_NONE, 0xdf, h_df);
    x86_op_set(t, X86_MAP_1B, X86_MP_NONE, 0x9b, h_fwait);
}
