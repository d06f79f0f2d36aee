/* Internals of the emulated x86-64 CPU, shared by the files of this folder.
 *
 * Pipeline: decode.c turns guest bytes into `struct x86_insn` (prefixes,
 * REX, ModRM/SIB, displacement, immediates resolved once) and caches them
 * per block of guest-physical code; cpu.c runs blocks, calling one handler
 * per instruction through the flat `struct x86_op_table`; mmu.c translates
 * linear addresses through a software TLB holding host pointers to RAM;
 * every fault leaves through x86_raise() (longjmp back to the run loop),
 * which delivers it through the IDT.
 *
 * Who fills the op table: the integer/system handlers (exec-*.c) and the
 * SIMD/x87 handlers (sse*.c, x87.c, fxsave.c) each register their own
 * entries from their own file; the table is built once, on first use:
 *
 *     void x86_int_register(struct x86_op_table *t);    integer + system
 *     void x86_simd_register(struct x86_op_table *t);   SSE*, MMX, x87,
 *                                                       0F AE (FXSAVE, XSAVE,
 *                                                       LDMXCSR, fences, CLFLUSH)
 *
 * A handler runs with cpu->rip already pointing at the NEXT instruction
 * (what relative branches and RIP-relative operands need); cpu->insn_rip is
 * the start of the current one (faults restart from there). */
#ifndef QUOKKA_ACCEL_EMU_CPU_INT_H
#define QUOKKA_ACCEL_EMU_CPU_INT_H

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "accel/emu/cpu.h"
#include "accel/emu/fpu.h"

#define X86_LIKELY(x)   __builtin_expect(!!(x), 1)
#define X86_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- Registers and architectural constants ---------------------------- */

enum { X86_RAX, X86_RCX, X86_RDX, X86_RBX, X86_RSP, X86_RBP, X86_RSI, X86_RDI };
enum { X86_ES, X86_CS, X86_SS, X86_DS, X86_FS, X86_GS, X86_LDTR, X86_TR };
#define X86_NOREG 0xff          /* no base / index register */
#define X86_RIPREL 0xfe         /* base = RIP (64-bit mode disp32 with no SIB) */
#define X86_SEG_ZERO 7          /* x86_insn.seg for "no base" (segbase[7] == 0) */

/* RFLAGS bits. */
#define X86_CF   0x0001u
#define X86_PF   0x0004u
#define X86_AF   0x0010u
#define X86_ZF   0x0040u
#define X86_SF   0x0080u
#define X86_TF   0x0100u
#define X86_IF   0x0200u
#define X86_DF   0x0400u
#define X86_OF   0x0800u
#define X86_IOPL 0x3000u
#define X86_NT   0x4000u
#define X86_RF   0x10000u
#define X86_VM   0x20000u
#define X86_AC   0x40000u
#define X86_VIF  0x80000u
#define X86_VIP  0x100000u
#define X86_ID   0x200000u
#define X86_ARITH_FLAGS (X86_CF | X86_PF | X86_AF | X86_ZF | X86_SF | X86_OF)

#define X86_CR0_PE 0x1u
#define X86_CR0_MP 0x2u
#define X86_CR0_EM 0x4u
#define X86_CR0_TS 0x8u
#define X86_CR0_ET 0x10u
#define X86_CR0_NE 0x20u
#define X86_CR0_WP 0x10000u
#define X86_CR0_AM 0x40000u
#define X86_CR0_NW 0x20000000u
#define X86_CR0_CD 0x40000000u
#define X86_CR0_PG 0x80000000u
#define X86_CR4_PSE 0x10u
#define X86_CR4_PAE 0x20u
#define X86_CR4_PGE 0x80u
#define X86_CR4_OSFXSR 0x200u
#define X86_CR4_OSXMMEXCPT 0x400u
#define X86_CR4_FSGSBASE 0x10000u
#define X86_CR4_OSXSAVE 0x40000u
#define X86_EFER_SCE 0x1u
#define X86_EFER_LME 0x100u
#define X86_EFER_LMA 0x400u
#define X86_EFER_NXE 0x800u

