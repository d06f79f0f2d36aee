/* The JIT's translator: code buffer, flag liveness, the per-instruction
 * choice between an inline template and a call to the interpreter
 * handler, and the operand helpers the templates share. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "accel/emu/flags.h"
#include "accel/emu/jit_int.h"
#include "accel/emu/mmu.h"

#define JIT_BUF_SIZE (32u << 20)
/* Room one block's translation can take at most (32 instructions). */
#define JIT_BLOCK_MAX_BYTES (64u << 10)

struct x86_jit {
    uint8_t *base;
    size_t used;
    struct jit_lookup *lookup;  /* [2][JIT_LOOKUP_SIZE] */
    FILE *perf_map;             /* QUOKKA_JIT_PERFMAP=1: symbols for perf(1) */
};

struct x86_jit *x86_jit_new(void)
{
    struct x86_jit *jit = calloc(1, sizeof(*jit));
    if (!jit)
        return NULL;
    jit->base = mmap(NULL, JIT_BUF_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    jit->lookup = calloc(2 * JIT_LOOKUP_SIZE, sizeof(struct jit_lookup));
    if (jit->base == MAP_FAILED || !jit->lookup) {
        if (jit->base != MAP_FAILED)
            munmap(jit->base, JIT_BUF_SIZE);
        free(jit->lookup);
        free(jit);
        return NULL;            /* e.g. W^X enforced: the interpreter runs everything */
    }
    const char *pm = getenv("QUOKKA_JIT_PERFMAP");
    if (pm && strcmp(pm, "1") == 0) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/perf-%d.map", (int)getpid());
        jit->perf_map = fopen(path, "a");
    }
    return jit;
}

void x86_jit_free(struct x86_jit *jit)
{
    if (!jit)
        return;
    munmap(jit->base, JIT_BUF_SIZE);
    if (jit->perf_map)
        fclose(jit->perf_map);
    free(jit->lookup);
    free(jit);
}

void x86_jit_reset(struct x86_jit *jit)
{
    if (!jit)
        return;
    jit->used = 0;
    /* generation 0 never matches (the CPU's starts at 1) */
    memset(jit->lookup, 0, 2 * JIT_LOOKUP_SIZE * sizeof(struct jit_lookup));
}

/* ---- operand helpers shared by the templates -------------------------- */

bool jit_ea_ok(const struct jit_tr *t, const struct x86_insn *in)
{
    if (in->asz == 2)
        return false;
    if (in->base == X86_RIPREL) {
        int64_t d = (int64_t)t->next + in->disp;
        return d == (int32_t)d;
    }
    return true;
}

void jit_ea(struct jit_tr *t, const struct x86_insn *in, bool with_seg)
{
    struct jit_buf *b = &t->b;
    int32_t disp = in->disp;
    if (in->base < 16) {
        jit_load(b, 8, JR_RSI, jit_greg(in, in->base, 8));
    } else if (in->base == X86_RIPREL) {
        jit_lea(b, JR_RSI, jit_m(JR_R12, (int32_t)(t->next + in->disp)));
        disp = 0;
    } else {
        jit_mov_imm(b, JR_RSI, 0);
    }
    if (in->index < 16) {
        jit_load(b, 8, JR_RAX, jit_greg(in, in->index, 8));
        jit_lea(b, JR_RSI, jit_mx(JR_RSI, JR_RAX, in->scale, disp));
    } else if (disp) {
        jit_lea(b, JR_RSI, jit_m(JR_RSI, disp));
    }
    if (in->asz == 4)
        jit_mov_rr(b, 4, JR_RSI, JR_RSI);
    if (with_seg && (in->seg == X86_FS || in->seg == X86_GS)) {
        jit_alu_rm(b, 8, JALU_ADD, JR_RSI,
                   jit_m(JR_RBX, (int32_t)(offsetof(struct x86_cpu, segbase) + 8 * in->seg)));
        t->hf_in = false;
    }
}

void jit_mem_operand(struct jit_tr *t, const struct x86_insn *in, unsigned size, bool write)
{
    jit_ea(t, in, true);
    jit_tlb(t, size, write);
}

/* dst = the TLB slot of the address in src (a table of `entries`), times
 * five: entries are five quadwords, so [RBX + dst*8 + table] addresses it. */
static void tlb_slot_index(struct jit_buf *b, unsigned dst, unsigned src, unsigned entries)
{
    _Static_assert(sizeof(struct x86_tlb_entry) == 40, "TLB entry is 5 quadwords");
    jit_mov_rr(b, 8, dst, src);
    jit_shift_ri(b, 8, 5, dst, 12);
    jit_alu_ri(b, 4, JALU_AND, dst, (int32_t)entries - 1);
    jit_lea(b, dst, jit_mx(dst, dst, 2, 0));
}

