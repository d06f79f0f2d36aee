/* Instructions that straddle a page boundary: in 64-bit code one ends the
 * block it follows as its tail, valid while the next page maps and holds
 * what it did at decode time; otherwise (a block's first instruction,
 * 32-bit code, a tail no longer valid) the CPU's per-vCPU cache of
 * crossing instructions runs it (codecache.c). A loop calls F,
 * whose last instruction is a JMP rel32 crossing from 0x180fff into
 * 0x181000 (two bytes of its displacement on each page; nothing else on
 * the second page is code); where it lands adds a different amount to
 * ESI. Halfway through, the loop changes that JMP once: a store to its
 * bytes on the second page or on the first (also followed by a CR3
 * write), the second page remapped to another physical page (INVLPG; CR3
 * writes, global first page or not), the first page remapped. Each change
 * must take effect at the very next execution: ESI counts which target
 * every call reached. Separately, the same address runs in 32-bit
 * compatibility mode, and at CPL 3 with the second page supervisor-only.
 * Every program runs interpreted and translated (x86_cpu_run until
 * OUT 0x80). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "cpu-diff.h"
#include "accel/emu/cpu_int.h"

struct run {
    uint64_t gpr[16];
    uint64_t insns, dispatches, cr2;
    uint64_t xc_hit, xc_miss;
};

#define F_LA 0x180ff0u            /* F: add edi, 1 ; nops ; jmp rel32 at 0x180ffd */
#define JMP_LA 0x180ffdu
#define PAGE2 0x181000u
#define PAGE2_ALT 0x191000u       /* what (c) maps at PAGE2 */
#define PAGE1_ALT 0x190000u       /* ... or at the first page */
#define PTE_PAGE2 (0x4000u + 0x181u * 8)
#define EVENT 0x100100u           /* the change, called once when ECX == 150 */
#define ROUNDS 300u
#define GDT 0x5000u

/* Targets of the JMP and what each adds to ESI. */
enum { T_FIRST = 0x182000, T_PAGE2_WRITTEN = 0x192000, T_PAGE1_WRITTEN = 0x183000,
       T_REMAPPED = 0x1a2000, T_PAGE1_REMAPPED = 0x184000 };

/*      mov ecx, 300 ; xor esi, esi ; xor edi, edi
 * top: call [rbx] (F) ; cmp ecx, 150 ; jne skip ; call [rbx+8] (EVENT)
 * skip: dec ecx ; jnz top ; out 0x80, al ; hlt */
static const uint8_t loop_prog[] = {
    0xb9, 0x2c, 0x01, 0x00, 0x00, 0x31, 0xf6, 0x31, 0xff,
    0xff, 0x13, 0x81, 0xf9, 0x96, 0x00, 0x00, 0x00, 0x75, 0x03, 0xff, 0x53, 0x08,
    0xff, 0xc9, 0x75, 0xef, 0xe6, 0x80, 0xf4,
};

static uint8_t event[32];
static size_t event_len;
static uint64_t pte_global[2];  /* G bits of the two pages' PTEs */

static void put_add_esi_ret(uint8_t *ram, uint32_t at, uint32_t imm)
{
    ram[at] = 0x81;
    ram[at + 1] = 0xc6;
    memcpy(ram + at + 2, &imm, 4);
    ram[at + 6] = 0xc3;
}

/* F: add edi, 1 ; nops up to JMP_LA ; the instruction at JMP_LA */
static void put_f(uint8_t *ram, const uint8_t *insn, size_t n)
{
    static const uint8_t add_edi_1[] = { 0x83, 0xc7, 0x01 };
    memset(ram + F_LA, 0x90, JMP_LA - F_LA);
    memcpy(ram + F_LA, add_edi_1, sizeof add_edi_1);
    memcpy(ram + JMP_LA, insn, n);
}

/* 4 KiB pages for the first 2 MiB (page table at 0x4000), F, the JMP's
 * targets, the second page's replacement, the event. */
