/* Can this host run KVM, and does KVM run guest kernel code natively?
 * PVM (kvm_pvm) runs guest CPL3 code natively but emulates CPL0 code one
 * instruction at a time: fine for the freestanding test guest, hopeless
 * for an unmodified Linux. The answer picks the accelerator for -accel
 * kvm:emu and feeds `quokka doctor`. */
#include "accel/kvm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool module_loaded(const char *name)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof(path), "/sys/module/%s", name);
    return stat(path, &st) == 0;
}

static void cpu_flags(struct kvm_host *h)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[4096];
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "flags", 5))
            continue;
        h->cpu_vmx = strstr(line, " vmx") != NULL;
        h->cpu_svm = strstr(line, " svm") != NULL;
        break;
    }
    if (f)
        fclose(f);
}

void kvm_host_probe(struct kvm_host *h)
{
    memset(h, 0, sizeof(*h));
    static const char *const mods[] = { "kvm_pvm", "kvm_intel", "kvm_amd" };
    for (unsigned i = 0; i < 3 && !h->module; i++)
        if (module_loaded(mods[i]))
            h->module = mods[i];
    cpu_flags(h);
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        h->open_errno = errno;
        return;
    }
    h->api_version = ioctl(fd, KVM_GET_API_VERSION, 0);
    close(fd);
    /* Hardware virtualization runs CPL0 natively; PVM never does; for
     * any other KVM a short probe decides. */
    if (h->module)
        h->native_cpl0 = strcmp(h->module, "kvm_pvm") != 0;
    else {
        long long ns = kvm_probe_cpl0_ns();
        h->native_cpl0 = ns >= 0 && ns < 5000000;
    }
}

void kvm_host_probe_vm(struct kvm_host *h)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    int vm = ioctl(fd, KVM_CREATE_VM, 0);
    if (vm < 0)
        h->vm_errno = errno;
    else
        close(vm);
    close(fd);
}

int kvm_host_usable(const struct kvm_host *h, struct error *err)
{
    if (h->open_errno == ENOENT) {
        if (!h->module && !h->cpu_vmx && !h->cpu_svm)
            return error_set(err, -ENODEV, "KVM is not available: /dev/kvm is missing and this "
                             "CPU shows no vmx/svm flag (enable virtualization in the firmware "
                             "setup, or use -accel emu)");
        return error_set(err, -ENODEV, "KVM is not available: /dev/kvm is missing; load the "
                         "module: modprobe %s", h->cpu_svm ? "kvm_amd" : "kvm_intel");
    }
    if (h->open_errno == EACCES || h->open_errno == EPERM)
        return error_set(err, -EACCES, "KVM is not available: no permission to open /dev/kvm; "
                         "join the kvm group (usermod -aG kvm $USER, then log in again)");
    if (h->open_errno)
        return error_set_errno(err, -h->open_errno, "KVM is not available: cannot open /dev/kvm");
    if (h->api_version != KVM_API_VERSION)
        return error_set(err, -ENOTSUP, "KVM API version %d is not supported (need %d)",
                         h->api_version, KVM_API_VERSION);
    if (h->vm_errno)
        return error_set(err, -h->vm_errno, "KVM is not available: it cannot create a VM (%s); "
                         "another hypervisor may hold the CPU's virtualization (close it), "
                         "or see dmesg", strerror(h->vm_errno));
    return 0;
}

const char *kvm_module_meaning(const char *module)
{
    if (!module)
        return "no KVM module loaded";
    if (!strcmp(module, "kvm_intel"))
        return "Intel VT-x: guests run natively";
    if (!strcmp(module, "kvm_amd"))
        return "AMD-V: guests run natively";
    if (!strcmp(module, "kvm_pvm"))
        return "PVM (no hardware virtualization): guest CPL3 code runs natively, CPL0 code "
               "is emulated slowly; unmodified kernels cannot boot, use -accel emu";
    return "unknown KVM module";
}

/* A real-mode loop of 20000 iterations of dec/jnz, then hlt: microseconds
 * natively, tens of milliseconds where CPL0 is emulated. */
long long kvm_probe_cpl0_ns(void)
{
    static const uint8_t code[] = { 0x66, 0xb9, 0x20, 0x4e, 0, 0,   /* mov $20000, %ecx */
                                    0x66, 0x49, 0x75, 0xfc,          /* 1: dec %ecx; jnz 1b */
                                    0xf4 };                          /* hlt */
    long long ret = -ENODEV;
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm = -1, cpu = -1;
    size_t rsz = 0;
    void *mem = MAP_FAILED, *run = MAP_FAILED;
    if (kvm < 0)
        return -errno;
    vm = ioctl(kvm, KVM_CREATE_VM, 0);
    mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (vm < 0 || mem == MAP_FAILED)
        goto out;
    memcpy(mem, code, sizeof(code));
    struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0x1000,
                                             .memory_size = 0x1000,
                                             .userspace_addr = (uintptr_t)mem };
    cpu = ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -1 : ioctl(vm, KVM_CREATE_VCPU, 0);
    rsz = (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (cpu < 0 || (long)rsz <= 0)
        goto out;
    run = mmap(NULL, rsz, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
    struct kvm_sregs s;
    if (run == MAP_FAILED || ioctl(cpu, KVM_GET_SREGS, &s) < 0)
        goto out;
    s.cs.base = 0x1000;
    s.cs.selector = 0x100;
    struct kvm_regs regs = { .rip = 0, .rflags = 2 };
    if (ioctl(cpu, KVM_SET_SREGS, &s) < 0 || ioctl(cpu, KVM_SET_REGS, &regs) < 0)
        goto out;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int r2 = ioctl(cpu, KVM_RUN, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (r2 < 0 || ((struct kvm_run *)run)->exit_reason != KVM_EXIT_HLT)
        goto out;
    ret = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
out:
    if (run != MAP_FAILED)
        munmap(run, rsz);
    if (mem != MAP_FAILED)
        munmap(mem, 0x1000);
    if (cpu >= 0)
        close(cpu);
    if (vm >= 0)
        close(vm);
    close(kvm);
    return ret;
}

const struct accel_ops *kvm_accel_select(bool fallback, struct error *err)
{
    struct kvm_host h;
    kvm_host_probe(&h);
    if (fallback)
        kvm_host_probe_vm(&h);                   /* ~0.4 ms: only where it picks */
    struct error why = {0};
    if (kvm_host_usable(&h, &why) < 0) {
        if (!fallback) {
            *err = why;
            return NULL;
        }
        fprintf(stderr, "quokka: %s; using emu\n", why.msg);
        return &accel_emu_ops;
    }
    if (!h.native_cpl0) {
        const char *what = h.module ? h.module : "this KVM";
        if (fallback) {
            fprintf(stderr, "quokka: KVM here is %s: guest kernel code (CPL0) cannot run "
                    "natively; using emu\n", what);
            return &accel_emu_ops;
        }
        fprintf(stderr, "quokka: warning: KVM here is %s: guest kernel code (CPL0) cannot run "
                "natively (only CPL3 code runs at native speed); proceeding with kvm\n", what);
    }
    return &accel_kvm_ops;
}
