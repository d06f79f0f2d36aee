/* MMU entry points used by the run loop and system instructions (mmu.c). */
#ifndef QUOKKA_ACCEL_EMU_MMU_H
#define QUOKKA_ACCEL_EMU_MMU_H

#include "accel/emu/cpu_int.h"

struct x86_tlb_entry *x86_tlb_fill(struct x86_cpu *cpu, uint64_t la, unsigned access, bool user);
uint64_t x86_fetch_xlate(struct x86_cpu *cpu, uint64_t la, uint8_t **host_page);
void x86_fetch_bytes(struct x86_cpu *cpu, uint64_t la, uint8_t *buf, unsigned n);

#endif