void jit_stub_if(struct jit_tr *t, unsigned cc)
{
    if (t->nstub < sizeof t->stub / sizeof t->stub[0])
        t->stub[t->nstub++] = (struct jit_stub){ jit_jcc(&t->b, cc), NULL, t->idx, t->off };
    else
        t->b.full = true;       /* cannot happen: at most two per instruction */
}

void jit_push_slot(struct jit_tr *t, const struct x86_insn *in)
{
    jit_load(&t->b, 8, JR_RSI, jit_greg(in, X86_RSP, 8));
    jit_lea(&t->b, JR_RSI, jit_m(JR_RSI, -8));
    jit_tlb(t, 8, true);
}

void jit_tlb(struct jit_tr *t, unsigned size, bool write)
{
    struct jit_buf *b = &t->b;
    int32_t set = (int32_t)(offsetof(struct x86_cpu, tlb) +
                            t->user * X86_TLB_SIZE * sizeof(struct x86_tlb_entry));
    int32_t tag = write ? (int32_t)offsetof(struct x86_tlb_entry, tag_w)
                        : (int32_t)offsetof(struct x86_tlb_entry, tag_r);
    t->hf_in = false;           /* the lookup clobbers host flags */
    tlb_slot_index(b, JR_RDX, JR_RSI, X86_TLB_SIZE);
    jit_lea(b, JR_RDI, jit_m(JR_RSI, (int32_t)size - 1));
    jit_alu_ri(b, 8, JALU_AND, JR_RDI, -4096);
    jit_alu_rm(b, 8, JALU_CMP, JR_RDI, jit_mx(JR_RBX, JR_RDX, 3, set + tag));
    jit_stub_if(t, JCC_NE);
    jit_mov_rr(b, 8, JR_RDI, JR_RSI);
    jit_alu_rm(b, 8, JALU_ADD, JR_RDI,
               jit_mx(JR_RBX, JR_RDX, 3, set + (int32_t)offsetof(struct x86_tlb_entry, addend)));
}

struct jit_mem jit_rm(struct jit_tr *t, const struct x86_insn *in, unsigned size, bool write)
{
    if (in->mod == 3)
        return jit_greg(in, in->rm, size);
    jit_mem_operand(t, in, size, write);
    return jit_m(JR_RDI, 0);
}

void jit_lf(struct jit_tr *t, unsigned op, unsigned size, unsigned a, unsigned b, unsigned res)
{
    t->known_op = (int)op;
    t->known_size = (int)size;
    if (!t->live_mem)
        return;
    if (a != JR_NONE)
        jit_store(&t->b, 8, a, JIT_CPU(lf.a));
    if (b != JR_NONE)
        jit_store(&t->b, 8, b, JIT_CPU(lf.b));
    if (res != JR_NONE)
        jit_store(&t->b, 8, res, JIT_CPU(lf.res));
    jit_store_imm(&t->b, 2, JIT_CPU(lf.op), (int32_t)(op | size << 8));
}

static bool cc_reads_cf(unsigned cc)
{
    return (cc >> 1) == 1 || (cc >> 1) == 3;
}

unsigned jit_cond(struct jit_tr *t, unsigned cc)
{
    struct jit_buf *b = &t->b;
    int op = t->known_op;
    unsigned size = (unsigned)t->known_size;
    if (t->hf_in && (op == X86_LF_ADD || op == X86_LF_SUB || op == X86_LF_LOGIC ||
                     op == X86_LF_ADC || op == X86_LF_SBB ||
                     ((op == X86_LF_INC || op == X86_LF_DEC) && !cc_reads_cf(cc))))
        return cc;
    if (op == X86_LF_SUB || op == X86_LF_ADD) {
        jit_load(b, 8, JR_RAX, JIT_CPU(lf.a));
        jit_alu_rm(b, size, op == X86_LF_SUB ? JALU_CMP : JALU_ADD, JR_RAX, JIT_CPU(lf.b));
        return cc;
    }
    if (op == X86_LF_LOGIC) {
        jit_load(b, 8, JR_RAX, JIT_CPU(lf.res));
        jit_test_rr(b, size, JR_RAX, JR_RAX);
        return cc;
    }
    jit_mov_rr(b, 8, JR_RDI, JR_RBX);
    jit_mov_imm(b, JR_RSI, cc);
    jit_call(b, (const void *)x86_cond);
    jit_test_rr(b, 1, JR_RAX, JR_RAX);
    return JCC_NE;
}

static void rip_to_rax(struct jit_tr *t, int64_t rel)
{
    int64_t d = (int64_t)t->next + rel;
    if (d == (int32_t)d) {
        jit_lea(&t->b, JR_RAX, jit_m(JR_R12, (int32_t)d));
    } else {
        jit_mov_imm(&t->b, JR_RAX, (uint64_t)d);
        jit_alu_rr(&t->b, 8, JALU_ADD, JR_RAX, JR_R12);
    }
}

