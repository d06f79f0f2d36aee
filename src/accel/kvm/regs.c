/* struct x86_regs (the board's register snapshot) <-> KVM's regs, sregs,
 * debug registers and MSRs. Segment attributes in x86_regs use the VMX
 * layout: type S DPL P in bits 0-7, AVL L D/B G in bits 12-15. */
#include <string.h>
#include <sys/ioctl.h>
#include "accel/kvm/kvm_int.h"
#include "util/error.h"

enum { MSR_STAR = 0xc0000081, MSR_LSTAR = 0xc0000082, MSR_CSTAR = 0xc0000083,
       MSR_SFMASK = 0xc0000084, MSR_KERNEL_GS_BASE = 0xc0000102, MSR_TSC_AUX = 0xc0000103,
       MSR_PAT = 0x277 };

static void seg_from_kvm(struct x86_seg *s, const struct kvm_segment *k)
{
    s->sel = k->selector;
    s->base = k->base;
    s->limit = k->limit;
    s->attr = (k->type & 15) | k->s << 4 | (k->dpl & 3) << 5 | k->present << 7 |
              k->avl << 12 | k->l << 13 | k->db << 14 | k->g << 15;
}

static void seg_to_kvm(struct kvm_segment *k, const struct x86_seg *s)
{
    memset(k, 0, sizeof(*k));
    k->selector = s->sel;
    k->base = s->base;
    k->limit = s->limit;
    k->type = s->attr & 15;
    k->s = s->attr >> 4 & 1;
    k->dpl = s->attr >> 5 & 3;
    k->present = s->attr >> 7 & 1;
    k->avl = s->attr >> 12 & 1;
    k->l = s->attr >> 13 & 1;
    k->db = s->attr >> 14 & 1;
    k->g = s->attr >> 15 & 1;
    k->unusable = !k->present;
}

/* x86_regs order is RAX RCX RDX RBX RSP RBP RSI RDI R8..R15. */
#define GPRS(k) { &k.rax, &k.rcx, &k.rdx, &k.rbx, &k.rsp, &k.rbp, &k.rsi, &k.rdi, \
                  &k.r8, &k.r9, &k.r10, &k.r11, &k.r12, &k.r13, &k.r14, &k.r15 }

static const uint32_t msr_idx[7] = { MSR_KERNEL_GS_BASE, MSR_STAR, MSR_LSTAR, MSR_CSTAR,
                                     MSR_SFMASK, MSR_TSC_AUX, MSR_PAT };

static uint64_t *msr_field(struct x86_regs *r, int i)
{
    uint64_t *f[7] = { &r->kernel_gs_base, &r->star, &r->lstar, &r->cstar, &r->sfmask,
                       &r->tsc_aux, &r->pat };
    return f[i];
}

struct msr_buf {
    struct kvm_msrs h;
    struct kvm_msr_entry e[7];
};

void kvm_regs_convert(struct x86_regs *r, const struct kvm_regs *kp, const struct kvm_sregs *sp)
{
    struct kvm_regs k = *kp;
    struct kvm_sregs s = *sp;
    memset(r, 0, sizeof(*r));
    __u64 *g[16] = GPRS(k);
    for (int i = 0; i < 16; i++)
        r->gpr[i] = *g[i];
    r->rip = k.rip;
    r->rflags = k.rflags;
    struct x86_seg *ds[8] = { &r->es, &r->cs, &r->ss, &r->ds, &r->fs, &r->gs, &r->ldtr, &r->tr };
    struct kvm_segment *ks[8] = { &s.es, &s.cs, &s.ss, &s.ds, &s.fs, &s.gs, &s.ldt, &s.tr };
    for (int i = 0; i < 8; i++)
        seg_from_kvm(ds[i], ks[i]);
    r->gdt_base = s.gdt.base;
    r->gdt_limit = s.gdt.limit;
    r->idt_base = s.idt.base;
    r->idt_limit = s.idt.limit;
    r->cr0 = s.cr0;
    r->cr2 = s.cr2;
    r->cr3 = s.cr3;
    r->cr4 = s.cr4;
    r->cr8 = s.cr8;
    r->efer = s.efer;
    r->apic_base = s.apic_base;
}

void kvm_regs_get(struct kvm_vcpu *v, struct x86_regs *r)
{
    struct kvm_regs k;
    struct kvm_sregs s;
    if (ioctl(v->fd, KVM_GET_REGS, &k) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
        memset(r, 0, sizeof(*r));
        error_report("KVM: cannot read the registers of vCPU %d", v->index);
        return;
    }
    kvm_regs_convert(r, &k, &s);
    struct msr_buf m = { .h.nmsrs = 7 };
    for (int i = 0; i < 7; i++)
        m.e[i].index = msr_idx[i];
    int n = ioctl(v->fd, KVM_GET_MSRS, &m);
    for (int i = 0; i < n && i < 7; i++)
        *msr_field(r, i) = m.e[i].data;
    struct kvm_debugregs d;
    if (ioctl(v->fd, KVM_GET_DEBUGREGS, &d) == 0) {
        memcpy(r->dr, d.db, sizeof(d.db));
        r->dr[6] = d.dr6;
        r->dr[7] = d.dr7;
    }
}