/* Exception vectors. */
enum {
    X86_EXC_DE = 0, X86_EXC_DB = 1, X86_EXC_NMI = 2, X86_EXC_BP = 3, X86_EXC_OF = 4,
    X86_EXC_BR = 5, X86_EXC_UD = 6, X86_EXC_NM = 7, X86_EXC_DF = 8, X86_EXC_TS = 10,
    X86_EXC_NP = 11, X86_EXC_SS = 12, X86_EXC_GP = 13, X86_EXC_PF = 14, X86_EXC_MF = 16,
    X86_EXC_AC = 17, X86_EXC_MC = 18, X86_EXC_XM = 19,
};

/* Page-fault error code bits. */
#define X86_PF_P  0x1u
#define X86_PF_W  0x2u
#define X86_PF_U  0x4u
#define X86_PF_RSVD 0x8u
#define X86_PF_I  0x10u

/* ---- Decoded instruction ---------------------------------------------- */

struct x86_cpu;
struct x86_insn;
typedef void x86_handler(struct x86_cpu *cpu, const struct x86_insn *in);

/* Prefix bits in x86_insn.pfx. */
#define X86_PFX_66   0x01u
#define X86_PFX_67   0x02u
#define X86_PFX_F2   0x04u      /* REPNE, or mandatory prefix */
#define X86_PFX_F3   0x08u      /* REP/REPE, or mandatory prefix */
#define X86_PFX_LOCK 0x10u
#define X86_PFX_SEG  0x20u      /* an explicit segment override was given */

/* Opcode maps. */
enum { X86_MAP_1B, X86_MAP_0F, X86_MAP_0F38, X86_MAP_0F3A, X86_NMAPS };
/* Mandatory-prefix columns of the 0F/0F38/0F3A maps. The decoder picks F3
 * or F2 (whichever came last), else 66, else NONE; if that column has no
 * handler it falls back to NONE (the prefix then means operand size or REP,
 * as for integer 0F opcodes), and to #UD if that is empty too. The one-byte
 * map only uses NONE. */
enum { X86_MP_NONE, X86_MP_66, X86_MP_F3, X86_MP_F2, X86_NMP };

struct x86_insn {
    x86_handler *fn;
    uint64_t imm;           /* immediate, sign-extended to 64 bits where the
                               SDM sign-extends; moffs for A0-A3; imm64 for B8+r */
    int32_t disp;           /* displacement; far pointer selector for 9A/EA */
    uint8_t len;            /* bytes, prefixes included */
    uint8_t osz;            /* operand size in bytes: 1 (byte forms), 2, 4, 8 */
    uint8_t asz;            /* address size in bytes: 2, 4, 8 */
    uint8_t map;            /* X86_MAP_* */
    uint8_t op;             /* opcode byte within its map */
    uint8_t mod;            /* ModRM.mod; 3 = register operand */
    uint8_t reg;            /* ModRM.reg | REX.R<<3 (or low 3 opcode bits + REX.B for +r forms) */
    uint8_t rm;             /* ModRM.rm | REX.B<<3 */
    uint8_t base, index;    /* memory operand registers, X86_NOREG / X86_RIPREL */
    uint8_t scale;          /* index shift, 0..3 */
    uint8_t seg;            /* effective segment (override or default DS/SS) */
    uint8_t rex;            /* the REX byte, 0 if none */
    uint8_t pfx;            /* X86_PFX_* */
    uint8_t imm2;           /* second immediate (ENTER's nesting level) */
    uint8_t modrm;          /* raw ModRM byte */
    uint8_t flags;          /* decoder-private */
    uint8_t vvvv;           /* VEX.vvvv register operand (VEX forms only) */
};

struct x86_op_table {
    x86_handler *fn[X86_NMAPS][X86_NMP][256];
};

static inline void x86_op_set(struct x86_op_table *t, int map, int mp, int op, x86_handler *fn)
{
    t->fn[map][mp][op] = fn;
}

void x86_int_register(struct x86_op_table *t);
/* SIMD side (please define both in fxsave.c, which the CPU always links):
 * x86_simd_cpuid adjusts CPUID results (leaf 1 ECX/EDX SSE bits, leaf 0xD)
 * after the CPU filled them. Referenced weakly until they exist. */