static void epilogue(struct jit_tr *t)
{
    jit_pop(&t->b, JR_R15);
    jit_pop(&t->b, JR_R14);
    jit_pop(&t->b, JR_R13);
    jit_pop(&t->b, JR_R12);
    jit_pop(&t->b, JR_RBX);
    jit_ret(&t->b);
}

void jit_leave(struct jit_tr *t, unsigned count)
{
    jit_lea(&t->b, JR_RAX, jit_m(JR_R14, (int32_t)count));
    epilogue(t);
}

/* Leave for the block R12 points at, with the instructions R14 counted. */
static void leave_at_r12(struct jit_tr *t)
{
    jit_store(&t->b, 8, JR_R12, JIT_CPU(rip));
    jit_mov_rr(&t->b, 4, JR_RAX, JR_R14);
    epilogue(t);
}

/* Bytes of the prologue before the chain entry (the same for every block). */
#define JIT_PROLOGUE_LEN 90

/* Emit the test "may translated code go straight on to another block?":
 * not while stepping, nor with an event to handle, nor (with `epoch`, for
 * exits to other pages) once a page has become code somewhere: the run
 * loop must drop this CPU's write tags first, or a store through one would
 * miss that the page now holds code. Same-page chains check events only,
 * as they always did: they are loops that interrupts end. A maskable interrupt
 * that may be pending does not count while IF=0: the run loop could not
 * take it either, and the bit stays set for a whole interrupt handler
 * (it is re-armed after each delivery), which otherwise sent every block
 * of it through the run loop. Uses `reg`; the sites jump when it may not. */
struct jit_pending {
    uint8_t *site[4];
};

static struct jit_pending pending_check(struct jit_tr *t, unsigned reg, bool epoch)
{
    struct jit_buf *b = &t->b;
    struct jit_pending p;
    jit_load(b, 4, reg, JIT_CPU(events));
    jit_alu_rm(b, 4, JALU_OR, reg, JIT_CPU(jit_nochain));
    uint8_t *none = jit_jcc(b, JCC_E);
    jit_alu_mi(b, 4, JALU_CMP, JIT_CPU(jit_nochain), 0);
    p.site[0] = jit_jcc(b, JCC_NE);
    jit_alu_mi(b, 4, JALU_CMP, JIT_CPU(events), X86_EV_INTR);
    p.site[1] = jit_jcc(b, JCC_NE);
    jit_op_m(b, 1, 0xf6, 0, jit_m(JR_RBX, (int32_t)offsetof(struct x86_cpu, rflags) + 1));
    jit_byte(b, X86_IF >> 8);                               /* TEST byte [rflags+1], IF */
    p.site[2] = jit_jcc(b, JCC_NE);
    jit_patch(b, none, b->p);
    p.site[3] = NULL;
    if (epoch) {
        /* a page turned into code since: the run loop drops the write tags */
        jit_load(b, 8, reg, JIT_CPU(code_epoch_p));
        jit_load(b, 8, reg, jit_m(reg, 0));
        jit_alu_rm(b, 8, JALU_CMP, reg, JIT_CPU(code_epoch));
        p.site[3] = jit_jcc(b, JCC_NE);
    }
    return p;
}

static void pending_patch(struct jit_tr *t, const struct jit_pending *p, const uint8_t *target)
{
    for (int i = 0; i < 4; i++)
        jit_patch(&t->b, p->site[i], target);
}

/* RCX = &t->lookup[hash of the address in `reg`]; clobbers RDX. The hash
 * is multiplicative on the low 32 bits: code addresses differ there, and
 * xor-folding page and offset bits made a callee's entry and a return
 * address into its caller collide. */
static void lookup_slot(struct jit_tr *t, unsigned reg)
{
    struct jit_buf *b = &t->b;
    _Static_assert(sizeof(struct jit_lookup) == 32, "lookup entries are 32 bytes");
    jit_op_r(b, 4, 0x69, JR_RDX, reg);
    jit_u32(b, 0x9e3779b1u);
    jit_shift_ri(b, 4, 5, JR_RDX, 32 - JIT_LOOKUP_BITS - 5);
    jit_alu_ri(b, 4, JALU_AND, JR_RDX, (JIT_LOOKUP_SIZE - 1) << 5);
    jit_mov_imm64(b, JR_RCX, (uint64_t)(uintptr_t)t->lookup);
    jit_alu_rr(b, 8, JALU_ADD, JR_RCX, JR_RDX);
}

/* Offset from RBX of the fetch TLB of the block's privilege class. */
static int32_t itlb_base(const struct jit_tr *t)
{
    return (int32_t)(offsetof(struct x86_cpu, itlb) +
                     t->user * X86_ITLB_SIZE * sizeof(struct x86_tlb_entry));
}

