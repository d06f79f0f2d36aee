/* Inside the KVM accelerator: the VM and vCPU state shared by kvm.c
 * (creation, kicks), run.c (the run loop and exits), regs.c (register
 * conversion) and cpuid.c (the CPUID table). */
#ifndef QUOKKA_ACCEL_KVM_KVM_INT_H
#define QUOKKA_ACCEL_KVM_KVM_INT_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include "accel/accel.h"

/* Beyond the APIC_EV_* bits: leave vcpu_run. */
#define KVM_EV_EXIT 0x100

struct kvm_vcpu {
    struct accel *a;
    int index, fd;
    struct kvm_run *run;
    struct apic *apic;
    pthread_t thread;
    bool thread_set;
    pthread_mutex_t lock;         /* guards events, sipi_vector, thread_set */
    pthread_cond_t cond;          /* a halted vCPU waits here for events */
    unsigned events;              /* APIC_EV_* | KVM_EV_EXIT */
    uint8_t sipi_vector;
    bool halted, wait_for_sipi;   /* vCPU thread only (or while parked) */
    bool intr_pending;            /* the APIC may have a vector for us */
    uint8_t cr8;                  /* last TPR seen in kvm_run */
    /* For readers in other threads: KVM copies regs and sregs into
     * kvm_run at every exit (KVM_CAP_SYNC_REGS); `exits` counts them. */
    atomic_bool in_guest;
    atomic_ulong exits;
};

struct accel {
    struct accel_board b;
    int kvm, vm, run_size;
    struct kvm_cpuid2 *cpuid;     /* KVM_GET_SUPPORTED_CPUID, filtered */
    struct kvm_vcpu *v;
};

void kvm_vcpu_run(struct accel *a, int i);

void kvm_regs_get(struct kvm_vcpu *v, struct x86_regs *r);
void kvm_regs_convert(struct x86_regs *r, const struct kvm_regs *k, const struct kvm_sregs *s);
void kvm_regs_set(struct kvm_vcpu *v, const struct x86_regs *r);
/* Power-on (and INIT) state: real mode at F000:FFF0. */
void kvm_regs_reset(struct kvm_vcpu *v);
/* Start-up IPI: real mode at vector << 12. */
void kvm_regs_sipi(struct kvm_vcpu *v, uint8_t vector);

int kvm_cpuid_load(struct accel *a, struct error *err);
int kvm_cpuid_set(struct accel *a, struct kvm_vcpu *v, struct error *err);

#endif
