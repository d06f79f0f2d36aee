/* Instruction decoder: legacy prefixes, REX, opcode maps, ModRM/SIB,
 * displacement and immediates into a `struct x86_insn` (SDM vol. 2,
 * chapter 2 and appendix A). The handler is looked up here, once, so
 * executing a cached instruction is one indirect call. */
#include <pthread.h>
#include "accel/emu/cpu_int.h"
#include "accel/emu/decode.h"
#include "accel/emu/exec.h"

/* Operand attributes per opcode. */
enum {
    A_M = 1 << 0,     /* ModRM follows */
    A_B = 1 << 1,     /* byte operand */
    A_IB = 1 << 2,    /* imm8, sign-extended */
    A_IW = 1 << 3,    /* imm16 */
    A_IZ = 1 << 4,    /* imm16/32 by operand size, sign-extended to 64 */
    A_IV = 1 << 5,    /* imm16/32/64 by operand size (MOV r, imm) */
    A_D64 = 1 << 6,   /* operand size defaults to 64 in 64-bit mode */
    A_F64 = 1 << 7,   /* operand size is 64 in 64-bit mode, 66 ignored */
    A_O = 1 << 8,     /* moffs: address-size immediate */
    A_AP = 1 << 9,    /* far pointer ptr16:16/32 */
    A_I64 = 1 << 10,  /* invalid in 64-bit mode */
    A_END = 1 << 11,  /* ends a decoded block (control transfer) */
    A_GRP3 = 1 << 12, /* F6/F7: immediate only for /0 and /1 */
    A_ENTER = 1 << 13,/* Iw, Ib */
    A_PFX = 1 << 14,  /* a prefix byte */
    A_U8 = 1 << 15,   /* imm8 zero-extended */
};
#define A_MREG (A_M | A_IV | A_IZ | A_IB)   /* MOV CR/DR: ModRM always a register (marker) */

#define ALU_ROW(x) [x] = A_M | A_B, [x + 1] = A_M, [x + 2] = A_M | A_B, [x + 3] = A_M, \
                   [x + 4] = A_B | A_IB, [x + 5] = A_IZ
#define R8(x, a) [x] = a, [x + 1] = a, [x + 2] = a, [x + 3] = a, [x + 4] = a, [x + 5] = a, \
                 [x + 6] = a, [x + 7] = a
#define R16(x, a) R8(x, a), R8(x + 8, a)

