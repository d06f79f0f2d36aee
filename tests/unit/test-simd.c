/* Differential tests of the emulated CPU's SSE..SSE4.2, MMX and x87
 * instructions against the host CPU: every listed form, register and memory
 * operands, random and special (NaN, infinity, denormal, zero) inputs, all
 * rounding modes, DAZ/FTZ; compares XMM, MXCSR, x87 state, GPRs, RFLAGS and
 * memory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "simd-harness.h"

enum {
    F_MEM = 1 << 0,      /* also the [rbx] form */
    F_NOREG = 1 << 1,    /* memory form only */
    F_IMM = 1 << 2,      /* imm8 follows */
    F_W = 1 << 3,        /* also with REX.W */
    F_F32 = 1 << 4,      /* float operands */
    F_F64 = 1 << 5,      /* double operands */
    F_RAW = 1 << 6,      /* hex is the whole instruction (with ModRM) */
    F_X87 = 1 << 7,      /* random x87 stack */
    F_NOREX = 1 << 8,    /* no REX.R/B register extension (MMX operands) */
    F_EXT = 1 << 9,      /* ModRM.reg is fixed: ext field */
    F_MMX = 1 << 10,     /* MMX registers hold random values */
    F_STI = 1 << 12,     /* register form: ModRM.rm is ST(i), any i */
    F_STR = 1 << 13,     /* string data: small alphabet with NULs */
};

struct tcase {
    const char *hex;
    unsigned flags;
    uint8_t ext;
};

/* ---- random operands ---- */

static uint32_t rand_f32(struct harness *h)
{
    static const uint32_t special[] = {
        0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000, 0x7fc00000,
        0xffc00000, 0x7fa00001, 0xff800001, 0x00000001, 0x807fffff, 0x00400000, 0x7f7fffff,
        0xff7fffff, 0x00800000, 0x4f000000, 0xcf000000, 0x5f000000, 0x3f000000, 0x3fc00000,
        0x40200000, 0xcf000001, 0x4effffff,
    };
    uint64_t r = h_rand(h);
    switch (r % 8) {
    case 0: case 1: return (uint32_t)(r >> 8);
    case 2: case 3: case 4: return special[(r >> 8) % (sizeof(special) / 4)];
    default: {
        float f = (float)((int64_t)(r >> 16) % 200001 - 100000) / (float)(1 << ((r >> 8) % 16));
        uint32_t u;
        memcpy(&u, &f, 4);
        return u;
    }
    }
}

static uint64_t rand_f64(struct harness *h)
{
    static const uint64_t special[] = {
        0, 0x8000000000000000ull, 0x3ff0000000000000ull, 0xbff0000000000000ull,
        0x7ff0000000000000ull, 0xfff0000000000000ull, 0x7ff8000000000000ull,
        0xfff8000000000000ull, 0x7ff4000000000001ull, 0xfff0000000000001ull, 1,
        0x800fffffffffffffull, 0x0008000000000000ull, 0x7fefffffffffffffull,
        0x0010000000000000ull, 0x41e0000000000000ull, 0xc1e0000000000000ull,
        0x43e0000000000000ull, 0xc3e0000000000000ull, 0x3fe0000000000000ull,
        0x3ff8000000000000ull, 0x4004000000000000ull, 0x47efffffe0000000ull,
        0x36a0000000000000ull, 0x41dfffffffc00000ull,
    };
    uint64_t r = h_rand(h);
    switch (r % 8) {
    case 0: case 1: return h_rand(h);
    case 2: case 3: case 4: return special[(r >> 8) % (sizeof(special) / 8)];
    default: {
        double f = (double)((int64_t)(r >> 16) % 2000001 - 1000000) / (double)(1 << ((r >> 8) % 24));
        uint64_t u;
        memcpy(&u, &f, 8);
        return u;
    }
    }
}

static void rand_vec(struct harness *h, uint8_t *p, unsigned n, unsigned flags)
{
    for (unsigned i = 0; i < n; i += 8) {
        uint64_t v;
        if (flags & F_F32)
            v = rand_f32(h) | (uint64_t)rand_f32(h) << 32;
        else if (flags & F_F64)
            v = rand_f64(h);
        else if (h_rand(h) % 4 == 0)
            v = (h_rand(h) % 2 ? 0 : ~0ull) ^ (1ull << (h_rand(h) % 64));
        else
            v = h_rand(h);
        memcpy(p + i, &v, 8);
    }
}

static void rand_x87(struct harness *h, uint8_t *st)
{
    static const struct { uint64_t m; uint16_t e; } special[] = {
        { 0, 0 }, { 0, 0x8000 }, { 1ull << 63, 0x3fff }, { 1ull << 63, 0xbfff },
        { 1ull << 63, 0x7fff }, { 1ull << 63, 0xffff }, { 3ull << 62, 0x7fff },
        { 3ull << 62, 0xffff }, { (1ull << 63) | 1, 0x7fff }, { 1, 0 }, { 1ull << 62, 0 },
        { ~0ull, 0x7ffe }, { 1ull << 63, 0x0001 }, { 0xc90fdaa22168c235ull, 0x4000 },
        { 1ull << 63, 0x403e }, { 1ull << 63, 0x401e }, { 3ull << 62, 0x3ffe },
    };
    uint64_t r = h_rand(h);
    uint64_t m;
    uint16_t e;
    switch (r % 4) {
    case 0: {
        unsigned k = (r >> 8) % (sizeof(special) / sizeof(special[0]));
        m = special[k].m;
        e = special[k].e;
        break;
    }
    case 1:
        m = h_rand(h) | 1ull << 63;
        e = (uint16_t)(0x3fff + (int)((r >> 8) % 128) - 64) | (uint16_t)((r >> 20) & 0x8000);
        break;
    default: {
        uint64_t d = rand_f64(h);
        long double x;
        double dd;
        memcpy(&dd, &d, 8);
        x = dd;
        memcpy(&m, &x, 8);
        memcpy(&e, (uint8_t *)&x + 8, 2);
        if ((e & 0x7fff) == 0x7fff && (m << 1) && !(m & (1ull << 62)))
            m |= 1ull << 62;       /* keep NaNs quiet: SNaN loads are tested apart */
        break;
    }
    }
    memcpy(st, &m, 8);
    memcpy(st + 8, &e, 2);
}

