/* System instructions: segment register moves, flags with privilege
 * (PUSHF/POPF/CLI/STI), descriptor tables (0F 00, 0F 01), control and
 * debug registers, MSRs, CPUID, RDTSC(P), SYSCALL/SYSRET, SWAPGS, XGETBV/
 * XSETBV, and the small 0F opcodes Linux executes (CLTS, WBINVD, UD2). */
#include "accel/emu/exec.h"
#include "accel/emu/mmu.h"

static void need_cpl0(struct x86_cpu *cpu)
{
    if (cpu->cpl != 0)
        x86_gp0(cpu);
}

static void need_prot(struct x86_cpu *cpu)
{
    if (!x86_protected(cpu))
        x86_ud(cpu);
}

/* ---- segment registers -------------------------------------------------- */

static void op_mov_rm_sreg(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned s = (in->modrm >> 3) & 7;
    if (s > X86_GS)
        x86_ud(cpu);
    uint16_t sel = cpu->seg[s].sel;
    if (in->mod == 3)
        x86_set_reg(cpu, in, in->rm, in->osz, sel);
    else
        x86_write(cpu, x86_ea(cpu, in), sel, 2);
}

static void op_mov_sreg_rm(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned s = (in->modrm >> 3) & 7;
    if (s > X86_GS || s == X86_CS)
        x86_ud(cpu);
    x86_load_seg(cpu, (int)s, (uint16_t)x86_get_rm(cpu, in, 2));
    cpu->block_end = true;
}

static int sreg_of(const struct x86_insn *in)
{
    if (in->map == X86_MAP_0F)
        return in->op < 0xa8 ? X86_FS : X86_GS;
    return in->op >> 3;    /* 06 ES, 0E CS, 16 SS, 1E DS */
}

static void op_push_sreg(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_push(cpu, cpu->seg[sreg_of(in)].sel, in->osz);
}

static void op_pop_sreg(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint64_t old = cpu->gpr[X86_RSP];
    uint16_t sel = (uint16_t)x86_pop(cpu, in->osz);
    uint64_t after = cpu->gpr[X86_RSP];
    cpu->gpr[X86_RSP] = old;            /* a faulting load leaves RSP alone */
    x86_load_seg(cpu, sreg_of(in), sel);
    cpu->gpr[X86_RSP] = after;
    cpu->block_end = true;
}

/* LES/LDS (C4/C5 outside 64-bit mode), LSS/LFS/LGS (0F B2/B4/B5) */
static void op_load_far(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (in->mod == 3)
        x86_ud(cpu);
    int s = in->map == X86_MAP_1B ? (in->op == 0xc4 ? X86_ES : X86_DS)
          : in->op == 0xb2 ? X86_SS : in->op == 0xb4 ? X86_FS : X86_GS;
    uint64_t la = x86_ea(cpu, in);
    uint64_t off = x86_read(cpu, la, in->osz);
    uint16_t sel = (uint16_t)x86_read(cpu, la + in->osz, 2);
    x86_load_seg(cpu, s, sel);
    x86_set_reg(cpu, in, in->reg, in->osz, off);
    cpu->block_end = true;
}

/* ---- flags ------------------------------------------------------------------ */

static void op_pushf(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if ((cpu->rflags & X86_VM) && ((cpu->rflags >> 12) & 3) < 3)
        x86_gp0(cpu);
    x86_push(cpu, x86_get_flags(cpu) & ~(uint64_t)(X86_VM | X86_RF), in->osz);
}

static void op_popf(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if ((cpu->rflags & X86_VM) && ((cpu->rflags >> 12) & 3) < 3)
        x86_gp0(cpu);
    uint64_t v = x86_pop(cpu, in->osz);
    x86_set_flags(cpu, v, x86_flags_writable(cpu, in->osz));
    cpu->block_end = true;
}

static void op_cli(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (x86_protected(cpu) && cpu->cpl > ((cpu->rflags >> 12) & 3))
        x86_gp0(cpu);
    cpu->rflags &= ~(uint64_t)X86_IF;
}

static void op_sti(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (x86_protected(cpu) && cpu->cpl > ((cpu->rflags >> 12) & 3))
        x86_gp0(cpu);
    if (!(cpu->rflags & X86_IF))
        cpu->intr_shadow = true;
    cpu->rflags |= X86_IF;
    cpu->block_end = true;
}

