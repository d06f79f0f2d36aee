/* The vCPU: lifecycle, the run loop (blocks of decoded instructions, events
 * at block boundaries, HLT parking), and the exception landing pad. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "accel/emu/decode.h"
#include "accel/emu/jit.h"
#include "accel/emu/mmu.h"
#include "accel/emu/sys.h"

void x86_log(struct x86_cpu *cpu, unsigned mask, const char *fmt, ...)
{
    if (!(cpu->log_mask & mask))
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "cpu%d: %s\n", cpu->index, buf);
}

void x86_cpu_set_jit(struct x86_cpu *cpu, int threshold)
{
    cpu->jit_threshold = threshold;
}

void x86_cpu_stats(const struct x86_cpu *cpu, uint64_t *insns, uint64_t *dispatches)
{
    *insns = cpu->icount;
    *dispatches = cpu->stat_blocks;
}

void x86_cpu_set_log(struct x86_cpu *cpu, unsigned mask)
{
    cpu->log_mask = mask | (getenv("QUOKKA_CPU_TRACE") ? X86_LOG_EXEC | X86_LOG_INT : 0);
}

/* ---- exceptions --------------------------------------------------------- */

static bool has_error_code(int vec)
{
    return vec == X86_EXC_DF || (vec >= X86_EXC_TS && vec <= X86_EXC_PF) || vec == X86_EXC_AC;
}

_Noreturn void x86_raise(struct x86_cpu *cpu, int vec, uint32_t err)
{
    cpu->exc_vec = vec;
    cpu->exc_err = err;
    longjmp(cpu->jmp, 1);
}

_Noreturn void x86_raise_noerr(struct x86_cpu *cpu, int vec)
{
    x86_raise(cpu, vec, 0);
}

_Noreturn void x86_unimp(struct x86_cpu *cpu, const struct x86_insn *in)
{
    static const char *maps[] = { "", "0f ", "0f38 ", "0f3a " };
    x86_log(cpu, X86_LOG_UNIMP, "unimplemented opcode %s%02x /%u (pfx %02x) at %#llx", maps[in->map],
            in->op, (in->modrm >> 3) & 7, in->pfx, (unsigned long long)cpu->insn_rip);
    x86_ud(cpu);
}

void x86_check_sse(struct x86_cpu *cpu)
{
    if ((cpu->cr0 & X86_CR0_EM) || !(cpu->cr4 & X86_CR4_OSFXSR))
        x86_ud(cpu);
    if (cpu->cr0 & X86_CR0_TS)
        x86_raise_noerr(cpu, X86_EXC_NM);
}

void x86_check_fpu(struct x86_cpu *cpu)
{
    if (cpu->cr0 & (X86_CR0_EM | X86_CR0_TS))
        x86_raise_noerr(cpu, X86_EXC_NM);
}

static bool contributory(int v)
{
    return v == X86_EXC_DE || (v >= X86_EXC_TS && v <= X86_EXC_GP);
}

/* Called from the landing pad: deliver cpu->exc_vec with the double-fault
 * rules. May longjmp back (fault during delivery). */
static void deliver_exception(struct x86_cpu *cpu)
{
    int vec = cpu->exc_vec;
    uint32_t err = cpu->exc_err;
    int prev = cpu->delivering;

    cpu->rip = cpu->insn_rip;
    cpu->tlb_user = cpu->cpl == 3;
    if (prev >= 0) {
        if (prev == X86_EXC_DF) {
            x86_log(cpu, X86_LOG_INT | X86_LOG_GUEST_ERRORS, "triple fault at %#llx",
                    (unsigned long long)cpu->rip);
            cpu->delivering = -1;
            cpu->wait_sipi = true;      /* shutdown state: only INIT/reset leave it */
            if (cpu->bus.shutdown)
                cpu->bus.shutdown(cpu->bus.opaque);
            return;
        }
        if ((contributory(prev) && contributory(vec)) ||
            (prev == X86_EXC_PF && (vec == X86_EXC_PF || contributory(vec)))) {
            vec = X86_EXC_DF;
            err = 0;
        }
    }
    x86_log(cpu, X86_LOG_INT, "exception %d err %#x at %#llx cr2 %#llx", vec, err,
            (unsigned long long)cpu->rip, (unsigned long long)cpu->cr2);
    cpu->delivering = vec;
    x86_interrupt(cpu, vec, has_error_code(vec) && (cpu->cr0 & X86_CR0_PE), err, X86_INT_EXC);
    cpu->delivering = -1;
}