static void crossing_setup(uint8_t *ram, struct x86_regs *r)
{
    uint64_t *pd = (uint64_t *)(ram + 0x3000), *pt = (uint64_t *)(ram + 0x4000);
    pd[0] = 0x4000 | 3;
    pd[1] |= 0x100;             /* data and stack global */
    for (uint64_t i = 0; i < 512; i++)
        pt[i] = (i << 12) | 3;
    pt[0x180] |= pte_global[0];
    pt[0x181] |= pte_global[1];
    r->cr4 |= 0x80;             /* PGE */

    static const uint8_t jmp[] = { 0xe9, 0xfe, 0x0f, 0x00, 0x00 };     /* jmp T_FIRST */
    put_f(ram, jmp, sizeof jmp);
    memcpy(ram + PAGE1_ALT + (F_LA & 0xfff), ram + F_LA, JMP_LA + 3 - F_LA);
    ram[PAGE1_ALT + ((JMP_LA + 2) & 0xfff)] = 0x2f;     /* displacement 0x00002ffe */
    ram[PAGE2_ALT] = 0x02;      /* displacement 0x00020ffe: T_REMAPPED */
    ram[PAGE2_ALT + 1] = 0x00;
    put_add_esi_ret(ram, T_FIRST, 1);
    put_add_esi_ret(ram, T_PAGE2_WRITTEN, 0x100);
    put_add_esi_ret(ram, T_PAGE1_WRITTEN, 0x10000);
    put_add_esi_ret(ram, T_REMAPPED, 0x1000000);
    put_add_esi_ret(ram, T_PAGE1_REMAPPED, 0x100000);
    memcpy(ram + EVENT, event, event_len);
    uint64_t ptrs[2] = { F_LA, EVENT };
    memcpy(ram + CD_DATA, ptrs, sizeof ptrs);
}

typedef void prog_setup(uint8_t *ram, struct x86_regs *r);

/* Runs code at CD_CODE from a flat 64-bit state with RBX = CD_DATA. */
static void run_setup(const uint8_t *code, size_t n, int jit, prog_setup *setup, struct run *out)
{
    static struct cd h;
    assert_int_equal(cd_init(&h, 1), 0);
    struct x86_regs r;
    struct x86_cpu *cpu = cd_prog_cpu(&h, code, n, jit, &r);
    assert_non_null(cpu);
    setup(h.ram, &r);
    x86_cpu_set_regs(cpu, &r);
    x86_cpu_run(cpu);
    x86_cpu_get_regs(cpu, &r);
    memcpy(out->gpr, r.gpr, sizeof out->gpr);
    out->cr2 = r.cr2;
    x86_cpu_stats(cpu, &out->insns, &out->dispatches);
    out->xc_hit = cpu->stat_xc_hit;
    out->xc_miss = cpu->stat_xc_miss;
    x86_cpu_free(cpu);
    cd_fini(&h);
}

/* Runs the loop with `ev` as the event, interpreted and translated; both
 * must end with ESI = 151 calls reaching T_FIRST + 149 reaching `after`. */
static void check_change(const uint8_t *ev, size_t len, uint32_t after, struct run *jit_out)
{
    static struct run interp, jit;
    memcpy(event, ev, len);
    event_len = len;
    run_setup(loop_prog, sizeof loop_prog, -1, crossing_setup, &interp);
    run_setup(loop_prog, sizeof loop_prog, 0, crossing_setup, &jit);
    uint32_t want = 151 * 1 + 149 * after;
    assert_int_equal(interp.gpr[7], ROUNDS);
    assert_int_equal(jit.gpr[7], ROUNDS);
    assert_int_equal(interp.gpr[1], 0);
    assert_int_equal(jit.gpr[1], 0);
    assert_int_equal((uint32_t)interp.gpr[6], want);
    assert_int_equal((uint32_t)jit.gpr[6], want);
    assert_int_equal(jit.insns, interp.insns);
    printf("# page-crossing: interpreted %llu cached %llu decoded, translated %llu / %llu\n",
           (unsigned long long)interp.xc_hit, (unsigned long long)interp.xc_miss,
           (unsigned long long)jit.xc_hit, (unsigned long long)jit.xc_miss);
    if (jit_out)
        *jit_out = jit;
}

static const uint8_t ev_none[] = { 0xc3 };

/* The loop alone: the JMP runs as the tail of F's block, so translated
 * code goes from the loop into F and back without the run loop. */
static void test_loop(void **state)
{
    struct run jit;
    pte_global[0] = pte_global[1] = 0;
    check_change(ev_none, sizeof ev_none, 1, &jit);
    assert_true(jit.xc_hit + jit.xc_miss <= 2);
    if (cd_jit_on())
        assert_true(jit.dispatches < ROUNDS / 4);
}

/* The longest instruction there can be, 15 bytes, starting 14 bytes
 * before the page end and called directly, so it starts a block: a block
 * of that tail alone (nine CS prefixes and add esi, 3 (81 c6 imm32, the
 * immediate's last byte on the second page) ; ret) */