/* ---- descriptor tables ---------------------------------------------------------- */

/* Base of a system descriptor (LDT, TSS): 16 bytes in long mode. */
static void load_system_seg(struct x86_cpu *cpu, int sreg, uint16_t sel, unsigned want_type)
{
    if ((sel & ~3u) == 0) {
        if (sreg == X86_TR)
            x86_gp0(cpu);
        cpu->seg[sreg] = (struct x86_seg){ sel, 0, 0, 0 };
        return;
    }
    if (sel & 4)
        x86_raise(cpu, X86_EXC_GP, sel & 0xfffc);
    uint64_t d = x86_read_desc(cpu, sel, X86_EXC_GP);
    unsigned type = (d >> 40) & 15;
    bool ok = sreg == X86_LDTR ? type == 2 : (type == 9 || type == 1);
    if (((d >> 44) & 1) || !ok)
        x86_raise(cpu, X86_EXC_GP, sel & 0xfffc);
    if (!((d >> 47) & 1))
        x86_raise(cpu, X86_EXC_NP, sel & 0xfffc);
    struct x86_seg s;
    x86_desc_to_seg(&s, sel, d);
    if (cpu->efer & X86_EFER_LMA) {
        uint64_t hi = x86_sys_read(cpu, cpu->gdt_base + (sel & ~7u) + 8, 8);
        s.base |= (hi & 0xffffffffull) << 32;
    }
    if (sreg == X86_TR) {   /* mark busy */
        x86_sys_write(cpu, cpu->gdt_base + (sel & ~7u) + 5, (uint8_t)((d >> 40) | 2), 1);
        s.attr |= 2;
    }
    (void)want_type;
    cpu->seg[sreg] = s;
}

static void op_grp6(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned r = (in->modrm >> 3) & 7;
    need_prot(cpu);
    switch (r) {
    case 0:   /* SLDT */
    case 1:   /* STR */
        if (in->mod == 3)
            x86_set_reg(cpu, in, in->rm, in->osz, cpu->seg[r == 0 ? X86_LDTR : X86_TR].sel);
        else
            x86_write(cpu, x86_ea(cpu, in), cpu->seg[r == 0 ? X86_LDTR : X86_TR].sel, 2);
        return;
    case 2:   /* LLDT */
        need_cpl0(cpu);
        load_system_seg(cpu, X86_LDTR, (uint16_t)x86_get_rm(cpu, in, 2), 2);
        cpu->segbase[6] = cpu->seg[X86_LDTR].base;
        return;
    case 3:   /* LTR */
        need_cpl0(cpu);
        load_system_seg(cpu, X86_TR, (uint16_t)x86_get_rm(cpu, in, 2), 9);
        return;
    case 4: case 5: {   /* VERR / VERW */
        uint16_t sel = (uint16_t)x86_get_rm(cpu, in, 2);
        bool ok = false;
        if ((sel & ~3u) && (uint32_t)(sel & ~7u) + 7 <= ((sel & 4) ? cpu->seg[X86_LDTR].limit : cpu->gdt_limit)) {
            uint64_t d = x86_read_desc(cpu, sel, X86_EXC_GP);
            unsigned dpl = (d >> 45) & 3, type = (d >> 40) & 15;
            bool code = type & 8;
            if ((d >> 44) & 1) {
                ok = r == 4 ? (!code || (type & 2)) : (!code && (type & 2));
                if (!(code && (type & 4)) && (dpl < cpu->cpl || dpl < (sel & 3u)))
                    ok = false;
            }
        }
        x86_set_flags(cpu, ok ? X86_ZF : 0, X86_ZF);
        return;
    }
    default:
        x86_unimp(cpu, in);
    }
}

