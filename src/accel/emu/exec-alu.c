/* Integer arithmetic and logic: ADD..CMP, TEST, INC/DEC, NOT/NEG,
 * MUL/IMUL/DIV/IDIV, shifts and rotates, SHLD/SHRD, bit tests and scans,
 * POPCNT/LZCNT/TZCNT, CMPXCHG*, XADD, SETcc/CMOVcc, flag instructions.
 * LOCKed forms run as host atomics on guest RAM (SMP guests). */
#include "accel/emu/exec.h"
#include "accel/emu/flags.h"

static inline uint64_t mask_of(unsigned size)
{
    return size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

static inline uint64_t sext(uint64_t v, unsigned size)
{
    unsigned sh = 64 - 8 * size;
    return (uint64_t)((int64_t)(v << sh) >> sh);
}

/* ---- the eight classic ALU ops ---------------------------------------------- */

static inline __attribute__((always_inline)) uint64_t alu(struct x86_cpu *cpu, unsigned op,
                                                          unsigned size, uint64_t a, uint64_t b)
{
    uint64_t r, c;
    switch (op) {
    case 0: r = a + b; x86_lf(cpu, X86_LF_ADD, size, a, b, r); return r;
    case 1: r = a | b; x86_lf(cpu, X86_LF_LOGIC, size, a, b, r); return r;
    case 2:
        c = x86_get_cf(cpu);
        r = a + b + c;
        x86_lf(cpu, c ? X86_LF_ADC : X86_LF_ADD, size, a, b, r);
        return r;
    case 3:
        c = x86_get_cf(cpu);
        r = a - b - c;
        x86_lf(cpu, c ? X86_LF_SBB : X86_LF_SUB, size, a, b, r);
        return r;
    case 4: r = a & b; x86_lf(cpu, X86_LF_LOGIC, size, a, b, r); return r;
    case 6: r = a ^ b; x86_lf(cpu, X86_LF_LOGIC, size, a, b, r); return r;
    default: r = a - b; x86_lf(cpu, X86_LF_SUB, size, a, b, r); return r;
    }
}

/* dst op= src on the r/m operand; CMP (7) only reads. */
static inline __attribute__((always_inline)) void alu_rm(struct x86_cpu *cpu,
                                                         const struct x86_insn *in, unsigned op,
                                                         uint64_t src)
{
    unsigned size = in->osz;
    if (in->mod == 3) {
        uint64_t r = alu(cpu, op, size, x86_get_reg(cpu, in, in->rm, size), src);
        if (op != 7)
            x86_set_reg(cpu, in, in->rm, size, r);
        return;
    }
    uint64_t la = x86_ea(cpu, in);
    if (op == 7) {
        alu(cpu, op, size, x86_read(cpu, la, size), src);
        return;
    }
    uint8_t *p = x86_host_ptr_w(cpu, la, size);
    if (!p) {
        uint64_t a = x86_read(cpu, la, size);
        x86_write(cpu, la, alu(cpu, op, size, a, src), size);
    } else if (in->pfx & X86_PFX_LOCK) {
        uint64_t old = x86_load(p, size);
        while (!x86_cas(p, size, &old, alu(cpu, op, size, old, src)))
            ;
    } else {
        x86_store(p, size, alu(cpu, op, size, x86_load(p, size), src));
    }
}

static void op_alu_rm_r(struct x86_cpu *cpu, const struct x86_insn *in)
{
    alu_rm(cpu, in, in->op >> 3, x86_get_reg(cpu, in, in->reg, in->osz));
}

static void op_alu_r_rm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, op = in->op >> 3;
    uint64_t r = alu(cpu, op, size, x86_get_reg(cpu, in, in->reg, size), x86_get_rm(cpu, in, size));
    if (op != 7)
        x86_set_reg(cpu, in, in->reg, size, r);
}

static void op_alu_acc_imm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, op = in->op >> 3;
    uint64_t r = alu(cpu, op, size, x86_get_reg(cpu, in, X86_RAX, size), in->imm);
    if (op != 7)
        x86_set_reg(cpu, in, X86_RAX, size, r);
}

static void op_grp1(struct x86_cpu *cpu, const struct x86_insn *in)
{
    alu_rm(cpu, in, (in->modrm >> 3) & 7, in->imm);
}

/* Specialised hot forms. */
static void op_add_rm_r(struct x86_cpu *cpu, const struct x86_insn *in)
{
    alu_rm(cpu, in, 0, x86_get_reg(cpu, in, in->reg, in->osz));
}
static void op_sub_rm_r(struct x86_cpu *cpu, const struct x86_insn *in)
{
    alu_rm(cpu, in, 5, x86_get_reg(cpu, in, in->reg, in->osz));
}
static void op_cmp_rm_r(struct x86_cpu *cpu, const struct x86_insn *in)
{
    alu_rm(cpu, in, 7, x86_get_reg(cpu, in, in->reg, in->osz));
}
static void op_xor_rm_r(struct x86_cpu *cpu, const struct x86_insn *in)
{
    alu_rm(cpu, in, 6, x86_get_reg(cpu, in, in->reg, in->osz));
}
static void op_and_rm_r(struct x86_cpu *cpu, const struct x86_insn *in)
{
    alu_rm(cpu, in, 4, x86_get_reg(cpu, in, in->reg, in->osz));
}
static void op_or_rm_r(struct x86_cpu *cpu, const struct x86_insn *in)
{
    alu_rm(cpu, in, 1, x86_get_reg(cpu, in, in->reg, in->osz));
}

static void op_test_rm_r(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t a = x86_get_rm(cpu, in, size), b = x86_get_reg(cpu, in, in->reg, size);
    x86_lf(cpu, X86_LF_LOGIC, size, a, b, a & b);
}

static void op_test_acc_imm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t a = x86_get_reg(cpu, in, X86_RAX, size);
    x86_lf(cpu, X86_LF_LOGIC, size, a, in->imm, a & in->imm);
}

static void op_incdec_r(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, r = in->op & 7;
    uint64_t v = x86_get_reg(cpu, in, r, size);
    bool dec = in->op & 8;
    v = dec ? v - 1 : v + 1;
    x86_lf_incdec(cpu, dec ? X86_LF_DEC : X86_LF_INC, size, v);
    x86_set_reg(cpu, in, r, size, v);
}

/* ---- group 3: TEST/NOT/NEG/MUL/IMUL/DIV/IDIV --------------------------------- */

static void set_arith_flags(struct x86_cpu *cpu, unsigned size, uint64_t res, bool cf, bool of)
{
    uint64_t f = x86_get_flags(cpu) & ~(uint64_t)X86_ARITH_FLAGS;
    uint64_t m = mask_of(size);
    res &= m;
    f |= (cf ? X86_CF : 0) | (of ? X86_OF : 0) | (res ? 0 : X86_ZF) |
         ((res >> (8 * size - 1)) & 1 ? X86_SF : 0) |
         (__builtin_parity((unsigned)(res & 0xff)) ? 0 : X86_PF);
    cpu->rflags = f;
}

/* MUL/IMUL: CF = OF = of, SZP from the low half, AF (undefined) clear as
 * in QEMU, recorded lazily. */
static void mul_flags(struct x86_cpu *cpu, unsigned size, uint64_t lo, bool of)
{
    x86_lf(cpu, X86_LF_MUL, size, 0, of ? X86_CF | X86_OF : 0, lo);
}

