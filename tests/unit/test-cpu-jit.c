/* The JIT over whole programs: loops, calls and returns, flags live across
 * blocks, an interpreter-only instruction in the middle of translated code,
 * chained blocks, code rewritten while translated. Each program runs
 * interpreted and translated (x86_cpu_run until it kicks itself out with
 * OUT 0x80), and both must end in the state a C model computes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "cpu-diff.h"

static struct x86_cpu *running;

static void exit_on_out(void *opaque, uint16_t port, uint32_t val, unsigned size)
{
    if (port == 0x80)
        x86_cpu_kick(running, X86_EV_EXIT);
}

struct run {
    uint64_t gpr[16];
    uint8_t data[CD_DATA_SIZE];
    uint64_t insns, dispatches;
};

/* Runs code at CD_CODE from a flat 64-bit state with RBX = CD_DATA. */
static void run_program(const uint8_t *code, size_t n, int jit, struct run *out)
{
    static struct cd h;
    assert_int_equal(cd_init(&h, 1), 0);
    struct x86_bus bus = h.bus;
    bus.pio_out = exit_on_out;
    struct x86_cpu *cpu = x86_cpu_new(h.emu, 1, true, &bus);
    assert_non_null(cpu);
    running = cpu;
    x86_cpu_set_jit(cpu, jit);
    memcpy(h.ram + CD_CODE, code, n);
    struct x86_regs r;
    cd_regs64(&r);
    r.gpr[3] = CD_DATA;
    r.gpr[4] = CD_STACK;
    r.rip = CD_CODE;
    x86_cpu_set_regs(cpu, &r);
    x86_cpu_run(cpu);
    x86_cpu_get_regs(cpu, &r);
    memcpy(out->gpr, r.gpr, sizeof out->gpr);
    memcpy(out->data, h.ram + CD_DATA, CD_DATA_SIZE);
    x86_cpu_stats(cpu, &out->insns, &out->dispatches);
    x86_cpu_free(cpu);
    cd_fini(&h);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_with_calls),
        cmocka_unit_test(test_self_modifying),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