/* LAR / LSL */
static void op_lar_lsl(struct x86_cpu *cpu, const struct x86_insn *in)
{
    need_prot(cpu);
    uint16_t sel = (uint16_t)x86_get_rm(cpu, in, 2);
    bool ok = false;
    uint64_t d = 0;
    if ((sel & ~3u) && (uint32_t)(sel & ~7u) + 7 <= ((sel & 4) ? cpu->seg[X86_LDTR].limit : cpu->gdt_limit)) {
        d = x86_read_desc(cpu, sel, X86_EXC_GP);
        unsigned dpl = (d >> 45) & 3, type = (d >> 40) & 15;
        if ((d >> 44) & 1)
            ok = ((type & 0xc) == 0xc) || (dpl >= cpu->cpl && dpl >= (sel & 3u));
        else
            ok = (type == 1 || type == 2 || type == 3 || type == 9 || type == 11 ||
                  (in->op == 0x02 && (type == 4 || type == 5 || type == 12))) &&
                 dpl >= cpu->cpl && dpl >= (sel & 3u);
    }
    x86_set_flags(cpu, ok ? X86_ZF : 0, X86_ZF);
    if (!ok)
        return;
    if (in->op == 0x02) {
        x86_set_reg(cpu, in, in->reg, in->osz, (d >> 32) & 0x00f0ff00);
    } else {
        struct x86_seg s;
        x86_desc_to_seg(&s, sel, d);
        x86_set_reg(cpu, in, in->reg, in->osz, s.limit);
    }
}

static void op_grp7(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned r = (in->modrm >> 3) & 7;
    if (in->mod == 3) {
        unsigned rm = in->modrm & 7;
        switch (r * 8 + rm) {
        case 2 * 8 + 0:   /* XGETBV */
            if (!(cpu->cr4 & X86_CR4_OSXSAVE))
                x86_ud(cpu);
            if ((uint32_t)cpu->gpr[X86_RCX] != 0)
                x86_gp0(cpu);
            cpu->gpr[X86_RAX] = (uint32_t)cpu->fpu.xcr0;
            cpu->gpr[X86_RDX] = cpu->fpu.xcr0 >> 32;
            return;
        case 2 * 8 + 1: { /* XSETBV */
            if (!(cpu->cr4 & X86_CR4_OSXSAVE))
                x86_ud(cpu);
            need_cpl0(cpu);
            uint64_t v = ((uint64_t)(uint32_t)cpu->gpr[X86_RDX] << 32) | (uint32_t)cpu->gpr[X86_RAX];
            if ((uint32_t)cpu->gpr[X86_RCX] != 0 || !(v & 1) || (v & ~(uint64_t)XFEATURE_SUPPORTED))
                x86_gp0(cpu);
            cpu->fpu.xcr0 = v;
            return;
        }
        case 7 * 8 + 0:   /* SWAPGS */
            if (!cpu->code64)
                x86_ud(cpu);
            need_cpl0(cpu);
            {
                uint64_t t = cpu->seg[X86_GS].base;
                cpu->seg[X86_GS].base = cpu->kernel_gs_base;
                cpu->segbase[X86_GS] = cpu->kernel_gs_base;
                cpu->kernel_gs_base = t;
            }
            return;
        case 7 * 8 + 1: { /* RDTSCP */
            if ((cpu->cr4 & 4) && cpu->cpl)
                x86_gp0(cpu);
            uint64_t t = x86_rdtsc(cpu);
            cpu->gpr[X86_RAX] = (uint32_t)t;
            cpu->gpr[X86_RDX] = t >> 32;
            cpu->gpr[X86_RCX] = (uint32_t)cpu->tsc_aux;
            return;
        }
        }
        if (r == 4) {      /* SMSW r */
            x86_set_reg(cpu, in, in->rm, in->osz, cpu->cr0);
            return;
        }
        if (r == 6)
            goto lmsw;
        x86_unimp(cpu, in);
    }
    uint64_t la = x86_ea(cpu, in);
    switch (r) {
    case 0: case 1: { /* SGDT / SIDT */
        bool idt = r == 1;
        x86_write(cpu, la, idt ? cpu->idt_limit : cpu->gdt_limit, 2);
        uint64_t base = idt ? cpu->idt_base : cpu->gdt_base;
        if (cpu->code64)
            x86_write(cpu, la + 2, base, 8);
        else
            x86_write(cpu, la + 2, (uint32_t)base, 4);
        return;
    }
    case 2: case 3: { /* LGDT / LIDT */
        need_cpl0(cpu);
        uint16_t limit = (uint16_t)x86_read(cpu, la, 2);
        uint64_t base = cpu->code64 ? x86_read(cpu, la + 2, 8) : x86_read(cpu, la + 2, 4);
        if (!cpu->code64 && in->osz == 2)
            base &= 0xffffff;
        if (r == 2) {
            cpu->gdt_base = base;
            cpu->gdt_limit = limit;
        } else {
            cpu->idt_base = base;
            cpu->idt_limit = limit;
        }
        return;
    }
    case 4:   /* SMSW m16 */
        x86_write(cpu, la, (uint16_t)cpu->cr0, 2);
        return;
    case 6:
    lmsw: {
        need_cpl0(cpu);
        uint64_t v = x86_get_rm(cpu, in, 2) & 0xf;
        uint64_t cr0 = (cpu->cr0 & ~0xeull) | v | (cpu->cr0 & 1);
        x86_set_cr(cpu, 0, cr0);
        return;
    }
    case 7:   /* INVLPG */
        need_cpl0(cpu);
        x86_tlb_flush_page(cpu, la);
        cpu->block_end = true;
        return;
    default:
        x86_unimp(cpu, in);
    }
}