void kvm_regs_set(struct kvm_vcpu *v, const struct x86_regs *r)
{
    struct kvm_regs k = {0};
    struct kvm_sregs s;
    if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
        memset(&s, 0, sizeof(s));
    __u64 *g[16] = GPRS(k);
    for (int i = 0; i < 16; i++)
        *g[i] = r->gpr[i];
    k.rip = r->rip;
    k.rflags = r->rflags | 2;
    const struct x86_seg *ds[8] = { &r->es, &r->cs, &r->ss, &r->ds, &r->fs, &r->gs, &r->ldtr,
                                    &r->tr };
    struct kvm_segment *ks[8] = { &s.es, &s.cs, &s.ss, &s.ds, &s.fs, &s.gs, &s.ldt, &s.tr };
    for (int i = 0; i < 8; i++)
        seg_to_kvm(ks[i], ds[i]);
    s.gdt.base = r->gdt_base;
    s.gdt.limit = r->gdt_limit;
    s.idt.base = r->idt_base;
    s.idt.limit = r->idt_limit;
    s.cr0 = r->cr0;
    s.cr2 = r->cr2;
    s.cr3 = r->cr3;
    s.cr4 = r->cr4;
    s.cr8 = r->cr8;
    s.efer = r->efer;
    if (r->apic_base)
        s.apic_base = r->apic_base;
    memset(s.interrupt_bitmap, 0, sizeof(s.interrupt_bitmap));
    if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0 || ioctl(v->fd, KVM_SET_REGS, &k) < 0)
        error_report("KVM: cannot set the registers of vCPU %d", v->index);
    struct msr_buf m = { .h.nmsrs = 7 };
    for (int i = 0; i < 7; i++) {
        m.e[i].index = msr_idx[i];
        m.e[i].data = *msr_field((struct x86_regs *)r, i);
    }
    if (!r->pat)
        m.h.nmsrs = 6;                           /* keep KVM's power-on PAT */
    ioctl(v->fd, KVM_SET_MSRS, &m);
}

static struct kvm_segment rseg(uint16_t sel, uint64_t base, uint8_t type)
{
    return (struct kvm_segment){ .selector = sel, .base = base, .limit = 0xffff, .type = type,
                                 .present = 1, .s = 1 };
}

void kvm_regs_reset(struct kvm_vcpu *v)
{
    struct kvm_sregs s;
    if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
        memset(&s, 0, sizeof(s));
    s.cs = rseg(0xf000, 0xffff0000, 0xb);
    s.ds = s.es = s.ss = s.fs = s.gs = rseg(0, 0, 3);
    s.ldt = (struct kvm_segment){ .limit = 0xffff, .type = 2, .present = 1 };
    s.tr = (struct kvm_segment){ .limit = 0xffff, .type = 11, .present = 1 };
    s.gdt.base = s.idt.base = 0;
    s.gdt.limit = s.idt.limit = 0xffff;
    s.cr0 = 0x60000010;
    s.cr2 = s.cr3 = s.cr4 = s.cr8 = s.efer = 0;
    memset(s.interrupt_bitmap, 0, sizeof(s.interrupt_bitmap));
    struct kvm_regs k = { .rip = 0xfff0, .rflags = 2, .rdx = 0x600 };
    if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0 || ioctl(v->fd, KVM_SET_REGS, &k) < 0)
        error_report("KVM: cannot reset vCPU %d", v->index);
    /* The TSC restarts at 0 (KVM keeps vCPUs written together in sync);
     * kvmclock, async page faults and PV EOI are off until the guest
     * registers them again. Not every KVM has every one: ignore refusals. */
    static const uint32_t zero[] = { 0x10, 0x4b564d01, 0x4b564d02, 0x4b564d04 };
    for (unsigned i = 0; i < sizeof(zero) / sizeof(zero[0]); i++) {
        struct { struct kvm_msrs h; struct kvm_msr_entry e; } m = { .h.nmsrs = 1 };
        m.e.index = zero[i];
        ioctl(v->fd, KVM_SET_MSRS, &m);
    }
}

void kvm_regs_sipi(struct kvm_vcpu *v, uint8_t vector)
{
    kvm_regs_reset(v);
    struct kvm_sregs s;
    struct kvm_regs k = { .rip = 0, .rflags = 2 };
    if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
        return;
    s.cs = rseg((uint16_t)vector << 8, (uint64_t)vector << 12, 0xb);
    ioctl(v->fd, KVM_SET_SREGS, &s);
    ioctl(v->fd, KVM_SET_REGS, &k);
}
