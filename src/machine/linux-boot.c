/* Linux boot protocol loader, 64-bit entry. */
#include "machine/linux-boot.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "hw/memory.h"
#include "machine/e820.h"
#include "machine/linux-unpack.h"

/* boot_params offsets (Documentation/arch/x86/zero-page.rst). */
enum {
    BP_ACPI_RSDP = 0x070, BP_EXT_RAMDISK_IMAGE = 0x0c0, BP_EXT_RAMDISK_SIZE = 0x0c4,
    BP_EXT_CMD_LINE_PTR = 0x0c8, BP_E820_ENTRIES = 0x1e8, BP_SETUP_SECTS = 0x1f1,
    BP_VID_MODE = 0x1fa, BP_BOOT_FLAG = 0x1fe, BP_JUMP = 0x200, BP_HEADER = 0x202,
    BP_VERSION = 0x206, BP_TYPE_OF_LOADER = 0x210, BP_LOADFLAGS = 0x211,
    BP_RAMDISK_IMAGE = 0x218, BP_RAMDISK_SIZE = 0x21c, BP_HEAP_END_PTR = 0x224,
    BP_CMD_LINE_PTR = 0x228, BP_PAYLOAD_OFFSET = 0x248, BP_PAYLOAD_LENGTH = 0x24c, BP_INITRD_ADDR_MAX = 0x22c, BP_KERNEL_ALIGNMENT = 0x230,
    BP_RELOCATABLE = 0x234, BP_XLOADFLAGS = 0x236, BP_CMDLINE_SIZE = 0x238,
    BP_PREF_ADDRESS = 0x258, BP_INIT_SIZE = 0x260, BP_E820_TABLE = 0x2d0,
};
#define LOADED_HIGH 0x01
#define CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

int linux_parse_header(const uint8_t *img, size_t len, const char *name,
                       struct linux_header *h, struct error *err)
{
    memset(h, 0, sizeof(*h));
    if (len < 0x300 || rd16(img + BP_BOOT_FLAG) != 0xaa55 || memcmp(img + BP_HEADER, "HdrS", 4))
        return error_set(err, -EINVAL, "%s: not a Linux bzImage kernel (no boot sector "
                         "signature or HdrS setup header)", name);
    h->version = rd16(img + BP_VERSION);
    if (h->version < 0x020c)
        return error_set(err, -EINVAL, "%s: Linux boot protocol %u.%02u is too old "
                         "(2.12 or later needed for the 64-bit entry)", name,
                         h->version >> 8, h->version & 0xff);
    h->setup_sects = img[BP_SETUP_SECTS] ? img[BP_SETUP_SECTS] : 4;
    h->setup_size = (size_t)(h->setup_sects + 1) * 512;
    h->header_end = BP_HEADER + img[BP_JUMP + 1];
    h->loadflags = img[BP_LOADFLAGS];
    h->xloadflags = rd16(img + BP_XLOADFLAGS);
    h->initrd_addr_max = rd32(img + BP_INITRD_ADDR_MAX);
    h->kernel_alignment = rd32(img + BP_KERNEL_ALIGNMENT);
    h->relocatable = img[BP_RELOCATABLE];
    h->cmdline_size = rd32(img + BP_CMDLINE_SIZE);
    h->pref_address = rd64(img + BP_PREF_ADDRESS);
    h->init_size = rd32(img + BP_INIT_SIZE);
    if (!(h->loadflags & LOADED_HIGH))
        return error_set(err, -EINVAL, "%s: a zImage (loaded low) is not supported", name);
    if (!(h->xloadflags & XLF_KERNEL_64))
        return error_set(err, -EINVAL, "%s: kernel has no 64-bit entry point "
                         "(not an x86-64 kernel)", name);
    if (h->setup_size >= len || h->header_end > 0x300)
        return error_set(err, -EINVAL, "%s: truncated bzImage", name);
    return 0;
}