/* ---- control and debug registers ------------------------------------------------ */

#define CR4_OK (0x1ull | 0x2ull | 0x4ull | 0x8ull | X86_CR4_PSE | X86_CR4_PAE | 0x40ull | X86_CR4_PGE | \
                0x100ull | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT | X86_CR4_OSXSAVE)

void x86_set_cr(struct x86_cpu *cpu, int n, uint64_t v)
{
    switch (n) {
    case 0: {
        v |= X86_CR0_ET;
        if (v >> 32)
            x86_gp0(cpu);
        if ((v & X86_CR0_PG) && !(v & X86_CR0_PE))
            x86_gp0(cpu);
        if ((v & X86_CR0_NW) && !(v & X86_CR0_CD))
            x86_gp0(cpu);
        bool pg_on = (v & X86_CR0_PG) && !(cpu->cr0 & X86_CR0_PG);
        bool pg_off = !(v & X86_CR0_PG) && (cpu->cr0 & X86_CR0_PG);
        if (pg_on && (cpu->efer & X86_EFER_LME)) {
            if (!(cpu->cr4 & X86_CR4_PAE))
                x86_gp0(cpu);
            cpu->efer |= X86_EFER_LMA;
        }
        if (pg_off && (cpu->efer & X86_EFER_LMA)) {
            if (cpu->code64)
                x86_gp0(cpu);
            cpu->efer &= ~(uint64_t)X86_EFER_LMA;
        }
        if ((v ^ cpu->cr0) & (X86_CR0_PG | X86_CR0_WP | X86_CR0_PE))
            x86_tlb_flush(cpu);
        if ((v ^ cpu->cr0) & X86_CR0_PE) {
            /* CPL follows the mode; CS keeps its cached attributes */
            cpu->cpl = (v & X86_CR0_PE) ? (cpu->seg[X86_CS].sel & 3) : 0;
        }
        cpu->cr0 = v;
        break;
    }
    case 2:
        cpu->cr2 = v;
        return;
    case 3:
        cpu->cr3 = v & ~0xfe7ull & ((1ull << 52) - 1);
        cpu->cr3 = v & 0x000ffffffffff018ull;
        x86_tlb_flush_local(cpu);
        break;
    case 4:
        if (v & ~CR4_OK)
            x86_gp0(cpu);
        if ((cpu->efer & X86_EFER_LMA) && !(v & X86_CR4_PAE))
            x86_gp0(cpu);
        if ((v ^ cpu->cr4) & (X86_CR4_PSE | X86_CR4_PAE | X86_CR4_PGE))
            x86_tlb_flush(cpu);
        cpu->cr4 = v;
        break;
    case 8:
        if (v & ~0xfull)
            x86_gp0(cpu);
        cpu->cr8 = (uint8_t)v;
        if (cpu->bus.set_cr8)
            cpu->bus.set_cr8(cpu->bus.opaque, (uint8_t)v);
        cpu->block_end = true;
        return;
    default:
        x86_ud(cpu);
    }
    x86_update_mode(cpu);
}

