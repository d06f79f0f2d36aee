/* The guest's CPUID: what KVM can virtualize (KVM_GET_SUPPORTED_CPUID),
 * narrowed to the -cpu model, minus what the board's devices do not
 * provide, then the model's flags (-cpu MODEL,+feat,-feat), with each
 * vCPU's APIC ID filled in. The local APIC is an xAPIC: no x2APIC; a
 * TSC-deadline timer only when it is the kernel's (split irqchip), as
 * the board's has none. A flag KVM cannot offer is refused, not
 * silently dropped (QEMU only warns). KVM's paravirtual
 * leaves (0x40000000: kvmclock, async PF) pass through: KVM implements
 * those MSRs itself. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include "accel/kvm/kvm_int.h"
#include "util/error.h"

#define CPUID_MAX 256

/* Feature words a model may keep: leaf 1 EDX/ECX, leaf 7.0 EBX/ECX/EDX,
 * leaf 0x80000001 EDX/ECX. */
struct cpu_model {
    const char *name;
    uint32_t l1d, l1c, l7b, l7c, l7d, e1d, e1c;
};

#define B(n) (1u << (n))
/* fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 */
#define BASE_EDX 0x078bfbfdu
#define QEMU64_ECX (B(0) | B(13))                            /* sse3 cx16 */
#define NEHALEM_ECX (QEMU64_ECX | B(9) | B(19) | B(20) | B(23)) /* ssse3 sse4.1 sse4.2 popcnt */
#define SNB_ECX (NEHALEM_ECX | B(1) | B(25) | B(26) | B(28))    /* pclmul aes xsave avx */
#define HSW_ECX (SNB_ECX | B(12) | B(17) | B(22) | B(29) | B(30)) /* fma pcid movbe f16c rdrand */
#define HSW_L7B (B(0) | B(3) | B(5) | B(7) | B(8) | B(9) | B(10)) /* fsgsbase bmi1 avx2 smep bmi2 erms invpcid */
#define LM_EDX (B(11) | B(20) | B(29))                          /* syscall nx lm */

static const struct cpu_model models[] = {
    { "host", ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u },
    { "max", ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u },
    { "qemu64", BASE_EDX, QEMU64_ECX, 0, 0, 0, LM_EDX, B(0) },
    { "kvm64", BASE_EDX, QEMU64_ECX, 0, 0, 0, LM_EDX, 0 },
    { "Nehalem", BASE_EDX, NEHALEM_ECX, 0, 0, 0, LM_EDX, B(0) },
    { "SandyBridge", BASE_EDX, SNB_ECX, 0, 0, 0, LM_EDX | B(27), B(0) },
    { "Haswell", BASE_EDX, HSW_ECX, HSW_L7B, 0, 0, LM_EDX | B(27), B(0) | B(5) },
    { "Skylake-Client", BASE_EDX, HSW_ECX, HSW_L7B | B(18) | B(19) | B(20) | B(23), 0, 0,
      LM_EDX | B(27), B(0) | B(5) | B(8) },
};

static const struct cpu_model *find_model(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
        if (strlen(models[i].name) == len && !strncmp(models[i].name, name, len))
            return &models[i];
    return NULL;
}

/* -cpu flags, QEMU's names (with its aliases), and where each bit lives. */
enum { R_EAX, R_EBX, R_ECX, R_EDX };
struct cpu_flag {
    const char *name;
    uint32_t fn, reg, bit;
};

