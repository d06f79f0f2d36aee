/* FPU state management: reset, status/tag words, the FXSAVE and XSAVE
 * images (SDM vol. 1 10.5.1 and chapter 13), XCR0, and the 0F AE group
 * (FXSAVE, FXRSTOR, LDMXCSR, STMXCSR, XSAVE, XRSTOR, XSAVEOPT, fences,
 * CLFLUSH). */
#include "accel/emu/sse_exec.h"

void fpu_reset(struct x86_fpu_state *f)
{
    memset(f, 0, sizeof(*f));
    f->fcw = 0x0040;               /* RESET value; FNINIT gives 0x037f */
    f->mxcsr = MXCSR_RESET;
    f->xcr0 = XFEATURE_X87;
}

uint16_t fpu_get_fsw(const struct x86_fpu_state *f)
{
    return (f->fsw & ~0x3800) | ((f->top & 7) << 11);
}

/* Tag of one physical register: 0 valid, 1 zero, 2 special, 3 empty. */
static unsigned fpu_tag_of(const struct x86_fpu_state *f, int i)
{
    const struct x87_reg *r = &f->st[i];
    unsigned exp = r->sexp & 0x7fff;

    if (!(f->tag_valid & (1 << i)))
        return 3;
    if (exp == 0x7fff)
        return 2;
    if (exp == 0)
        return r->mant ? 2 : 1;
    return (r->mant >> 63) ? 0 : 2;   /* unnormal */
}

uint16_t fpu_get_ftw_full(const struct x86_fpu_state *f)
{
    uint16_t w = 0;
    for (int i = 0; i < 8; i++)
        w |= fpu_tag_of(f, i) << (2 * i);
    return w;
}

void fpu_get_vec_regs(const struct x86_fpu_state *f, struct x86_vec_regs *v)
{
    memcpy(v->xmm, f->xmm, sizeof(v->xmm));
    v->mxcsr = f->mxcsr;
    v->fcw = f->fcw;
    v->fsw = fpu_get_fsw(f);
    v->ftw = f->tag_valid;
    for (int i = 0; i < 8; i++) {
        const struct x87_reg *r = &f->st[(f->top + i) & 7];
        memcpy(v->st[i], &r->mant, 8);
        memcpy(v->st[i] + 8, &r->sexp, 2);
    }
}

void fpu_set_vec_regs(struct x86_fpu_state *f, const struct x86_vec_regs *v)
{
    memcpy(f->xmm, v->xmm, sizeof(v->xmm));
    f->mxcsr = v->mxcsr;
    f->fcw = v->fcw;
    f->top = (v->fsw >> 11) & 7;
    f->fsw = v->fsw & ~0x3800;
    f->tag_valid = v->ftw;
    for (int i = 0; i < 8; i++) {
        struct x87_reg *r = &f->st[(f->top + i) & 7];
        memcpy(&r->mant, v->st[i], 8);
        memcpy(&r->sexp, v->st[i] + 8, 2);
    }
}

/* ---- images ---- */

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* x87 part of the legacy region: bytes 0..23 and 32..159. */
static void save_x87(const struct x86_fpu_state *f, uint8_t *img, bool w64)
{
    put16(img + 0, f->fcw);
    put16(img + 2, fpu_get_fsw(f));
    img[4] = f->tag_valid;
    img[5] = 0;
    put16(img + 6, f->fop & 0x7ff);
    if (w64) {
        put64(img + 8, f->fip);
        put64(img + 16, f->fdp);
    } else {
        put32(img + 8, (uint32_t)f->fip);
        put32(img + 12, f->fcs);
        put32(img + 16, (uint32_t)f->fdp);
        put32(img + 20, f->fds);
    }
    for (int i = 0; i < 8; i++) {
        uint8_t *p = img + 32 + 16 * i;
        const struct x87_reg *r = &f->st[(f->top + i) & 7];
        memset(p, 0, 16);
        memcpy(p, &r->mant, 8);
        memcpy(p + 8, &r->sexp, 2);
    }
}