static void mul_op(struct x86_cpu *cpu, const struct x86_insn *in, bool sign, uint64_t src)
{
    unsigned size = in->osz;
    uint64_t a = x86_get_reg(cpu, in, X86_RAX, size), lo, hi;
    bool of;
    if (size == 8) {
        if (sign) {
            __int128 p = (__int128)(int64_t)a * (int64_t)src;
            lo = (uint64_t)p;
            hi = (uint64_t)(p >> 64);
            of = (__int128)(int64_t)lo != p;
        } else {
            unsigned __int128 p = (unsigned __int128)a * src;
            lo = (uint64_t)p;
            hi = (uint64_t)(p >> 64);
            of = hi != 0;
        }
    } else {
        unsigned bits = 8 * size;
        uint64_t p;
        if (sign) {
            int64_t sp = (int64_t)sext(a, size) * (int64_t)sext(src, size);
            p = (uint64_t)sp;
            of = (int64_t)sext(p, size) != sp;
        } else {
            p = a * (src & mask_of(size));
            of = (p >> bits) != 0;
        }
        lo = p & mask_of(size);
        hi = (p >> bits) & mask_of(size);
    }
    if (size == 1) {
        x86_set_reg(cpu, in, X86_RAX, 2, lo | (hi << 8));
    } else {
        x86_set_reg(cpu, in, X86_RAX, size, lo);
        x86_set_reg(cpu, in, X86_RDX, size, hi);
    }
    mul_flags(cpu, size, lo, of);
}

static void div_op(struct x86_cpu *cpu, const struct x86_insn *in, bool sign, uint64_t d)
{
    unsigned size = in->osz;
    d &= mask_of(size);
    if (d == 0)
        x86_raise_noerr(cpu, X86_EXC_DE);
    uint64_t q, r;
    if (size == 8) {
        unsigned __int128 n = ((unsigned __int128)cpu->gpr[X86_RDX] << 64) | cpu->gpr[X86_RAX];
        if (sign) {
            __int128 sn = (__int128)n, sd = (int64_t)d;
            if (sd == -1 && n == ((unsigned __int128)1 << 127))
                x86_raise_noerr(cpu, X86_EXC_DE);
            __int128 sq = sn / sd, sr = sn % sd;
            if (sq > INT64_MAX || sq < INT64_MIN)
                x86_raise_noerr(cpu, X86_EXC_DE);
            q = (uint64_t)sq;
            r = (uint64_t)sr;
        } else {
            unsigned __int128 uq = n / d;
            if (uq >> 64)
                x86_raise_noerr(cpu, X86_EXC_DE);
            q = (uint64_t)uq;
            r = (uint64_t)(n % d);
        }
        cpu->gpr[X86_RAX] = q;
        cpu->gpr[X86_RDX] = r;
        return;
    }
    unsigned bits = 8 * size;
    uint64_t n = size == 1 ? (uint16_t)cpu->gpr[X86_RAX]
                           : ((cpu->gpr[X86_RDX] & mask_of(size)) << bits) |
                                 (cpu->gpr[X86_RAX] & mask_of(size));
    if (sign) {
        int64_t sn = (int64_t)(n << (64 - 2 * bits)) >> (64 - 2 * bits);
        int64_t sd = (int64_t)sext(d, size);
        if (sd == -1 && sn == INT64_MIN)     /* would trap the host too */
            x86_raise_noerr(cpu, X86_EXC_DE);
        int64_t sq = sn / sd, sr = sn % sd;
        int64_t lim = 1ll << (bits - 1);
        if (sq >= lim || sq < -lim)
            x86_raise_noerr(cpu, X86_EXC_DE);
        q = (uint64_t)sq & mask_of(size);
        r = (uint64_t)sr & mask_of(size);
    } else {
        q = n / d;
        r = n % d;
        if (q >> bits)
            x86_raise_noerr(cpu, X86_EXC_DE);
    }
    if (size == 1) {
        x86_set_reg(cpu, in, X86_RAX, 2, q | (r << 8));
    } else {
        x86_set_reg(cpu, in, X86_RAX, size, q);
        x86_set_reg(cpu, in, X86_RDX, size, r);
    }
}

static void op_grp3(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, r = (in->modrm >> 3) & 7;
    uint64_t v, res;
    switch (r) {
    case 0: case 1:
        v = x86_get_rm(cpu, in, size);
        x86_lf(cpu, X86_LF_LOGIC, size, v, in->imm, v & in->imm);
        return;
    case 2:
        if (in->mod != 3 && (in->pfx & X86_PFX_LOCK)) {
            uint8_t *p = x86_host_ptr_w(cpu, x86_ea(cpu, in), size);
            if (p) {
                uint64_t old = x86_load(p, size);
                while (!x86_cas(p, size, &old, ~old))
                    ;
                return;
            }
        }
        x86_set_rm(cpu, in, size, ~x86_get_rm(cpu, in, size));
        return;
    case 3:
        if (in->mod != 3 && (in->pfx & X86_PFX_LOCK)) {
            uint8_t *p = x86_host_ptr_w(cpu, x86_ea(cpu, in), size);
            if (p) {
                uint64_t old = x86_load(p, size);
                do
                    x86_lf(cpu, X86_LF_SUB, size, 0, old, -old);
                while (!x86_cas(p, size, &old, -old));
                return;
            }
        }
        v = x86_get_rm(cpu, in, size);
        res = -v;
        x86_lf(cpu, X86_LF_SUB, size, 0, v, res);
        x86_set_rm(cpu, in, size, res);
        return;
    case 4: mul_op(cpu, in, false, x86_get_rm(cpu, in, size)); return;
    case 5: mul_op(cpu, in, true, x86_get_rm(cpu, in, size)); return;
    case 6: div_op(cpu, in, false, x86_get_rm(cpu, in, size)); return;
    default: div_op(cpu, in, true, x86_get_rm(cpu, in, size)); return;
    }
}

/* IMUL r, r/m [, imm] */
static void imul3(struct x86_cpu *cpu, const struct x86_insn *in, uint64_t a, uint64_t b)
{
    unsigned size = in->osz;
    uint64_t lo;
    bool of;
    if (size == 8) {
        __int128 p = (__int128)(int64_t)a * (int64_t)b;
        lo = (uint64_t)p;
        of = (__int128)(int64_t)lo != p;
    } else {
        int64_t p = (int64_t)sext(a, size) * (int64_t)sext(b, size);
        lo = (uint64_t)p & mask_of(size);
        of = (int64_t)sext(lo, size) != p;
    }
    x86_set_reg(cpu, in, in->reg, size, lo);
    mul_flags(cpu, size, lo, of);
}

static void op_imul_imm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    imul3(cpu, in, x86_get_rm(cpu, in, in->osz), in->imm);
}

static void op_imul_r_rm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    imul3(cpu, in, x86_get_reg(cpu, in, in->reg, in->osz), x86_get_rm(cpu, in, in->osz));
}

/* ---- group 4/5 INC/DEC on r/m (the rest of FF lives in exec-flow.c) --------- */

void x86_incdec_rm(struct x86_cpu *cpu, const struct x86_insn *in, bool dec)
{
    unsigned size = in->osz;
    uint64_t delta = dec ? ~0ull : 1;
    unsigned op = dec ? X86_LF_DEC : X86_LF_INC;
    if (in->mod != 3) {
        uint64_t la = x86_ea(cpu, in);
        uint8_t *p = x86_host_ptr_w(cpu, la, size);
        if (p && (in->pfx & X86_PFX_LOCK)) {
            uint64_t old = x86_load(p, size);
            do
                x86_lf_incdec(cpu, op, size, old + delta);
            while (!x86_cas(p, size, &old, old + delta));
            return;
        }
        if (p) {
            uint64_t v = x86_load(p, size) + delta;
            x86_lf_incdec(cpu, op, size, v);
            x86_store(p, size, v);
            return;
        }
    }
    uint64_t v = x86_get_rm(cpu, in, size) + delta;
    x86_lf_incdec(cpu, op, size, v);
    x86_set_rm(cpu, in, size, v);
}

