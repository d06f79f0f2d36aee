/* INIT/SIPI delivery to an emulated AP: a start-up IPI queued behind an
 * INIT the AP has not handled yet still starts it; a SIPI outside
 * wait-for-SIPI is ignored; and, with the AP running in its own thread
 * while another thread sends INIT, SIPI, SIPI back to back as Linux does,
 * every round starts the AP exactly once (Linux reports "do_boot_cpu
 * failed" when a round is lost). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "accel/emu/cpu.h"

#define RAM_SIZE (1u << 20)
#define VECTOR 0x09               /* AP starts at 0x9000 in real mode */
#define COUNTER 0x5000

/* inc word [0x5000]; hlt; jmp $-1 */
static const uint8_t ap_prog[] = { 0xff, 0x06, 0x00, 0x50, 0xf4, 0xeb, 0xfd };

static uint8_t *ram;
static uint8_t *ram_page(void *opaque, uint64_t gpa)
{
    return gpa < RAM_SIZE ? ram + (gpa & ~0xfffull) : NULL;
}
static uint64_t mmio_read(void *opaque, uint64_t gpa, unsigned size) { return ~0ull; }
static void mmio_write(void *opaque, uint64_t gpa, uint64_t val, unsigned size) {}
static uint32_t pio_in(void *opaque, uint16_t port, unsigned size) { return ~0u; }
static void pio_out(void *opaque, uint16_t port, uint32_t val, unsigned size) {}
static int ack(void *opaque) { return -1; }

static struct x86_cpu *ap_new(struct x86_emu **emu)
{
    ram = aligned_alloc(4096, RAM_SIZE);
    memset(ram, 0, RAM_SIZE);
    memcpy(ram + (VECTOR << 12), ap_prog, sizeof(ap_prog));
    static struct x86_bus bus = { .ram_page = ram_page, .mmio_read = mmio_read,
                                  .mmio_write = mmio_write, .pio_in = pio_in,
                                  .pio_out = pio_out, .ack_interrupt = ack };
    *emu = x86_emu_new();
    return x86_cpu_new(*emu, 1, false, &bus);
}

static uint16_t counter(void)
{
    /* written by the AP thread */
    return __atomic_load_n((uint16_t *)(ram + COUNTER), __ATOMIC_ACQUIRE);
}

static void test_sipi_behind_init(void **state)
{
    struct x86_emu *emu;
    struct x86_cpu *cpu = ap_new(&emu);
    struct x86_regs r;
    x86_cpu_step(cpu, 100, false);                      /* waits for SIPI: runs nothing */
    assert_int_equal(counter(), 0);
    /* Both arrive before the AP looks at its events. */
    x86_cpu_kick(cpu, X86_EV_INIT);
    x86_cpu_sipi(cpu, VECTOR);
    x86_cpu_step(cpu, 100, false);
    x86_cpu_get_regs(cpu, &r);
    assert_int_equal(counter(), 1);
    assert_int_equal(r.cs.base, VECTOR << 12);
    assert_true(r.halted);
    /* A SIPI to a CPU that is not waiting for one changes nothing. */
    x86_cpu_sipi(cpu, VECTOR);
    x86_cpu_step(cpu, 100, false);
    assert_int_equal(counter(), 1);
    x86_cpu_free(cpu);
    x86_emu_free(emu);
    free(ram);
}

static void *ap_thread(void *cpu)
{
    x86_cpu_run(cpu);
    return NULL;
}

static bool wait_counter(uint16_t want)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (counter() == want)
            return true;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10)
            return false;
        sched_yield();
    }
}

static void test_init_sipi_sipi_threaded(void **state)
{
    struct x86_emu *emu;
    struct x86_cpu *cpu = ap_new(&emu);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, ap_thread, cpu), 0);
    const int rounds = 300;
    int lost = 0;
    for (int i = 1; i <= rounds && !lost; i++) {
        x86_cpu_kick(cpu, X86_EV_INIT);
        if (i % 3 == 1)
            sched_yield();                              /* vary the interleaving */
        x86_cpu_sipi(cpu, VECTOR);
        x86_cpu_sipi(cpu, VECTOR);
        if (!wait_counter((uint16_t)i))
            lost = i;
    }
    x86_cpu_kick(cpu, X86_EV_EXIT);
    pthread_join(th, NULL);
    assert_int_equal(lost, 0);
    assert_int_equal(counter(), rounds);               /* and never started twice */
    x86_cpu_free(cpu);
    x86_emu_free(emu);
    free(ram);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sipi_behind_init),
        cmocka_unit_test(test_init_sipi_sipi_threaded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
