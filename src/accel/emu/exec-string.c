/* String instructions: MOVS, STOS, LODS, CMPS, SCAS, INS, OUTS with
 * REP/REPE/REPNE. Forward REP MOVS/STOS over RAM run a page at a time
 * with memmove/memset; everything else goes element by element, keeping
 * the registers exact so a fault restarts the instruction where it was. */
#include "accel/emu/exec.h"
#include "accel/emu/flags.h"

static inline uint64_t areg(const struct x86_cpu *cpu, unsigned r, unsigned asz)
{
    uint64_t v = cpu->gpr[r];
    return asz == 8 ? v : asz == 4 ? (uint32_t)v : (uint16_t)v;
}

static inline void set_areg(struct x86_cpu *cpu, unsigned r, unsigned asz, uint64_t v)
{
    if (asz == 8)
        cpu->gpr[r] = v;
    else if (asz == 4)
        cpu->gpr[r] = (uint32_t)v;
    else
        cpu->gpr[r] = (cpu->gpr[r] & ~0xffffull) | (uint16_t)v;
}

static inline uint64_t src_la(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint64_t la = cpu->segbase[in->seg] + areg(cpu, X86_RSI, in->asz);
    return cpu->code64 ? la : (uint32_t)la;
}

static inline uint64_t dst_la(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint64_t la = (cpu->code64 ? 0 : cpu->segbase[X86_ES]) + areg(cpu, X86_RDI, in->asz);
    return cpu->code64 ? la : (uint32_t)la;
}

static inline int64_t step(struct x86_cpu *cpu, unsigned size)
{
    return (cpu->rflags & X86_DF) ? -(int64_t)size : (int64_t)size;
}

static inline void advance(struct x86_cpu *cpu, unsigned r, unsigned asz, int64_t d)
{
    set_areg(cpu, r, asz, cpu->gpr[r] + (uint64_t)d);
}

/* Host pointer for reading n bytes at la if RAM (TLB filled), else NULL. */
static const uint8_t *host_r(struct x86_cpu *cpu, uint64_t la, unsigned n)
{
    if ((la & 0xfff) + n > 4096)
        return NULL;
    const struct x86_tlb_entry *e = &cpu->tlb[cpu->tlb_user][(la >> 12) & (X86_TLB_SIZE - 1)];
    if (e->tag_r != (la & ~0xfffull)) {
        x86_read8(cpu, la);
        if (e->tag_r != (la & ~0xfffull))
            return NULL;
    }
    return (const uint8_t *)(uintptr_t)(la + e->addend);
}

/* Elements that fit in the rest of the page at la (forward). */
static inline uint64_t page_elems(uint64_t la, unsigned size)
{
    return (4096 - (la & 0xfff)) / size;
}

static void op_movs(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, asz = in->asz;
    bool rep = in->pfx & (X86_PFX_F3 | X86_PFX_F2);
    uint64_t cnt = rep ? areg(cpu, X86_RCX, asz) : 1;
    int64_t d = step(cpu, size);
    while (cnt) {
        uint64_t s = src_la(cpu, in), t = dst_la(cpu, in);
        if (rep && d > 0 && cnt > 1) {
            uint64_t n = page_elems(s, size), m = page_elems(t, size);
            if (m < n)
                n = m;
            if (n > cnt)
                n = cnt;
            if (n > 1) {
                const uint8_t *ps = host_r(cpu, s, (unsigned)(n * size));
                uint8_t *pt = ps ? x86_host_ptr_w(cpu, t, (unsigned)(n * size)) : NULL;
                if (ps && pt && !(pt > ps && pt < ps + n * size)) {
                    memmove(pt, ps, n * size);
                    advance(cpu, X86_RSI, asz, (int64_t)(n * size));
                    advance(cpu, X86_RDI, asz, (int64_t)(n * size));
                    cnt -= n;
                    set_areg(cpu, X86_RCX, asz, cnt);
                    continue;
                }
            }
        }
        x86_write(cpu, t, x86_read(cpu, s, size), size);
        advance(cpu, X86_RSI, asz, d);
        advance(cpu, X86_RDI, asz, d);
        cnt--;
        if (rep)
            set_areg(cpu, X86_RCX, asz, cnt);
    }
}

static void op_stos(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, asz = in->asz;
    bool rep = in->pfx & (X86_PFX_F3 | X86_PFX_F2);
    uint64_t cnt = rep ? areg(cpu, X86_RCX, asz) : 1;
    uint64_t v = x86_get_reg(cpu, in, X86_RAX, size);
    int64_t d = step(cpu, size);
    while (cnt) {
        uint64_t t = dst_la(cpu, in);
        if (rep && d > 0 && cnt > 1) {
            uint64_t n = page_elems(t, size);
            if (n > cnt)
                n = cnt;
            uint8_t *pt = n > 1 ? x86_host_ptr_w(cpu, t, (unsigned)(n * size)) : NULL;
            if (pt) {
                if (size == 1 || v == 0 || v == mask_all(size))
                    memset(pt, (int)(v & 0xff), n * size);
                else
                    for (uint64_t i = 0; i < n; i++)
                        x86_store(pt + i * size, size, v);
                advance(cpu, X86_RDI, asz, (int64_t)(n * size));
                cnt -= n;
                set_areg(cpu, X86_RCX, asz, cnt);
                continue;
            }
        }
        x86_write(cpu, t, v, size);
        advance(cpu, X86_RDI, asz, d);
        cnt--;
        if (rep)
            set_areg(cpu, X86_RCX, asz, cnt);
    }
}

