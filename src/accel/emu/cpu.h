/* The emulated x86-64 CPU (`-accel emu`): what the rest of Quokka sees.
 *
 * The CPU knows nothing of the board: it reaches RAM, MMIO, ports, its local
 * APIC and the machine through `struct x86_bus`, one per vCPU, so it can be
 * driven alone (differential tests give it a flat RAM and nothing else).
 * Internals (decoder, executor, MMU/TLB, exceptions) live in the other
 * files of this folder behind cpu_int.h. */
#ifndef QUOKKA_ACCEL_EMU_CPU_H
#define QUOKKA_ACCEL_EMU_CPU_H

#include <stdbool.h>
#include <stdint.h>

struct x86_cpu;
struct x86_emu;

struct x86_bus {
    void *opaque;                  /* per vCPU */
    /* Host pointer to the 4 KiB guest-physical page holding gpa (page
     * aligned), or NULL if that page is not RAM (then MMIO is used). */
    uint8_t *(*ram_page)(void *opaque, uint64_t gpa);
    uint64_t (*mmio_read)(void *opaque, uint64_t gpa, unsigned size);
    void (*mmio_write)(void *opaque, uint64_t gpa, uint64_t val, unsigned size);
    uint32_t (*pio_in)(void *opaque, uint16_t port, unsigned size);
    void (*pio_out)(void *opaque, uint16_t port, uint32_t val, unsigned size);
    /* Accept the highest-priority pending maskable interrupt (local APIC,
     * or the 8259 through ExtINT): returns its vector, or -1 if none. */
    int (*ack_interrupt)(void *opaque);
    /* CR8 <-> the local APIC's task priority (bits 7:4 of TPR). May be NULL. */
    uint8_t (*get_cr8)(void *opaque);
    void (*set_cr8)(void *opaque, uint8_t cr8);
    /* MSRs the CPU does not own itself (x2APIC range, ...). Return 0, or
     * -1 to raise #GP. May be NULL. */
    int (*rdmsr)(void *opaque, uint32_t msr, uint64_t *val);
    int (*wrmsr)(void *opaque, uint32_t msr, uint64_t val);
    /* Triple fault: the board resets or stops the machine. */
    void (*shutdown)(void *opaque);
};

/* Pending-event bits for x86_cpu_kick(); thread-safe, wake a halted CPU. */
enum {
    X86_EV_INTR = 1 << 0,          /* a maskable interrupt may be pending: ask ack_interrupt */
    X86_EV_NMI  = 1 << 1,
    X86_EV_INIT = 1 << 2,          /* INIT IPI: reset to wait-for-SIPI (APs) */
    X86_EV_SIPI = 1 << 3,          /* start-up IPI; vector set by x86_cpu_sipi */
    X86_EV_EXIT = 1 << 4,          /* leave x86_cpu_run() at the next boundary */
};

/* Segment register as the hardware caches it. attr uses the VMX layout:
 * type[3:0] S[4] DPL[6:5] P[7] AVL[12] L[13] D/B[14] G[15]. */
struct x86_seg {
    uint16_t sel;
    uint64_t base;
    uint32_t limit;
    uint16_t attr;
};

/* Architectural state snapshot: for boot setup, the monitor, tests. */
struct x86_regs {
    uint64_t gpr[16];              /* RAX RCX RDX RBX RSP RBP RSI RDI R8..R15 */
    uint64_t rip, rflags;
    struct x86_seg es, cs, ss, ds, fs, gs, ldtr, tr;
    uint64_t gdt_base, idt_base;
    uint16_t gdt_limit, idt_limit;
    uint64_t cr0, cr2, cr3, cr4, cr8, efer;
    uint64_t kernel_gs_base, star, lstar, cstar, sfmask, apic_base, tsc_aux, pat;
    uint64_t dr[8];
    bool halted;
    bool wait_for_sipi;            /* an AP before its start-up IPI */
};

struct x86_vec_regs {
    uint8_t xmm[16][16];
    uint32_t mxcsr;
    uint16_t fcw, fsw, ftw;        /* x87 control/status, abridged tag */
    uint8_t st[8][10];             /* x87 stack as 80-bit values, ST(0) first */
};

/* Shared among the vCPUs of one machine: the decoded-code cache's view of
 * which guest pages hold code. */
struct x86_emu *x86_emu_new(void);
void x86_emu_free(struct x86_emu *emu);
/* Guest RAM at [gpa, gpa+len) was written by someone other than a CPU of
 * this emu (DMA, loaders): drop decoded instructions there. */
void x86_emu_invalidate_code(struct x86_emu *emu, uint64_t gpa, uint64_t len);

/* A vCPU in the power-on reset state (real mode, CS:IP = F000:FFF0);
 * bsp=false starts it waiting for SIPI. */
struct x86_cpu *x86_cpu_new(struct x86_emu *emu, int index, bool bsp, const struct x86_bus *bus);
void x86_cpu_free(struct x86_cpu *cpu);
void x86_cpu_reset(struct x86_cpu *cpu, bool bsp);

/* Runs guest code in the calling thread until X86_EV_EXIT is kicked.
 * HLT parks the thread until an event arrives. Returns 0. */
int x86_cpu_run(struct x86_cpu *cpu);
/* Run at most n instructions (tests): returns 0, or the exception vector
 * that stopped it if stop_on_exception and one was raised. */
int x86_cpu_step(struct x86_cpu *cpu, uint64_t n, bool stop_on_exception);
void x86_cpu_kick(struct x86_cpu *cpu, unsigned events);
void x86_cpu_sipi(struct x86_cpu *cpu, uint8_t vector);

void x86_cpu_get_regs(struct x86_cpu *cpu, struct x86_regs *r);
void x86_cpu_set_regs(struct x86_cpu *cpu, const struct x86_regs *r);
void x86_cpu_get_vec_regs(struct x86_cpu *cpu, struct x86_vec_regs *v);
void x86_cpu_set_vec_regs(struct x86_cpu *cpu, const struct x86_vec_regs *v);
/* Guest-virtual to guest-physical through the CPU's current paging mode:
 * 0 on success, -1 if unmapped (for the monitor's `x`). */
int x86_cpu_translate(struct x86_cpu *cpu, uint64_t va, uint64_t *pa);

/* The guest TSC rate, and the crystal (core) clock CPUID leaf 0x15
 * reports: Linux takes the local APIC timer to count at the crystal rate,
 * so the board's APIC timer must tick at X86_CRYSTAL_HZ (before its
 * divide configuration). */
#define X86_TSC_HZ 1000000000ull
#define X86_CRYSTAL_HZ 1000000000ull

/* -d flags. */
enum { X86_LOG_INT = 1, X86_LOG_CPU_RESET = 2, X86_LOG_UNIMP = 4, X86_LOG_GUEST_ERRORS = 8,
       X86_LOG_EXEC = 16 /* each block executed (-d exec) */ };
void x86_cpu_set_log(struct x86_cpu *cpu, unsigned mask);

/* Blocks of 64-bit code are translated to host code after this many
 * interpreted runs (QUOKKA_JIT_THRESHOLD overrides it; QUOKKA_JIT=0 turns
 * the JIT off). x86_cpu_set_jit changes it for one vCPU; -1 never
 * translates, 0 translates at the first run. */
#define X86_JIT_THRESHOLD 4
void x86_cpu_set_jit(struct x86_cpu *cpu, int threshold);
/* Instructions retired, and how often the run loop picked a block (a
 * translated block that jumps straight to the next counts once). */
void x86_cpu_stats(const struct x86_cpu *cpu, uint64_t *insns, uint64_t *dispatches);

#endif
