/* The KVM accelerator without a guest: the host checks' messages (cause
 * and fix for each way /dev/kvm can be unusable), detection against
 * /sys/module, the CPUID each vCPU gets per -cpu model, read back
 * with KVM_GET_CPUID2, -cpu flags, an ioeventfd doorbell, RAM added after
 * creation as a memory slot, and the irqchip modes. Where /dev/kvm cannot be opened, creation must
 * fail with the host check's error instead. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "accel/kvm/kvm.h"
#include "accel/kvm/kvm_int.h"
#include "hw/apic.h"
#include "hw/memory.h"
#include "util/mainloop.h"

static void test_messages(void **state)
{
    struct kvm_host h = { .open_errno = ENOENT, .cpu_vmx = true };
    struct error err = {0};
    assert_int_equal(kvm_host_usable(&h, &err), -ENODEV);
    assert_non_null(strstr(err.msg, "modprobe kvm_intel"));
    h = (struct kvm_host){ .open_errno = ENOENT, .cpu_svm = true };
    err = (struct error){0};
    kvm_host_usable(&h, &err);
    assert_non_null(strstr(err.msg, "modprobe kvm_amd"));
    h = (struct kvm_host){ .open_errno = ENOENT };
    err = (struct error){0};
    kvm_host_usable(&h, &err);
    assert_non_null(strstr(err.msg, "enable virtualization in the firmware"));
    h = (struct kvm_host){ .open_errno = EACCES, .module = "kvm_intel" };
    err = (struct error){0};
    assert_int_equal(kvm_host_usable(&h, &err), -EACCES);
    assert_non_null(strstr(err.msg, "join the kvm group"));
    h = (struct kvm_host){ .module = "kvm_intel", .api_version = 11 };
    assert_int_equal(kvm_host_usable(&h, &err), -ENOTSUP);
    h.api_version = 12;
    assert_int_equal(kvm_host_usable(&h, &err), 0);
    h.vm_errno = EBUSY;
    err = (struct error){0};
    assert_int_equal(kvm_host_usable(&h, &err), -EBUSY);
    assert_non_null(strstr(err.msg, "cannot create a VM"));
    assert_non_null(strstr(kvm_module_meaning("kvm_pvm"), "CPL0"));
}

static void test_detection(void **state)
{
    struct kvm_host h;
    struct stat st;
    kvm_host_probe(&h);
    if (stat("/sys/module/kvm_pvm", &st) == 0) {
        assert_string_equal(h.module, "kvm_pvm");
        assert_false(h.native_cpl0);
    } else if (stat("/sys/module/kvm_intel", &st) == 0 || stat("/sys/module/kvm_amd", &st) == 0) {
        assert_true(h.native_cpl0 || h.open_errno);
    }
}

struct rig {
    struct mainloop *ml;
    struct address_space *mem, *io;
    struct apic_bus *apics;
    void *ram;
};

static const struct apic_cpu_ops no_ops = { NULL, NULL };

static struct accel *make_irqchip(struct rig *r, const char *model, const char *irqchip,
                                  struct error *err)
{
    r->ml = ml_new();
    r->mem = as_new("mem", r->ml);
    r->io = as_new("io", r->ml);
    r->apics = apic_bus_new(r->ml);
    for (int i = 0; i < 2; i++)
        apic_new(r->apics, i, &no_ops, NULL);
    r->ram = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    as_add_ram(r->mem, 0, 1 << 20, r->ram, "ram");
    struct accel_board b = { .ml = r->ml, .mem = r->mem, .io = r->io, .apics = r->apics,
                             .ncpus = 2, .cpu_model = model, .kernel_irqchip = irqchip };
    return accel_kvm_ops.create(&b, err);
}

static struct accel *make(struct rig *r, const char *model, struct error *err)
{
    return make_irqchip(r, model, NULL, err);
}

static void unmake(struct rig *r, struct accel *a)
{
    if (a)
        accel_kvm_ops.destroy(a);
    apic_bus_free(r->apics);
    as_free(r->mem);
    as_free(r->io);
    munmap(r->ram, 1 << 20);
    ml_free(r->ml);
}

/* Leaf fn (index 0) as the vCPU has it (KVM_GET_CPUID2), or as the
 * table handed to KVM has it when cpu < 0. */
