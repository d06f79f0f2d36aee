/* System-level behaviour of the emulated CPU: small guest programs whose
 * outcome the SDM fixes. Page faults and their error codes and CR2,
 * exception delivery with and without error code (IST stack, privilege
 * change to RSP0), #GP on a bad selector, SYSCALL/SYSRET, IRETQ to ring 3,
 * INT n against gate DPL, the speculation-control MSRs, CLI/STI/SWAPGS
 * interpreted and translated, and the real -> protected -> long mode switch. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "accel/emu/cpu.h"

#define RAM_SIZE (4u << 20)
#define GDT 0x1000
#define IDT 0x2000
#define HANDLERS 0x3000   /* vector v at HANDLERS + 16 * v: mov r15d, v; hlt */
#define TSS 0x4000
#define PML4 0x10000
#define KCODE 0x20000
#define SYSCALL_ENTRY 0x21000
#define UCODE 0x30000
#define UCODE2 0x31000
#define KSTACK 0x70000
#define RSP0 0x80000
#define IST1 0x90000

/* mov dword ptr [0x50010], eax; hlt */
static const uint8_t pf_write_np[] = { 0x89, 0x04, 0x25, 0x10, 0x00, 0x05, 0x00, 0xf4 };
/* push 0x1b; push 0x60000; push 0x202; push 0x23; push 0x30000; iretq */
static const uint8_t to_user[] = { 0x6a, 0x1b, 0x68, 0x00, 0x00, 0x06, 0x00, 0x68, 0x02, 0x02, 0x00, 0x00, 0x6a, 0x23, 0x68, 0x00, 0x00, 0x03, 0x00, 0x48, 0xcf };
/* mov dword ptr [0x51000], eax; hlt */
static const uint8_t user_write_ro[] = { 0x89, 0x04, 0x25, 0x00, 0x10, 0x05, 0x00, 0xf4 };
/* mov rax, 0x52000; jmp rax */
static const uint8_t nx_fetch[] = { 0x48, 0xc7, 0xc0, 0x00, 0x20, 0x05, 0x00, 0xff, 0xe0 };
/* mov ax, 0x3b; mov ds, ax; hlt */
static const uint8_t gp_selector[] = { 0x66, 0xb8, 0x3b, 0x00, 0x8e, 0xd8, 0xf4 };
/* ud2 */
static const uint8_t ud[] = { 0x0f, 0x0b };
/* xor ecx, ecx; div ecx */
static const uint8_t de[] = { 0x31, 0xc9, 0xf7, 0xf1 };
/* mov ecx, 0xc0000080; rdmsr; or eax, 1; wrmsr; mov ecx, 0xc0000081; xor eax, eax; mov edx, 0x00100008; wrmsr; mov ecx, 0xc0000082; mov eax, 0x21000; xor edx, edx; wrmsr; mov ecx, 0xc0000084; mov eax, 0x200; wrmsr; push 0x1b; push 0x60000; push 0x202; push 0x23; push 0x31000; iretq */
static const uint8_t syscall_setup[] = { 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x83, 0xc8, 0x01, 0x0f, 0x30, 0xb9, 0x81, 0x00, 0x00, 0xc0, 0x31, 0xc0, 0xba, 0x08, 0x00, 0x10, 0x00, 0x0f, 0x30, 0xb9, 0x82, 0x00, 0x00, 0xc0, 0xb8, 0x00, 0x10, 0x02, 0x00, 0x31, 0xd2, 0x0f, 0x30, 0xb9, 0x84, 0x00, 0x00, 0xc0, 0xb8, 0x00, 0x02, 0x00, 0x00, 0x0f, 0x30, 0x6a, 0x1b, 0x68, 0x00, 0x00, 0x06, 0x00, 0x68, 0x02, 0x02, 0x00, 0x00, 0x6a, 0x23, 0x68, 0x00, 0x10, 0x03, 0x00, 0x48, 0xcf };
/* IA32_SPEC_CTRL takes IBRS|BHI_DIS_S and reads it back; IBPB is accepted;
 * ARCH_CAPABILITIES -> r9d, CPUID.(7,2).EDX -> r10d; then a reserved
 * SPEC_CTRL bit must fault:
 * mov ecx, 0x48; mov eax, 0x401; xor edx, edx; wrmsr; xor eax, eax; rdmsr;
 * mov r8d, eax; mov ecx, 0x49; mov eax, 1; wrmsr; mov ecx, 0x10a; rdmsr;
 * mov r9d, eax; mov eax, 7; mov ecx, 2; cpuid; mov r10d, edx;
 * mov ecx, 0x48; mov eax, 8; xor edx, edx; wrmsr; hlt */
