/* The guest's CPUID: what KVM can virtualize (KVM_GET_SUPPORTED_CPUID),
 * narrowed to the -cpu model, minus what the board's devices do not
 * provide, with each vCPU's APIC ID filled in. The local APIC is the
 * board's xAPIC: no x2APIC, no TSC-deadline timer. KVM's paravirtual
 * leaves (0x40000000: kvmclock, async PF) pass through: KVM implements
 * those MSRs itself. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include "accel/kvm/kvm_int.h"
#include "util/error.h"

#define CPUID_MAX 256

/* Feature words a model may keep: leaf 1 EDX/ECX, leaf 7.0 EBX/ECX/EDX,
 * leaf 0x80000001 EDX/ECX. */
struct cpu_model {
    const char *name;
    uint32_t l1d, l1c, l7b, l7c, l7d, e1d, e1c;
};

#define B(n) (1u << (n))
/* fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 */
#define BASE_EDX 0x078bfbfdu
#define QEMU64_ECX (B(0) | B(13))                            /* sse3 cx16 */
#define NEHALEM_ECX (QEMU64_ECX | B(9) | B(19) | B(20) | B(23)) /* ssse3 sse4.1 sse4.2 popcnt */
#define SNB_ECX (NEHALEM_ECX | B(1) | B(25) | B(26) | B(28))    /* pclmul aes xsave avx */
#define HSW_ECX (SNB_ECX | B(12) | B(17) | B(22) | B(29) | B(30)) /* fma pcid movbe f16c rdrand */
#define HSW_L7B (B(0) | B(3) | B(5) | B(7) | B(8) | B(9) | B(10)) /* fsgsbase bmi1 avx2 smep bmi2 erms invpcid */
#define LM_EDX (B(11) | B(20) | B(29))                          /* syscall nx lm */

static const struct cpu_model models[] = {
    { "host", ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u },
    { "max", ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u },
    { "qemu64", BASE_EDX, QEMU64_ECX, 0, 0, 0, LM_EDX, B(0) },
    { "kvm64", BASE_EDX, QEMU64_ECX, 0, 0, 0, LM_EDX, 0 },
    { "Nehalem", BASE_EDX, NEHALEM_ECX, 0, 0, 0, LM_EDX, B(0) },
    { "SandyBridge", BASE_EDX, SNB_ECX, 0, 0, 0, LM_EDX | B(27), B(0) },
    { "Haswell", BASE_EDX, HSW_ECX, HSW_L7B, 0, 0, LM_EDX | B(27), B(0) | B(5) },
    { "Skylake-Client", BASE_EDX, HSW_ECX, HSW_L7B | B(18) | B(19) | B(20) | B(23), 0, 0,
      LM_EDX | B(27), B(0) | B(5) | B(8) },
};

static const struct cpu_model *find_model(const char *name)
{
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
        if (!strcmp(models[i].name, name))
            return &models[i];
    return NULL;
}

static void apply_model(struct kvm_cpuid_entry2 *e, const struct cpu_model *m)
{
    if (e->function == 1) {
        e->edx &= m->l1d;
        e->ecx &= m->l1c | B(31);                /* hypervisor stays */
    } else if (e->function == 7 && e->index == 0) {
        e->ebx &= m->l7b;
        e->ecx &= m->l7c;
        e->edx &= m->l7d;
    } else if (e->function == 0x80000001) {
        e->edx &= m->e1d;
        e->ecx &= m->e1c;
    }
}

int kvm_cpuid_load(struct accel *a, struct error *err)
{
    const char *name = a->b.cpu_model ? a->b.cpu_model : "qemu64";
    const struct cpu_model *m = find_model(name);
    if (!m)
        return error_set(err, -EINVAL, "-cpu %s: unknown CPU model (kvm knows host, max, qemu64, "
                         "kvm64, Nehalem, SandyBridge, Haswell, Skylake-Client)", name);
    size_t sz = sizeof(struct kvm_cpuid2) + CPUID_MAX * sizeof(struct kvm_cpuid_entry2);
    a->cpuid = calloc(1, sz);
    if (!a->cpuid)
        return error_set(err, -ENOMEM, "out of memory");
    a->cpuid->nent = CPUID_MAX;
    if (ioctl(a->kvm, KVM_GET_SUPPORTED_CPUID, a->cpuid) < 0)
        return error_set_errno(err, -errno, "KVM: cannot read the supported CPUID leaves");
    for (unsigned i = 0; i < a->cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &a->cpuid->entries[i];
        apply_model(e, m);
        if (e->function == 1) {
            e->ecx &= ~(B(21) | B(24));          /* x2APIC, TSC-deadline */
            e->ecx |= B(31);                     /* running under a hypervisor */
            e->edx |= B(9);                      /* the board's APIC */
        }
    }
    return 0;
}

int kvm_cpuid_set(struct accel *a, struct kvm_vcpu *v, struct error *err)
{
    size_t sz = sizeof(struct kvm_cpuid2) + a->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = malloc(sz);
    if (!c)
        return error_set(err, -ENOMEM, "out of memory");
    memcpy(c, a->cpuid, sz);
    uint32_t id = (uint32_t)v->index;
    for (unsigned i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 1)
            e->ebx = (e->ebx & 0x00ffffff) | id << 24;
        else if (e->function == 0xb || e->function == 0x1f)
            e->edx = id;
    }
    int r = ioctl(v->fd, KVM_SET_CPUID2, c);
    free(c);
    return r < 0 ? error_set_errno(err, -errno, "KVM: cannot set CPUID of vCPU %d", v->index) : 0;
}
