/* A small x86-64 machine-code writer for the JIT (jit-emit.c): enough
 * encodings for the instruction templates, nothing general-purpose.
 *
 * Operand sizes are 1, 2, 4 or 8 bytes; opcodes are given as an integer
 * whose bytes are emitted high to low (0x0FAF is "0F AF"), with the
 * byte-sized form's opcode where the instruction has one (callers add 1
 * for the wider forms, see jit_op_sz). Memory operands are base + index *
 * 2^scale + disp32; base or index JR_NONE for none. */
#ifndef QUOKKA_ACCEL_EMU_JIT_EMIT_H
#define QUOKKA_ACCEL_EMU_JIT_EMIT_H

#include <stdbool.h>
#include <stdint.h>

enum jit_reg {
    JR_RAX, JR_RCX, JR_RDX, JR_RBX, JR_RSP, JR_RBP, JR_RSI, JR_RDI,
    JR_R8, JR_R9, JR_R10, JR_R11, JR_R12, JR_R13, JR_R14, JR_R15,
    JR_NONE = 0xff,
};

struct jit_mem {
    uint8_t base, index, scale;
    int32_t disp;
};

static inline struct jit_mem jit_m(unsigned base, int32_t disp)
{
    return (struct jit_mem){ (uint8_t)base, JR_NONE, 0, disp };
}

static inline struct jit_mem jit_mx(unsigned base, unsigned index, unsigned scale, int32_t disp)
{
    return (struct jit_mem){ (uint8_t)base, (uint8_t)index, (uint8_t)scale, disp };
}

/* Output buffer; `full` is set (and writing stops) when it runs out. */
struct jit_buf {
    uint8_t *p, *end;
    bool full;
};

/* Condition codes as in Jcc/SETcc/CMOVcc. */
enum { JCC_O, JCC_NO, JCC_B, JCC_AE, JCC_E, JCC_NE, JCC_BE, JCC_A,
       JCC_S, JCC_NS, JCC_P, JCC_NP, JCC_L, JCC_GE, JCC_LE, JCC_G };

/* ALU operations by their /digit (group 1) number. */
enum { JALU_ADD, JALU_OR, JALU_ADC, JALU_SBB, JALU_AND, JALU_SUB, JALU_XOR, JALU_CMP };

static inline uint32_t jit_op_sz(uint32_t byte_opc, unsigned size)
{
    return size == 1 ? byte_opc : byte_opc + 1;
}

void jit_byte(struct jit_buf *b, uint8_t v);
void jit_u32(struct jit_buf *b, uint32_t v);
void jit_u64(struct jit_buf *b, uint64_t v);

/* opc reg, [m] and opc reg, rm (ModRM.reg = reg, which may be a /digit). */
void jit_op_m(struct jit_buf *b, unsigned size, uint32_t opc, unsigned reg, struct jit_mem m);
void jit_op_r(struct jit_buf *b, unsigned size, uint32_t opc, unsigned reg, unsigned rm);

/* Common shapes. */
void jit_load(struct jit_buf *b, unsigned size, unsigned reg, struct jit_mem m);   /* zero-extends 1/2 */
void jit_store(struct jit_buf *b, unsigned size, unsigned reg, struct jit_mem m);
void jit_store_imm(struct jit_buf *b, unsigned size, struct jit_mem m, int32_t imm);
void jit_mov_rr(struct jit_buf *b, unsigned size, unsigned dst, unsigned src);
void jit_mov_imm(struct jit_buf *b, unsigned reg, uint64_t imm);
void jit_mov_imm64(struct jit_buf *b, unsigned reg, uint64_t imm);   /* always 10 bytes */
void jit_lea(struct jit_buf *b, unsigned reg, struct jit_mem m);
void jit_alu_rr(struct jit_buf *b, unsigned size, unsigned alu, unsigned dst, unsigned src);
void jit_alu_rm(struct jit_buf *b, unsigned size, unsigned alu, unsigned dst, struct jit_mem m);
void jit_alu_ri(struct jit_buf *b, unsigned size, unsigned alu, unsigned dst, int32_t imm);
void jit_alu_mi(struct jit_buf *b, unsigned size, unsigned alu, struct jit_mem m, int32_t imm);
/* Group 2 (ROL..SAR by /digit) by an immediate, or by CL when count < 0. */
void jit_shift_ri(struct jit_buf *b, unsigned size, unsigned digit, unsigned reg, int count);
void jit_test_rr(struct jit_buf *b, unsigned size, unsigned a, unsigned c);
void jit_setcc(struct jit_buf *b, unsigned cc, unsigned reg8);
void jit_cmov_rr(struct jit_buf *b, unsigned size, unsigned cc, unsigned dst, unsigned src);
void jit_push(struct jit_buf *b, unsigned reg);
void jit_pop(struct jit_buf *b, unsigned reg);
void jit_ret(struct jit_buf *b);
void jit_call(struct jit_buf *b, const void *fn);       /* clobbers rax when far */

/* Forward branches: emit with a zero rel32, patch once the target is known. */
uint8_t *jit_jcc(struct jit_buf *b, unsigned cc);
uint8_t *jit_jmp(struct jit_buf *b);
void jit_patch(struct jit_buf *b, uint8_t *site, const uint8_t *target);
void jit_jmp_to(struct jit_buf *b, const uint8_t *target);
/* LEA reg, [RIP + rel32]: returns the rel32 to jit_patch with the target. */
uint8_t *jit_lea_rip(struct jit_buf *b, unsigned reg);
/* JMP [m] (an indirect jump through a code pointer in memory). */
void jit_jmp_m(struct jit_buf *b, struct jit_mem m);

#endif
