/* The command line turned into a machine description: sizes, CPU
 * topologies, accelerator spellings and fallbacks, log items, and the
 * checks that need the host (RAM limit, kernel and initrd files). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "accel/emu/cpu.h"
#include "cli/cli.h"

static int parse(struct cli *c, struct error *err, ...)
{
    char *argv[32] = { "quokka" };
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)); )
        argv[argc++] = a;
    va_end(ap);
    *err = (struct error){0};
    cli_free(c);
    return cli_parse(c, argc, argv, err);
}

static void test_defaults(void **state)
{
    struct cli c = {0};
    struct error err;
    assert_int_equal(parse(&c, &err, NULL), 0);
    assert_int_equal(c.cfg.ram_size, 128 << 20);
    assert_int_equal(c.cfg.smp, 1);
    assert_int_equal(c.cfg.accel, ACCEL_EMU);
    assert_false(c.cfg.start_paused);
    assert_null(c.cfg.kernel);
}

static void test_memory_sizes(void **state)
{
    struct cli c = {0};
    struct error err;
    assert_int_equal(parse(&c, &err, "-m", "512", NULL), 0);
    assert_int_equal(c.cfg.ram_size, 512ULL << 20);          /* default unit MiB */
    assert_int_equal(parse(&c, &err, "-m", "1.5G", NULL), 0);
    assert_int_equal(c.cfg.ram_size, 1536ULL << 20);
    assert_int_equal(parse(&c, &err, "-m", "size=2G", NULL), 0);
    assert_int_equal(c.cfg.ram_size, 2ULL << 30);
    assert_int_equal(parse(&c, &err, "-m", "1025K", NULL), 0);
    assert_int_equal(c.cfg.ram_size, 1028 << 10);            /* whole pages */
    assert_true(parse(&c, &err, "-m", "1G,maxmem=4G", NULL) < 0);
    assert_non_null(strstr(err.msg, "not supported yet"));
}

static void test_smp(void **state)
{
    struct cli c = {0};
    struct error err;
    assert_int_equal(parse(&c, &err, "-smp", "4", NULL), 0);
    assert_int_equal(c.cfg.smp, 4);
    assert_int_equal(parse(&c, &err, "-smp", "sockets=2,cores=2,threads=2", NULL), 0);
    assert_int_equal(c.cfg.smp, 8);
    assert_int_equal(parse(&c, &err, "-smp", "6,cores=3", NULL), 0);
    assert_int_equal(c.cfg.smp, 6);
    assert_int_equal(parse(&c, &err, "-smp", "cpus=4,sockets=2,cores=2", NULL), 0);
    assert_true(parse(&c, &err, "-smp", "4,sockets=2,cores=3", NULL) < 0);
    assert_true(parse(&c, &err, "-smp", "4,maxcpus=8", NULL) < 0);
    assert_true(parse(&c, &err, "-smp", "4,dies=2", NULL) < 0);
}

static void test_accel(void **state)
{
    struct cli c = {0};
    struct error err;
    assert_int_equal(parse(&c, &err, "-accel", "tcg", NULL), 0);
    assert_int_equal(c.cfg.accel, ACCEL_EMU);
    assert_int_equal(parse(&c, &err, "-enable-kvm", NULL), 0);
    assert_int_equal(c.cfg.accel, ACCEL_KVM);
    assert_int_equal(parse(&c, &err, "-accel", "kvm:emu", NULL), 0);
    assert_int_equal(c.cfg.accel, ACCEL_KVM_OR_EMU);
    assert_int_equal(parse(&c, &err, "-accel", "kvm", "-accel", "tcg", NULL), 0);
    assert_int_equal(c.cfg.accel, ACCEL_KVM_OR_EMU);
    assert_int_equal(parse(&c, &err, "-machine", "pc,accel=kvm", NULL), 0);
    assert_int_equal(c.cfg.accel, ACCEL_KVM);
    assert_int_equal(parse(&c, &err, "--accel", "accel=emu", NULL), 0);
    assert_int_equal(c.cfg.accel, ACCEL_EMU);
}

static void test_flags_and_logs(void **state)
{
    struct cli c = {0};
    struct error err;
    assert_int_equal(parse(&c, &err, "-S", "-no-reboot", "-no-shutdown", "-d", "int,unimp",
                           "-name", "demo,process=qk", "-nographic", "-serial", "null",
                           "-serial", "pty", NULL), 0);
    assert_true(c.cfg.start_paused && c.cfg.no_reboot && c.cfg.no_shutdown && c.nographic);
    assert_int_equal(c.cfg.log_mask, X86_LOG_INT | X86_LOG_UNIMP);
    assert_string_equal(c.cfg.name, "demo");
    assert_string_equal(c.process_name, "qk");
    assert_int_equal(c.n_serial, 2);
    assert_string_equal(c.serial[1], "pty");
    assert_true(parse(&c, &err, "-name", "demo,debug-threads=on", NULL) < 0);
    assert_true(parse(&c, &err, "-kernel", NULL) < 0);
    assert_string_equal(err.msg, "-kernel: requires an argument");
    cli_free(&c);
}

static void test_host_checks(void **state)
{
    struct cli c = {0};
    struct error err;
    char kernel[] = "/tmp/quokka-cli-kXXXXXX", initrd[] = "/tmp/quokka-cli-iXXXXXX";
    int kfd = mkstemp(kernel), ifd = mkstemp(initrd);
    uint8_t hdr[0x400] = {0};
    hdr[0x1FE] = 0x55;
    hdr[0x1FF] = 0xAA;
    memcpy(hdr + 0x202, "HdrS", 4);
    assert_int_equal(write(kfd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
    assert_int_equal(ftruncate(ifd, 3 << 20), 0);
    assert_int_equal(parse(&c, &err, "-m", "4", "-kernel", kernel, "-initrd", initrd, NULL), 0);
    assert_int_equal(cli_check_host(&c, &err), 0);
    assert_int_equal(parse(&c, &err, "-m", "2", "-kernel", kernel, "-initrd", initrd, NULL), 0);
    assert_true(cli_check_host(&c, &err) < 0);                 /* 3 MiB initrd, 2 MiB RAM */
    assert_non_null(strstr(err.msg, "does not fit"));
    assert_int_equal(parse(&c, &err, "-m", "60T", NULL), 0);
    assert_true(cli_check_host(&c, &err) < 0);
    assert_non_null(strstr(err.msg, "cannot allocate"));
    hdr[0x202] = 'X';                                          /* not a bzImage any more */
    assert_int_equal(pwrite(kfd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
    assert_int_equal(parse(&c, &err, "-kernel", kernel, NULL), 0);
    assert_true(cli_check_host(&c, &err) < 0);
    close(kfd);
    close(ifd);
    unlink(kernel);
    unlink(initrd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_memory_sizes),
        cmocka_unit_test(test_smp),
        cmocka_unit_test(test_accel),
        cmocka_unit_test(test_flags_and_logs),
        cmocka_unit_test(test_host_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