static void rand_state(struct harness *h, struct hstate *s, unsigned flags)
{
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < 16; i++)
        s->gpr[i] = h_rand(h) % 3 ? h_rand(h) : h_rand(h) % 40 - 20;
    s->rflags = 0x202 | (h_rand(h) & 0x8d5);
    rand_vec(h, s->fx + 160, 256, flags);
    rand_vec(h, s->data, sizeof(s->data), flags);
    if (flags & F_STR) {
        static const char alpha[] = "abcab\0\x80\xff";
        for (int i = 0; i < 256; i++)
            s->fx[160 + i] = alpha[h_rand(h) % 8];
        for (unsigned i = 0; i < sizeof(s->data); i++)
            s->data[i] = alpha[h_rand(h) % 8];
    }
    uint32_t mxcsr = 0x1f80 | (uint32_t)(h_rand(h) % 4) << 13;
    if (h_rand(h) % 4 == 0)
        mxcsr |= 0x40;             /* DAZ */
    if (h_rand(h) % 4 == 0)
        mxcsr |= 0x8000;           /* FTZ */
    memcpy(s->fx + 24, &mxcsr, 4);
    uint32_t mask = 0xffff;
    memcpy(s->fx + 28, &mask, 4);

    uint16_t fcw = 0x037f, fsw = 0;
    uint8_t ftw = 0;
    if (flags & (F_X87 | F_MMX)) {
        static const uint16_t pc[3] = { 0x000, 0x200, 0x300 };
        fcw = 0x007f | pc[h_rand(h) % 3] | (uint16_t)(h_rand(h) % 4) << 10;
        fsw = (uint16_t)((h_rand(h) % 8) << 11) | (uint16_t)(h_rand(h) & 0x4700);
        ftw = (uint8_t)(h_rand(h) % 4 ? 0xff : h_rand(h));
        for (int i = 0; i < 8; i++) {
            if (flags & F_MMX) {
                uint64_t v = h_rand(h);
                memcpy(s->fx + 32 + 16 * i, &v, 8);
                memset(s->fx + 40 + 16 * i, 0xff, 2);
            } else {
                rand_x87(h, s->fx + 32 + 16 * i);
            }
        }
    }
    memcpy(s->fx, &fcw, 2);
    memcpy(s->fx + 2, &fsw, 2);
    s->fx[4] = ftw;
}

/* ---- one instruction ---- */

static unsigned parse_hex(const char *hex, uint8_t *out)
{
    unsigned n = 0;
    while (*hex) {
        while (*hex == ' ')
            hex++;
        if (!*hex)
            break;
        out[n++] = (uint8_t)strtoul(hex, (char **)&hex, 16);
    }
    return n;
}

static unsigned pick_reg(struct harness *h, bool ext)
{
    static const uint8_t ok[] = { 0, 1, 2, 5, 6 };
    unsigned r = ok[h_rand(h) % 5];
    if (ext && h_rand(h) % 3 == 0)
        r |= 8;
    return r;
}

/* Encode: prefixes, REX (W/R/B as asked), opcode bytes, ModRM, imm. */
static unsigned encode(struct harness *h, const struct tcase *c, bool mem, bool w, uint8_t *out)
{
    uint8_t b[16];
    unsigned n = parse_hex(c->hex, b), k = 0, i = 0;
    if (c->flags & F_RAW) {
        memcpy(out, b, n);
        if (mem)
            out[n - 1] = (out[n - 1] & 0x38) | 0x03;    /* [rbx] */
        return n;
    }
    if (mem && h_rand(h) % 4 == 0)
        out[k++] = 0x3e;           /* DS override: no effect in 64-bit mode */
    while (i < n && (b[i] == 0x66 || b[i] == 0xf2 || b[i] == 0xf3))
        out[k++] = b[i++];
    bool ext = !(c->flags & (F_NOREX | F_STI)) && !h->compat;
    unsigned reg = (c->flags & F_EXT) ? c->ext : pick_reg(h, ext);
    unsigned rm = (c->flags & F_STI) ? h_rand(h) % 8 : pick_reg(h, ext);
    uint8_t rex = 0x40 | (w ? 8 : 0) | ((reg & 8) ? 4 : 0) | ((!mem && (rm & 8)) ? 1 : 0);
    if ((rex != 0x40 || h_rand(h) % 8 == 0) && !h->compat)
        out[k++] = rex;
    while (i < n)
        out[k++] = b[i++];
    out[k++] = mem ? (uint8_t)(((reg & 7) << 3) | 3) : (uint8_t)(0xc0 | ((reg & 7) << 3) | (rm & 7));
    if (c->flags & F_IMM) {
        uint64_t r = h_rand(h);
        out[k++] = (uint8_t)(r % 3 ? r >> 8 : (r >> 8) % 20);
    }
    return k;
}

static int report_diff(const uint8_t *insn, unsigned n, const char *what, const void *a,
                       const void *b, unsigned size)
{
    char buf[256];
    int p = 0;
    for (unsigned i = 0; i < n; i++)
        p += snprintf(buf + p, sizeof(buf) - p, "%02x ", insn[i]);
    p += snprintf(buf + p, sizeof(buf) - p, ": %s host ", what);
    for (unsigned i = size; i-- > 0;)
        p += snprintf(buf + p, sizeof(buf) - p, "%02x", ((const uint8_t *)a)[i]);
    p += snprintf(buf + p, sizeof(buf) - p, " emu ");
    for (unsigned i = size; i-- > 0;)
        p += snprintf(buf + p, sizeof(buf) - p, "%02x", ((const uint8_t *)b)[i]);
    print_message("# %s\n", buf);
    return 1;
}

/* Compare the two final states; returns the number of differences. */
static int compare(const uint8_t *insn, unsigned n, const struct hstate *hs,
                   const struct hstate *es, unsigned flags)
{
    int bad = 0;
    for (int i = 0; i < 16; i++)
        if (i != 3 && i != 4 && i != 7 && hs->gpr[i] != es->gpr[i]) {
            char w[16];
            snprintf(w, sizeof(w), "gpr%d", i);
            bad += report_diff(insn, n, w, &hs->gpr[i], &es->gpr[i], 8);
        }
    uint64_t fm = 0x8d5;
    if ((hs->rflags & fm) != (es->rflags & fm))
        bad += report_diff(insn, n, "rflags", &hs->rflags, &es->rflags, 8);
    for (int i = 0; i < 16; i++)
        if (memcmp(hs->fx + 160 + 16 * i, es->fx + 160 + 16 * i, 16)) {
            char w[16];
            snprintf(w, sizeof(w), "xmm%d", i);
            bad += report_diff(insn, n, w, hs->fx + 160 + 16 * i, es->fx + 160 + 16 * i, 16);
        }
    if (memcmp(hs->fx + 24, es->fx + 24, 4))
        bad += report_diff(insn, n, "mxcsr", hs->fx + 24, es->fx + 24, 4);
    uint16_t hsw, esw;      /* all of FSW, "undefined" condition codes too */
    memcpy(&hsw, hs->fx + 2, 2);
    memcpy(&esw, es->fx + 2, 2);
    if (memcmp(hs->fx, es->fx, 2))
        bad += report_diff(insn, n, "fcw", hs->fx, es->fx, 2);
    if (hsw != esw)
        bad += report_diff(insn, n, "fsw", &hsw, &esw, 2);
    if (hs->fx[4] != es->fx[4])
        bad += report_diff(insn, n, "ftw", hs->fx + 4, es->fx + 4, 1);
    for (int i = 0; i < 8; i++) {
        unsigned phys = ((hsw >> 11) + i) & 7;
        if (!(hs->fx[4] & (1u << phys)))
            continue;              /* empty registers' contents do not matter */
        if (memcmp(hs->fx + 32 + 16 * i, es->fx + 32 + 16 * i, 10)) {
            char w[16];
            snprintf(w, sizeof(w), "st%d", i);
            bad += report_diff(insn, n, w, hs->fx + 32 + 16 * i, es->fx + 32 + 16 * i, 10);
        }
    }
    for (unsigned i = 0; i < sizeof(hs->data); i += 16)
        if (memcmp(hs->data + i, es->data + i, 16)) {
            char w[16];
            snprintf(w, sizeof(w), "mem+%u", i);
            bad += report_diff(insn, n, w, hs->data + i, es->data + i, 16);
        }
    return bad;
}

