/* Unit tests for QEMU-style option strings and size parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "util/opts.h"

static void test_implied_and_escaped(void **state)
{
    struct opts o;
    struct error err = {0};
    assert_int_equal(opts_parse(&o, "a,,b.img,if=virtio,readonly", "file", &err), 0);
    assert_string_equal(opts_get(&o, "file"), "a,b.img");
    assert_string_equal(opts_get(&o, "if"), "virtio");
    bool ro;
    assert_int_equal(opts_get_bool(&o, "readonly", false, &ro, &err), 0);
    assert_true(ro);
    assert_int_equal(opts_check_unused(&o, &err), 0);
    opts_free(&o);
}

static void test_unused_key_is_named(void **state)
{
    struct opts o;
    struct error err = {0};
    assert_int_equal(opts_parse(&o, "file=x,bogus=1", NULL, &err), 0);
    opts_get(&o, "file");
    assert_int_not_equal(opts_check_unused(&o, &err), 0);
    assert_non_null(strstr(err.msg, "bogus"));
    opts_free(&o);
}

static void test_sizes(void **state)
{
    uint64_t v;
    assert_int_equal(parse_size("20G", 1, &v), 0);
    assert_true(v == 20ULL << 30);
    assert_int_equal(parse_size("1.5M", 1, &v), 0);
    assert_true(v == 3ULL << 19);
    assert_int_equal(parse_size("512", 1 << 20, &v), 0);
    assert_true(v == 512ULL << 20);
    assert_int_not_equal(parse_size("12Q", 1, &v), 0);
    assert_int_not_equal(parse_size("-1", 1, &v), 0);
    assert_int_not_equal(parse_size("99999999999E", 1, &v), 0);
    char buf[32];
    format_size(20ULL << 30, buf, sizeof(buf));
    assert_string_equal(buf, "20 GiB");
    format_size(1536 * 1024, buf, sizeof(buf));
    assert_string_equal(buf, "1.5 MiB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_implied_and_escaped),
        cmocka_unit_test(test_unused_key_is_named),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
