/* MMU: page-table walks (32-bit, PAE, 4-level; 4K/2M/4M/1G pages), the
 * software TLB, and the slow paths of guest memory access (TLB misses,
 * MMIO, page-crossing accesses, stores to pages holding decoded code).
 * SDM vol. 3, chapter 4. */
#include "accel/emu/decode.h"
#include "accel/emu/mmu.h"

/* Every flush also ends the block: translated code must not chain on to
 * the next block under a mapping that may have changed. */
void x86_tlb_flush(struct x86_cpu *cpu)
{
    cpu->jc_gen++;
    cpu->block_end = true;
    cpu->tlb_nlocal = 0;
    for (int u = 0; u < 2; u++) {
        for (unsigned i = 0; i < X86_TLB_SIZE; i++) {
            struct x86_tlb_entry *e = &cpu->tlb[u][i];
            e->tag_r = e->tag_w = e->tag_x = X86_TLB_INVALID;
        }
        for (unsigned i = 0; i < X86_ITLB_SIZE; i++) {
            struct x86_tlb_entry *e = &cpu->itlb[u][i];
            e->tag_r = e->tag_w = e->tag_x = X86_TLB_INVALID;
        }
    }
}

static void invalidate_page(struct x86_cpu *cpu, uint64_t la)
{
    for (int u = 0; u < 2; u++) {
        struct x86_tlb_entry *e = &cpu->tlb[u][(la >> 12) & (X86_TLB_SIZE - 1)];
        e->tag_r = e->tag_w = e->tag_x = X86_TLB_INVALID;
        e = &cpu->itlb[u][(la >> 12) & (X86_ITLB_SIZE - 1)];
        e->tag_r = e->tag_w = e->tag_x = X86_TLB_INVALID;
    }
}

void x86_tlb_flush_page(struct x86_cpu *cpu, uint64_t la)
{
    cpu->jc_gen++;
    cpu->block_end = true;
    invalidate_page(cpu, la);
}

/* A CR3 write: only entries filled from non-global mappings go (the list
 * of them, or everything once the list overflowed). */
void x86_tlb_flush_local(struct x86_cpu *cpu)
{
    if (cpu->tlb_nlocal > X86_TLB_LOCAL_MAX) {
        x86_tlb_flush(cpu);
        return;
    }
    cpu->jc_gen++;
    cpu->block_end = true;
    for (unsigned i = 0; i < cpu->tlb_nlocal; i++)
        invalidate_page(cpu, cpu->tlb_local[i]);
    cpu->tlb_nlocal = 0;
}

static inline struct x86_tlb_entry *tlb_slot(struct x86_cpu *cpu, uint64_t la, unsigned access,
                                             bool user)
{
    if (access == X86_ACC_X)
        return &cpu->itlb[user][(la >> 12) & (X86_ITLB_SIZE - 1)];
    return &cpu->tlb[user][(la >> 12) & (X86_TLB_SIZE - 1)];
}

/* Page-table entry access through host RAM pointers (atomic for A/D). */
static _Atomic uint64_t *pte_ptr64(struct x86_cpu *cpu, uint64_t pa)
{
    uint8_t *page = cpu->bus.ram_page(cpu->bus.opaque, pa & ~0xfffull);
    return page ? (_Atomic uint64_t *)(page + (pa & 0xff8)) : NULL;
}

static _Atomic uint32_t *pte_ptr32(struct x86_cpu *cpu, uint64_t pa)
{
    uint8_t *page = cpu->bus.ram_page(cpu->bus.opaque, pa & ~0xfffull);
    return page ? (_Atomic uint32_t *)(page + (pa & 0xffc)) : NULL;
}

#define PTE_P 1ull
#define PTE_W 2ull
#define PTE_U 4ull
#define PTE_A 0x20ull
#define PTE_D 0x40ull
#define PTE_PS 0x80ull
#define PTE_G 0x100ull
#define PTE_NX (1ull << 63)
#define ADDR_MASK 0x000ffffffffff000ull

struct walk {
    uint64_t pa;            /* physical address of la */
    bool w, u, nx;          /* effective permissions */
    bool dirty;             /* leaf D bit (after setting) */
    bool global;            /* leaf G bit with CR4.PGE: survives CR3 writes */
};

static int64_t fault(unsigned access, bool user, bool present, bool rsvd)
{
    uint32_t e = (present ? X86_PF_P : 0) | (access == X86_ACC_W ? X86_PF_W : 0) |
                 (user ? X86_PF_U : 0) | (rsvd ? X86_PF_RSVD : 0) |
                 (access == X86_ACC_X ? X86_PF_I : 0);
    return (int64_t)e | (1ll << 31);
}