/* ---- mode bookkeeping ------------------------------------------------------ */

void x86_update_mode(struct x86_cpu *cpu)
{
    const struct x86_seg *cs = &cpu->seg[X86_CS];
    bool lma = cpu->efer & X86_EFER_LMA;
    cpu->code64 = lma && (cs->attr & 0x2000);
    cpu->code32 = cpu->code64 || (cs->attr & 0x4000);
    cpu->stack32 = (cpu->seg[X86_SS].attr & 0x4000) != 0;
    if (!(cpu->cr0 & X86_CR0_PE))
        cpu->cpl = 0;
    cpu->tlb_user = cpu->cpl == 3;
    for (int i = 0; i < 6; i++)
        cpu->segbase[i] = (cpu->code64 && i < X86_FS) ? 0 : cpu->seg[i].base;
    cpu->segbase[6] = cpu->seg[X86_LDTR].base;
    cpu->segbase[X86_SEG_ZERO] = 0;
    cpu->block_end = true;
}

/* ---- lifecycle ---------------------------------------------------------------- */

void x86_cpu_reset(struct x86_cpu *cpu, bool bsp)
{
    memset(cpu->gpr, 0, sizeof cpu->gpr);
    cpu->gpr[X86_RDX] = 0x600;        /* family 6 */
    cpu->rip = 0xfff0;
    cpu->rflags = 2;
    cpu->lf.op = X86_LF_NONE;
    for (int i = 0; i < 8; i++)
        cpu->seg[i] = (struct x86_seg){ 0, 0, 0xffff, 0x93 };
    cpu->seg[X86_CS] = (struct x86_seg){ 0xf000, 0xffff0000, 0xffff, 0x9b };
    cpu->seg[X86_LDTR].attr = 0x82;
    cpu->seg[X86_TR].attr = 0x8b;
    cpu->cr0 = X86_CR0_ET | X86_CR0_NW | X86_CR0_CD;
    cpu->cr2 = cpu->cr3 = cpu->cr4 = cpu->efer = 0;
    cpu->gdt_base = cpu->idt_base = 0;
    cpu->gdt_limit = cpu->idt_limit = 0xffff;
    memset(cpu->dr, 0, sizeof cpu->dr);
    cpu->dr[6] = 0xffff0ff0;
    cpu->dr[7] = 0x400;
    cpu->kernel_gs_base = cpu->star = cpu->lstar = cpu->cstar = cpu->sfmask = 0;
    cpu->apic_base = 0xfee00000 | 0x800 | (bsp ? 0x100 : 0);
    cpu->tsc_aux = 0;
    cpu->pat = 0x0007040600070406ull;
    cpu->sysenter_cs = cpu->sysenter_esp = cpu->sysenter_eip = 0;
    cpu->mtrr_def_type = 0x806;       /* enabled, default write-back: we boot without firmware */
    memset(cpu->mtrr_fixed, 0, sizeof cpu->mtrr_fixed);
    memset(cpu->mtrr_var, 0, sizeof cpu->mtrr_var);
    cpu->misc_enable = 1;             /* fast strings */
    cpu->spec_ctrl = 0;
    cpu->cpl = 0;
    cpu->delivering = -1;
    cpu->intr_shadow = cpu->nmi_blocked = cpu->halted = false;
    cpu->wait_sipi = !bsp;
    fpu_reset(&cpu->fpu);
    x86_tlb_flush(cpu);
    x86_update_mode(cpu);
    x86_log(cpu, X86_LOG_CPU_RESET, "reset (%s)", bsp ? "BSP" : "AP");
}

