/* Decoded-code cache.
 *
 * Each vCPU keeps its own blocks (no locking, no freeing under another
 * thread's feet); what is shared is one generation word per guest-physical
 * page. Bit 0 says "some CPU decoded code here"; a store to such a page
 * (the CPU's own slow write path, or DMA via x86_emu_invalidate_code) bumps
 * the generation, which invalidates every block decoded from it. Stores
 * reach the slow path because the TLB never holds a write tag for a page
 * whose bit 0 is set: when a page first becomes code, the emu's epoch
 * moves on and every CPU drops its write tags at its next block. */
#include <stdio.h>
#include <stdlib.h>
#include "accel/emu/decode.h"
#include "accel/emu/jit.h"
#include "accel/emu/mmu.h"

#define CHUNK_SHIFT 30                       /* 1 GiB of pages per chunk */
#define CHUNK_PAGES (1u << (CHUNK_SHIFT - 12))
#define NCHUNKS 1024                         /* tracks the low 1 TiB */

struct x86_emu {
    _Atomic(_Atomic uint32_t *) chunk[NCHUNKS];
    _Atomic uint64_t code_epoch;
};

struct x86_emu *x86_emu_new(void)
{
    return calloc(1, sizeof(struct x86_emu));
}

void x86_emu_free(struct x86_emu *emu)
{
    if (!emu)
        return;
    for (int i = 0; i < NCHUNKS; i++)
        free((void *)emu->chunk[i]);
    free(emu);
}

_Atomic uint32_t *x86_emu_page_gen(struct x86_emu *emu, uint64_t pa, bool create)
{
    uint64_t c = pa >> CHUNK_SHIFT;
    if (c >= NCHUNKS)
        return NULL;
    _Atomic uint32_t *p = atomic_load_explicit(&emu->chunk[c], memory_order_acquire);
    if (!p) {
        if (!create)
            return NULL;
        _Atomic uint32_t *n = calloc(CHUNK_PAGES, sizeof(*n));
        if (!n)
            return NULL;
        _Atomic uint32_t *expect = NULL;
        if (atomic_compare_exchange_strong(&emu->chunk[c], &expect, n))
            p = n;
        else {
            free(n);
            p = expect;
        }
    }
    return &p[(pa >> 12) & (CHUNK_PAGES - 1)];
}

_Atomic uint64_t *x86_emu_code_epoch_ptr(struct x86_emu *emu)
{
    return &emu->code_epoch;
}

static void page_written(struct x86_emu *emu, uint64_t pa)
{
    _Atomic uint32_t *g = x86_emu_page_gen(emu, pa, false);
    if (g && (atomic_load_explicit(g, memory_order_relaxed) & 1))
        atomic_fetch_add(g, 1);
}

void x86_emu_invalidate_code(struct x86_emu *emu, uint64_t gpa, uint64_t len)
{
    if (!len)
        return;
    for (uint64_t p = gpa & ~0xfffull; p < gpa + len; p += 4096)
        page_written(emu, p);
}

void x86_code_written(struct x86_cpu *cpu, uint64_t pa, unsigned len)
{
    page_written(cpu->emu, pa);
    if (((pa & 0xfff) + len) > 4096)
        page_written(cpu->emu, pa + len - 1);
    cpu->block_end = true;
}

/* ---- per-CPU blocks ------------------------------------------------------ */

#define HASH_BITS 16
#define HASH_SIZE (1u << HASH_BITS)
#define ARENA_SIZE (48u << 20)

/* An instruction that straddles a page end belongs to no block (a block
 * lives on one physical page), yet hot kernel functions straddle pages, so
 * each vCPU keeps the ones it decoded, direct-mapped on the linear address.
 * An entry holds the jump cache's key (jc_gen, privilege class, mode), both
 * physical pages and their generations: a store to either page kills it,
 * and after a TLB flush it counts again only if both pages still map where
 * they did. Entries point into no arena, so recycling leaves them alone. */
