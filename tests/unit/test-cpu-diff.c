/* Differential tests of the emulated CPU's general-purpose instructions
 * against the host CPU: every form below runs many times with random
 * operands and flags on both, comparing all GPRs, the flags the SDM
 * defines for that instruction, and the memory around [rbx]. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <cpuid.h>
#include "cpu-diff.h"

#define ALL 0x8d5u                   /* CF PF AF ZF SF OF */
#define CF 0x1u
#define PF 0x4u
#define AF 0x10u
#define ZF 0x40u
#define SF 0x80u
#define OF 0x800u

enum { K_PLAIN, K_DIV, K_IDIV, K_SHIFT, K_SHXD, K_BTMEM, K_CMPXCHG16, K_CMPXCHG };

struct dcase {
    char name[48];
    uint8_t b[40];
    int n;
    unsigned fmask;
    int kind;
    int size, op;        /* shifts: operand size and /op; count from imm (cnt_imm >= 0) or CL */
    int cnt_imm;
    int dreg;            /* K_DIV: divisor register (or -1 for memory) */
};

#define MAXC 1200
static struct dcase cases[MAXC];
static int ncases;

/* ---- encoder -------------------------------------------------------------- */

/* r/m operand: register rm, or memory [rbx+0x40] when rm < 0. */
static struct dcase *enc(const char *name, int size, const uint8_t *op, int oplen, int reg,
                         int rm, int immsz, uint64_t imm, unsigned fmask)
{
    struct dcase *c = &cases[ncases++];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof c->name, "%s/%d%s", name, size * 8, rm < 0 ? "m" : "r");
    c->fmask = fmask;
    c->cnt_imm = -1;
    c->size = size;
    if (size == 2)
        c->b[c->n++] = 0x66;
    uint8_t rex = 0x40 | (size == 8 ? 8 : 0) | (reg >= 8 ? 4 : 0) | (rm >= 8 ? 1 : 0);
    if (rex != 0x40 || (size == 1 && ((reg >= 4 && reg < 8 && reg != 7) || rm >= 4)))
        c->b[c->n++] = rex;
    for (int i = 0; i < oplen; i++)
        c->b[c->n++] = op[i];
    if (rm < 0) {
        c->b[c->n++] = 0x40 | ((reg & 7) << 3) | 3;
        c->b[c->n++] = 0x40;
    } else {
        c->b[c->n++] = 0xc0 | ((reg & 7) << 3) | (rm & 7);
    }
    for (int i = 0; i < immsz; i++)
        c->b[c->n++] = (uint8_t)(imm >> (8 * i));
    return c;
}

static struct dcase *raw(const char *name, const char *bytes, int n, unsigned fmask)
{
    struct dcase *c = &cases[ncases++];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof c->name, "%s", name);
    memcpy(c->b, bytes, n);
    c->n = n;
    c->fmask = fmask;
    c->cnt_imm = -1;
    return c;
}

static const int sizes[4] = { 1, 2, 4, 8 };

