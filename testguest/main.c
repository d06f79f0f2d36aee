/* The test guest's checks, run at CPL3 with IOPL=3: every port access
 * below is a plain IN/OUT from user mode. Lines starting with "ok" or
 * "FAIL" are results meant to match on every machine model; lines
 * starting with "#" are details (device lists, addresses) that differ
 * between boards. The last thing it does is power off through ACPI. */
#include <stdint.h>
#include "guest.h"

extern volatile uint64_t ticks;
extern uint64_t boot_params;

static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(p)); }
static inline void outw(uint16_t p, uint16_t v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(p)); }
static inline void outl(uint16_t p, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t inl(uint16_t p) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }

static int failures;

void putc_(char c) { outb(0x3f8, (uint8_t)c); }
void puts_(const char *s) { while (*s) putc_(*s++); }

static void puthex(uint64_t v, int digits)
{
    for (int i = digits - 1; i >= 0; i--)
        putc_("0123456789abcdef"[(v >> (4 * i)) & 15]);
}

static void putdec(uint64_t v)
{
    char b[24];
    int n = 0;
    do { b[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n)
        putc_(b[--n]);
}

void result(int ok, const char *what)
{
    puts_(ok ? "ok " : "FAIL ");
    puts_(what);
    putc_('\n');
    failures += !ok;
}

static void check_cpl(void)
{
    uint16_t cs;
    uint64_t fl;
    __asm__ volatile("mov %%cs, %0; pushfq; pop %1" : "=r"(cs), "=r"(fl));
    (void)fl;
    result((cs & 3) == 3, "running at CPL3");
}

/* ---- PCI configuration space through 0xCF8/0xCFC ---- */

uint32_t pci_read(int bus, int dev, int fn, int off)
{
    outl(0xcf8, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (off & 0xfc));
    return inl(0xcfc);
}

static void check_pci(void)
{
    int n = 0, host = 0;
    for (int dev = 0; dev < 32; dev++) {
        for (int fn = 0; fn < 8; fn++) {
            uint32_t id = pci_read(0, dev, fn, 0);
            if ((id & 0xffff) == 0xffff) {
                if (fn == 0)
                    break;
                continue;
            }
            uint32_t cls = pci_read(0, dev, fn, 8) >> 16;
            puts_("# pci 00:");
            puthex(dev, 2);
            putc_('.');
            puthex(fn, 1);
            putc_(' ');
            puthex(id & 0xffff, 4);
            putc_(':');
            puthex(id >> 16, 4);
            puts_(" class ");
            puthex(cls, 4);
            putc_('\n');
            n++;
            host |= dev == 0 && fn == 0 && cls == 0x0600;
            if (fn == 0 && !(pci_read(0, dev, 0, 0xc) >> 16 & 0x80))
                break;                       /* single-function device */
        }
    }
    result(host, "pci host bridge at 00:00.0");
    puts_("# pci functions ");
    putdec(n);
    putc_('\n');
}

/* ---- PIT channel 0 through the 8259 ---- */

static void check_timer(void)
{
    static const uint8_t init[] = { 0x11, 0x20, 0x04, 0x01 };
    for (int i = 0; i < 4; i++)
        outb(i ? 0x21 : 0x20, init[i]);
    outb(0xa0, 0x11);
    outb(0xa1, 0x28);
    outb(0xa1, 0x02);
    outb(0xa1, 0x01);
    outb(0x21, 0xfe);                        /* only IRQ0 */
    outb(0xa1, 0xff);
    outb(0x43, 0x34);                        /* channel 0, lo/hi, rate generator */
    outb(0x40, 1193 & 0xff);                 /* 1 kHz */
    outb(0x40, 1193 >> 8);
    uint64_t t0 = rdtsc();
    while (ticks < 10 && rdtsc() - t0 < 20000000000ull)
        __asm__ volatile("pause");
    outb(0x21, 0xff);
    result(ticks >= 10, "timer: 10 PIT interrupts taken at CPL0 and back to CPL3");
}

/* ---- the local APIC's timer (the kernel's under KVM's split irqchip) ---- */

extern volatile uint64_t apic_ticks;

static void check_apic_timer(void)
{
    volatile uint32_t *apic = (volatile uint32_t *)(uintptr_t)0xfee00000;
    apic[0xf0 / 4] = 0x1ff;                  /* software enable */
    apic[0x3e0 / 4] = 0xb;                   /* divide by 1 */
    apic[0x320 / 4] = 0x33 | 1u << 17;       /* periodic, vector 0x33 (head.S) */
    apic[0x380 / 4] = 1000000;               /* 1 ms at the usual 1 GHz bus */
    uint64_t t0 = rdtsc();
    while (apic_ticks < 5 && rdtsc() - t0 < 20000000000ull)
        __asm__ volatile("pause");
    apic[0x320 / 4] = 1u << 16;              /* masked */
    apic[0x380 / 4] = 0;
    result(apic_ticks >= 5, "apic timer: 5 periodic interrupts");
}

/* ---- ACPI: RSDP -> RSDT/XSDT -> FADT -> PM1a_CNT and \_S5 ---- */

static int sum8(const uint8_t *p, uint32_t n)
{
    uint8_t s = 0;
    while (n--)
        s += *p++;
    return s;
}

static int sig_is(const uint8_t *p, const char *s)
{
    for (int i = 0; s[i]; i++)
        if (p[i] != (uint8_t)s[i])
            return 0;
    return 1;
}

static const uint8_t *find_rsdp(void)
{
    for (uintptr_t a = 0xe0000; a < 0x100000; a += 16)
        if (sig_is((const uint8_t *)a, "RSD PTR ") && !sum8((const uint8_t *)a, 20))
            return (const uint8_t *)a;
    return 0;
}

void pci_write(int bus, int dev, int fn, int off, uint32_t v)
{
    outl(0xcf8, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (off & 0xfc));
    outl(0xcfc, v);
}

int str_eq(const char *a, const char *b)
{
    while (*b)
        if (*a++ != *b++)
            return 0;
    return 1;
}

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static const uint8_t *find_fadt(const uint8_t *rsdp)
{
    int x = rsdp[15] >= 2 && rd32(rsdp + 24);
    const uint8_t *t = (const uint8_t *)(uintptr_t)(x ? rd32(rsdp + 24) : rd32(rsdp + 16));
    uint32_t len = rd32(t + 4), step = x ? 8 : 4;
    for (uint32_t off = 36; off + step <= len; off += step) {
        const uint8_t *e = (const uint8_t *)(uintptr_t)rd32(t + off);
        if (sig_is(e, "FACP"))
            return e;
    }
    return 0;
}

/* SLP_TYPa of \_S5: Name(_S5_, Package(){ a, b, ... }). */
static int s5_type(const uint8_t *dsdt)
{
    uint32_t len = rd32(dsdt + 4);
    for (uint32_t i = 36; i + 8 < len; i++) {
        if (!sig_is(dsdt + i, "_S5_") || dsdt[i + 4] != 0x12)
            continue;
        const uint8_t *p = dsdt + i + 5;
        p += 1 + (*p >> 6);                  /* PkgLength */
        p++;                                 /* NumElements */
        if (*p == 0x0a)
            return p[1];
        return *p == 0x01 ? 1 : *p == 0 ? 0 : -1;
    }
    return -1;
}

static void poweroff(void)
{
    const uint8_t *rsdp = find_rsdp();
    const uint8_t *fadt = rsdp ? find_fadt(rsdp) : 0;
    int typ = fadt ? s5_type((const uint8_t *)(uintptr_t)rd32(fadt + 40)) : -1;
    result(fadt && typ >= 0, "acpi: RSDP, FADT and \\_S5 found");
    if (!fadt || typ < 0)
        return;
    uint32_t port = rd32(fadt + 64);
    puts_("# acpi pm1a_cnt 0x");
    puthex(port, 4);
    puts_(" slp_typ ");
    putdec(typ);
    putc_('\n');
    puts_(failures ? "testguest: FAILED " : "testguest: all passed, ");
    if (failures) {
        putdec(failures);
        puts_(" checks, ");
    }
    puts_("powering off\n");
    outw(port, (uint16_t)(typ << 10 | 1 << 13));
}

/* The kernel command line (boot_params.cmd_line_ptr) holds word w. */
static int cmdline_has(const char *w)
{
    const char *c = (const char *)(uintptr_t)*(volatile uint32_t *)(uintptr_t)(boot_params + 0x228);
    for (; c && *c; c++) {
        int i = 0;
        while (w[i] && c[i] == w[i])
            i++;
        if (!w[i] && (c[i] == 0 || c[i] == ' '))
            return 1;
    }
    return 0;
}

uint64_t cmdline_num(const char *key, uint64_t def)
{
    const char *c = (const char *)(uintptr_t)*(volatile uint32_t *)(uintptr_t)(boot_params + 0x228);
    for (; c && *c; c++) {
        if (c != (const char *)(uintptr_t)*(volatile uint32_t *)(uintptr_t)(boot_params + 0x228) &&
            c[-1] != ' ')
            continue;
        int i = 0;
        while (key[i] && c[i] == key[i])
            i++;
        if (key[i] || c[i] != '=')
            continue;
        uint64_t v = 0;
        for (c += i + 1; *c >= '0' && *c <= '9'; c++)
            v = v * 10 + (uint64_t)(*c - '0');
        return v;
    }
    return def;
}

void guest_main(void)
{
    puts_("testguest: running at CPL3\n");
    check_cpl();
    result(boot_params != 0, "boot_params handed over");
    check_pci();
    check_timer();
    check_apic_timer();
    check_virtio_blk();
    check_virtio_net();
    uint64_t mib = cmdline_num("blkbench", 0);
    if (mib)
        blkbench(mib, cmdline_num("blkreq", 1024), cmdline_num("blkdepth", 1));
    if (cmdline_has("hold")) {
        puts_("testguest: holding\n");      /* benchmarks read the host process now */
        for (;;)
            __asm__ volatile("pause");
    }
    poweroff();
    for (;;)
        __asm__ volatile("pause");
}

/* CPL0: an exception. Say which and stop. */
void guest_trap(uint64_t vec, uint64_t a, uint64_t b)
{
    puts_("FAIL exception ");
    putdec(vec);
    puts_(" 0x");
    puthex(a, 16);
    puts_(" 0x");
    puthex(b, 16);
    putc_('\n');
}
