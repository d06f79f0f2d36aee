/* Linux boot fast path: a bzImage whose payload is gzip, xz or zstd is
 * unpacked on the host and its vmlinux ELF segments land at their physical
 * addresses, entered at e_entry; a raw vmlinux ELF is entered the same way;
 * corrupt or unknown payloads fall back to the in-guest decompressor; a
 * malformed ELF given directly is refused with a clear error. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <elf.h>
#include <errno.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#include "hw/memory.h"
#include "machine/e820.h"
#include "machine/linux-boot.h"
#include "machine/linux-unpack.h"

#define SEG_A 0x1000000ULL        /* where Debian's kernels sit: 16 MiB */
#define SEG_B 0x1200000ULL
#define ENTRY (SEG_A + 0x40)
#define A_FILE 0x300
#define A_MEM 0x3000
#define B_FILE 0x180
#define ELF_SIZE 0x1000
#define RAM_SIZE (64ULL << 20)
#define PM_PAYLOAD 0x80           /* payload offset inside the protected-mode code */

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* A tiny x86-64 vmlinux: text+bss at 16 MiB, data at 18 MiB. */
static void make_elf(uint8_t *elf, uint64_t a_paddr)
{
    memset(elf, 0, ELF_SIZE);
    Elf64_Ehdr eh = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
                      .e_entry = ENTRY, .e_phoff = sizeof(Elf64_Ehdr),
                      .e_ehsize = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr),
                      .e_phnum = 3 };
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    Elf64_Phdr ph[3] = {
        { .p_type = PT_LOAD, .p_offset = 0x200, .p_vaddr = 0xffffffff81000000ULL,
          .p_paddr = a_paddr, .p_filesz = A_FILE, .p_memsz = A_MEM },
        { .p_type = PT_NOTE, .p_offset = 0x100, .p_paddr = 0, .p_filesz = 0x10 },
        { .p_type = PT_LOAD, .p_offset = 0x800, .p_vaddr = 0,   /* like .data..percpu */
          .p_paddr = SEG_B, .p_filesz = B_FILE, .p_memsz = B_FILE },
    };
    memcpy(elf, &eh, sizeof(eh));
    memcpy(elf + eh.e_phoff, ph, sizeof(ph));
    for (int i = 0x200; i < ELF_SIZE; i++)
        elf[i] = (uint8_t)(i * 13 + 5);
}

static void append_size(uint8_t *out, size_t *n, uint32_t size)
{
    put32(out + *n, size);                       /* the kernel build's size_append */
    *n += 4;
}

static size_t pack(const char *fmt, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (!strcmp(fmt, "gzip")) {
        z_stream s;
        memset(&s, 0, sizeof(s));
        assert_int_equal(deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 8,
                                      Z_DEFAULT_STRATEGY), Z_OK);
        s.next_in = (Bytef *)in;
        s.avail_in = len;
        s.next_out = out;
        s.avail_out = cap;
        assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
        n = s.total_out;                         /* gzip's ISIZE is the size */
        deflateEnd(&s);
    } else if (!strcmp(fmt, "xz")) {
        /* As the kernel's xz_wrap.sh: x86 BCJ + LZMA2, CRC32. */
        lzma_options_lzma opt;
        assert_false(lzma_lzma_preset(&opt, 6));
        lzma_filter f[] = { { LZMA_FILTER_X86, NULL }, { LZMA_FILTER_LZMA2, &opt },
                            { LZMA_VLI_UNKNOWN, NULL } };
        assert_int_equal(lzma_stream_buffer_encode(f, LZMA_CHECK_CRC32, NULL, in, len,
                                                   out, &n, cap), LZMA_OK);
        append_size(out, &n, len);
    } else if (!strcmp(fmt, "zstd")) {
        n = ZSTD_compress(out, cap, in, len, 19);
        assert_false(ZSTD_isError(n));
        append_size(out, &n, len);
    } else {                                     /* "lzma": only its magic */
        memcpy(out, "\x5d\0\0\x80\0", 5);
        memset(out + 5, 0x11, 60);
        n = 65;
        append_size(out, &n, len);
    }
    return n;
}

/* A bzImage (boot sector + one setup sector) whose protected-mode code
 * holds the payload at PM_PAYLOAD, as the kernel's piggy does. */
