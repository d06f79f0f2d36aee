/* Linux boot protocol: bzImage header parsing (good and bad files) and
 * what the loader leaves in guest RAM: kernel at 1 MiB, zero page with
 * the setup header, e820 map, command line and initrd, page tables and
 * GDT for the 64-bit entry. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "hw/memory.h"
#include "machine/e820.h"
#include "machine/linux-boot.h"

#define IMG_SIZE (1024 + 8192)

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* A minimal bzImage: one setup sector after the boot sector. */
static void make_image(uint8_t *img)
{
    memset(img, 0, IMG_SIZE);
    img[0x1f1] = 1;                              /* setup_sects */
    put16(img + 0x1fe, 0xaa55);
    img[0x200] = 0xeb;
    img[0x201] = 0x66;                           /* header ends at 0x268 */
    memcpy(img + 0x202, "HdrS", 4);
    put16(img + 0x206, 0x020f);
    img[0x211] = 0x01;                           /* LOADED_HIGH */
    put32(img + 0x22c, 0x7fffffff);              /* initrd_addr_max */
    put32(img + 0x230, 0x200000);
    img[0x234] = 1;
    put16(img + 0x236, 0x3);                     /* XLF_KERNEL_64 | CAN_BE_LOADED_ABOVE_4G */
    put32(img + 0x238, 2047);                    /* cmdline_size */
    put32(img + 0x260, 0x200000);                /* init_size */
    for (int i = 1024; i < IMG_SIZE; i++)
        img[i] = (uint8_t)(i * 7);
}

static char *write_tmp(const void *p, size_t n)
{
    char *path = strdup("/tmp/quokka-lb-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
    return path;
}

static void test_header_good_and_bad(void **state)
{
    static uint8_t img[IMG_SIZE];
    struct linux_header h;
    struct error err = {0};
    make_image(img);
    assert_int_equal(linux_parse_header(img, IMG_SIZE, "k", &h, &err), 0);
    assert_int_equal(h.version, 0x020f);
    assert_int_equal(h.setup_size, 1024);
    assert_int_equal(h.cmdline_size, 2047);
    /* An ELF file, a text file, an old protocol, a 32-bit-only kernel. */
    static const uint8_t elf[0x400] = { 0x7f, 'E', 'L', 'F' };
    assert_int_equal(linux_parse_header(elf, sizeof(elf), "vmlinux", &h, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "not a Linux bzImage"));
    assert_non_null(strstr(err.msg, "vmlinux"));
    assert_int_equal(linux_parse_header((const uint8_t *)"hello", 5, "t", &h, &err), -EINVAL);
    put16(img + 0x206, 0x0204);
    err = (struct error){0};
    assert_int_equal(linux_parse_header(img, IMG_SIZE, "k", &h, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "too old"));
    make_image(img);
    put16(img + 0x236, 0);
    err = (struct error){0};
    assert_int_equal(linux_parse_header(img, IMG_SIZE, "k", &h, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "64-bit"));
}

static void test_load(void **state)
{
    static uint8_t img[IMG_SIZE];
    make_image(img);
    static const char initrd[] = "initrd-contents";
    char *kpath = write_tmp(img, IMG_SIZE), *ipath = write_tmp(initrd, sizeof(initrd));
    struct linux_boot lb;
    struct error err = {0};
    assert_int_equal(linux_boot_open(&lb, kpath, ipath, "console=ttyS0 quiet", &err), 0);
    lb.acpi_rsdp = 0xe0000;

    const uint64_t ram_size = 64 << 20;
    uint8_t *ram = calloc(1, ram_size);
    struct address_space *mem = as_new("mem", NULL);
    as_add_ram(mem, 0, ram_size, ram, "ram");
    struct e820_table t;
    e820_build_pc(&t, ram_size, 0);
    struct linux_entry e;
    assert_int_equal(linux_boot_load(&lb, mem, ram_size, &t, &e, &err), 0);
    assert_int_equal(e.rip, 0x100200);
    assert_int_equal(e.rsi, LB_ZERO_PAGE);
    assert_memory_equal(ram + 0x100000, img + 1024, IMG_SIZE - 1024);
    const uint8_t *zp = ram + LB_ZERO_PAGE;
    assert_memory_equal(zp + 0x202, "HdrS", 4);
    assert_int_equal(zp[0x210], 0xff);           /* type_of_loader */
    assert_true(zp[0x211] & 0x80);               /* CAN_USE_HEAP */
    assert_string_equal((const char *)ram + rd32(zp + 0x228), "console=ttyS0 quiet");
    uint32_t rd = rd32(zp + 0x218), rs = rd32(zp + 0x21c);
    assert_int_equal(rs, sizeof(initrd));
    assert_int_equal(rd & 0xfff, 0);
    assert_true(rd + rs <= ram_size && rd >= ram_size - 8192);
    assert_memory_equal(ram + rd, initrd, sizeof(initrd));
    assert_int_equal(zp[0x1e8], t.n);
    assert_memory_equal(zp + 0x2d0, t.e, t.n * 20);
    assert_int_equal(rd64(zp + 0x70), 0xe0000);
    /* Identity map: PML4[0] -> PDPT, PDPT[3] -> PD for 3-4 GiB, 2 MiB pages. */
    assert_int_equal(e.cr3, LB_PAGE_TABLES);
    uint64_t pdpt = rd64(ram + e.cr3) & ~0xfffULL;
    uint64_t pd3 = rd64(ram + pdpt + 3 * 8) & ~0xfffULL;
    assert_true(rd64(ram + pd3 + 5 * 8) == ((3ULL << 30) + (5ULL << 21) + 0x83));
    /* GDT: __BOOT_CS is 64-bit code, __BOOT_DS is data. */
    assert_true(rd64(ram + e.gdt_base + 0x10) == 0x00af9b000000ffffULL);
    assert_true(rd64(ram + e.gdt_base + 0x18) == 0x00cf93000000ffffULL);

    /* Too little RAM for the initrd: a clear error, nothing run. */
    static uint8_t big[1 << 20];
    char *bpath = write_tmp(big, sizeof(big));
    struct linux_boot lb2;
    assert_int_equal(linux_boot_open(&lb2, kpath, bpath, "", &err), 0);
    err = (struct error){0};
    assert_int_equal(linux_boot_load(&lb2, mem, 3 << 20, &t, &e, &err), -ENOSPC);
    assert_true(err.msg[0] != 0);
    /* A command line longer than cmdline_size. */
    char *longline = malloc(4000);
    memset(longline, 'a', 3999);
    longline[3999] = 0;
    struct linux_boot lb3;
    assert_int_equal(linux_boot_open(&lb3, kpath, NULL, longline, &err), 0);
    err = (struct error){0};
    assert_int_equal(linux_boot_load(&lb3, mem, ram_size, &t, &e, &err), -E2BIG);
    /* A missing file. */
    struct linux_boot lb4;
    assert_int_equal(linux_boot_open(&lb4, "/nonexistent/vmlinuz", NULL, "", &err), -ENOENT);

    linux_boot_close(&lb);
    linux_boot_close(&lb2);
    linux_boot_close(&lb3);
    free(longline);
    unlink(kpath);
    unlink(ipath);
    unlink(bpath);
    free(kpath);
    free(ipath);
    free(bpath);
    as_free(mem);
    free(ram);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_good_and_bad),
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
