/* Interrupt and exception delivery: the real-mode IVT, 32-bit protected
 * mode IDT gates (with the TSS stack switch) and long mode gates (RSP0-2,
 * IST). SDM vol. 3, chapter 6. */
#include "accel/emu/exec.h"

static void deliver_real(struct x86_cpu *cpu, int vec)
{
    if ((uint32_t)vec * 4 + 3 > cpu->idt_limit)
        x86_gp0(cpu);
    uint32_t ent = (uint32_t)x86_read(cpu, cpu->idt_base + (uint32_t)vec * 4, 4);
    x86_push(cpu, x86_get_flags(cpu) & 0xffff, 2);
    x86_push(cpu, cpu->seg[X86_CS].sel, 2);
    x86_push(cpu, cpu->rip, 2);
    cpu->rflags &= ~(uint64_t)(X86_IF | X86_TF | X86_AC | X86_RF);
    cpu->seg[X86_CS].sel = (uint16_t)(ent >> 16);
    cpu->seg[X86_CS].base = (uint64_t)(ent >> 16) << 4;
    cpu->rip = ent & 0xffff;
    x86_update_mode(cpu);
}

/* Stack writes at the new privilege level: supervisor accesses. */
struct frame {
    uint64_t sp, base;     /* offset and segment base */
    unsigned width;        /* 2, 4, 8 */
    bool wrap32, wrap16;
};

static void frame_push(struct x86_cpu *cpu, struct frame *f, uint64_t v)
{
    f->sp -= f->width;
    if (f->wrap16)
        f->sp = (uint16_t)f->sp;
    else if (f->wrap32)
        f->sp = (uint32_t)f->sp;
    uint64_t la = f->base + f->sp;
    if (f->wrap32 || f->wrap16)
        la = (uint32_t)la;
    x86_sys_write(cpu, la, v, f->width);
}

static void deliver_long(struct x86_cpu *cpu, int vec, bool has_err, uint32_t err, int kind)
{
    uint32_t ext = kind != X86_INT_SOFT;
    if ((uint32_t)vec * 16 + 15 > cpu->idt_limit)
        x86_raise(cpu, X86_EXC_GP, (uint32_t)vec * 8 + 2 + ext);
    uint64_t lo = x86_sys_read(cpu, cpu->idt_base + (uint64_t)vec * 16, 8);
    uint64_t hi = x86_sys_read(cpu, cpu->idt_base + (uint64_t)vec * 16 + 8, 8);
    unsigned type = (lo >> 40) & 15, gdpl = (lo >> 45) & 3, ist = (lo >> 32) & 7;
    if (type != 0xe && type != 0xf)
        x86_raise(cpu, X86_EXC_GP, (uint32_t)vec * 8 + 2 + ext);
    if (kind == X86_INT_SOFT && gdpl < cpu->cpl)
        x86_raise(cpu, X86_EXC_GP, (uint32_t)vec * 8 + 2);
    if (!((lo >> 47) & 1))
        x86_raise(cpu, X86_EXC_NP, (uint32_t)vec * 8 + 2 + ext);
    uint16_t sel = (uint16_t)(lo >> 16);
    uint64_t target = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ull) | (hi << 32);
    if ((sel & ~3u) == 0)
        x86_raise(cpu, X86_EXC_GP, ext);
    uint64_t d = x86_read_desc(cpu, sel, X86_EXC_GP);
    unsigned dpl = (d >> 45) & 3;
    if (!((d >> 44) & 1) || !((d >> 43) & 1) || !((d >> 53) & 1) || dpl > cpu->cpl)
        x86_raise(cpu, X86_EXC_GP, (sel & 0xfffc) + ext);
    if (!((d >> 47) & 1))
        x86_raise(cpu, X86_EXC_NP, (sel & 0xfffc) + ext);
    if ((d >> 42) & 1)
        dpl = cpu->cpl;                       /* conforming: stay */

    uint64_t old_rsp = cpu->gpr[X86_RSP];
    uint16_t old_ss = cpu->seg[X86_SS].sel, old_cs = cpu->seg[X86_CS].sel;
    uint64_t rsp = old_rsp;
    uint64_t tss = cpu->seg[X86_TR].base;
    if (ist)
        rsp = x86_sys_read(cpu, tss + 0x24 + 8 * (ist - 1), 8);
    else if (dpl < cpu->cpl)
        rsp = x86_sys_read(cpu, tss + 4 + 8 * dpl, 8);
    struct frame f = { rsp & ~15ull, 0, 8, false, false };
    uint64_t fl = x86_get_flags(cpu);
    frame_push(cpu, &f, old_ss);
    frame_push(cpu, &f, old_rsp);
    frame_push(cpu, &f, fl);
    frame_push(cpu, &f, old_cs);
    frame_push(cpu, &f, cpu->rip);
    if (has_err)
        frame_push(cpu, &f, err);

    if (dpl < cpu->cpl) {
        cpu->seg[X86_SS] = (struct x86_seg){ (uint16_t)dpl, 0, 0, (uint16_t)(0x4093 | (dpl << 5)) };
    }
    x86_desc_to_seg(&cpu->seg[X86_CS], (uint16_t)((sel & ~3u) | dpl), d);
    cpu->cpl = dpl;
    cpu->gpr[X86_RSP] = f.sp;
    cpu->rflags = fl & ~(uint64_t)(X86_TF | X86_NT | X86_RF | X86_VM | (type == 0xe ? X86_IF : 0));
    cpu->rip = target;
    x86_update_mode(cpu);
}