#define G_LA (PAGE2 - 14)
static void longest_setup(uint8_t *ram, struct x86_regs *r)
{
    static const uint8_t g[] = { 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e,
                                 0x81, 0xc6, 0x03, 0x00, 0x00, 0x00, 0xc3 };
    crossing_setup(ram, r);
    memcpy(ram + G_LA, g, sizeof g);
    uint64_t ptr = G_LA;
    memcpy(ram + CD_DATA, &ptr, 8);
}

/* The loop over G with `ev` as the event, interpreted and translated. */
static void run_longest(const uint8_t *ev, size_t len, struct run *interp, struct run *jit)
{
    memcpy(event, ev, len);
    event_len = len;
    pte_global[0] = pte_global[1] = 0;
    run_setup(loop_prog, sizeof loop_prog, -1, longest_setup, interp);
    run_setup(loop_prog, sizeof loop_prog, 0, longest_setup, jit);
}

static void test_longest_at_page_end(void **state)
{
    static struct run interp, jit;
    run_longest(ev_none, sizeof ev_none, &interp, &jit);
    assert_int_equal(interp.gpr[6], 3 * ROUNDS);
    assert_int_equal(jit.gpr[6], 3 * ROUNDS);
    assert_true(interp.xc_hit + interp.xc_miss <= 2);
    assert_true(jit.xc_hit + jit.xc_miss <= 2);
}

/* The same instruction, its immediate's top byte (on the second page)
 * rewritten halfway: mov byte [0x181000], 1 ; ret. The block that is only
 * this tail may not run it any more; it must run from the cache instead,
 * with the new immediate, and not stall the loop. */
static void test_longest_second_page_written(void **state)
{
    static const uint8_t ev[] = { 0xc6, 0x04, 0x25, 0x00, 0x10, 0x18, 0x00, 0x01, 0xc3 };
    static struct run interp, jit;
    run_longest(ev, sizeof ev, &interp, &jit);
    uint32_t want = 151u * 3 + 149u * 0x01000003u;
    assert_int_equal((uint32_t)interp.gpr[6], want);
    assert_int_equal((uint32_t)jit.gpr[6], want);
    assert_true(interp.xc_hit + interp.xc_miss >= 149);
    assert_true(jit.xc_hit + jit.xc_miss >= 149);
}

/* (a) mov byte [0x181000], 1: displacement 0x00010ffe */
static void test_store_second_page(void **state)
{
    static const uint8_t ev[] = { 0xc6, 0x04, 0x25, 0x00, 0x10, 0x18, 0x00, 0x01, 0xc3 };
    pte_global[0] = pte_global[1] = 0;
    check_change(ev, sizeof ev, 0x100, NULL);
}

/* (b) mov byte [0x180fff], 0x1f: displacement 0x00001ffe */
static void test_store_first_page(void **state)
{
    static const uint8_t ev[] = { 0xc6, 0x04, 0x25, 0xff, 0x0f, 0x18, 0x00, 0x1f, 0xc3 };
    pte_global[0] = pte_global[1] = 0;
    check_change(ev, sizeof ev, 0x10000, NULL);
}

/* The same stores followed by a CR3 write (no page global): the entry is
 * then re-validated by its pages' mappings, which have not changed, and
 * must still see the stores. */
static void test_store_then_flush(void **state)
{
    static const uint8_t page2[] = { 0xc6, 0x04, 0x25, 0x00, 0x10, 0x18, 0x00, 0x01,
                                     0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8, 0xc3 };
    static const uint8_t page1[] = { 0xc6, 0x04, 0x25, 0xff, 0x0f, 0x18, 0x00, 0x1f,
                                     0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8, 0xc3 };
    pte_global[0] = pte_global[1] = 0;
    check_change(page2, sizeof page2, 0x100, NULL);
    check_change(page1, sizeof page1, 0x10000, NULL);
}

/* (c) mov qword [PTE of `page`], `to` | 3 | G ; then the flush: INVLPG
 * [page] or MOV CR3 (ending in RET). */
static void remap(uint32_t page, uint32_t to, uint64_t g1, uint64_t g2, bool invlpg,
                  uint32_t after)
{
    static const uint8_t cr3[] = { 0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8, 0xc3 };
    uint8_t inv[] = { 0x0f, 0x01, 0x3c, 0x25, 0, 0, 0, 0, 0xc3 };
    uint8_t ev[32] = { 0x48, 0xc7, 0x04, 0x25 };
    uint32_t a = 0x4000 + (page >> 12) * 8, v = to | 3 | (uint32_t)(page == PAGE2 ? g2 : g1);
    memcpy(inv + 4, &page, 4);
    memcpy(ev + 4, &a, 4);
    memcpy(ev + 8, &v, 4);
    memcpy(ev + 12, invlpg ? inv : cr3, invlpg ? sizeof inv : sizeof cr3);
    pte_global[0] = g1;
    pte_global[1] = g2;
    check_change(ev, 12 + (invlpg ? sizeof inv : sizeof cr3), after, NULL);
}