static const uint8_t spec_ctrl_prog[] = {
    0xb9, 0x48, 0x00, 0x00, 0x00, 0xb8, 0x01, 0x04, 0x00, 0x00, 0x31, 0xd2, 0x0f, 0x30, 0x31,
    0xc0, 0x0f, 0x32, 0x41, 0x89, 0xc0, 0xb9, 0x49, 0x00, 0x00, 0x00, 0xb8, 0x01, 0x00, 0x00,
    0x00, 0x0f, 0x30, 0xb9, 0x0a, 0x01, 0x00, 0x00, 0x0f, 0x32, 0x41, 0x89, 0xc1, 0xb8, 0x07,
    0x00, 0x00, 0x00, 0xb9, 0x02, 0x00, 0x00, 0x00, 0x0f, 0xa2, 0x41, 0x89, 0xd2, 0xb9, 0x48,
    0x00, 0x00, 0x00, 0xb8, 0x08, 0x00, 0x00, 0x00, 0x31, 0xd2, 0x0f, 0x30, 0xf4 };
/* cli; pushfq; pop r8; sti; pushfq; pop r9; KERNEL_GS_BASE = 0x6000;
 * GS_BASE = 0x5678; swapgs; rdmsr GS_BASE -> r10d; rdmsr KERNEL_GS_BASE ->
 * r11d; mov rdi, gs:[8]; lfence; mfence; sfence; hlt */
static const uint8_t kernel_sys_prog[] = {
    0xfa, 0x9c, 0x41, 0x58, 0xfb, 0x9c, 0x41, 0x59, 0xb9, 0x02, 0x01, 0x00, 0xc0, 0xb8, 0x00,
    0x60, 0x00, 0x00, 0x31, 0xd2, 0x0f, 0x30, 0xb9, 0x01, 0x01, 0x00, 0xc0, 0xb8, 0x78, 0x56,
    0x00, 0x00, 0x0f, 0x30, 0x0f, 0x01, 0xf8, 0x0f, 0x32, 0x41, 0x89, 0xc2, 0xb9, 0x02, 0x01,
    0x00, 0xc0, 0x0f, 0x32, 0x41, 0x89, 0xc3, 0x65, 0x48, 0x8b, 0x3c, 0x25, 0x08, 0x00, 0x00,
    0x00, 0x0f, 0xae, 0xe8, 0x0f, 0xae, 0xf0, 0x0f, 0xae, 0xf8, 0xf4 };
/* sti; jmp $ (the pending interrupt must end the loop) */
static const uint8_t sti_loop[] = { 0xfb, 0xeb, 0xfe };
/* sti; hlt (the interrupt wakes the HLT: shadow over STI's successor) */
static const uint8_t sti_hlt[] = { 0xfb, 0xf4 };
/* mov r8, rcx; mov r9, r11; mov r10d, eax; sysretq */
static const uint8_t syscall_handler[] = { 0x49, 0x89, 0xc8, 0x4d, 0x89, 0xd9, 0x41, 0x89, 0xc2, 0x48, 0x0f, 0x07 };
/* mov eax, 0x77; syscall; int3 */
static const uint8_t user_syscall[] = { 0xb8, 0x77, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xcc };
/* int 0x40 */
static const uint8_t user_int_dpl0[] = { 0xcd, 0x40 };
/* mov r15d, 0x12345678; hlt */
static const uint8_t handler[] = { 0x41, 0xbf, 0x78, 0x56, 0x34, 0x12, 0xf4 };
/* Real mode at 0x7c00: cli; xor ax,ax; mov ds,ax; mov ss,ax; mov sp,0x7000;
 * int 0x40 (IVT handler sets bx); lgdt [0x7e00]; mov eax,cr0; or al,1;
 * mov cr0,eax; jmp far 0x08:pm32 (66 ea, 32-bit offset) |
 * pm32: mov ax,0x10; mov ds,ax; mov ss,ax; mov esp,0x7000; CR4.PAE; cr3=0x10000;
 * EFER.LME via rdmsr/wrmsr; CR0.PG; jmp 0x18:lm64 |
 * lm64: mov rax,0x123456789abcdef0; hlt */