static const struct cpu_flag flags[] = {
    { "fpu", 1, R_EDX, 0 }, { "vme", 1, R_EDX, 1 }, { "de", 1, R_EDX, 2 }, { "pse", 1, R_EDX, 3 },
    { "tsc", 1, R_EDX, 4 }, { "msr", 1, R_EDX, 5 }, { "pae", 1, R_EDX, 6 }, { "mce", 1, R_EDX, 7 },
    { "cx8", 1, R_EDX, 8 }, { "apic", 1, R_EDX, 9 }, { "sep", 1, R_EDX, 11 },
    { "mtrr", 1, R_EDX, 12 }, { "pge", 1, R_EDX, 13 }, { "mca", 1, R_EDX, 14 },
    { "cmov", 1, R_EDX, 15 }, { "pat", 1, R_EDX, 16 }, { "pse36", 1, R_EDX, 17 },
    { "clflush", 1, R_EDX, 19 }, { "mmx", 1, R_EDX, 23 }, { "fxsr", 1, R_EDX, 24 },
    { "sse", 1, R_EDX, 25 }, { "sse2", 1, R_EDX, 26 }, { "ss", 1, R_EDX, 27 },
    { "ht", 1, R_EDX, 28 },
    { "pni", 1, R_ECX, 0 }, { "sse3", 1, R_ECX, 0 }, { "pclmulqdq", 1, R_ECX, 1 },
    { "pclmuldq", 1, R_ECX, 1 }, { "vmx", 1, R_ECX, 5 }, { "ssse3", 1, R_ECX, 9 },
    { "fma", 1, R_ECX, 12 }, { "cx16", 1, R_ECX, 13 }, { "pdcm", 1, R_ECX, 15 },
    { "pcid", 1, R_ECX, 17 }, { "sse4.1", 1, R_ECX, 19 }, { "sse4_1", 1, R_ECX, 19 },
    { "sse4.2", 1, R_ECX, 20 }, { "sse4_2", 1, R_ECX, 20 }, { "x2apic", 1, R_ECX, 21 },
    { "movbe", 1, R_ECX, 22 }, { "popcnt", 1, R_ECX, 23 }, { "tsc-deadline", 1, R_ECX, 24 },
    { "aes", 1, R_ECX, 25 }, { "xsave", 1, R_ECX, 26 }, { "avx", 1, R_ECX, 28 },
    { "f16c", 1, R_ECX, 29 }, { "rdrand", 1, R_ECX, 30 }, { "hypervisor", 1, R_ECX, 31 },
    { "fsgsbase", 7, R_EBX, 0 }, { "bmi1", 7, R_EBX, 3 }, { "hle", 7, R_EBX, 4 },
    { "avx2", 7, R_EBX, 5 }, { "smep", 7, R_EBX, 7 }, { "bmi2", 7, R_EBX, 8 },
    { "erms", 7, R_EBX, 9 }, { "invpcid", 7, R_EBX, 10 }, { "rtm", 7, R_EBX, 11 },
    { "avx512f", 7, R_EBX, 16 }, { "avx512dq", 7, R_EBX, 17 }, { "rdseed", 7, R_EBX, 18 },
    { "adx", 7, R_EBX, 19 }, { "smap", 7, R_EBX, 20 }, { "avx512ifma", 7, R_EBX, 21 },
    { "clflushopt", 7, R_EBX, 23 }, { "clwb", 7, R_EBX, 24 }, { "avx512cd", 7, R_EBX, 28 },
    { "sha-ni", 7, R_EBX, 29 }, { "avx512bw", 7, R_EBX, 30 }, { "avx512vl", 7, R_EBX, 31 },
    { "avx512vbmi", 7, R_ECX, 1 }, { "umip", 7, R_ECX, 2 }, { "pku", 7, R_ECX, 3 },
    { "avx512vbmi2", 7, R_ECX, 6 }, { "gfni", 7, R_ECX, 8 }, { "vaes", 7, R_ECX, 9 },
    { "vpclmulqdq", 7, R_ECX, 10 }, { "avx512vnni", 7, R_ECX, 11 },
    { "avx512bitalg", 7, R_ECX, 12 }, { "avx512-vpopcntdq", 7, R_ECX, 14 },
    { "la57", 7, R_ECX, 16 }, { "rdpid", 7, R_ECX, 22 }, { "fsrm", 7, R_EDX, 4 },
    { "md-clear", 7, R_EDX, 10 }, { "serialize", 7, R_EDX, 14 },
    { "spec-ctrl", 7, R_EDX, 26 }, { "stibp", 7, R_EDX, 27 }, { "arch-capabilities", 7, R_EDX, 29 },
    { "ssbd", 7, R_EDX, 31 },
    { "syscall", 0x80000001, R_EDX, 11 }, { "nx", 0x80000001, R_EDX, 20 },
    { "xd", 0x80000001, R_EDX, 20 }, { "pdpe1gb", 0x80000001, R_EDX, 26 },
    { "rdtscp", 0x80000001, R_EDX, 27 }, { "lm", 0x80000001, R_EDX, 29 },
    { "lahf-lm", 0x80000001, R_ECX, 0 }, { "lahf_lm", 0x80000001, R_ECX, 0 },
    { "svm", 0x80000001, R_ECX, 2 }, { "abm", 0x80000001, R_ECX, 5 },
    { "lzcnt", 0x80000001, R_ECX, 5 }, { "sse4a", 0x80000001, R_ECX, 6 },
    { "3dnowprefetch", 0x80000001, R_ECX, 8 }, { "prefetchw", 0x80000001, R_ECX, 8 },
};

