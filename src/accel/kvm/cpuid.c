/* The guest's CPUID: what KVM can virtualize (KVM_GET_SUPPORTED_CPUID),
 * minus what the board's devices do not provide, with each vCPU's APIC
 * ID filled in. The local APIC is the board's xAPIC: no x2APIC, no
 * TSC-deadline timer. KVM's paravirtual leaves (0x40000000: kvmclock,
 * async PF) pass through: KVM implements those MSRs itself. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include "accel/kvm/kvm_int.h"
#include "util/error.h"

#define CPUID_MAX 256

int kvm_cpuid_load(struct accel *a, struct error *err)
{
    size_t sz = sizeof(struct kvm_cpuid2) + CPUID_MAX * sizeof(struct kvm_cpuid_entry2);
    a->cpuid = calloc(1, sz);
    if (!a->cpuid)
        return error_set(err, -ENOMEM, "out of memory");
    a->cpuid->nent = CPUID_MAX;
    if (ioctl(a->kvm, KVM_GET_SUPPORTED_CPUID, a->cpuid) < 0)
        return error_set_errno(err, -errno, "KVM: cannot read the supported CPUID leaves");
    for (unsigned i = 0; i < a->cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &a->cpuid->entries[i];
        if (e->function == 1) {
            e->ecx &= ~(1u << 21 | 1u << 24);    /* x2APIC, TSC-deadline */
            e->ecx |= 1u << 31;                  /* running under a hypervisor */
            e->edx |= 1u << 9;                   /* the board's APIC */
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