static const uint16_t attr_1b[256] = {
    ALU_ROW(0x00), ALU_ROW(0x08), ALU_ROW(0x10), ALU_ROW(0x18),
    ALU_ROW(0x20), ALU_ROW(0x28), ALU_ROW(0x30), ALU_ROW(0x38),
    [0x06] = A_I64, [0x07] = A_I64, [0x0e] = A_I64, [0x16] = A_I64, [0x17] = A_I64,
    [0x1e] = A_I64, [0x1f] = A_I64, [0x27] = A_I64, [0x2f] = A_I64, [0x37] = A_I64,
    [0x3f] = A_I64,
    [0x26] = A_PFX, [0x2e] = A_PFX, [0x36] = A_PFX, [0x3e] = A_PFX,
    R8(0x50, A_D64), R8(0x58, A_D64),
    [0x60] = A_I64, [0x61] = A_I64, [0x62] = A_M | A_I64, [0x63] = A_M,
    [0x64] = A_PFX, [0x65] = A_PFX, [0x66] = A_PFX, [0x67] = A_PFX,
    [0x68] = A_IZ | A_D64, [0x69] = A_M | A_IZ, [0x6a] = A_IB | A_D64, [0x6b] = A_M | A_IB,
    [0x6c] = A_B, [0x6e] = A_B,
    R16(0x70, A_IB | A_F64 | A_END),
    [0x80] = A_M | A_B | A_IB, [0x81] = A_M | A_IZ, [0x82] = A_M | A_B | A_IB | A_I64,
    [0x83] = A_M | A_IB, [0x84] = A_M | A_B, [0x85] = A_M, [0x86] = A_M | A_B, [0x87] = A_M,
    [0x88] = A_M | A_B, [0x89] = A_M, [0x8a] = A_M | A_B, [0x8b] = A_M, [0x8c] = A_M,
    [0x8d] = A_M, [0x8e] = A_M, [0x8f] = A_M | A_D64,
    [0x9a] = A_AP | A_I64 | A_END, [0x9c] = A_D64, [0x9d] = A_D64,
    [0xa0] = A_O | A_B, [0xa1] = A_O, [0xa2] = A_O | A_B, [0xa3] = A_O,
    [0xa4] = A_B, [0xa6] = A_B, [0xa8] = A_B | A_IB, [0xa9] = A_IZ, [0xaa] = A_B, [0xac] = A_B,
    [0xae] = A_B,
    R8(0xb0, A_B | A_IB), R8(0xb8, A_IV),
    [0xc0] = A_M | A_B | A_U8, [0xc1] = A_M | A_U8, [0xc2] = A_IW | A_F64 | A_END,
    [0xc3] = A_F64 | A_END, [0xc4] = A_M | A_I64, [0xc5] = A_M | A_I64,
    [0xc6] = A_M | A_B | A_IB, [0xc7] = A_M | A_IZ, [0xc8] = A_ENTER | A_D64, [0xc9] = A_D64,
    [0xca] = A_IW | A_END, [0xcb] = A_END, [0xcc] = A_END, [0xcd] = A_U8 | A_END,
    [0xce] = A_I64 | A_END, [0xcf] = A_END,
    [0xd0] = A_M | A_B, [0xd1] = A_M, [0xd2] = A_M | A_B, [0xd3] = A_M,
    [0xd4] = A_U8 | A_I64, [0xd5] = A_U8 | A_I64, [0xd6] = A_I64,
    R8(0xd8, A_M),
    [0xe0] = A_IB | A_F64 | A_END, [0xe1] = A_IB | A_F64 | A_END, [0xe2] = A_IB | A_F64 | A_END,
    [0xe3] = A_IB | A_F64 | A_END, [0xe4] = A_B | A_U8, [0xe5] = A_U8, [0xe6] = A_B | A_U8,
    [0xe7] = A_U8, [0xe8] = A_IZ | A_F64 | A_END, [0xe9] = A_IZ | A_F64 | A_END,
    [0xea] = A_AP | A_I64 | A_END, [0xeb] = A_IB | A_F64 | A_END, [0xec] = A_B, [0xee] = A_B,
    [0xf0] = A_PFX, [0xf1] = A_END, [0xf2] = A_PFX, [0xf3] = A_PFX, [0xf4] = A_END,
    [0xf6] = A_M | A_B | A_GRP3, [0xf7] = A_M | A_GRP3, [0xfe] = A_M | A_B, [0xff] = A_M,
};

/* 0F map: ModRM is the rule; list the exceptions. */
static uint16_t attr_0f(unsigned op)
{
    switch (op) {
    case 0x05: case 0x07: case 0x34: case 0x35:
        return A_END;
    case 0x06: case 0x08: case 0x09: case 0x0b: case 0x0e: case 0x30: case 0x31: case 0x32:
    case 0x33: case 0x37: case 0x77: case 0xa2: case 0xaa:
    case 0xc8: case 0xc9: case 0xca: case 0xcb: case 0xcc: case 0xcd: case 0xce: case 0xcf:
        return 0;
    case 0xa0: case 0xa1: case 0xa8: case 0xa9:
        return A_D64;
    case 0x70: case 0x71: case 0x72: case 0x73: case 0xa4: case 0xac: case 0xba:
    case 0xc2: case 0xc4: case 0xc5: case 0xc6:
        return A_M | A_U8;
    case 0x90 ... 0x9f: case 0xb0: case 0xc0:
        return A_M | A_B;
    case 0x80 ... 0x8f:
        return A_IZ | A_F64 | A_END;
    case 0x20 ... 0x23:
        return A_MREG;
    default:
        return A_M;
    }
}