static uint64_t get_cr(struct x86_cpu *cpu, int n)
{
    switch (n) {
    case 0: return cpu->cr0;
    case 2: return cpu->cr2;
    case 3: return cpu->cr3;
    case 4: return cpu->cr4;
    case 8: return cpu->bus.get_cr8 ? cpu->bus.get_cr8(cpu->bus.opaque) : cpu->cr8;
    default: x86_ud(cpu);
    }
}

static void op_mov_cr(struct x86_cpu *cpu, const struct x86_insn *in)
{
    need_cpl0(cpu);
    int n = in->reg;
    unsigned size = cpu->code64 ? 8 : 4;
    if (in->op == 0x20)
        x86_set_reg(cpu, in, in->rm, size, get_cr(cpu, n));
    else
        x86_set_cr(cpu, n, x86_get_reg(cpu, in, in->rm, size));
}

static void op_mov_dr(struct x86_cpu *cpu, const struct x86_insn *in)
{
    need_cpl0(cpu);
    int n = in->reg & 7;
    if (n == 4 || n == 5)
        n += 2;
    unsigned size = cpu->code64 ? 8 : 4;
    if (in->op == 0x21) {
        x86_set_reg(cpu, in, in->rm, size, cpu->dr[n]);
    } else {
        uint64_t v = x86_get_reg(cpu, in, in->rm, size);
        if (n == 6)
            v = (v & 0xe00f) | 0xffff0ff0;
        else if (n == 7)
            v = (v & ~0xd800ull) | 0x400;
        cpu->dr[n] = v;
        if (n == 7 && (v & 0xff))
            x86_log(cpu, X86_LOG_UNIMP, "hardware breakpoints (DR7=%#llx) are ignored",
                    (unsigned long long)v);
    }
}

static void op_clts(struct x86_cpu *cpu, const struct x86_insn *in)
{
    need_cpl0(cpu);
    cpu->cr0 &= ~(uint64_t)X86_CR0_TS;
}

static void op_wbinvd(struct x86_cpu *cpu, const struct x86_insn *in)
{
    need_cpl0(cpu);
}

static void op_ud(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_ud(cpu);
}

/* ---- MSRs, CPUID, TSC ----------------------------------------------------------------- */

static void op_rdmsr(struct x86_cpu *cpu, const struct x86_insn *in)
{
    need_cpl0(cpu);
    uint64_t v;
    if (x86_rdmsr(cpu, (uint32_t)cpu->gpr[X86_RCX], &v) != 0)
        x86_gp0(cpu);
    cpu->gpr[X86_RAX] = (uint32_t)v;
    cpu->gpr[X86_RDX] = v >> 32;
}

static void op_wrmsr(struct x86_cpu *cpu, const struct x86_insn *in)
{
    need_cpl0(cpu);
    uint64_t v = ((uint64_t)(uint32_t)cpu->gpr[X86_RDX] << 32) | (uint32_t)cpu->gpr[X86_RAX];
    if (x86_wrmsr(cpu, (uint32_t)cpu->gpr[X86_RCX], v) != 0)
        x86_gp0(cpu);
    cpu->block_end = true;
}

static void op_rdtsc(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if ((cpu->cr4 & 4) && cpu->cpl)      /* CR4.TSD */
        x86_gp0(cpu);
    uint64_t t = x86_rdtsc(cpu);
    cpu->gpr[X86_RAX] = (uint32_t)t;
    cpu->gpr[X86_RDX] = t >> 32;
}

static void op_rdpmc(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_gp0(cpu);
}

static void op_cpuid(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint32_t r[4];
    x86_cpuid(cpu, (uint32_t)cpu->gpr[X86_RAX], (uint32_t)cpu->gpr[X86_RCX], r);
    cpu->gpr[X86_RAX] = r[0];
    cpu->gpr[X86_RBX] = r[1];
    cpu->gpr[X86_RCX] = r[2];
    cpu->gpr[X86_RDX] = r[3];
}

/* ---- SYSCALL / SYSRET ---------------------------------------------------------------------- */

