/* Segmentation: descriptor tables, segment register loads with the
 * protected-mode checks, far JMP/CALL/RET and IRET (SDM vol. 3 ch. 3, 5,
 * 6; vol. 2 instruction pages). Call gates, task switches and virtual-8086
 * mode are not implemented: they are logged (-d unimp) and raise #GP. */
#include "accel/emu/exec.h"

bool x86_protected(const struct x86_cpu *cpu)
{
    return (cpu->cr0 & X86_CR0_PE) && !(cpu->rflags & X86_VM);
}

uint64_t x86_sys_read(struct x86_cpu *cpu, uint64_t la, unsigned size)
{
    uint8_t u = cpu->tlb_user;
    cpu->tlb_user = 0;
    uint64_t v = x86_read(cpu, la, size);
    cpu->tlb_user = u;
    return v;
}

void x86_sys_write(struct x86_cpu *cpu, uint64_t la, uint64_t v, unsigned size)
{
    uint8_t u = cpu->tlb_user;
    cpu->tlb_user = 0;
    x86_write(cpu, la, v, size);
    cpu->tlb_user = u;
}

static uint64_t desc_addr(struct x86_cpu *cpu, uint16_t sel, int exc)
{
    uint64_t base;
    uint32_t limit;
    if (sel & 4) {
        base = cpu->seg[X86_LDTR].base;
        limit = cpu->seg[X86_LDTR].limit;
        if (!(cpu->seg[X86_LDTR].attr & 0x80))
            x86_raise(cpu, exc, sel & 0xfffc);
    } else {
        base = cpu->gdt_base;
        limit = cpu->gdt_limit;
    }
    if ((uint32_t)(sel & ~7u) + 7 > limit)
        x86_raise(cpu, exc, sel & 0xfffc);
    return base + (sel & ~7u);
}

uint64_t x86_read_desc(struct x86_cpu *cpu, uint16_t sel, int exc)
{
    return x86_sys_read(cpu, desc_addr(cpu, sel, exc), 8);
}

static void set_accessed(struct x86_cpu *cpu, uint16_t sel, uint64_t d)
{
    if (!(d & (1ull << 40)))
        x86_sys_write(cpu, desc_addr(cpu, sel, X86_EXC_GP) + 5, (uint8_t)((d >> 40) | 1), 1);
}

void x86_desc_to_seg(struct x86_seg *s, uint16_t sel, uint64_t d)
{
    s->sel = sel;
    s->base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
    uint32_t limit = (uint32_t)((d & 0xffff) | (((d >> 48) & 0xf) << 16));
    if (d & (1ull << 55))
        limit = (limit << 12) | 0xfff;
    s->limit = limit;
    s->attr = (uint16_t)((d >> 40) & 0xf0ff);
}

#define D_DPL(d) ((unsigned)((d) >> 45) & 3)
#define D_P(d) (((d) >> 47) & 1)
#define D_S(d) (((d) >> 44) & 1)
#define D_TYPE(d) ((unsigned)((d) >> 40) & 15)
#define D_CODE(d) (D_TYPE(d) & 8)

static void seg_changed(struct x86_cpu *cpu, int sreg)
{
    if (sreg == X86_CS || sreg == X86_SS)
        x86_update_mode(cpu);
    else if (sreg < 6)
        cpu->segbase[sreg] = (cpu->code64 && sreg < X86_FS) ? 0 : cpu->seg[sreg].base;
}

void x86_load_seg(struct x86_cpu *cpu, int sreg, uint16_t sel)
{
    struct x86_seg *s = &cpu->seg[sreg];
    if (sreg == X86_SS)
        cpu->intr_shadow = true;
    if (!x86_protected(cpu)) {
        s->sel = sel;
        s->base = (uint64_t)sel << 4;
        if (cpu->rflags & X86_VM) {
            s->limit = 0xffff;
            s->attr = 0xf3;
        }
        seg_changed(cpu, sreg);
        return;
    }
    unsigned rpl = sel & 3, cpl = cpu->cpl;
    if ((sel & ~3u) == 0) {
        if (sreg == X86_SS && !(cpu->code64 && cpl != 3 && rpl == cpl))
            x86_gp0(cpu);
        s->sel = sel;
        s->attr = sreg == X86_SS ? (uint16_t)((cpl << 5) | 0x4000 | 0x93) : 0;
        if (!(cpu->code64 && sreg >= X86_FS))
            s->base = 0;
        s->limit = 0;
        seg_changed(cpu, sreg);
        return;
    }
    uint64_t d = x86_read_desc(cpu, sel, X86_EXC_GP);
    unsigned dpl = D_DPL(d), type = D_TYPE(d);
    if (!D_S(d))
        x86_raise(cpu, X86_EXC_GP, sel & 0xfffc);
    if (sreg == X86_SS) {
        if (D_CODE(d) || !(type & 2) || rpl != cpl || dpl != cpl)
            x86_raise(cpu, X86_EXC_GP, sel & 0xfffc);
        if (!D_P(d))
            x86_raise(cpu, X86_EXC_SS, sel & 0xfffc);
    } else {
        if (D_CODE(d) && !(type & 2))
            x86_raise(cpu, X86_EXC_GP, sel & 0xfffc);
        if ((!D_CODE(d) || !(type & 4)) && (dpl < cpl || dpl < rpl))
            x86_raise(cpu, X86_EXC_GP, sel & 0xfffc);
        if (!D_P(d))
            x86_raise(cpu, X86_EXC_NP, sel & 0xfffc);
    }
    set_accessed(cpu, sel, d);
    uint64_t keep_base = s->base;
    x86_desc_to_seg(s, sel, d);
    (void)keep_base;
    seg_changed(cpu, sreg);
}