static bool allowed(struct x86_cpu *cpu, const struct walk *w, unsigned access, bool user)
{
    if (user && !w->u)
        return false;
    if (access == X86_ACC_W && !w->w && (user || (cpu->cr0 & X86_CR0_WP)))
        return false;
    if (access == X86_ACC_X && w->nx)
        return false;
    return true;
}

static int64_t walk64(struct x86_cpu *cpu, uint64_t la, unsigned access, bool user,
                      struct walk *w, bool set_ad, int levels)
{
    uint64_t table = cpu->cr3 & ADDR_MASK;
    bool nxe = cpu->efer & X86_EFER_NXE;
    _Atomic uint64_t *ptr[4];
    int n = 0;
    uint64_t e = 0;
    int shift = levels == 4 ? 39 : 30;

    w->w = w->u = true;
    w->nx = false;
    if (levels == 3)
        table = cpu->cr3 & 0xffffffe0ull;
    for (int lvl = levels; lvl >= 1; lvl--, shift -= 9) {
        unsigned idx = (la >> shift) & (lvl == 3 && levels == 3 ? 3 : 511);
        _Atomic uint64_t *p = pte_ptr64(cpu, table + idx * 8);
        if (!p)
            return fault(access, user, false, false);
        e = atomic_load_explicit(p, memory_order_relaxed);
        if (!(e & PTE_P))
            return fault(access, user, false, false);
        if ((e & PTE_NX) && !nxe)
            return fault(access, user, true, true);
        if (!(lvl == 3 && levels == 3)) {       /* PAE PDPTEs carry no R/W, U/S, NX */
            w->w &= !!(e & PTE_W);
            w->u &= !!(e & PTE_U);
            w->nx |= nxe && (e & PTE_NX);
        }
        ptr[n++] = p;
        if (lvl == 1 || ((lvl == 2 || (lvl == 3 && levels == 4)) && (e & PTE_PS))) {
            uint64_t mask = (1ull << shift) - 1;
            w->pa = ((e & ADDR_MASK) & ~mask) | (la & mask);
            break;
        }
        table = e & ADDR_MASK;
    }
    if (!allowed(cpu, w, access, user))
        return fault(access, user, true, false);
    if (set_ad) {
        for (int i = 0; i < n; i++) {
            if (levels == 3 && i == 0)
                continue;
            uint64_t bits = PTE_A | ((i == n - 1 && access == X86_ACC_W) ? PTE_D : 0);
            if ((atomic_load_explicit(ptr[i], memory_order_relaxed) & bits) != bits)
                atomic_fetch_or(ptr[i], bits);
        }
    }
    w->dirty = (e & PTE_D) || (set_ad && access == X86_ACC_W);
    w->global = (e & PTE_G) && (cpu->cr4 & X86_CR4_PGE);
    return 0;
}

static int64_t walk32(struct x86_cpu *cpu, uint64_t la, unsigned access, bool user,
                      struct walk *w, bool set_ad)
{
    uint64_t table = cpu->cr3 & 0xfffff000u;
    _Atomic uint32_t *ptr[2];
    int n = 0;
    uint32_t e = 0;

    w->w = w->u = true;
    w->nx = false;
    for (int lvl = 2; lvl >= 1; lvl--) {
        unsigned idx = (la >> (lvl == 2 ? 22 : 12)) & 1023;
        _Atomic uint32_t *p = pte_ptr32(cpu, table + idx * 4);
        if (!p)
            return fault(access, user, false, false);
        e = atomic_load_explicit(p, memory_order_relaxed);
        if (!(e & PTE_P))
            return fault(access, user, false, false);
        w->w &= !!(e & PTE_W);
        w->u &= !!(e & PTE_U);
        ptr[n++] = p;
        if (lvl == 2 && (e & PTE_PS) && (cpu->cr4 & X86_CR4_PSE)) {
            w->pa = ((uint64_t)(e & 0xffc00000u) | ((uint64_t)(e >> 13) & 0xff) << 32) |
                    (la & 0x3fffff);
            break;
        }
        if (lvl == 1)
            w->pa = (e & 0xfffff000u) | (la & 0xfff);
        table = e & 0xfffff000u;
    }
    if (!allowed(cpu, w, access, user))
        return fault(access, user, true, false);
    if (set_ad) {
        for (int i = 0; i < n; i++) {
            uint32_t bits = PTE_A | ((i == n - 1 && access == X86_ACC_W) ? PTE_D : 0);
            if ((atomic_load_explicit(ptr[i], memory_order_relaxed) & bits) != bits)
                atomic_fetch_or(ptr[i], bits);
        }
    }
    w->dirty = (e & PTE_D) || (set_ad && access == X86_ACC_W);
    w->global = (e & PTE_G) && (cpu->cr4 & X86_CR4_PGE);
    return 0;
}