#define XC_BITS 9
#define XC_SIZE (1u << XC_BITS)

struct xc_entry {
    uint64_t la, key;
    uint64_t pa[2];             /* la's physical page and the next one's */
    _Atomic uint32_t *genp[2];
    uint32_t gen[2];
    struct x86_insn insn;
};

struct x86_code_cache {
    struct x86_block *hash[HASH_SIZE];
    uint8_t *arena;
    size_t used;
    struct x86_jit *jit;        /* NULL: interpret only */
    struct xc_entry xc[XC_SIZE];
};

struct x86_code_cache *x86_cc_new(void)
{
    struct x86_code_cache *cc = calloc(1, sizeof(*cc));
    if (!cc)
        return NULL;
    cc->arena = malloc(ARENA_SIZE);
    if (!cc->arena) {
        free(cc);
        return NULL;
    }
    for (unsigned i = 0; i < XC_SIZE; i++)
        cc->xc[i].la = X86_TLB_INVALID;     /* no instruction crosses a page there */
    const char *e = getenv("QUOKKA_JIT");
    if (!e || strcmp(e, "0") != 0)
        cc->jit = x86_jit_new();
    return cc;
}

void x86_cc_free(struct x86_code_cache *cc)
{
    if (!cc)
        return;
    x86_jit_free(cc->jit);
    free(cc->arena);
    free(cc);
}

static inline unsigned hash_of(uint64_t pa)
{
    return (unsigned)((pa * 0x9e3779b97f4a7c15ull) >> (64 - HASH_BITS));
}

static struct x86_block *cc_alloc(struct x86_cpu *cpu, struct x86_code_cache *cc)
{
    size_t sz = sizeof(struct x86_block) + X86_BLOCK_MAX * sizeof(struct x86_insn);
    if (cc->used + sz > ARENA_SIZE) {
        memset(cc->hash, 0, sizeof(cc->hash));
        cc->used = 0;
        x86_jit_reset(cc->jit);  /* translations call into the blocks */
        cpu->jc_gen++;          /* the jump cache points into the arena */
        cpu->cc_gen++;
    }
    return (struct x86_block *)(cc->arena + cc->used);
}

/* Mark the page as holding code; returns its generation. */
static uint32_t mark_code(struct x86_cpu *cpu, _Atomic uint32_t *g)
{
    uint32_t v = atomic_load_explicit(g, memory_order_acquire);
    while (!(v & 1)) {
        if (atomic_compare_exchange_weak(g, &v, v + 1)) {
            v++;
            atomic_fetch_add(&cpu->emu->code_epoch, 1);
            /* our own write tags go now; others' at their next block */
            for (int u = 0; u < 2; u++)
                for (unsigned i = 0; i < X86_TLB_SIZE; i++)
                    cpu->tlb[u][i].tag_w = X86_TLB_INVALID;
            break;
        }
    }
    return v;
}

/* The instruction at offset off of the block's page crosses into the
 * next one: decode it into insn[n] through the page la's next page maps
 * to now (no fault, no accessed bits: it may never run), if that is RAM.
 * The page is marked as code first, so a store to it from now on shows. */
static bool decode_tail(struct x86_cpu *cpu, struct x86_block *b, unsigned n, uint64_t la,
                        const uint8_t *page, unsigned off)
{
    uint64_t la2 = (la & ~0xfffull) + 4096, pa2;
    uint8_t buf[15];
    unsigned n1 = 4096 - off;
    if (b->mode != X86_DEC_64 || n1 >= sizeof buf ||
        x86_mmu_walk(cpu, la2, X86_ACC_X, cpu->tlb_user, &pa2, false) != 0)
        return false;
    pa2 &= ~0xfffull;
    const uint8_t *page2 = cpu->bus.ram_page(cpu->bus.opaque, pa2);
    _Atomic uint32_t *g2 = page2 ? x86_emu_page_gen(cpu->emu, pa2, true) : NULL;
    if (!g2)
        return false;
    b->tail_gen = mark_code(cpu, g2);
    memcpy(buf, page + off, n1);
    memcpy(buf + n1, page2, sizeof buf - n1);
    if (x86_decode(buf, sizeof buf, b->mode, &b->insn[n]) == -1)
        return false;
    b->tail_genp = g2;
    b->tail_pa = pa2;
    return true;
}