static const struct cpu_flag *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strlen(flags[i].name) == len && !strncmp(flags[i].name, name, len))
            return &flags[i];
    return NULL;
}

static uint32_t *entry_reg(struct kvm_cpuid2 *c, uint32_t fn, uint32_t reg)
{
    for (unsigned i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == fn && e->index == 0)
            return reg == R_EAX ? &e->eax : reg == R_EBX ? &e->ebx : reg == R_ECX ? &e->ecx
                                                                   : &e->edx;
    }
    return NULL;
}

/* Bits the board cannot back whatever KVM says: the xAPIC has no x2APIC
 * mode (neither ours nor, as set up, the kernel's), and only the kernel's
 * local APIC (split irqchip) has a TSC-deadline timer. */
static const char *flag_refused(const struct accel *a, const struct cpu_flag *f)
{
    if (f->fn == 1 && f->reg == R_ECX && f->bit == 21)
        return "the local APIC is xAPIC only";
    if (f->fn == 1 && f->reg == R_ECX && f->bit == 24 && a->irq.mode != KVM_IRQCHIP_SPLIT)
        return "the board's local APIC has no TSC-deadline mode (kernel-irqchip=split has)";
    return NULL;
}

/* ",+feat,-feat,feat=on,feat=off" after the model, in order. sup is
 * what KVM can offer: adding anything else is refused, naming it. */
static int apply_flags(struct accel *a, struct kvm_cpuid2 *sup, const char *s, struct error *err)
{
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        bool on;
        const char *name = s;
        size_t nlen = len;
        if (*s == '+' || *s == '-') {
            on = *s == '+';
            name++;
            nlen--;
        } else if (eq && (!strncmp(eq, "=on", len - (eq - s)) || !strncmp(eq, "=off", len - (eq - s)))) {
            on = eq[2] == 'n';
            nlen = (size_t)(eq - s);
        } else {
            return error_set(err, -EINVAL, "-cpu: '%.*s': write +FLAG, -FLAG, FLAG=on or FLAG=off",
                             (int)len, s);
        }
        const struct cpu_flag *f = find_flag(name, nlen);
        if (!f)
            return error_set(err, -EINVAL, "-cpu: unknown CPU flag '%.*s'", (int)nlen, name);
        uint32_t *reg = entry_reg(a->cpuid, f->fn, f->reg), *can = entry_reg(sup, f->fn, f->reg);
        const char *why = on ? flag_refused(a, f) : NULL;
        bool offered = can && (*can >> f->bit & 1);
        if (f->fn == 1 && f->reg == R_ECX && f->bit == 24)   /* emulated: not in the table */
            offered = ioctl(a->kvm, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
        if (!why && on && !offered)
            why = "KVM on this host cannot offer it";
        if (why)
            return error_set(err, -ENOTSUP, "-cpu: cannot enable %s: %s", f->name, why);
        if (reg)
            *reg = on ? *reg | 1u << f->bit : *reg & ~(1u << f->bit);
        s = end ? end + 1 : NULL;
    }
    return 0;
}

