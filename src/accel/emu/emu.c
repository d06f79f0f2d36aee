/* The emulated CPU on the board: x86_bus callbacks over the address
 * spaces and the local APIC, the RAM write hook that keeps decoded code
 * honest, and the accel_ops the machine drives. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "accel/accel.h"
#include "hw/apic.h"
#include "hw/memory.h"
#include "util/mainloop.h"

_Static_assert((int)APIC_EV_INTR == (int)X86_EV_INTR && (int)APIC_EV_NMI == (int)X86_EV_NMI &&
               (int)APIC_EV_INIT == (int)X86_EV_INIT && (int)APIC_EV_SIPI == (int)X86_EV_SIPI,
               "APIC events are passed to the CPU as they are");

#define MSR_APIC_BASE 0x1b

struct emu_vcpu {
    struct accel *a;
    int index;
    struct x86_cpu *cpu;
    struct apic *apic;
    struct as_memo ram_memo;    /* page walks ask for the same RAM span again and again */
};

struct accel {
    struct accel_board b;
    struct x86_emu *emu;
    struct emu_vcpu *v;
};

static uint8_t *emu_ram_page(void *opaque, uint64_t gpa)
{
    struct emu_vcpu *v = opaque;
    return as_ram_ptr_memo(v->a->b.mem, &v->ram_memo, gpa, 4096);
}

static bool emu_apic_hit(struct emu_vcpu *v, uint64_t gpa)
{
    return (gpa & ~0xfffULL) == apic_mmio_addr(v->apic);
}

static uint64_t emu_mmio_read(void *opaque, uint64_t gpa, unsigned size)
{
    struct emu_vcpu *v = opaque;
    if (!emu_apic_hit(v, gpa))
        return as_read(v->a->b.mem, gpa, size);
    ml_lock(v->a->b.ml);
    uint32_t val = apic_mmio_read(v->apic, gpa & 0xffc);
    ml_unlock(v->a->b.ml);
    return (val >> (8 * (gpa & 3))) & (size >= 4 ? 0xffffffffULL : (1ULL << (8 * size)) - 1);
}

static void emu_mmio_write(void *opaque, uint64_t gpa, uint64_t val, unsigned size)
{
    struct emu_vcpu *v = opaque;
    if (!emu_apic_hit(v, gpa)) {
        as_write(v->a->b.mem, gpa, val, size);
        return;
    }
    ml_lock(v->a->b.ml);
    apic_mmio_write(v->apic, gpa & 0xff0, (uint32_t)val);
    ml_unlock(v->a->b.ml);
}

static uint32_t emu_pio_in(void *opaque, uint16_t port, unsigned size)
{
    struct emu_vcpu *v = opaque;
    return (uint32_t)as_read(v->a->b.io, port, size);
}

static void emu_pio_out(void *opaque, uint16_t port, uint32_t val, unsigned size)
{
    struct emu_vcpu *v = opaque;
    as_write(v->a->b.io, port, val, size);
}

static int emu_ack(void *opaque)
{
    struct emu_vcpu *v = opaque;
    ml_lock(v->a->b.ml);
    int vec = apic_ack(v->apic);
    ml_unlock(v->a->b.ml);
    return vec;
}

static uint8_t emu_get_cr8(void *opaque)
{
    struct emu_vcpu *v = opaque;
    ml_lock(v->a->b.ml);
    uint8_t r = apic_get_cr8(v->apic);
    ml_unlock(v->a->b.ml);
    return r;
}

static void emu_set_cr8(void *opaque, uint8_t cr8)
{
    struct emu_vcpu *v = opaque;
    ml_lock(v->a->b.ml);
    apic_set_cr8(v->apic, cr8);
    ml_unlock(v->a->b.ml);
}

static int emu_rdmsr(void *opaque, uint32_t msr, uint64_t *val)
{
    struct emu_vcpu *v = opaque;
    if (msr != MSR_APIC_BASE)
        return -1;
    ml_lock(v->a->b.ml);
    *val = apic_get_base(v->apic);
    ml_unlock(v->a->b.ml);
    return 0;
}

static int emu_wrmsr(void *opaque, uint32_t msr, uint64_t val)
{
    struct emu_vcpu *v = opaque;
    if (msr != MSR_APIC_BASE)
        return -1;
    ml_lock(v->a->b.ml);
    int r = apic_set_base(v->apic, val);
    ml_unlock(v->a->b.ml);
    return r;
}

static void emu_shutdown(void *opaque)
{
    struct emu_vcpu *v = opaque;
    if (v->a->b.triple_fault)
        v->a->b.triple_fault(v->a->b.opaque, v->index);
}

