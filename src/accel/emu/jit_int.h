/* Internals of the JIT shared by the translator (jit.c) and the template
 * files (jit-alu.c, jit-move.c, jit-flow.c).
 *
 * Register use in translated code: RBX holds the struct x86_cpu pointer,
 * R12 the guest RIP of the block's first instruction (so an instruction's
 * RIP is R12 + a constant), R14 the instructions retired by the blocks
 * chained before this one; R13 is a scratch register that survives calls;
 * RAX, RCX, RDX, RSI, RDI are scratch, with RSI the linear address and RDI
 * the host address of a memory operand after the TLB lookup. Guest
 * registers live in cpu->gpr[] and are used as host memory operands.
 *
 * Chaining: an exit to a constant address on the same guest page first
 * sets up R12/R14 for the target, then jumps through a patchable rel32
 * that starts out pointing at the exit path; the run loop patches it to the
 * target's chain entry once that block is translated. Same-page targets
 * stay valid under any mapping the source block runs from. The chain entry
 * checks the target's code generation; the patched jump is taken only
 * while no event (interrupt, kick) is pending. */
#ifndef QUOKKA_ACCEL_EMU_JIT_INT_H
#define QUOKKA_ACCEL_EMU_JIT_INT_H

#include <stddef.h>
#include "accel/emu/jit.h"
#include "accel/emu/jit-emit.h"

/* Flag groups for liveness: CF alone (INC/DEC keep it), and the rest. */
#define JF_CF  1u
#define JF_OSZ 2u
#define JF_ALL 3u

/* A miss in the TLB: run instruction `idx` in the interpreter, then go on
 * at `resume` (or leave the block when resume is NULL). */
struct jit_stub {
    uint8_t *site;
    uint8_t *resume;
    unsigned idx;
    uint32_t off;               /* the instruction's offset from R12 */
};

/* Translations by linear address, for exits whose target is not patched
 * in (returns, indirect branches, other pages). An entry is filled when
 * the run loop enters a block, so the address was just translated through
 * the TLB; it holds only while the CPU's jump-cache generation (bumped by
 * every TLB flush and code cache recycle) is what it was then, or while
 * the fetch TLB still maps the address to the same physical page (a CR3
 * write keeps global pages: kernel code). The target's own entry still
 * checks its page's code generation. One table per privilege class;
 * `code` is the chain entry, `pa` the block's physical page. */
#define JIT_LOOKUP_BITS 12
#define JIT_LOOKUP_SIZE (1u << JIT_LOOKUP_BITS)
struct jit_lookup {
    uint64_t la, jc_gen;
    const uint8_t *code;
    uint64_t pa;
};

struct jit_tr {
    struct jit_buf b;
    struct jit_lookup *lookup;  /* the table of this privilege class */
    const struct x86_block *blk;
    unsigned user;              /* TLB set baked into the code */
    unsigned idx;               /* instruction being translated */
    uint32_t off, next;         /* its offset and the next one's, from R12 */
    uint8_t live;               /* flags a later instruction may read */
    uint8_t live_mem;           /* ... and must find in the lazy-flags record (the
                                   rest is read from host flags by the next one) */
    bool hf_in;                 /* host flags held the guest's before this insn */
    bool hf;                    /* ... and after it (set by templates) */
    bool ends_block;            /* the template set cpu->rip and left */
    int known_op, known_size;   /* lazy-flags record known at this point, -1 if not */
    uint8_t *stale;             /* the block's page changed: leave before running any of it */
    uint8_t *body;              /* the first instruction's code (after the entry checks) */
    struct jit_stub stub[2 * X86_BLOCK_MAX];
    unsigned nstub;
    uint8_t *exit_site[2 * X86_BLOCK_MAX];
    unsigned exit_count[2 * X86_BLOCK_MAX];
    unsigned nexit;
};

typedef bool jit_template(struct jit_tr *t, const struct x86_insn *in);

#define JIT_CPU(field) jit_m(JR_RBX, (int32_t)offsetof(struct x86_cpu, field))

