/* x86-64 encodings used by the JIT templates (see jit-emit.h). */
#include <string.h>
#include "accel/emu/jit-emit.h"

void jit_byte(struct jit_buf *b, uint8_t v)
{
    if (b->p >= b->end) {
        b->full = true;
        return;
    }
    *b->p++ = v;
}

void jit_u32(struct jit_buf *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        jit_byte(b, (uint8_t)(v >> (8 * i)));
}

void jit_u64(struct jit_buf *b, uint64_t v)
{
    jit_u32(b, (uint32_t)v);
    jit_u32(b, (uint32_t)(v >> 32));
}

static bool fits8(int64_t v)
{
    return v >= -128 && v <= 127;
}

/* Operand-size prefix, REX, then the opcode bytes. `byte_reg` says a
 * byte-sized register operand numbered 4..7 is present (SPL..DIL need a
 * REX so they are not read as AH..BH). */
static void prefix_opcode(struct jit_buf *b, unsigned size, uint32_t opc, unsigned reg,
                          unsigned index, unsigned base, bool byte_reg)
{
    if (size == 2)
        jit_byte(b, 0x66);
    uint8_t rex = 0x40 | (size == 8 ? 8 : 0) | (reg >= 8 && reg != JR_NONE ? 4 : 0) |
                  (index != JR_NONE && index >= 8 ? 2 : 0) | (base != JR_NONE && base >= 8 ? 1 : 0);
    if (rex != 0x40 || byte_reg)
        jit_byte(b, rex);
    if (opc > 0xffff)
        jit_byte(b, (uint8_t)(opc >> 16));
    if (opc > 0xff)
        jit_byte(b, (uint8_t)(opc >> 8));
    jit_byte(b, (uint8_t)opc);
}

static void modrm_mem(struct jit_buf *b, unsigned reg, struct jit_mem m)
{
    unsigned r = (reg & 7) << 3;
    if (m.base == JR_NONE) {
        unsigned idx = m.index == JR_NONE ? 4 : (m.index & 7);
        jit_byte(b, 0x04 | r);
        jit_byte(b, (uint8_t)((m.scale << 6) | (idx << 3) | 5));
        jit_u32(b, (uint32_t)m.disp);
        return;
    }
    unsigned mod = (m.disp == 0 && (m.base & 7) != 5) ? 0 : fits8(m.disp) ? 1 : 2;
    if (m.index == JR_NONE && (m.base & 7) != 4) {
        jit_byte(b, (uint8_t)((mod << 6) | r | (m.base & 7)));
    } else {
        unsigned idx = m.index == JR_NONE ? 4 : (m.index & 7);
        jit_byte(b, (uint8_t)((mod << 6) | r | 4));
        jit_byte(b, (uint8_t)((m.scale << 6) | (idx << 3) | (m.base & 7)));
    }
    if (mod == 1)
        jit_byte(b, (uint8_t)m.disp);
    else if (mod == 2)
        jit_u32(b, (uint32_t)m.disp);
}

void jit_op_m(struct jit_buf *b, unsigned size, uint32_t opc, unsigned reg, struct jit_mem m)
{
    prefix_opcode(b, size, opc, reg, m.index, m.base, size == 1 && reg >= 4 && reg < 8);
    modrm_mem(b, reg, m);
}

void jit_op_r(struct jit_buf *b, unsigned size, uint32_t opc, unsigned reg, unsigned rm)
{
    bool byte_reg = size == 1 && ((reg >= 4 && reg < 8) || (rm >= 4 && rm < 8));
    prefix_opcode(b, size, opc, reg, JR_NONE, rm, byte_reg);
    jit_byte(b, (uint8_t)(0xc0 | ((reg & 7) << 3) | (rm & 7)));
}

void jit_load(struct jit_buf *b, unsigned size, unsigned reg, struct jit_mem m)
{
    if (size == 1)
        jit_op_m(b, 4, 0x0fb6, reg, m);
    else if (size == 2)
        jit_op_m(b, 4, 0x0fb7, reg, m);
    else
        jit_op_m(b, size, 0x8b, reg, m);
}

void jit_store(struct jit_buf *b, unsigned size, unsigned reg, struct jit_mem m)
{
    jit_op_m(b, size, jit_op_sz(0x88, size), reg, m);
}

static void imm_sized(struct jit_buf *b, unsigned size, int32_t imm)
{
    if (size == 1)
        jit_byte(b, (uint8_t)imm);
    else if (size == 2) {
        jit_byte(b, (uint8_t)imm);
        jit_byte(b, (uint8_t)(imm >> 8));
    } else
        jit_u32(b, (uint32_t)imm);
}

void jit_store_imm(struct jit_buf *b, unsigned size, struct jit_mem m, int32_t imm)
{
    jit_op_m(b, size, jit_op_sz(0xc6, size), 0, m);
    imm_sized(b, size, imm);
}

void jit_mov_rr(struct jit_buf *b, unsigned size, unsigned dst, unsigned src)
{
    jit_op_r(b, size, jit_op_sz(0x88, size), src, dst);
}