/* Check a code segment descriptor for a far transfer; returns it. */
static uint64_t check_code(struct x86_cpu *cpu, uint16_t sel, unsigned want_cpl, bool ret)
{
    if ((sel & ~3u) == 0)
        x86_gp0(cpu);
    uint64_t d = x86_read_desc(cpu, sel, X86_EXC_GP);
    unsigned dpl = D_DPL(d), rpl = sel & 3;
    if (!D_S(d) || !D_CODE(d)) {
        x86_log(cpu, X86_LOG_UNIMP | X86_LOG_GUEST_ERRORS,
                "far transfer through a gate or TSS (selector %#x) not supported", sel);
        x86_raise(cpu, X86_EXC_GP, sel & 0xfffc);
    }
    if (ret) {
        if (rpl < cpu->cpl || ((D_TYPE(d) & 4) ? dpl > rpl : dpl != rpl))
            x86_raise(cpu, X86_EXC_GP, sel & 0xfffc);
    } else if ((D_TYPE(d) & 4) ? dpl > want_cpl : (rpl > want_cpl || dpl != want_cpl)) {
        x86_raise(cpu, X86_EXC_GP, sel & 0xfffc);
    }
    if (!D_P(d))
        x86_raise(cpu, X86_EXC_NP, sel & 0xfffc);
    return d;
}

static void load_cs(struct x86_cpu *cpu, uint16_t sel, uint64_t d, unsigned cpl)
{
    set_accessed(cpu, sel, d);
    x86_desc_to_seg(&cpu->seg[X86_CS], (uint16_t)((sel & ~3u) | cpl), d);
    cpu->cpl = cpl;
    x86_update_mode(cpu);
}

static void set_ip(struct x86_cpu *cpu, uint64_t off, unsigned osz)
{
    cpu->rip = cpu->code64 ? off : osz == 2 ? (uint16_t)off : (uint32_t)off;
}

static void real_cs(struct x86_cpu *cpu, uint16_t sel)
{
    cpu->seg[X86_CS].sel = sel;
    cpu->seg[X86_CS].base = (uint64_t)sel << 4;
    x86_update_mode(cpu);
}

void x86_far_jump(struct x86_cpu *cpu, uint16_t sel, uint64_t off, unsigned osz)
{
    if (!x86_protected(cpu)) {
        real_cs(cpu, sel);
        set_ip(cpu, off, osz);
        return;
    }
    uint64_t d = check_code(cpu, sel, cpu->cpl, false);
    load_cs(cpu, sel, d, cpu->cpl);
    set_ip(cpu, off, osz);
}

void x86_far_call(struct x86_cpu *cpu, uint16_t sel, uint64_t off, unsigned osz)
{
    uint16_t old_cs = cpu->seg[X86_CS].sel;
    uint64_t old_sp = cpu->gpr[X86_RSP];
    if (!x86_protected(cpu)) {
        x86_push(cpu, old_cs, osz);
        x86_push(cpu, cpu->rip, osz);
        real_cs(cpu, sel);
        set_ip(cpu, off, osz);
        return;
    }
    uint64_t d = check_code(cpu, sel, cpu->cpl, false);
    x86_push(cpu, old_cs, osz);
    uint64_t ret = cpu->rip;
    x86_push(cpu, ret, osz);
    (void)old_sp;
    load_cs(cpu, sel, d, cpu->cpl);
    set_ip(cpu, off, osz);
}

static void sp_add(struct x86_cpu *cpu, uint64_t n)
{
    if (cpu->code64)
        cpu->gpr[X86_RSP] += n;
    else if (cpu->stack32)
        cpu->gpr[X86_RSP] = (uint32_t)(cpu->gpr[X86_RSP] + n);
    else
        cpu->gpr[X86_RSP] = (cpu->gpr[X86_RSP] & ~0xffffull) | (uint16_t)(cpu->gpr[X86_RSP] + n);
}