static void op_grp4(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned r = (in->modrm >> 3) & 7;
    if (r > 1)
        x86_unimp(cpu, in);
    x86_incdec_rm(cpu, in, r == 1);
}

/* ---- shifts and rotates ----------------------------------------------------------- */

static uint64_t shift(struct x86_cpu *cpu, unsigned op, unsigned size, uint64_t v, unsigned cnt)
{
    unsigned bits = 8 * size;
    uint64_t m = mask_of(size), r;
    cnt &= size == 8 ? 63 : 31;
    if (!cnt)
        return v;
    v &= m;
    uint64_t f = op < 4 ? x86_get_flags(cpu) : 0;
    bool cf, of;
    unsigned c;
    switch (op) {
    case 0:   /* ROL */
        c = cnt % bits;
        r = c ? ((v << c) | (v >> (bits - c))) & m : v;
        cf = r & 1;
        of = ((r >> (bits - 1)) & 1) ^ cf;
        cpu->rflags = (f & ~(uint64_t)(X86_CF | X86_OF)) | (cf ? X86_CF : 0) | (of ? X86_OF : 0);
        return r;
    case 1:   /* ROR */
        c = cnt % bits;
        r = c ? ((v >> c) | (v << (bits - c))) & m : v;
        cf = (r >> (bits - 1)) & 1;
        of = cf ^ ((r >> (bits - 2)) & 1);
        cpu->rflags = (f & ~(uint64_t)(X86_CF | X86_OF)) | (cf ? X86_CF : 0) | (of ? X86_OF : 0);
        return r;
    case 2: { /* RCL */
        c = cnt % (bits + 1);
        cf = f & X86_CF;
        r = v;
        for (unsigned i = 0; i < c; i++) {
            bool out = (r >> (bits - 1)) & 1;
            r = ((r << 1) | cf) & m;
            cf = out;
        }
        of = ((r >> (bits - 1)) & 1) ^ cf;
        cpu->rflags = (f & ~(uint64_t)(X86_CF | X86_OF)) | (cf ? X86_CF : 0) | (of ? X86_OF : 0);
        return r;
    }
    case 3: { /* RCR */
        c = cnt % (bits + 1);
        cf = f & X86_CF;
        r = v;
        of = ((r >> (bits - 1)) & 1) ^ cf;
        for (unsigned i = 0; i < c; i++) {
            bool out = r & 1;
            r = (r >> 1) | ((uint64_t)cf << (bits - 1));
            cf = out;
        }
        cpu->rflags = (f & ~(uint64_t)(X86_CF | X86_OF)) | (cf ? X86_CF : 0) | (of ? X86_OF : 0);
        return r;
    }
    case 4: case 6: /* SHL/SAL: flags computed lazily */
        r = (v << cnt) & m;
        x86_lf(cpu, X86_LF_SHL, size, v, cnt, r);
        return r;
    case 5:   /* SHR */
        r = v >> cnt;
        x86_lf(cpu, X86_LF_SHR, size, v, cnt, r);
        return r;
    default:  /* SAR */
        r = (uint64_t)((int64_t)sext(v, size) >> cnt) & m;
        x86_lf(cpu, X86_LF_SAR, size, v, cnt, r);
        return r;
    }
}

static void shift_rm(struct x86_cpu *cpu, const struct x86_insn *in, unsigned cnt)
{
    unsigned size = in->osz, op = (in->modrm >> 3) & 7;
    if (in->mod == 3) {
        x86_set_reg(cpu, in, in->rm, size, shift(cpu, op, size, x86_get_reg(cpu, in, in->rm, size), cnt));
        return;
    }
    uint64_t la = x86_ea(cpu, in);
    uint64_t v = x86_read(cpu, la, size);
    x86_write(cpu, la, shift(cpu, op, size, v, cnt), size);
}

static void op_shift_imm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    shift_rm(cpu, in, (unsigned)in->imm);
}
static void op_shift_1(struct x86_cpu *cpu, const struct x86_insn *in)
{
    shift_rm(cpu, in, 1);
}
static void op_shift_cl(struct x86_cpu *cpu, const struct x86_insn *in)
{
    shift_rm(cpu, in, (uint8_t)cpu->gpr[X86_RCX]);
}

/* SHLD/SHRD r/m, r, imm8/CL */
static void shxd(struct x86_cpu *cpu, const struct x86_insn *in, unsigned cnt, bool right)
{
    unsigned size = in->osz, bits = 8 * size;
    cnt &= size == 8 ? 63 : 31;
    if (!cnt)
        return;
    uint64_t la = in->mod == 3 ? 0 : x86_ea(cpu, in);
    uint64_t d = in->mod == 3 ? x86_get_reg(cpu, in, in->rm, size) : x86_read(cpu, la, size);
    uint64_t s = x86_get_reg(cpu, in, in->reg, size), r;
    bool cf;
    if (size == 2 && cnt > 16) {
        /* undefined result on hardware; follow the 32-bit pattern of Intel parts */
        cnt &= 15;
        if (!cnt)
            return;
    }
    if (size == 8) {
        if (right) {
            r = (d >> cnt) | (s << (64 - cnt));
            cf = (d >> (cnt - 1)) & 1;
        } else {
            r = (d << cnt) | (s >> (64 - cnt));
            cf = (d >> (64 - cnt)) & 1;
        }
    } else {
        /* concatenate in 64 bits */
        uint64_t m = mask_of(size);
        if (right) {
            uint64_t cat = (d & m) | ((s & m) << bits);
            r = (cat >> cnt) & m;
            cf = (cat >> (cnt - 1)) & 1;
        } else {
            uint64_t cat = ((d & m) << bits) | (s & m);
            r = (cat << cnt >> bits) & m;
            cf = (cat >> (2 * bits - cnt)) & 1;
        }
    }
    bool of = ((r ^ d) >> (bits - 1)) & 1;
    set_arith_flags(cpu, size, r, cf, of);
    if (in->mod == 3)
        x86_set_reg(cpu, in, in->rm, size, r);
    else
        x86_write(cpu, la, r, size);
}

static void op_shld_imm(struct x86_cpu *cpu, const struct x86_insn *in) { shxd(cpu, in, (unsigned)in->imm, false); }
static void op_shld_cl(struct x86_cpu *cpu, const struct x86_insn *in) { shxd(cpu, in, (uint8_t)cpu->gpr[X86_RCX], false); }
static void op_shrd_imm(struct x86_cpu *cpu, const struct x86_insn *in) { shxd(cpu, in, (unsigned)in->imm, true); }
static void op_shrd_cl(struct x86_cpu *cpu, const struct x86_insn *in) { shxd(cpu, in, (uint8_t)cpu->gpr[X86_RCX], true); }

/* ---- bit tests -------------------------------------------------------------------------- */

static void set_cf(struct x86_cpu *cpu, bool cf)
{
    uint64_t f = x86_get_flags(cpu);
    cpu->rflags = (f & ~(uint64_t)X86_CF) | (cf ? X86_CF : 0);
}