static void deliver_prot(struct x86_cpu *cpu, int vec, bool has_err, uint32_t err, int kind)
{
    uint32_t ext = kind != X86_INT_SOFT;
    if ((uint32_t)vec * 8 + 7 > cpu->idt_limit)
        x86_raise(cpu, X86_EXC_GP, (uint32_t)vec * 8 + 2 + ext);
    uint64_t g = x86_sys_read(cpu, cpu->idt_base + (uint64_t)vec * 8, 8);
    unsigned type = (g >> 40) & 15, gdpl = (g >> 45) & 3;
    if (type == 5) {
        x86_log(cpu, X86_LOG_UNIMP, "task gate for vector %d not supported", vec);
        x86_raise(cpu, X86_EXC_GP, (uint32_t)vec * 8 + 2 + ext);
    }
    if (type != 6 && type != 7 && type != 0xe && type != 0xf)
        x86_raise(cpu, X86_EXC_GP, (uint32_t)vec * 8 + 2 + ext);
    if (kind == X86_INT_SOFT && gdpl < cpu->cpl)
        x86_raise(cpu, X86_EXC_GP, (uint32_t)vec * 8 + 2);
    if (!((g >> 47) & 1))
        x86_raise(cpu, X86_EXC_NP, (uint32_t)vec * 8 + 2 + ext);
    uint16_t sel = (uint16_t)(g >> 16);
    uint32_t target = (uint32_t)((g & 0xffff) | ((g >> 32) & 0xffff0000ull));
    unsigned width = (type & 8) ? 4 : 2;
    if (width == 2)
        target &= 0xffff;
    if ((sel & ~3u) == 0)
        x86_raise(cpu, X86_EXC_GP, ext);
    uint64_t d = x86_read_desc(cpu, sel, X86_EXC_GP);
    unsigned dpl = (d >> 45) & 3;
    if (!((d >> 44) & 1) || !((d >> 43) & 1) || dpl > cpu->cpl)
        x86_raise(cpu, X86_EXC_GP, (sel & 0xfffc) + ext);
    if (!((d >> 47) & 1))
        x86_raise(cpu, X86_EXC_NP, (sel & 0xfffc) + ext);
    if ((d >> 42) & 1)
        dpl = cpu->cpl;

    uint64_t fl = x86_get_flags(cpu);
    uint16_t old_ss = cpu->seg[X86_SS].sel, old_cs = cpu->seg[X86_CS].sel;
    uint64_t old_esp = cpu->gpr[X86_RSP];
    struct x86_seg new_ss = cpu->seg[X86_SS];
    struct frame f;
    bool outer = dpl < cpu->cpl;
    if (outer) {
        uint64_t tss = cpu->seg[X86_TR].base;
        bool tss32 = (cpu->seg[X86_TR].attr & 0xf) >= 9;
        uint64_t esp;
        uint16_t ss;
        if (tss32) {
            esp = x86_sys_read(cpu, tss + 4 + 8 * dpl, 4);
            ss = (uint16_t)x86_sys_read(cpu, tss + 8 + 8 * dpl, 2);
        } else {
            esp = x86_sys_read(cpu, tss + 2 + 4 * dpl, 2);
            ss = (uint16_t)x86_sys_read(cpu, tss + 4 + 4 * dpl, 2);
        }
        if ((ss & ~3u) == 0)
            x86_raise(cpu, X86_EXC_TS, ext);
        uint64_t sd = x86_read_desc(cpu, ss, X86_EXC_TS);
        if ((ss & 3) != dpl || ((sd >> 45) & 3) != dpl || ((sd >> 43) & 1) || !((sd >> 41) & 1))
            x86_raise(cpu, X86_EXC_TS, (ss & 0xfffc) + ext);
        if (!((sd >> 47) & 1))
            x86_raise(cpu, X86_EXC_SS, (ss & 0xfffc) + ext);
        x86_desc_to_seg(&new_ss, ss, sd);
        bool big = new_ss.attr & 0x4000;
        f = (struct frame){ esp, new_ss.base, width, big, !big };
        frame_push(cpu, &f, old_ss);
        frame_push(cpu, &f, old_esp);
    } else {
        f = (struct frame){ cpu->gpr[X86_RSP], cpu->seg[X86_SS].base, width, cpu->stack32, !cpu->stack32 };
    }
    frame_push(cpu, &f, fl);
    frame_push(cpu, &f, old_cs);
    frame_push(cpu, &f, cpu->rip);
    if (has_err)
        frame_push(cpu, &f, err);

    if (outer)
        cpu->seg[X86_SS] = new_ss;
    x86_desc_to_seg(&cpu->seg[X86_CS], (uint16_t)((sel & ~3u) | dpl), d);
    cpu->cpl = dpl;
    if (new_ss.attr & 0x4000)
        cpu->gpr[X86_RSP] = (uint32_t)f.sp;
    else
        cpu->gpr[X86_RSP] = (cpu->gpr[X86_RSP] & ~0xffffull) | (uint16_t)f.sp;
    cpu->rflags = fl & ~(uint64_t)(X86_TF | X86_NT | X86_RF | X86_VM | ((type & 1) ? 0 : X86_IF));
    cpu->rip = target;
    x86_update_mode(cpu);
}

void x86_interrupt(struct x86_cpu *cpu, int vec, bool has_err, uint32_t err, int kind)
{
    cpu->block_end = true;
    if (!(cpu->cr0 & X86_CR0_PE)) {
        deliver_real(cpu, vec);
        return;
    }
    if (cpu->rflags & X86_VM) {
        x86_log(cpu, X86_LOG_UNIMP, "interrupt %d in virtual-8086 mode not supported", vec);
        x86_gp0(cpu);
    }
    if (cpu->efer & X86_EFER_LMA)
        deliver_long(cpu, vec, has_err, err, kind);
    else
        deliver_prot(cpu, vec, has_err, err, kind);
}