static const uint8_t modes_prog[] = {
  0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xd0, 0xbc, 0x00, 0x70, 0xcd, 0x40,
  0x0f, 0x01, 0x16, 0x00, 0x7e, 0x0f, 0x20, 0xc0, 0x0c, 0x01, 0x0f, 0x22,
  0xc0, 0x66, 0xea, 0x21, 0x7c, 0x00, 0x00, 0x08, 0x00, 0x66, 0xb8, 0x10,
  0x00, 0x8e, 0xd8, 0x8e, 0xd0, 0xbc, 0x00, 0x70, 0x00, 0x00, 0x0f, 0x20,
  0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb8, 0x00, 0x00, 0x01, 0x00,
  0x0f, 0x22, 0xd8, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00,
  0x01, 0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00,
  0x80, 0x0f, 0x22, 0xc0, 0xea, 0x5f, 0x7c, 0x00, 0x00, 0x18, 0x00, 0x48,
  0xb8, 0xf0, 0xde, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12, 0xf4
};
/* IVT handler for int 0x40 at 0x0000:0x8000: mov bx, 0x55; iret */
static const uint8_t real_handler[] = { 0xbb, 0x55, 0x00, 0xcf };


struct sys {
    uint8_t *ram;
    struct x86_emu *emu;
    struct x86_cpu *cpu;
    struct x86_bus bus;
};

static uint8_t *ram_page(void *opaque, uint64_t gpa)
{
    struct sys *s = opaque;
    return gpa < RAM_SIZE ? s->ram + (gpa & ~0xfffull) : NULL;
}
static uint64_t mmio_read(void *opaque, uint64_t gpa, unsigned size) { return ~0ull; }
static void mmio_write(void *opaque, uint64_t gpa, uint64_t val, unsigned size) {}
static uint32_t pio_in(void *opaque, uint16_t port, unsigned size) { return ~0u; }
static void pio_out(void *opaque, uint16_t port, uint32_t val, unsigned size) {}
static int pending_vector = -1;
static int ack(void *opaque)
{
    int v = pending_vector;
    pending_vector = -1;
    return v;
}
static int shutdowns;
static void shutdown_cb(void *opaque) { shutdowns++; }

static void put64(struct sys *s, uint64_t a, uint64_t v) { memcpy(s->ram + a, &v, 8); }
static uint64_t get64(struct sys *s, uint64_t a) { uint64_t v; memcpy(&v, s->ram + a, 8); return v; }

static void gate(struct sys *s, int vec, uint64_t target, unsigned dpl, unsigned ist)
{
    uint64_t lo = (target & 0xffff) | (0x08ull << 16) | ((uint64_t)ist << 32) |
                  ((0x8eull | (dpl << 5)) << 40) | ((target >> 16) & 0xffff) << 48;
    put64(s, IDT + 16 * vec, lo);
    put64(s, IDT + 16 * vec + 8, target >> 32);
}

/* Page tables: the first 2 MiB in 4 KiB pages (supervisor RW) with a few
 * special pages, the next 2 MiB as one large page. */
static void map(struct sys *s, uint64_t va, uint64_t flags)
{
    put64(s, PML4 + 0x3000 + 8 * (va >> 12), flags ? (va | flags) : 0);
}