static struct x86_block *decode_block(struct x86_cpu *cpu, uint64_t la, uint64_t pa,
                                      unsigned mode, const uint8_t *page, uint32_t gen,
                                      _Atomic uint32_t *genp)
{
    struct x86_code_cache *cc = cpu->cc;
    struct x86_block *b = cc_alloc(cpu, cc);
    unsigned off = pa & 0xfff, n = 0;
    bool crosses = false;

    b->mode = mode;
    while (n < X86_BLOCK_MAX && off < 4096) {
        struct x86_insn *in = &b->insn[n];
        int r = x86_decode(page + off, 4096 - off, mode, in);
        if (r == -1) {
            crosses = true;
            break;
        }
        n++;
        off += in->len;
        if (in->flags & X86_DF_END)
            break;
    }
    /* a crossing instruction becomes the tail, even as the block's only one */
    b->tail = crosses && decode_tail(cpu, b, n, la, page, off);
    n += b->tail;
    if (n == 0)
        return NULL;
    b->pa = pa;
    b->gen = gen;
    b->genp = genp;
    b->succ_la[0] = b->succ_la[1] = X86_TLB_INVALID;
    b->succ_key[0] = b->succ_key[1] = 0;
    b->succ[0] = b->succ[1] = NULL;
    b->jit[0] = b->jit[1] = NULL;
    b->runs = 0;
    b->n = n;
    unsigned h = hash_of(pa);
    b->next = cc->hash[h];
    cc->hash[h] = b;
    cc->used += sizeof(struct x86_block) + n * sizeof(struct x86_insn);
    cc->used = (cc->used + 15) & ~(size_t)15;
    return b;
}

struct x86_block *x86_cc_lookup(struct x86_cpu *cpu, uint64_t la, uint64_t pa, unsigned mode,
                                const uint8_t *host_page)
{
    struct x86_code_cache *cc = cpu->cc;
    _Atomic uint32_t *g = x86_emu_page_gen(cpu->emu, pa, true);
    if (!g || !host_page)
        return NULL;
    uint32_t gen = atomic_load_explicit(g, memory_order_acquire);
    struct x86_block **pp = &cc->hash[hash_of(pa)];
    for (struct x86_block *b = *pp; b; b = *pp) {
        if (b->pa == pa && b->mode == mode) {
            if (b->gen == gen)
                return b;
            *pp = b->next;      /* stale: unlink, re-decode below */
            break;
        }
        /* blocks of rewritten pages would otherwise lengthen the chain forever */
        if (b->gen != atomic_load_explicit(b->genp, memory_order_relaxed))
            *pp = b->next;
        else
            pp = &b->next;
    }
    gen = mark_code(cpu, g);
    return decode_block(cpu, la, pa, mode, host_page, gen, g);
}

void *x86_cc_jit(struct x86_cpu *cpu, struct x86_block *b)
{
    struct x86_code_cache *cc = cpu->cc;
    unsigned user = cpu->tlb_user;
    if (b->jit[user])
        return b->jit[user];
    if (!cc->jit || cpu->jit_threshold < 0 || ++b->runs < (unsigned)cpu->jit_threshold)
        return NULL;
    if (x86_jit_full(cc->jit)) {
        cc->used = ARENA_SIZE;  /* recycle blocks and code at the next decode */
        return NULL;
    }
    b->jit[user] = (void *)x86_jit_translate(cc->jit, b, user);
    if (!b->jit[user])
        b->runs = 0;            /* e.g. 32-bit code: do not retry at every run */
    return b->jit[user];
}