/* Where guest register r of the given size lives (AH..BH for byte regs 4-7 without REX). */
static inline struct jit_mem jit_greg(const struct x86_insn *in, unsigned r, unsigned size)
{
    if (size == 1 && r >= 4 && r < 8 && !in->rex)
        return jit_m(JR_RBX, (int32_t)(offsetof(struct x86_cpu, gpr) + 8 * (r - 4) + 1));
    return jit_m(JR_RBX, (int32_t)(offsetof(struct x86_cpu, gpr) + 8 * r));
}

/* Guest-instruction helpers (jit.c). */
/* Can the memory operand be addressed inline (64-bit, no 16-bit addressing)? */
bool jit_ea_ok(const struct jit_tr *t, const struct x86_insn *in);
static inline bool jit_rm_ok(const struct jit_tr *t, const struct x86_insn *in)
{
    return in->mod == 3 || jit_ea_ok(t, in);
}
/* Emit: RSI = the memory operand's offset (what LEA gives), plus the
 * segment base when with_seg. Clobbers RAX. */
void jit_ea(struct jit_tr *t, const struct x86_insn *in, bool with_seg);
/* Emit: RSI = linear address of the memory operand, RDI = host address of
 * `size` bytes there (write access if `write`); a miss runs the instruction
 * in the interpreter. Clobbers RAX, RDX and host flags. */
void jit_mem_operand(struct jit_tr *t, const struct x86_insn *in, unsigned size, bool write);
/* Emit: when host condition cc holds, run the instruction in the
 * interpreter instead (out of line; it rejoins after the template). */
void jit_stub_if(struct jit_tr *t, unsigned cc);
/* Same as jit_mem_operand for a linear address already in RSI. */
void jit_tlb(struct jit_tr *t, unsigned size, bool write);
/* Emit: RSI = RSP - 8, RDI = its host address, writable (a push's slot). */
void jit_push_slot(struct jit_tr *t, const struct x86_insn *in);
/* The r/m operand: a guest register, or memory through jit_mem_operand. */
struct jit_mem jit_rm(struct jit_tr *t, const struct x86_insn *in, unsigned size, bool write);
/* Store an op|size lazy-flags record with operands in registers (JR_NONE: not stored). */
void jit_lf(struct jit_tr *t, unsigned op, unsigned size, unsigned a, unsigned b, unsigned res);
/* Emit: the guest's flags materialized in RFLAGS unless they already are
 * (a call out: the caller keeps a host address in R13). */
void jit_flags_to_rflags(struct jit_tr *t);
/* Leave a condition in host flags; returns the host condition code to test. */
unsigned jit_cond(struct jit_tr *t, unsigned cc);
/* Return `count` retired instructions (cpu->rip already set). */
void jit_leave(struct jit_tr *t, unsigned count);
/* Leave for the instruction at R12 + next + rel, after t->idx + 1
 * instructions. When it is on the block's page, the exit can later be
 * patched to jump straight into that block's translation. */
void jit_exit_to(struct jit_tr *t, int64_t rel);
/* Leave for the guest address in RAX after t->idx + 1 instructions,
 * going straight to its translation when the lookup table has it. */
void jit_exit_dynamic(struct jit_tr *t);

/* Write a result in `reg` to a destination: a 32-bit write to a guest
 * register clears its upper half (reg must hold the zero-extended value). */
static inline void jit_store_dest(struct jit_tr *t, const struct x86_insn *in, unsigned size,
                                  unsigned reg, struct jit_mem loc)
{
    jit_store(&t->b, (size == 4 && in->mod == 3) ? 8 : size, reg, loc);
}

/* Templates per instruction group; NULL when the group has none for in. */
jit_template *jit_alu_template(const struct x86_insn *in);
jit_template *jit_move_template(const struct x86_insn *in);
jit_template *jit_flow_template(const struct x86_insn *in);
jit_template *jit_atomic_template(const struct x86_insn *in);   /* also every LOCK form */
jit_template *jit_sys_template(const struct x86_insn *in);
/* Flags read and fully written by in (for liveness); false if unknown. */
bool jit_flag_effect(const struct x86_insn *in, uint8_t *rd, uint8_t *wr);

#endif