static void test_remap_invlpg(void **state)
{
    remap(PAGE2, PAGE2_ALT, 0x100, 0x100, true, 0x1000000);
}

static void test_remap_cr3(void **state)
{
    /* the first page's translation survives the flush, or not */
    remap(PAGE2, PAGE2_ALT, 0x100, 0, false, 0x1000000);
    remap(PAGE2, PAGE2_ALT, 0, 0, false, 0x1000000);
}

/* The first page remapped instead, to a copy of F whose JMP has the
 * displacement 0x00002ffe: the second page alone must not vouch for it. */
static void test_remap_first_page(void **state)
{
    remap(PAGE2 - 0x1000, PAGE1_ALT, 0x100, 0x100, true, 0x100000);
    remap(PAGE2 - 0x1000, PAGE1_ALT, 0, 0, false, 0x100000);
}

/* (d) The same address in 64-bit and in 32-bit code. At 0x180ffd,
 * 48 05 01 00 00 00 is "add rax, 1" (crossing) in 64-bit mode, and
 * "dec eax ; add eax, 1" (the second crossing) in compatibility mode.
 *      mov ecx, 200 ; xor eax, eax
 * top: call [rbx] (F64 at 0x180ff0: add edi, 1 ; nops ; add rax, 1 ; ret)
 *      jmp far [rbx+16] (0x20:0x100100, 32-bit code)
 * back: dec ecx ; jnz top ; out 0x80, al ; hlt
 * at 0x100100 (32-bit): call 0x180ffd ; jmp far 0x08:back
 * Each round adds 1 to EAX in 64-bit mode and nothing in 32-bit mode. */
static const uint8_t mode_prog[] = {
    0xb9, 0xc8, 0x00, 0x00, 0x00, 0x31, 0xc0, 0xff, 0x13, 0xff, 0x6b, 0x10,
    0xff, 0xc9, 0x75, 0xf7, 0xe6, 0x80, 0xf4,
};

static void mode_setup(uint8_t *ram, struct x86_regs *r)
{
    static const uint8_t add_rax_1_ret[] = { 0x48, 0x05, 0x01, 0x00, 0x00, 0x00, 0xc3 };
    put_f(ram, add_rax_1_ret, sizeof add_rax_1_ret);
    uint64_t gdt[5] = { 0, 0x00af9b000000ffffull, 0x00cf93000000ffffull, 0,
                        0x00cf9b000000ffffull };
    memcpy(ram + GDT, gdt, sizeof gdt);
    r->gdt_base = GDT;
    r->gdt_limit = sizeof gdt - 1;
    uint8_t *stub = ram + EVENT;
    int32_t rel = (int32_t)(JMP_LA - (EVENT + 5));
    uint32_t back = CD_CODE + 12;
    stub[0] = 0xe8;
    memcpy(stub + 1, &rel, 4);
    stub[5] = 0xea;
    memcpy(stub + 6, &back, 4);
    stub[10] = 0x08;
    stub[11] = 0x00;
    uint64_t f = F_LA;
    uint32_t far_off = EVENT;
    uint16_t far_sel = 0x20;
    memcpy(ram + CD_DATA, &f, 8);
    memcpy(ram + CD_DATA + 16, &far_off, 4);
    memcpy(ram + CD_DATA + 20, &far_sel, 2);
}

static void test_mode_change(void **state)
{
    static struct run interp, jit;
    run_setup(mode_prog, sizeof mode_prog, -1, mode_setup, &interp);
    run_setup(mode_prog, sizeof mode_prog, 0, mode_setup, &jit);
    assert_int_equal(interp.gpr[0], 200);
    assert_int_equal(jit.gpr[0], 200);
    assert_int_equal(interp.gpr[7], 200);
    assert_int_equal(jit.gpr[7], 200);
    assert_int_equal(jit.insns, interp.insns);
    /* 64-bit runs take the tail; the 32-bit ones come from the cache */
    assert_true(jit.xc_hit >= 200 - 4);
    assert_true(jit.xc_miss <= 4);
}

