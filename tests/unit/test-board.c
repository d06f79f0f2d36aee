/* The whole board on the emulated CPU with tiny "kernels": a bzImage
 * header around a few bytes of 64-bit code entered the Linux way. They
 * check the entry state (RSI -> boot_params), port I/O, CMOS surviving a
 * reset through 0xCF9, ACPI S5 power-off, triple fault with -no-reboot,
 * and run control with no kernel at all. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "machine/machine.h"
#include "util/mainloop.h"

/* cmp $"HdrS", 0x202(%rsi); jne fail; CMOS[0x40] == 0 ? set it, print R,
 * reset via 0xCF9 : print P, PM1a_CNT = SLP_EN|S5; fail: ud2. */
static const uint8_t reset_then_off[] = {
    0x81, 0xbe, 0x02, 0x02, 0x00, 0x00, 0x48, 0x64, 0x72, 0x53, 0x75, 0x33,
    0xb0, 0x40, 0xe6, 0x70, 0xe4, 0x71, 0x84, 0xc0, 0x75, 0x15, 0xb0, 0x01,
    0xe6, 0x71, 0x66, 0xba, 0xf8, 0x03, 0xb0, 0x52, 0xee, 0x66, 0xba, 0xf9,
    0x0c, 0xb0, 0x06, 0xee, 0xf4, 0xeb, 0xfd, 0x66, 0xba, 0xf8, 0x03, 0xb0,
    0x50, 0xee, 0x66, 0xba, 0x04, 0x06, 0x66, 0xb8, 0x00, 0x20, 0x66, 0xef,
    0xf4, 0xeb, 0xfd, 0x0f, 0x0b,
};
static const uint8_t just_ud2[] = { 0x0f, 0x0b };

static char *make_kernel(const uint8_t *code, size_t n)
{
    size_t size = 1024 + 0x200 + n;
    uint8_t *img = calloc(1, size);
    img[0x1f1] = 1;
    img[0x1fe] = 0x55;
    img[0x1ff] = 0xaa;
    img[0x201] = 0x66;
    memcpy(img + 0x202, "HdrS", 4);
    img[0x206] = 0x0f;
    img[0x207] = 0x02;
    img[0x211] = 0x01;
    img[0x234] = 1;
    img[0x236] = 0x03;
    img[0x239] = 0x08;                           /* cmdline_size 2048 */
    memcpy(img + 1024 + 0x200, code, n);
    char *path = strdup("/tmp/quokka-board-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, img, size), (ssize_t)size);
    close(fd);
    free(img);
    return path;
}

static struct machine_config base_cfg(void)
{
    return (struct machine_config){ .ram_size = 32 << 20, .smp = 1, .accel = ACCEL_EMU };
}

static void test_reset_then_poweroff(void **state)
{
    char *k = make_kernel(reset_then_off, sizeof(reset_then_off));
    struct machine_config cfg = base_cfg();
    cfg.kernel = k;
    cfg.append = "console=ttyS0";
    struct mainloop *ml = ml_new();
    struct error err = {0};
    struct machine *m = machine_create(&cfg, ml, &err);
    assert_non_null(m);
    assert_int_equal(machine_run(m), MACHINE_EXIT_POWEROFF);
    uint8_t cmd[14];
    assert_int_equal(machine_read_phys(m, 0x20000, cmd, sizeof(cmd)), 0);
    assert_memory_equal(cmd, "console=ttyS0", 14);
    machine_free(m);
    ml_free(ml);
    unlink(k);
    free(k);
}

static void test_triple_fault_no_reboot(void **state)
{
    char *k = make_kernel(just_ud2, sizeof(just_ud2));
    struct machine_config cfg = base_cfg();
    cfg.kernel = k;
    cfg.no_reboot = true;
    struct mainloop *ml = ml_new();
    struct error err = {0};
    struct machine *m = machine_create(&cfg, ml, &err);
    assert_non_null(m);
    assert_int_equal(machine_run(m), MACHINE_EXIT_QUIT);
    machine_free(m);
    ml_free(ml);
    unlink(k);
    free(k);
}

static void test_bad_kernel_rejected(void **state)
{
    char *k = strdup("/tmp/quokka-board-XXXXXX");
    int fd = mkstemp(k);
    /* Neither a bzImage nor an ELF (a broken ELF is covered by test-linux-boot-payload). */
    assert_int_equal(write(fd, "MZ not a kernel..", 18), 18);
    close(fd);
    struct machine_config cfg = base_cfg();
    cfg.kernel = k;
    struct mainloop *ml = ml_new();
    struct error err = {0};
    assert_null(machine_create(&cfg, ml, &err));
    assert_non_null(strstr(err.msg, "not a Linux bzImage"));
    ml_free(ml);
    unlink(k);
    free(k);
}

struct ctl {
    struct machine *m;
    struct mainloop *ml;
    int step;
    struct timer *t;
    enum run_state seen[4];
};

static void drive(void *o)
{
    struct ctl *c = o;
    c->seen[c->step] = machine_run_state(c->m);
    switch (c->step++) {
    case 0: machine_resume(c->m); break;
    case 1: machine_pause(c->m); break;
    case 2: machine_request_reset(c->m); break;
    default: machine_request_quit(c->m); return;
    }
    timer_mod(c->t, clock_ns() + 5000000);
}

static void test_run_control_without_kernel(void **state)
{
    struct machine_config cfg = base_cfg();
    cfg.start_paused = true;
    cfg.smp = 2;
    struct ctl c = { .ml = ml_new() };
    struct error err = {0};
    c.m = machine_create(&cfg, c.ml, &err);
    assert_non_null(c.m);
    assert_int_equal(machine_cpu_count(c.m), 2);
    c.t = timer_new(c.ml, drive, &c);
    timer_mod(c.t, clock_ns() + 5000000);
    assert_int_equal(machine_run(c.m), MACHINE_EXIT_QUIT);
    assert_int_equal(c.seen[0], RUN_STATE_PAUSED);
    assert_int_equal(c.seen[1], RUN_STATE_RUNNING);
    assert_int_equal(c.seen[2], RUN_STATE_PAUSED);
    assert_int_equal(c.seen[3], RUN_STATE_PAUSED);  /* reset keeps a stopped machine stopped */
    char buf[4096];
    assert_true(machine_format_cpu_regs(c.m, 0, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "CS =f000 00000000ffff0000"));
    assert_true(machine_format_cpus(c.m, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "CPU #1"));
    timer_free(c.t);
    machine_free(c.m);
    ml_free(c.ml);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reset_then_poweroff),
        cmocka_unit_test(test_triple_fault_no_reboot),
        cmocka_unit_test(test_bad_kernel_rejected),
        cmocka_unit_test(test_run_control_without_kernel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