/* The fetch TLB lost the address (a CR3 write drops user pages): walk the
 * page tables as the run loop would, and refill it when the address still
 * maps to the entry's page. 0 when not (then the run loop deals with it,
 * faults included). */
static uint64_t lookup_refill(struct x86_cpu *cpu, uint64_t la, const struct jit_lookup *e)
{
    uint64_t pa;
    bool user = cpu->tlb_user;
    /* should the fill fault after all (the PTE changed since the walk, on
     * another CPU), it is the fetch fault the run loop would raise here */
    cpu->rip = cpu->insn_rip = la;
    if (x86_mmu_walk(cpu, la, X86_ACC_X, user, &pa, false) != 0 || (pa & ~0xfffull) != e->pa)
        return 0;
    return x86_tlb_fill(cpu, la, X86_ACC_X, user)->tag_x == (la & ~0xfffull);
}

/* Jump to the translation of the guest address in RAX if the lookup table
 * has it (R12/R14 for the target set on the way when `enter`, else they
 * already are); the misses fall through. Clobbers RCX, RDX, RSI, RDI. */
static void lookup_jump(struct jit_tr *t, bool enter)
{
    struct jit_buf *b = &t->b;
    lookup_slot(t, JR_RAX);
    jit_alu_rm(b, 8, JALU_CMP, JR_RAX, jit_m(JR_RCX, (int32_t)offsetof(struct jit_lookup, la)));
    uint8_t *miss = jit_jcc(b, JCC_NE);
    jit_load(b, 8, JR_RDX, JIT_CPU(jc_gen));
    jit_alu_rm(b, 8, JALU_CMP, JR_RDX, jit_m(JR_RCX, (int32_t)offsetof(struct jit_lookup, jc_gen)));
    uint8_t *old = jit_jcc(b, JCC_NE);
    uint8_t *hit = b->p;
    if (enter) {
        jit_lea(b, JR_R14, jit_m(JR_R14, (int32_t)(t->idx + 1)));
        jit_mov_rr(b, 8, JR_R12, JR_RAX);
    }
    jit_jmp_m(b, jit_m(JR_RCX, (int32_t)offsetof(struct jit_lookup, code)));
    /* flushed since: does the fetch TLB still map it to the same page? */
    jit_patch(b, old, b->p);
    int32_t itlb = itlb_base(t);
    tlb_slot_index(b, JR_RSI, JR_RAX, X86_ITLB_SIZE);
    jit_mov_rr(b, 8, JR_RDI, JR_RAX);
    jit_alu_ri(b, 8, JALU_AND, JR_RDI, -4096);
    jit_alu_rm(b, 8, JALU_CMP, JR_RDI,
               jit_mx(JR_RBX, JR_RSI, 3, itlb + (int32_t)offsetof(struct x86_tlb_entry, tag_x)));
    uint8_t *unmapped = jit_jcc(b, JCC_NE);
    jit_load(b, 8, JR_RDI, jit_mx(JR_RBX, JR_RSI, 3, itlb + (int32_t)offsetof(struct x86_tlb_entry, pa)));
    jit_alu_rm(b, 8, JALU_CMP, JR_RDI, jit_m(JR_RCX, (int32_t)offsetof(struct jit_lookup, pa)));
    uint8_t *moved = jit_jcc(b, JCC_NE);
    uint8_t *valid = b->p;
    jit_load(b, 8, JR_RDX, JIT_CPU(jc_gen));
    jit_store(b, 8, JR_RDX, jit_m(JR_RCX, (int32_t)offsetof(struct jit_lookup, jc_gen)));
    jit_jmp_to(b, hit);
    jit_patch(b, unmapped, b->p);
    jit_push(b, JR_RAX);                    /* two pushes keep the call aligned */
    jit_push(b, JR_RCX);
    jit_mov_rr(b, 8, JR_RDI, JR_RBX);
    jit_mov_rr(b, 8, JR_RSI, JR_RAX);
    jit_mov_rr(b, 8, JR_RDX, JR_RCX);
    jit_call(b, (const void *)lookup_refill);
    jit_pop(b, JR_RCX);
    jit_test_rr(b, 4, JR_RAX, JR_RAX);
    jit_pop(b, JR_RAX);
    uint8_t *gone = jit_jcc(b, JCC_E);
    jit_jmp_to(b, valid);
    jit_patch(b, miss, b->p);
    jit_patch(b, moved, b->p);
    jit_patch(b, gone, b->p);
}

void jit_exit_dynamic(struct jit_tr *t)
{
    struct jit_buf *b = &t->b;
    jit_store(b, 8, JR_RAX, JIT_CPU(rip));
    struct jit_pending pending = pending_check(t, JR_RDX, true);
    lookup_jump(t, true);
    pending_patch(t, &pending, b->p);
    jit_leave(t, t->idx + 1);
}