static struct hstate hs, es, init;

/* The emulator borrows the host's MXCSR and x87 control word: both must
 * be as they were afterwards (MXCSR in the high half, FCW in the low). */
static uint32_t host_fp_modes(void)
{
    uint32_t csr;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(csr), "=m"(cw));
    return csr << 16 | cw;
}

static void dump_initial(const struct hstate *s)
{
    uint16_t fcw, fsw;
    uint32_t mx;
    memcpy(&fcw, s->fx, 2);
    memcpy(&fsw, s->fx + 2, 2);
    memcpy(&mx, s->fx + 24, 4);
    print_message("#   before: fcw %04x fsw %04x ftw %02x mxcsr %08x\n", fcw, fsw, s->fx[4], mx);
    for (int i = 0; i < 8; i++) {
        uint64_t m;
        uint16_t e;
        memcpy(&m, s->fx + 32 + 16 * i, 8);
        memcpy(&e, s->fx + 40 + 16 * i, 2);
        print_message("#   st%d %04x %016llx\n", i, e, (unsigned long long)m);
    }
}

/* Runs every case `iters` times per form; returns the number of failures. */
static int run_cases(struct harness *h, const struct tcase *cases, size_t ncases, int iters)
{
    int fails = 0;
    for (size_t c = 0; c < ncases; c++) {
        const struct tcase *t = &cases[c];
        for (int form = 0; form < 4; form++) {
            bool mem = form & 1, w = form & 2;
            if (mem && !(t->flags & (F_MEM | F_NOREG)))
                continue;
            if (!mem && (t->flags & F_NOREG))
                continue;
            if (w && (!(t->flags & F_W) || h->compat))
                continue;
            for (int it = 0; it < iters && fails < 20; it++) {
                uint8_t insn[16];
                unsigned n = encode(h, t, mem, w, insn);
                rand_state(h, &hs, t->flags);
                es = hs;
                init = hs;
                h_run_host(h, insn, n, &hs);
                uint32_t csr = host_fp_modes();
                int vec = h_run_emu(h, insn, n, &es, 0, 0);
                if (host_fp_modes() != csr) {
                    uint32_t now = host_fp_modes();
                    fails += report_diff(insn, n, "host MXCSR:FCW left changed", &csr, &now, 4);
                    break;
                }
                if (vec) {
                    uint32_t none = 0, v = (uint32_t)vec;
                    fails += report_diff(insn, n, "exception vector", &none, &v, 4);
                    break;
                }
                int d = compare(insn, n, &hs, &es, t->flags);
                fails += d;
                if (d) {
                    if (getenv("SIMD_VERBOSE"))
                        dump_initial(&init);
                    break;
                }
            }
        }
    }
    return fails;
}

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))
#define ITERS 100

static const struct tcase sse_int_cases[] = {
    { "66 0f 60", F_MEM }, { "66 0f 61", F_MEM }, { "66 0f 62", F_MEM }, { "66 0f 63", F_MEM },
    { "66 0f 64", F_MEM }, { "66 0f 65", F_MEM }, { "66 0f 66", F_MEM }, { "66 0f 67", F_MEM },
    { "66 0f 68", F_MEM }, { "66 0f 69", F_MEM }, { "66 0f 6a", F_MEM }, { "66 0f 6b", F_MEM },
    { "66 0f 6c", F_MEM }, { "66 0f 6d", F_MEM }, { "66 0f 74", F_MEM }, { "66 0f 75", F_MEM },
    { "66 0f 76", F_MEM }, { "66 0f d1", F_MEM }, { "66 0f d2", F_MEM }, { "66 0f d3", F_MEM },
    { "66 0f d4", F_MEM }, { "66 0f d5", F_MEM }, { "66 0f d8", F_MEM }, { "66 0f d9", F_MEM },
    { "66 0f da", F_MEM }, { "66 0f db", F_MEM }, { "66 0f dc", F_MEM }, { "66 0f dd", F_MEM },
    { "66 0f de", F_MEM }, { "66 0f df", F_MEM }, { "66 0f e0", F_MEM }, { "66 0f e1", F_MEM },
    { "66 0f e2", F_MEM }, { "66 0f e3", F_MEM }, { "66 0f e4", F_MEM }, { "66 0f e5", F_MEM },
    { "66 0f e8", F_MEM }, { "66 0f e9", F_MEM }, { "66 0f ea", F_MEM }, { "66 0f eb", F_MEM },
    { "66 0f ec", F_MEM }, { "66 0f ed", F_MEM }, { "66 0f ee", F_MEM }, { "66 0f ef", F_MEM },
    { "66 0f f1", F_MEM }, { "66 0f f2", F_MEM }, { "66 0f f3", F_MEM }, { "66 0f f4", F_MEM },
    { "66 0f f5", F_MEM }, { "66 0f f6", F_MEM }, { "66 0f f8", F_MEM }, { "66 0f f9", F_MEM },
    { "66 0f fa", F_MEM }, { "66 0f fb", F_MEM }, { "66 0f fc", F_MEM }, { "66 0f fd", F_MEM },
    { "66 0f fe", F_MEM }, { "0f 14", F_MEM }, { "0f 15", F_MEM }, { "66 0f 14", F_MEM },
    { "66 0f 15", F_MEM }, { "0f 54", F_MEM }, { "0f 55", F_MEM }, { "0f 56", F_MEM },
    { "0f 57", F_MEM }, { "66 0f 54", F_MEM }, { "66 0f 55", F_MEM }, { "66 0f 56", F_MEM },
    { "66 0f 57", F_MEM },
    { "66 0f 71", F_IMM | F_EXT, 2 }, { "66 0f 71", F_IMM | F_EXT, 4 },
    { "66 0f 71", F_IMM | F_EXT, 6 }, { "66 0f 72", F_IMM | F_EXT, 2 },
    { "66 0f 72", F_IMM | F_EXT, 4 }, { "66 0f 72", F_IMM | F_EXT, 6 },
    { "66 0f 73", F_IMM | F_EXT, 2 }, { "66 0f 73", F_IMM | F_EXT, 3 },
    { "66 0f 73", F_IMM | F_EXT, 6 }, { "66 0f 73", F_IMM | F_EXT, 7 },
    { "66 0f 70", F_MEM | F_IMM }, { "f3 0f 70", F_MEM | F_IMM }, { "f2 0f 70", F_MEM | F_IMM },
    { "0f c6", F_MEM | F_IMM }, { "66 0f c6", F_MEM | F_IMM },
    { "66 0f c4", F_MEM | F_IMM }, { "66 0f c5", F_IMM }, { "66 0f d7", 0 },
    { "0f 50", F_F32 }, { "66 0f 50", F_F64 },
};