static int64_t walk(struct x86_cpu *cpu, uint64_t la, unsigned access, bool user,
                    struct walk *w, bool set_ad)
{
    if (!(cpu->cr0 & X86_CR0_PG)) {
        w->pa = la;
        w->w = w->u = w->dirty = true;
        w->nx = w->global = false;
        return 0;
    }
    if (cpu->efer & X86_EFER_LMA)
        return walk64(cpu, la, access, user, w, set_ad, 4);
    if (cpu->cr4 & X86_CR4_PAE)
        return walk64(cpu, (uint32_t)la, access, user, w, set_ad, 3);
    return walk32(cpu, (uint32_t)la, access, user, w, set_ad);
}

int64_t x86_mmu_walk(struct x86_cpu *cpu, uint64_t la, int access, bool user, uint64_t *pa,
                     bool set_ad)
{
    struct walk w;
    int64_t r = walk(cpu, la, access, user, &w, set_ad);
    if (r == 0)
        *pa = w.pa;
    return r;
}

int x86_cpu_translate(struct x86_cpu *cpu, uint64_t va, uint64_t *pa)
{
    return x86_mmu_walk(cpu, va, X86_ACC_R, false, pa, false) == 0 ? 0 : -1;
}

_Noreturn static void page_fault(struct x86_cpu *cpu, uint64_t la, int64_t r)
{
    cpu->cr2 = la;
    x86_raise(cpu, X86_EXC_PF, (uint32_t)(r & 0x7fffffff));
}

/* Translate la for access, filling the TLB. user: the access is made at
 * CPL 3 (implicit supervisor accesses pass false). Returns the entry. */
struct x86_tlb_entry *x86_tlb_fill(struct x86_cpu *cpu, uint64_t la, unsigned access, bool user)
{
    struct walk w;
    int64_t r = walk(cpu, la, access, user, &w, true);
    if (r)
        page_fault(cpu, la, r);
    uint64_t page = la & ~0xfffull, pa = w.pa & ~0xfffull;
    struct x86_tlb_entry *e = tlb_slot(cpu, la, access, user);
    uint8_t *host = cpu->bus.ram_page(cpu->bus.opaque, pa);
    if (!w.global) {
        if (cpu->tlb_nlocal < X86_TLB_LOCAL_MAX)
            cpu->tlb_local[cpu->tlb_nlocal] = page;
        cpu->tlb_nlocal++;
    }
    e->pa = pa;
    e->tag_r = e->tag_w = e->tag_x = X86_TLB_INVALID;
    if (host && access == X86_ACC_X) {
        e->addend = (uintptr_t)host - page;
        e->tag_x = page;
        e->tag_r = page;          /* "is RAM" for the fetch path */
    } else if (host) {
        e->addend = (uintptr_t)host - page;
        e->tag_r = page;
        if (w.dirty && allowed(cpu, &w, X86_ACC_W, user)) {
            _Atomic uint32_t *g = x86_emu_page_gen(cpu->emu, pa, false);
            if (!g || !(atomic_load_explicit(g, memory_order_relaxed) & 1))
                e->tag_w = page;
        }
    } else {
        e->addend = 0;
    }
    return e;
}

/* Physical address for la (one page), faulting as the access would. */
static uint64_t xlate(struct x86_cpu *cpu, uint64_t la, unsigned access, bool *is_ram,
                      uint8_t **host)
{
    bool user = cpu->tlb_user;
    struct x86_tlb_entry *e = tlb_slot(cpu, la, access, user);
    uint64_t page = la & ~0xfffull;
    uint64_t tag = access == X86_ACC_W ? e->tag_w : access == X86_ACC_X ? e->tag_x : e->tag_r;
    if (tag != page) {
        e = x86_tlb_fill(cpu, la, access, user);
        if (access == X86_ACC_W && e->tag_w != page && e->tag_r == page) {
            /* RAM page holding code: store goes through here each time */
            *is_ram = true;
            *host = (uint8_t *)(uintptr_t)(la + e->addend);
            x86_code_written(cpu, e->pa | (la & 0xfff), 1);
            return e->pa | (la & 0xfff);
        }
    }
    *is_ram = e->tag_r == page;
    *host = *is_ram ? (uint8_t *)(uintptr_t)(la + e->addend) : NULL;
    return e->pa | (la & 0xfff);
}

uint64_t x86_read_slow(struct x86_cpu *cpu, uint64_t la, unsigned size)
{
    if (((la & 0xfff) + size) > 4096) {
        uint64_t v = 0;
        for (unsigned i = 0; i < size; i++)
            v |= (uint64_t)x86_read_slow(cpu, la + i, 1) << (8 * i);
        return v;
    }
    bool ram;
    uint8_t *host;
    uint64_t pa = xlate(cpu, la, X86_ACC_R, &ram, &host);
    if (ram) {
        uint64_t v = 0;
        memcpy(&v, host, size);
        return v;
    }
    return cpu->bus.mmio_read(cpu->bus.opaque, pa, size);
}

