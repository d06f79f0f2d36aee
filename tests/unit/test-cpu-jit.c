/* The JIT over whole programs: loops, calls and returns, flags live across
 * blocks, an interpreter-only instruction in the middle of translated code,
 * chained blocks, indirect and cross-page transfers through the lookup
 * table, code rewritten while translated, mappings changed under it. Each program runs
 * interpreted and translated (x86_cpu_run until it kicks itself out with
 * OUT 0x80), and both must end in the state a C model computes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "cpu-diff.h"

struct run {
    uint64_t gpr[16];
    uint8_t data[CD_DATA_SIZE];
    uint64_t insns, dispatches;
};

/* Optional setup between RAM initialisation and the run. */
typedef void prog_setup(uint8_t *ram, struct x86_regs *r);
static bool intr_pending;       /* kick X86_EV_INTR before running (nothing to acknowledge) */

/* Runs code at CD_CODE from a flat 64-bit state with RBX = CD_DATA. */
static void run_setup(const uint8_t *code, size_t n, int jit, prog_setup *setup, struct run *out)
{
    static struct cd h;
    assert_int_equal(cd_init(&h, 1), 0);
    struct x86_regs r;
    struct x86_cpu *cpu = cd_prog_cpu(&h, code, n, jit, &r);
    assert_non_null(cpu);
    if (setup)
        setup(h.ram, &r);
    x86_cpu_set_regs(cpu, &r);
    if (intr_pending)
        x86_cpu_kick(cpu, X86_EV_INTR);
    x86_cpu_run(cpu);
    x86_cpu_get_regs(cpu, &r);
    memcpy(out->gpr, r.gpr, sizeof out->gpr);
    memcpy(out->data, h.ram + CD_DATA, CD_DATA_SIZE);
    x86_cpu_stats(cpu, &out->insns, &out->dispatches);
    x86_cpu_free(cpu);
    cd_fini(&h);
}

static void run_program(const uint8_t *code, size_t n, int jit, struct run *out)
{
    run_setup(code, n, jit, NULL, out);
}

/*      mov ecx, 1000 ; xor eax, eax ; xor edx, edx
 * top: add eax, ecx ; mov [rbx+rcx*4], eax ; call f ; dec ecx ; jnz top
 *      out 0x80, al ; hlt
 * f:   lea edx, [rdx+rax*2] ; rol edx, 3 ; imul edx, edx, 7 ; cmp edx, eax
 *      setb [rbx+0xffa] ; cmovl rsi, rdx ; adc edi, eax ; ret */
static const uint8_t loop_prog[] = {
    0xb9, 0xe8, 0x03, 0x00, 0x00, 0x31, 0xc0, 0x31, 0xd2,
    0x01, 0xc8, 0x89, 0x04, 0x8b, 0xe8, 0x07, 0x00, 0x00, 0x00, 0xff, 0xc9, 0x75, 0xf2,
    0xe6, 0x80, 0xf4,
    0x8d, 0x14, 0x42, 0xc1, 0xc2, 0x03, 0x6b, 0xd2, 0x07, 0x39, 0xc2,
    0x0f, 0x92, 0x83, 0xfa, 0x0f, 0x00, 0x00, 0x48, 0x0f, 0x4c, 0xf2, 0x11, 0xc7, 0xc3,
};

static void model_loop(struct run *m)
{
    memset(m, 0, sizeof *m);
    uint32_t eax = 0, edx = 0, edi = 0;
    uint64_t rsi = 0;
    for (uint32_t ecx = 1000; ecx; ecx--) {
        eax += ecx;
        memcpy(m->data + ecx * 4, &eax, 4);
        edx += 2 * eax;
        edx = (edx << 3) | (edx >> 29);
        edx *= 7;
        bool cf = edx < eax;
        m->data[0xffa] = cf;
        if ((int32_t)edx < (int32_t)eax)
            rsi = edx;
        edi += eax + cf;
    }
    m->gpr[0] = eax;
    m->gpr[2] = edx;
    m->gpr[6] = rsi;
    m->gpr[7] = edi;
}

static void check_against(const struct run *model, const struct run *got)
{
    const int regs[] = { 0, 1, 2, 6, 7 };
    for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++)
        assert_int_equal(got->gpr[regs[i]], model->gpr[regs[i]]);
    assert_memory_equal(got->data + 4, model->data + 4, CD_DATA_SIZE - 4);
}

static void test_loop_with_calls(void **state)
{
    static struct run model, interp, jit;
    model_loop(&model);
    run_program(loop_prog, sizeof loop_prog, -1, &interp);
    run_program(loop_prog, sizeof loop_prog, 0, &jit);
    check_against(&model, &interp);
    check_against(&model, &jit);
    assert_int_equal(jit.insns, interp.insns);
    /* three blocks per iteration interpreted; translated, only the RET's
     * dynamic target goes back to the run loop */
    assert_true(interp.dispatches >= 3000);
    if (cd_jit_on())
        assert_true(jit.dispatches < 1100);
}