static void build_cases(void)
{
    static const char *alu[8] = { "add", "or", "adc", "sbb", "and", "sub", "xor", "cmp" };
    static const unsigned alu_f[8] = { ALL, ALL & ~AF, ALL, ALL, ALL & ~AF, ALL, ALL & ~AF, ALL };
    uint8_t op[3];
    for (int a = 0; a < 8; a++) {
        for (int si = 0; si < 4; si++) {
            int s = sizes[si], w = s > 1;
            op[0] = (uint8_t)(a * 8 + w);
            enc(alu[a], s, op, 1, 1, 2, 0, 0, alu_f[a]);
            enc(alu[a], s, op, 1, 9, 0, 0, 0, alu_f[a]);
            enc(alu[a], s, op, 1, 11, -1, 0, 0, alu_f[a]);
            op[0] = (uint8_t)(a * 8 + 2 + w);
            enc(alu[a], s, op, 1, 2, 10, 0, 0, alu_f[a]);
            enc(alu[a], s, op, 1, 5, -1, 0, 0, alu_f[a]);
            op[0] = (uint8_t)(w ? 0x81 : 0x80);
            enc(alu[a], s, op, 1, a, 2, s == 1 ? 1 : s == 2 ? 2 : 4, 0x8000007f, alu_f[a]);
            enc(alu[a], s, op, 1, a, -1, s == 1 ? 1 : s == 2 ? 2 : 4, 0x12345680, alu_f[a]);
            if (w) {
                op[0] = 0x83;
                enc(alu[a], s, op, 1, a, 14, 1, 0xf0, alu_f[a]);
            }
        }
        /* byte registers AH..DH without REX */
        op[0] = (uint8_t)(a * 8);
        struct dcase *c = &cases[ncases++];
        memset(c, 0, sizeof(*c));
        snprintf(c->name, sizeof c->name, "%s ah,ch", alu[a]);
        c->b[0] = op[0];
        c->b[1] = 0xc0 | (5 << 3) | 4;
        c->n = 2;
        c->fmask = alu_f[a];
        c->cnt_imm = -1;
    }
    for (int si = 0; si < 4; si++) {
        int s = sizes[si], w = s > 1;
        op[0] = (uint8_t)(0x84 + w);
        enc("test", s, op, 1, 1, 2, 0, 0, ALL & ~AF);
        enc("test", s, op, 1, 1, -1, 0, 0, ALL & ~AF);
        op[0] = (uint8_t)(0xfe + w);
        enc("inc", s, op, 1, 0, 2, 0, 0, ALL);
        enc("dec", s, op, 1, 1, -1, 0, 0, ALL);
        op[0] = (uint8_t)(0xf6 + w);
        enc("test-imm", s, op, 1, 0, 1, s == 1 ? 1 : s == 2 ? 2 : 4, 0x80000081, ALL & ~AF);
        enc("not", s, op, 1, 2, 10, 0, 0, ALL);
        enc("not", s, op, 1, 2, -1, 0, 0, ALL);
        enc("neg", s, op, 1, 3, 2, 0, 0, ALL);
        enc("neg", s, op, 1, 3, -1, 0, 0, ALL);
        enc("mul", s, op, 1, 4, 1, 0, 0, CF | OF);
        enc("mul", s, op, 1, 4, -1, 0, 0, CF | OF);
        enc("imul1", s, op, 1, 5, 11, 0, 0, CF | OF);
        struct dcase *c = enc("div", s, op, 1, 6, 1, 0, 0, 0);
        c->kind = K_DIV;
        c->dreg = 1;
        c = enc("div", s, op, 1, 6, -1, 0, 0, 0);
        c->kind = K_DIV;
        c->dreg = -1;
        c = enc("idiv", s, op, 1, 7, 11, 0, 0, 0);
        c->kind = K_IDIV;
        c->dreg = 11;
        c = enc("idiv", s, op, 1, 7, -1, 0, 0, 0);
        c->kind = K_IDIV;
        c->dreg = -1;
        /* shifts and rotates */
        static const char *sh[8] = { "rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar" };
        for (int o = 0; o < 8; o++) {
            op[0] = (uint8_t)(0xd2 + w);
            c = enc(sh[o], s, op, 1, o, 2, 0, 0, 0);
            c->kind = K_SHIFT;
            c->op = o;
            c = enc(sh[o], s, op, 1, o, -1, 0, 0, 0);
            c->kind = K_SHIFT;
            c->op = o;
            op[0] = (uint8_t)(0xd0 + w);
            c = enc(sh[o], s, op, 1, o, 10, 0, 0, 0);
            c->kind = K_SHIFT;
            c->op = o;
            c->cnt_imm = 1;
            op[0] = (uint8_t)(0xc0 + w);
            int imm = (int)(3 + o * 2) % (s * 8);
            c = enc(sh[o], s, op, 1, o, 11, 1, (uint64_t)imm, 0);
            c->kind = K_SHIFT;
            c->op = o;
            c->cnt_imm = imm;
        }
        if (!w)
            continue;
        /* two-byte opcodes */
        uint8_t op2[2] = { 0x0f, 0xaf };
        enc("imul2", s, op2, 2, 1, 2, 0, 0, CF | OF);
        enc("imul2", s, op2, 2, 9, -1, 0, 0, CF | OF);
        op[0] = 0x69;
        enc("imul3", s, op, 1, 2, 1, s == 2 ? 2 : 4, 0x9abc, CF | OF);
        op[0] = 0x6b;
        enc("imul3b", s, op, 1, 2, -1, 1, 0x85, CF | OF);
        static const uint8_t bt_ops[4] = { 0xa3, 0xab, 0xb3, 0xbb };
        static const char *bt_n[4] = { "bt", "bts", "btr", "btc" };
        for (int i = 0; i < 4; i++) {
            op2[1] = bt_ops[i];
            enc(bt_n[i], s, op2, 2, 1, 2, 0, 0, CF);
            c = enc(bt_n[i], s, op2, 2, 1, -1, 0, 0, CF);
            c->kind = K_BTMEM;
            uint8_t op3[2] = { 0x0f, 0xba };
            enc(bt_n[i], s, op3, 2, 4 + i, 11, 1, 37, CF);
            enc(bt_n[i], s, op3, 2, 4 + i, -1, 1, 13, CF);
        }
        op2[1] = 0xbc;
        enc("bsf", s, op2, 2, 1, 2, 0, 0, ZF);
        op2[1] = 0xbd;
        enc("bsr", s, op2, 2, 1, -1, 0, 0, ZF);
        for (int i = 0; i < 2; i++) {
            op2[1] = (uint8_t)(0xa4 + 8 * i);    /* shld/shrd imm */
            c = enc(i ? "shrd" : "shld", s, op2, 2, 1, 2, 1, 5, 0);
            c->kind = K_SHXD;
            c->cnt_imm = 5;
            c->size = s;
            op2[1] = (uint8_t)(0xa5 + 8 * i);    /* CL */
            c = enc(i ? "shrd" : "shld", s, op2, 2, 11, -1, 0, 0, 0);
            c->kind = K_SHXD;
            c->size = s;
        }
        op2[1] = 0xb1;
        enc("cmpxchg", s, op2, 2, 1, 2, 0, 0, ALL);
        c = enc("cmpxchg", s, op2, 2, 1, -1, 0, 0, ALL);
        c->kind = K_CMPXCHG;
        op2[1] = 0xc1;
        enc("xadd", s, op2, 2, 1, 2, 0, 0, ALL);
        enc("xadd", s, op2, 2, 1, -1, 0, 0, ALL);
        op[0] = 0x87;
        enc("xchg", s, op, 1, 1, 2, 0, 0, ALL);
        enc("xchg", s, op, 1, 1, -1, 0, 0, ALL);
        for (int cc = 0; cc < 16; cc += 3) {
            op2[1] = (uint8_t)(0x40 + cc);
            enc("cmov", s, op2, 2, 1, 2, 0, 0, ALL);
            enc("cmov", s, op2, 2, 1, -1, 0, 0, ALL);
        }
        op2[1] = 0xb6;
        enc("movzxb", s, op2, 2, 1, 2, 0, 0, ALL);
        op2[1] = 0xbe;
        enc("movsxb", s, op2, 2, 1, -1, 0, 0, ALL);
        if (s > 2) {
            op2[1] = 0xb7;
            enc("movzxw", s, op2, 2, 1, -1, 0, 0, ALL);
            op2[1] = 0xbf;
            enc("movsxw", s, op2, 2, 1, 11, 0, 0, ALL);
            op2[1] = 0xc8;
            raw(s == 8 ? "bswap64" : "bswap32", s == 8 ? "\x48\x0f\xc9" : "\x0f\xc9", s == 8 ? 3 : 2, ALL);
        }
    }
    uint8_t op2[2] = { 0x0f, 0 };
    for (int cc = 0; cc < 16; cc++) {
        op2[1] = (uint8_t)(0x90 + cc);
        enc("setcc", 1, op2, 2, 0, 1, 0, 0, ALL);
        op2[1] = (uint8_t)(0x40 + cc);
        enc("cmovcc", 4, op2, 2, 1, 2, 0, 0, ALL);
        /* jcc over an inc: taken or not, both paths meet */
        char j[4] = { (char)(0x70 + cc), 2, (char)0xff, (char)0xc0 };
        raw("jcc8", j, 4, ALL);
        char j32[8] = { 0x0f, (char)(0x80 + cc), 2, 0, 0, 0, (char)0xff, (char)0xc1 };
        raw("jcc32", j32, 8, ALL);
    }
    struct dcase *c;
    raw("movsxd", "\x48\x63\xca", 3, ALL);
    raw("movsxd-m", "\x4c\x63\x43\x40", 4, ALL);
    raw("lea-sib", "\x48\x8d\x4c\x90\x7f", 5, ALL);
    raw("lea32", "\x8d\x8c\x2a\x78\x56\x34\x12", 7, ALL);
    raw("lea16", "\x66\x8d\x0c\x6a", 4, ALL);
    raw("cbw", "\x66\x98", 2, ALL);
    raw("cwde", "\x98", 1, ALL);
    raw("cdqe", "\x48\x98", 2, ALL);
    raw("cwd", "\x66\x99", 2, ALL);
    raw("cdq", "\x99", 1, ALL);
    raw("cqo", "\x48\x99", 2, ALL);
    raw("lahf", "\x9f", 1, ALL);
    raw("sahf", "\x9e", 1, ALL);
    raw("cmc", "\xf5", 1, ALL);
    raw("clc", "\xf8", 1, ALL);
    raw("stc", "\xf9", 1, ALL);
    raw("mov-r8-imm", "\xb4\x93", 2, ALL);
    raw("mov-r64-imm", "\x49\xb9\x88\x77\x66\x55\x44\x33\x22\x11", 10, ALL);
    raw("mov-m-imm32", "\x48\xc7\x43\x40\x80\x00\x00\x80", 8, ALL);
    raw("mov-m16-imm", "\x66\xc7\x43\x40\x34\x12", 6, ALL);
    raw("mov-r32", "\x89\xc8", 2, ALL);
    raw("mov-r16", "\x66\x89\xc8", 3, ALL);
    raw("mov-bpl", "\x40\x88\xea", 3, ALL);
    raw("mov-load", "\x4c\x8b\x43\x40", 4, ALL);
    raw("mov-store", "\x4c\x89\x4b\x48", 4, ALL);
    raw("mov-store8", "\x88\x4b\x40", 3, ALL);
    raw("mov-store8-ah", "\x88\x63\x41", 3, ALL);
    raw("mov-load8-ah", "\x8a\x63\x40", 3, ALL);
    raw("mov-load8-bpl", "\x40\x8a\x6b\x40", 4, ALL);
    raw("mov-load32", "\x8b\x4b\x40", 3, ALL);
    raw("mov-store32", "\x89\x53\x44", 3, ALL);
    raw("movzx-m8", "\x0f\xb6\x4b\x40", 4, ALL);
    raw("movzx-m16-64", "\x48\x0f\xb7\x4b\x40", 5, ALL);
    raw("xchg-acc", "\x48\x91", 2, ALL);
    raw("push-pop", "\x51\x41\x58", 3, ALL);
    raw("push-imm-pop", "\x68\x80\x00\x00\x80\x59", 6, ALL);
    raw("push-imm8-pop", "\x6a\x80\x41\x59", 4, ALL);
    raw("push-leave", "\x55\x48\x89\xe5\x6a\x07\x48\x8b\x0c\x24\xc9", 11, ALL);
    raw("call-ret", "\xe8\x02\x00\x00\x00\xeb\x04\x48\xff\xc0\xc3", 11, ALL);
    raw("enter-leave", "\xc8\x10\x00\x00\xc9", 5, ALL);
    /* indirect CALL/JMP to a RIP-relative target (RCX and the memory slot
     * hold code addresses, which differ: both are cleared afterwards) */
    raw("call-ind-r", "\x48\x8d\x0d\x04\x00\x00\x00\xff\xd1\xeb\x04\x48\xff\xc0\xc3"
        "\xb9\x00\x00\x00\x00", 20, ALL);
    raw("call-ind-m", "\x48\x8d\x0d\x09\x00\x00\x00\x48\x89\x4b\x40\xff\x53\x40\xeb\x04"
        "\x48\xff\xc0\xc3\x48\xc7\x43\x40\x00\x00\x00\x00\xb9\x00\x00\x00\x00", 33, ALL);
    raw("jmp-ind-r", "\x48\x8d\x0d\x05\x00\x00\x00\xff\xe1\x48\xff\xc0\x48\xff\xc2"
        "\xb9\x00\x00\x00\x00", 20, ALL);
    raw("jmp-ind-m", "\x48\x8d\x0d\x0a\x00\x00\x00\x48\x89\x4b\x40\xff\x63\x40\x48\xff"
        "\xc0\x48\xff\xc2\x48\xc7\x43\x40\x00\x00\x00\x00\xb9\x00\x00\x00\x00", 33, ALL);
    raw("loop", "\xb9\x05\x00\x00\x00\x48\xff\xc0\xe2\xfb", 10, ALL);
    raw("jrcxz", "\xe3\x02\xff\xc0", 4, ALL);
    raw("movsb", "\xa4", 1, ALL)->kind = K_PLAIN;
    raw("movsq", "\x48\xa5", 2, ALL);
    raw("stosd", "\xab", 1, ALL);
    raw("lodsw", "\x66\xad", 2, ALL);
    raw("cmpsb", "\xa6", 1, ALL);
    raw("scasq", "\x48\xaf", 2, ALL);
    raw("rep-movsb", "\xb9\x21\x00\x00\x00\xf3\xa4", 7, ALL);
    raw("rep-movsq", "\xb9\x09\x00\x00\x00\xf3\x48\xa5", 8, ALL);
    raw("rep-stosb", "\xb9\x40\x00\x00\x00\xf3\xaa", 7, ALL);
    raw("rep-stosq", "\xb9\x07\x00\x00\x00\xf3\x48\xab", 8, ALL);
    raw("repe-cmpsb", "\xb9\x10\x00\x00\x00\xf3\xa6", 7, ALL);
    raw("repne-scasb", "\xb9\x30\x00\x00\x00\xf2\xae", 7, ALL);
    raw("std-rep-movsd-cld", "\xfd\xb9\x05\x00\x00\x00\xf3\xa5\xfc", 9, ALL);
    /* RBX is an operand here: address through RSI instead */
    c = raw("cmpxchg16b", "\x48\x0f\xc7\x4e\x40", 5, ZF);
    c->kind = K_CMPXCHG16;
    c = raw("cmpxchg8b", "\x0f\xc7\x4e\x40", 4, ZF);
    c->kind = K_CMPXCHG16;
    raw("lock-add", "\xf0\x48\x01\x4b\x40", 5, ALL);
    raw("lock-xadd", "\xf0\x0f\xc1\x4b\x40", 5, ALL);
    c = raw("lock-cmpxchg", "\xf0\x48\x0f\xb1\x4b\x40", 6, ALL);
    c->kind = K_CMPXCHG;
    c->size = 8;
    c = raw("cmpxchg8-m", "\x0f\xb0\x4b\x40", 4, ALL);
    c->kind = K_CMPXCHG;
    c->size = 1;
    raw("xadd8-m", "\xf0\x0f\xc0\x63\x40", 5, ALL);
    raw("lock-inc", "\xf0\xff\x43\x40", 4, ALL);
    raw("lock-dec8", "\xf0\xfe\x4b\x40", 4, ALL);
    raw("lock-sub-imm8", "\xf0\x48\x83\x6b\x40\x05", 6, ALL);
    raw("lock-and8-imm", "\xf0\x80\x63\x40\x0f", 5, ALL & ~AF);
    raw("lock-or32", "\xf0\x09\x4b\x40", 4, ALL & ~AF);
    raw("lock-xor16", "\x66\xf0\x31\x4b\x40", 5, ALL & ~AF);
    raw("lock-sub8", "\xf0\x28\x63\x40", 4, ALL);
    /* LOCK INC with CF read afterwards (kept from the ADD before) */
    raw("add-lock-inc-adc", "\x48\x01\xd1\xf0\xff\x43\x40\x48\x11\xd0", 10, ALL);
    raw("push-m-pop", "\xff\x73\x40\x59", 4, ALL);
    /* PUSHF after pending records (only the arithmetic flags compared) */
    raw("add-pushf", "\x48\x01\xd1\x9c\x59\x81\xe1\xd5\x08\x00\x00", 11, ALL);
    raw("cmp-pushf", "\x48\x39\xd1\x9c\x58\x25\xd5\x08\x00\x00", 10, ALL);
    raw("inc-pushf", "\xff\xc1\x9c\x41\x58\x41\x81\xe0\xd5\x08\x00\x00", 12, ALL);
    raw("lfence", "\x0f\xae\xe8", 3, ALL);
    raw("mfence", "\x0f\xae\xf0", 3, ALL);
    raw("sfence", "\x0f\xae\xf8", 3, ALL);
    raw("cmp-lfence-jb", "\x48\x39\xd1\x0f\xae\xe8\x72\x02\xff\xc0", 10, ALL);
    /* ROL/ROR by a constant with SZAPC from a pending record kept */
    raw("add-rol16", "\x48\x01\xd1\x66\xc1\xc0\x08", 7, ALL & ~OF);
    raw("sub-ror32-m", "\x48\x29\xd1\xc1\x4b\x40\x07", 7, ALL & ~OF);
    raw("cmp-rol1", "\x48\x39\xd1\x48\xd1\xc2", 6, ALL);
    raw("lock-bts", "\xf0\x48\x0f\xab\x4b\x40", 6, CF)->kind = K_BTMEM;
    raw("xlat", "\xd7", 1, ALL);
    /* INC/DEC after pending lazy flags: CF must come from the earlier op */
    raw("cmp-dec", "\x48\x39\xd1\xff\xc9", 5, ALL);
    raw("add-inc", "\x48\x01\xd1\x48\xff\xc1", 6, ALL);
    raw("sub8-dec", "\x28\xd1\xfe\xc9", 4, ALL);
    raw("and-inc", "\x21\xd1\xff\xc1", 4, ALL);
    raw("adc-dec", "\x48\x11\xd1\xff\xc9", 5, ALL);
    raw("inc-dec", "\xff\xc1\x48\xff\xc9", 5, ALL);
    /* MUL/IMUL's lazily recorded CF read by the next ADC/SBB */
    raw("imul-adc", "\x48\x0f\xaf\xca\x48\x11\xd0", 7, ALL);
    raw("mul-sbb", "\x48\xf7\xe2\x48\x19\xd1", 6, ALL);
    raw("imul8-adc", "\xf6\xea\x48\x11\xd1", 5, ALL);
    /* a shift count of 0 leaves flags but still zero-extends a 32-bit register */
    raw("shl32-imm0", "\xc1\xe1\x00", 3, ALL);
    raw("sar32-imm0", "\xc1\xf9\x00", 3, ALL);
    /* ADC/SBB reading CF straight from a pending ADD/SUB/ADC/SBB record */
    raw("adc-adc", "\x48\x11\xd1\x48\x11\xd0", 6, ALL);
    raw("sbb-sbb", "\x48\x19\xd1\x48\x19\xd0", 6, ALL);
    raw("cmp-adc", "\x48\x39\xd1\x48\x11\xd0", 6, ALL);
    raw("add-sbb", "\x48\x01\xd1\x48\x19\xd0", 6, ALL);
    raw("sub8-adc", "\x28\xd1\x48\x11\xd0", 5, ALL);
    raw("adc16-sbb", "\x66\x11\xd1\x48\x19\xd0", 6, ALL);
    /* B/AE conditions from pending records */
    raw("add-setb", "\x48\x01\xd1\x0f\x92\xc0", 6, ALL);
    raw("adc-setae", "\x48\x11\xd1\x0f\x93\xc0", 6, ALL);
    raw("imul-setb", "\x48\x0f\xaf\xca\x0f\x92\xc0", 7, CF | OF);
    raw("sbb-cmovb", "\x48\x19\xd1\x48\x0f\x42\xc2", 7, ALL);
    raw("sub16-jb", "\x66\x29\xd1\x72\x02\xff\xc0", 7, ALL & ~(OF | SF | ZF | AF | PF));
    /* BT family with only CF live afterwards (a SETB/ADC reader, then
     * flags overwritten) and with everything live (JC at the block end) */
    raw("bt-setb", "\x48\x0f\xa3\xd1\x0f\x92\xc0\x48\x39\xe4", 10, ALL);
    raw("bts-adc", "\x48\x0f\xab\xd1\x48\x11\xd0", 7, ALL);
    raw("btc16-sbb", "\x66\x0f\xbb\xd1\x48\x19\xd0", 7, ALL);
    raw("btr-imm-jc", "\x48\x0f\xba\xf1\x05\x72\x02\xff\xc0\x48\x39\xe4", 12, ALL);
    raw("bts-m-imm-setb", "\x0f\xba\x6b\x40\x1f\x0f\x92\xc0\x48\x39\xe4", 11, ALL);
    raw("bt-bts-jc", "\x48\x0f\xa3\xd1\x48\x0f\xab\xd0\x72\x02\xff\xc1", 12, CF | ZF);
    raw("add-bt-jc", "\x48\x01\xd1\x48\x0f\xa3\xd0\x72\x02\xff\xc1", 11, CF | ZF);
    raw("add-bt-jz", "\x48\x01\xd1\x0f\xa3\xd0\x74\x02\xff\xc0", 10, ALL & ~(CF | OF | SF | AF | PF));
    /* a register compare read by the next instruction: from host flags
     * (register CMOV/SETcc), or from the record (memory forms look up the
     * TLB in between) */
    raw("cmp-cmovl", "\x48\x39\xd1\x48\x0f\x4c\xc2", 7, ALL);
    raw("cmp-cmovb-m", "\x48\x39\xd1\x48\x0f\x42\x43\x40", 8, ALL);
    raw("sub-setg-m", "\x29\xd1\x0f\x9f\x43\x40", 6, ALL);
    raw("test-cmove-inc", "\x85\xd1\x0f\x44\xc2\xff\xc1\x48\x0f\x42\xf2", 11, ALL);
    raw("cmp-pushpop", "\x48\x39\xd1\x51\x41\x58", 6, ALL);

    unsigned a, b, cx, d;
    __cpuid(1, a, b, cx, d);
    if (cx & (1u << 23)) {
        raw("popcnt", "\xf3\x48\x0f\xb8\xca", 5, ALL);
        raw("popcnt16", "\x66\xf3\x0f\xb8\x4b\x40", 6, ALL);
    }
    if (cx & (1u << 22)) {
        raw("movbe-load", "\x48\x0f\x38\xf0\x4b\x40", 6, ALL);
        raw("movbe-store", "\x0f\x38\xf1\x4b\x40", 5, ALL);
    }
    __cpuid(0x80000001, a, b, cx, d);
    if (cx & (1u << 5))
        raw("lzcnt", "\xf3\x48\x0f\xbd\xca", 5, CF | ZF);
    __cpuid_count(7, 0, a, b, cx, d);
    if (b & (1u << 3)) {
        raw("tzcnt", "\xf3\x0f\xbc\xca", 4, CF | ZF);
        /* BMI1, VEX: rax = dest, rcx = vvvv, rdx = r/m ([rbx+0x40] for memory) */
        raw("andn64", "\xc4\xe2\xf0\xf2\xc2", 5, SF | ZF | CF | OF);
        raw("andn32", "\xc4\xe2\x70\xf2\xc2", 5, SF | ZF | CF | OF);
        raw("andn-m", "\xc4\xe2\xf0\xf2\x43\x40", 6, SF | ZF | CF | OF);
        raw("blsr64", "\xc4\xe2\xf8\xf3\xca", 5, SF | ZF | CF | OF);
        raw("blsr32", "\xc4\xe2\x78\xf3\xca", 5, SF | ZF | CF | OF);
        raw("blsmsk64", "\xc4\xe2\xf8\xf3\xd2", 5, SF | ZF | CF | OF);
        raw("blsmsk32", "\xc4\xe2\x78\xf3\xd2", 5, SF | ZF | CF | OF);
        raw("blsi64", "\xc4\xe2\xf8\xf3\xda", 5, SF | ZF | CF | OF);
        raw("blsi32-m", "\xc4\xe2\x78\xf3\x5b\x40", 6, SF | ZF | CF | OF);
        raw("bextr64", "\xc4\xe2\xf0\xf7\xc2", 5, ZF | CF | OF);
        raw("bextr32", "\xc4\xe2\x70\xf7\xc2", 5, ZF | CF | OF);
        raw("bextr-m", "\xc4\xe2\xf0\xf7\x43\x40", 6, ZF | CF | OF);
        raw("bextr-short", "\xb9\x04\x0c\x00\x00\xc4\xe2\xf0\xf7\xc2", 10, ZF | CF | OF);
    }
    if (b & (1u << 8)) {
        /* BMI2 */
        raw("bzhi64", "\xc4\xe2\xf0\xf5\xc2", 5, SF | ZF | CF | OF);
        raw("bzhi32", "\xc4\xe2\x70\xf5\xc2", 5, SF | ZF | CF | OF);
        raw("bzhi-short", "\xb1\x11\xc4\xe2\xf0\xf5\xc2", 7, SF | ZF | CF | OF);
        raw("pdep64", "\xc4\xe2\xf3\xf5\xc2", 5, ALL);
        raw("pdep32", "\xc4\xe2\x73\xf5\xc2", 5, ALL);
        raw("pext64", "\xc4\xe2\xf2\xf5\xc2", 5, ALL);
        raw("pext32-m", "\xc4\xe2\x72\xf5\x43\x40", 6, ALL);
        raw("mulx64", "\xc4\xe2\xf3\xf6\xc2", 5, ALL);
        raw("mulx32", "\xc4\xe2\x73\xf6\xc2", 5, ALL);
        raw("mulx-same", "\xc4\xe2\xfb\xf6\xc2", 5, ALL);
        raw("mulx-m", "\xc4\xe2\xf3\xf6\x43\x40", 6, ALL);
        raw("rorx64", "\xc4\xe3\xfb\xf0\xc2\x0d", 6, ALL);
        raw("rorx32", "\xc4\xe3\x7b\xf0\xc2\x25", 6, ALL);
        raw("rorx-m", "\xc4\xe3\xfb\xf0\x43\x40\x3f", 7, ALL);
        raw("sarx64", "\xc4\xe2\xf2\xf7\xc2", 5, ALL);
        raw("sarx32", "\xc4\xe2\x72\xf7\xc2", 5, ALL);
        raw("shlx64", "\xc4\xe2\xf1\xf7\xc2", 5, ALL);
        raw("shlx32-m", "\xc4\xe2\x71\xf7\x43\x40", 6, ALL);
        raw("shrx64", "\xc4\xe2\xf3\xf7\xc2", 5, ALL);
        raw("shrx32", "\xc4\xe2\x73\xf7\xc2", 5, ALL);
    }
}