static struct kvm_cpuid_entry2 leaf(struct accel *a, int cpu, uint32_t fn)
{
    struct { struct kvm_cpuid2 h; struct kvm_cpuid_entry2 e[256]; } c = { .h.nent = 256 };
    if (cpu >= 0)
        assert_int_equal(ioctl(a->v[cpu].fd, KVM_GET_CPUID2, &c), 0);
    else
        memcpy(&c, a->cpuid, sizeof(struct kvm_cpuid2) +
               a->cpuid->nent * sizeof(struct kvm_cpuid_entry2));
    for (unsigned i = 0; i < c.h.nent; i++)
        if (c.e[i].function == fn && c.e[i].index == 0)
            return c.e[i];
    return (struct kvm_cpuid_entry2){0};
}

/* PVM replaces the CPUID a VMM sets with its own: there only the table
 * handed to KVM can be checked. */
static void check_qemu64(struct accel *a, bool readback)
{
    struct kvm_cpuid_entry2 l1 = leaf(a, readback ? 0 : -1, 1), l7 = leaf(a, -1, 7);
    assert_int_equal(l1.ecx & (1u << 28), 0);              /* qemu64: no AVX */
    assert_int_equal(l1.ecx & (1u << 21 | 1u << 24), 0);   /* no x2APIC, no TSC-deadline */
    assert_int_not_equal(l1.ecx & (1u << 31), 0);          /* hypervisor */
    assert_int_not_equal(l1.edx & (1u << 9), 0);           /* APIC */
    assert_int_equal(l7.ebx, 0);
    if (readback) {
        assert_int_equal(l1.ebx >> 24, 0);                 /* APIC IDs */
        assert_int_equal(leaf(a, 1, 1).ebx >> 24, 1);
    }
}

