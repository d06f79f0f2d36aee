/* Differential harness for the emulated CPU's SIMD/x87 instructions: run one
 * instruction on the host CPU (through a tiny generated stub) and in the
 * emulator (x86_cpu_step in 64-bit mode over a flat RAM), from the same
 * registers and memory, and compare everything the instruction can touch.
 *
 * Operands: [rbx] is the memory operand (a 1 KiB buffer on both sides);
 * rsp, rdi and rbx are never used as register operands. */
#ifndef QUOKKA_TESTS_SIMD_HARNESS_H
#define QUOKKA_TESTS_SIMD_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "accel/emu/cpu.h"

#define H_RAM_SIZE (4u << 20)
#define H_CODE 0x100000u
#define H_DATA 0x200000u
#define H_STACK 0x300000u

struct hstate {
    uint8_t fx[512];               /* FXSAVE64 image: x87, MXCSR, XMM */
    uint64_t gpr[16];
    uint64_t rflags;
    uint8_t data[1024] __attribute__((aligned(64)));   /* what [rbx] points at */
} __attribute__((aligned(64)));

struct harness {
    bool compat;                   /* emulator runs 32-bit compatibility-mode code */
    uint8_t *ram;
    uint8_t *jit;
    struct x86_emu *emu;
    struct x86_cpu *cpu;
    struct x86_bus bus;
    uint64_t rng;
};

static uint64_t h_rand(struct harness *h)
{
    h->rng ^= h->rng << 13;
    h->rng ^= h->rng >> 7;
    h->rng ^= h->rng << 17;
    return h->rng;
}

static uint8_t *h_ram_page(void *opaque, uint64_t gpa)
{
    struct harness *h = opaque;
    return gpa < H_RAM_SIZE ? h->ram + (gpa & ~0xfffull) : NULL;
}

static uint64_t h_mmio_read(void *opaque, uint64_t gpa, unsigned size) { return ~0ull; }
static void h_mmio_write(void *opaque, uint64_t gpa, uint64_t val, unsigned size) {}
static uint32_t h_pio_in(void *opaque, uint16_t port, unsigned size) { return ~0u; }
static void h_pio_out(void *opaque, uint16_t port, uint32_t val, unsigned size) {}
static int h_ack(void *opaque) { return -1; }
static void h_shutdown(void *opaque) {}

static int h_init(struct harness *h, uint64_t seed)
{
    memset(h, 0, sizeof(*h));
    h->rng = seed | 1;
    h->ram = aligned_alloc(4096, H_RAM_SIZE);
    h->jit = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                  -1, 0);
    if (!h->ram || h->jit == MAP_FAILED)
        return -1;
    memset(h->ram, 0, H_RAM_SIZE);
    /* identity map of the first 4 MiB with 2 MiB pages */
    uint64_t *pml4 = (uint64_t *)(h->ram + 0x1000), *pdpt = (uint64_t *)(h->ram + 0x2000);
    uint64_t *pd = (uint64_t *)(h->ram + 0x3000);
    pml4[0] = 0x2000 | 3;
    pdpt[0] = 0x3000 | 3;
    pd[0] = 0x000000 | 0x83;
    pd[1] = 0x200000 | 0x83;
    h->bus = (struct x86_bus){
        .opaque = h, .ram_page = h_ram_page, .mmio_read = h_mmio_read,
        .mmio_write = h_mmio_write, .pio_in = h_pio_in, .pio_out = h_pio_out,
        .ack_interrupt = h_ack, .shutdown = h_shutdown,
    };
    h->emu = x86_emu_new();
    h->cpu = x86_cpu_new(h->emu, 0, true, &h->bus);
    if (getenv("SIMD_LOG"))
        x86_cpu_set_log(h->cpu, ~0u);
    return h->cpu ? 0 : -1;
}

static void h_fini(struct harness *h)
{
    x86_cpu_free(h->cpu);
    x86_emu_free(h->emu);
    munmap(h->jit, 4096);
    free(h->ram);
}

/* ---- host side ---- */

static uint8_t *emit(uint8_t *p, const char *bytes, size_t n)
{
    memcpy(p, bytes, n);
    return p + n;
}

static uint8_t *emit_disp_rdi(uint8_t *p, uint8_t rex, uint8_t op, unsigned r, uint32_t disp)
{
    *p++ = rex;
    *p++ = op;
    *p++ = 0x80 | ((r & 7) << 3) | 7;
    memcpy(p, &disp, 4);
    return p + 4;
}