struct x86_cpu *x86_cpu_new(struct x86_emu *emu, int index, bool bsp, const struct x86_bus *bus)
{
    struct x86_cpu *cpu = aligned_alloc(64, (sizeof(*cpu) + 63) & ~(size_t)63);
    if (!cpu)
        return NULL;
    memset(cpu, 0, sizeof(*cpu));
    cpu->cc = x86_cc_new();
    if (!cpu->cc) {
        free(cpu);
        return NULL;
    }
    cpu->emu = emu;
    cpu->code_epoch_p = x86_emu_code_epoch_ptr(emu);
    cpu->index = index;
    cpu->bus = *bus;
    cpu->is_bsp = bsp;
    cpu->jc_gen = 1;                  /* no jump cache entry matches the zeroed table */
    cpu->cc_gen = 1;
    const char *jt = getenv("QUOKKA_JIT_THRESHOLD");
    cpu->jit_threshold = jt ? atoi(jt) : X86_JIT_THRESHOLD;
    pthread_mutex_init(&cpu->lock, NULL);
    pthread_cond_init(&cpu->cond, NULL);
    x86_ops();
    x86_cpu_reset(cpu, bsp);
    if (getenv("QUOKKA_CPU_TRACE"))
        cpu->log_mask |= X86_LOG_EXEC | X86_LOG_INT;
    cpu->tsc_offset = 0;
    return cpu;
}

void x86_cpu_free(struct x86_cpu *cpu)
{
    if (!cpu)
        return;
    x86_cc_free(cpu->cc);
    pthread_mutex_destroy(&cpu->lock);
    pthread_cond_destroy(&cpu->cond);
    free(cpu);
}

void x86_cpu_kick(struct x86_cpu *cpu, unsigned events)
{
    atomic_fetch_or(&cpu->events, events);
    pthread_mutex_lock(&cpu->lock);
    pthread_cond_signal(&cpu->cond);
    pthread_mutex_unlock(&cpu->lock);
}

void x86_cpu_sipi(struct x86_cpu *cpu, uint8_t vector)
{
    cpu->sipi_vector = vector;
    x86_cpu_kick(cpu, X86_EV_SIPI);
}

/* ---- events -------------------------------------------------------------------- */

enum { RUN_CONTINUE, RUN_EXIT, RUN_IDLE };

static unsigned wake_mask(struct x86_cpu *cpu)
{
    if (cpu->wait_sipi)
        return X86_EV_EXIT | X86_EV_INIT | X86_EV_SIPI;
    return X86_EV_EXIT | X86_EV_INIT | X86_EV_NMI |
           ((cpu->rflags & X86_IF) ? X86_EV_INTR : 0);
}

