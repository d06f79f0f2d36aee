/* What the board asks of an accelerator (emu now, kvm later): vCPUs that
 * run guest code in the calling thread until told to stop, their register
 * state, and kicks. The board owns threads, run control and devices. */
#ifndef QUOKKA_ACCEL_ACCEL_H
#define QUOKKA_ACCEL_ACCEL_H

#include <stdbool.h>
#include <stdint.h>
#include "accel/emu/cpu.h"        /* struct x86_regs: the register snapshot all accels use */
#include "util/error.h"

struct mainloop;
struct address_space;
struct apic_bus;
struct accel;

/* The board's side, handed to the accelerator at creation. */
struct accel_board {
    struct mainloop *ml;
    struct address_space *mem, *io;
    struct apic_bus *apics;       /* local APIC i of vCPU i */
    int ncpus;
    unsigned log_mask;            /* X86_LOG_* */
    const char *cpu_model;        /* -cpu, NULL for the default (kvm checks it) */
    const char *kernel_irqchip;   /* -accel kvm,kernel-irqchip=, NULL for the default */
    void (*triple_fault)(void *opaque, int cpu);
    void *opaque;
};

struct accel_ops {
    const char *name;
    struct accel *(*create)(const struct accel_board *b, struct error *err);
    void (*destroy)(struct accel *a);
    /* Run vCPU i in this thread until vcpu_exit(i). */
    void (*vcpu_run)(struct accel *a, int i);
    void (*vcpu_exit)(struct accel *a, int i);
    /* APIC_EV_* / X86_EV_* events; sipi sets the start-up vector. */
    void (*vcpu_kick)(struct accel *a, int i, unsigned events);
    void (*vcpu_sipi)(struct accel *a, int i, uint8_t vector);
    void (*vcpu_reset)(struct accel *a, int i, bool bsp);
    void (*get_regs)(struct accel *a, int i, struct x86_regs *r);
    void (*set_regs)(struct accel *a, int i, const struct x86_regs *r);
    int (*translate)(struct accel *a, int i, uint64_t va, uint64_t *pa);
    /* Optional (NULL where not offered): a guest write of len bytes at
     * addr (a port if pio) signals eventfd fd instead of leaving the
     * guest; assign=false removes it. Meant for virtio doorbells, whose
     * handler then runs from the event loop. Returns 0 or -errno. */
    int (*ioeventfd)(struct accel *a, uint64_t addr, unsigned len, bool pio, int fd, bool assign);
};

extern const struct accel_ops accel_emu_ops;

#endif