/* op: 0 BT, 1 BTS, 2 BTR, 3 BTC */
static void bt_op(struct x86_cpu *cpu, const struct x86_insn *in, unsigned op, uint64_t off, bool reg_off)
{
    unsigned size = in->osz, bits = 8 * size;
    if (in->mod == 3) {
        unsigned b = off & (bits - 1);
        uint64_t v = x86_get_reg(cpu, in, in->rm, size), bit = 1ull << b;
        set_cf(cpu, v & bit);
        if (op)
            x86_set_reg(cpu, in, in->rm, size, op == 1 ? v | bit : op == 2 ? v & ~bit : v ^ bit);
        return;
    }
    uint64_t la = x86_ea(cpu, in);
    if (reg_off) {
        int64_t soff = (int64_t)sext(off, size);
        la += (uint64_t)((soff >> 3) & ~(int64_t)(size - 1));
        if (in->asz == 4 && !cpu->code64)
            la = (uint32_t)la;
        off = (uint64_t)soff & (bits - 1);
    } else {
        off &= bits - 1;
    }
    uint64_t bit = 1ull << off;
    if (!op) {
        set_cf(cpu, x86_read(cpu, la, size) & bit);
        return;
    }
    uint8_t *p = x86_host_ptr_w(cpu, la, size);
    if (p && (in->pfx & X86_PFX_LOCK)) {
        uint64_t old = x86_load(p, size), nv;
        do
            nv = op == 1 ? old | bit : op == 2 ? old & ~bit : old ^ bit;
        while (!x86_cas(p, size, &old, nv));
        set_cf(cpu, old & bit);
        return;
    }
    uint64_t v = x86_read(cpu, la, size);
    set_cf(cpu, v & bit);
    x86_write(cpu, la, op == 1 ? v | bit : op == 2 ? v & ~bit : v ^ bit, size);
}

static void op_bt(struct x86_cpu *cpu, const struct x86_insn *in)
{
    static const uint8_t kind[256] = { [0xa3] = 0, [0xab] = 1, [0xb3] = 2, [0xbb] = 3 };
    bt_op(cpu, in, kind[in->op], x86_get_reg(cpu, in, in->reg, in->osz), true);
}

static void op_grp8(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned r = (in->modrm >> 3) & 7;
    if (r < 4)
        x86_unimp(cpu, in);
    bt_op(cpu, in, r - 4, in->imm, false);
}

static void op_bsf(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t v = x86_get_rm(cpu, in, size) & mask_of(size);
    uint64_t f = x86_get_flags(cpu) & ~(uint64_t)X86_ARITH_FLAGS;
    if (!v) {
        cpu->rflags = f | X86_ZF;
        return;
    }
    cpu->rflags = f;
    x86_set_reg(cpu, in, in->reg, size, (uint64_t)__builtin_ctzll(v));
}

static void op_bsr(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t v = x86_get_rm(cpu, in, size) & mask_of(size);
    uint64_t f = x86_get_flags(cpu) & ~(uint64_t)X86_ARITH_FLAGS;
    if (!v) {
        cpu->rflags = f | X86_ZF;
        return;
    }
    cpu->rflags = f;
    x86_set_reg(cpu, in, in->reg, size, (uint64_t)(63 - __builtin_clzll(v)));
}

static void op_tzcnt(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t v = x86_get_rm(cpu, in, size) & mask_of(size);
    uint64_t r = v ? (uint64_t)__builtin_ctzll(v) : 8 * size;
    uint64_t f = x86_get_flags(cpu) & ~(uint64_t)X86_ARITH_FLAGS;
    cpu->rflags = f | (v ? 0 : X86_CF) | (r ? 0 : X86_ZF);
    x86_set_reg(cpu, in, in->reg, size, r);
}

static void op_lzcnt(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t v = x86_get_rm(cpu, in, size) & mask_of(size);
    uint64_t r = v ? (uint64_t)(__builtin_clzll(v) - (64 - 8 * size)) : 8 * size;
    uint64_t f = x86_get_flags(cpu) & ~(uint64_t)X86_ARITH_FLAGS;
    cpu->rflags = f | (v ? 0 : X86_CF) | (r ? 0 : X86_ZF);
    x86_set_reg(cpu, in, in->reg, size, r);
}

static void op_popcnt(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t v = x86_get_rm(cpu, in, size) & mask_of(size);
    uint64_t f = x86_get_flags(cpu) & ~(uint64_t)X86_ARITH_FLAGS;
    cpu->rflags = f | (v ? 0 : X86_ZF);
    x86_set_reg(cpu, in, in->reg, size, (uint64_t)__builtin_popcountll(v));
}

static void op_bswap(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned r = in->reg;
    if (in->osz == 8)
        cpu->gpr[r] = __builtin_bswap64(cpu->gpr[r]);
    else if (in->osz == 4)
        cpu->gpr[r] = __builtin_bswap32((uint32_t)cpu->gpr[r]);
    else
        x86_set_reg(cpu, in, r, 2, 0);   /* undefined; zero like most parts */
}

/* ---- exchange and compare -------------------------------------------------------------- */

static void op_cmpxchg(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t acc = x86_get_reg(cpu, in, X86_RAX, size), src = x86_get_reg(cpu, in, in->reg, size);
    uint64_t old;
    if (in->mod == 3) {
        old = x86_get_reg(cpu, in, in->rm, size);
        alu(cpu, 7, size, acc, old);
        if ((acc & mask_of(size)) == (old & mask_of(size)))
            x86_set_reg(cpu, in, in->rm, size, src);
        else
            x86_set_reg(cpu, in, X86_RAX, size, old);
        return;
    }
    uint64_t la = x86_ea(cpu, in);
    uint8_t *p = x86_host_ptr_w(cpu, la, size);
    if (p) {
        old = acc & mask_of(size);
        x86_cas(p, size, &old, src);
    } else {
        old = x86_read(cpu, la, size);
        x86_write(cpu, la, (old & mask_of(size)) == (acc & mask_of(size)) ? src : old, size);
    }
    alu(cpu, 7, size, acc, old);
    if ((acc & mask_of(size)) != (old & mask_of(size)))
        x86_set_reg(cpu, in, X86_RAX, size, old);
}

static void op_xadd(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t src = x86_get_reg(cpu, in, in->reg, size), old;
    if (in->mod == 3) {
        old = x86_get_reg(cpu, in, in->rm, size);
        uint64_t r = alu(cpu, 0, size, old, src);
        x86_set_reg(cpu, in, in->reg, size, old);
        x86_set_reg(cpu, in, in->rm, size, r);
        return;
    }
    uint64_t la = x86_ea(cpu, in);
    uint8_t *p = x86_host_ptr_w(cpu, la, size);
    if (p) {
        old = x86_load(p, size);
        while (!x86_cas(p, size, &old, old + src))
            ;
        alu(cpu, 0, size, old, src);
    } else {
        old = x86_read(cpu, la, size);
        x86_write(cpu, la, alu(cpu, 0, size, old, src), size);
    }
    x86_set_reg(cpu, in, in->reg, size, old);
}

/* Host LOCK CMPXCHG16B (p 16-byte aligned): no libatomic needed. */
static bool cas16(void *p, uint64_t *lo, uint64_t *hi, uint64_t nlo, uint64_t nhi)
{
    bool ok;
    __asm__ volatile("lock cmpxchg16b %1"
                     : "=@ccz"(ok), "+m"(*(unsigned __int128 *)p), "+a"(*lo), "+d"(*hi)
                     : "b"(nlo), "c"(nhi)
                     : "memory");
    return ok;
}