static void apply_model(struct kvm_cpuid_entry2 *e, const struct cpu_model *m)
{
    if (e->function == 1) {
        e->edx &= m->l1d;
        e->ecx &= m->l1c | B(31);                /* hypervisor stays */
    } else if (e->function == 7 && e->index == 0) {
        e->ebx &= m->l7b;
        e->ecx &= m->l7c;
        e->edx &= m->l7d;
    } else if (e->function == 0x80000001) {
        e->edx &= m->e1d;
        e->ecx &= m->e1c;
    }
}

int kvm_cpuid_load(struct accel *a, struct error *err)
{
    const char *name = a->b.cpu_model ? a->b.cpu_model : "qemu64";
    const char *comma = strchr(name, ',');
    size_t nlen = comma ? (size_t)(comma - name) : strlen(name);
    const struct cpu_model *m = find_model(name, nlen);
    if (!m)
        return error_set(err, -EINVAL, "-cpu %.*s: unknown CPU model (kvm knows host, max, qemu64, "
                         "kvm64, Nehalem, SandyBridge, Haswell, Skylake-Client)", (int)nlen, name);
    size_t sz = sizeof(struct kvm_cpuid2) + CPUID_MAX * sizeof(struct kvm_cpuid_entry2);
    a->cpuid = calloc(1, sz);
    struct kvm_cpuid2 *sup = calloc(1, sz);
    if (!a->cpuid || !sup) {
        free(sup);
        return error_set(err, -ENOMEM, "out of memory");
    }
    a->cpuid->nent = CPUID_MAX;
    if (ioctl(a->kvm, KVM_GET_SUPPORTED_CPUID, a->cpuid) < 0) {
        free(sup);
        return error_set_errno(err, -errno, "KVM: cannot read the supported CPUID leaves");
    }
    memcpy(sup, a->cpuid, sz);
    bool split = a->irq.mode == KVM_IRQCHIP_SPLIT;
    bool tscdl = ioctl(a->kvm, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    for (unsigned i = 0; i < a->cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &a->cpuid->entries[i];
        apply_model(e, m);
        if (e->function == 1) {
            e->ecx &= ~B(21);                    /* x2APIC */
            if (!split)
                e->ecx &= ~B(24);                /* TSC-deadline: the board's APIC lacks it */
            else if (m->l1c == ~0u && tscdl)
                e->ecx |= B(24);                 /* host/max: KVM emulates it, as QEMU's host */
            e->ecx |= B(31);                     /* running under a hypervisor */
            e->edx |= B(9);                      /* a local APIC */
        }
    }
    int r = apply_flags(a, sup, comma ? comma + 1 : NULL, err);
    free(sup);
    return r;
}

int kvm_cpuid_set(struct accel *a, struct kvm_vcpu *v, struct error *err)
{
    size_t sz = sizeof(struct kvm_cpuid2) + a->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = malloc(sz);
    if (!c)
        return error_set(err, -ENOMEM, "out of memory");
    memcpy(c, a->cpuid, sz);
    uint32_t id = (uint32_t)v->index;
    for (unsigned i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 1)
            e->ebx = (e->ebx & 0x00ffffff) | id << 24;
        else if (e->function == 0xb || e->function == 0x1f)
            e->edx = id;
    }
    int r = ioctl(v->fd, KVM_SET_CPUID2, c);
    free(c);
    return r < 0 ? error_set_errno(err, -errno, "KVM: cannot set CPUID of vCPU %d", v->index) : 0;
}