static void load_x87(struct x86_fpu_state *f, const uint8_t *img, bool w64)
{
    f->fcw = (get16(img) & 0x1f3f) | 0x40;
    uint16_t sw = get16(img + 2);
    f->top = (sw >> 11) & 7;
    f->fsw = sw & ~0x3800;
    f->tag_valid = img[4];
    f->fop = get16(img + 6) & 0x7ff;
    if (w64) {
        f->fip = get64(img + 8);
        f->fdp = get64(img + 16);
        f->fcs = f->fds = 0;
    } else {
        f->fip = get32(img + 8);
        f->fcs = get16(img + 12);
        f->fdp = get32(img + 16);
        f->fds = get16(img + 20);
    }
    for (int i = 0; i < 8; i++) {
        const uint8_t *p = img + 32 + 16 * i;
        struct x87_reg *r = &f->st[(f->top + i) & 7];
        memcpy(&r->mant, p, 8);
        memcpy(&r->sexp, p + 8, 2);
    }
}

static void init_x87(struct x86_fpu_state *f)
{
    f->fcw = FCW_RESET;
    f->fsw = 0;
    f->top = 0;
    f->tag_valid = 0;
    f->fop = 0;
    f->fip = f->fdp = 0;
    f->fcs = f->fds = 0;
    memset(f->st, 0, sizeof(f->st));
}

void fpu_fxsave(const struct x86_fpu_state *f, uint8_t *img, bool w64, unsigned nxmm)
{
    save_x87(f, img, w64);
    put32(img + 24, f->mxcsr);
    put32(img + 28, MXCSR_WRITABLE);
    memcpy(img + 160, f->xmm, 16 * nxmm);
}

int fpu_fxrstor(struct x86_fpu_state *f, const uint8_t *img, bool w64, unsigned nxmm)
{
    uint32_t mx = get32(img + 24);
    if (mx & ~MXCSR_WRITABLE)
        return -1;
    load_x87(f, img, w64);
    f->mxcsr = mx;
    memcpy(f->xmm, img + 160, 16 * nxmm);
    return 0;
}

int fpu_xsetbv(struct x86_fpu_state *f, uint32_t index, uint64_t value)
{
    if (index != 0 || !(value & XFEATURE_X87) || (value & ~(uint64_t)XFEATURE_SUPPORTED))
        return -1;
    f->xcr0 = value;
    return 0;
}

int fpu_xgetbv(const struct x86_fpu_state *f, uint32_t index, uint64_t *value)
{
    if (index != 0)
        return -1;
    *value = f->xcr0;
    return 0;
}

/* ---- 0F AE ---- */

static unsigned nxmm(struct x86_cpu *cpu)
{
    return cpu->code64 ? 16 : 8;
}

static uint64_t fx_ea(struct x86_cpu *cpu, const struct x86_insn *in, unsigned align)
{
    uint64_t la = x86_ea(cpu, in);
    if (la & (align - 1))
        x86_gp0(cpu);
    return la;
}

static void fxsave(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint8_t img[512];
    if (cpu->cr0 & X86_CR0_EM)
        x86_ud(cpu);
    if (cpu->cr0 & X86_CR0_TS)
        x86_raise_noerr(cpu, X86_EXC_NM);
    uint64_t la = fx_ea(cpu, in, 16);
    fpu_fxsave(&cpu->fpu, img, in->rex & 8, nxmm(cpu));
    x86_write_mem(cpu, la, img, 160 + 16 * nxmm(cpu));
}

static void fxrstor(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint8_t img[512];
    if (cpu->cr0 & X86_CR0_EM)
        x86_ud(cpu);
    if (cpu->cr0 & X86_CR0_TS)
        x86_raise_noerr(cpu, X86_EXC_NM);
    x86_read_mem(cpu, fx_ea(cpu, in, 16), img, 512);
    if (fpu_fxrstor(&cpu->fpu, img, in->rex & 8, nxmm(cpu)))
        x86_gp0(cpu);
}