/* 0F C7 /1: CMPXCHG8B / CMPXCHG16B */
void x86_cmpxchg8b(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod == 3)
        x86_ud(cpu);
    uint64_t la = x86_ea(cpu, in);
    bool ok;
    if (in->osz == 8) {
        if (la & 15)
            x86_gp0(cpu);
        uint8_t *p = x86_host_ptr_w(cpu, la, 16);
        unsigned __int128 cmp = ((unsigned __int128)cpu->gpr[X86_RDX] << 64) | cpu->gpr[X86_RAX];
        unsigned __int128 nv = ((unsigned __int128)cpu->gpr[X86_RCX] << 64) | cpu->gpr[X86_RBX];
        unsigned __int128 old;
        if (p) {
            uint64_t lo = (uint64_t)cmp, hi = (uint64_t)(cmp >> 64);
            ok = cas16(p, &lo, &hi, (uint64_t)nv, (uint64_t)(nv >> 64));
            old = ((unsigned __int128)hi << 64) | lo;
        } else {
            uint64_t lo = x86_read(cpu, la, 8), hi = x86_read(cpu, la + 8, 8);
            old = ((unsigned __int128)hi << 64) | lo;
            ok = old == cmp;
            if (ok) {
                x86_write(cpu, la, (uint64_t)nv, 8);
                x86_write(cpu, la + 8, (uint64_t)(nv >> 64), 8);
            }
        }
        if (!ok) {
            cpu->gpr[X86_RAX] = (uint64_t)old;
            cpu->gpr[X86_RDX] = (uint64_t)(old >> 64);
        }
    } else {
        uint8_t *p = x86_host_ptr_w(cpu, la, 8);
        uint64_t cmp = ((uint64_t)(uint32_t)cpu->gpr[X86_RDX] << 32) | (uint32_t)cpu->gpr[X86_RAX];
        uint64_t nv = ((uint64_t)(uint32_t)cpu->gpr[X86_RCX] << 32) | (uint32_t)cpu->gpr[X86_RBX];
        uint64_t old = cmp;
        if (p) {
            ok = x86_cas(p, 8, &old, nv);
        } else {
            old = x86_read(cpu, la, 8);
            ok = old == cmp;
            x86_write(cpu, la, ok ? nv : old, 8);
        }
        if (!ok) {
            cpu->gpr[X86_RAX] = (uint32_t)old;
            cpu->gpr[X86_RDX] = old >> 32;
        }
    }
    uint64_t f = x86_get_flags(cpu);
    cpu->rflags = (f & ~(uint64_t)X86_ZF) | (ok ? X86_ZF : 0);
}

/* ---- conditions and flags ----------------------------------------------------------- */

static void op_setcc(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_set_rm(cpu, in, 1, x86_cond(cpu, in->op & 15));
}

static void op_cmovcc(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t v = x86_get_rm(cpu, in, size);   /* memory is read either way */
    if (x86_cond(cpu, in->op & 15))
        x86_set_reg(cpu, in, in->reg, size, v);
    else if (size == 4)
        cpu->gpr[in->reg] = (uint32_t)cpu->gpr[in->reg];
}

static void op_flagop(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint64_t f = x86_get_flags(cpu);
    switch (in->op) {
    case 0xf5: f ^= X86_CF; break;
    case 0xf8: f &= ~(uint64_t)X86_CF; break;
    case 0xf9: f |= X86_CF; break;
    case 0xfc: f &= ~(uint64_t)X86_DF; break;
    case 0xfd: f |= X86_DF; break;
    }
    cpu->rflags = f;
}

static void op_lahf(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_set_reg(cpu, in, 4, 1, (x86_get_flags(cpu) & 0xd5) | 2);   /* AH */
}

static void op_sahf(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint64_t ah = (cpu->gpr[X86_RAX] >> 8) & 0xd5;
    x86_set_flags(cpu, ah, 0xd5);
}

static void op_salc(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_set_reg(cpu, in, X86_RAX, 1, x86_get_cf(cpu) ? 0xff : 0);
}

/* ---- conversions ------------------------------------------------------------------------ */

static void op_cbw(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    x86_set_reg(cpu, in, X86_RAX, size, sext(cpu->gpr[X86_RAX], size / 2));
}

static void op_cwd(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t s = sext(cpu->gpr[X86_RAX], size);
    x86_set_reg(cpu, in, X86_RDX, size, (int64_t)s < 0 ? ~0ull : 0);
}

/* BCD adjustments (16/32-bit modes only). */
static void op_bcd(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint64_t f = x86_get_flags(cpu);
    uint8_t al = (uint8_t)cpu->gpr[X86_RAX], ah = (uint8_t)(cpu->gpr[X86_RAX] >> 8);
    bool cf = f & X86_CF, af = f & X86_AF;
    switch (in->op) {
    case 0x27: case 0x2f: {   /* DAA / DAS */
        uint8_t old = al;
        bool sub = in->op == 0x2f;
        bool ncf = false;
        if ((al & 0xf) > 9 || af) {
            al = sub ? al - 6 : al + 6;
            ncf = cf || (sub ? old < 6 : old > 0xf9);
            af = true;
        } else {
            af = false;
        }
        if (old > 0x99 || cf) {
            al = sub ? al - 0x60 : al + 0x60;
            ncf = true;
        }
        set_arith_flags(cpu, 1, al, ncf, false);
        cpu->rflags = (cpu->rflags & ~(uint64_t)X86_AF) | (af ? X86_AF : 0);
        x86_set_reg(cpu, in, X86_RAX, 1, al);
        return;
    }
    case 0x37: case 0x3f: {   /* AAA / AAS */
        if ((al & 0xf) > 9 || af) {
            if (in->op == 0x37) {
                al += 6;
                ah += 1;
            } else {
                al -= 6;
                ah -= 1;
            }
            cf = af = true;
        } else {
            cf = af = false;
        }
        al &= 0xf;
        cpu->rflags = (f & ~(uint64_t)(X86_CF | X86_AF)) | (cf ? X86_CF | X86_AF : 0);
        x86_set_reg(cpu, in, X86_RAX, 2, al | (ah << 8));
        return;
    }
    case 0xd4: {              /* AAM */
        uint8_t base = (uint8_t)in->imm;
        if (!base)
            x86_raise_noerr(cpu, X86_EXC_DE);
        ah = al / base;
        al = al % base;
        x86_set_reg(cpu, in, X86_RAX, 2, al | (ah << 8));
        set_arith_flags(cpu, 1, al, false, false);
        return;
    }
    case 0xd5:                /* AAD */
        al = (uint8_t)(al + ah * (uint8_t)in->imm);
        x86_set_reg(cpu, in, X86_RAX, 2, al);
        set_arith_flags(cpu, 1, al, false, false);
        return;
    }
}

/* MOVBE (0F 38 F0/F1 without F2) */
static void op_movbe(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    if (in->mod == 3)
        x86_ud(cpu);
    uint64_t la = x86_ea(cpu, in);
    if (in->op == 0xf0) {
        uint64_t v = x86_read(cpu, la, size);
        v = size == 2 ? __builtin_bswap16((uint16_t)v) : size == 4 ? __builtin_bswap32((uint32_t)v)
                                                                   : __builtin_bswap64(v);
        x86_set_reg(cpu, in, in->reg, size, v);
    } else {
        uint64_t v = x86_get_reg(cpu, in, in->reg, size);
        v = size == 2 ? __builtin_bswap16((uint16_t)v) : size == 4 ? __builtin_bswap32((uint32_t)v)
                                                                   : __builtin_bswap64(v);
        x86_write(cpu, la, v, size);
    }
}

/* Per-operation variants of the generic forms, picked at decode time. */
#define ALU_OPS(n)                                                                \
    static void op_grp1_##n(struct x86_cpu *cpu, const struct x86_insn *in)       \
    {                                                                             \
        alu_rm(cpu, in, n, in->imm);                                              \
    }                                                                             \
    static void op_r_rm_##n(struct x86_cpu *cpu, const struct x86_insn *in)       \
    {                                                                             \
        unsigned size = in->osz;                                                  \
        uint64_t r = alu(cpu, n, size, x86_get_reg(cpu, in, in->reg, size),      \
                         x86_get_rm(cpu, in, size));                              \
        if (n != 7)                                                               \
            x86_set_reg(cpu, in, in->reg, size, r);                               \
    }                                                                             \
    static void op_rm_r_##n(struct x86_cpu *cpu, const struct x86_insn *in)       \
    {                                                                             \
        alu_rm(cpu, in, n, x86_get_reg(cpu, in, in->reg, in->osz));               \
    }