static struct sys *sys_new(void)
{
    struct sys *s = calloc(1, sizeof(*s));
    s->ram = aligned_alloc(4096, RAM_SIZE);
    memset(s->ram, 0, RAM_SIZE);
    s->bus = (struct x86_bus){ .opaque = s, .ram_page = ram_page, .mmio_read = mmio_read,
                               .mmio_write = mmio_write, .pio_in = pio_in, .pio_out = pio_out,
                               .ack_interrupt = ack, .shutdown = shutdown_cb };
    s->emu = x86_emu_new();
    s->cpu = x86_cpu_new(s->emu, 0, true, &s->bus);
    /* GDT: null, kcode64 0x08, kdata 0x10, udata 0x18, ucode64 0x20, TSS 0x28 */
    put64(s, GDT + 0x08, 0x00af9b000000ffffull);
    put64(s, GDT + 0x10, 0x00cf93000000ffffull);
    put64(s, GDT + 0x18, 0x00cff3000000ffffull);
    put64(s, GDT + 0x20, 0x00affb000000ffffull);
    put64(s, GDT + 0x28, 0x0000890000000067ull | ((uint64_t)TSS << 16));
    put64(s, TSS + 4, RSP0);
    put64(s, TSS + 0x24, IST1);
    for (int v = 0; v < 256; v++) {
        uint8_t *h = s->ram + HANDLERS + 16 * v;
        memcpy(h, handler, sizeof handler);
        memcpy(h + 2, &v, 4);
        gate(s, v, HANDLERS + 16 * v, v == 3 ? 3 : 0, v == 6 ? 1 : 0);
    }
    put64(s, PML4, (PML4 + 0x1000) | 7);
    put64(s, PML4 + 0x1000, (PML4 + 0x2000) | 7);
    put64(s, PML4 + 0x2000, (PML4 + 0x3000) | 7);
    put64(s, PML4 + 0x2008, 0x200000 | 0x83);
    for (uint64_t va = 0; va < 0x200000; va += 4096)
        map(s, va, 3);
    map(s, 0x50000, 0);                        /* not present */
    map(s, 0x51000, 5);                        /* user, read-only */
    put64(s, PML4 + 0x3000 + 8 * 0x52, 0x52000 | 3 | (1ull << 63));   /* NX */
    map(s, UCODE, 7);
    map(s, UCODE2, 7);
    map(s, 0x5f000, 7);                        /* user stack */
    memcpy(s->ram + SYSCALL_ENTRY, syscall_handler, sizeof syscall_handler);
    return s;
}

static void sys_free(struct sys *s)
{
    x86_cpu_free(s->cpu);
    x86_emu_free(s->emu);
    free(s->ram);
    free(s);
}

static struct x86_seg seg(uint16_t sel, uint16_t attr)
{
    return (struct x86_seg){ .sel = sel, .base = 0, .limit = 0xffffffff, .attr = attr };
}

/* Enter 64-bit CPL0 at KCODE with code, run until HLT. */
static struct x86_regs run64(struct sys *s, const uint8_t *code, size_t n)
{
    struct x86_regs r;
    memset(&r, 0, sizeof r);
    memcpy(s->ram + KCODE, code, n);
    x86_emu_invalidate_code(s->emu, KCODE, n);
    r.cs = seg(0x08, 0xa09b);
    r.ss = r.ds = r.es = r.fs = r.gs = seg(0x10, 0xc093);
    r.tr = (struct x86_seg){ 0x28, TSS, 0x67, 0x8b };
    r.ldtr = (struct x86_seg){ 0, 0, 0, 0x82 };
    r.gdt_base = GDT;
    r.gdt_limit = 0x37;
    r.idt_base = IDT;
    r.idt_limit = 0xfff;
    r.cr0 = 0x80010033;
    r.cr3 = PML4;
    r.cr4 = 0x20;
    r.efer = 0xd00;
    r.rflags = 2;
    r.gpr[4] = KSTACK;
    r.rip = KCODE;
    x86_cpu_set_regs(s->cpu, &r);
    x86_cpu_step(s->cpu, 10000, false);
    x86_cpu_get_regs(s->cpu, &r);
    return r;
}

static uint64_t handler_end(int vec)
{
    return HANDLERS + 16 * vec + sizeof handler;
}

static void test_pf_not_present(void **state)
{
    struct sys *s = sys_new();
    struct x86_regs r = run64(s, pf_write_np, sizeof pf_write_np);
    assert_int_equal(r.gpr[15], 14);
    assert_int_equal(r.rip, handler_end(14));
    assert_int_equal(r.cr2, 0x50010);
    assert_int_equal(r.gpr[4], KSTACK - 48);           /* same-privilege frame, 16-aligned */
    assert_int_equal(get64(s, r.gpr[4]), 0x2);          /* W, not present, supervisor */
    assert_int_equal(get64(s, r.gpr[4] + 8), KCODE);    /* faulting instruction restarts */
    assert_int_equal(get64(s, r.gpr[4] + 16), 0x08);
    sys_free(s);
}