static void ldmxcsr(struct x86_cpu *cpu, const struct x86_insn *in)
{
    sse_check(cpu);
    uint32_t v = x86_read32(cpu, x86_ea(cpu, in));
    if (v & ~MXCSR_WRITABLE)
        x86_gp0(cpu);
    cpu->fpu.mxcsr = v;
}

static void stmxcsr(struct x86_cpu *cpu, const struct x86_insn *in)
{
    sse_check(cpu);
    x86_write32(cpu, x86_ea(cpu, in), cpu->fpu.mxcsr);
}

static uint64_t xsave_rfbm(struct x86_cpu *cpu)
{
    if (!(cpu->cr4 & X86_CR4_OSXSAVE))
        x86_ud(cpu);
    if (cpu->cr0 & X86_CR0_TS)
        x86_raise_noerr(cpu, X86_EXC_NM);
    uint64_t edx_eax = (cpu->gpr[X86_RDX] << 32) | (uint32_t)cpu->gpr[X86_RAX];
    return edx_eax & cpu->fpu.xcr0;
}

/* XSAVE / XSAVEOPT (standard form; every component counts as in use). */
static void xsave(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint8_t img[576];
    uint64_t rfbm = xsave_rfbm(cpu);
    uint64_t la = fx_ea(cpu, in, 64);
    bool w64 = in->rex & 8;

    x86_read_mem(cpu, la, img, sizeof(img));
    if (rfbm & XFEATURE_X87)
        save_x87(&cpu->fpu, img, w64);
    if (rfbm & XFEATURE_SSE) {
        put32(img + 24, cpu->fpu.mxcsr);
        put32(img + 28, MXCSR_WRITABLE);
        memcpy(img + 160, cpu->fpu.xmm, 16 * nxmm(cpu));
    }
    put64(img + 512, (get64(img + 512) & ~rfbm) | rfbm);
    x86_write_mem(cpu, la, img, sizeof(img));
}

static void xrstor(struct x86_cpu *cpu, const struct x86_insn *in)
{
    uint8_t img[576];
    uint64_t rfbm = xsave_rfbm(cpu);
    uint64_t la = fx_ea(cpu, in, 64);
    struct x86_fpu_state *f = &cpu->fpu;
    bool w64 = in->rex & 8;

    x86_read_mem(cpu, la, img, sizeof(img));
    uint64_t bv = get64(img + 512), comp = get64(img + 520), rsv = get64(img + 528);
    if ((comp >> 63) || comp || rsv || (bv & ~f->xcr0))
        x86_gp0(cpu);
    uint32_t mx = get32(img + 24);
    if ((rfbm & XFEATURE_SSE) && (mx & ~MXCSR_WRITABLE))
        x86_gp0(cpu);
    if (rfbm & XFEATURE_X87) {
        if (bv & XFEATURE_X87)
            load_x87(f, img, w64);
        else
            init_x87(f);
    }
    if (rfbm & XFEATURE_SSE) {
        f->mxcsr = mx;             /* the standard form always loads MXCSR */
        if (bv & XFEATURE_SSE)
            memcpy(f->xmm, img + 160, 16 * nxmm(cpu));
        else
            memset(f->xmm, 0, 16 * nxmm(cpu));
    }
}

static void h_0fae(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned r = in->reg & 7;
    if (in->mod == 3) {
        /* LFENCE, MFENCE, SFENCE: our stores are already ordered for
         * the single-threaded interpreter; a host fence keeps SMP honest. */
        if (r >= 5 && !(in->pfx & (X86_PFX_66 | X86_PFX_F2 | X86_PFX_F3))) {
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            return;
        }
        x86_unimp(cpu, in);
    }
    switch (r) {
    case 0: fxsave(cpu, in); return;
    case 1: fxrstor(cpu, in); return;
    case 2: ldmxcsr(cpu, in); return;
    case 3: stmxcsr(cpu, in); return;
    case 4: xsave(cpu, in); return;
    case 5: xrstor(cpu, in); return;
    case 6: xsave(cpu, in); return;    /* XSAVEOPT */
    case 7:                            /* CLFLUSH: a read-like access check */
        x86_read8(cpu, x86_ea(cpu, in));
        return;
    }
}