static const struct tcase sse_move_cases[] = {
    { "0f 10", F_MEM }, { "66 0f 10", F_MEM }, { "f3 0f 10", F_MEM }, { "f2 0f 10", F_MEM },
    { "0f 11", F_MEM }, { "66 0f 11", F_MEM }, { "f3 0f 11", F_MEM }, { "f2 0f 11", F_MEM },
    { "0f 12", F_MEM }, { "66 0f 12", F_NOREG }, { "0f 13", F_NOREG }, { "66 0f 13", F_NOREG },
    { "0f 16", F_MEM }, { "66 0f 16", F_NOREG }, { "0f 17", F_NOREG }, { "66 0f 17", F_NOREG },
    { "f2 0f 12", F_MEM }, { "f3 0f 12", F_MEM }, { "f3 0f 16", F_MEM },
    { "0f 28", F_MEM }, { "66 0f 28", F_MEM }, { "0f 29", F_MEM }, { "66 0f 29", F_MEM },
    { "0f 2b", F_NOREG }, { "66 0f 2b", F_NOREG }, { "66 0f e7", F_NOREG },
    { "66 0f 6e", F_MEM | F_W }, { "66 0f 7e", F_MEM | F_W }, { "f3 0f 7e", F_MEM },
    { "66 0f 6f", F_MEM }, { "f3 0f 6f", F_MEM }, { "66 0f 7f", F_MEM }, { "f3 0f 7f", F_MEM },
    { "66 0f d6", F_MEM }, { "f2 0f f0", F_NOREG }, { "0f c3", F_NOREG | F_W },
    { "66 0f 38 2a", F_NOREG },
};

static const struct tcase sse_fp_cases[] = {
#define FP4(op) { "0f " op, F_MEM | F_F32 }, { "66 0f " op, F_MEM | F_F64 }, \
                { "f3 0f " op, F_MEM | F_F32 }, { "f2 0f " op, F_MEM | F_F64 }
    FP4("51"), FP4("58"), FP4("59"), FP4("5c"), FP4("5d"), FP4("5e"), FP4("5f"),
    { "0f c2", F_MEM | F_F32 | F_IMM }, { "66 0f c2", F_MEM | F_F64 | F_IMM },
    { "f3 0f c2", F_MEM | F_F32 | F_IMM }, { "f2 0f c2", F_MEM | F_F64 | F_IMM },
    { "0f 52", F_MEM | F_F32 }, { "f3 0f 52", F_MEM | F_F32 },
    { "0f 53", F_MEM | F_F32 }, { "f3 0f 53", F_MEM | F_F32 },
    { "0f 2e", F_MEM | F_F32 }, { "0f 2f", F_MEM | F_F32 },
    { "66 0f 2e", F_MEM | F_F64 }, { "66 0f 2f", F_MEM | F_F64 },
    { "f3 0f 2a", F_MEM | F_W }, { "f2 0f 2a", F_MEM | F_W },
    { "f3 0f 2c", F_MEM | F_W | F_F32 }, { "f3 0f 2d", F_MEM | F_W | F_F32 },
    { "f2 0f 2c", F_MEM | F_W | F_F64 }, { "f2 0f 2d", F_MEM | F_W | F_F64 },
    { "0f 5a", F_MEM | F_F32 }, { "66 0f 5a", F_MEM | F_F64 },
    { "f3 0f 5a", F_MEM | F_F32 }, { "f2 0f 5a", F_MEM | F_F64 },
    { "0f 5b", F_MEM }, { "66 0f 5b", F_MEM | F_F32 }, { "f3 0f 5b", F_MEM | F_F32 },
    { "f3 0f e6", F_MEM }, { "66 0f e6", F_MEM | F_F64 }, { "f2 0f e6", F_MEM | F_F64 },
    /* SSE3 */
    { "f2 0f 7c", F_MEM | F_F32 }, { "f2 0f 7d", F_MEM | F_F32 }, { "66 0f 7c", F_MEM | F_F64 },
    { "66 0f 7d", F_MEM | F_F64 }, { "66 0f d0", F_MEM | F_F64 }, { "f2 0f d0", F_MEM | F_F32 },
    /* SSE4.1 */
    { "66 0f 3a 08", F_MEM | F_F32 | F_IMM }, { "66 0f 3a 09", F_MEM | F_F64 | F_IMM },
    { "66 0f 3a 0a", F_MEM | F_F32 | F_IMM }, { "66 0f 3a 0b", F_MEM | F_F64 | F_IMM },
    { "66 0f 3a 40", F_MEM | F_F32 | F_IMM }, { "66 0f 3a 41", F_MEM | F_F64 | F_IMM },
};

