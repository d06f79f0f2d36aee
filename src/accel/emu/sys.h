/* System parts of the emulated CPU: segments and descriptors, interrupt
 * and exception delivery, far transfers, the time stamp counter (seg.c,
 * intr.c, exec-sys.c, cpu.c). */
#ifndef QUOKKA_ACCEL_EMU_SYS_H
#define QUOKKA_ACCEL_EMU_SYS_H

#include "accel/emu/cpu_int.h"

/* The guest TSC runs at X86_TSC_HZ (cpu.h; CPUID 0x15/0x16 advertise it). */
uint64_t x86_host_ns(void);
uint64_t x86_rdtsc(struct x86_cpu *cpu);

/* Recompute cached mode bits (code/stack size, CPL-derived TLB index,
 * segment bases used by addressing) after CS/SS/CR0/EFER changes. */
void x86_update_mode(struct x86_cpu *cpu);

/* How an interrupt arrives: an exception (fault/trap), an external
 * interrupt or NMI, or INT n / INT3 / INTO (gate DPL is checked). */
enum { X86_INT_EXC, X86_INT_EXT, X86_INT_SOFT };
/* Deliver vector through the IVT/IDT. The return address is cpu->rip. */
void x86_interrupt(struct x86_cpu *cpu, int vec, bool has_err, uint32_t err, int kind);

/* Segment descriptor helpers. */
bool x86_protected(const struct x86_cpu *cpu);   /* CR0.PE and not VM86 */
uint64_t x86_read_desc(struct x86_cpu *cpu, uint16_t sel, int exc);
void x86_desc_to_seg(struct x86_seg *s, uint16_t sel, uint64_t d);
/* MOV/POP to a data segment register or SS, with protected-mode checks. */
void x86_load_seg(struct x86_cpu *cpu, int sreg, uint16_t sel);
/* Far JMP/CALL/RET, IRET. */
void x86_far_jump(struct x86_cpu *cpu, uint16_t sel, uint64_t off, unsigned osz);
void x86_far_call(struct x86_cpu *cpu, uint16_t sel, uint64_t off, unsigned osz);
void x86_far_ret(struct x86_cpu *cpu, unsigned osz, uint16_t extra);
void x86_iret(struct x86_cpu *cpu, unsigned osz);

/* Implicit supervisor-mode memory access (GDT/IDT/TSS) at linear la. */
uint64_t x86_sys_read(struct x86_cpu *cpu, uint64_t la, unsigned size);
void x86_sys_write(struct x86_cpu *cpu, uint64_t la, uint64_t v, unsigned size);

/* MOV to CRn with its checks and side effects (TLB flushes, LMA). */
void x86_set_cr(struct x86_cpu *cpu, int n, uint64_t v);
/* RFLAGS bits POPF/IRET may change at the current privilege. */
uint64_t x86_flags_writable(struct x86_cpu *cpu, unsigned osz);

int x86_rdmsr(struct x86_cpu *cpu, uint32_t msr, uint64_t *val);
int x86_wrmsr(struct x86_cpu *cpu, uint32_t msr, uint64_t val);
void x86_cpuid(struct x86_cpu *cpu, uint32_t leaf, uint32_t sub, uint32_t r[4]);

#endif
