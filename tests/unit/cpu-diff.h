/* Differential harness for the emulated CPU's integer instructions: run a
 * short code sequence on the host CPU (through a generated stub that loads
 * all GPRs and RFLAGS from a struct and stores them back) and in the
 * emulator (64-bit mode, identity paging over a flat RAM, run until the
 * HLT appended after the sequence), from the same state, and compare.
 *
 * Pointer registers: registers named in `ptrs` (bit per register) hold an
 * offset into the 4 KiB data buffer; the harness turns them into real
 * addresses on each side (host buffer, guest buffer) and back, so memory
 * operands and string instructions compare like plain registers. RSP is
 * never an operand. Reusable for other instruction groups: include it. */
#ifndef QUOKKA_TESTS_CPU_DIFF_H
#define QUOKKA_TESTS_CPU_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "accel/emu/cpu.h"

#define CD_RAM_SIZE (4u << 20)
#define CD_CODE 0x100000u
#define CD_DATA 0x200000u
#define CD_STACK 0x300000u
#define CD_DATA_SIZE 4096u

struct cd_state {
    uint64_t gpr[16];
    uint64_t rflags;
    uint8_t data[CD_DATA_SIZE] __attribute__((aligned(64)));
};

struct cd {
    uint8_t *ram;
    uint8_t *jit;
    struct x86_emu *emu;
    struct x86_cpu *cpu;
    struct x86_bus bus;
    uint64_t rng;
    struct cd_state *host_state;     /* aligned buffers used by the host stub */
};

static inline uint64_t cd_rand(struct cd *h)
{
    h->rng ^= h->rng << 13;
    h->rng ^= h->rng >> 7;
    h->rng ^= h->rng << 17;
    return h->rng;
}

/* Operand values with the edge cases flags care about. */
static inline uint64_t cd_rand_val(struct cd *h)
{
    static const uint64_t edge[] = {
        0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000,
        0xffffffff, 0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull, ~1ull, 0x100, 0x10,
    };
    uint64_t r = cd_rand(h);
    switch (r & 7) {
    case 0: case 1: return edge[(r >> 8) % (sizeof edge / sizeof edge[0])];
    case 2: return (r >> 8) & 0xff;
    case 3: return (uint64_t)(int64_t)(int8_t)(r >> 8);
    case 4: return (r >> 8) & 0xffffffff;
    default: return cd_rand(h);
    }
}

static uint8_t *cd_ram_page(void *opaque, uint64_t gpa)
{
    struct cd *h = opaque;
    return gpa < CD_RAM_SIZE ? h->ram + (gpa & ~0xfffull) : NULL;
}

static inline uint64_t cd_mmio_read(void *opaque, uint64_t gpa, unsigned size) { return ~0ull; }
static inline void cd_mmio_write(void *opaque, uint64_t gpa, uint64_t val, unsigned size) {}
static uint32_t cd_pio_in(void *opaque, uint16_t port, unsigned size) { return ~0u; }
static inline void cd_pio_out(void *opaque, uint16_t port, uint32_t val, unsigned size) {}
static inline int cd_ack(void *opaque) { return -1; }
static inline void cd_shutdown(void *opaque) {}

static inline int cd_init(struct cd *h, uint64_t seed)
{
    memset(h, 0, sizeof(*h));
    h->rng = seed | 1;
    h->ram = aligned_alloc(4096, CD_RAM_SIZE);
    h->host_state = aligned_alloc(64, sizeof(struct cd_state));
    h->jit = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                  -1, 0);
    if (!h->ram || !h->host_state || h->jit == MAP_FAILED)
        return -1;
    memset(h->ram, 0, CD_RAM_SIZE);
    uint64_t *pml4 = (uint64_t *)(h->ram + 0x1000), *pdpt = (uint64_t *)(h->ram + 0x2000);
    uint64_t *pd = (uint64_t *)(h->ram + 0x3000);
    pml4[0] = 0x2000 | 3;
    pdpt[0] = 0x3000 | 3;
    pd[0] = 0x000000 | 0x83;
    pd[1] = 0x200000 | 0x83;
    h->bus = (struct x86_bus){
        .opaque = h, .ram_page = cd_ram_page, .mmio_read = cd_mmio_read,
        .mmio_write = cd_mmio_write, .pio_in = cd_pio_in, .pio_out = cd_pio_out,
        .ack_interrupt = cd_ack, .shutdown = cd_shutdown,
    };
    h->emu = x86_emu_new();
    h->cpu = x86_cpu_new(h->emu, 0, true, &h->bus);
    if (getenv("CPU_LOG"))
        x86_cpu_set_log(h->cpu, ~0u);
    return h->cpu ? 0 : -1;
}

static inline void cd_fini(struct cd *h)
{
    x86_cpu_free(h->cpu);
    x86_emu_free(h->emu);
    munmap(h->jit, 4096);
    free(h->ram);
    free(h->host_state);
}

/* ---- host side ---- */

static uint8_t *cd_emit(uint8_t *p, const char *bytes, size_t n)
{
    memcpy(p, bytes, n);
    return p + n;
}