void x86_write_slow(struct x86_cpu *cpu, uint64_t la, uint64_t val, unsigned size)
{
    if (((la & 0xfff) + size) > 4096) {
        /* probe both pages first so a fault leaves memory untouched */
        bool ram;
        uint8_t *host;
        xlate(cpu, la, X86_ACC_W, &ram, &host);
        xlate(cpu, la + size - 1, X86_ACC_W, &ram, &host);
        for (unsigned i = 0; i < size; i++)
            x86_write_slow(cpu, la + i, val >> (8 * i), 1);
        return;
    }
    bool ram;
    uint8_t *host;
    uint64_t pa = xlate(cpu, la, X86_ACC_W, &ram, &host);
    if (ram) {
        memcpy(host, &val, size);
        /* a page holding code (no write tag) had its generation bumped
         * before the bytes changed; another vCPU that decoded it in between
         * marked it as code again under the old bytes: bump once more */
        if (cpu->tlb[cpu->tlb_user][(la >> 12) & (X86_TLB_SIZE - 1)].tag_w != (la & ~0xfffull))
            x86_code_written(cpu, pa, size);
    } else {
        cpu->bus.mmio_write(cpu->bus.opaque, pa, val, size);
    }
}

uint8_t *x86_host_ptr_w(struct x86_cpu *cpu, uint64_t la, unsigned n)
{
    if (((la & 0xfff) + n) > 4096)
        return NULL;
    const struct x86_tlb_entry *e = &cpu->tlb[cpu->tlb_user][(la >> 12) & (X86_TLB_SIZE - 1)];
    if (X86_LIKELY(e->tag_w == (la & ~0xfffull)))
        return (uint8_t *)(uintptr_t)(la + e->addend);
    bool ram;
    uint8_t *host;
    xlate(cpu, la, X86_ACC_W, &ram, &host);
    /* code page: the caller's store must go through x86_write_slow, which
     * bumps the page's generation again once the bytes are in */
    if (!ram || e->tag_w != (la & ~0xfffull))
        return NULL;
    return host;
}

void x86_read_mem(struct x86_cpu *cpu, uint64_t la, void *buf, unsigned n)
{
    uint8_t *out = buf;
    while (n) {
        unsigned chunk = 4096 - (la & 0xfff);
        if (chunk > n)
            chunk = n;
        bool ram;
        uint8_t *host;
        uint64_t pa = xlate(cpu, la, X86_ACC_R, &ram, &host);
        if (ram)
            memcpy(out, host, chunk);
        else
            for (unsigned i = 0; i < chunk; i++)
                out[i] = (uint8_t)cpu->bus.mmio_read(cpu->bus.opaque, pa + i, 1);
        out += chunk;
        la += chunk;
        n -= chunk;
    }
}

void x86_write_mem(struct x86_cpu *cpu, uint64_t la, const void *buf, unsigned n)
{
    bool ram;
    uint8_t *host;
    if (((la & 0xfff) + n) > 4096) {      /* fault before storing anything */
        for (uint64_t p = la; p < la + n; p = (p & ~0xfffull) + 4096)
            xlate(cpu, p, X86_ACC_W, &ram, &host);
    }
    const uint8_t *in = buf;
    while (n) {
        unsigned chunk = 4096 - (la & 0xfff);
        if (chunk > n)
            chunk = n;
        uint64_t pa = xlate(cpu, la, X86_ACC_W, &ram, &host);
        if (ram)
            memcpy(host, in, chunk);
        else
            for (unsigned i = 0; i < chunk; i++)
                cpu->bus.mmio_write(cpu->bus.opaque, pa + i, in[i], 1);
        in += chunk;
        la += chunk;
        n -= chunk;
    }
}

/* Instruction fetch: physical address of la and the host page (NULL for
 * MMIO). */
uint64_t x86_fetch_xlate(struct x86_cpu *cpu, uint64_t la, uint8_t **host_page)
{
    bool ram;
    uint8_t *host;
    uint64_t pa = xlate(cpu, la, X86_ACC_X, &ram, &host);
    *host_page = ram ? host - (la & 0xfff) : NULL;
    return pa;
}

/* Fetch n bytes of code at la into buf (page-crossing, MMIO). */
void x86_fetch_bytes(struct x86_cpu *cpu, uint64_t la, uint8_t *buf, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        uint8_t *hp;
        uint64_t pa = x86_fetch_xlate(cpu, la + i, &hp);
        buf[i] = hp ? hp[(la + i) & 0xfff] : (uint8_t)cpu->bus.mmio_read(cpu->bus.opaque, pa, 1);
    }
}