static int handle_events(struct x86_cpu *cpu, bool shadow)
{
    unsigned ev = atomic_load_explicit(&cpu->events, memory_order_acquire);
    if (ev & X86_EV_EXIT) {
        atomic_fetch_and(&cpu->events, ~(unsigned)X86_EV_EXIT);
        return RUN_EXIT;
    }
    if (ev & X86_EV_INIT) {
        /* a start-up IPI may already be pending behind it: keep it */
        atomic_fetch_and(&cpu->events, ~(unsigned)X86_EV_INIT);
        x86_cpu_reset(cpu, false);
        cpu->wait_sipi = true;
        return RUN_CONTINUE;
    }
    if (ev & X86_EV_SIPI) {
        atomic_fetch_and(&cpu->events, ~(unsigned)X86_EV_SIPI);
        if (cpu->wait_sipi) {
            cpu->wait_sipi = false;
            cpu->halted = false;
            cpu->seg[X86_CS] = (struct x86_seg){ (uint16_t)(cpu->sipi_vector << 8),
                                                 (uint64_t)cpu->sipi_vector << 12, 0xffff, 0x9b };
            cpu->rip = 0;
            x86_update_mode(cpu);
        }
        return RUN_CONTINUE;
    }
    if (cpu->wait_sipi)
        return RUN_IDLE;
    if ((ev & X86_EV_NMI) && !cpu->nmi_blocked && !shadow) {
        atomic_fetch_and(&cpu->events, ~(unsigned)X86_EV_NMI);
        cpu->halted = false;
        cpu->insn_rip = cpu->rip;
        cpu->nmi_blocked = true;
        x86_interrupt(cpu, X86_EXC_NMI, false, 0, X86_INT_EXT);
        return RUN_CONTINUE;
    }
    if ((ev & X86_EV_INTR) && (cpu->rflags & X86_IF) && !shadow) {
        atomic_fetch_and(&cpu->events, ~(unsigned)X86_EV_INTR);
        int v = cpu->bus.ack_interrupt ? cpu->bus.ack_interrupt(cpu->bus.opaque) : -1;
        if (v >= 0) {
            atomic_fetch_or(&cpu->events, X86_EV_INTR);   /* ask again next time */
            cpu->halted = false;
            cpu->insn_rip = cpu->rip;
            x86_log(cpu, X86_LOG_INT, "interrupt %d at %#llx", v, (unsigned long long)cpu->rip);
            x86_interrupt(cpu, v, false, 0, X86_INT_EXT);
        }
    }
    return cpu->halted ? RUN_IDLE : RUN_CONTINUE;
}

static void wait_event(struct x86_cpu *cpu)
{
    pthread_mutex_lock(&cpu->lock);
    while (!(atomic_load(&cpu->events) & wake_mask(cpu)))
        pthread_cond_wait(&cpu->cond, &cpu->lock);
    pthread_mutex_unlock(&cpu->lock);
}

/* ---- execution -------------------------------------------------------------------- */

static inline void exec_insn(struct x86_cpu *cpu, const struct x86_insn *in)
{
    cpu->insn_rip = cpu->rip;
    cpu->rip += in->len;
    in->fn(cpu, in);
}

static unsigned code_mode(const struct x86_cpu *cpu)
{
    return cpu->code64 ? X86_DEC_64 : cpu->code32 ? X86_DEC_32 : 0;
}

static inline uint64_t jc_key(const struct x86_cpu *cpu, unsigned mode)
{
    return (cpu->jc_gen << 3) | ((uint64_t)cpu->tlb_user << 2) | mode;
}

/* Run one instruction outside any block (page-crossing or MMIO code). */
static void exec_one(struct x86_cpu *cpu, const struct x86_insn *in)
{
    cpu->block_end = false;
    exec_insn(cpu, in);
    cpu->icount++;
    if (cpu->block_end)
        cpu->last_genp = NULL;      /* it may have written the page last validated */
}

/* Decode and run the instruction at la that no block holds: it crosses
 * into the next page (cached when both pages are trackable RAM), or its
 * page is MMIO or untracked. */
static void exec_uncached(struct x86_cpu *cpu, uint64_t la, uint64_t pa, const uint8_t *host_page)
{
    uint8_t buf[16];
    struct x86_insn in;
    const struct x86_insn *p = &in;
    unsigned off = la & 0xfff, mode = code_mode(cpu);
    cpu->insn_rip = cpu->rip;
    if (!host_page) {
        x86_fetch_bytes(cpu, la, buf, 15);
        x86_decode(buf, 15, mode, &in);
    } else if (x86_decode(host_page + off, 4096 - off, mode, &in) == -1) {
        p = x86_cc_crossing(cpu, la, jc_key(cpu, mode));
        if (!p)
            p = x86_cc_crossing_fill(cpu, la, jc_key(cpu, mode), pa, host_page, &in);
    }
    exec_one(cpu, p);
}