static uint8_t *cd_emit_rdi(uint8_t *p, uint8_t op, unsigned r, uint32_t disp)
{
    *p++ = 0x48 | (r >= 8 ? 4 : 0);
    *p++ = op;
    *p++ = 0x80 | ((r & 7) << 3) | 7;
    memcpy(p, &disp, 4);
    return p + 4;
}

static inline void cd_build_stub(struct cd *h, const uint8_t *code, size_t n)
{
    uint8_t *p = h->jit;
    const uint32_t g = offsetof(struct cd_state, gpr), fl = offsetof(struct cd_state, rflags);
    p = cd_emit(p, "\x53\x55\x41\x54\x41\x55\x41\x56\x41\x57\x57", 11);   /* push rbx..r15, rdi */
    p = cd_emit(p, "\xff\xb7", 2);                                       /* push [rdi+fl] */
    memcpy(p, &fl, 4);
    p += 4;
    *p++ = 0x9d;                                                         /* popfq */
    for (unsigned r = 0; r < 16; r++)
        if (r != 4 && r != 7)
            p = cd_emit_rdi(p, 0x8b, r, g + 8 * r);
    p = cd_emit_rdi(p, 0x8b, 7, g + 8 * 7);                              /* rdi last */
    p = cd_emit(p, (const char *)code, n);
    *p++ = 0x9c;                                                         /* pushfq */
    p = cd_emit(p, "\x48\x87\x7c\x24\x08", 5);                           /* xchg rdi, [rsp+8] */
    p = cd_emit(p, "\x8f\x87", 2);                                       /* pop [rdi+fl] */
    memcpy(p, &fl, 4);
    p += 4;
    for (unsigned r = 0; r < 16; r++)
        if (r != 4 && r != 7)
            p = cd_emit_rdi(p, 0x89, r, g + 8 * r);
    p = cd_emit(p, "\x58", 1);                                           /* pop rax (guest rdi) */
    p = cd_emit_rdi(p, 0x89, 0, g + 8 * 7);
    p = cd_emit(p, "\x41\x5f\x41\x5e\x41\x5d\x41\x5c\x5d\x5b\xc3", 11);
}

static inline void cd_run_host(struct cd *h, const uint8_t *code, size_t n, struct cd_state *s,
                        unsigned ptrs)
{
    struct cd_state *hs = h->host_state;
    *hs = *s;
    for (unsigned r = 0; r < 16; r++)
        if (ptrs & (1u << r))
            hs->gpr[r] = (uint64_t)(uintptr_t)hs->data + s->gpr[r];
    cd_build_stub(h, code, n);
    ((void (*)(struct cd_state *))(void *)h->jit)(hs);
    for (unsigned r = 0; r < 16; r++)
        if (ptrs & (1u << r))
            hs->gpr[r] -= (uint64_t)(uintptr_t)hs->data;
    *s = *hs;
}

/* ---- emulator side ---- */

static inline struct x86_seg cd_seg(uint16_t sel, uint16_t attr)
{
    return (struct x86_seg){ .sel = sel, .base = 0, .limit = 0xffffffff, .attr = attr };
}

/* Flat 64-bit CPL0 state; callers adjust fields before x86_cpu_set_regs. */
static inline void cd_regs64(struct x86_regs *r)
{
    memset(r, 0, sizeof(*r));
    r->cs = cd_seg(0x08, 0xa09b);
    r->ss = r->ds = r->es = r->fs = r->gs = cd_seg(0x10, 0xc093);
    r->tr = cd_seg(0x18, 0x8b);
    r->ldtr = cd_seg(0, 0x82);
    r->cr0 = 0x80050033;           /* PG AM WP NE ET MP PE */
    r->cr3 = 0x1000;
    r->cr4 = 0x20 | 0x200 | 0x400;
    r->efer = 0xd00;               /* NXE LMA LME */
    r->pat = 0x0007040600070406ull;
    r->rflags = 2;
}

/* Guest-side start of a run: touch the data and stack pages (so the TLB
 * holds them, write tags included, and translated memory operands take
 * their inline fast path rather than the miss path), load RFLAGS and the
 * GPRs from CD_STATE, and jump to the code under test. The code page
 * starts with a jump here: decoding the first block of a freshly written
 * code page drops every write tag (and the next dispatch does again),
 * which must all happen before the touches. This page never changes, so
 * its translation is made once. */
#define CD_STATE (CD_STACK + 0x1000u)
#define CD_WARM 0x1f0000u
#define CD_WARM_JMP 5u          /* the jump at CD_CODE; the code follows it */

static inline void cd_put_jmp(uint8_t *ram, uint32_t from, uint32_t to)
{
    int32_t rel = (int32_t)(to - (from + 5));
    ram[from] = 0xe9;
    memcpy(ram + from + 1, &rel, 4);
}