/* ---- Op table ----------------------------------------------------------- */

static struct x86_op_table op_table;
static pthread_once_t op_once = PTHREAD_ONCE_INIT;

static void op_table_init(void)
{
    x86_int_register(&op_table);
    if (x86_simd_register)
        x86_simd_register(&op_table);
}

const struct x86_op_table *x86_ops(void)
{
    pthread_once(&op_once, op_table_init);
    return &op_table;
}

static void op_invalid(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_unimp(cpu, in);
}

/* Opcode byte of the current instruction lost its handler: #UD. */
static void op_bad_lock(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_ud(cpu);
}

/* ---- ModRM ----------------------------------------------------------------- */

struct dec {
    const uint8_t *p;
    unsigned pos, avail;
    bool short_;            /* ran out of bytes */
};

static inline uint8_t get8(struct dec *d)
{
    if (d->pos >= d->avail) {
        d->short_ = true;
        return 0;
    }
    return d->p[d->pos++];
}

static uint64_t getn(struct dec *d, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)get8(d) << (8 * i);
    return v;
}

static void decode_modrm16(struct dec *d, struct x86_insn *in)
{
    static const uint8_t base[8] = { X86_RBX, X86_RBX, X86_RBP, X86_RBP, X86_RSI, X86_RDI, X86_RBP, X86_RBX };
    static const uint8_t index[8] = { X86_RSI, X86_RDI, X86_RSI, X86_RDI, X86_NOREG, X86_NOREG,
                                      X86_NOREG, X86_NOREG };
    unsigned rm = in->modrm & 7;
    in->base = base[rm];
    in->index = index[rm];
    in->scale = 0;
    if (in->mod == 0 && rm == 6) {
        in->base = X86_NOREG;
        in->disp = (int16_t)getn(d, 2);
    } else if (in->mod == 1) {
        in->disp = (int8_t)get8(d);
    } else if (in->mod == 2) {
        in->disp = (int16_t)getn(d, 2);
    }
    if (!(in->pfx & X86_PFX_SEG) && in->base == X86_RBP)
        in->seg = X86_SS;
}

static void decode_modrm32(struct dec *d, struct x86_insn *in, bool code64)
{
    unsigned rm = in->modrm & 7;
    unsigned rex = in->rex;
    in->index = X86_NOREG;
    in->scale = 0;
    if (rm == 4) {
        uint8_t sib = get8(d);
        unsigned idx = ((sib >> 3) & 7) | ((rex & 2) << 2);
        in->scale = sib >> 6;
        if (idx != 4)
            in->index = idx;
        unsigned b = sib & 7;
        if (b == 5 && in->mod == 0) {
            in->base = X86_NOREG;
            in->disp = (int32_t)getn(d, 4);
        } else {
            in->base = b | ((rex & 1) << 3);
        }
    } else if (rm == 5 && in->mod == 0) {
        in->base = code64 ? X86_RIPREL : X86_NOREG;
        in->disp = (int32_t)getn(d, 4);
    } else {
        in->base = rm | ((rex & 1) << 3);
    }
    if (in->mod == 1)
        in->disp = (int8_t)get8(d);
    else if (in->mod == 2)
        in->disp = (int32_t)getn(d, 4);
    if (!(in->pfx & X86_PFX_SEG) && (in->base == X86_RSP || in->base == X86_RBP))
        in->seg = X86_SS;
}