static void op_syscall(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (!(cpu->efer & X86_EFER_SCE) || !x86_protected(cpu))
        x86_ud(cpu);
    uint16_t sel = (uint16_t)(cpu->star >> 32) & 0xfffc;
    uint64_t fl = x86_get_flags(cpu);
    if (cpu->efer & X86_EFER_LMA) {
        cpu->gpr[X86_RCX] = cpu->rip;
        cpu->gpr[11] = fl & ~(uint64_t)X86_RF;
        cpu->rip = cpu->code64 ? cpu->lstar : cpu->cstar;
        cpu->rflags = fl & ~(cpu->sfmask | X86_RF);
        cpu->seg[X86_CS] = (struct x86_seg){ sel, 0, 0xffffffff, 0xa09b };
    } else {
        cpu->gpr[X86_RCX] = (uint32_t)cpu->rip;
        cpu->rip = (uint32_t)cpu->star;
        cpu->rflags = fl & ~(uint64_t)(X86_VM | X86_IF | X86_RF);
        cpu->seg[X86_CS] = (struct x86_seg){ sel, 0, 0xffffffff, 0xc09b };
    }
    cpu->seg[X86_SS] = (struct x86_seg){ (uint16_t)(sel + 8), 0, 0xffffffff, 0xc093 };
    cpu->cpl = 0;
    x86_update_mode(cpu);
}

static void op_sysret(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if (!(cpu->efer & X86_EFER_SCE) || !x86_protected(cpu))
        x86_ud(cpu);
    need_cpl0(cpu);
    uint16_t sel = (uint16_t)(cpu->star >> 48);
    if (cpu->efer & X86_EFER_LMA) {
        if (in->osz == 8) {
            uint64_t rcx = cpu->gpr[X86_RCX];
            if ((uint64_t)((int64_t)(rcx << 16) >> 16) != rcx)
                x86_gp0(cpu);
            cpu->seg[X86_CS] = (struct x86_seg){ (uint16_t)((sel + 16) | 3), 0, 0xffffffff, 0xa0fb };
            cpu->rip = rcx;
        } else {
            cpu->seg[X86_CS] = (struct x86_seg){ (uint16_t)(sel | 3), 0, 0xffffffff, 0xc0fb };
            cpu->rip = (uint32_t)cpu->gpr[X86_RCX];
        }
        x86_set_flags(cpu, (cpu->gpr[11] & 0x3c7fd7) | 2, ~0ull);
    } else {
        cpu->seg[X86_CS] = (struct x86_seg){ (uint16_t)(sel | 3), 0, 0xffffffff, 0xc0fb };
        cpu->rip = (uint32_t)cpu->gpr[X86_RCX];
        cpu->rflags |= X86_IF;
    }
    cpu->seg[X86_SS].sel = (uint16_t)((sel + 8) | 3);
    cpu->seg[X86_SS].attr = 0xc0f3;
    cpu->seg[X86_SS].base = 0;
    cpu->seg[X86_SS].limit = 0xffffffff;
    cpu->cpl = 3;
    x86_update_mode(cpu);
}

/* ---- group 9, fences fallback ---------------------------------------------------------- */

static void op_grp9(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned r = (in->modrm >> 3) & 7;
    if (r == 1 && in->mod != 3) {
        x86_cmpxchg8b(cpu, in);
        return;
    }
    x86_unimp(cpu, in);
}

/* 0F AE when the SIMD files have not registered it: fences and CLFLUSH. */
static void op_grp15_min(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned r = (in->modrm >> 3) & 7;
    if (in->mod == 3 && r >= 5) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        return;
    }
    if (in->mod != 3 && r == 7) {
        x86_read8(cpu, x86_ea(cpu, in));
        return;
    }
    x86_unimp(cpu, in);
}

static void op_fwait(struct x86_cpu *cpu, const struct x86_insn *in)
{
    if ((cpu->cr0 & (X86_CR0_MP | X86_CR0_TS)) == (X86_CR0_MP | X86_CR0_TS))
        x86_raise_noerr(cpu, X86_EXC_NM);
}