static void test_user_write_ro_switches_stack(void **state)
{
    struct sys *s = sys_new();
    memcpy(s->ram + UCODE, user_write_ro, sizeof user_write_ro);
    struct x86_regs r = run64(s, to_user, sizeof to_user);
    assert_int_equal(r.gpr[15], 14);
    assert_int_equal(r.cr2, 0x51000);
    assert_int_equal(r.gpr[4], RSP0 - 48);
    assert_int_equal(get64(s, RSP0 - 48), 0x7);         /* P W U */
    assert_int_equal(get64(s, RSP0 - 40), UCODE);
    assert_int_equal(get64(s, RSP0 - 32), 0x23);        /* user CS */
    assert_int_equal(get64(s, RSP0 - 24) & 0x200, 0x200);
    assert_int_equal(get64(s, RSP0 - 16), 0x60000);     /* user RSP */
    assert_int_equal(get64(s, RSP0 - 8), 0x1b);         /* user SS */
    assert_int_equal(r.cs.sel, 0x08);
    assert_int_equal(r.ss.sel & 3, 0);
    assert_int_equal(r.rflags & 0x200, 0);              /* interrupt gate cleared IF */
    /* the fault set the accessed bit of the user page */
    assert_true(get64(s, PML4 + 0x3000 + 8 * (UCODE >> 12)) & 0x20);
    sys_free(s);
}

static void test_nx_fetch(void **state)
{
    struct sys *s = sys_new();
    struct x86_regs r = run64(s, nx_fetch, sizeof nx_fetch);
    assert_int_equal(r.gpr[15], 14);
    assert_int_equal(r.cr2, 0x52000);
    assert_int_equal(get64(s, r.gpr[4]), 0x11);         /* P, instruction fetch */
    assert_int_equal(get64(s, r.gpr[4] + 8), 0x52000);
    sys_free(s);
}

static void test_gp_bad_selector(void **state)
{
    struct sys *s = sys_new();
    struct x86_regs r = run64(s, gp_selector, sizeof gp_selector);
    assert_int_equal(r.gpr[15], 13);
    assert_int_equal(get64(s, r.gpr[4]), 0x38);         /* the selector, RPL cleared */
    assert_int_equal(get64(s, r.gpr[4] + 8), KCODE + 4);
    sys_free(s);
}

static void test_ud_on_ist_stack(void **state)
{
    struct sys *s = sys_new();
    struct x86_regs r = run64(s, ud, sizeof ud);
    assert_int_equal(r.gpr[15], 6);
    assert_int_equal(r.gpr[4], IST1 - 40);              /* no error code, IST1 stack */
    assert_int_equal(get64(s, IST1 - 40), KCODE);
    sys_free(s);
}

static void test_divide_error(void **state)
{
    struct sys *s = sys_new();
    struct x86_regs r = run64(s, de, sizeof de);
    assert_int_equal(r.gpr[15], 0);
    assert_int_equal(r.rip, handler_end(0));
    assert_int_equal(get64(s, r.gpr[4]), KCODE + 2);    /* fault: points at the DIV */
    sys_free(s);
}

static void test_syscall_sysret(void **state)
{
    struct sys *s = sys_new();
    memcpy(s->ram + UCODE2, user_syscall, sizeof user_syscall);
    struct x86_regs r = run64(s, syscall_setup, sizeof syscall_setup);
    assert_int_equal(r.gpr[10], 0x77);                  /* the kernel entry ran */
    assert_int_equal(r.gpr[8], UCODE2 + 7);             /* RCX = return RIP */
    assert_int_equal(r.gpr[9] & 0x200, 0x200);          /* R11 = user RFLAGS */
    assert_int_equal(r.gpr[15], 3);                     /* back in ring 3: INT3 via DPL3 gate */
    assert_int_equal(get64(s, RSP0 - 40), UCODE2 + 8);  /* trap: after the INT3 */
    assert_int_equal(get64(s, RSP0 - 32), 0x23);        /* SYSRET CS = STAR[63:48] + 16 | 3 */
    assert_int_equal(get64(s, RSP0 - 8), 0x1b);         /* SYSRET SS = STAR[63:48] + 8 | 3 */
    sys_free(s);
}