void x86_simd_register(struct x86_op_table *t) __attribute__((weak));
void x86_simd_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t r[4]) __attribute__((weak));

/* ---- CPU state ---------------------------------------------------------- */

/* Lazy arithmetic flags: the last flag-setting ALU op is recorded and
 * CF/PF/AF/ZF/SF/OF computed only when read. */
enum {
    X86_LF_NONE,            /* arithmetic bits of cpu->rflags are current */
    X86_LF_ADD, X86_LF_ADC, X86_LF_SUB, X86_LF_SBB, X86_LF_LOGIC,
    X86_LF_INC, X86_LF_DEC, /* CF is kept in cpu->rflags */
    X86_LF_SHL, X86_LF_SHR, X86_LF_SAR,   /* a = operand, b = count (1..63) */
    X86_LF_MUL,             /* b = CF|OF as computed, AF clear */
};

struct x86_lazy {
    uint64_t res, a, b;     /* result and operands (b: carry-in for ADC/SBB via op) */
    uint8_t op, size;       /* X86_LF_*, operand size in bytes */
};

/* Software TLB: per privilege class (0 = supervisor, 1 = user), direct
 * mapped on the linear page. A tag is the page-aligned linear address, or
 * X86_TLB_INVALID; host = la + addend for RAM. MMIO pages never get a tag,
 * so they always take the slow path. */
#define X86_TLB_BITS 10
#define X86_TLB_SIZE (1u << X86_TLB_BITS)
#define X86_ITLB_SIZE 1024u     /* fetch has its own, so code and data never evict each other */
#define X86_TLB_INVALID 1ull    /* never equal to a page-aligned address */
#define X86_TLB_LOCAL_MAX 256u
struct x86_tlb_entry {
    uint64_t tag_r, tag_w, tag_x;
    uintptr_t addend;
    uint64_t pa;            /* guest-physical page */
};

struct x86_block;
struct x86_code_cache;

/* Jump cache: linear address of a block start -> decoded block, valid
 * while key (mode, privilege class, jc_gen) matches; TLB flushes bump
 * jc_gen so mappings and permissions are re-checked. */
#define X86_JC_SIZE 16384u     /* 512 KiB: a kernel's hot paths missed a quarter as often as with 4096 */
struct x86_jc_entry {
    uint64_t la, key;
    struct x86_block *b;
    uint64_t cc_gen;        /* b is alive while this is the CPU's cc_gen */
};

struct x86_cpu {
    /* hot state first */
    uint64_t gpr[16];
    uint64_t rip;           /* next instruction while a handler runs */
    uint64_t insn_rip;      /* start of the current instruction */
    uint64_t rflags;        /* arithmetic bits valid only when lf.op == NONE */
    struct x86_lazy lf;
    uint8_t cpl;
    uint8_t code64;         /* CS.L in long mode */
    uint8_t code32;         /* default operand size 32 (CS.D), or 64-bit mode */
    uint8_t stack32;        /* SS.B (ignored in 64-bit mode) */
    uint8_t tlb_user;       /* index into tlb[]: cpl == 3 */
    bool block_end;         /* set by handlers that change mode/code: leave the block */
    struct x86_seg seg[8];  /* ES CS SS DS FS GS LDTR TR */
    /* Bases that addressing adds: seg[i].base, except ES/CS/SS/DS in
     * 64-bit mode (0); index X86_SEG_ZERO is always 0. */
    uint64_t segbase[8];
    struct x86_tlb_entry tlb[2][X86_TLB_SIZE];    /* data: tag_r, tag_w */
    struct x86_tlb_entry itlb[2][X86_ITLB_SIZE];  /* fetch: tag_x */
    /* pages filled from non-global mappings since the last flush (the count
     * may exceed the array: then a CR3 write flushes everything) */
    uint64_t tlb_local[X86_TLB_LOCAL_MAX];
    unsigned tlb_nlocal;