ALU_OPS(0) ALU_OPS(1) ALU_OPS(2) ALU_OPS(3) ALU_OPS(4) ALU_OPS(5) ALU_OPS(6) ALU_OPS(7)
#undef ALU_OPS
static x86_handler *const grp1_fn[8] = { op_grp1_0, op_grp1_1, op_grp1_2, op_grp1_3,
                                         op_grp1_4, op_grp1_5, op_grp1_6, op_grp1_7 };
static x86_handler *const r_rm_fn[8] = { op_r_rm_0, op_r_rm_1, op_r_rm_2, op_r_rm_3,
                                         op_r_rm_4, op_r_rm_5, op_r_rm_6, op_r_rm_7 };
static x86_handler *const rm_r_fn[8] = { op_rm_r_0, op_rm_r_1, op_rm_r_2, op_rm_r_3,
                                         op_rm_r_4, op_rm_r_5, op_rm_r_6, op_rm_r_7 };

/* Register-register and register-immediate forms at 32/64 bits: the size
 * and operation are constants, no ModRM or size dispatch left. */
#define ALU_REG(n, sz)                                                                \
    static void op_rr_##n##_##sz(struct x86_cpu *cpu, const struct x86_insn *in)      \
    {   /* dst = rm (00-3F even rows) */                                              \
        uint64_t a = cpu->gpr[in->rm], b = cpu->gpr[in->reg];                         \
        if (sz == 4) { a = (uint32_t)a; b = (uint32_t)b; }                            \
        uint64_t r = alu(cpu, n, sz, a, b);                                           \
        if (n != 7) cpu->gpr[in->rm] = sz == 4 ? (uint32_t)r : r;                      \
    }                                                                                 \
    static void op_rrr_##n##_##sz(struct x86_cpu *cpu, const struct x86_insn *in)     \
    {   /* dst = reg (02/03 forms) */                                                 \
        uint64_t a = cpu->gpr[in->reg], b = cpu->gpr[in->rm];                         \
        if (sz == 4) { a = (uint32_t)a; b = (uint32_t)b; }                            \
        uint64_t r = alu(cpu, n, sz, a, b);                                           \
        if (n != 7) cpu->gpr[in->reg] = sz == 4 ? (uint32_t)r : r;                     \
    }                                                                                 \
    static void op_ri_##n##_##sz(struct x86_cpu *cpu, const struct x86_insn *in)      \
    {   /* 81/83 with a register */                                                   \
        uint64_t a = cpu->gpr[in->rm], b = in->imm;                                   \
        if (sz == 4) { a = (uint32_t)a; b = (uint32_t)b; }                            \
        uint64_t r = alu(cpu, n, sz, a, b);                                           \
        if (n != 7) cpu->gpr[in->rm] = sz == 4 ? (uint32_t)r : r;                      \
    }
#define ALU_REG2(n) ALU_REG(n, 4) ALU_REG(n, 8)
ALU_REG2(0) ALU_REG2(1) ALU_REG2(4) ALU_REG2(5) ALU_REG2(6) ALU_REG2(7)
#undef ALU_REG2
#undef ALU_REG
/* [op][size == 8]; NULL for ADC/SBB, which read CF */
#define ALU_REG_ROW(pfx, n) { op_##pfx##_##n##_4, op_##pfx##_##n##_8 }
static x86_handler *const rr_fn[8][2] = {
    ALU_REG_ROW(rr, 0), ALU_REG_ROW(rr, 1), { NULL, NULL }, { NULL, NULL },
    ALU_REG_ROW(rr, 4), ALU_REG_ROW(rr, 5), ALU_REG_ROW(rr, 6), ALU_REG_ROW(rr, 7) };
static x86_handler *const rrr_fn[8][2] = {
    ALU_REG_ROW(rrr, 0), ALU_REG_ROW(rrr, 1), { NULL, NULL }, { NULL, NULL },
    ALU_REG_ROW(rrr, 4), ALU_REG_ROW(rrr, 5), ALU_REG_ROW(rrr, 6), ALU_REG_ROW(rrr, 7) };
static x86_handler *const ri_fn[8][2] = {
    ALU_REG_ROW(ri, 0), ALU_REG_ROW(ri, 1), { NULL, NULL }, { NULL, NULL },
    ALU_REG_ROW(ri, 4), ALU_REG_ROW(ri, 5), ALU_REG_ROW(ri, 6), ALU_REG_ROW(ri, 7) };
#undef ALU_REG_ROW

/* SHL/SHR/SAR reg, imm8 on 32/64-bit registers: no dispatch on the /op */
static void op_shl_ri(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, cnt = (unsigned)in->imm & (size == 8 ? 63 : 31);
    if (!cnt) {
        x86_set_reg(cpu, in, in->rm, size, cpu->gpr[in->rm]);   /* a 32-bit write still zero-extends */
        return;
    }
    uint64_t v = x86_get_reg(cpu, in, in->rm, size), r = (v << cnt) & mask_of(size);
    x86_lf(cpu, X86_LF_SHL, size, v, cnt, r);
    x86_set_reg(cpu, in, in->rm, size, r);
}

static void op_shr_ri(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, cnt = (unsigned)in->imm & (size == 8 ? 63 : 31);
    if (!cnt) {
        x86_set_reg(cpu, in, in->rm, size, cpu->gpr[in->rm]);   /* a 32-bit write still zero-extends */
        return;
    }
    uint64_t v = x86_get_reg(cpu, in, in->rm, size), r = v >> cnt;
    x86_lf(cpu, X86_LF_SHR, size, v, cnt, r);
    x86_set_reg(cpu, in, in->rm, size, r);
}

static void op_sar_ri(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, cnt = (unsigned)in->imm & (size == 8 ? 63 : 31);
    if (!cnt) {
        x86_set_reg(cpu, in, in->rm, size, cpu->gpr[in->rm]);   /* a 32-bit write still zero-extends */
        return;
    }
    uint64_t v = x86_get_reg(cpu, in, in->rm, size);
    uint64_t r = (uint64_t)((int64_t)sext(v, size) >> cnt) & mask_of(size);
    x86_lf(cpu, X86_LF_SAR, size, v, cnt, r);
    x86_set_reg(cpu, in, in->rm, size, r);
}

/* INC/DEC r32/r64 (FF /0, /1) */
static void op_inc_r(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t v = (cpu->gpr[in->rm] + 1) & mask_of(size);
    x86_lf_incdec(cpu, X86_LF_INC, size, v);
    cpu->gpr[in->rm] = v;
}

static void op_dec_r(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t v = (cpu->gpr[in->rm] - 1) & mask_of(size);
    x86_lf_incdec(cpu, X86_LF_DEC, size, v);
    cpu->gpr[in->rm] = v;
}

/* SHL/SHR/SAR reg, CL on 32/64-bit registers */
static void op_shl_rc(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, cnt = (unsigned)cpu->gpr[X86_RCX] & (size == 8 ? 63 : 31);
    if (!cnt) {
        x86_set_reg(cpu, in, in->rm, size, cpu->gpr[in->rm]);   /* a 32-bit write still zero-extends */
        return;
    }
    uint64_t v = x86_get_reg(cpu, in, in->rm, size), r = (v << cnt) & mask_of(size);
    x86_lf(cpu, X86_LF_SHL, size, v, cnt, r);
    x86_set_reg(cpu, in, in->rm, size, r);
}

static void op_shr_rc(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, cnt = (unsigned)cpu->gpr[X86_RCX] & (size == 8 ? 63 : 31);
    if (!cnt) {
        x86_set_reg(cpu, in, in->rm, size, cpu->gpr[in->rm]);   /* a 32-bit write still zero-extends */
        return;
    }
    uint64_t v = x86_get_reg(cpu, in, in->rm, size), r = v >> cnt;
    x86_lf(cpu, X86_LF_SHR, size, v, cnt, r);
    x86_set_reg(cpu, in, in->rm, size, r);
}

