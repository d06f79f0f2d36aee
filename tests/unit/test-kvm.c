/* The KVM accelerator without a guest: the host checks' messages (cause
 * and fix for each way /dev/kvm can be unusable), detection against
 * /sys/module, the CPUID each vCPU gets per -cpu model, read back
 * with KVM_GET_CPUID2, and an ioeventfd doorbell. Where /dev/kvm cannot be opened, creation must
 * fail with the host check's error instead. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
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

static struct accel *make(struct rig *r, const char *model, struct error *err)
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
                             .ncpus = 2, .cpu_model = model };
    return accel_kvm_ops.create(&b, err);
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
    struct accel *a = make(&r, NULL, &err);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_detection),
        cmocka_unit_test(test_cpuid_models),
        cmocka_unit_test(test_ioeventfd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