/* A same-page target: a patchable jump, which until the run loop patches
 * it (never while an interrupt is pending: the loop does not patch then)
 * tries the lookup table. */
void jit_exit_to(struct jit_tr *t, int64_t rel)
{
    struct jit_buf *b = &t->b;
    int64_t target = (int64_t)(t->blk->pa & 0xfff) + t->next + rel;
    if (target < 0 || target >= 4096) {
        rip_to_rax(t, rel);
        jit_exit_dynamic(t);
        return;
    }
    jit_lea(b, JR_R14, jit_m(JR_R14, (int32_t)(t->idx + 1)));
    if (t->next + rel == 0) {
        /* back to this block's start: no entry check needed, as the code
         * cannot change under it unnoticed (a store to a code page leaves
         * through the interpreter; other CPUs interrupt it) */
        struct jit_pending pending = pending_check(t, JR_RAX, false);
        jit_jmp_to(b, t->body);
        pending_patch(t, &pending, b->p);
        leave_at_r12(t);
        return;
    }
    jit_lea(b, JR_R12, jit_m(JR_R12, (int32_t)(t->next + rel)));
    struct jit_pending pending = pending_check(t, JR_RAX, false);
    uint8_t *site = jit_jmp(b);
    jit_patch(b, site, b->p);
    jit_mov_rr(b, 8, JR_RAX, JR_R12);
    lookup_jump(t, false);
    pending_patch(t, &pending, b->p);
    jit_store(b, 8, JR_R12, JIT_CPU(jit_exit_la));
    jit_mov_imm(b, JR_RAX, (uint64_t)(uintptr_t)site);
    jit_store(b, 8, JR_RAX, JIT_CPU(jit_exit_site));
    leave_at_r12(t);
}

void x86_jit_chain(uint8_t *site, x86_jit_fn *code)
{
    int32_t rel = (int32_t)((uint8_t *)(void *)code + JIT_PROLOGUE_LEN - (site + 4));
    memcpy(site, &rel, 4);
}

/* ---- translation ---------------------------------------------------------- */

/* Call the interpreter handler for the instruction at t->idx, RIPs set as
 * the interpreter's loop sets them. */
static void call_handler(struct jit_tr *t, const struct x86_insn *in)
{
    struct jit_buf *b = &t->b;
    jit_lea(b, JR_RAX, jit_m(JR_R12, (int32_t)t->off));
    jit_store(b, 8, JR_RAX, JIT_CPU(insn_rip));
    jit_lea(b, JR_RAX, jit_m(JR_R12, (int32_t)t->next));
    jit_store(b, 8, JR_RAX, JIT_CPU(rip));
    jit_mov_rr(b, 8, JR_RDI, JR_RBX);
    jit_mov_imm(b, JR_RSI, (uint64_t)(uintptr_t)in);
    jit_call(b, (const void *)in->fn);
}

/* After a handler: leave when it asked to (mode change, code written). */
static void check_block_end(struct jit_tr *t, unsigned count)
{
    struct jit_buf *b = &t->b;
    jit_alu_mi(b, 1, JALU_CMP, JIT_CPU(block_end), 0);
    if (t->nexit < sizeof t->exit_site / sizeof t->exit_site[0]) {
        t->exit_site[t->nexit] = jit_jcc(b, JCC_NE);
        t->exit_count[t->nexit++] = count;
    } else {
        t->b.full = true;
    }
}

static jit_template *find_template(const struct x86_insn *in)
{
    if (in->pfx & X86_PFX_LOCK)
        return jit_atomic_template(in);
    jit_template *f = jit_alu_template(in);
    if (!f)
        f = jit_move_template(in);
    if (!f)
        f = jit_flow_template(in);
    if (!f)
        f = jit_atomic_template(in);
    if (!f)
        f = jit_sys_template(in);
    return f;
}

/* Does this instruction leave the guest's flags in host flags (a register
 * form of a template whose host instruction computes them all)? */
static bool hf_producer(const struct x86_insn *in)
{
    unsigned op = in->op, digit = (in->modrm >> 3) & 7;
    if (in->map != X86_MAP_1B || (in->pfx & X86_PFX_LOCK))
        return false;
    if (op < 0x40 && (op & 7) < 6)
        return (op & 7) >= 4 || in->mod == 3;
    if (op == 0x80 || op == 0x81 || op == 0x83 || op == 0x84 || op == 0x85)
        return in->mod == 3;
    if (op == 0xf6 || op == 0xf7)
        return in->mod == 3 && (digit <= 1 || digit == 3);
    return op == 0xa8 || op == 0xa9;
}

/* Does this instruction's template read the flags from host flags when
 * the one before left them there? */