static void op_sar_rc(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, cnt = (unsigned)cpu->gpr[X86_RCX] & (size == 8 ? 63 : 31);
    if (!cnt) {
        x86_set_reg(cpu, in, in->rm, size, cpu->gpr[in->rm]);   /* a 32-bit write still zero-extends */
        return;
    }
    uint64_t v = x86_get_reg(cpu, in, in->rm, size);
    uint64_t r = (uint64_t)((int64_t)sext(v, size) >> cnt) & mask_of(size);
    x86_lf(cpu, X86_LF_SAR, size, v, cnt, r);
    x86_set_reg(cpu, in, in->rm, size, r);
}

x86_handler *x86_alu_fast(const struct x86_insn *in)
{
    if (in->map != X86_MAP_1B)
        return NULL;
    if (in->op == 0xff && in->mod == 3 && in->osz >= 4 && ((in->modrm >> 3) & 7) < 2)
        return (in->modrm & 0x38) ? op_dec_r : op_inc_r;
    if (in->op == 0xc1 && in->mod == 3 && in->osz >= 4) {
        switch ((in->modrm >> 3) & 7) {
        case 4: case 6: return op_shl_ri;
        case 5: return op_shr_ri;
        case 7: return op_sar_ri;
        }
    }
    bool reg32_64 = in->mod == 3 && in->osz >= 4, q = in->osz == 8;
    if (reg32_64 && (in->op == 0x81 || in->op == 0x83) && ri_fn[(in->modrm >> 3) & 7][q])
        return ri_fn[(in->modrm >> 3) & 7][q];
    if (reg32_64 && in->op < 0x40 && (in->op & 7) < 4 && (in->op & 1) && rr_fn[in->op >> 3][q])
        return (in->op & 2) ? rrr_fn[in->op >> 3][q] : rr_fn[in->op >> 3][q];
    if (in->op == 0xd3 && in->mod == 3 && in->osz >= 4) {
        switch ((in->modrm >> 3) & 7) {
        case 4: case 6: return op_shl_rc;
        case 5: return op_shr_rc;
        case 7: return op_sar_rc;
        }
    }
    if (in->op >= 0x80 && in->op <= 0x83)
        return grp1_fn[(in->modrm >> 3) & 7];
    if (in->op < 0x40 && (in->op & 7) < 4) {
        if (in->op & 2)
            return r_rm_fn[in->op >> 3];
        return rm_r_fn[in->op >> 3];
    }
    return NULL;
}

/* ---- BMI1/BMI2 (VEX): reg is the destination, vvvv a source (the
 * destination for BLS*, MULX's low half) ------------------------------ */

/* SZP from r, CF as given, OF clear (the MUL record's shape) */
static void bmi_flags(struct x86_cpu *cpu, unsigned size, uint64_t r, bool cf)
{
    x86_lf(cpu, X86_LF_MUL, size, 0, cf ? X86_CF : 0, r);
}

static void op_andn(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t r = ~x86_get_reg(cpu, in, in->vvvv, size) & x86_get_rm(cpu, in, size) & mask_of(size);
    x86_set_reg(cpu, in, in->reg, size, r);
    x86_lf(cpu, X86_LF_LOGIC, size, 0, 0, r);
}

/* BLSR /1, BLSMSK /2, BLSI /3 */
static void op_blsx(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t s = x86_get_rm(cpu, in, size), r;
    switch ((in->modrm >> 3) & 7) {
    case 1: r = s & (s - 1); break;
    case 2: r = s ^ (s - 1); break;
    default: r = s & (0 - s); break;
    }
    r &= mask_of(size);
    x86_set_reg(cpu, in, in->vvvv, size, r);
    bmi_flags(cpu, size, r, ((in->modrm >> 3) & 7) == 3 ? s != 0 : s == 0);
}

static void op_bextr(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t s = x86_get_rm(cpu, in, size), c = x86_get_reg(cpu, in, in->vvvv, size);
    unsigned start = c & 0xff, len = (c >> 8) & 0xff;
    uint64_t r = start < 8 * size ? s >> start : 0;
    if (len < 64)
        r &= (1ull << len) - 1;
    x86_set_reg(cpu, in, in->reg, size, r);
    x86_lf(cpu, X86_LF_LOGIC, size, 0, 0, r);
}

static void op_bzhi(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, n = (unsigned)x86_get_reg(cpu, in, in->vvvv, size) & 0xff;
    uint64_t r = x86_get_rm(cpu, in, size);
    bool cf = n >= 8 * size;
    if (!cf)
        r &= (1ull << n) - 1;
    x86_set_reg(cpu, in, in->reg, size, r);
    bmi_flags(cpu, size, r, cf);
}

static void op_pdep(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t s = x86_get_reg(cpu, in, in->vvvv, size), m = x86_get_rm(cpu, in, size), r = 0;
    for (uint64_t bit = 1; m; bit <<= 1) {
        uint64_t low = m & (0 - m);
        if (s & bit)
            r |= low;
        m ^= low;
    }
    x86_set_reg(cpu, in, in->reg, size, r);
}

static void op_pext(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t s = x86_get_reg(cpu, in, in->vvvv, size), m = x86_get_rm(cpu, in, size), r = 0;
    for (uint64_t bit = 1; m; bit <<= 1) {
        uint64_t low = m & (0 - m);
        if (s & low)
            r |= bit;
        m ^= low;
    }
    x86_set_reg(cpu, in, in->reg, size, r);
}

static void op_mulx(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz;
    uint64_t a = x86_get_reg(cpu, in, X86_RDX, size), b = x86_get_rm(cpu, in, size), lo, hi;
    if (size == 8) {
        unsigned __int128 p = (unsigned __int128)a * b;
        lo = (uint64_t)p;
        hi = (uint64_t)(p >> 64);
    } else {
        uint64_t p = a * b;
        lo = (uint32_t)p;
        hi = p >> 32;
    }
    /* same register for both halves: the high half wins */
    x86_set_reg(cpu, in, in->vvvv, size, lo);
    x86_set_reg(cpu, in, in->reg, size, hi);
}

static void op_rorx(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, bits = 8 * size, c = (unsigned)in->imm & (bits - 1);
    uint64_t s = x86_get_rm(cpu, in, size);
    uint64_t r = c ? ((s >> c) | (s << (bits - c))) & mask_of(size) : s;
    x86_set_reg(cpu, in, in->reg, size, r);
}

/* SHLX/SHRX/SARX: count from vvvv, flags untouched */
static void op_shlx(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, c = (unsigned)x86_get_reg(cpu, in, in->vvvv, size) & (8 * size - 1);
    x86_set_reg(cpu, in, in->reg, size, (x86_get_rm(cpu, in, size) << c) & mask_of(size));
}

static void op_shrx(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, c = (unsigned)x86_get_reg(cpu, in, in->vvvv, size) & (8 * size - 1);
    x86_set_reg(cpu, in, in->reg, size, x86_get_rm(cpu, in, size) >> c);
}

static void op_sarx(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, c = (unsigned)x86_get_reg(cpu, in, in->vvvv, size) & (8 * size - 1);
    uint64_t s = x86_get_rm(cpu, in, size);
    x86_set_reg(cpu, in, in->reg, size, (uint64_t)((int64_t)sext(s, size) >> c) & mask_of(size));
}