/* The speculation controls Linux needs to see before it leaves retpolines
 * and the branch-history clearing loop out of every system call. */
static void test_spec_ctrl(void **state)
{
    struct sys *s = sys_new();
    struct x86_regs r = run64(s, spec_ctrl_prog, sizeof spec_ctrl_prog);
    assert_int_equal(r.gpr[8], 0x401);
    assert_true(r.gpr[9] & 0x2);                        /* IBRS_ALL */
    assert_true(r.gpr[9] & (1u << 20));                 /* BHI_NO */
    assert_true(r.gpr[10] & 0x10);                      /* BHI_CTRL */
    assert_int_equal(r.gpr[15], 13);                    /* reserved bit: #GP */
    assert_int_equal(get64(s, r.gpr[4] + 8), KCODE + sizeof spec_ctrl_prog - 3);
    sys_free(s);
}

/* CLI, STI, SWAPGS and the fences, interpreted and translated (the JIT
 * does them inline at CPL 0): the same state either way. */
static void test_kernel_sys_insns(void **state)
{
    for (int jit = 0; jit < 2; jit++) {
        struct sys *s = sys_new();
        x86_cpu_set_jit(s->cpu, jit ? 0 : -1);
        put64(s, 0x6008, 0x1122334455667788ull);
        struct x86_regs r = run64(s, kernel_sys_prog, sizeof kernel_sys_prog);
        assert_int_equal(r.rip, KCODE + sizeof kernel_sys_prog);
        assert_int_equal(r.gpr[8] & 0x200, 0);              /* CLI cleared IF */
        assert_int_equal(r.gpr[9] & 0x200, 0x200);          /* STI set it */
        assert_int_equal(r.gpr[10], 0x6000);                /* SWAPGS swapped the bases */
        assert_int_equal(r.gpr[11], 0x5678);
        assert_int_equal(r.gpr[7], 0x1122334455667788ull);  /* GS: uses the new base */
        sys_free(s);
    }
}

/* Ring 3 may not CLI (IOPL 0) nor SWAPGS: #GP, translated too. */
static void test_user_cli_swapgs_fault(void **state)
{
    static const uint8_t cli[] = { 0xfa }, swapgs[] = { 0x0f, 0x01, 0xf8 };
    for (int i = 0; i < 2; i++) {
        struct sys *s = sys_new();
        x86_cpu_set_jit(s->cpu, 0);
        memcpy(s->ram + UCODE, i ? swapgs : cli, i ? sizeof swapgs : sizeof cli);
        struct x86_regs r = run64(s, to_user, sizeof to_user);
        assert_int_equal(r.gpr[15], 13);
        assert_int_equal(get64(s, RSP0 - 40), UCODE);       /* the faulting instruction */
        sys_free(s);
    }
}

/* An interrupt pending while IF=0 is taken once STI has run and the
 * instruction after it: out of a translated loop, and out of STI; HLT
 * (after the HLT, which it wakes). */
static void test_sti_pending_interrupt(void **state)
{
    for (int jit = 0; jit < 2; jit++) {
        for (int hlt = 0; hlt < 2; hlt++) {
            struct sys *s = sys_new();
            x86_cpu_set_jit(s->cpu, jit ? 0 : -1);
            pending_vector = 0x40;
            x86_cpu_kick(s->cpu, X86_EV_INTR);
            struct x86_regs r = run64(s, hlt ? sti_hlt : sti_loop, hlt ? sizeof sti_hlt
                                                                      : sizeof sti_loop);
            assert_int_equal(r.gpr[15], 0x40);
            assert_int_equal(get64(s, KSTACK - 40), KCODE + (hlt ? 2 : 1));
            sys_free(s);
        }
    }
}

/* STI right before an instruction that crosses into a page the fetch TLB
 * does not hold yet (the block's tail then cannot run from the block):
 * the shadow still covers that instruction. jmp 0x22ffb | 0x22ffb: sti ;
 * mov r14d, 1 (ends at 0x23002) ; hlt */