/* 66 0F AE /6 CLWB, /7 CLFLUSHOPT (memory forms). */
static void h_66_0fae(struct x86_cpu *cpu, const struct x86_insn *in)
{
    unsigned r = in->reg & 7;
    if (in->mod == 3 || r < 6)
        x86_unimp(cpu, in);
    x86_read8(cpu, x86_ea(cpu, in));
}

/* 0F 18 (PREFETCHh, hint NOPs) and 0F 0D (PREFETCHW): no effect, no fault. */
static void h_prefetch(struct x86_cpu *cpu, const struct x86_insn *in)
{
}

void fxsave_register(struct x86_op_table *t)
{
    x86_op_set(t, X86_MAP_0F, X86_MP_NONE, 0xae, h_0fae);
    x86_op_set(t, X86_MAP_0F, X86_MP_66, 0xae, h_66_0fae);
    if (!t->fn[X86_MAP_0F][X86_MP_NONE][0x18])
        x86_op_set(t, X86_MAP_0F, X86_MP_NONE, 0x18, h_prefetch);
    if (!t->fn[X86_MAP_0F][X86_MP_NONE][0x0d])
        x86_op_set(t, X86_MAP_0F, X86_MP_NONE, 0x0d, h_prefetch);
}

/* ---- hooks the CPU core calls (cpu_int.h) ---- */

void x86_simd_register(struct x86_op_table *t)
{
    sse_register(t);
    sse4_register(t);
    mmx_register(t);
    x87_register(t);
    fxsave_register(t);
    aes_register(t);
}

/* CPUID bits for what this folder implements and the differential tests
 * (tests/unit/test-simd.c) cover. r = EAX EBX ECX EDX. */
void x86_simd_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
    enum {
        ECX_SSE3 = 1u << 0, ECX_PCLMUL = 1u << 1, ECX_SSSE3 = 1u << 9, ECX_SSE41 = 1u << 19,
        ECX_SSE42 = 1u << 20, ECX_AES = 1u << 25, ECX_XSAVE = 1u << 26, ECX_AVX = 1u << 28, ECX_FMA = 1u << 12,
        ECX_F16C = 1u << 29,
        EDX_FPU = 1u << 0, EDX_MMX = 1u << 23, EDX_FXSR = 1u << 24, EDX_SSE = 1u << 25,
        EDX_SSE2 = 1u << 26,
    };
    switch (leaf) {
    case 1:
        r[2] &= ~(ECX_AVX | ECX_FMA | ECX_F16C);
        r[2] |= ECX_SSE3 | ECX_PCLMUL | ECX_SSSE3 | ECX_SSE41 | ECX_SSE42 | ECX_AES | ECX_XSAVE;
        r[3] |= EDX_FPU | EDX_MMX | EDX_FXSR | EDX_SSE | EDX_SSE2;
        break;
    case 7:
        if (subleaf == 0)
            r[1] &= ~((1u << 5) | (1u << 16) | (1u << 30) | (1u << 17) | (1u << 28));  /* AVX2, AVX-512 */
        break;
    case 0xd:
        r[0] = r[1] = r[2] = r[3] = 0;
        if (subleaf == 0) {
            r[0] = XFEATURE_SUPPORTED;
            r[1] = r[2] = fpu_xsave_size(XFEATURE_SUPPORTED);
        } else if (subleaf == 1) {
            r[0] = 1;              /* XSAVEOPT */
        }
        break;
    }
}