    uint64_t cr0, cr2, cr3, cr4, efer;     /* XCR0 is fpu.xcr0 */
    uint64_t gdt_base, idt_base;
    uint16_t gdt_limit, idt_limit;
    uint64_t dr[8];
    uint64_t kernel_gs_base, star, lstar, cstar, sfmask, apic_base, tsc_aux, pat;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t mtrr_def_type, mtrr_fixed[11], mtrr_var[16];
    uint64_t misc_enable;
    uint64_t spec_ctrl;     /* IA32_SPEC_CTRL: kept for the guest, no effect here */
    int64_t tsc_offset;     /* guest TSC = host ns * scale + offset */

    /* SIMD / x87 state (fpu.h; handlers in sse*.c, x87.c, fxsave.c) */
    struct x86_fpu_state fpu;

    /* control */
    jmp_buf jmp;            /* x86_raise() lands here */
    int exc_vec;            /* exception being raised */
    uint32_t exc_err;
    int delivering;         /* exception vector being delivered, -1 if none (#DF rules) */
    bool intr_shadow;       /* STI / MOV SS: no interrupt before the next insn */
    bool nmi_blocked;       /* between NMI delivery and IRET */
    bool halted, wait_sipi;
    bool is_bsp;
    uint8_t sipi_vector;
    uint8_t cr8;            /* when the bus has no get_cr8 */
    int index;
    unsigned log_mask;
    _Atomic unsigned events;  /* X86_EV_* */
    pthread_mutex_t lock;     /* guards halt sleep */
    pthread_cond_t cond;
    struct x86_bus bus;
    struct x86_emu *emu;
    struct x86_code_cache *cc;
    uint64_t code_epoch;      /* emu->code_epoch last seen (write-tag flush) */
    _Atomic uint64_t *code_epoch_p;
    uint64_t jc_gen;
    uint64_t cc_gen;          /* code cache recycles (blocks freed) */
    int jit_threshold;        /* runs before a block is translated; -1: never */
    uint32_t jit_nochain;     /* nonzero: translated blocks must not jump to each other */
    uint8_t *jit_exit_site;   /* the chainable exit the last translated code left by ... */
    uint64_t jit_exit_la;     /* ... and where it was going */
    _Atomic uint32_t *last_genp;  /* code page generation last validated ... */
    uint32_t last_gen;            /* ... and its value */
    struct x86_jc_entry jc[X86_JC_SIZE];
    uint64_t icount;          /* instructions retired (statistics) */
    uint64_t stat_blocks, stat_jc_miss;
    uint64_t stat_xc_hit, stat_xc_miss;   /* page-crossing instructions cached / decoded */
};

/* ---- Exceptions --------------------------------------------------------- */