/* ---- page-crossing instructions ---------------------------------------------- */

static inline struct xc_entry *xc_slot(struct x86_code_cache *cc, uint64_t la)
{
    return &cc->xc[((la >> 12) ^ (la << 5)) & (XC_SIZE - 1)];
}

static inline bool xc_page_ok(const struct xc_entry *x, int i)
{
    return atomic_load_explicit(x->genp[i], memory_order_relaxed) == x->gen[i];
}

const struct x86_insn *x86_cc_crossing(struct x86_cpu *cpu, uint64_t la, uint64_t key)
{
    struct xc_entry *x = xc_slot(cpu->cc, la);
    if (x->la != la || x->key != key || !xc_page_ok(x, 0) || !xc_page_ok(x, 1))
        return NULL;
    cpu->stat_xc_hit++;
    return &x->insn;
}

/* Physical page of the page after la's, as an instruction fetch sees it
 * (faulting as one would); *host is NULL for MMIO. */
static uint64_t next_page(struct x86_cpu *cpu, uint64_t la, uint8_t **host)
{
    uint64_t la2 = (la | 0xfff) + 1;
    const struct x86_tlb_entry *e = &cpu->itlb[cpu->tlb_user][(la2 >> 12) & (X86_ITLB_SIZE - 1)];
    if (X86_LIKELY(e->tag_x == la2)) {
        *host = (uint8_t *)(uintptr_t)(la2 + e->addend);
        return e->pa;
    }
    return x86_fetch_xlate(cpu, la2, host) & ~0xfffull;
}

const struct x86_insn *x86_cc_crossing_remapped(struct x86_cpu *cpu, uint64_t la, uint64_t key,
                                                uint64_t pa)
{
    struct xc_entry *x = xc_slot(cpu->cc, la);
    if (x->la != la || (x->key & 7) != (key & 7) || x->pa[0] != (pa & ~0xfffull) ||
        !xc_page_ok(x, 0))
        return NULL;
    /* la's page holds the same bytes, so the instruction still reaches
     * into the next page: a fault fetching from it is the CPU's */
    uint8_t *host;
    if (next_page(cpu, la, &host) != x->pa[1] || !xc_page_ok(x, 1))
        return NULL;
    x->key = key;
    cpu->stat_xc_hit++;
    return &x->insn;
}

const struct x86_insn *x86_cc_crossing_fill(struct x86_cpu *cpu, uint64_t la, uint64_t key,
                                            uint64_t pa, const uint8_t *host_page,
                                            struct x86_insn *tmp)
{
    unsigned off = la & 0xfff, n1 = 4096 - off, mode = key & 3;
    uint8_t buf[15], *host2;
    uint64_t pa2 = next_page(cpu, la, &host2);
    _Atomic uint32_t *g1 = x86_emu_page_gen(cpu->emu, pa, true);
    _Atomic uint32_t *g2 = host2 ? x86_emu_page_gen(cpu->emu, pa2, true) : NULL;
    if (!g1 || !g2 || n1 >= sizeof buf) {
        x86_fetch_bytes(cpu, la, buf, sizeof buf);
        x86_decode(buf, sizeof buf, mode, tmp);
        return tmp;
    }
    struct xc_entry *x = xc_slot(cpu->cc, la);
    /* generations first: a store after these loads kills the entry */
    x->gen[0] = mark_code(cpu, g1);
    x->gen[1] = mark_code(cpu, g2);
    memcpy(buf, host_page + off, n1);
    memcpy(buf + n1, host2, sizeof buf - n1);
    x86_decode(buf, sizeof buf, mode, &x->insn);
    x->la = la;
    x->key = key;
    x->pa[0] = pa & ~0xfffull;
    x->pa[1] = pa2;
    x->genp[0] = g1;
    x->genp[1] = g2;
    cpu->stat_xc_miss++;
    return &x->insn;
}