static void decode_imm(struct dec *d, struct x86_insn *in, unsigned a, bool code64)
{
    if (a & A_GRP3) {
        if (((in->modrm >> 3) & 7) < 2)
            a |= (a & A_B) ? A_IB : A_IZ;
    }
    if (a & A_IB)
        in->imm = (uint64_t)(int64_t)(int8_t)get8(d);
    else if (a & A_U8)
        in->imm = get8(d);
    else if (a & A_IW)
        in->imm = getn(d, 2);
    else if (a & A_IZ)
        in->imm = in->osz == 2 ? (uint64_t)(int64_t)(int16_t)getn(d, 2)
                               : (uint64_t)(int64_t)(int32_t)getn(d, 4);
    else if (a & A_IV)
        in->imm = getn(d, in->osz);
    else if (a & A_O)
        in->imm = getn(d, in->asz);
    else if (a & A_AP) {
        in->imm = getn(d, in->osz == 2 ? 2 : 4);
        in->disp = (int32_t)getn(d, 2);
    } else if (a & A_ENTER) {
        in->imm = getn(d, 2);
        in->imm2 = get8(d);
    }
}

/* Where every path of x86_decode ends up: length, segment, EA shortcut. */
static void decode_finish(struct dec *d, struct x86_insn *in, bool code64)
{
    in->len = d->pos;
    if (code64 && in->seg < X86_FS)
        in->seg = X86_SEG_ZERO;
    if (in->mod != 3 && in->asz == 8 && in->base < 16 && in->index == X86_NOREG &&
        in->seg == X86_SEG_ZERO)
        in->flags |= X86_INSN_EA_SIMPLE;
}

/* VEX prefix (C4 3-byte, C5 2-byte): only the BMI1/BMI2 integer forms
 * exist; anything else, VEX.L=1, or a 66/F2/F3/LOCK/REX before it is #UD. */
static int decode_vex(struct dec *d, struct x86_insn *in, uint8_t b, unsigned mode, unsigned avail)
{
    bool code64 = mode & X86_DEC_64, code32 = mode & X86_DEC_32;
    uint8_t p1 = get8(d), p2 = b == 0xc5 ? (p1 & 0x7f) : get8(d);
    unsigned mm = b == 0xc5 ? 1 : p1 & 0x1f, pp = p2 & 3, l = (p2 >> 2) & 1;
    unsigned r = !(p1 & 0x80), x = b == 0xc4 && !(p1 & 0x40), bx = b == 0xc4 && !(p1 & 0x20);
    unsigned w = b == 0xc4 && (p2 & 0x80);
    in->vvvv = (~p2 >> 3) & 15;
    if (!code64) {
        r = x = bx = w = 0;
        in->vvvv &= 7;
    }
    in->rex = (uint8_t)(0x40 | (w << 3) | (r << 2) | (x << 1) | bx);
    in->map = mm == 2 ? X86_MAP_0F38 : mm == 3 ? X86_MAP_0F3A : X86_MAP_0F;
    in->op = get8(d);
    in->osz = w ? 8 : 4;
    if (code64)
        in->asz = (in->pfx & X86_PFX_67) ? 4 : 8;
    else
        in->asz = (code32 ^ !!(in->pfx & X86_PFX_67)) ? 4 : 2;
    in->modrm = get8(d);
    in->mod = in->modrm >> 6;
    in->reg = ((in->modrm >> 3) & 7) | (r << 3);
    in->rm = (in->modrm & 7) | (bx << 3);
    if (in->mod != 3) {
        if (in->asz == 2)
            decode_modrm16(d, in);
        else
            decode_modrm32(d, in, code64);
    }
    if (in->map == X86_MAP_0F3A)
        in->imm = get8(d);
    if (d->short_)
        return avail >= 15 ? -2 : -1;
    decode_finish(d, in, code64);
    x86_handler *fn = (mm == 2 || mm == 3) ? x86_vex_handler(in, pp) : NULL;
    if (!fn || l || (in->pfx & (X86_PFX_66 | X86_PFX_F2 | X86_PFX_F3 | X86_PFX_LOCK))) {
        in->fn = op_invalid;
        in->flags |= X86_DF_END;
        return -2;
    }
    in->fn = fn;
    return 0;
}