static void op_lods(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, asz = in->asz;
    bool rep = in->pfx & (X86_PFX_F3 | X86_PFX_F2);
    uint64_t cnt = rep ? areg(cpu, X86_RCX, asz) : 1;
    int64_t d = step(cpu, size);
    while (cnt) {
        x86_set_reg(cpu, in, X86_RAX, size, x86_read(cpu, src_la(cpu, in), size));
        advance(cpu, X86_RSI, asz, d);
        cnt--;
        if (rep)
            set_areg(cpu, X86_RCX, asz, cnt);
    }
}

/* CMPS and SCAS: REPE (F3) stops when not equal, REPNE (F2) when equal. */
static void op_cmps(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, asz = in->asz;
    bool rep = in->pfx & (X86_PFX_F3 | X86_PFX_F2);
    bool repne = rep && !(in->pfx & X86_PFX_F3);
    uint64_t cnt = rep ? areg(cpu, X86_RCX, asz) : 1;
    int64_t d = step(cpu, size);
    while (cnt) {
        uint64_t a = x86_read(cpu, src_la(cpu, in), size);
        uint64_t b = x86_read(cpu, dst_la(cpu, in), size);
        x86_lf(cpu, X86_LF_SUB, size, a, b, a - b);
        advance(cpu, X86_RSI, asz, d);
        advance(cpu, X86_RDI, asz, d);
        cnt--;
        if (!rep)
            break;
        set_areg(cpu, X86_RCX, asz, cnt);
        bool eq = ((a - b) & mask_all(size)) == 0;
        if (eq == repne)
            break;
    }
}

static void op_scas(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz, asz = in->asz;
    bool rep = in->pfx & (X86_PFX_F3 | X86_PFX_F2);
    bool repne = rep && !(in->pfx & X86_PFX_F3);
    uint64_t cnt = rep ? areg(cpu, X86_RCX, asz) : 1;
    uint64_t a = x86_get_reg(cpu, in, X86_RAX, size);
    int64_t d = step(cpu, size);
    while (cnt) {
        uint64_t b = x86_read(cpu, dst_la(cpu, in), size);
        x86_lf(cpu, X86_LF_SUB, size, a, b, a - b);
        advance(cpu, X86_RDI, asz, d);
        cnt--;
        if (!rep)
            break;
        set_areg(cpu, X86_RCX, asz, cnt);
        bool eq = ((a - b) & mask_all(size)) == 0;
        if (eq == repne)
            break;
    }
}

static void op_ins(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz == 8 ? 4 : in->osz, asz = in->asz;
    bool rep = in->pfx & (X86_PFX_F3 | X86_PFX_F2);
    uint64_t cnt = rep ? areg(cpu, X86_RCX, asz) : 1;
    uint16_t port = (uint16_t)cpu->gpr[X86_RDX];
    int64_t d = step(cpu, size);
    x86_check_io(cpu, port, size);
    while (cnt) {
        uint64_t t = dst_la(cpu, in);
        x86_read(cpu, t, size);          /* fault before the port read */
        x86_write(cpu, t, cpu->bus.pio_in(cpu->bus.opaque, port, size), size);
        advance(cpu, X86_RDI, asz, d);
        cnt--;
        if (rep)
            set_areg(cpu, X86_RCX, asz, cnt);
    }
}

static void op_outs(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->osz == 8 ? 4 : in->osz, asz = in->asz;
    bool rep = in->pfx & (X86_PFX_F3 | X86_PFX_F2);
    uint64_t cnt = rep ? areg(cpu, X86_RCX, asz) : 1;
    uint16_t port = (uint16_t)cpu->gpr[X86_RDX];
    int64_t d = step(cpu, size);
    x86_check_io(cpu, port, size);
    while (cnt) {
        uint32_t v = (uint32_t)x86_read(cpu, src_la(cpu, in), size);
        cpu->bus.pio_out(cpu->bus.opaque, port, v, size);
        advance(cpu, X86_RSI, asz, d);
        cnt--;
        if (rep)
            set_areg(cpu, X86_RCX, asz, cnt);
    }
}

void x86_string_register(struct x86_op_table *t)
{
    x86_op_set(t, X86_MAP_1B, 0, 0x6c, op_ins);
    x86_op_set(t, X86_MAP_1B, 0, 0x6d, op_ins);
    x86_op_set(t, X86_MAP_1B, 0, 0x6e, op_outs);
    x86_op_set(t, X86_MAP_1B, 0, 0x6f, op_outs);
    x86_op_set(t, X86_MAP_1B, 0, 0xa4, op_movs);
    x86_op_set(t, X86_MAP_1B, 0, 0xa5, op_movs);
    x86_op_set(t, X86_MAP_1B, 0, 0xa6, op_cmps);
    x86_op_set(t, X86_MAP_1B, 0, 0xa7, op_cmps);
    x86_op_set(t, X86_MAP_1B, 0, 0xaa, op_stos);
    x86_op_set(t, X86_MAP_1B, 0, 0xab, op_stos);
    x86_op_set(t, X86_MAP_1B, 0, 0xac, op_lods);
    x86_op_set(t, X86_MAP_1B, 0, 0xad, op_lods);
    x86_op_set(t, X86_MAP_1B, 0, 0xae, op_scas);
    x86_op_set(t, X86_MAP_1B, 0, 0xaf, op_scas);
}