static const struct tcase ssse3_sse4_cases[] = {
#define S38(op) { "66 0f 38 " op, F_MEM }, { "0f 38 " op, F_MEM | F_NOREX | F_MMX }
    S38("00"), S38("01"), S38("02"), S38("03"), S38("04"), S38("05"), S38("06"), S38("07"),
    S38("08"), S38("09"), S38("0a"), S38("0b"), S38("1c"), S38("1d"), S38("1e"),
    { "66 0f 3a 0f", F_MEM | F_IMM }, { "0f 3a 0f", F_MEM | F_IMM | F_NOREX | F_MMX },
    { "66 0f 38 10", F_MEM }, { "66 0f 38 14", F_MEM }, { "66 0f 38 15", F_MEM },
    { "66 0f 38 17", F_MEM }, { "66 0f 38 20", F_MEM }, { "66 0f 38 21", F_MEM },
    { "66 0f 38 22", F_MEM }, { "66 0f 38 23", F_MEM }, { "66 0f 38 24", F_MEM },
    { "66 0f 38 25", F_MEM }, { "66 0f 38 30", F_MEM }, { "66 0f 38 31", F_MEM },
    { "66 0f 38 32", F_MEM }, { "66 0f 38 33", F_MEM }, { "66 0f 38 34", F_MEM },
    { "66 0f 38 35", F_MEM }, { "66 0f 38 28", F_MEM }, { "66 0f 38 29", F_MEM },
    { "66 0f 38 2b", F_MEM }, { "66 0f 38 37", F_MEM }, { "66 0f 38 38", F_MEM },
    { "66 0f 38 39", F_MEM }, { "66 0f 38 3a", F_MEM }, { "66 0f 38 3b", F_MEM },
    { "66 0f 38 3c", F_MEM }, { "66 0f 38 3d", F_MEM }, { "66 0f 38 3e", F_MEM },
    { "66 0f 38 3f", F_MEM }, { "66 0f 38 40", F_MEM }, { "66 0f 38 41", F_MEM },
    { "66 0f 3a 0c", F_MEM | F_IMM }, { "66 0f 3a 0d", F_MEM | F_IMM },
    { "66 0f 3a 0e", F_MEM | F_IMM }, { "66 0f 3a 14", F_MEM | F_IMM },
    { "66 0f 3a 15", F_MEM | F_IMM }, { "66 0f 3a 16", F_MEM | F_IMM | F_W },
    { "66 0f 3a 17", F_MEM | F_IMM }, { "66 0f 3a 20", F_MEM | F_IMM },
    { "66 0f 3a 21", F_MEM | F_IMM }, { "66 0f 3a 22", F_MEM | F_IMM | F_W },
    { "66 0f 3a 42", F_MEM | F_IMM }, { "66 0f 3a 44", F_MEM | F_IMM },
    { "66 0f 3a 60", F_MEM | F_IMM | F_W }, { "66 0f 3a 61", F_MEM | F_IMM | F_W },
    { "66 0f 3a 62", F_MEM | F_IMM }, { "66 0f 3a 63", F_MEM | F_IMM },
    { "66 0f 3a 60", F_MEM | F_IMM | F_W | F_STR }, { "66 0f 3a 61", F_MEM | F_IMM | F_W | F_STR },
    { "66 0f 3a 62", F_MEM | F_IMM | F_STR }, { "66 0f 3a 63", F_MEM | F_IMM | F_STR },
    { "f2 0f 38 f0", F_MEM | F_W }, { "f2 0f 38 f1", F_MEM | F_W },
    { "66 f2 0f 38 f1", F_MEM },
    { "66 0f 38 db", F_MEM }, { "66 0f 38 dc", F_MEM }, { "66 0f 38 dd", F_MEM },
    { "66 0f 38 de", F_MEM }, { "66 0f 38 df", F_MEM }, { "66 0f 3a df", F_MEM | F_IMM },
};

static const struct tcase mmx_cases[] = {
#define MM(op) { "0f " op, F_MEM | F_NOREX | F_MMX }
    MM("60"), MM("61"), MM("62"), MM("63"), MM("64"), MM("65"), MM("66"), MM("67"),
    MM("68"), MM("69"), MM("6a"), MM("6b"), MM("74"), MM("75"), MM("76"), MM("d1"),
    MM("d2"), MM("d3"), MM("d4"), MM("d5"), MM("d8"), MM("d9"), MM("da"), MM("db"),
    MM("dc"), MM("dd"), MM("de"), MM("df"), MM("e0"), MM("e1"), MM("e2"), MM("e3"),
    MM("e4"), MM("e5"), MM("e8"), MM("e9"), MM("ea"), MM("eb"), MM("ec"), MM("ed"),
    MM("ee"), MM("ef"), MM("f1"), MM("f2"), MM("f3"), MM("f4"), MM("f5"), MM("f6"),
    MM("f8"), MM("f9"), MM("fa"), MM("fb"), MM("fc"), MM("fd"), MM("fe"), MM("6f"),
    MM("7f"),
    { "0f 71", F_IMM | F_EXT | F_NOREX | F_MMX, 2 }, { "0f 71", F_IMM | F_EXT | F_NOREX | F_MMX, 4 },
    { "0f 71", F_IMM | F_EXT | F_NOREX | F_MMX, 6 }, { "0f 72", F_IMM | F_EXT | F_NOREX | F_MMX, 2 },
    { "0f 72", F_IMM | F_EXT | F_NOREX | F_MMX, 4 }, { "0f 72", F_IMM | F_EXT | F_NOREX | F_MMX, 6 },
    { "0f 73", F_IMM | F_EXT | F_NOREX | F_MMX, 2 }, { "0f 73", F_IMM | F_EXT | F_NOREX | F_MMX, 6 },
    { "0f 6e", F_MEM | F_W | F_NOREX | F_MMX }, { "0f 7e", F_MEM | F_W | F_NOREX | F_MMX },
    { "0f 70", F_MEM | F_IMM | F_NOREX | F_MMX }, { "0f c4", F_MEM | F_IMM | F_NOREX | F_MMX },
    { "0f c5", F_IMM | F_NOREX | F_MMX }, { "0f d7", F_NOREX | F_MMX },
    { "0f e7", F_NOREG | F_NOREX | F_MMX }, { "0f 77", F_RAW | F_MMX },
    { "f3 0f d6", F_NOREX | F_MMX }, { "f2 0f d6", F_NOREX | F_MMX },
    { "0f 2a", F_MEM | F_NOREX | F_MMX }, { "66 0f 2a", F_MEM | F_NOREX | F_MMX },
    { "0f 2c", F_MEM | F_NOREX | F_MMX | F_F32 }, { "0f 2d", F_MEM | F_NOREX | F_MMX | F_F32 },
    { "66 0f 2c", F_MEM | F_NOREX | F_MMX | F_F64 }, { "66 0f 2d", F_MEM | F_NOREX | F_MMX | F_F64 },
};

#define X8(op, fl) { op, (fl) | F_EXT, 0 }, { op, (fl) | F_EXT, 1 }, { op, (fl) | F_EXT, 2 }, \
    { op, (fl) | F_EXT, 3 }, { op, (fl) | F_EXT, 4 }, { op, (fl) | F_EXT, 5 }, \
    { op, (fl) | F_EXT, 6 }, { op, (fl) | F_EXT, 7 }