static int read_file(const char *path, uint8_t **out, size_t *len, struct error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return error_set_errno(err, -errno, "could not open '%s'", path);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = -errno;
        close(fd);
        return error_set_errno(err, e, "could not stat '%s'", path);
    }
    uint8_t *buf = malloc(st.st_size ? st.st_size : 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, st.st_size - got);
        if (r <= 0) {
            int e = r < 0 ? -errno : -EIO;
            free(buf);
            close(fd);
            return error_set_errno(err, e, "could not read '%s'", path);
        }
        got += r;
    }
    close(fd);
    if (!buf)
        return error_set(err, -ENOMEM, "out of memory reading '%s'", path);
    *out = buf;
    *len = got;
    return 0;
}

/* Segments go at or above 1 MiB: below lie the GDT, zero page, page
 * tables, command line and ACPI tables. */
static bool elf_seg_ok(const Elf64_Phdr *ph, size_t len)
{
    return ph->p_filesz <= ph->p_memsz && ph->p_offset <= len &&
           ph->p_filesz <= len - ph->p_offset && ph->p_paddr >= LB_KERNEL &&
           ph->p_memsz < (1ULL << 40) && ph->p_paddr < (1ULL << 40);
}

int linux_elf_check(const uint8_t *elf, size_t len, struct error *err)
{
    Elf64_Ehdr eh;
    if (len < sizeof(eh) || memcmp(elf, ELFMAG, SELFMAG))
        return error_set(err, -EINVAL, "not an ELF file");
    memcpy(&eh, elf, sizeof(eh));
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC)
        return error_set(err, -EINVAL, "not an x86-64 executable ELF");
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phoff > len ||
        (size_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff)
        return error_set(err, -EINVAL, "ELF program headers are missing or truncated");
    bool entry_in = false;
    int nload = 0;
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, elf + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD)
            continue;
        if (!elf_seg_ok(&ph, len))
            return error_set(err, -EINVAL, "ELF segment %d (0x%llx bytes at physical 0x%llx) "
                             "is outside the file or below 1 MiB", i,
                             (unsigned long long)ph.p_memsz, (unsigned long long)ph.p_paddr);
        nload++;
        if (eh.e_entry >= ph.p_paddr && eh.e_entry < ph.p_paddr + ph.p_filesz)
            entry_in = true;
    }
    if (!nload || !entry_in)
        return error_set(err, -EINVAL, "ELF entry point 0x%llx is not in a loaded segment "
                         "(not a vmlinux)", (unsigned long long)eh.e_entry);
    return 0;
}

/* A raw vmlinux has no setup header: give boot_params a minimal one. */
static void fake_setup(struct linux_boot *lb)
{
    struct linux_header *h = &lb->hdr;
    uint8_t *b = lb->setup;
    memset(b, 0, sizeof(lb->setup));
    wr16(b + BP_BOOT_FLAG, 0xaa55);
    b[BP_JUMP] = 0xeb;
    b[BP_JUMP + 1] = 0x66;
    memcpy(b + BP_HEADER, "HdrS", 4);
    wr16(b + BP_VERSION, 0x020c);
    b[BP_LOADFLAGS] = LOADED_HIGH;
    wr32(b + BP_INITRD_ADDR_MAX, 0x7fffffff);
    wr16(b + BP_XLOADFLAGS, XLF_KERNEL_64);
    wr32(b + BP_CMDLINE_SIZE, 2047);             /* COMMAND_LINE_SIZE - 1 */
    *h = (struct linux_header){ .version = 0x020c, .loadflags = LOADED_HIGH,
                                .xloadflags = XLF_KERNEL_64, .initrd_addr_max = 0x7fffffff,
                                .cmdline_size = 2047, .header_end = BP_HEADER + 0x66 };
}

/* bzImage: try to unpack the payload here; on any failure keep the
 * in-guest decompressor path and say why in lb->how. */
