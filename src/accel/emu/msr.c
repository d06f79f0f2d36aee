/* Model-specific registers and CPUID: what the emulated CPU says it is.
 * CPUID advertises only what is implemented (SIMD bits are adjusted by
 * x86_simd_cpuid from the SIMD files); leaves 0x15/0x16 give the TSC and
 * crystal frequency so Linux does not calibrate against the PIT. */
#include <stdio.h>
#include "accel/emu/exec.h"
#include "accel/emu/mmu.h"

enum {
    MSR_TSC = 0x10, MSR_APIC_BASE = 0x1b, MSR_FEATURE_CONTROL = 0x3a, MSR_SPEC_CTRL = 0x48,
    MSR_PRED_CMD = 0x49, MSR_UCODE_REV = 0x8b,
    MSR_MTRRCAP = 0xfe, MSR_SYSENTER_CS = 0x174, MSR_SYSENTER_ESP = 0x175,
    MSR_SYSENTER_EIP = 0x176, MSR_MCG_CAP = 0x179, MSR_MCG_STATUS = 0x17a,
    MSR_MISC_ENABLE = 0x1a0, MSR_MTRR_VAR0 = 0x200, MSR_MTRR_FIX64K = 0x250,
    MSR_MTRR_FIX16K0 = 0x258, MSR_MTRR_FIX16K1 = 0x259, MSR_MTRR_FIX4K0 = 0x268,
    MSR_ARCH_CAPABILITIES = 0x10a, MSR_PAT = 0x277, MSR_MTRR_DEF = 0x2ff,
    MSR_EFER = 0xc0000080, MSR_STAR = 0xc0000081, MSR_LSTAR = 0xc0000082,
    MSR_CSTAR = 0xc0000083, MSR_SFMASK = 0xc0000084, MSR_FS_BASE = 0xc0000100,
    MSR_GS_BASE = 0xc0000101, MSR_KERNEL_GS_BASE = 0xc0000102, MSR_TSC_AUX = 0xc0000103,
};

/* An interpreter does not speculate: none of the transient-execution
 * attacks these bits rule out can happen, and saying so spares the guest
 * page-table isolation (two CR3 writes per system call) and buffer
 * clearing. RDCL_NO, IBRS_ALL, SSB_NO, MDS_NO, PSCHANGE_MC_NO, TAA_NO,
 * SBDR_SSDP_NO, FBSDP_NO, PSDP_NO, BHI_NO, PBRSB_NO, GDS_NO, RFDS_NO.
 * IBRS_ALL (enhanced IBRS, with IBRS/IBPB in CPUID 7) is what Linux needs
 * to see before it drops retpolines: Spectre v2 is not ruled out by any
 * "_NO" bit, and every indirect call through a retpoline is a call, a
 * store over the return address and a return we cannot predict. Being
 * honest costs nothing: predictor controls have no predictor to act on. */
#define ARCH_CAP_NOT_AFFECTED ((1ull << 0) | (1ull << 1) | (1ull << 4) | (1ull << 5) | \
                               (1ull << 6) | (1ull << 8) | (1ull << 13) | (1ull << 14) | \
                               (1ull << 15) | (1ull << 20) | (1ull << 24) | (1ull << 26) | \
                               (1ull << 27))
#define SPEC_CTRL_VALID 0x407ull    /* IBRS, STIBP, SSBD, BHI_DIS_S */

static uint64_t *mtrr_slot(struct x86_cpu *cpu, uint32_t msr)
{
    if (msr >= MSR_MTRR_VAR0 && msr < MSR_MTRR_VAR0 + 16)
        return &cpu->mtrr_var[msr - MSR_MTRR_VAR0];
    if (msr == MSR_MTRR_FIX64K)
        return &cpu->mtrr_fixed[0];
    if (msr == MSR_MTRR_FIX16K0 || msr == MSR_MTRR_FIX16K1)
        return &cpu->mtrr_fixed[1 + msr - MSR_MTRR_FIX16K0];
    if (msr >= MSR_MTRR_FIX4K0 && msr < MSR_MTRR_FIX4K0 + 8)
        return &cpu->mtrr_fixed[3 + msr - MSR_MTRR_FIX4K0];
    return NULL;
}

static int bus_rdmsr(struct x86_cpu *cpu, uint32_t msr, uint64_t *val)
{
    if (cpu->bus.rdmsr && cpu->bus.rdmsr(cpu->bus.opaque, msr, val) == 0)
        return 0;
    return -1;
}

