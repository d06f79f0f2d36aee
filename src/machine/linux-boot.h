/* Linux x86 boot protocol (Documentation/arch/x86/boot.rst): parse a
 * bzImage's setup header, place the protected-mode kernel, the initrd, the
 * command line and the zero page (boot_params with the e820 map) in guest
 * RAM, and give the register state for the 64-bit entry point (identity
 * paging, __BOOT_CS/__BOOT_DS GDT, RSI = boot_params).
 *
 * Fast path: a bzImage's payload in a format linux-unpack.h decodes is
 * unpacked on the host once, at open, and its vmlinux ELF's PT_LOAD
 * segments are placed at their physical addresses; the CPU then enters
 * startup_64 (e_entry) directly, with the same state as the 64-bit entry,
 * so the guest never runs the kernel's decompressor. A vmlinux ELF given
 * as the kernel is entered the same way. Any other payload, or an ELF the
 * checks reject, falls back to loading the bzImage as is. */
#ifndef QUOKKA_MACHINE_LINUX_BOOT_H
#define QUOKKA_MACHINE_LINUX_BOOT_H

#include <stddef.h>
#include <stdint.h>
#include "util/error.h"

struct address_space;
struct e820_table;

/* What the setup header says. */
struct linux_header {
    uint16_t version;             /* boot protocol, e.g. 0x020f */
    uint8_t setup_sects;
    uint8_t loadflags;
    uint16_t xloadflags;
    uint32_t initrd_addr_max;
    uint32_t cmdline_size;
    uint32_t kernel_alignment;
    uint8_t relocatable;
    uint64_t pref_address;
    uint32_t init_size;
    size_t setup_size;            /* bytes before the protected-mode kernel */
    size_t header_end;            /* end of the setup header in the image */
};

/* Fixed places in low memory for what the loader builds. */
#define LB_GDT 0x500ULL
#define LB_STACK_TOP 0x7000ULL
#define LB_ZERO_PAGE 0x7000ULL
#define LB_PAGE_TABLES 0x9000ULL  /* PML4, PDPT, 4 page directories: 0x9000-0xefff */
#define LB_CMDLINE 0x20000ULL
#define LB_KERNEL 0x100000ULL

/* Validate img as a 64-bit-capable bzImage; fill h. */
int linux_parse_header(const uint8_t *img, size_t len, const char *name,
                       struct linux_header *h, struct error *err);

/* The loaded pieces, kept so a system reset can load them again. */
struct linux_boot {
    uint8_t *kernel;              /* the bzImage; NULL once unpacked */
    size_t kernel_size;
    uint8_t setup[0x300];         /* boot sector + setup header for the zero page */
    uint8_t *vmlinux;             /* unpacked ELF kernel, NULL: bzImage path */
    size_t vmlinux_size;
    char how[200];                /* which path was taken and why, for logs */
    uint8_t *initrd;
    size_t initrd_size;
    char *cmdline;
    struct linux_header hdr;
    uint64_t acpi_rsdp;           /* 0 if none */
};

struct linux_entry {
    uint64_t rip, rsi, rsp, cr3;
    uint64_t gdt_base;
    uint16_t gdt_limit;
};

/* Read kernel (and initrd) files; reject files that are neither a bzImage
 * nor an x86-64 vmlinux ELF before the guest runs. */
int linux_boot_open(struct linux_boot *lb, const char *kernel, const char *initrd,
                    const char *cmdline, struct error *err);
void linux_boot_close(struct linux_boot *lb);
/* Check an x86-64 vmlinux ELF (a loadable, in-file PT_LOAD set whose
 * physical addresses start at 1 MiB or above and contain e_entry). */
int linux_elf_check(const uint8_t *elf, size_t len, struct error *err);
/* Write everything into guest RAM below lowmem_end (bytes of RAM under 4 GiB). */
int linux_boot_load(const struct linux_boot *lb, struct address_space *mem, uint64_t lowmem_end,
                    const struct e820_table *e820, struct linux_entry *entry, struct error *err);

#endif