static bool hf_reader(const struct x86_insn *in)
{
    unsigned op = in->op, digit = (in->modrm >> 3) & 7;
    if (in->pfx & X86_PFX_LOCK)
        return false;
    if (in->map == X86_MAP_0F)
        return !(in->pfx & (X86_PFX_F2 | X86_PFX_F3)) &&
               (((op >= 0x40 && op <= 0x4f) || (op >= 0x90 && op <= 0x9f)) ? in->mod == 3 :
                op >= 0x80 && op <= 0x8f && in->osz != 2);
    if (in->map != X86_MAP_1B)
        return false;
    if (op >= 0x70 && op <= 0x7f)
        return in->osz != 2;
    if ((op >= 0x10 && op <= 0x15) || (op >= 0x18 && op <= 0x1d))
        return (op & 7) >= 4 || in->mod == 3;
    return (op == 0x80 || op == 0x81 || op == 0x83) && (digit == 2 || digit == 3) && in->mod == 3;
}

/* Which flags each instruction leaves for a later reader (all at the end),
 * and which of those must be in the lazy-flags record: not those the very
 * next instruction takes from host flags (a register compare followed by
 * CMOVcc, say), unless a later reader wants them too. */
static void flag_liveness(const struct x86_block *blk, uint8_t *live_after, uint8_t *mem_after)
{
    uint8_t live = JF_ALL, mem = JF_ALL;
    for (int i = blk->n - 1; i >= 0; i--) {
        uint8_t rd, wr;
        live_after[i] = live;
        mem_after[i] = mem;
        if (!jit_flag_effect(&blk->insn[i], &rd, &wr)) {
            rd = JF_ALL;
            wr = 0;
        }
        live = (uint8_t)((live & ~wr) | rd);
        bool from_host = i > 0 && hf_reader(&blk->insn[i]) && hf_producer(&blk->insn[i - 1]) &&
                         !(blk->tail && i + 1 == blk->n);    /* tail_check clobbers them */
        mem = (uint8_t)((mem & ~wr) | (from_host ? 0 : rd));
    }
}

static void translate_insn(struct jit_tr *t, const struct x86_insn *in, bool last)
{
    unsigned first_stub = t->nstub;
    jit_template *tpl = find_template(in);
    t->hf = false;
    t->ends_block = false;
    if (tpl && tpl(t, in)) {
        uint8_t *resume = t->ends_block ? NULL : t->b.p;
        for (unsigned s = first_stub; s < t->nstub; s++)
            t->stub[s].resume = resume;
        if (last && !t->ends_block)
            jit_exit_to(t, 0);
        return;
    }
    t->nstub = first_stub;      /* a template that gave up emitted nothing */
    call_handler(t, in);
    t->known_op = -1;
    if (last)
        jit_leave(t, t->idx + 1);
    else
        check_block_end(t, t->idx + 1);
}

/* Before a tail (decode.h): leave ahead of it unless the block's next
 * linear page maps in the fetch TLB where it did at decode time and the
 * page's generation is unchanged. Clobbers host flags (flag_liveness
 * keeps the tail from taking flags from them). */
static void tail_check(struct jit_tr *t)
{
    struct jit_buf *b = &t->b;
    const struct x86_block *blk = t->blk;
    int32_t itlb = itlb_base(t);
    jit_mov_rr(b, 8, JR_RAX, JR_R12);
    jit_alu_ri(b, 8, JALU_AND, JR_RAX, -4096);
    jit_lea(b, JR_RAX, jit_m(JR_RAX, 4096));
    tlb_slot_index(b, JR_RSI, JR_RAX, X86_ITLB_SIZE);
    jit_alu_rm(b, 8, JALU_CMP, JR_RAX,
               jit_mx(JR_RBX, JR_RSI, 3, itlb + (int32_t)offsetof(struct x86_tlb_entry, tag_x)));
    uint8_t *unmapped = jit_jcc(b, JCC_NE);
    jit_mov_imm(b, JR_RAX, blk->tail_pa);
    jit_alu_rm(b, 8, JALU_CMP, JR_RAX,
               jit_mx(JR_RBX, JR_RSI, 3, itlb + (int32_t)offsetof(struct x86_tlb_entry, pa)));
    uint8_t *moved = jit_jcc(b, JCC_NE);
    jit_mov_imm(b, JR_RAX, (uint64_t)(uintptr_t)blk->tail_genp);
    jit_alu_mi(b, 4, JALU_CMP, jit_m(JR_RAX, 0), (int32_t)blk->tail_gen);
    uint8_t *written = jit_jcc(b, JCC_NE);
    uint8_t *ok = jit_jmp(b);
    jit_patch(b, unmapped, b->p);
    jit_patch(b, moved, b->p);
    jit_patch(b, written, b->p);
    jit_lea(b, JR_RAX, jit_m(JR_R12, (int32_t)t->off));
    jit_store(b, 8, JR_RAX, JIT_CPU(rip));
    jit_leave(t, t->idx);
    jit_patch(b, ok, b->p);
    t->hf_in = false;
}