/* ---- per-kind constraints ------------------------------------------------- */

static uint64_t smask(int s)
{
    return s == 8 ? ~0ull : (1ull << (8 * s)) - 1;
}

/* Flags a shift defines for this count (rotates leave SF/ZF/PF/AF alone). */
static unsigned shift_fmask(const struct dcase *c, unsigned count)
{
    unsigned bits = 8 * c->size;
    count &= c->size == 8 ? 63 : 31;
    if (count == 0)
        return ALL;
    unsigned m = ALL;
    if (count != 1)
        m &= ~OF;
    if (c->kind == K_SHXD)
        return m & ~AF;
    if (c->op < 4)
        return m;
    m &= ~AF;
    if ((c->op == 4 || c->op == 5 || c->op == 6) && count > bits)
        m &= ~CF;
    return m;
}

static bool prepare(struct cd *h, struct dcase *c, struct cd_state *s, unsigned *fmask)
{
    *fmask = c->fmask;
    switch (c->kind) {
    case K_DIV: case K_IDIV: {
        uint64_t d = c->dreg >= 0 ? s->gpr[c->dreg] : 0;
        if (c->dreg < 0)
            memcpy(&d, s->data + 0x440, 8);
        d &= smask(c->size);
        if (d == 0) {
            d = 7;
            if (c->dreg >= 0)
                s->gpr[c->dreg] = (s->gpr[c->dreg] & ~smask(c->size)) | d;
            else
                memcpy(s->data + 0x440, &d, c->size);
        }
        /* make the quotient fit: high half small (unsigned) or a sign extension */
        if (c->kind == K_DIV) {
            if (c->size == 1)
                s->gpr[0] = (s->gpr[0] & ~0xff00ull) | ((((s->gpr[0] >> 8) & 0xff) % d) << 8);
            else
                s->gpr[2] = (s->gpr[2] & ~smask(c->size)) | ((s->gpr[2] & smask(c->size)) % d);
        } else {
            unsigned sh = 64 - 8 * c->size;
            int64_t sd = (int64_t)(d << sh) >> sh;
            if (sd == -1)
                return false;
            if (c->size == 1) {
                int8_t al = (int8_t)s->gpr[0];
                s->gpr[0] = (s->gpr[0] & ~0xff00ull) | ((uint64_t)(al < 0 ? 0xff : 0) << 8);
            } else {
                int64_t lo = (int64_t)(s->gpr[0] << sh) >> sh;
                s->gpr[2] = (s->gpr[2] & ~smask(c->size)) | (lo < 0 ? smask(c->size) : 0);
            }
        }
        return true;
    }
    case K_SHIFT: case K_SHXD: {
        unsigned count = c->cnt_imm >= 0 ? (unsigned)c->cnt_imm : (unsigned)(s->gpr[1] & 0xff);
        if (c->kind == K_SHXD && c->size == 2 && (count & 31) > 16)
            s->gpr[1] = (s->gpr[1] & ~0xffull) | (count & 15), count &= 15;
        *fmask = shift_fmask(c, count);
        return true;
    }
    case K_CMPXCHG:
        if (cd_rand(h) & 1)     /* make the compare succeed half the time */
            memcpy(s->data + 0x440, &s->gpr[0], c->size);
        return true;
    case K_BTMEM:
        s->gpr[1] = (s->gpr[1] & 0x3ff) - 0x200;   /* bit offset within +-64 bytes */
        return true;
    case K_CMPXCHG16:
        s->gpr[6] = 0x400;
        if (cd_rand(h) & 1) {   /* make the compare succeed half the time */
            memcpy(s->data + 0x440, &s->gpr[0], 8);
            memcpy(s->data + (c->b[0] == 0x48 ? 0x448 : 0x444), &s->gpr[2], c->b[0] == 0x48 ? 8 : 4);
        }
        return true;
    }
    return true;
}