static const struct tcase x87_cases[] = {
    X8("d8", F_X87 | F_STI | F_MEM | F_F32),
    X8("dc", F_X87 | F_STI | F_MEM | F_F64),
    X8("da", F_X87 | F_NOREG), X8("de", F_X87 | F_NOREG),
    { "de", F_X87 | F_STI | F_EXT, 0 }, { "de", F_X87 | F_STI | F_EXT, 1 },
    { "de", F_X87 | F_STI | F_EXT, 4 }, { "de", F_X87 | F_STI | F_EXT, 5 },
    { "de", F_X87 | F_STI | F_EXT, 6 }, { "de", F_X87 | F_STI | F_EXT, 7 },
    { "de d9", F_X87 | F_RAW }, { "da e9", F_X87 | F_RAW },
    { "da", F_X87 | F_STI | F_EXT, 0 }, { "da", F_X87 | F_STI | F_EXT, 1 },
    { "da", F_X87 | F_STI | F_EXT, 2 }, { "da", F_X87 | F_STI | F_EXT, 3 },
    { "db", F_X87 | F_STI | F_EXT, 0 }, { "db", F_X87 | F_STI | F_EXT, 1 },
    { "db", F_X87 | F_STI | F_EXT, 2 }, { "db", F_X87 | F_STI | F_EXT, 3 },
    { "db", F_X87 | F_STI | F_EXT, 5 }, { "db", F_X87 | F_STI | F_EXT, 6 },
    { "df", F_X87 | F_STI | F_EXT, 5 }, { "df", F_X87 | F_STI | F_EXT, 6 },
    { "db", F_X87 | F_NOREG | F_EXT, 0 }, { "db", F_X87 | F_NOREG | F_EXT, 1 },
    { "db", F_X87 | F_NOREG | F_EXT, 2 }, { "db", F_X87 | F_NOREG | F_EXT, 3 },
    { "db", F_X87 | F_NOREG | F_EXT, 5 }, { "db", F_X87 | F_NOREG | F_EXT, 7 },
    { "db e2", F_X87 | F_RAW }, { "db e3", F_X87 | F_RAW },
    { "dd", F_X87 | F_NOREG | F_EXT | F_F64, 0 }, { "dd", F_X87 | F_NOREG | F_EXT, 1 },
    { "dd", F_X87 | F_NOREG | F_EXT, 2 }, { "dd", F_X87 | F_NOREG | F_EXT, 3 },
    { "dd", F_X87 | F_NOREG | F_EXT, 7 },
    { "dd", F_X87 | F_STI | F_EXT, 0 }, { "dd", F_X87 | F_STI | F_EXT, 2 },
    { "dd", F_X87 | F_STI | F_EXT, 3 }, { "dd", F_X87 | F_STI | F_EXT, 4 },
    { "dd", F_X87 | F_STI | F_EXT, 5 },
    X8("df", F_X87 | F_NOREG), { "df e0", F_X87 | F_RAW }, { "df", F_X87 | F_STI | F_EXT, 0 },
    { "d9", F_X87 | F_NOREG | F_EXT | F_F32, 0 }, { "d9", F_X87 | F_NOREG | F_EXT, 2 },
    { "d9", F_X87 | F_NOREG | F_EXT, 3 }, { "d9", F_X87 | F_NOREG | F_EXT, 5 },
    { "d9", F_X87 | F_NOREG | F_EXT, 7 },
    { "d9", F_X87 | F_STI | F_EXT, 0 }, { "d9", F_X87 | F_STI | F_EXT, 1 },
    { "d9 d0", F_X87 | F_RAW }, { "d9 e0", F_X87 | F_RAW }, { "d9 e1", F_X87 | F_RAW },
    { "d9 e4", F_X87 | F_RAW }, { "d9 e5", F_X87 | F_RAW }, { "d9 e8", F_X87 | F_RAW },
    { "d9 e9", F_X87 | F_RAW }, { "d9 ea", F_X87 | F_RAW }, { "d9 eb", F_X87 | F_RAW },
    { "d9 ec", F_X87 | F_RAW }, { "d9 ed", F_X87 | F_RAW }, { "d9 ee", F_X87 | F_RAW },
    { "d9 f0", F_X87 | F_RAW }, { "d9 f1", F_X87 | F_RAW }, { "d9 f2", F_X87 | F_RAW },
    { "d9 f3", F_X87 | F_RAW }, { "d9 f4", F_X87 | F_RAW }, { "d9 f5", F_X87 | F_RAW },
    { "d9 f6", F_X87 | F_RAW }, { "d9 f7", F_X87 | F_RAW }, { "d9 f8", F_X87 | F_RAW },
    { "d9 f9", F_X87 | F_RAW }, { "d9 fa", F_X87 | F_RAW }, { "d9 fb", F_X87 | F_RAW },
    { "d9 fc", F_X87 | F_RAW }, { "d9 fd", F_X87 | F_RAW }, { "d9 fe", F_X87 | F_RAW },
    { "d9 ff", F_X87 | F_RAW }, { "9b", F_X87 | F_RAW },
};

static void test_x87(void **state)
{
    struct harness *h = *state;
    assert_int_equal(run_cases(h, x87_cases, NCASES(x87_cases), ITERS), 0);
}

static void test_sse_int(void **state)
{
    struct harness *h = *state;
    assert_int_equal(run_cases(h, sse_int_cases, NCASES(sse_int_cases), ITERS), 0);
}

static void test_sse_moves(void **state)
{
    struct harness *h = *state;
    assert_int_equal(run_cases(h, sse_move_cases, NCASES(sse_move_cases), ITERS), 0);
}

static void test_sse_fp(void **state)
{
    struct harness *h = *state;
    assert_int_equal(run_cases(h, sse_fp_cases, NCASES(sse_fp_cases), 4 * ITERS), 0);
}

static void test_ssse3_sse4(void **state)
{
    struct harness *h = *state;
    assert_int_equal(run_cases(h, ssse3_sse4_cases, NCASES(ssse3_sse4_cases), ITERS), 0);
}

static void test_mmx(void **state)
{
    struct harness *h = *state;
    assert_int_equal(run_cases(h, mmx_cases, NCASES(mmx_cases), ITERS), 0);
}

/* ---- exceptions (emulator only: the host would take the signal) ---- */

static int emu_one(struct harness *h, const char *hex, struct hstate *s, uint64_t cr0_extra,
                   uint64_t cr4_clear)
{
    uint8_t insn[16];
    unsigned n = parse_hex(hex, insn);
    return h_run_emu(h, insn, n, s, cr0_extra, cr4_clear);
}

static void set_mxcsr(struct hstate *s, uint32_t v) { memcpy(s->fx + 24, &v, 4); }
static uint32_t get_mxcsr(const struct hstate *s) { uint32_t v; memcpy(&v, s->fx + 24, 4); return v; }