int x86_rdmsr(struct x86_cpu *cpu, uint32_t msr, uint64_t *val)
{
    uint64_t *m = mtrr_slot(cpu, msr);
    if (m) {
        *val = *m;
        return 0;
    }
    switch (msr) {
    case MSR_TSC: *val = x86_rdtsc(cpu); return 0;
    case MSR_APIC_BASE:
        if (bus_rdmsr(cpu, msr, val) == 0)
            cpu->apic_base = *val;
        *val = cpu->apic_base;
        return 0;
    case MSR_FEATURE_CONTROL: *val = 1; return 0;       /* locked, VMX off */
    case MSR_UCODE_REV: *val = 0x100000000ull; return 0;
    case 0x17: *val = 0; return 0;                      /* PLATFORM_ID */
    case 0x34: *val = 0; return 0;                      /* SMI_COUNT */
    case 0x140: *val = 0; return 0;                     /* MISC_FEATURES_ENABLES */
    case 0xce:                                          /* PLATFORM_INFO: base ratio */
        *val = (X86_TSC_HZ / 100000000ull) << 8;
        return 0;
    case MSR_MTRRCAP: *val = 0x508; return 0;           /* 8 variable, fixed, WC */
    case MSR_ARCH_CAPABILITIES: *val = ARCH_CAP_NOT_AFFECTED; return 0;
    case MSR_SPEC_CTRL: *val = cpu->spec_ctrl; return 0;
    case MSR_SYSENTER_CS: *val = cpu->sysenter_cs; return 0;
    case MSR_SYSENTER_ESP: *val = cpu->sysenter_esp; return 0;
    case MSR_SYSENTER_EIP: *val = cpu->sysenter_eip; return 0;
    case MSR_MCG_CAP: case MSR_MCG_STATUS: *val = 0; return 0;
    case MSR_MISC_ENABLE: *val = cpu->misc_enable; return 0;
    case MSR_PAT: *val = cpu->pat; return 0;
    case MSR_MTRR_DEF: *val = cpu->mtrr_def_type; return 0;
    case MSR_EFER: *val = cpu->efer; return 0;
    case MSR_STAR: *val = cpu->star; return 0;
    case MSR_LSTAR: *val = cpu->lstar; return 0;
    case MSR_CSTAR: *val = cpu->cstar; return 0;
    case MSR_SFMASK: *val = cpu->sfmask; return 0;
    case MSR_FS_BASE: *val = cpu->seg[X86_FS].base; return 0;
    case MSR_GS_BASE: *val = cpu->seg[X86_GS].base; return 0;
    case MSR_KERNEL_GS_BASE: *val = cpu->kernel_gs_base; return 0;
    case MSR_TSC_AUX: *val = cpu->tsc_aux; return 0;
    }
    if (bus_rdmsr(cpu, msr, val) == 0)
        return 0;
    x86_log(cpu, X86_LOG_GUEST_ERRORS, "rdmsr of unknown MSR %#x", msr);
    return -1;
}

static bool canonical(uint64_t v)
{
    return (uint64_t)((int64_t)(v << 16) >> 16) == v;
}

int x86_wrmsr(struct x86_cpu *cpu, uint32_t msr, uint64_t val)
{
    uint64_t *m = mtrr_slot(cpu, msr);
    if (m) {
        *m = val;
        return 0;
    }
    switch (msr) {
    case MSR_TSC:
        cpu->tsc_offset = (int64_t)(val - (x86_rdtsc(cpu) - (uint64_t)cpu->tsc_offset));
        return 0;
    case MSR_APIC_BASE:
        if (cpu->bus.wrmsr && cpu->bus.wrmsr(cpu->bus.opaque, msr, val) != 0)
            return -1;
        cpu->apic_base = (val & ~0x100ull) | (cpu->apic_base & 0x100);
        return 0;
    case MSR_SYSENTER_CS: cpu->sysenter_cs = val; return 0;
    case MSR_SYSENTER_ESP: cpu->sysenter_esp = val; return 0;
    case MSR_SYSENTER_EIP: cpu->sysenter_eip = val; return 0;
    case MSR_MCG_STATUS: return 0;
    case MSR_SPEC_CTRL:
        if (val & ~SPEC_CTRL_VALID)
            return -1;
        cpu->spec_ctrl = val;
        return 0;
    case MSR_PRED_CMD: return val & ~1ull ? -1 : 0;    /* IBPB: no predictor to flush */
    case MSR_UCODE_REV: return 0;                       /* microcode loader's probe */
    case 0x140: return val ? -1 : 0;                    /* no CPUID faulting */
    case MSR_MISC_ENABLE: cpu->misc_enable = val; return 0;
    case MSR_PAT: cpu->pat = val; return 0;
    case MSR_MTRR_DEF: cpu->mtrr_def_type = val & 0xcff; return 0;
    case MSR_EFER: {
        uint64_t allowed = X86_EFER_SCE | X86_EFER_LME | X86_EFER_NXE;
        if (val & ~(allowed | X86_EFER_LMA))
            return -1;
        if ((cpu->cr0 & X86_CR0_PG) && ((val ^ cpu->efer) & X86_EFER_LME))
            return -1;
        cpu->efer = (val & allowed) | (cpu->efer & X86_EFER_LMA);
        x86_tlb_flush(cpu);
        x86_update_mode(cpu);
        return 0;
    }
    case MSR_STAR: cpu->star = val; return 0;
    case MSR_LSTAR: if (!canonical(val)) return -1; cpu->lstar = val; return 0;
    case MSR_CSTAR: if (!canonical(val)) return -1; cpu->cstar = val; return 0;
    case MSR_SFMASK: cpu->sfmask = val & 0x3f7fd5; return 0;
    case MSR_FS_BASE:
        if (!canonical(val)) return -1;
        cpu->seg[X86_FS].base = val;
        cpu->segbase[X86_FS] = val;
        return 0;
    case MSR_GS_BASE:
        if (!canonical(val)) return -1;
        cpu->seg[X86_GS].base = val;
        cpu->segbase[X86_GS] = val;
        return 0;
    case MSR_KERNEL_GS_BASE: if (!canonical(val)) return -1; cpu->kernel_gs_base = val; return 0;
    case MSR_TSC_AUX: cpu->tsc_aux = (uint32_t)val; return 0;
    }
    if (cpu->bus.wrmsr && cpu->bus.wrmsr(cpu->bus.opaque, msr, val) == 0)
        return 0;
    x86_log(cpu, X86_LOG_GUEST_ERRORS, "wrmsr of unknown MSR %#x value %#llx", msr,
            (unsigned long long)val);
    return -1;
}