/* The same with a maskable interrupt possibly pending and IF=0 (as during
 * an interrupt handler): the run loop could not take it, so translated
 * code still goes from block to block. */
static void test_loop_interrupts_masked(void **state)
{
    static struct run model, jit;
    model_loop(&model);
    intr_pending = true;
    run_program(loop_prog, sizeof loop_prog, 0, &jit);
    intr_pending = false;
    check_against(&model, &jit);
    if (cd_jit_on())
        assert_true(jit.dispatches < 1100);
}

/* Code rewritten under the translation: the loop stores a new immediate
 * into its own "add eax, imm32" each round, on the same page.
 *      mov ecx, 50 ; xor eax, eax
 * top: add eax, 0 (imm at top+1) ; mov [top+1], ecx ; dec ecx ; jnz top
 *      out 0x80, al ; hlt
 * Each round adds the value the previous round stored: 0, 50, 49, ..., 2. */
static const uint8_t smc_prog[] = {
    0xb9, 0x32, 0x00, 0x00, 0x00, 0x31, 0xc0,
    0x05, 0x00, 0x00, 0x00, 0x00,                       /* top: add eax, imm32 */
    0x89, 0x0d, 0xf6, 0xff, 0xff, 0xff,                 /* mov [rip-10], ecx -> top+1 */
    0xff, 0xc9, 0x75, 0xf1, 0xe6, 0x80, 0xf4,
};

static void test_self_modifying(void **state)
{
    static struct run interp, jit;
    uint32_t want = 0;
    for (uint32_t c = 50; c >= 2; c--)
        want += c;
    run_program(smc_prog, sizeof smc_prog, -1, &interp);
    run_program(smc_prog, sizeof smc_prog, 0, &jit);
    assert_int_equal(interp.gpr[0], want);
    assert_int_equal(jit.gpr[0], want);
}

/* Indirect and cross-page transfers: a loop on one page calls a function
 * on the next page (CALL rel32), which calls one on a third page through
 * a pointer in memory (CALL [rbx+8]); both return (RET), and the loop goes
 * on through JMP r9. Translated, all of these find their target in the
 * lookup table instead of returning to the run loop.
 * page 0: mov ecx, 1000 ; xor eax, eax ; xor edx, edx ; lea r9, [rip+back]
 *    top: call g ; jmp r9 ; int3
 *   back: dec ecx ; jnz top ; out 0x80, al ; hlt
 * page 1 (g): call [rbx+8] ; add edx, eax ; ret
 * page 2 (h): lea eax, [rax+rcx] ; ret */
static uint8_t ind_prog[0x3000];

static void ind_build(void)
{
    static const uint8_t main_[] = {
        0xb9, 0xe8, 0x03, 0x00, 0x00, 0x31, 0xc0, 0x31, 0xd2, 0x4c, 0x8d, 0x0d, 0x09, 0x00,
        0x00, 0x00, 0xe8, 0xeb, 0x0f, 0x00, 0x00, 0x41, 0xff, 0xe1, 0xcc, 0xff, 0xc9, 0x75,
        0xf3, 0xe6, 0x80, 0xf4,
    };
    static const uint8_t g[] = { 0xff, 0x53, 0x08, 0x01, 0xc2, 0xc3 };
    static const uint8_t hf[] = { 0x8d, 0x04, 0x08, 0xc3 };
    memcpy(ind_prog, main_, sizeof main_);
    memcpy(ind_prog + 0x1000, g, sizeof g);
    memcpy(ind_prog + 0x2000, hf, sizeof hf);
}

static void ind_setup(uint8_t *ram, struct x86_regs *r)
{
    uint64_t h = CD_CODE + 0x2000;
    memcpy(ram + CD_DATA + 8, &h, 8);
}

static void test_indirect_and_cross_page(void **state)
{
    static struct run interp, jit;
    ind_build();
    run_setup(ind_prog, sizeof ind_prog, -1, ind_setup, &interp);
    run_setup(ind_prog, sizeof ind_prog, 0, ind_setup, &jit);
    uint32_t eax = 0, edx = 0;
    for (uint32_t ecx = 1000; ecx; ecx--) {
        eax += ecx;
        edx += eax;
    }
    assert_int_equal(interp.gpr[0], eax);
    assert_int_equal(interp.gpr[2], edx);
    assert_int_equal(jit.gpr[0], eax);
    assert_int_equal(jit.gpr[2], edx);
    assert_int_equal(jit.insns, interp.insns);
    assert_true(interp.dispatches >= 5000);
    if (cd_jit_on())
        assert_true(jit.dispatches < 50);
}