static void test_exceptions(void **state)
{
    struct harness *h = *state;
    static const uint32_t snan = 0x7fa00000;

    /* unmasked invalid: #XM, destination untouched, flag recorded */
    static const uint32_t one = 0x3f800000, big = 0x7f000000;
    rand_state(h, &es, 0);
    set_mxcsr(&es, 0x1f80 & ~0x80);
    for (int i = 0; i < 8; i++)
        memcpy(es.fx + 160 + 4 * i, &one, 4);    /* xmm0 = xmm1 = 1.0 */
    memcpy(es.fx + 160 + 16, &snan, 4);          /* xmm1[0] = SNaN */
    memcpy(es.fx + 160 + 20, &big, 4);           /* xmm1[1] + 1.0 is inexact */
    init = es;
    assert_int_equal(emu_one(h, "0f 58 c1", &es, 0, 0), 19);
    assert_memory_equal(es.fx + 160, init.fx + 160, 16);
    assert_int_equal(get_mxcsr(&es) & 0x3f, 1);
    /* ... #UD without CR4.OSXMMEXCPT; masked: no exception */
    es = init;
    assert_int_equal(emu_one(h, "0f 58 c1", &es, 0, 0x400), 6);
    es = init;
    set_mxcsr(&es, 0x1f80);
    assert_int_equal(emu_one(h, "0f 58 c1", &es, 0, 0), 0);
    assert_int_equal(get_mxcsr(&es) & 0x3f, 0x21);
    /* unmasked inexact only (post-computation): all flags recorded */
    es = init;
    set_mxcsr(&es, 0x1f80 & ~0x1000);
    assert_int_equal(emu_one(h, "0f 58 c1", &es, 0, 0), 19);
    assert_int_equal(get_mxcsr(&es) & 0x3f, 0x21);
    assert_memory_equal(es.fx + 160, init.fx + 160, 16);

    /* CR0.TS: #NM for SSE, x87, MMX; CR4.OSFXSR=0 or CR0.EM: #UD for SSE */
    es = init;
    assert_int_equal(emu_one(h, "0f 57 c1", &es, 8, 0), 7);
    es = init;
    assert_int_equal(emu_one(h, "d9 e8", &es, 8, 0), 7);
    es = init;
    assert_int_equal(emu_one(h, "0f fc c1", &es, 8, 0), 7);
    es = init;
    assert_int_equal(emu_one(h, "9b", &es, 8, 0), 7);    /* FWAIT: TS with MP */
    es = init;
    assert_int_equal(emu_one(h, "0f 57 c1", &es, 0, 0x200), 6);
    es = init;
    assert_int_equal(emu_one(h, "0f 57 c1", &es, 4, 0), 6);
    es = init;
    assert_int_equal(emu_one(h, "0f fc c1", &es, 4, 0), 6);     /* MMX with CR0.EM: #UD */
    es = init;
    assert_int_equal(emu_one(h, "d9 e8", &es, 4, 0), 7);        /* x87 with CR0.EM: #NM */
    es = init;
    assert_int_equal(emu_one(h, "0f ae 03", &es, 8, 0), 7);   /* FXSAVE */
    es = init;
    assert_int_equal(emu_one(h, "0f ae 23", &es, 0, 0x40000), 6);   /* XSAVE w/o OSXSAVE */

    /* alignment: MOVAPS/MOVDQA/ADDPS m128 need 16 bytes, MOVUPS/ADDSS not */
    es = init;
    set_mxcsr(&es, 0x1f80);
    assert_int_equal(emu_one(h, "0f 28 43 08", &es, 0, 0), 13);
    assert_int_equal(emu_one(h, "66 0f 6f 43 08", &es, 0, 0), 13);
    assert_int_equal(emu_one(h, "0f 58 43 08", &es, 0, 0), 13);
    assert_int_equal(emu_one(h, "0f 10 43 08", &es, 0, 0), 0);
    assert_int_equal(emu_one(h, "f3 0f 58 43 04", &es, 0, 0), 0);
    assert_int_equal(emu_one(h, "0f ae 43 08", &es, 0, 0), 13);    /* FXSAVE */
    uint32_t good = 0x1f80;
    memcpy(es.data + 8, &good, 4);
    assert_int_equal(emu_one(h, "0f ae 53 08", &es, 0, 0), 0);     /* LDMXCSR */
    memset(es.data, 0xff, 4);
    assert_int_equal(emu_one(h, "0f ae 13", &es, 0, 0), 13);       /* reserved MXCSR bits */

    /* unaligned 16-byte store and load across a page boundary */
    rand_state(h, &es, 0);
    init = es;
    assert_int_equal(emu_one(h, "0f 11 83 f8 0f 00 00", &es, 0, 0), 0);
    assert_int_equal(emu_one(h, "0f 10 8b f8 0f 00 00", &es, 0, 0), 0);
    assert_memory_equal(es.fx + 160 + 16, init.fx + 160, 16);
    assert_memory_equal(h->ram + H_DATA + 0xff8, init.fx + 160, 16);

    /* pending unmasked x87 exception: #MF at the next waiting instruction */
    rand_state(h, &es, F_X87);
    uint16_t fcw = 0x037e, fsw = 0x8081;              /* IM clear, IE+ES+B pending */
    memcpy(es.fx, &fcw, 2);
    memcpy(es.fx + 2, &fsw, 2);
    init = es;
    assert_int_equal(emu_one(h, "d8 c1", &es, 0, 0), 16);
    es = init;
    assert_int_equal(emu_one(h, "9b", &es, 0, 0), 16);
    es = init;
    assert_int_equal(emu_one(h, "df e0", &es, 0, 0), 0);           /* FNSTSW: no wait */
    es = init;
    assert_int_equal(emu_one(h, "db e2", &es, 0, 0), 0);           /* FNCLEX */
    assert_int_equal(emu_one(h, "9b", &es, 0, 0), 0);
}

/* MASKMOVDQU / MASKMOVQ store through DS:RDI, which the host stub owns:
 * check the emulator against the definition instead. */
static void test_maskmov(void **state)
{
    struct harness *h = *state;
    for (int it = 0; it < ITERS; it++) {
        bool mmx = it & 1;
        unsigned off = h_rand(h) % 64, n = mmx ? 8 : 16;
        rand_state(h, &es, mmx ? F_MMX : 0);
        es.gpr[7] = H_DATA + off;
        es.fx[3] &= ~0x38;         /* TOP = 0: MMX register i is ST(i) */
        init = es;
        /* mm0/xmm0 = data, mm1/xmm1 = mask */
        const uint8_t *src = mmx ? init.fx + 32 : init.fx + 160;
        const uint8_t *mask = mmx ? init.fx + 48 : init.fx + 176;
        assert_int_equal(emu_one(h, mmx ? "0f f7 c1" : "66 0f f7 c1", &es, 0, 0), 0);
        uint8_t want[sizeof(es.data)];
        memcpy(want, init.data, sizeof(want));
        for (unsigned i = 0; i < n; i++)
            if (mask[i] & 0x80)
                want[off + i] = src[i];
        assert_memory_equal(es.data, want, sizeof(want));
    }
}

/* FXSAVE/FXRSTOR/XSAVE/XRSTOR images against the host's. The pointer
 * fields (FOP, FIP, FDP: bytes 6..23) hold host addresses on one side. */
enum { IMG_STORE, IMG_FX, IMG_RANDOM };