/* After a return to an outer level: data segments the new CPL may not use become null. */
static void null_inner_segs(struct x86_cpu *cpu)
{
    static const int regs[] = { X86_ES, X86_DS, X86_FS, X86_GS };
    for (int i = 0; i < 4; i++) {
        struct x86_seg *s = &cpu->seg[regs[i]];
        unsigned dpl = (s->attr >> 5) & 3;
        bool conforming_code = (s->attr & 0x18) == 0x18 && (s->attr & 4);
        if ((s->sel & ~3u) && !conforming_code && dpl < cpu->cpl) {
            s->sel = 0;
            s->attr = 0;
        }
    }
}

void x86_far_ret(struct x86_cpu *cpu, unsigned osz, uint16_t extra)
{
    uint64_t ip = x86_pop(cpu, osz);
    uint16_t sel = (uint16_t)x86_pop(cpu, osz);
    if (!x86_protected(cpu)) {
        sp_add(cpu, extra);
        real_cs(cpu, sel);
        set_ip(cpu, ip, osz);
        return;
    }
    uint64_t d = check_code(cpu, sel, 0, true);
    unsigned rpl = sel & 3;
    if (rpl > cpu->cpl) {
        sp_add(cpu, extra);
        uint64_t sp = x86_pop(cpu, osz);
        uint16_t ss = (uint16_t)x86_pop(cpu, osz);
        load_cs(cpu, sel, d, rpl);
        x86_load_seg(cpu, X86_SS, ss);
        cpu->gpr[X86_RSP] = osz == 8 ? sp : osz == 4 ? (uint32_t)sp : (cpu->gpr[X86_RSP] & ~0xffffull) | (uint16_t)sp;
        null_inner_segs(cpu);
    } else {
        load_cs(cpu, sel, d, cpu->cpl);
    }
    sp_add(cpu, extra);
    set_ip(cpu, ip, osz);
}

/* RFLAGS bits IRET/POPF may change at this privilege. */
uint64_t x86_flags_writable(struct x86_cpu *cpu, unsigned osz)
{
    uint64_t m = X86_ARITH_FLAGS | X86_TF | X86_DF | X86_NT | X86_AC | X86_ID;
    unsigned iopl = (cpu->rflags >> 12) & 3;
    if (!x86_protected(cpu) || cpu->cpl == 0)
        m |= X86_IOPL | X86_IF;
    else if (cpu->cpl <= iopl)
        m |= X86_IF;
    if (osz == 2)
        m &= 0xffff;
    return m;
}

void x86_iret(struct x86_cpu *cpu, unsigned osz)
{
    cpu->nmi_blocked = false;
    cpu->block_end = true;
    if (!x86_protected(cpu)) {
        if (cpu->rflags & X86_VM) {
            x86_log(cpu, X86_LOG_UNIMP, "IRET in virtual-8086 mode");
            x86_gp0(cpu);
        }
        uint64_t ip = x86_pop(cpu, osz);
        uint16_t sel = (uint16_t)x86_pop(cpu, osz);
        uint64_t fl = x86_pop(cpu, osz);
        real_cs(cpu, sel);
        set_ip(cpu, ip, osz);
        uint64_t m = x86_flags_writable(cpu, osz) | X86_RF;
        x86_set_flags(cpu, fl, m);
        return;
    }
    if (cpu->rflags & X86_NT) {
        x86_log(cpu, X86_LOG_UNIMP, "IRET with NT (task return) not supported");
        x86_gp0(cpu);
    }
    uint64_t ip = x86_pop(cpu, osz);
    uint16_t sel = (uint16_t)x86_pop(cpu, osz);
    uint64_t fl = x86_pop(cpu, osz);
    bool lma = cpu->efer & X86_EFER_LMA;
    if ((fl & X86_VM) && !lma && cpu->cpl == 0) {
        x86_log(cpu, X86_LOG_UNIMP, "IRET to virtual-8086 mode not supported");
        x86_gp0(cpu);
    }
    uint64_t d = check_code(cpu, sel, 0, true);
    unsigned rpl = sel & 3;
    uint64_t m = x86_flags_writable(cpu, osz) | X86_RF;
    if (cpu->code64 || rpl > cpu->cpl) {
        uint64_t sp = x86_pop(cpu, osz);
        uint16_t ss = (uint16_t)x86_pop(cpu, osz);
        x86_set_flags(cpu, fl, m);
        load_cs(cpu, sel, d, rpl);
        x86_load_seg(cpu, X86_SS, ss);
        cpu->intr_shadow = false;
        if (osz == 8 || cpu->code64)
            cpu->gpr[X86_RSP] = sp;
        else if (osz == 4)
            cpu->gpr[X86_RSP] = (uint32_t)sp;
        else
            cpu->gpr[X86_RSP] = (cpu->gpr[X86_RSP] & ~0xffffull) | (uint16_t)sp;
        if (rpl > 0)
            null_inner_segs(cpu);
    } else {
        x86_set_flags(cpu, fl, m);
        load_cs(cpu, sel, d, rpl);
    }
    set_ip(cpu, ip, osz);
}