static void test_sti_before_crossing(void **state)
{
    static const uint8_t jmp[] = { 0xe9, 0xf6, 0x2f, 0x00, 0x00 };
    static const uint8_t tail[] = { 0xfb, 0x41, 0xbe, 0x01, 0x00, 0x00, 0x00, 0xf4 };
    for (int jit = 0; jit < 2; jit++) {
        struct sys *s = sys_new();
        x86_cpu_set_jit(s->cpu, jit ? 0 : -1);
        memcpy(s->ram + 0x22ffb, tail, sizeof tail);
        pending_vector = 0x40;
        x86_cpu_kick(s->cpu, X86_EV_INTR);
        struct x86_regs r = run64(s, jmp, sizeof jmp);
        assert_int_equal(r.gpr[15], 0x40);
        assert_int_equal(r.gpr[14], 1);                     /* the MOV ran first */
        assert_int_equal(get64(s, KSTACK - 40), 0x23002);
        sys_free(s);
    }
}

static void test_int_gate_dpl(void **state)
{
    struct sys *s = sys_new();
    memcpy(s->ram + UCODE, user_int_dpl0, sizeof user_int_dpl0);
    struct x86_regs r = run64(s, to_user, sizeof to_user);
    assert_int_equal(r.gpr[15], 13);
    assert_int_equal(get64(s, RSP0 - 48), 0x40 * 8 + 2);    /* IDT, vector 0x40 */
    assert_int_equal(get64(s, RSP0 - 40), UCODE);
    sys_free(s);
}

static void test_triple_fault(void **state)
{
    struct sys *s = sys_new();
    memset(s->ram + IDT, 0, 4096);                      /* no gates at all */
    shutdowns = 0;
    run64(s, ud, sizeof ud);
    assert_int_equal(shutdowns, 1);
    sys_free(s);
}

static void test_real_to_long_mode(void **state)
{
    struct sys *s = sys_new();
    struct x86_regs r;
    /* GDT for the switch: code32 0x08, data 0x10, code64 0x18 */
    put64(s, 0x7e08, 0x00cf9b000000ffffull);
    put64(s, 0x7e10, 0x00cf93000000ffffull);
    put64(s, 0x7e18, 0x00af9b000000ffffull);
    uint16_t lim = 0x1f;
    uint32_t base = 0x7e08 - 8;
    memcpy(s->ram + 0x7e00, &lim, 2);
    memcpy(s->ram + 0x7e02, &base, 4);
    memcpy(s->ram + 0x7c00, modes_prog, sizeof modes_prog);
    memcpy(s->ram + 0x8000, real_handler, sizeof real_handler);
    uint32_t ivt = 0x8000;                              /* 0000:8000 */
    memcpy(s->ram + 0x40 * 4, &ivt, 4);
    x86_cpu_get_regs(s->cpu, &r);                       /* power-on state: real mode */
    assert_int_equal(r.cr0 & 1, 0);
    r.cs = (struct x86_seg){ 0, 0, 0xffff, 0x9b };
    r.rip = 0x7c00;
    x86_cpu_set_regs(s->cpu, &r);
    x86_cpu_step(s->cpu, 1000, false);
    x86_cpu_get_regs(s->cpu, &r);
    assert_int_equal(r.gpr[3] & 0xffff, 0x55);         /* real-mode INT went through the IVT */
    assert_int_equal(r.gpr[0], 0x123456789abcdef0ull);  /* reached 64-bit code */
    assert_true(r.efer & 0x400);                        /* LMA */
    assert_int_equal(r.cs.sel, 0x18);
    assert_true(r.cs.attr & 0x2000);                    /* CS.L */
    assert_true(r.halted);
    sys_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pf_not_present),
        cmocka_unit_test(test_user_write_ro_switches_stack),
        cmocka_unit_test(test_nx_fetch),
        cmocka_unit_test(test_gp_bad_selector),
        cmocka_unit_test(test_ud_on_ist_stack),
        cmocka_unit_test(test_divide_error),
        cmocka_unit_test(test_syscall_sysret),
        cmocka_unit_test(test_spec_ctrl),
        cmocka_unit_test(test_kernel_sys_insns),
        cmocka_unit_test(test_user_cli_swapgs_fault),
        cmocka_unit_test(test_sti_pending_interrupt),
        cmocka_unit_test(test_sti_before_crossing),
        cmocka_unit_test(test_int_gate_dpl),
        cmocka_unit_test(test_triple_fault),
        cmocka_unit_test(test_real_to_long_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
