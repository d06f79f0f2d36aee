/* Vector and floating-point state of the emulated CPU: x87, MMX, SSE..SSE4.2,
 * MXCSR, and the FXSAVE/XSAVE images. The CPU state struct embeds one
 * `struct x86_fpu_state`; the instructions that use it live in x87.c,
 * mmx.c, sse*.c and fxsave.c.
 *
 * The pure computations (functions on 128-bit values and on MXCSR) are
 * declared here too so unit tests can compare them with the host CPU. */
#ifndef QUOKKA_ACCEL_EMU_FPU_H
#define QUOKKA_ACCEL_EMU_FPU_H

#include <stdbool.h>
#include <stdint.h>

/* One XMM register (or an MMX register in its low 8 bytes). Little-endian
 * host: element i of every view is the guest's element i. */
typedef union x86_xmm {
    uint8_t b[16];
    int8_t sb[16];
    uint16_t w[8];
    int16_t sw[8];
    uint32_t d[4];
    int32_t sd[4];
    uint64_t q[2];
    int64_t sq[2];
    float fs[4];
    double fd[2];
} x86_xmm;

/* An x87 data register as stored: 64-bit significand (explicit integer
 * bit) and sign+15-bit exponent. MMX register i is the significand of
 * physical register i; MMX writes set the exponent to all ones. */
struct x87_reg {
    uint64_t mant;
    uint16_t sexp;
};

/* MXCSR bits. */
enum {
    MXCSR_IE = 1 << 0, MXCSR_DE = 1 << 1, MXCSR_ZE = 1 << 2, MXCSR_OE = 1 << 3,
    MXCSR_UE = 1 << 4, MXCSR_PE = 1 << 5, MXCSR_DAZ = 1 << 6,
    MXCSR_FLAGS = 0x3f,
    MXCSR_MASK_SHIFT = 7,          /* IM..PM at bits 7..12 */
    MXCSR_RC_SHIFT = 13,           /* 00 nearest, 01 down, 10 up, 11 toward zero */
    MXCSR_FTZ = 1 << 15,
    MXCSR_RESET = 0x1f80,
    MXCSR_WRITABLE = 0xffff,       /* MXCSR_MASK we report in FXSAVE */
};

/* x87 status word bits (TOP lives in x86_fpu_state.top, merged on read). */
enum {
    FSW_IE = 1 << 0, FSW_DE = 1 << 1, FSW_ZE = 1 << 2, FSW_OE = 1 << 3,
    FSW_UE = 1 << 4, FSW_PE = 1 << 5, FSW_SF = 1 << 6, FSW_ES = 1 << 7,
    FSW_C0 = 1 << 8, FSW_C1 = 1 << 9, FSW_C2 = 1 << 10, FSW_C3 = 1 << 14,
    FSW_B = 1 << 15,
    FCW_RESET = 0x037f,
};

/* XCR0 / XSAVE components we implement. */
enum { XFEATURE_X87 = 1, XFEATURE_SSE = 2, XFEATURE_SUPPORTED = 3 };

struct x86_fpu_state {
    x86_xmm xmm[16];
    uint32_t mxcsr;

    /* x87: physical registers R0..R7; ST(i) is st[(top + i) & 7]. */
    struct x87_reg st[8];
    uint16_t fcw;
    uint16_t fsw;                  /* without TOP (bits 13:11 kept zero) */
    uint8_t top;
    uint8_t tag_valid;             /* bit i: physical register i not empty */
    uint16_t fop;                  /* last non-control opcode (11 bits) */
    uint64_t fip, fdp;             /* last instruction / operand pointers */
    uint16_t fcs, fds;

    uint64_t xcr0;
};

/* Power-on / RESET values (FNINIT-like x87, MXCSR 0x1f80, XCR0 = x87). */
void fpu_reset(struct x86_fpu_state *f);
/* The architectural x87 status word (with TOP) and full tag word. */
uint16_t fpu_get_fsw(const struct x86_fpu_state *f);
uint16_t fpu_get_ftw_full(const struct x86_fpu_state *f);
/* Conversions for x86_cpu_get_vec_regs / x86_cpu_set_vec_regs (cpu.h). */
struct x86_vec_regs;
void fpu_get_vec_regs(const struct x86_fpu_state *f, struct x86_vec_regs *v);
void fpu_set_vec_regs(struct x86_fpu_state *f, const struct x86_vec_regs *v);

/* The 512-byte FXSAVE image (legacy region of XSAVE): w64 selects the
 * FXSAVE64 layout (64-bit FIP/FDP), nxmm is 16 in 64-bit mode, else 8.
 * fpu_fxrstor returns -1 (#GP) for reserved MXCSR bits, changing nothing. */
void fpu_fxsave(const struct x86_fpu_state *f, uint8_t *img, bool w64, unsigned nxmm);
int fpu_fxrstor(struct x86_fpu_state *f, const uint8_t *img, bool w64, unsigned nxmm);
/* XSETBV / XGETBV (0F 01 D1 / D0, decoded by the CPU core): ECX = index.
 * Return -1 for #GP (XSETBV also needs CPL 0, checked by the caller). */
int fpu_xsetbv(struct x86_fpu_state *f, uint32_t index, uint64_t value);
int fpu_xgetbv(const struct x86_fpu_state *f, uint32_t index, uint64_t *value);
/* XSAVE area size for the components in xcr0 (CPUID.0DH:EBX). */
static inline uint32_t fpu_xsave_size(uint64_t xcr0) { (void)xcr0; return 512 + 64; }

#endif