/* Decode one instruction from bytes[0..avail). mode: X86_DEC_* bits.
 * Returns 0, -1 if more bytes are needed (avail too short), or -2 if the
 * instruction is invalid (fills in->fn with a #UD handler anyway). */
int x86_decode(const uint8_t *bytes, unsigned avail, unsigned mode, struct x86_insn *in)
{
    const struct x86_op_table *t = x86_ops();
    bool code64 = mode & X86_DEC_64, code32 = mode & X86_DEC_32;
    struct dec d = { bytes, 0, avail > 15 ? 15 : avail, false };
    unsigned last_rep = 0;
    uint8_t b;

    memset(in, 0, sizeof(*in));
    in->seg = X86_DS;
    for (;;) {
        b = get8(&d);
        if (d.short_)
            return avail >= 15 ? -2 : -1;
        if (!(attr_1b[b] & A_PFX))
            break;
        switch (b) {
        case 0x26: in->seg = X86_ES; in->pfx |= X86_PFX_SEG; break;
        case 0x2e: in->seg = X86_CS; in->pfx |= X86_PFX_SEG; break;
        case 0x36: in->seg = X86_SS; in->pfx |= X86_PFX_SEG; break;
        case 0x3e: in->seg = X86_DS; in->pfx |= X86_PFX_SEG; break;
        case 0x64: in->seg = X86_FS; in->pfx |= X86_PFX_SEG; break;
        case 0x65: in->seg = X86_GS; in->pfx |= X86_PFX_SEG; break;
        case 0x66: in->pfx |= X86_PFX_66; break;
        case 0x67: in->pfx |= X86_PFX_67; break;
        case 0xf0: in->pfx |= X86_PFX_LOCK; break;
        case 0xf2: in->pfx |= X86_PFX_F2; last_rep = 0xf2; break;
        case 0xf3: in->pfx |= X86_PFX_F3; last_rep = 0xf3; break;
        }
    }
    /* outside 64-bit mode C4/C5 are LES/LDS unless ModRM.mod would be 3 */
    if ((b == 0xc4 || b == 0xc5) && (code64 || (d.pos < d.avail && bytes[d.pos] >= 0xc0)))
        return decode_vex(&d, in, b, mode, avail);
    if (code64 && (b & 0xf0) == 0x40) {
        in->rex = b;
        b = get8(&d);
        /* A REX followed by another prefix is ignored; keep it simple:
         * only the last REX directly before the opcode counts. */
        while ((b & 0xf0) == 0x40 && !d.short_) {
            in->rex = b;
            b = get8(&d);
        }
    }
    unsigned a;
    in->map = X86_MAP_1B;
    if (b == 0x0f) {
        b = get8(&d);
        if (b == 0x38) {
            in->map = X86_MAP_0F38;
            b = get8(&d);
            a = A_M;
        } else if (b == 0x3a) {
            in->map = X86_MAP_0F3A;
            b = get8(&d);
            a = A_M | A_U8;
        } else {
            in->map = X86_MAP_0F;
            a = attr_0f(b);
        }
    } else {
        a = attr_1b[b];
    }
    in->op = b;

    /* sizes */
    if (code64) {
        in->asz = (in->pfx & X86_PFX_67) ? 4 : 8;
        if (in->rex & 8)
            in->osz = 8;
        else if (a & A_F64)
            in->osz = 8;
        else if (in->pfx & X86_PFX_66)
            in->osz = 2;
        else
            in->osz = (a & A_D64) ? 8 : 4;
    } else {
        bool big = code32;
        in->asz = (big ^ !!(in->pfx & X86_PFX_67)) ? 4 : 2;
        in->osz = (big ^ !!(in->pfx & X86_PFX_66)) ? 4 : 2;
    }
    if (a & A_B)
        in->osz = 1;

    if (a & A_M) {
        in->modrm = get8(&d);
        in->mod = in->modrm >> 6;
        in->reg = ((in->modrm >> 3) & 7) | ((in->rex & 4) << 1);
        in->rm = (in->modrm & 7) | ((in->rex & 1) << 3);
        if (a == A_MREG) {
            in->mod = 3;
            a = 0;
            in->osz = code64 ? 8 : 4;
        } else if (in->mod != 3) {
            if (in->asz == 2)
                decode_modrm16(&d, in);
            else
                decode_modrm32(&d, in, code64);
        }
    } else {
        /* +r forms use the low opcode bits with REX.B */
        in->reg = (b & 7) | ((in->rex & 1) << 3);
        in->rm = in->reg;
        in->mod = 3;
        in->base = in->index = X86_NOREG;
    }
    decode_imm(&d, in, a, code64);
    if (d.short_)
        return avail >= 15 ? -2 : -1;
    decode_finish(&d, in, code64);
    if (a & A_END)
        in->flags |= X86_DF_END;

    /* handler */
    x86_handler *fn;
    if (in->map == X86_MAP_1B) {
        fn = t->fn[0][X86_MP_NONE][b];
    } else {
        unsigned mp = last_rep == 0xf3 ? X86_MP_F3 : last_rep == 0xf2 ? X86_MP_F2
                    : (in->pfx & X86_PFX_66) ? X86_MP_66 : X86_MP_NONE;
        fn = t->fn[in->map][mp][b];
        if (fn && mp != X86_MP_NONE)
            in->flags |= X86_DF_MANDATORY;
        if (!fn)
            fn = t->fn[in->map][X86_MP_NONE][b];
    }
    if ((a & A_I64) && code64)
        fn = NULL;
    if (!fn) {
        in->fn = op_invalid;
        in->flags |= X86_DF_END;
        return -2;
    }
    if ((in->pfx & X86_PFX_LOCK) && !x86_lock_ok(in)) {
        in->fn = op_bad_lock;
        in->flags |= X86_DF_END;
        return -2;
    }
    x86_handler *fast = x86_move_fast(in);
    if (!fast && fn == t->fn[in->map][X86_MP_NONE][b])
        fast = x86_alu_fast(in);
    in->fn = fast ? fast : fn;
    if (in->map == X86_MAP_1B && b == 0xff && ((in->modrm >> 3) & 7) >= 2 &&
        ((in->modrm >> 3) & 7) <= 5)
        in->flags |= X86_DF_END;
    return 0;
}

/* LOCK is only valid on read-modify-write forms with a memory destination. */
bool x86_lock_ok(const struct x86_insn *in)
{
    if (in->mod == 3 && !(in->map == X86_MAP_0F && in->op == 0x20) &&
        !(in->map == X86_MAP_0F && in->op == 0x22))
        return false;
    if (in->map == X86_MAP_1B) {
        unsigned op = in->op, r = (in->modrm >> 3) & 7;
        if (op < 0x40 && (op & 7) < 2 && (op & 0x38) != 0x38)
            return true;
        if (op >= 0x80 && op <= 0x83)
            return r != 7;
        if (op == 0x86 || op == 0x87)
            return true;
        if (op == 0xf6 || op == 0xf7)
            return r == 2 || r == 3;
        if (op == 0xfe || op == 0xff)
            return r < 2;
        return false;
    }
    if (in->map == X86_MAP_0F) {
        switch (in->op) {
        case 0xab: case 0xb3: case 0xbb: case 0xb0: case 0xb1: case 0xc0: case 0xc1:
            return true;
        case 0xba:
            return ((in->modrm >> 3) & 7) >= 5;
        case 0xc7:
            return ((in->modrm >> 3) & 7) == 1;
        }
    }
    return false;
}
