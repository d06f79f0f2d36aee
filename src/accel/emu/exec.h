/* Shared by the instruction handler files (exec-*.c): host-memory
 * helpers for read-modify-write and LOCK, stack access, registration. */
#ifndef QUOKKA_ACCEL_EMU_EXEC_H
#define QUOKKA_ACCEL_EMU_EXEC_H

#include "accel/emu/cpu_int.h"
#include "accel/emu/sys.h"

static inline uint64_t x86_load(const uint8_t *p, unsigned size)
{
    switch (size) {
    case 1: return *p;
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

static inline void x86_store(uint8_t *p, unsigned size, uint64_t v)
{
    switch (size) {
    case 1: *p = (uint8_t)v; break;
    case 2: { uint16_t w = (uint16_t)v; memcpy(p, &w, 2); break; }
    case 4: { uint32_t w = (uint32_t)v; memcpy(p, &w, 4); break; }
    default: memcpy(p, &v, 8); break;
    }
}

/* Atomic compare-and-swap of size bytes at p: *old is updated on failure. */
static inline bool x86_cas(uint8_t *p, unsigned size, uint64_t *old, uint64_t nv)
{
    bool ok;
    switch (size) {
    case 1: { uint8_t o = (uint8_t)*old;
        ok = __atomic_compare_exchange_n(p, &o, (uint8_t)nv, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *old = o; return ok; }
    case 2: { uint16_t o = (uint16_t)*old;
        ok = __atomic_compare_exchange_n((uint16_t *)p, &o, (uint16_t)nv, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *old = o; return ok; }
    case 4: { uint32_t o = (uint32_t)*old;
        ok = __atomic_compare_exchange_n((uint32_t *)p, &o, (uint32_t)nv, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *old = o; return ok; }
    default:
        return __atomic_compare_exchange_n((uint64_t *)p, old, nv, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
}

static inline uint64_t mask_all(unsigned size)
{
    return size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

/* #GP unless port I/O is allowed (CPL <= IOPL, or the TSS bitmap). */
void x86_check_io(struct x86_cpu *cpu, uint16_t port, unsigned size);
x86_handler *x86_move_fast(const struct x86_insn *in);
x86_handler *x86_alu_fast(const struct x86_insn *in);
/* Handler of a VEX-encoded integer instruction (BMI1/BMI2); pp is VEX.pp
 * (0 none, 1 66, 2 F3, 3 F2). NULL if it does not exist. */
x86_handler *x86_vex_handler(const struct x86_insn *in, unsigned pp);

/* Stack: SS-relative push/pop of size bytes with the current stack width. */
void x86_push(struct x86_cpu *cpu, uint64_t v, unsigned size);
uint64_t x86_pop(struct x86_cpu *cpu, unsigned size);
/* Near branch target, truncated to the operand size outside 64-bit mode. */
void x86_jump(struct x86_cpu *cpu, uint64_t target, unsigned osz);

void x86_incdec_rm(struct x86_cpu *cpu, const struct x86_insn *in, bool dec);
void x86_cmpxchg8b(struct x86_cpu *cpu, const struct x86_insn *in);

void x86_alu_register(struct x86_op_table *t);
void x86_move_register(struct x86_op_table *t);
void x86_string_register(struct x86_op_table *t);
void x86_flow_register(struct x86_op_table *t);
void x86_sys_register(struct x86_op_table *t);

#endif