/* The page-crossing instruction at la, outside any block (its block's
 * tail may not run: the next page moved or was written). */
static void exec_crossing(struct x86_cpu *cpu, uint64_t la)
{
    uint8_t *host_page;
    uint64_t pa = x86_fetch_xlate(cpu, la, &host_page);
    exec_uncached(cpu, la, pa, host_page);
}

static void flush_write_tags(struct x86_cpu *cpu)
{
    for (int u = 0; u < 2; u++)
        for (unsigned i = 0; i < X86_TLB_SIZE; i++)
            cpu->tlb[u][i].tag_w = X86_TLB_INVALID;
}

/* Run up to about `limit` instructions; returns RUN_*. */
/* Find the block at linear address la: through the previous block's
 * successor links, then the jump cache, then the code cache. NULL means
 * "run one instruction uncached" (done here). */
static struct x86_block *find_block(struct x86_cpu *cpu, struct x86_block *prev, uint64_t la)
{
    unsigned mode = code_mode(cpu);
    uint64_t key = jc_key(cpu, mode);
    struct x86_block *b = NULL;
    int slot = -1;
    if (prev) {
        if (prev->succ_la[0] == la && prev->succ_key[0] == key)
            b = prev->succ[0];
        else if (prev->succ_la[1] == la && prev->succ_key[1] == key)
            b = prev->succ[1];
        else
            slot = prev->succ_la[0] != X86_TLB_INVALID;
    }
    struct x86_jc_entry *j = &cpu->jc[((la >> 2) ^ (la >> 14)) & (X86_JC_SIZE - 1)];
    if (!b && j->la == la && j->key == key)
        b = j->b;
    /* the page's generation: skip the shared load while on a page just checked */
    if (b && (b->genp != cpu->last_genp || b->gen != cpu->last_gen)) {
        uint32_t g = atomic_load_explicit(b->genp, memory_order_relaxed);
        if (g != b->gen)
            b = NULL;
        else {
            cpu->last_genp = b->genp;
            cpu->last_gen = g;
        }
    }
    if (X86_UNLIKELY(!b)) {
        /* a page-crossing instruction run before under this key (only the
         * last 14 bytes of a page can start one: the cache is not looked
         * at for the other jump-cache misses). 64-bit code has blocks for
         * them (tails), which must win: the cache would keep them out. */
        bool may_cross = mode != X86_DEC_64 && (la & 0xfff) > 4096 - 15;
        const struct x86_insn *x = may_cross ? x86_cc_crossing(cpu, la, key) : NULL;
        if (x) {
            if (X86_UNLIKELY(cpu->log_mask & X86_LOG_EXEC))
                x86_log(cpu, X86_LOG_EXEC, "page-crossing insn %#llx (cached)",
                        (unsigned long long)cpu->rip);
            exec_one(cpu, x);
            return NULL;
        }
        const struct x86_tlb_entry *e = &cpu->itlb[cpu->tlb_user][(la >> 12) & (X86_ITLB_SIZE - 1)];
        uint64_t pa;
        uint8_t *host_page;
        if (X86_LIKELY(e->tag_x == (la & ~0xfffull))) {
            pa = e->pa | (la & 0xfff);
            host_page = (uint8_t *)(uintptr_t)((la & ~0xfffull) + e->addend);
        } else {
            pa = x86_fetch_xlate(cpu, la, &host_page);
        }
        if (X86_UNLIKELY(cpu->log_mask & X86_LOG_EXEC))
            x86_log(cpu, X86_LOG_EXEC, "block %#llx (pa %#llx) rsp %#llx rax %#llx",
                    (unsigned long long)cpu->rip, (unsigned long long)pa,
                    (unsigned long long)cpu->gpr[X86_RSP], (unsigned long long)cpu->gpr[X86_RAX]);
        if (j->la == la && j->cc_gen == cpu->cc_gen && (j->key & 7) == (key & 7) &&
            j->b->pa == pa && atomic_load_explicit(j->b->genp, memory_order_relaxed) == j->b->gen) {
            b = j->b;           /* the TLB was flushed since, but la still maps here */
        } else {
            x = may_cross ? x86_cc_crossing_remapped(cpu, la, key, pa) : NULL;
            if (x) {
                exec_one(cpu, x);
                return NULL;
            }
            uint64_t gen_before = cpu->jc_gen;
            b = x86_cc_lookup(cpu, la, pa, mode, host_page);
            cpu->stat_jc_miss++;
            if (!b) {
                exec_uncached(cpu, la, pa, host_page);
                return NULL;
            }
            if (cpu->jc_gen != gen_before)
                prev = NULL;                 /* the arena was recycled under prev */
        }
        key = jc_key(cpu, mode);
        j->la = la;
        j->key = key;
        j->b = b;
        j->cc_gen = cpu->cc_gen;
        cpu->last_genp = b->genp;
        cpu->last_gen = b->gen;
    }
    if (prev && slot >= 0) {
        prev->succ_la[slot] = la;
        prev->succ_key[slot] = key;
        prev->succ[slot] = b;
    }
    return b;
}