static void test_diff_all(void **state)
{
    static struct cd h;
    static struct cd_state in, hs, es;
    assert_int_equal(cd_init(&h, 0x1234567), 0);
    build_cases();
    int iters = getenv("CPU_DIFF_ITERS") ? atoi(getenv("CPU_DIFF_ITERS")) : 300;
    int fails = 0, runs = 0;
    const unsigned ptrs = 1u << 3 | 1u << 6 | 1u << 7;   /* rbx, rsi, rdi */
    for (int ci = 0; ci < ncases; ci++) {
        struct dcase *c = &cases[ci];
        for (int it = 0; it < iters; it++) {
            for (int r = 0; r < 16; r++)
                in.gpr[r] = cd_rand_val(&h);
            in.gpr[3] = 0x400;                         /* [rbx+0x40] in the buffer */
            in.gpr[6] = 0x100 + (cd_rand(&h) & 0xff);
            in.gpr[7] = 0x800 + (cd_rand(&h) & 0xff);
            in.gpr[4] = 0;
            in.rflags = 2 | (cd_rand(&h) & ALL);
            for (unsigned i = 0; i < CD_DATA_SIZE; i += 8) {
                uint64_t v = cd_rand_val(&h);
                memcpy(in.data + i, &v, 8);
            }
            unsigned fmask;
            if (!prepare(&h, c, &in, &fmask))
                continue;
            if (c->kind == K_CMPXCHG16)
                in.gpr[3] = cd_rand_val(&h);
            hs = in;
            unsigned p = c->kind == K_CMPXCHG16 ? ptrs & ~(1u << 3) : ptrs;
            cd_run_host(&h, c->b, c->n, &hs, p);
            /* interpreted, translated, and translated with the flags dead
             * after the instruction (a trailing CMP RSP,RSP overwrites
             * them), which takes the JIT's no-flags paths */
            bool bad = false;
            int vec = 0;
            const char *bad_mode = "";
            for (int mode = 0; mode < 3 && !bad; mode++) {
                uint8_t code[48];
                size_t n = c->n;
                memcpy(code, c->b, n);
                if (mode == 2) {
                    memcpy(code + n, "\x48\x39\xe4", 3);
                    n += 3;
                }
                x86_cpu_set_jit(h.cpu, mode ? 0 : -1);
                es = in;
                /* translated runs mostly start with the TLB filled (the
                 * inline paths), one in four with it empty (the miss path) */
                vec = cd_run_emu_warm(&h, code, n, &es, p, mode > 0 && it % 4 != 3);
                runs++;
                bad = vec != 0;
                for (int r = 0; r < 16; r++)
                    if (r != 4 && hs.gpr[r] != es.gpr[r])
                        bad = true;
                if (mode < 2 && ((hs.rflags ^ es.rflags) & fmask))
                    bad = true;
                if (memcmp(hs.data, es.data, CD_DATA_SIZE))
                    bad = true;
                if (bad)
                    bad_mode = mode == 0 ? "interpreted" : mode == 1 ? "translated" : "translated, flags dead";
            }
            if (bad && fails++ < 30) {
                printf("# %s, %s (", c->name, bad_mode);
                for (int i = 0; i < c->n; i++)
                    printf("%02x%s", c->b[i], i + 1 < c->n ? " " : ")");
                printf(" vec %d flags in %03llx host %03llx emu %03llx mask %03x\n", vec,
                       (unsigned long long)in.rflags & ALL, (unsigned long long)hs.rflags & ALL,
                       (unsigned long long)es.rflags & ALL, fmask);
                for (int r = 0; r < 16; r++)
                    if (r != 4 && hs.gpr[r] != es.gpr[r])
                        printf("#   r%d in %016llx host %016llx emu %016llx\n", r,
                               (unsigned long long)in.gpr[r], (unsigned long long)hs.gpr[r],
                               (unsigned long long)es.gpr[r]);
                if (memcmp(hs.data, es.data, CD_DATA_SIZE))
                    printf("#   memory differs\n");
                break;
            }
        }
    }
    printf("# %d forms, %d runs, %d failing forms\n", ncases, runs, fails);
    cd_fini(&h);
    assert_int_equal(fails, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diff_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