x86_handler *x86_vex_handler(const struct x86_insn *in, unsigned pp)
{
    if (in->map == X86_MAP_0F3A)
        return in->op == 0xf0 && pp == 3 ? op_rorx : NULL;
    if (in->map != X86_MAP_0F38)
        return NULL;
    switch (in->op) {
    case 0xf2:
        return pp == 0 ? op_andn : NULL;
    case 0xf3: {
        unsigned r = (in->modrm >> 3) & 7;
        return pp == 0 && r >= 1 && r <= 3 ? op_blsx : NULL;
    }
    case 0xf5:
        return pp == 0 ? op_bzhi : pp == 2 ? op_pext : pp == 3 ? op_pdep : NULL;
    case 0xf6:
        return pp == 3 ? op_mulx : NULL;
    case 0xf7:
        return pp == 0 ? op_bextr : pp == 1 ? op_shlx : pp == 2 ? op_sarx : op_shrx;
    }
    return NULL;
}

void x86_alu_register(struct x86_op_table *t)
{
    for (unsigned row = 0; row < 8; row++) {
        unsigned b = row * 8;
        x86_op_set(t, X86_MAP_1B, 0, b + 0, op_alu_rm_r);
        x86_op_set(t, X86_MAP_1B, 0, b + 1, op_alu_rm_r);
        x86_op_set(t, X86_MAP_1B, 0, b + 2, op_alu_r_rm);
        x86_op_set(t, X86_MAP_1B, 0, b + 3, op_alu_r_rm);
        x86_op_set(t, X86_MAP_1B, 0, b + 4, op_alu_acc_imm);
        x86_op_set(t, X86_MAP_1B, 0, b + 5, op_alu_acc_imm);
    }
    x86_op_set(t, X86_MAP_1B, 0, 0x01, op_add_rm_r);
    x86_op_set(t, X86_MAP_1B, 0, 0x29, op_sub_rm_r);
    x86_op_set(t, X86_MAP_1B, 0, 0x39, op_cmp_rm_r);
    x86_op_set(t, X86_MAP_1B, 0, 0x31, op_xor_rm_r);
    x86_op_set(t, X86_MAP_1B, 0, 0x21, op_and_rm_r);
    x86_op_set(t, X86_MAP_1B, 0, 0x09, op_or_rm_r);
    x86_op_set(t, X86_MAP_1B, 0, 0x27, op_bcd);
    x86_op_set(t, X86_MAP_1B, 0, 0x2f, op_bcd);
    x86_op_set(t, X86_MAP_1B, 0, 0x37, op_bcd);
    x86_op_set(t, X86_MAP_1B, 0, 0x3f, op_bcd);
    x86_op_set(t, X86_MAP_1B, 0, 0xd4, op_bcd);
    x86_op_set(t, X86_MAP_1B, 0, 0xd5, op_bcd);
    x86_op_set(t, X86_MAP_1B, 0, 0xd6, op_salc);
    for (unsigned i = 0x40; i < 0x50; i++)
        x86_op_set(t, X86_MAP_1B, 0, i, op_incdec_r);
    for (unsigned i = 0x80; i < 0x84; i++)
        x86_op_set(t, X86_MAP_1B, 0, i, op_grp1);
    x86_op_set(t, X86_MAP_1B, 0, 0x84, op_test_rm_r);
    x86_op_set(t, X86_MAP_1B, 0, 0x85, op_test_rm_r);
    x86_op_set(t, X86_MAP_1B, 0, 0xa8, op_test_acc_imm);
    x86_op_set(t, X86_MAP_1B, 0, 0xa9, op_test_acc_imm);
    x86_op_set(t, X86_MAP_1B, 0, 0x69, op_imul_imm);
    x86_op_set(t, X86_MAP_1B, 0, 0x6b, op_imul_imm);
    x86_op_set(t, X86_MAP_1B, 0, 0x98, op_cbw);
    x86_op_set(t, X86_MAP_1B, 0, 0x99, op_cwd);
    x86_op_set(t, X86_MAP_1B, 0, 0x9e, op_sahf);
    x86_op_set(t, X86_MAP_1B, 0, 0x9f, op_lahf);
    x86_op_set(t, X86_MAP_1B, 0, 0xc0, op_shift_imm);
    x86_op_set(t, X86_MAP_1B, 0, 0xc1, op_shift_imm);
    x86_op_set(t, X86_MAP_1B, 0, 0xd0, op_shift_1);
    x86_op_set(t, X86_MAP_1B, 0, 0xd1, op_shift_1);
    x86_op_set(t, X86_MAP_1B, 0, 0xd2, op_shift_cl);
    x86_op_set(t, X86_MAP_1B, 0, 0xd3, op_shift_cl);
    x86_op_set(t, X86_MAP_1B, 0, 0xf5, op_flagop);
    x86_op_set(t, X86_MAP_1B, 0, 0xf6, op_grp3);
    x86_op_set(t, X86_MAP_1B, 0, 0xf7, op_grp3);
    x86_op_set(t, X86_MAP_1B, 0, 0xf8, op_flagop);
    x86_op_set(t, X86_MAP_1B, 0, 0xf9, op_flagop);
    x86_op_set(t, X86_MAP_1B, 0, 0xfc, op_flagop);
    x86_op_set(t, X86_MAP_1B, 0, 0xfd, op_flagop);
    x86_op_set(t, X86_MAP_1B, 0, 0xfe, op_grp4);

    for (unsigned i = 0; i < 16; i++) {
        x86_op_set(t, X86_MAP_0F, 0, 0x40 + i, op_cmovcc);
        x86_op_set(t, X86_MAP_0F, 0, 0x90 + i, op_setcc);
    }
    x86_op_set(t, X86_MAP_0F, 0, 0xa3, op_bt);
    x86_op_set(t, X86_MAP_0F, 0, 0xab, op_bt);
    x86_op_set(t, X86_MAP_0F, 0, 0xb3, op_bt);
    x86_op_set(t, X86_MAP_0F, 0, 0xbb, op_bt);
    x86_op_set(t, X86_MAP_0F, 0, 0xba, op_grp8);
    x86_op_set(t, X86_MAP_0F, 0, 0xa4, op_shld_imm);
    x86_op_set(t, X86_MAP_0F, 0, 0xa5, op_shld_cl);
    x86_op_set(t, X86_MAP_0F, 0, 0xac, op_shrd_imm);
    x86_op_set(t, X86_MAP_0F, 0, 0xad, op_shrd_cl);
    x86_op_set(t, X86_MAP_0F, 0, 0xaf, op_imul_r_rm);
    x86_op_set(t, X86_MAP_0F, 0, 0xb0, op_cmpxchg);
    x86_op_set(t, X86_MAP_0F, 0, 0xb1, op_cmpxchg);
    x86_op_set(t, X86_MAP_0F, 0, 0xbc, op_bsf);
    x86_op_set(t, X86_MAP_0F, 0, 0xbd, op_bsr);
    x86_op_set(t, X86_MAP_0F, X86_MP_F3, 0xb8, op_popcnt);
    x86_op_set(t, X86_MAP_0F, X86_MP_F3, 0xbc, op_tzcnt);
    x86_op_set(t, X86_MAP_0F, X86_MP_F3, 0xbd, op_lzcnt);
    x86_op_set(t, X86_MAP_0F, 0, 0xc0, op_xadd);
    x86_op_set(t, X86_MAP_0F, 0, 0xc1, op_xadd);
    for (unsigned i = 0xc8; i < 0xd0; i++)
        x86_op_set(t, X86_MAP_0F, 0, i, op_bswap);
    x86_op_set(t, X86_MAP_0F38, 0, 0xf0, op_movbe);
    x86_op_set(t, X86_MAP_0F38, 0, 0xf1, op_movbe);
    x86_op_set(t, X86_MAP_0F38, X86_MP_66, 0xf0, op_movbe);
    x86_op_set(t, X86_MAP_0F38, X86_MP_66, 0xf1, op_movbe);
}