void jit_mov_imm(struct jit_buf *b, unsigned reg, uint64_t imm)
{
    if (imm <= 0xffffffffull) {
        prefix_opcode(b, 4, 0xb8 + (reg & 7), JR_NONE, JR_NONE, reg, false);
        jit_u32(b, (uint32_t)imm);
    } else if ((int64_t)imm == (int32_t)imm) {
        jit_op_r(b, 8, 0xc7, 0, reg);
        jit_u32(b, (uint32_t)imm);
    } else {
        prefix_opcode(b, 8, 0xb8 + (reg & 7), JR_NONE, JR_NONE, reg, false);
        jit_u64(b, imm);
    }
}

void jit_mov_imm64(struct jit_buf *b, unsigned reg, uint64_t imm)
{
    prefix_opcode(b, 8, 0xb8 + (reg & 7), JR_NONE, JR_NONE, reg, false);
    jit_u64(b, imm);
}

void jit_lea(struct jit_buf *b, unsigned reg, struct jit_mem m)
{
    jit_op_m(b, 8, 0x8d, reg, m);
}

void jit_alu_rr(struct jit_buf *b, unsigned size, unsigned alu, unsigned dst, unsigned src)
{
    jit_op_r(b, size, jit_op_sz(alu * 8, size), src, dst);
}

void jit_alu_rm(struct jit_buf *b, unsigned size, unsigned alu, unsigned dst, struct jit_mem m)
{
    jit_op_m(b, size, jit_op_sz(alu * 8 + 2, size), dst, m);
}

void jit_alu_ri(struct jit_buf *b, unsigned size, unsigned alu, unsigned dst, int32_t imm)
{
    if (size != 1 && fits8(imm)) {
        jit_op_r(b, size, 0x83, alu, dst);
        jit_byte(b, (uint8_t)imm);
    } else {
        jit_op_r(b, size, jit_op_sz(0x80, size), alu, dst);
        imm_sized(b, size, imm);
    }
}

void jit_alu_mi(struct jit_buf *b, unsigned size, unsigned alu, struct jit_mem m, int32_t imm)
{
    if (size != 1 && fits8(imm)) {
        jit_op_m(b, size, 0x83, alu, m);
        jit_byte(b, (uint8_t)imm);
    } else {
        jit_op_m(b, size, jit_op_sz(0x80, size), alu, m);
        imm_sized(b, size, imm);
    }
}

void jit_shift_ri(struct jit_buf *b, unsigned size, unsigned digit, unsigned reg, int count)
{
    if (count < 0) {
        jit_op_r(b, size, jit_op_sz(0xd2, size), digit, reg);
    } else {
        jit_op_r(b, size, jit_op_sz(0xc0, size), digit, reg);
        jit_byte(b, (uint8_t)count);
    }
}

void jit_test_rr(struct jit_buf *b, unsigned size, unsigned a, unsigned c)
{
    jit_op_r(b, size, jit_op_sz(0x84, size), c, a);
}

void jit_setcc(struct jit_buf *b, unsigned cc, unsigned reg8)
{
    jit_op_r(b, 1, 0x0f90 + cc, 0, reg8);
}

void jit_cmov_rr(struct jit_buf *b, unsigned size, unsigned cc, unsigned dst, unsigned src)
{
    jit_op_r(b, size, 0x0f40 + cc, dst, src);
}

void jit_push(struct jit_buf *b, unsigned reg)
{
    if (reg >= 8)
        jit_byte(b, 0x41);
    jit_byte(b, (uint8_t)(0x50 + (reg & 7)));
}

void jit_pop(struct jit_buf *b, unsigned reg)
{
    if (reg >= 8)
        jit_byte(b, 0x41);
    jit_byte(b, (uint8_t)(0x58 + (reg & 7)));
}

void jit_ret(struct jit_buf *b)
{
    jit_byte(b, 0xc3);
}

void jit_call(struct jit_buf *b, const void *fn)
{
    int64_t rel = (int64_t)((const uint8_t *)fn - (b->p + 5));
    if (rel == (int32_t)rel) {
        jit_byte(b, 0xe8);
        jit_u32(b, (uint32_t)rel);
    } else {
        jit_mov_imm(b, JR_RAX, (uint64_t)(uintptr_t)fn);
        jit_op_r(b, 4, 0xff, 2, JR_RAX);
    }
}

uint8_t *jit_jcc(struct jit_buf *b, unsigned cc)
{
    jit_byte(b, 0x0f);
    jit_byte(b, (uint8_t)(0x80 + cc));
    uint8_t *site = b->p;
    jit_u32(b, 0);
    return site;
}

uint8_t *jit_jmp(struct jit_buf *b)
{
    jit_byte(b, 0xe9);
    uint8_t *site = b->p;
    jit_u32(b, 0);
    return site;
}

void jit_patch(struct jit_buf *b, uint8_t *site, const uint8_t *target)
{
    if (b->full || !site)
        return;
    int32_t rel = (int32_t)(target - (site + 4));
    memcpy(site, &rel, 4);
}

void jit_jmp_to(struct jit_buf *b, const uint8_t *target)
{
    jit_patch(b, jit_jmp(b), target);
}

uint8_t *jit_lea_rip(struct jit_buf *b, unsigned reg)
{
    prefix_opcode(b, 8, 0x8d, reg, JR_NONE, JR_NONE, false);
    jit_byte(b, (uint8_t)(0x05 | ((reg & 7) << 3)));
    uint8_t *site = b->p;
    jit_u32(b, 0);
    return site;
}

void jit_jmp_m(struct jit_buf *b, struct jit_mem m)
{
    jit_op_m(b, 4, 0xff, 4, m);
}