/* A mapping that changes under translated code: the loop calls F2 at
 * linear 0x180100 through [rbx+8], then F at 0x180000 through [rbx];
 * after 1001 rounds it points their page's PTE at another physical page
 * holding different code, and every round reloads CR3. With r8 = G (a
 * global page, CR4.PGE) the change is flushed by INVLPG and the CR3 writes
 * keep the translations (the lookup table revalidates them against the
 * fetch TLB; F2 refills that with the new page before F is looked up, so
 * the physical page must be compared too); with r8 = 0 the CR3 write is
 * the flush (and the lookup refills the fetch TLB by a page walk, which
 * must compare the physical page as well). The new page already holds decoded code (called once through
 * its identity mapping first), so nothing else empties the TLB then.
 *        call [rbx+16] ; mov ecx, 2000 ; xor esi, esi
 *   top: call [rbx+8] ; call [rbx] ; cmp ecx, 1000 ; jne skip
 *        mov rax, 0x190003 ; or rax, r8 ; mov [0x4c00], rax   (F's PTE)
 *        test r8, r8 ; jz skip ; invlpg [0x180000]
 *  skip: mov rax, cr3 ; mov cr3, rax ; dec ecx ; jnz top ; out 0x80, al ; hlt
 * F at 0x180000: add esi, 1 ; ret      at 0x190000: add esi, 100 ; ret
 * F2 at 0x180100: ret                  at 0x190100: add esi, 0x10000 ; ret */
static const uint8_t remap_prog[] = {
    0xff, 0x53, 0x10, 0xb9, 0xd0, 0x07, 0x00, 0x00, 0x31, 0xf6, 0xff, 0x53, 0x08, 0xff,
    0x13, 0x81, 0xf9, 0xe8, 0x03, 0x00, 0x00, 0x75, 0x1f, 0x48, 0xc7, 0xc0, 0x03, 0x00,
    0x19, 0x00, 0x4c, 0x09, 0xc0, 0x48, 0x89, 0x04, 0x25, 0x00, 0x4c, 0x00, 0x00, 0x4d,
    0x85, 0xc0, 0x74, 0x08, 0x0f, 0x01, 0x3c, 0x25, 0x00, 0x00, 0x18, 0x00, 0x0f, 0x20,
    0xd8, 0x0f, 0x22, 0xd8, 0xff, 0xc9, 0x75, 0xca, 0xe6, 0x80, 0xf4,
};
static uint64_t remap_global;

/* 4 KiB pages for the first 2 MiB (page table at 0x4000), F's code. */
static void remap_setup(uint8_t *ram, struct x86_regs *r)
{
    uint64_t *pd = (uint64_t *)(ram + 0x3000), *pt = (uint64_t *)(ram + 0x4000);
    pd[0] = 0x4000 | 3;
    pd[1] |= 0x100;             /* data and stack global: no TLB misses there */
    for (uint64_t i = 0; i < 512; i++)
        pt[i] = (i << 12) | 3;
    pt[0x180] |= remap_global;
    static const uint8_t f1[] = { 0x83, 0xc6, 0x01, 0xc3 }, f2[] = { 0x83, 0xc6, 0x64, 0xc3 };
    memcpy(ram + 0x180000, f1, sizeof f1);
    memcpy(ram + 0x190000, f2, sizeof f2);
    static const uint8_t f2_2[] = { 0x81, 0xc6, 0x00, 0x00, 0x01, 0x00, 0xc3 };
    ram[0x180100] = 0xc3;
    memcpy(ram + 0x190100, f2_2, sizeof f2_2);
    uint64_t f = 0x180000, f2_la = 0x180100, f2_new = 0x190100;
    memcpy(ram + CD_DATA, &f, 8);
    memcpy(ram + CD_DATA + 8, &f2_la, 8);
    memcpy(ram + CD_DATA + 16, &f2_new, 8);
    r->gpr[8] = remap_global;
    r->cr4 |= 0x80;             /* PGE */
}

static void test_remap(void **state)
{
    static struct run interp, jit_global, jit_local;
    const uint64_t want = 1001 * 1 + 999 * 100 + 999 * 0x10000;
    remap_global = 0x100;
    run_setup(remap_prog, sizeof remap_prog, -1, remap_setup, &interp);
    run_setup(remap_prog, sizeof remap_prog, 0, remap_setup, &jit_global);
    remap_global = 0;
    run_setup(remap_prog, sizeof remap_prog, 0, remap_setup, &jit_local);
    assert_int_equal(interp.gpr[6], want);
    assert_int_equal(jit_global.gpr[6], want);
    assert_int_equal(jit_local.gpr[6], want);
    /* F and F2 were reached from the table after the CR3 writes (the
     * global page revalidated against the fetch TLB, the local one after
     * an inline refill of it): the run loop saw only the block after each
     * CR3 write */
    if (cd_jit_on()) {
        assert_true(jit_global.dispatches < 2100);
        assert_true(jit_local.dispatches < 2100);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_with_calls),
        cmocka_unit_test(test_loop_interrupts_masked),
        cmocka_unit_test(test_self_modifying),
        cmocka_unit_test(test_indirect_and_cross_page),
        cmocka_unit_test(test_remap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