/* Out-of-line code: TLB misses re-run their instruction in the interpreter. */
static void emit_tail(struct jit_tr *t)
{
    struct jit_buf *b = &t->b;
    for (unsigned s = 0; s < t->nstub; s++) {
        const struct jit_stub *st = &t->stub[s];
        const struct x86_insn *in = &t->blk->insn[st->idx];
        jit_patch(b, st->site, b->p);
        t->idx = st->idx;
        t->off = st->off;
        t->next = st->off + in->len;
        call_handler(t, in);
        if (st->resume) {
            check_block_end(t, st->idx + 1);
            jit_jmp_to(b, st->resume);
        } else {
            jit_leave(t, st->idx + 1);
        }
    }
    for (unsigned e = 0; e < t->nexit; e++) {
        jit_patch(b, t->exit_site[e], b->p);
        jit_leave(t, t->exit_count[e]);
    }
    jit_patch(b, t->stale, b->p);
    leave_at_r12(t);
}

x86_jit_fn *x86_jit_translate(struct x86_jit *jit, const struct x86_block *blk, unsigned user)
{
    if (!jit || blk->mode != X86_DEC_64)
        return NULL;
    if (jit->used + JIT_BLOCK_MAX_BYTES > JIT_BUF_SIZE)
        return NULL;
    static __thread struct jit_tr tr;
    struct jit_tr *t = &tr;
    uint8_t *start = jit->base + jit->used;
    memset(t, 0, offsetof(struct jit_tr, stub));
    t->b = (struct jit_buf){ start, start + JIT_BLOCK_MAX_BYTES, false };
    t->blk = blk;
    t->user = user;
    t->known_op = -1;
    t->nstub = t->nexit = 0;
    t->lookup = jit->lookup + (user ? JIT_LOOKUP_SIZE : 0);

    uint8_t live_after[X86_BLOCK_MAX], mem_after[X86_BLOCK_MAX];
    flag_liveness(blk, live_after, mem_after);

    jit_push(&t->b, JR_RBX);
    jit_push(&t->b, JR_R12);
    jit_push(&t->b, JR_R13);
    jit_push(&t->b, JR_R14);
    jit_push(&t->b, JR_R15);                 /* five pushes keep calls 16-byte aligned */
    jit_mov_rr(&t->b, 8, JR_RBX, JR_RDI);
    jit_load(&t->b, 8, JR_R12, JIT_CPU(rip));
    jit_alu_rr(&t->b, 4, JALU_XOR, JR_R14, JR_R14);
    /* entered from the run loop: R12 was just found to map to this block */
    lookup_slot(t, JR_R12);
    jit_store(&t->b, 8, JR_R12, jit_m(JR_RCX, (int32_t)offsetof(struct jit_lookup, la)));
    jit_load(&t->b, 8, JR_RAX, JIT_CPU(jc_gen));
    jit_store(&t->b, 8, JR_RAX, jit_m(JR_RCX, (int32_t)offsetof(struct jit_lookup, jc_gen)));
    jit_mov_imm64(&t->b, JR_RAX, blk->pa & ~0xfffull);
    jit_store(&t->b, 8, JR_RAX, jit_m(JR_RCX, (int32_t)offsetof(struct jit_lookup, pa)));
    uint8_t *entry = jit_lea_rip(&t->b, JR_RAX);
    jit_store(&t->b, 8, JR_RAX, jit_m(JR_RCX, (int32_t)offsetof(struct jit_lookup, code)));
    jit_patch(&t->b, entry, t->b.p);
    if (t->b.p - start != JIT_PROLOGUE_LEN) {
        fprintf(stderr, "jit: prologue is %d bytes\n", (int)(t->b.p - start));
        abort();                             /* x86_jit_chain relies on it */
    }
    /* chain entry: is the block's code still what was translated? */
    jit_mov_imm(&t->b, JR_RAX, (uint64_t)(uintptr_t)blk->genp);
    jit_op_m(&t->b, 4, 0x81, JALU_CMP, jit_m(JR_RAX, 0));
    jit_u32(&t->b, blk->gen);
    t->stale = jit_jcc(&t->b, JCC_NE);
    t->body = t->b.p;
    uint32_t off = 0;
    for (unsigned i = 0; i < blk->n; i++) {
        const struct x86_insn *in = &blk->insn[i];
        t->idx = i;
        t->off = off;
        t->next = off + in->len;
        t->live = live_after[i];
        t->live_mem = mem_after[i];
        t->hf_in = t->hf;
        if (blk->tail && i + 1 == blk->n)
            tail_check(t);
        translate_insn(t, in, i + 1 == blk->n);
        off = t->next;
    }
    emit_tail(t);
    if (t->b.full)
        return NULL;
    jit->used += (size_t)(t->b.p - start);
    jit->used = (jit->used + 15) & ~(size_t)15;
    if (jit->perf_map)
        fprintf(jit->perf_map, "%lx %lx jit-%s-pa%llx\n", (unsigned long)(uintptr_t)start,
                (unsigned long)(t->b.p - start), user ? "user" : "kern",
                (unsigned long long)blk->pa);
    return (x86_jit_fn *)(void *)start;
}