/* A privilege change: F runs once at CPL 0, then (IRETQ) at CPL 3 with
 * the second page supervisor-only. At CPL 3 the JMP must fault on its
 * fetch from the second page (#PF, CR2 = 0x181000) instead of running.
 * CPL 0: call [rbx] (F) ; push 0x1b ; push USTACK ; push 0x3002 (IOPL 3) ;
 *        push 0x23 ; push UCODE ; iretq
 * UCODE: call [rbx] (F) ; out 0x80, al ; hlt
 * #PF handler: mov r15d, 14 ; out 0x80, al ; hlt */
#define UCODE (CD_CODE + 0x200u)
#define PF_HANDLER (CD_CODE + 0x300u)
#define USTACK (CD_STACK - 0x800u)
static const uint8_t user_prog[] = {
    0xff, 0x13, 0x6a, 0x1b, 0x68, 0x00, 0xf8, 0x2f, 0x00, 0x68, 0x02, 0x30, 0x00, 0x00,
    0x6a, 0x23, 0x68, 0x00, 0x02, 0x10, 0x00, 0x48, 0xcf,
};

static void user_setup(uint8_t *ram, struct x86_regs *r)
{
    pte_global[0] = pte_global[1] = 0;
    crossing_setup(ram, r);
    uint64_t *pml4 = (uint64_t *)(ram + 0x1000), *pdpt = (uint64_t *)(ram + 0x2000);
    uint64_t *pd = (uint64_t *)(ram + 0x3000), *pt = (uint64_t *)(ram + 0x4000);
    pml4[0] |= 4;
    pdpt[0] |= 4;
    pd[0] |= 4;
    pd[1] |= 4;
    for (unsigned i = 0; i < 512; i++)
        if (i != (PAGE2 >> 12))
            pt[i] |= 4;
    static const uint8_t ucode[] = { 0xff, 0x13, 0xe6, 0x80, 0xf4 };
    static const uint8_t handler[] = { 0x41, 0xbf, 0x0e, 0x00, 0x00, 0x00, 0xe6, 0x80, 0xf4 };
    memcpy(ram + UCODE, ucode, sizeof ucode);
    memcpy(ram + PF_HANDLER, handler, sizeof handler);
    uint64_t gdt[5] = { 0, 0x00af9b000000ffffull, 0x00cf93000000ffffull,
                        0x00cff3000000ffffull, 0x00affb000000ffffull };
    memcpy(ram + GDT, gdt, sizeof gdt);
    r->gdt_base = GDT;
    r->gdt_limit = sizeof gdt - 1;
    uint64_t lo = (PF_HANDLER & 0xffff) | (0x08ull << 16) | (0x8eull << 40) |
                  (uint64_t)(PF_HANDLER >> 16) << 48;
    uint64_t hi = 0;
    memcpy(ram + 0x7000 + 16 * 14, &lo, 8);
    memcpy(ram + 0x7000 + 16 * 14 + 8, &hi, 8);
    r->idt_base = 0x7000;
    r->idt_limit = 0xfff;
    uint64_t rsp0 = CD_STACK - 0x100;
    memcpy(ram + 0x6000 + 4, &rsp0, 8);
    r->tr = (struct x86_seg){ .sel = 0x28, .base = 0x6000, .limit = 0x67, .attr = 0x8b };
}

static void test_privilege_change(void **state)
{
    static struct run interp, jit;
    run_setup(user_prog, sizeof user_prog, -1, user_setup, &interp);
    run_setup(user_prog, sizeof user_prog, 0, user_setup, &jit);
    const struct run *runs[] = { &interp, &jit };
    for (int i = 0; i < 2; i++) {
        assert_int_equal(runs[i]->gpr[15], 14);     /* the fault, not OUT at CPL 3 */
        assert_int_equal(runs[i]->cr2, PAGE2);
        assert_int_equal(runs[i]->gpr[6], 1);       /* the JMP ran at CPL 0 only */
        assert_int_equal(runs[i]->gpr[7], 2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop),
        cmocka_unit_test(test_longest_at_page_end),
        cmocka_unit_test(test_longest_second_page_written),
        cmocka_unit_test(test_store_second_page),
        cmocka_unit_test(test_store_first_page),
        cmocka_unit_test(test_store_then_flush),
        cmocka_unit_test(test_remap_invlpg),
        cmocka_unit_test(test_remap_cr3),
        cmocka_unit_test(test_remap_first_page),
        cmocka_unit_test(test_mode_change),
        cmocka_unit_test(test_privilege_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