void x86_sys_register(struct x86_op_table *t)
{
    x86_op_set(t, X86_MAP_1B, 0, 0x06, op_push_sreg);
    x86_op_set(t, X86_MAP_1B, 0, 0x0e, op_push_sreg);
    x86_op_set(t, X86_MAP_1B, 0, 0x16, op_push_sreg);
    x86_op_set(t, X86_MAP_1B, 0, 0x1e, op_push_sreg);
    x86_op_set(t, X86_MAP_1B, 0, 0x07, op_pop_sreg);
    x86_op_set(t, X86_MAP_1B, 0, 0x17, op_pop_sreg);
    x86_op_set(t, X86_MAP_1B, 0, 0x1f, op_pop_sreg);
    x86_op_set(t, X86_MAP_1B, 0, 0x8c, op_mov_rm_sreg);
    x86_op_set(t, X86_MAP_1B, 0, 0x8e, op_mov_sreg_rm);
    x86_op_set(t, X86_MAP_1B, 0, 0x9b, op_fwait);
    x86_op_set(t, X86_MAP_1B, 0, 0x9c, op_pushf);
    x86_op_set(t, X86_MAP_1B, 0, 0x9d, op_popf);
    x86_op_set(t, X86_MAP_1B, 0, 0xc4, op_load_far);
    x86_op_set(t, X86_MAP_1B, 0, 0xc5, op_load_far);
    x86_op_set(t, X86_MAP_1B, 0, 0xfa, op_cli);
    x86_op_set(t, X86_MAP_1B, 0, 0xfb, op_sti);
    x86_op_set(t, X86_MAP_0F, 0, 0x00, op_grp6);
    x86_op_set(t, X86_MAP_0F, 0, 0x01, op_grp7);
    x86_op_set(t, X86_MAP_0F, 0, 0x02, op_lar_lsl);
    x86_op_set(t, X86_MAP_0F, 0, 0x03, op_lar_lsl);
    x86_op_set(t, X86_MAP_0F, 0, 0x05, op_syscall);
    x86_op_set(t, X86_MAP_0F, 0, 0x06, op_clts);
    x86_op_set(t, X86_MAP_0F, 0, 0x07, op_sysret);
    x86_op_set(t, X86_MAP_0F, 0, 0x08, op_wbinvd);
    x86_op_set(t, X86_MAP_0F, 0, 0x09, op_wbinvd);
    x86_op_set(t, X86_MAP_0F, 0, 0x0b, op_ud);
    x86_op_set(t, X86_MAP_0F, 0, 0xb9, op_ud);
    x86_op_set(t, X86_MAP_0F, 0, 0xff, op_ud);
    x86_op_set(t, X86_MAP_0F, 0, 0x20, op_mov_cr);
    x86_op_set(t, X86_MAP_0F, 0, 0x22, op_mov_cr);
    x86_op_set(t, X86_MAP_0F, 0, 0x21, op_mov_dr);
    x86_op_set(t, X86_MAP_0F, 0, 0x23, op_mov_dr);
    x86_op_set(t, X86_MAP_0F, 0, 0x30, op_wrmsr);
    x86_op_set(t, X86_MAP_0F, 0, 0x31, op_rdtsc);
    x86_op_set(t, X86_MAP_0F, 0, 0x32, op_rdmsr);
    x86_op_set(t, X86_MAP_0F, 0, 0x33, op_rdpmc);
    x86_op_set(t, X86_MAP_0F, 0, 0xa0, op_push_sreg);
    x86_op_set(t, X86_MAP_0F, 0, 0xa8, op_push_sreg);
    x86_op_set(t, X86_MAP_0F, 0, 0xa1, op_pop_sreg);
    x86_op_set(t, X86_MAP_0F, 0, 0xa9, op_pop_sreg);
    x86_op_set(t, X86_MAP_0F, 0, 0xa2, op_cpuid);
    x86_op_set(t, X86_MAP_0F, 0, 0xae, op_grp15_min);
    x86_op_set(t, X86_MAP_0F, 0, 0xb2, op_load_far);
    x86_op_set(t, X86_MAP_0F, 0, 0xb4, op_load_far);
    x86_op_set(t, X86_MAP_0F, 0, 0xb5, op_load_far);
    x86_op_set(t, X86_MAP_0F, 0, 0xc7, op_grp9);
}

void x86_int_register(struct x86_op_table *t)
{
    x86_alu_register(t);
    x86_move_register(t);
    x86_string_register(t);
    x86_flow_register(t);
    x86_sys_register(t);
}