bool x86_jit_full(const struct x86_jit *jit)
{
    return jit && jit->used + JIT_BLOCK_MAX_BYTES > JIT_BUF_SIZE;
}

/* ---- flag effects, for liveness -------------------------------------------- */

static uint8_t cc_flags(unsigned cc)
{
    switch (cc >> 1) {
    case 1: return JF_CF;                   /* B, AE */
    case 3: return JF_CF | JF_OSZ;          /* BE, A */
    default: return JF_OSZ;
    }
}

static bool group_flags(const struct x86_insn *in, uint8_t *rd, uint8_t *wr)
{
    unsigned digit = (in->modrm >> 3) & 7;
    switch (in->op) {
    case 0x80: case 0x81: case 0x83:
        *rd = (digit == JALU_ADC || digit == JALU_SBB) ? JF_CF : 0;
        *wr = JF_ALL;
        return true;
    case 0xc0: case 0xc1: case 0xd0: case 0xd1: {
        unsigned count = (in->op >= 0xd0 ? 1 : (unsigned)in->imm) & (in->osz == 8 ? 63 : 31);
        if (count == 0)
            return true;
        if (digit == 2 || digit == 3)       /* RCL, RCR */
            *rd = JF_CF;
        *wr = (digit == 4 || digit == 5 || digit == 7) ? JF_ALL : JF_CF;
        return true;
    }
    case 0xf6: case 0xf7:
        if (digit != 2)                     /* NOT leaves flags alone */
            *wr = JF_ALL;
        return true;
    case 0xfe: case 0xff:
        if (digit <= 1)
            *wr = JF_OSZ;                   /* INC/DEC keep CF */
        return digit <= 1 || (in->op == 0xff && digit == 6);   /* PUSH r/m: none */
    }
    return false;
}

bool jit_flag_effect(const struct x86_insn *in, uint8_t *rd, uint8_t *wr)
{
    unsigned op = in->op;
    *rd = *wr = 0;
    if (in->map == X86_MAP_1B) {
        if (op < 0x40 && (op & 7) < 6) {
            unsigned alu = op >> 3;
            *rd = (alu == JALU_ADC || alu == JALU_SBB) ? JF_CF : 0;
            *wr = JF_ALL;
            return true;
        }
        if ((op >= 0x50 && op <= 0x5f) || (op >= 0x88 && op <= 0x8b) || op == 0x8d ||
            op == 0x63 || op == 0x90 || (op >= 0xb0 && op <= 0xbf) || op == 0xc6 ||
            op == 0xc7 || op == 0xc3 || op == 0xe8 || op == 0xe9 || op == 0xeb ||
            op == 0x98 || op == 0x99 || op == 0x68 || op == 0x6a || op == 0xc9 ||
            op == 0xfa || op == 0xfb)
            return true;
        if (op == 0x84 || op == 0x85 || op == 0xa8 || op == 0xa9 || op == 0x69 || op == 0x6b) {
            *wr = JF_ALL;
            return true;
        }
        if (op >= 0x70 && op <= 0x7f) {
            *rd = cc_flags(op & 15);
            return true;
        }
        return group_flags(in, rd, wr);
    }
    if (in->map != X86_MAP_0F || (in->pfx & (X86_PFX_F2 | X86_PFX_F3)))
        return false;
    if ((op >= 0x40 && op <= 0x4f) || (op >= 0x80 && op <= 0x9f)) {
        *rd = cc_flags(op & 15);
        return true;
    }
    if (op == 0xb6 || op == 0xb7 || op == 0xbe || op == 0xbf || op == 0x1f ||
        (op >= 0xc8 && op <= 0xcf) || (op == 0x01 && in->modrm == 0xf8) ||
        (op == 0xae && in->mod == 3 && ((in->modrm >> 3) & 7) >= 5))
        return true;                        /* BSWAP, SWAPGS, fences: no flags */
    if (op == 0xb0 || op == 0xb1 || op == 0xc0 || op == 0xc1) {
        *wr = JF_ALL;                       /* CMPXCHG, XADD */
        return true;
    }
    if (op == 0xaf) {
        *wr = JF_ALL;
        return true;
    }
    if (op == 0xa3 || op == 0xab || op == 0xb3 || op == 0xbb ||
        (op == 0xba && ((in->modrm >> 3) & 7) >= 4)) {
        *wr = JF_CF;            /* the others are kept (undefined in the SDM) */
        return true;
    }
    return false;
}