static void str4(uint32_t *r, const char *s)
{
    memcpy(r, s, 16);
}

void x86_cpuid(struct x86_cpu *cpu, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    r[0] = r[1] = r[2] = r[3] = 0;
    switch (leaf) {
    case 0:
        r[0] = 0x16;
        memcpy(&r[1], "Genu", 4);
        memcpy(&r[3], "ineI", 4);
        memcpy(&r[2], "ntel", 4);
        break;
    case 1:
        r[0] = 0x000306a9;                         /* family 6 model 0x3a */
        r[1] = (8u << 8) | ((uint32_t)cpu->index << 24) | (1u << 16);
        r[2] = (1u << 13) | (1u << 22) | (1u << 23);   /* CX16 MOVBE POPCNT */
        if (cpu->cr4 & X86_CR4_OSXSAVE)
            r[2] |= 1u << 27;
        r[3] = (1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 8) |
               (1u << 9) | (1u << 12) | (1u << 13) | (1u << 15) | (1u << 16) | (1u << 19) |
               (1u << 23) | (1u << 24) | (1u << 25) | (1u << 26);
        /* FPU PSE TSC MSR PAE CX8 APIC MTRR PGE CMOV PAT CLFSH MMX FXSR SSE SSE2 */
        break;
    case 6:
        r[0] = 1u << 2;            /* ARAT: no C-states, so the APIC timer never stops */
        break;
    case 7:
        if (sub == 0) {
            r[0] = 2;                                   /* highest subleaf */
            r[1] = (1u << 3) | (1u << 8) | (1u << 9);  /* BMI1 BMI2 ERMS */
            /* FSRM, IBRS/IBPB, STIBP, ARCH_CAPABILITIES, SSBD */
            r[3] = (1u << 4) | (1u << 26) | (1u << 27) | (1u << 29) | (1u << 31);
        } else if (sub == 2) {
            /* BHI_CTRL: Linux treats every eIBRS part as exposed to branch
             * history injection within the kernel and otherwise clears the
             * history with a loop of branches at each system call */
            r[3] = 1u << 4;
        }
        break;
    case 0x15:
        r[0] = 1;
        r[1] = (uint32_t)(X86_TSC_HZ / X86_CRYSTAL_HZ);
        r[2] = (uint32_t)X86_CRYSTAL_HZ;
        break;
    case 0x16:
        r[0] = (uint32_t)(X86_TSC_HZ / 1000000);
        r[1] = r[0];
        r[2] = 100;
        break;
    case 0x80000000:
        r[0] = 0x80000008;
        break;
    case 0x80000001:
        r[2] = (1u << 0) | (1u << 5);              /* LAHF/SAHF, LZCNT */
        r[3] = (1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 29);
        /* SYSCALL NX 1G-pages RDTSCP LM */
        break;
    case 0x80000002: str4(r, "Quokka emulated "); break;
    case 0x80000003: str4(r, "x86-64 CPU      "); break;
    case 0x80000004: break;
    case 0x80000006:
        r[2] = (256u << 16) | (8u << 12) | 64;     /* 256 KiB L2, 64-byte lines */
        break;
    case 0x80000007:
        r[3] = 1u << 8;                            /* invariant TSC */
        break;
    case 0x80000008:
        r[0] = 0x3028;                             /* 48-bit linear, 40-bit physical */
        break;
    default:
        break;
    }
    if (x86_simd_cpuid)
        x86_simd_cpuid(leaf, sub, r);
}