static size_t make_bzimage(uint8_t *img, const uint8_t *payload, size_t plen)
{
    size_t size = 1024 + PM_PAYLOAD + plen + 64;
    memset(img, 0, size);
    img[0x1f1] = 1;
    put16(img + 0x1fe, 0xaa55);
    img[0x200] = 0xeb;
    img[0x201] = 0x66;
    memcpy(img + 0x202, "HdrS", 4);
    put16(img + 0x206, 0x020f);
    img[0x211] = 0x01;
    put32(img + 0x22c, 0x7fffffff);
    put32(img + 0x230, 0x200000);
    img[0x234] = 1;
    put16(img + 0x236, 0x3);
    put32(img + 0x238, 2047);
    put32(img + 0x248, PM_PAYLOAD);
    put32(img + 0x24c, plen);
    put32(img + 0x260, 0x400000);
    memcpy(img + 1024 + PM_PAYLOAD, payload, plen);
    return size;
}

static char *write_tmp(const void *p, size_t n)
{
    char *path = strdup("/tmp/quokka-lbp-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
    return path;
}

struct guest {
    uint8_t *ram;
    struct address_space *mem;
    struct e820_table t;
};

static void guest_new(struct guest *g)
{
    g->ram = malloc(RAM_SIZE);
    memset(g->ram, 0xcc, RAM_SIZE);              /* so zeroed bss shows */
    g->mem = as_new("mem", NULL);
    as_add_ram(g->mem, 0, RAM_SIZE, g->ram, "ram");
    e820_build_pc(&g->t, RAM_SIZE, 0);
}

static void guest_free(struct guest *g)
{
    as_free(g->mem);
    free(g->ram);
}

/* Open kernel bytes k as a file with a small initrd and load it. */
static int boot(struct guest *g, const uint8_t *k, size_t klen, struct linux_boot *lb,
                struct linux_entry *e, struct error *err)
{
    static const char initrd[] = "initrd!";
    char *kp = write_tmp(k, klen), *ip = write_tmp(initrd, sizeof(initrd));
    int ret = linux_boot_open(lb, kp, ip, "console=ttyS0", err);
    unlink(kp);
    unlink(ip);
    free(kp);
    free(ip);
    if (ret == 0)
        ret = linux_boot_load(lb, g->mem, RAM_SIZE, &g->t, e, err);
    return ret;
}

static void check_elf_loaded(const struct guest *g, const uint8_t *elf,
                             const struct linux_entry *e)
{
    assert_int_equal(e->rip, ENTRY);
    assert_int_equal(e->rsi, LB_ZERO_PAGE);
    assert_memory_equal(g->ram + SEG_A, elf + 0x200, A_FILE);
    for (uint64_t i = A_FILE; i < A_MEM; i++)
        assert_int_equal(g->ram[SEG_A + i], 0);  /* bss */
    assert_int_equal(g->ram[SEG_A + A_MEM], 0xcc);
    assert_memory_equal(g->ram + SEG_B, elf + 0x800, B_FILE);
    assert_int_equal(g->ram[0x100000], 0xcc);    /* nothing at the bzImage address */
    const uint8_t *zp = g->ram + LB_ZERO_PAGE;
    assert_memory_equal(zp + 0x202, "HdrS", 4);
    assert_string_equal((const char *)g->ram + rd32(zp + 0x228), "console=ttyS0");
    uint32_t rd = rd32(zp + 0x218);
    assert_true(rd >= SEG_B + B_FILE && rd + 8 <= RAM_SIZE);
    assert_string_equal((const char *)g->ram + rd, "initrd!");
    assert_int_equal(e->cr3, LB_PAGE_TABLES);
}

static void test_payload_formats(void **state)
{
    static const char *fmts[] = { "gzip", "xz", "zstd" };
    static uint8_t elf[ELF_SIZE], packed[ELF_SIZE * 2], img[ELF_SIZE * 3];
    make_elf(elf, SEG_A);
    for (int i = 0; i < 3; i++) {
        size_t plen = pack(fmts[i], elf, ELF_SIZE, packed, sizeof(packed));
        assert_string_equal(linux_unpack_format(packed, plen), fmts[i]);
        size_t klen = make_bzimage(img, packed, plen);
        struct guest g;
        guest_new(&g);
        struct linux_boot lb;
        struct linux_entry e;
        struct error err = {0};
        assert_int_equal(boot(&g, img, klen, &lb, &e, &err), 0);
        assert_non_null(lb.vmlinux);
        assert_non_null(strstr(lb.how, fmts[i]));
        assert_non_null(strstr(lb.how, "unpacked on the host"));
        check_elf_loaded(&g, elf, &e);
        /* The zero page carries the bzImage's own setup header. */
        assert_int_equal(rd32(g.ram + LB_ZERO_PAGE + 0x24c), plen);
        linux_boot_close(&lb);
        guest_free(&g);
    }
}

/* Payloads the host does not take: the bzImage is loaded as before. */
static void check_fallback(const uint8_t *payload, size_t plen, const char *why)
{
    static uint8_t img[ELF_SIZE * 3];
    size_t klen = make_bzimage(img, payload, plen);
    struct guest g;
    guest_new(&g);
    struct linux_boot lb;
    struct linux_entry e;
    struct error err = {0};
    assert_int_equal(boot(&g, img, klen, &lb, &e, &err), 0);
    assert_null(lb.vmlinux);
    assert_non_null(strstr(lb.how, "in-guest decompressor"));
    if (!strstr(lb.how, why))
        fprintf(stderr, "how: %s (wanted %s)\n", lb.how, why);
    assert_non_null(strstr(lb.how, why));
    assert_int_equal(e.rip, 0x100200);
    assert_memory_equal(g.ram + 0x100000, img + 1024, klen - 1024);
    linux_boot_close(&lb);
    guest_free(&g);
}

static void test_payload_fallback(void **state)
{
    static uint8_t elf[ELF_SIZE], packed[ELF_SIZE * 2];
    make_elf(elf, SEG_A);
    size_t n = pack("xz", elf, ELF_SIZE, packed, sizeof(packed));
    packed[n / 2] ^= 0x5a;                        /* corrupt: CRC or LZMA2 error */
    check_fallback(packed, n, "xz payload is corrupt");
    n = pack("gzip", elf, ELF_SIZE, packed, sizeof(packed));
    put32(packed + n - 4, ELF_SIZE + 100);        /* size trailer disagrees */
    check_fallback(packed, n, "gzip payload is corrupt");
    n = pack("zstd", elf, ELF_SIZE, packed, sizeof(packed));
    memmove(packed + n - 24, packed + n - 4, 4);    /* truncated, trailer kept */
    check_fallback(packed, n - 20, "zstd payload is corrupt");
    n = pack("xz", elf, ELF_SIZE, packed, sizeof(packed));
    put32(packed + n - 4, 0x7fffffff);            /* an absurd size claim */
    check_fallback(packed, n, "claims");
    n = pack("lzma", elf, ELF_SIZE, packed, sizeof(packed));
    check_fallback(packed, n, "lzma payload is not decoded");
    /* Unpacks fine but is no vmlinux: a segment below 1 MiB. */
    make_elf(elf, 0x8000);
    n = pack("zstd", elf, ELF_SIZE, packed, sizeof(packed));
    check_fallback(packed, n, "below 1 MiB");
}

static void test_raw_vmlinux(void **state)
{
    static uint8_t elf[ELF_SIZE];
    make_elf(elf, SEG_A);
    struct guest g;
    guest_new(&g);
    struct linux_boot lb;
    struct linux_entry e;
    struct error err = {0};
    assert_int_equal(boot(&g, elf, ELF_SIZE, &lb, &e, &err), 0);
    assert_non_null(strstr(lb.how, "vmlinux ELF"));
    check_elf_loaded(&g, elf, &e);
    assert_int_equal(g.ram[LB_ZERO_PAGE + 0x210], 0xff);   /* type_of_loader */
    linux_boot_close(&lb);

    /* Too little RAM for a segment: a clear error. */
    err = (struct error){0};
    char *kp = write_tmp(elf, ELF_SIZE);
    assert_int_equal(linux_boot_open(&lb, kp, NULL, "", &err), 0);
    assert_int_equal(linux_boot_load(&lb, g.mem, SEG_B, &g.t, &e, &err), -ENOSPC);
    assert_non_null(strstr(err.msg, "does not fit"));
    linux_boot_close(&lb);
    unlink(kp);
    free(kp);

    /* Malformed ELFs given directly are refused before the guest runs. */
    make_elf(elf, 0x8000);
    err = (struct error){0};
    assert_int_equal(boot(&g, elf, ELF_SIZE, &lb, &e, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "below 1 MiB"));
    make_elf(elf, SEG_A);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)elf;
    eh->e_entry = 0x5000000;
    err = (struct error){0};
    assert_int_equal(boot(&g, elf, ELF_SIZE, &lb, &e, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "entry point"));
    make_elf(elf, SEG_A);
    eh->e_phnum = 200;                            /* headers past the end of the file */
    err = (struct error){0};
    assert_int_equal(boot(&g, elf, ELF_SIZE, &lb, &e, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "truncated"));
    make_elf(elf, SEG_A);
    eh->e_machine = EM_386;
    err = (struct error){0};
    assert_int_equal(boot(&g, elf, ELF_SIZE, &lb, &e, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "x86-64"));
    guest_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_payload_formats),
        cmocka_unit_test(test_payload_fallback),
        cmocka_unit_test(test_raw_vmlinux),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