static inline void cd_prologue(uint8_t *ram)
{
    uint8_t *p = ram + CD_WARM;
    uint32_t a = CD_DATA;
    *p++ = 0x80, *p++ = 0x0c, *p++ = 0x25;                 /* or byte [CD_DATA], 0 */
    memcpy(p, &a, 4);
    p += 4;
    *p++ = 0;
    *p++ = 0x50, *p++ = 0x58;                               /* push rax ; pop rax */
    a = CD_STATE + 8 * 16;
    *p++ = 0xff, *p++ = 0x34, *p++ = 0x25;                 /* push qword [flags] ; popfq */
    memcpy(p, &a, 4);
    p += 4;
    *p++ = 0x9d;
    for (unsigned r = 0; r < 16; r++) {
        if (r == 4)
            continue;
        a = CD_STATE + 8 * r;                               /* mov r, [CD_STATE + 8r] */
        *p++ = (uint8_t)(0x48 | (r >= 8 ? 4 : 0));
        *p++ = 0x8b;
        *p++ = (uint8_t)(0x04 | (r & 7) << 3);
        *p++ = 0x25;
        memcpy(p, &a, 4);
        p += 4;
    }
    cd_put_jmp(ram, (uint32_t)(p - ram), CD_CODE + CD_WARM_JMP);
}

/* Runs code + HLT; returns 0 or the exception vector raised. With `warm`
 * the cd_prologue runs first and sets the registers. */
static inline int cd_run_emu_warm(struct cd *h, const uint8_t *code, size_t n, struct cd_state *s,
                                  unsigned ptrs, bool warm)
{
    struct x86_regs r;
    size_t pro = 0;
    if (warm) {
        if (h->ram[CD_WARM] == 0)
            cd_prologue(h->ram);
        cd_put_jmp(h->ram, CD_CODE, CD_WARM);
        pro = CD_WARM_JMP;
    }
    memcpy(h->ram + CD_CODE + pro, code, n);
    h->ram[CD_CODE + pro + n] = 0xf4;
    x86_emu_invalidate_code(h->emu, CD_CODE, pro + n + 1);
    memcpy(h->ram + CD_DATA, s->data, CD_DATA_SIZE);
    cd_regs64(&r);
    memcpy(r.gpr, s->gpr, sizeof(r.gpr));
    for (unsigned i = 0; i < 16; i++)
        if (ptrs & (1u << i))
            r.gpr[i] = CD_DATA + s->gpr[i];
    r.gpr[4] = CD_STACK;
    r.rip = CD_CODE;
    r.rflags = s->rflags;
    if (warm) {
        memcpy(h->ram + CD_STATE, r.gpr, sizeof r.gpr);
        memcpy(h->ram + CD_STATE + 8 * 16, &r.rflags, 8);
        r.rflags = 2;
    }
    x86_cpu_set_regs(h->cpu, &r);
    int vec = x86_cpu_step(h->cpu, 128, true);
    x86_cpu_get_regs(h->cpu, &r);
    if (!vec && r.rip != CD_CODE + pro + n + 1)
        vec = 255;                 /* did not reach the HLT */
    memcpy(s->gpr, r.gpr, sizeof(r.gpr));
    for (unsigned i = 0; i < 16; i++)
        if (ptrs & (1u << i))
            s->gpr[i] -= CD_DATA;
    s->rflags = r.rflags;
    memcpy(s->data, h->ram + CD_DATA, CD_DATA_SIZE);
    return vec;
}

static inline int cd_run_emu(struct cd *h, const uint8_t *code, size_t n, struct cd_state *s,
                             unsigned ptrs)
{
    return cd_run_emu_warm(h, code, n, s, ptrs, false);
}

/* ---- whole programs, run until they write port 0x80 --------------------- */

/* QUOKKA_JIT=0 turns the JIT off for the whole process: "translated" runs
 * interpret too, so only their results, not their dispatch counts, say
 * anything then. */
static inline bool cd_jit_on(void)
{
    const char *e = getenv("QUOKKA_JIT");
    return !e || strcmp(e, "0") != 0;
}

static struct x86_cpu *cd_prog_running;

static void cd_prog_exit_on_out(void *opaque, uint16_t port, uint32_t val, unsigned size)
{
    if (port == 0x80)
        x86_cpu_kick(cd_prog_running, X86_EV_EXIT);
}

/* A second vCPU on h's machine with `code` at CD_CODE and *r a flat 64-bit
 * state there (RBX = CD_DATA, RSP = CD_STACK), JIT threshold `jit` (-1:
 * interpreted); x86_cpu_run then returns once the program does OUT 0x80.
 * JIT_LOG=1 logs everything. */
static inline struct x86_cpu *cd_prog_cpu(struct cd *h, const uint8_t *code, size_t n, int jit,
                                          struct x86_regs *r)
{
    struct x86_bus bus = h->bus;
    bus.pio_out = cd_prog_exit_on_out;
    struct x86_cpu *cpu = x86_cpu_new(h->emu, 1, true, &bus);
    if (!cpu)
        return NULL;
    cd_prog_running = cpu;
    x86_cpu_set_jit(cpu, jit);
    if (getenv("JIT_LOG"))
        x86_cpu_set_log(cpu, ~0u);
    memcpy(h->ram + CD_CODE, code, n);
    cd_regs64(r);
    r->gpr[3] = CD_DATA;
    r->gpr[4] = CD_STACK;
    r->rip = CD_CODE;
    return cpu;
}

#endif