/* May the block's tail run, entered at la: does la's next page still map
 * where it did when the tail was decoded, unwritten since? (Translated
 * code makes the same test inline.) */
static bool tail_ok(const struct x86_cpu *cpu, const struct x86_block *b, uint64_t la)
{
    uint64_t la2 = (la & ~0xfffull) + 4096;
    const struct x86_tlb_entry *e = &cpu->itlb[cpu->tlb_user][(la2 >> 12) & (X86_ITLB_SIZE - 1)];
    return e->tag_x == la2 && e->pa == b->tail_pa &&
           atomic_load_explicit(b->tail_genp, memory_order_relaxed) == b->tail_gen;
}

/* Run up to about `limit` instructions; returns RUN_*. */
static int exec_loop(struct x86_cpu *cpu, uint64_t end, bool stepping)
{
    struct x86_block *prev = NULL;
    cpu->jit_nochain = stepping;
    for (;;) {
        /* translated code that left by a chainable exit, if nothing ran since */
        uint8_t *exit_site = cpu->jit_exit_site;
        cpu->jit_exit_site = NULL;
        if (cpu->icount >= end)
            return RUN_CONTINUE;
        bool shadow = cpu->intr_shadow;
        cpu->intr_shadow = false;
        if (X86_UNLIKELY(atomic_load_explicit(&cpu->events, memory_order_relaxed) || cpu->halted ||
                         cpu->wait_sipi)) {
            exit_site = NULL;
            cpu->last_genp = NULL;
            int r = handle_events(cpu, shadow);
            if (r == RUN_EXIT)
                return r;
            if (r == RUN_IDLE) {
                if (stepping)
                    return RUN_IDLE;
                wait_event(cpu);
                continue;
            }
        }
        uint64_t epoch = atomic_load_explicit(cpu->code_epoch_p, memory_order_acquire);
        if (X86_UNLIKELY(epoch != cpu->code_epoch)) {
            cpu->code_epoch = epoch;
            cpu->last_genp = NULL;
            flush_write_tags(cpu);
        }

        uint64_t la = cpu->segbase[X86_CS] + cpu->rip;
        if (!cpu->code64)
            la = (uint32_t)la;
        cpu->insn_rip = cpu->rip;
        struct x86_block *b = find_block(cpu, prev, la);
        prev = b;
        if (!b)
            continue;
        if (X86_UNLIKELY((++cpu->stat_blocks & 0xffffff) == 0) && getenv("QUOKKA_CPU_STATS"))
            fprintf(stderr, "cpu%d: %llu insns, %llu blocks, %llu jump-cache misses, jc_gen %llu, "
                    "page-crossing insns %llu cached %llu decoded\n",
                    cpu->index, (unsigned long long)cpu->icount,
                    (unsigned long long)cpu->stat_blocks, (unsigned long long)cpu->stat_jc_miss,
                    (unsigned long long)cpu->jc_gen, (unsigned long long)cpu->stat_xc_hit,
                    (unsigned long long)cpu->stat_xc_miss);
        unsigned n = b->n;
        cpu->block_end = false;
        /* a tail that cannot run ends its block early (translated code
         * tests that itself); alone, it runs outside it, through the
         * page-crossing cache */
        if (X86_UNLIKELY(b->tail) && n == 1 && !tail_ok(cpu, b, la)) {
            exec_crossing(cpu, la);
            prev = NULL;
            continue;
        }
        if (X86_LIKELY(end - cpu->icount >= n)) {
            x86_jit_fn *code = x86_cc_jit(cpu, b);
            if (code) {
                if (exit_site && cpu->jit_exit_la == la)
                    x86_jit_chain(exit_site, code);
                cpu->icount += code(cpu);
                if (cpu->block_end) {
                    cpu->last_genp = NULL;
                    prev = NULL;
                }
                continue;
            }
        } else {
            n = (unsigned)(end - cpu->icount);
        }
        if (n == b->n && b->tail && !tail_ok(cpu, b, la))
            n--;
        const struct x86_insn *in = b->insn;
        for (unsigned i = 0; i < n; i++, in++) {
            exec_insn(cpu, in);
            if (X86_UNLIKELY(cpu->block_end)) {
                i++;
                cpu->icount += i;
                cpu->last_genp = NULL;
                prev = NULL;
                goto next;
            }
        }
        cpu->icount += n;
    next:;
    }
}

