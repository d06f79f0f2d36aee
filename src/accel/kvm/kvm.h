/* KVM on the board: the accel_ops that run vCPUs through /dev/kvm, and
 * the host checks that decide whether KVM can be used at all and whether
 * it runs guest kernel code (CPL0) natively.
 *
 * Interrupt controllers: by default a split irqchip (irq.c): the local
 * APICs are the kernel's, the board's 8259, PIT and I/O APIC stay in
 * this process, MSIs go to KVM by KVM_SIGNAL_MSI or irqfd. Not the full
 * in-kernel irqchip: on PVM hosts its 8259 delivers IRQ0 at a stale
 * vector. Where KVM lacks the pieces (or kernel-irqchip=off), the board's
 * own APICs serve as under emu and vectors are injected with
 * KVM_INTERRUPT; no irqfd then. ioeventfd works either way.
 */
#ifndef QUOKKA_ACCEL_KVM_KVM_H
#define QUOKKA_ACCEL_KVM_KVM_H

#include <stdbool.h>
#include "accel/accel.h"
#include "util/error.h"

extern const struct accel_ops accel_kvm_ops;

/* What the host offers. */
struct kvm_host {
    int open_errno;               /* 0: /dev/kvm opened */
    int vm_errno;                 /* 0: a VM could be created */
    const char *module;           /* "kvm_intel", "kvm_amd", "kvm_pvm" or NULL */
    bool cpu_vmx, cpu_svm;        /* CPU flags in /proc/cpuinfo */
    bool native_cpl0;             /* guest CPL0 code runs natively */
    int api_version;
};

/* Fill h from /sys/module, /proc/cpuinfo and /dev/kvm. Never fails. */
void kvm_host_probe(struct kvm_host *h);
/* Also try to create a VM (fails where another hypervisor holds VT-x). */
void kvm_host_probe_vm(struct kvm_host *h);
/* 0 if KVM is usable; else -errno with a message naming cause and fix. */
int kvm_host_usable(const struct kvm_host *h, struct error *err);
/* One line saying what the module means for guests. */
const char *kvm_module_meaning(const char *module);
/* Time (ns) a short CPL0 loop takes in a throw-away VM, or -errno. */
long long kvm_probe_cpl0_ns(void);

/* The accelerator for -accel kvm (fallback false) or kvm:emu (true):
 * prints the one-line notice or warning, returns NULL with err set when
 * KVM was demanded and cannot be used. */
const struct accel_ops *kvm_accel_select(bool fallback, struct error *err);

#endif