/* Raise an exception at the current instruction: never returns. */
_Noreturn void x86_raise(struct x86_cpu *cpu, int vec, uint32_t err);
_Noreturn void x86_raise_noerr(struct x86_cpu *cpu, int vec);
static inline _Noreturn void x86_ud(struct x86_cpu *cpu) { x86_raise_noerr(cpu, X86_EXC_UD); }
static inline _Noreturn void x86_gp0(struct x86_cpu *cpu) { x86_raise(cpu, X86_EXC_GP, 0); }
/* Unimplemented opcode: logged with -d unimp, then #UD. */
_Noreturn void x86_unimp(struct x86_cpu *cpu, const struct x86_insn *in);
/* #UD unless SSE is usable (CR0.EM=0, CR4.OSFXSR=1), #NM if CR0.TS. */
void x86_check_sse(struct x86_cpu *cpu);
/* #NM if CR0.EM or CR0.TS (x87 and MMX). */
void x86_check_fpu(struct x86_cpu *cpu);
void x86_log(struct x86_cpu *cpu, unsigned mask, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Memory (linear addresses: segment base already added) -------------- */

/* Linear address of a ModRM memory operand (segment base included,
 * offset truncated to the address size). Do not call for mod == 3. */
#define X86_INSN_EA_SIMPLE 0x80u   /* x86_insn.flags: 64-bit [base + disp], no segment base */
/* The offset part (what LEA yields): base + index*scale + disp, truncated
 * to the address size, without the segment base. */
static inline uint64_t x86_ea_offset(const struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint64_t a = (uint64_t)(int64_t)in->disp;
    if (in->base < 16)
        a += cpu->gpr[in->base];
    else if (in->base == X86_RIPREL)
        a += cpu->rip;
    if (in->index < 16)
        a += cpu->gpr[in->index] << in->scale;
    if (in->asz == 4)
        a = (uint32_t)a;
    else if (in->asz == 2)
        a = (uint16_t)a;
    return a;
}
static inline uint64_t x86_ea(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (X86_LIKELY(in->flags & X86_INSN_EA_SIMPLE))
        return cpu->gpr[in->base] + (uint64_t)(int64_t)in->disp;
    return x86_ea_offset(cpu, in) + cpu->segbase[in->seg];
}
/* Same with an extra offset (second half of a wide operand, ...). */
static inline uint64_t x86_ea_off(struct x86_cpu *cpu, const struct x86_insn *in, int64_t off)
{
    return x86_ea(cpu, in) + (uint64_t)off;
}

uint64_t x86_read_slow(struct x86_cpu *cpu, uint64_t la, unsigned size);
void x86_write_slow(struct x86_cpu *cpu, uint64_t la, uint64_t val, unsigned size);
/* Any size (16-byte vectors, 10-byte x87, 512-byte FXSAVE): whole access
 * is checked for faults before any byte is stored. */
void x86_read_mem(struct x86_cpu *cpu, uint64_t la, void *buf, unsigned n);
void x86_write_mem(struct x86_cpu *cpu, uint64_t la, const void *buf, unsigned n);
/* Host pointer to n bytes at la (n <= 4096-la%4096, same page) for
 * read-modify-write and LOCKed access, faulting like a write; NULL if
 * the page is MMIO. */
uint8_t *x86_host_ptr_w(struct x86_cpu *cpu, uint64_t la, unsigned n);

#define X86_ACCESS(bits, type)                                                         \
    static inline type x86_read##bits(struct x86_cpu *cpu, uint64_t la)                \
    {                                                                                  \
        const struct x86_tlb_entry *e = &cpu->tlb[cpu->tlb_user][(la >> 12) & (X86_TLB_SIZE - 1)]; \
        if (X86_LIKELY(e->tag_r == (la & ~0xfffull) && (la & 0xfff) <= 4096 - sizeof(type))) { \
            type v;                                                                    \
            memcpy(&v, (const void *)(uintptr_t)(la + e->addend), sizeof v);          \
            return v;                                                                  \
        }                                                                              \
        return (type)x86_read_slow(cpu, la, sizeof(type));                            \
    }                                                                                  \
    static inline void x86_write##bits(struct x86_cpu *cpu, uint64_t la, type v)       \
    {                                                                                  \
        const struct x86_tlb_entry *e = &cpu->tlb[cpu->tlb_user][(la >> 12) & (X86_TLB_SIZE - 1)]; \
        if (X86_LIKELY(e->tag_w == (la & ~0xfffull) && (la & 0xfff) <= 4096 - sizeof(type))) { \
            memcpy((void *)(uintptr_t)(la + e->addend), &v, sizeof v);                \
            return;                                                                    \
        }                                                                              \
        x86_write_slow(cpu, la, v, sizeof(type));                                      \
    }
X86_ACCESS(8, uint8_t)
X86_ACCESS(16, uint16_t)
X86_ACCESS(32, uint32_t)
X86_ACCESS(64, uint64_t)
#undef X86_ACCESS

/* Sized helpers (size 1, 2, 4 or 8). */
static inline uint64_t x86_read(struct x86_cpu *cpu, uint64_t la, unsigned size)
{
    const struct x86_tlb_entry *e = &cpu->tlb[cpu->tlb_user][(la >> 12) & (X86_TLB_SIZE - 1)];
    if (X86_LIKELY(e->tag_r == (la & ~0xfffull) && (la & 0xfff) <= 4096 - size)) {
        const uint8_t *p = (const uint8_t *)(uintptr_t)(la + e->addend);
        switch (size) {
        case 1: return *p;
        case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
        case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
        default: { uint64_t v; memcpy(&v, p, 8); return v; }
        }
    }
    return x86_read_slow(cpu, la, size);
}

static inline void x86_write(struct x86_cpu *cpu, uint64_t la, uint64_t val, unsigned size)
{
    const struct x86_tlb_entry *e = &cpu->tlb[cpu->tlb_user][(la >> 12) & (X86_TLB_SIZE - 1)];
    if (X86_LIKELY(e->tag_w == (la & ~0xfffull) && (la & 0xfff) <= 4096 - size)) {
        uint8_t *p = (uint8_t *)(uintptr_t)(la + e->addend);
        switch (size) {
        case 1: *p = (uint8_t)val; return;
        case 2: { uint16_t v = (uint16_t)val; memcpy(p, &v, 2); return; }
        case 4: { uint32_t v = (uint32_t)val; memcpy(p, &v, 4); return; }
        default: memcpy(p, &val, 8); return;
        }
    }
    x86_write_slow(cpu, la, val, size);
}

/* MMU (mmu.c). */
void x86_tlb_flush(struct x86_cpu *cpu);
void x86_tlb_flush_page(struct x86_cpu *cpu, uint64_t la);
/* CR3 write: drop what non-global mappings filled. */
void x86_tlb_flush_local(struct x86_cpu *cpu);
/* Walk the page tables for la: 0 and *pa, or the #PF error code | (1<<31). */
int64_t x86_mmu_walk(struct x86_cpu *cpu, uint64_t la, int access, bool user, uint64_t *pa,
                     bool set_ad);
enum { X86_ACC_R, X86_ACC_W, X86_ACC_X };

/* ---- Operand helpers ----------------------------------------------------- */

/* Registers by ModRM number and operand size (byte form: AH..BH without REX). */
static inline uint64_t x86_get_reg(const struct x86_cpu *cpu, const struct x86_insn *in,
                                   unsigned r, unsigned size)
{
    switch (size) {
    case 1:
        if (r >= 4 && r < 8 && !in->rex)
            return (uint8_t)(cpu->gpr[r - 4] >> 8);
        return (uint8_t)cpu->gpr[r];
    case 2: return (uint16_t)cpu->gpr[r];
    case 4: return (uint32_t)cpu->gpr[r];
    default: return cpu->gpr[r];
    }
}

static inline void x86_set_reg(struct x86_cpu *cpu, const struct x86_insn *in, unsigned r,
                               unsigned size, uint64_t v)
{
    switch (size) {
    case 1:
        if (r >= 4 && r < 8 && !in->rex)
            cpu->gpr[r - 4] = (cpu->gpr[r - 4] & ~0xff00ull) | ((v & 0xff) << 8);
        else
            cpu->gpr[r] = (cpu->gpr[r] & ~0xffull) | (v & 0xff);
        break;
    case 2: cpu->gpr[r] = (cpu->gpr[r] & ~0xffffull) | (v & 0xffff); break;
    case 4: cpu->gpr[r] = (uint32_t)v; break;
    default: cpu->gpr[r] = v; break;
    }
}

/* The r/m operand (register or memory) of the instruction. */
static inline uint64_t x86_get_rm(struct x86_cpu *cpu, const struct x86_insn *in, unsigned size)
{
    if (in->mod == 3)
        return x86_get_reg(cpu, in, in->rm, size);
    return x86_read(cpu, x86_ea(cpu, in), size);
}

static inline void x86_set_rm(struct x86_cpu *cpu, const struct x86_insn *in, unsigned size,
                              uint64_t v)
{
    if (in->mod == 3)
        x86_set_reg(cpu, in, in->rm, size, v);
    else
        x86_write(cpu, x86_ea(cpu, in), v, size);
}

/* ---- Flags ---------------------------------------------------------------- */

/* RFLAGS with the arithmetic bits materialized. */
uint64_t x86_get_flags(struct x86_cpu *cpu);
/* Replace the bits in mask (arithmetic ones drop the lazy state). */
void x86_set_flags(struct x86_cpu *cpu, uint64_t val, uint64_t mask);
/* Condition code cc (0..15 as in Jcc) true? */
bool x86_cond(struct x86_cpu *cpu, unsigned cc);

/* ---- Shared decoded-code cache ------------------------------------------- */

/* A guest store hit RAM page pa that may hold decoded code. */
void x86_code_written(struct x86_cpu *cpu, uint64_t pa, unsigned len);

#endif