/* Runs until exit (or `n` instructions when stepping). */
static int cpu_exec(struct x86_cpu *cpu, uint64_t end, bool stepping, bool stop_on_exc)
{
    if (setjmp(cpu->jmp)) {
        cpu->icount++;
        if (stop_on_exc) {
            cpu->rip = cpu->insn_rip;
            cpu->tlb_user = cpu->cpl == 3;
            return cpu->exc_vec == 0 ? 256 : cpu->exc_vec;
        }
        deliver_exception(cpu);
    }
    for (;;) {
        int r = exec_loop(cpu, end, stepping);
        if (r == RUN_EXIT || stepping)
            return 0;
    }
}

int x86_cpu_run(struct x86_cpu *cpu)
{
    cpu_exec(cpu, UINT64_MAX, false, false);
    return 0;
}

int x86_cpu_step(struct x86_cpu *cpu, uint64_t n, bool stop_on_exception)
{
    int r = cpu_exec(cpu, cpu->icount + n, true, stop_on_exception);
    return r == 256 ? 0 : r;
}

/* ---- register access ------------------------------------------------------------------ */

void x86_cpu_get_regs(struct x86_cpu *cpu, struct x86_regs *r)
{
    memcpy(r->gpr, cpu->gpr, sizeof r->gpr);
    r->rip = cpu->rip;
    r->rflags = x86_get_flags(cpu);
    r->es = cpu->seg[X86_ES];
    r->cs = cpu->seg[X86_CS];
    r->ss = cpu->seg[X86_SS];
    r->ds = cpu->seg[X86_DS];
    r->fs = cpu->seg[X86_FS];
    r->gs = cpu->seg[X86_GS];
    r->ldtr = cpu->seg[X86_LDTR];
    r->tr = cpu->seg[X86_TR];
    r->gdt_base = cpu->gdt_base;
    r->gdt_limit = cpu->gdt_limit;
    r->idt_base = cpu->idt_base;
    r->idt_limit = cpu->idt_limit;
    r->cr0 = cpu->cr0;
    r->cr2 = cpu->cr2;
    r->cr3 = cpu->cr3;
    r->cr4 = cpu->cr4;
    r->cr8 = cpu->bus.get_cr8 ? cpu->bus.get_cr8(cpu->bus.opaque) : cpu->cr8;
    r->efer = cpu->efer;
    r->kernel_gs_base = cpu->kernel_gs_base;
    r->star = cpu->star;
    r->lstar = cpu->lstar;
    r->cstar = cpu->cstar;
    r->sfmask = cpu->sfmask;
    r->apic_base = cpu->apic_base;
    r->tsc_aux = cpu->tsc_aux;
    r->pat = cpu->pat;
    memcpy(r->dr, cpu->dr, sizeof r->dr);
    r->halted = cpu->halted;
    r->wait_for_sipi = cpu->wait_sipi;
}