static void emu_ram_written(void *opaque, uint64_t gpa, uint64_t len)
{
    x86_emu_invalidate_code(opaque, gpa, len);
}

static void emu_destroy(struct accel *a)
{
    if (!a)
        return;
    as_set_ram_write_hook(a->b.mem, NULL, NULL);
    for (int i = 0; a->v && i < a->b.ncpus; i++)
        if (a->v[i].cpu)
            x86_cpu_free(a->v[i].cpu);
    free(a->v);
    if (a->emu)
        x86_emu_free(a->emu);
    free(a);
}

static struct accel *emu_create(const struct accel_board *b, struct error *err)
{
    /* Our CPU has one model: CPUID advertises exactly what it implements.
     * Like QEMU's TCG with -cpu host, refuse a model we would not honour. */
    if (b->cpu_model) {
        int n = (int)strcspn(b->cpu_model, ",");
        if (n != 3 || strncmp(b->cpu_model, "max", 3)) {
            error_set(err, -EINVAL, "CPU model '%.*s' is not available with the emu accelerator "
                      "(it has one model, 'max'; 'host' and named models need KVM)", n, b->cpu_model);
            return NULL;
        }
        if (b->cpu_model[n]) {
            error_set(err, -EINVAL, "-cpu %s: feature flags are not supported with the emu "
                      "accelerator (its CPUID advertises exactly what it implements)", b->cpu_model);
            return NULL;
        }
    }
    struct accel *a = calloc(1, sizeof(*a));
    if (!a) {
        error_set(err, -12, "out of memory");
        return NULL;
    }
    a->b = *b;
    a->emu = x86_emu_new();
    a->v = calloc(b->ncpus, sizeof(*a->v));
    if (!a->emu || !a->v) {
        emu_destroy(a);
        error_set(err, -12, "out of memory");
        return NULL;
    }
    for (int i = 0; i < b->ncpus; i++) {
        struct emu_vcpu *v = &a->v[i];
        v->a = a;
        v->index = i;
        v->apic = apic_bus_cpu(b->apics, i);
        struct x86_bus bus = {
            .opaque = v, .ram_page = emu_ram_page, .mmio_read = emu_mmio_read,
            .mmio_write = emu_mmio_write, .pio_in = emu_pio_in, .pio_out = emu_pio_out,
            .ack_interrupt = emu_ack, .get_cr8 = emu_get_cr8, .set_cr8 = emu_set_cr8,
            .rdmsr = emu_rdmsr, .wrmsr = emu_wrmsr, .shutdown = emu_shutdown,
        };
        v->cpu = x86_cpu_new(a->emu, i, i == 0, &bus);
        if (!v->cpu) {
            emu_destroy(a);
            error_set(err, -12, "could not create vCPU %d", i);
            return NULL;
        }
        x86_cpu_set_log(v->cpu, b->log_mask);
    }
    as_set_ram_write_hook(b->mem, emu_ram_written, a->emu);
    return a;
}

static void emu_vcpu_run(struct accel *a, int i) { x86_cpu_run(a->v[i].cpu); }
static void emu_vcpu_exit(struct accel *a, int i) { x86_cpu_kick(a->v[i].cpu, X86_EV_EXIT); }
static void emu_vcpu_kick(struct accel *a, int i, unsigned ev) { x86_cpu_kick(a->v[i].cpu, ev); }
static void emu_vcpu_sipi(struct accel *a, int i, uint8_t vec) { x86_cpu_sipi(a->v[i].cpu, vec); }
static void emu_vcpu_reset(struct accel *a, int i, bool bsp) { x86_cpu_reset(a->v[i].cpu, bsp); }

static void emu_get_regs(struct accel *a, int i, struct x86_regs *r)
{
    x86_cpu_get_regs(a->v[i].cpu, r);
}

static void emu_set_regs(struct accel *a, int i, const struct x86_regs *r)
{
    x86_cpu_set_regs(a->v[i].cpu, r);
}

static int emu_translate(struct accel *a, int i, uint64_t va, uint64_t *pa)
{
    return x86_cpu_translate(a->v[i].cpu, va, pa);
}

const struct accel_ops accel_emu_ops = {
    .name = "emu",
    .create = emu_create,
    .destroy = emu_destroy,
    .vcpu_run = emu_vcpu_run,
    .vcpu_exit = emu_vcpu_exit,
    .vcpu_kick = emu_vcpu_kick,
    .vcpu_sipi = emu_vcpu_sipi,
    .vcpu_reset = emu_vcpu_reset,
    .get_regs = emu_get_regs,
    .set_regs = emu_set_regs,
    .translate = emu_translate,
};
