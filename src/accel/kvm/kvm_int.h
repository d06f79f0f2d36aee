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

enum kvm_irqchip_mode { KVM_IRQCHIP_OFF, KVM_IRQCHIP_SPLIT };
#define KVM_IOAPIC_PINS 24
#define KVM_GSI_MAX 256

/* irq.c: the split irqchip's GSI routes (guarded by lock). */
struct kvm_irq {
    enum kvm_irqchip_mode mode;
    pthread_mutex_t lock;
    bool route_used[KVM_GSI_MAX];
    uint64_t route_addr[KVM_GSI_MAX];
    uint32_t route_data[KVM_GSI_MAX];
    int route_fd[KVM_GSI_MAX];    /* irqfd GSIs */
    unsigned level_next;
};

/* What went which way, for -d int at exit and the tests. */
struct kvm_stats {
    atomic_ulong exit_io, exit_mmio, doorbell_mmio, interrupt, signal_msi, irqfds, ioeventfds;
};

#define KVM_DOORBELLS 64
struct kvm_doorbell { uint64_t addr; unsigned len; bool pio, used; };

/* Memory slots: which RAM region each holds. */
#define KVM_MAX_SLOTS 64
struct kvm_slot { uint64_t base, size; void *ram; bool used; };

struct accel {
    struct accel_board b;
    int kvm, vm, run_size;
    struct kvm_cpuid2 *cpuid;     /* KVM_GET_SUPPORTED_CPUID, filtered */
    struct kvm_vcpu *v;
    struct kvm_irq irq;
    struct kvm_stats stats;
    struct kvm_slot slots[KVM_MAX_SLOTS];
    pthread_mutex_t db_lock;
    struct kvm_doorbell db[KVM_DOORBELLS];
};

void kvm_vcpu_run(struct accel *a, int i);

void kvm_regs_get(struct kvm_vcpu *v, struct x86_regs *r);
void kvm_regs_convert(struct x86_regs *r, const struct kvm_regs *k, const struct kvm_sregs *s);
void kvm_regs_set(struct kvm_vcpu *v, const struct x86_regs *r);
/* Power-on (and INIT) state: real mode at F000:FFF0. */
void kvm_regs_reset(struct kvm_vcpu *v);
/* Start-up IPI: real mode at vector << 12. */
void kvm_regs_sipi(struct kvm_vcpu *v, uint8_t vector);

int kvm_irq_init(struct accel *a, struct error *err);
void kvm_irq_start(struct accel *a);
void kvm_irq_stop(struct accel *a);
void kvm_irq_reset_lapic(struct kvm_vcpu *v, bool bsp);
void kvm_irq_eoi(struct kvm_vcpu *v, uint8_t vector);
const char *kvm_irqchip_name(enum kvm_irqchip_mode m);

int kvm_cpuid_load(struct accel *a, struct error *err);
int kvm_cpuid_set(struct accel *a, struct kvm_vcpu *v, struct error *err);

#endif
