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

struct x86_code_cache {
    struct x86_block *hash[HASH_SIZE];
    uint8_t *arena;
    size_t used;
    struct x86_jit *jit;        /* NULL: interpret only */
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

static struct x86_block *decode_block(struct x86_cpu *cpu, uint64_t pa, unsigned mode,
                                      const uint8_t *page, uint32_t gen, _Atomic uint32_t *genp)
{
    struct x86_code_cache *cc = cpu->cc;
    struct x86_block *b = cc_alloc(cpu, cc);
    unsigned off = pa & 0xfff, n = 0;

    while (n < X86_BLOCK_MAX && off < 4096) {
        struct x86_insn *in = &b->insn[n];
        int r = x86_decode(page + off, 4096 - off, mode, in);
        if (r == -1)
            break;              /* crosses the page: executed uncached */
        n++;
        off += in->len;
        if (in->flags & X86_DF_END)
            break;
    }
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
    b->mode = mode;
    b->n = n;
    unsigned h = hash_of(pa);
    b->next = cc->hash[h];
    cc->hash[h] = b;
    cc->used += sizeof(struct x86_block) + n * sizeof(struct x86_insn);
    cc->used = (cc->used + 15) & ~(size_t)15;
    return b;
}

struct x86_block *x86_cc_lookup(struct x86_cpu *cpu, uint64_t pa, unsigned mode,
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
    return decode_block(cpu, pa, mode, host_page, gen, g);
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
