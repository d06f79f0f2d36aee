/* FPU state management: reset, status/tag words, the FXSAVE and XSAVE
 * images (legacy region layout per the SDM, vol. 1 10.5.1 and 13.4). */
#include <string.h>
#include "accel/emu/cpu.h"
#include "accel/emu/fpu.h"

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
