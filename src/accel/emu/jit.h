/* The JIT of the emulated CPU (jit*.c): translates a decoded block of
 * 64-bit code into host x86-64 code. Guest registers stay in struct
 * x86_cpu; common integer instructions become inline host code (with the
 * TLB fast path for memory operands and lazy flags recorded only where a
 * later instruction may read them), everything else a direct call to the
 * instruction's interpreter handler. A memory access that misses the TLB
 * runs the whole instruction in the interpreter, so faults, MMIO and
 * writes to code pages behave exactly as when interpreting.
 *
 * Translated code is per vCPU and per privilege class (the TLB set is a
 * constant in it); it lives as long as the block it came from: the code
 * cache recycles both together. */
#ifndef QUOKKA_ACCEL_EMU_JIT_H
#define QUOKKA_ACCEL_EMU_JIT_H

#include "accel/emu/decode.h"

struct x86_jit;

/* Entry point of a translated block: runs it with cpu->rip at the block's
 * first instruction, leaves cpu->rip at the next one to run and returns
 * how many guest instructions retired. */
typedef unsigned x86_jit_fn(struct x86_cpu *cpu);

struct x86_jit *x86_jit_new(void);
void x86_jit_free(struct x86_jit *jit);
/* Drop every translation (the code cache was recycled). */
void x86_jit_reset(struct x86_jit *jit);
/* Translate b for privilege class `user`; NULL when the block cannot be
 * translated (not 64-bit code) or the code buffer is full (the caller then
 * recycles the code cache). */
x86_jit_fn *x86_jit_translate(struct x86_jit *jit, const struct x86_block *b, unsigned user);

/* Make the chainable exit at `site` (cpu->jit_exit_site) jump straight
 * into translated block `code`. */
void x86_jit_chain(uint8_t *site, x86_jit_fn *code);

/* No room left for another block: recycle the code cache. */
bool x86_jit_full(const struct x86_jit *jit);

#endif