static void try_unpack(struct linux_boot *lb)
{
    const struct linux_header *h = &lb->hdr;
    size_t pm = lb->kernel_size - h->setup_size;
    uint32_t off = rd32(lb->kernel + BP_PAYLOAD_OFFSET);
    uint32_t plen = rd32(lb->kernel + BP_PAYLOAD_LENGTH);
    if (!plen || off > pm || plen > pm - off) {
        snprintf(lb->how, sizeof(lb->how), "bzImage, in-guest decompressor (no payload "
                 "in the setup header)");
        return;
    }
    const uint8_t *p = lb->kernel + h->setup_size + off;
    struct error e = {0};
    int ret = linux_unpack(p, plen, &lb->vmlinux, &lb->vmlinux_size, &e);
    if (ret == 0 && linux_elf_check(lb->vmlinux, lb->vmlinux_size, &e) < 0) {
        error_prepend(&e, "unpacked %s payload", linux_unpack_format(p, plen));
        free(lb->vmlinux);
        lb->vmlinux = NULL;
        ret = -EINVAL;
    }
    if (ret < 0) {
        snprintf(lb->how, sizeof(lb->how), "bzImage, in-guest decompressor (%s)", e.msg);
        return;
    }
    snprintf(lb->how, sizeof(lb->how), "bzImage, %s payload unpacked on the host "
             "(%zu bytes), entering vmlinux at startup_64",
             linux_unpack_format(p, plen), lb->vmlinux_size);
    free(lb->kernel);                            /* lb->setup keeps what is still needed */
    lb->kernel = NULL;
    lb->kernel_size = 0;
}

static int open_kernel(struct linux_boot *lb, const char *kernel, struct error *err)
{
    int ret = read_file(kernel, &lb->kernel, &lb->kernel_size, err);
    if (ret < 0)
        return ret;
    if (lb->kernel_size >= SELFMAG && !memcmp(lb->kernel, ELFMAG, SELFMAG)) {
        ret = linux_elf_check(lb->kernel, lb->kernel_size, err);
        if (ret < 0) {
            error_prepend(err, "%s", kernel);
            return ret;
        }
        lb->vmlinux = lb->kernel;
        lb->vmlinux_size = lb->kernel_size;
        lb->kernel = NULL;
        lb->kernel_size = 0;
        fake_setup(lb);
        snprintf(lb->how, sizeof(lb->how), "vmlinux ELF, entering at startup_64");
        return 0;
    }
    ret = linux_parse_header(lb->kernel, lb->kernel_size, kernel, &lb->hdr, err);
    if (ret < 0)
        return ret;
    memcpy(lb->setup, lb->kernel, sizeof(lb->setup));
    try_unpack(lb);
    return 0;
}

int linux_boot_open(struct linux_boot *lb, const char *kernel, const char *initrd,
                    const char *cmdline, struct error *err)
{
    memset(lb, 0, sizeof(*lb));
    int ret = open_kernel(lb, kernel, err);
    if (ret == 0 && initrd)
        ret = read_file(initrd, &lb->initrd, &lb->initrd_size, err);
    if (ret == 0) {
        lb->cmdline = strdup(cmdline ? cmdline : "");
        if (!lb->cmdline)
            ret = error_set(err, -ENOMEM, "out of memory");
    }
    if (ret < 0)
        linux_boot_close(lb);
    return ret;
}

void linux_boot_close(struct linux_boot *lb)
{
    free(lb->kernel);
    free(lb->vmlinux);
    free(lb->initrd);
    free(lb->cmdline);
    memset(lb, 0, sizeof(*lb));
}

static int put(struct address_space *mem, uint64_t gpa, const void *p, size_t n,
               const char *what, struct error *err)
{
    if (as_rw(mem, gpa, (void *)p, n, true) < 0)
        return error_set(err, -EFAULT, "no guest RAM for the %s at 0x%llx", what,
                         (unsigned long long)gpa);
    return 0;
}