static void h_build_stub(struct harness *h, const uint8_t *insn, size_t n)
{
    uint8_t *p = h->jit;
    const uint32_t g = offsetof(struct hstate, gpr), fl = offsetof(struct hstate, rflags);
    p = emit(p, "\x53\x55\x41\x54\x41\x55\x41\x56\x41\x57\x57", 11);
    p = emit(p, "\x48\x0f\xae\x0f", 4);                    /* fxrstor64 [rdi] */
    p = emit(p, "\xff\xb7", 2);                            /* push [rdi+fl] */
    memcpy(p, &fl, 4);
    p += 4;
    *p++ = 0x9d;                                           /* popfq */
    for (unsigned r = 0; r < 16; r++)
        if (r != 4 && r != 7)
            p = emit_disp_rdi(p, 0x48 | (r >= 8 ? 4 : 0), 0x8b, r, g + 8 * r);
    p = emit(p, (const char *)insn, n);
    *p++ = 0x9c;                                           /* pushfq */
    p = emit(p, "\x48\x87\x7c\x24\x08", 5);                /* xchg rdi, [rsp+8] */
    p = emit(p, "\x8f\x87", 2);                            /* pop [rdi+fl] */
    memcpy(p, &fl, 4);
    p += 4;
    for (unsigned r = 0; r < 16; r++)
        if (r != 4 && r != 7)
            p = emit_disp_rdi(p, 0x48 | (r >= 8 ? 4 : 0), 0x89, r, g + 8 * r);
    p = emit(p, "\x48\x0f\xae\x07", 4);                    /* fxsave64 [rdi] */
    p = emit(p, "\x5f\x41\x5f\x41\x5e\x41\x5d\x41\x5c\x5d\x5b\xc3", 12);
}

static void h_run_host(struct harness *h, const uint8_t *insn, size_t n, struct hstate *s)
{
    static uint8_t saved[512] __attribute__((aligned(16)));
    h_build_stub(h, insn, n);
    s->gpr[3] = (uint64_t)(uintptr_t)s->data;
    __asm__ volatile("fxsave64 %0" : "=m"(saved));
    ((void (*)(struct hstate *))(void *)h->jit)(s);
    __asm__ volatile("fxrstor64 %0" : : "m"(saved));
}

/* ---- emulator side ---- */

static void h_fx_to_vec(const uint8_t *fx, struct x86_vec_regs *v)
{
    memcpy(&v->fcw, fx, 2);
    memcpy(&v->fsw, fx + 2, 2);
    v->ftw = fx[4];
    memcpy(&v->mxcsr, fx + 24, 4);
    for (int i = 0; i < 8; i++)
        memcpy(v->st[i], fx + 32 + 16 * i, 10);
    memcpy(v->xmm, fx + 160, 256);
}

static void h_vec_to_fx(const struct x86_vec_regs *v, uint8_t *fx)
{
    memcpy(fx, &v->fcw, 2);
    memcpy(fx + 2, &v->fsw, 2);
    fx[4] = (uint8_t)v->ftw;
    memcpy(fx + 24, &v->mxcsr, 4);
    for (int i = 0; i < 8; i++) {
        memset(fx + 32 + 16 * i, 0, 16);
        memcpy(fx + 32 + 16 * i, v->st[i], 10);
    }
    memcpy(fx + 160, v->xmm, 256);
}

static struct x86_seg h_seg(uint16_t attr)
{
    return (struct x86_seg){ .sel = 0x10, .base = 0, .limit = 0xffffffff, .attr = attr };
}

/* Returns 0, or the exception vector the emulator raised. */
static int h_run_emu(struct harness *h, const uint8_t *insn, size_t n, struct hstate *s,
                     uint64_t cr0_extra, uint64_t cr4_clear)
{
    struct x86_regs r;
    struct x86_vec_regs v;
    memcpy(h->ram + H_CODE, insn, n);
    h->ram[H_CODE + n] = 0xf4;
    x86_emu_invalidate_code(h->emu, H_CODE, 64);
    memcpy(h->ram + H_DATA, s->data, sizeof(s->data));

    memset(&r, 0, sizeof(r));
    memcpy(r.gpr, s->gpr, sizeof(r.gpr));
    r.gpr[3] = H_DATA;
    r.gpr[4] = H_STACK;
    r.rip = H_CODE;
    r.rflags = s->rflags;
    r.cs = h_seg(h->compat ? 0xc09b : 0xa09b);   /* L=1 (or D=1), G=1, code */
    r.cs.sel = 0x08;
    r.ss = r.ds = r.es = r.fs = r.gs = h_seg(0xc093);
    r.tr = h_seg(0x8b);
    r.ldtr = h_seg(0x82);
    r.cr0 = 0x80000033 | cr0_extra; /* PG NE ET MP PE */
    r.cr3 = 0x1000;
    r.cr4 = (0x20 | 0x200 | 0x400 | 0x40000) & ~cr4_clear;  /* PAE OSFXSR OSXMMEXCPT OSXSAVE */
    r.efer = 0x500;                /* LME LMA */
    r.pat = 0x0007040600070406ull;
    x86_cpu_set_regs(h->cpu, &r);
    h_fx_to_vec(s->fx, &v);
    x86_cpu_set_vec_regs(h->cpu, &v);

    int vec = x86_cpu_step(h->cpu, 1, true);

    x86_cpu_get_regs(h->cpu, &r);
    x86_cpu_get_vec_regs(h->cpu, &v);
    memcpy(s->gpr, r.gpr, sizeof(r.gpr));
    s->rflags = r.rflags;
    h_vec_to_fx(&v, s->fx);
    memcpy(s->data, h->ram + H_DATA, sizeof(s->data));
    return vec;
}

#endif