/* The pointer fields of a stored image differ by design: host addresses. */
static void mask_pointers(const char *hex, const struct hstate *hs, struct hstate *es)
{
    uint8_t b[16];
    unsigned n = parse_hex(hex, b), op = b[n - 2];
    if ((op == 0xd9 || op == 0xdd) && b[0] == 0x66) {    /* 14-byte form */
        memcpy(es->data + 6, hs->data + 6, 8);
    } else if (op == 0xd9 || op == 0xdd) {     /* FNSTENV / FNSAVE: FIP..FDS */
        memcpy(es->data + 12, hs->data + 12, 16);
    } else {                                   /* FXSAVE / XSAVE: FOP FIP FDP, MXCSR_MASK */
        memcpy(es->data + 6, hs->data + 6, 18);
        memcpy(es->data + 28, hs->data + 28, 4);
    }
}

static int run_image(struct harness *h, const char *hex, int kind, uint32_t eax)
{
    bool restore = kind != IMG_STORE;
    int fails = 0;
    for (int it = 0; it < ITERS && !fails; it++) {
        uint8_t insn[16];
        unsigned n = parse_hex(hex, insn);
        rand_state(h, &hs, h_rand(h) % 2 ? F_X87 : F_MMX);
        if (kind == IMG_FX) {
            /* a valid image: the state of another random run */
            struct hstate other;
            rand_state(h, &other, F_X87);
            memcpy(hs.data, other.fx, 512);
            memset(hs.data + 512, 0, 64);
            uint64_t bv = h_rand(h) % (eax == 1 ? 2 : 4);   /* within XCR0 */
            memcpy(hs.data + 512, &bv, 8);
        }
        hs.gpr[0] = eax;
        hs.gpr[2] = 0;
        es = hs;
        init = hs;
        h_run_host(h, insn, n, &hs);
        int vec = h_run_emu(h, insn, n, &es, 0, 0);
        if (vec) {
            uint32_t none = 0, v = (uint32_t)vec;
            fails += report_diff(insn, n, "exception vector", &none, &v, 4);
            break;
        }
        if (!restore)
            mask_pointers(hex, &hs, &es);
        fails += compare(insn, n, &hs, &es, 0);
        if (fails && getenv("SIMD_VERBOSE"))
            dump_initial(&init);
    }
    return fails;
}

static void test_fxsave(void **state)
{
    struct harness *h = *state;
    assert_int_equal(run_image(h, "48 0f ae 03", IMG_STORE, 0), 0);    /* FXSAVE64 */
    assert_int_equal(run_image(h, "0f ae 03", IMG_STORE, 0), 0);       /* FXSAVE */
    assert_int_equal(run_image(h, "48 0f ae 0b", IMG_FX, 0), 0);       /* FXRSTOR64 */
    assert_int_equal(run_image(h, "0f ae 1b", IMG_STORE, 0), 0);       /* STMXCSR */
    /* XCR0 is x87 only after reset: XSAVE/XRSTOR of component 0 */
    assert_int_equal(run_image(h, "48 0f ae 23", IMG_STORE, 1), 0);    /* XSAVE64 */
    assert_int_equal(run_image(h, "48 0f ae 2b", IMG_FX, 1), 0);       /* XRSTOR64 */
    /* XSETBV to x87|SSE (what Linux does), then both components */
    rand_state(h, &es, 0);
    es.gpr[0] = 3;
    es.gpr[1] = 0;
    es.gpr[2] = 0;
    assert_int_equal(emu_one(h, "0f 01 d1", &es, 0, 0), 0);
    es.gpr[0] = 7;
    assert_int_equal(emu_one(h, "0f 01 d1", &es, 0, 0), 13);           /* AVX: not ours */
    es.gpr[1] = 0;
    assert_int_equal(emu_one(h, "0f 01 d0", &es, 0, 0), 0);            /* XGETBV */
    assert_int_equal(es.gpr[0], 3);
    assert_int_equal(run_image(h, "48 0f ae 23", IMG_STORE, 3), 0);    /* XSAVE64 */
    assert_int_equal(run_image(h, "0f ae 23", IMG_STORE, 3), 0);       /* XSAVE */
    assert_int_equal(run_image(h, "48 0f ae 23", IMG_STORE, 2), 0);    /* SSE only */
    assert_int_equal(run_image(h, "48 0f ae 2b", IMG_FX, 3), 0);       /* XRSTOR64 */
    assert_int_equal(run_image(h, "48 0f ae 2b", IMG_FX, 2), 0);
    /* x87 environment (glibc's fenv functions) and FNSAVE/FRSTOR */
    assert_int_equal(run_image(h, "d9 33", IMG_STORE, 0), 0);          /* FNSTENV */
    assert_int_equal(run_image(h, "dd 33", IMG_STORE, 0), 0);          /* FNSAVE */
    assert_int_equal(run_image(h, "d9 23", IMG_RANDOM, 0), 0);         /* FLDENV */
    assert_int_equal(run_image(h, "dd 23", IMG_RANDOM, 0), 0);         /* FRSTOR */
    assert_int_equal(run_image(h, "66 d9 33", IMG_STORE, 0), 0);       /* 16-bit FNSTENV */
    assert_int_equal(run_image(h, "66 d9 23", IMG_RANDOM, 0), 0);      /* 16-bit FLDENV */
}

/* The same forms without REX in 32-bit compatibility mode (the host runs
 * them in 64-bit mode, where they mean the same). */
static void test_compat_mode(void **state)
{
    struct harness *h = *state;
    int fails = 0;
    h->compat = true;
    /* really 32-bit code: 40 is INC EAX, not a REX prefix */
    rand_state(h, &es, 0);
    es.gpr[0] = 41;
    assert_int_equal(emu_one(h, "40", &es, 0, 0), 0);
    assert_int_equal(es.gpr[0], 42);
    fails += run_cases(h, sse_int_cases, NCASES(sse_int_cases), ITERS / 4);
    fails += run_cases(h, sse_move_cases, NCASES(sse_move_cases), ITERS / 4);
    fails += run_cases(h, sse_fp_cases, NCASES(sse_fp_cases), ITERS / 4);
    fails += run_cases(h, ssse3_sse4_cases, NCASES(ssse3_sse4_cases), ITERS / 4);
    fails += run_cases(h, mmx_cases, NCASES(mmx_cases), ITERS / 4);
    fails += run_cases(h, x87_cases, NCASES(x87_cases), ITERS / 4);
    h->compat = false;
    assert_int_equal(fails, 0);
}

static int setup(void **state)
{
    static struct harness h;
    if (h_init(&h, 0x5eed1234abcdull))
        return -1;
    *state = &h;
    return 0;
}

static int teardown(void **state)
{
    h_fini(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_int),
        cmocka_unit_test(test_sse_moves),
        cmocka_unit_test(test_sse_fp),
        cmocka_unit_test(test_ssse3_sse4),
        cmocka_unit_test(test_mmx),
        cmocka_unit_test(test_x87),
        cmocka_unit_test(test_exceptions),
        cmocka_unit_test(test_fxsave),
        cmocka_unit_test(test_maskmov),
        cmocka_unit_test(test_compat_mode),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