/* GDT and identity page tables (2 MiB pages over the first 4 GiB). */
static int build_paging(struct address_space *mem, struct linux_entry *e, struct error *err)
{
    static const uint64_t gdt[4] = {
        0, 0,
        0x00af9b000000ffffULL,                   /* 0x10 __BOOT_CS: 64-bit code */
        0x00cf93000000ffffULL,                   /* 0x18 __BOOT_DS */
    };
    int ret = put(mem, LB_GDT, gdt, sizeof(gdt), "GDT", err);
    uint64_t pml4[512] = {0}, pdpt[512] = {0}, pd[512];
    pml4[0] = (LB_PAGE_TABLES + 0x1000) | 3;
    for (int i = 0; i < 4; i++)
        pdpt[i] = (LB_PAGE_TABLES + 0x2000 + 0x1000 * i) | 3;
    if (!ret)
        ret = put(mem, LB_PAGE_TABLES, pml4, 4096, "page tables", err);
    if (!ret)
        ret = put(mem, LB_PAGE_TABLES + 0x1000, pdpt, 4096, "page tables", err);
    for (int i = 0; i < 4 && !ret; i++) {
        for (int j = 0; j < 512; j++)
            pd[j] = ((uint64_t)i << 30) + ((uint64_t)j << 21) + 0x83;   /* P RW PS */
        ret = put(mem, LB_PAGE_TABLES + 0x2000 + 0x1000 * i, pd, 4096, "page tables", err);
    }
    e->cr3 = LB_PAGE_TABLES;
    e->gdt_base = LB_GDT;
    e->gdt_limit = sizeof(gdt) - 1;
    return ret;
}

static int place_initrd(const struct linux_boot *lb, struct address_space *mem,
                        uint64_t lowmem_end, uint64_t kernel_end, uint8_t *zp,
                        struct error *err)
{
    if (!lb->initrd)
        return 0;
    uint64_t max = lb->hdr.initrd_addr_max ? lb->hdr.initrd_addr_max : 0x37ffffff;
    uint64_t top = lowmem_end < max + 1 ? lowmem_end : max + 1;
    if (lb->initrd_size > top || ((top - lb->initrd_size) & ~0xfffULL) < kernel_end)
        return error_set(err, -ENOSPC, "initrd (%zu bytes) does not fit in guest RAM below "
                         "0x%llx; give the guest more memory (-m)", lb->initrd_size,
                         (unsigned long long)top);
    uint64_t addr = (top - lb->initrd_size) & ~0xfffULL;
    int ret = put(mem, addr, lb->initrd, lb->initrd_size, "initrd", err);
    wr32(zp + BP_RAMDISK_IMAGE, (uint32_t)addr);
    wr32(zp + BP_RAMDISK_SIZE, (uint32_t)lb->initrd_size);
    wr32(zp + BP_EXT_RAMDISK_IMAGE, addr >> 32);
    wr32(zp + BP_EXT_RAMDISK_SIZE, (uint64_t)lb->initrd_size >> 32);
    return ret;
}

/* PT_LOAD segments at their physical addresses, the rest of each zeroed;
 * *end is where the highest one ends (the initrd goes above it). */
static int load_elf(const struct linux_boot *lb, struct address_space *mem,
                    uint64_t lowmem_end, uint64_t *entry, uint64_t *end, struct error *err)
{
    static const uint8_t zero[65536];
    Elf64_Ehdr eh;
    memcpy(&eh, lb->vmlinux, sizeof(eh));
    *end = LB_KERNEL;
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, lb->vmlinux + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD)
            continue;
        if (ph.p_paddr + ph.p_memsz > lowmem_end)
            return error_set(err, -ENOSPC, "kernel segment at 0x%llx-0x%llx does not fit in "
                             "guest RAM; give the guest more memory (-m)",
                             (unsigned long long)ph.p_paddr,
                             (unsigned long long)(ph.p_paddr + ph.p_memsz));
        int ret = put(mem, ph.p_paddr, lb->vmlinux + ph.p_offset, ph.p_filesz, "kernel", err);
        for (uint64_t o = ph.p_filesz; ret == 0 && o < ph.p_memsz; o += sizeof(zero)) {
            uint64_t n = ph.p_memsz - o < sizeof(zero) ? ph.p_memsz - o : sizeof(zero);
            ret = put(mem, ph.p_paddr + o, zero, n, "kernel", err);
        }
        if (ret < 0)
            return ret;
        if (ph.p_paddr + ph.p_memsz > *end)
            *end = ph.p_paddr + ph.p_memsz;
    }
    *entry = eh.e_entry;
    return 0;
}