void x86_cpu_set_regs(struct x86_cpu *cpu, const struct x86_regs *r)
{
    memcpy(cpu->gpr, r->gpr, sizeof r->gpr);
    cpu->rip = r->rip;
    cpu->lf.op = X86_LF_NONE;
    cpu->rflags = (r->rflags | 2) & 0x3f7fd7;
    cpu->seg[X86_ES] = r->es;
    cpu->seg[X86_CS] = r->cs;
    cpu->seg[X86_SS] = r->ss;
    cpu->seg[X86_DS] = r->ds;
    cpu->seg[X86_FS] = r->fs;
    cpu->seg[X86_GS] = r->gs;
    cpu->seg[X86_LDTR] = r->ldtr;
    cpu->seg[X86_TR] = r->tr;
    cpu->gdt_base = r->gdt_base;
    cpu->gdt_limit = r->gdt_limit;
    cpu->idt_base = r->idt_base;
    cpu->idt_limit = r->idt_limit;
    cpu->cr0 = r->cr0;
    cpu->cr2 = r->cr2;
    cpu->cr3 = r->cr3;
    cpu->cr4 = r->cr4;
    cpu->cr8 = r->cr8;
    if (cpu->bus.set_cr8)
        cpu->bus.set_cr8(cpu->bus.opaque, (uint8_t)r->cr8);
    cpu->efer = r->efer;
    cpu->kernel_gs_base = r->kernel_gs_base;
    cpu->star = r->star;
    cpu->lstar = r->lstar;
    cpu->cstar = r->cstar;
    cpu->sfmask = r->sfmask;
    cpu->apic_base = r->apic_base;
    cpu->tsc_aux = r->tsc_aux;
    cpu->pat = r->pat;
    memcpy(cpu->dr, r->dr, sizeof r->dr);
    cpu->halted = r->halted;
    cpu->wait_sipi = r->wait_for_sipi;
    /* CPL: SS.DPL in protected mode (CS.DPL for conforming code aside) */
    cpu->cpl = (cpu->cr0 & X86_CR0_PE) ? (r->ss.attr >> 5) & 3 : 0;
    if ((cpu->cr0 & X86_CR0_PE) && (r->rflags & X86_VM))
        cpu->cpl = 3;
    x86_tlb_flush(cpu);
    x86_update_mode(cpu);
}

void x86_cpu_get_vec_regs(struct x86_cpu *cpu, struct x86_vec_regs *v)
{
    fpu_get_vec_regs(&cpu->fpu, v);
}

void x86_cpu_set_vec_regs(struct x86_cpu *cpu, const struct x86_vec_regs *v)
{
    fpu_set_vec_regs(&cpu->fpu, v);
}

/* Guest TSC: host monotonic nanoseconds (TSC runs at 1 GHz) plus offset. */
uint64_t x86_host_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t x86_rdtsc(struct x86_cpu *cpu)
{
    uint64_t ns = x86_host_ns();
    uint64_t t = X86_TSC_HZ == 1000000000ull ? ns
               : (uint64_t)((unsigned __int128)ns * X86_TSC_HZ / 1000000000ull);
    return t + (uint64_t)cpu->tsc_offset;
}