static void test_cpuid_models(void **state)
{
    struct kvm_host h;
    struct error err = {0};
    struct rig r;
    kvm_host_probe(&h);
    struct accel *a = make(&r, "qemu64", &err);
    if (kvm_host_usable(&h, &err) < 0) {
        assert_null(a);                          /* no KVM here: creation must fail */
        unmake(&r, NULL);
        return;
    }
    assert_non_null(a);
    bool readback = !h.module || strcmp(h.module, "kvm_pvm") != 0;
    check_qemu64(a, readback);
    unmake(&r, a);

    a = make(&r, "host", &err);
    assert_non_null(a);
    struct { struct kvm_cpuid2 h; struct kvm_cpuid_entry2 e[256]; } s = { .h.nent = 256 };
    assert_int_equal(ioctl(a->kvm, KVM_GET_SUPPORTED_CPUID, &s), 0);
    for (unsigned i = 0; i < s.h.nent; i++)
        if (s.e[i].function == 7 && s.e[i].index == 0)
            assert_int_equal(leaf(a, -1, 7).ebx, s.e[i].ebx);  /* host keeps everything */
    if (a->irq.mode == KVM_IRQCHIP_SPLIT &&                    /* the kernel's APIC has it */
        ioctl(a->kvm, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
        assert_int_not_equal(leaf(a, -1, 1).ecx & (1u << 24), 0);
    unmake(&r, a);

    err = (struct error){0};
    a = make(&r, "Pentium-Z", &err);
    assert_null(a);
    assert_non_null(strstr(err.msg, "unknown CPU model"));
    unmake(&r, NULL);
}

/* A real-mode OUT to a port with an ioeventfd signals the eventfd; the
 * vCPU goes on to HLT without an I/O exit. */
static void test_ioeventfd(void **state)
{
    struct kvm_host h;
    struct error err = {0};
    struct rig r;
    kvm_host_probe(&h);
    struct accel *a = make_irqchip(&r, NULL, "off", &err);   /* HLT exits to us */
    if (!a) {
        assert_int_not_equal(kvm_host_usable(&h, &err), 0);
        unmake(&r, NULL);
        return;
    }
    static const uint8_t code[] = { 0xba, 0x00, 0x05, 0xb0, 0x2a, 0xee, 0xf4 }; /* out to 0x500; hlt */
    memcpy((uint8_t *)r.ram + 0x1000, code, sizeof(code));
    int fd = eventfd(0, EFD_NONBLOCK);
    assert_int_equal(accel_kvm_ops.ioeventfd(a, 0x500, 1, true, fd, true), 0);
    kvm_regs_sipi(&a->v[0], 0x01);               /* real mode at 0x1000 */
    assert_int_equal(ioctl(a->v[0].fd, KVM_RUN, 0), 0);
    assert_int_equal(a->v[0].run->exit_reason, KVM_EXIT_HLT);
    uint64_t n = 0;
    assert_int_equal(read(fd, &n, 8), 8);
    assert_int_equal(n, 1);
    assert_int_equal(accel_kvm_ops.ioeventfd(a, 0x500, 1, true, fd, false), 0);
    close(fd);
    unmake(&r, a);
}

/* -cpu MODEL,flags: removals always work; an addition KVM offers is
 * made, one it cannot offer (or the board cannot back) is refused. */
static void test_cpuid_flags(void **state)
{
    struct kvm_host h;
    struct error err = {0};
    struct rig r;
    kvm_host_probe(&h);
    struct accel *a = make(&r, "qemu64,-sse2,fpu=off", &err);
    if (kvm_host_usable(&h, &err) < 0) {
        assert_null(a);
        unmake(&r, NULL);
        return;
    }
    assert_non_null(a);
    assert_int_equal(leaf(a, -1, 1).edx & (1u << 26 | 1u << 0), 0);
    assert_int_not_equal(leaf(a, -1, 1).edx & (1u << 25), 0);       /* sse stays */
    struct { struct kvm_cpuid2 h; struct kvm_cpuid_entry2 e[256]; } s = { .h.nent = 256 };
    assert_int_equal(ioctl(a->kvm, KVM_GET_SUPPORTED_CPUID, &s), 0);
    unmake(&r, a);
    static const struct { const char *name; uint32_t fn; int reg; int bit; } cand[] = {
        { "popcnt", 1, 2, 23 }, { "avx", 1, 2, 28 }, { "aes", 1, 2, 25 },
        { "clflushopt", 7, 1, 23 }, { "clwb", 7, 1, 24 }, { "avx2", 7, 1, 5 },
        { "sha-ni", 7, 1, 29 }, { "avx512f", 7, 1, 16 },
    };
    int tried_on = 0, tried_off = 0;
    for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
        uint32_t have = 0;
        for (unsigned j = 0; j < s.h.nent; j++)
            if (s.e[j].function == cand[i].fn && s.e[j].index == 0)
                have = cand[i].reg == 1 ? s.e[j].ebx : s.e[j].ecx;
        bool offered = have >> cand[i].bit & 1;
        char model[64];
        snprintf(model, sizeof(model), "qemu64,+%s", cand[i].name);
        err = (struct error){0};
        a = make(&r, model, &err);
        if (offered) {
            assert_non_null(a);
            struct kvm_cpuid_entry2 e = leaf(a, -1, cand[i].fn);
            assert_int_not_equal((cand[i].reg == 1 ? e.ebx : e.ecx) >> cand[i].bit & 1, 0);
            tried_on++;
        } else {
            assert_null(a);
            assert_non_null(strstr(err.msg, "cannot offer it"));
            tried_off++;
        }
        unmake(&r, a);
    }
    assert_int_not_equal(tried_on + tried_off, 0);
    static const struct { const char *model, *msg; } bad[] = {
        { "qemu64,+bogus", "unknown CPU flag 'bogus'" },
        { "qemu64,+x2apic", "xAPIC only" },
        { "qemu64,avx", "write +FLAG, -FLAG" },
        { "Pentium-Z,+avx", "unknown CPU model" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err = (struct error){0};
        a = make(&r, bad[i].model, &err);
        assert_null(a);
        assert_non_null(strstr(err.msg, bad[i].msg));
        unmake(&r, NULL);
    }
}

/* A RAM region added after the VM was made becomes a memory slot: a
 * real-mode load and store there neither exit nor miss the page; once the
 * region is removed the same load exits as MMIO. */
static void test_late_ram(void **state)
{
    struct kvm_host h;
    struct error err = {0};
    struct rig r;
    kvm_host_probe(&h);
    struct accel *a = make_irqchip(&r, NULL, "off", &err);
    if (!a) {
        assert_int_not_equal(kvm_host_usable(&h, &err), 0);
        unmake(&r, NULL);
        return;
    }
    /* mov ax,0xffff; mov ds,ax; mov al,[0x10]; mov byte [0x11],0x5a; hlt: 1 MiB + 0 and + 1 */
    static const uint8_t code[] = { 0xb8, 0xff, 0xff, 0x8e, 0xd8, 0xa0, 0x10, 0x00,
                                    0xc6, 0x06, 0x11, 0x00, 0x5a, 0xf4 };
    memcpy((uint8_t *)r.ram + 0x1000, code, sizeof(code));
    uint8_t *late = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    late[0] = 0x77;
    assert_int_equal(as_add_ram(r.mem, 0x100000, 4096, late, "late"), 0);
    kvm_regs_sipi(&a->v[0], 0x01);
    assert_int_equal(ioctl(a->v[0].fd, KVM_RUN, 0), 0);
    assert_int_equal(a->v[0].run->exit_reason, KVM_EXIT_HLT);
    struct kvm_regs k;
    assert_int_equal(ioctl(a->v[0].fd, KVM_GET_REGS, &k), 0);
    assert_int_equal(k.rax & 0xff, 0x77);
    assert_int_equal(late[1], 0x5a);
    assert_int_equal(as_del(r.mem, 0x100000, NULL), 0);
    kvm_regs_sipi(&a->v[0], 0x01);
    assert_int_equal(ioctl(a->v[0].fd, KVM_RUN, 0), 0);
    assert_int_equal(a->v[0].run->exit_reason, KVM_EXIT_MMIO);
    assert_int_equal(a->v[0].run->mmio.phys_addr, 0x100000);
    unmake(&r, a);
    munmap(late, 4096);
}

/* The split irqchip where KVM has it: the APIC bus routes to KVM, MSIs
 * can be irqfds; kernel-irqchip=off keeps the board's APICs; "on" is
 * refused, naming why. */
static void test_irqchip_modes(void **state)
{
    struct kvm_host h;
    struct error err = {0};
    struct rig r;
    kvm_host_probe(&h);
    struct accel *a = make(&r, NULL, &err);
    if (!a) {
        assert_int_not_equal(kvm_host_usable(&h, &err), 0);
        unmake(&r, NULL);
        return;
    }
    bool can = ioctl(a->kvm, KVM_CHECK_EXTENSION, KVM_CAP_SPLIT_IRQCHIP) > 0;
    assert_int_equal(a->irq.mode, can ? KVM_IRQCHIP_SPLIT : KVM_IRQCHIP_OFF);
    void *o;
    const struct apic_bus_router *rt = apic_bus_router(r.apics, &o);
    if (can) {
        assert_non_null(rt);
        int fd = eventfd(0, EFD_NONBLOCK);
        int g = rt->irqfd_add(o, fd, 0xfee00000, 0x31);
        assert_true(g >= KVM_IOAPIC_PINS);
        assert_int_equal(rt->irqfd_set(o, g, 0xfee01000, 0x32), 0);
        rt->irqfd_del(o, g);
        close(fd);
    } else {
        assert_null(rt);
    }
    unmake(&r, a);
    a = make_irqchip(&r, NULL, "off", &err);
    assert_non_null(a);
    assert_int_equal(a->irq.mode, KVM_IRQCHIP_OFF);
    assert_null(apic_bus_router(r.apics, NULL));
    unmake(&r, a);
    err = (struct error){0};
    a = make_irqchip(&r, NULL, "on", &err);
    assert_null(a);
    assert_non_null(strstr(err.msg, "kernel-irqchip=on"));
    unmake(&r, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_detection),
        cmocka_unit_test(test_cpuid_models),
        cmocka_unit_test(test_ioeventfd),
        cmocka_unit_test(test_cpuid_flags),
        cmocka_unit_test(test_late_ram),
        cmocka_unit_test(test_irqchip_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