/* The bzImage's protected-mode code at 1 MiB (or its preferred address),
 * with room for init_size: its decompressor unpacks in place. */
static int load_bzimage(const struct linux_boot *lb, struct address_space *mem,
                        uint64_t lowmem_end, uint64_t *entry, uint64_t *end,
                        struct error *err)
{
    const struct linux_header *h = &lb->hdr;
    size_t ksize = lb->kernel_size - h->setup_size;
    uint64_t kaddr = LB_KERNEL;
    if (!h->relocatable && h->pref_address)
        kaddr = h->pref_address;
    uint64_t kend = kaddr + (h->init_size > ksize ? h->init_size : ksize);
    if (kend > lowmem_end)
        return error_set(err, -ENOSPC, "kernel needs 0x%llx bytes of RAM at 0x%llx; "
                         "the guest has too little memory", (unsigned long long)(kend - kaddr),
                         (unsigned long long)kaddr);
    *entry = kaddr + 0x200;
    *end = kend;
    return put(mem, kaddr, lb->kernel + h->setup_size, ksize, "kernel", err);
}

int linux_boot_load(const struct linux_boot *lb, struct address_space *mem, uint64_t lowmem_end,
                    const struct e820_table *e820, struct linux_entry *entry, struct error *err)
{
    const struct linux_header *h = &lb->hdr;
    uint64_t rip = 0, kend = 0;
    int ret = lb->vmlinux ? load_elf(lb, mem, lowmem_end, &rip, &kend, err)
                          : load_bzimage(lb, mem, lowmem_end, &rip, &kend, err);
    if (ret < 0)
        return ret;

    uint8_t zp[4096];
    memset(zp, 0, sizeof(zp));
    memcpy(zp + BP_SETUP_SECTS, lb->setup + BP_SETUP_SECTS, h->header_end - BP_SETUP_SECTS);
    wr16(zp + BP_VID_MODE, 0xffff);              /* "normal" */
    zp[BP_TYPE_OF_LOADER] = 0xff;                /* undefined loader */
    zp[BP_LOADFLAGS] = (h->loadflags | CAN_USE_HEAP) & ~0x20;   /* keep quiet off */
    wr16(zp + BP_HEAP_END_PTR, 0xfe00);

    size_t clen = strlen(lb->cmdline);
    uint32_t cmax = h->cmdline_size ? h->cmdline_size : 255;
    if (clen > cmax)
        return error_set(err, -E2BIG, "kernel command line is %zu bytes; this kernel takes "
                         "at most %u", clen, cmax);
    ret = put(mem, LB_CMDLINE, lb->cmdline, clen + 1, "command line", err);
    wr32(zp + BP_CMD_LINE_PTR, (uint32_t)LB_CMDLINE);
    wr32(zp + BP_EXT_CMD_LINE_PTR, 0);

    if (!ret)
        ret = place_initrd(lb, mem, lowmem_end, kend, zp, err);
    int n = e820->n < E820_MAX ? e820->n : E820_MAX;
    zp[BP_E820_ENTRIES] = n;
    memcpy(zp + BP_E820_TABLE, e820->e, n * sizeof(struct e820_entry));
    if (lb->acpi_rsdp)
        wr64(zp + BP_ACPI_RSDP, lb->acpi_rsdp);
    if (!ret)
        ret = put(mem, LB_ZERO_PAGE, zp, sizeof(zp), "zero page", err);
    if (!ret)
        ret = build_paging(mem, entry, err);
    entry->rip = rip;
    entry->rsi = LB_ZERO_PAGE;
    entry->rsp = LB_STACK_TOP;
    return ret;
}
