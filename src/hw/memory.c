/* Address spaces. Regions are registered under a mutex; each change builds
 * a new flat map (sorted, non-overlapping spans, each naming the winning
 * region) and publishes it with one atomic store, so vCPUs look up without
 * any lock. Old maps and removed regions are kept until as_free(): changes
 * are rare (boot, PCI BAR moves) and this spares us RCU. */
#include "hw/memory.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "util/mainloop.h"

struct as_span {
    uint64_t start, end;          /* [start, end) */
    const struct mem_region *r;
};

struct as_map {
    int n;
    struct as_map *older;         /* retired maps, freed with the space */
    struct as_span spans[];
};

struct as_node {
    struct mem_region r;
    unsigned seq;                 /* registration order: later wins ties */
    bool live;
    struct as_node *next;
};

struct address_space {
    const char *name;
    struct mainloop *ml;
    pthread_mutex_t lock;
    struct as_node *nodes;
    unsigned seq;
    struct as_map *map;           /* current; read with an acquire load */
    as_ram_write_hook *hook;
    void *hook_opaque;
    as_ram_listener *ram_listener;
    void *ram_listener_opaque;
    as_ioeventfd_fn *ioeventfd;
    void *ioeventfd_opaque;
};

static const struct as_map as_empty = { 0 };

struct address_space *as_new(const char *name, struct mainloop *ml)
{
    struct address_space *as = calloc(1, sizeof(*as));
    if (!as)
        return NULL;
    as->name = name;
    as->ml = ml;
    pthread_mutex_init(&as->lock, NULL);
    as->map = (struct as_map *)&as_empty;
    return as;
}

void as_free(struct address_space *as)
{
    if (!as)
        return;
    struct as_map *m = as->map;
    while (m && m != &as_empty) {
        struct as_map *o = m->older;
        free(m);
        m = o;
    }
    for (struct as_node *n = as->nodes, *x; n; n = x) {
        x = n->next;
        free(n);
    }
    free(as);
}

static bool as_better(const struct as_node *a, const struct as_node *b)
{
    if (!b)
        return true;
    if (a->r.priority != b->r.priority)
        return a->r.priority > b->r.priority;
    return a->seq > b->seq;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Rebuild the flat map from live nodes. as->lock held. */
static int as_rebuild(struct address_space *as)
{
    int nn = 0;
    for (struct as_node *n = as->nodes; n; n = n->next)
        nn += n->live;
    uint64_t *b = malloc(sizeof(uint64_t) * (2 * nn + 1));
    struct as_map *m = malloc(sizeof(*m) + sizeof(struct as_span) * (2 * nn + 1));
    if (!b || !m) {
        free(b);
        free(m);
        return -ENOMEM;
    }
    int nb = 0;
    for (struct as_node *n = as->nodes; n; n = n->next) {
        if (!n->live)
            continue;
        b[nb++] = n->r.base;
        b[nb++] = n->r.base + n->r.size;   /* size never wraps: checked on add */
    }
    qsort(b, nb, sizeof(*b), cmp_u64);
    m->n = 0;
    for (int i = 0; i + 1 < nb; i++) {
        if (b[i] == b[i + 1])
            continue;
        const struct as_node *best = NULL;
        for (struct as_node *n = as->nodes; n; n = n->next)
            if (n->live && n->r.base <= b[i] && b[i] < n->r.base + n->r.size &&
                as_better(n, best))
                best = n;
        if (!best)
            continue;
        struct as_span *prev = m->n ? &m->spans[m->n - 1] : NULL;
        if (prev && prev->r == &best->r && prev->end == b[i]) {
            prev->end = b[i + 1];
            continue;
        }
        m->spans[m->n++] = (struct as_span){ b[i], b[i + 1], &best->r };
    }
    free(b);
    m->older = as->map == &as_empty ? NULL : as->map;
    __atomic_store_n(&as->map, m, __ATOMIC_RELEASE);
    return 0;
}

static int as_add(struct address_space *as, const struct mem_region *r)
{
    if (!r->size || r->base + r->size < r->base)
        return -EINVAL;
    struct as_node *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->r = *r;
    n->live = true;
    pthread_mutex_lock(&as->lock);
    n->seq = ++as->seq;
    n->next = as->nodes;
    as->nodes = n;
    int ret = 0;
    if (r->ram && as->ram_listener)
        ret = as->ram_listener(as->ram_listener_opaque, &n->r, true);
    if (!ret)
        ret = as_rebuild(as);
    if (ret < 0)
        n->live = false;
    pthread_mutex_unlock(&as->lock);
    return ret;
}

int as_add_ram(struct address_space *as, uint64_t base, uint64_t size, void *host, const char *name)
{
    struct mem_region r = { .base = base, .size = size, .ram = host, .name = name };
    return as_add(as, &r);
}

int as_add_io(struct address_space *as, uint64_t base, uint64_t size, const struct mem_ops *ops,
              void *opaque, const char *name, int priority)
{
    struct mem_region r = { .base = base, .size = size, .ops = ops, .opaque = opaque,
                            .name = name, .priority = priority };
    return as_add(as, &r);
}

int as_del(struct address_space *as, uint64_t base, void *opaque)
{
    int ret = -ENOENT;
    pthread_mutex_lock(&as->lock);
    for (struct as_node *n = as->nodes; n; n = n->next) {
        if (n->live && n->r.base == base && n->r.opaque == opaque) {
            n->live = false;
            ret = as_rebuild(as);
            if (n->r.ram && as->ram_listener)
                as->ram_listener(as->ram_listener_opaque, &n->r, false);
            break;
        }
    }
    pthread_mutex_unlock(&as->lock);
    return ret;
}

static const struct as_span *as_find(struct address_space *as, uint64_t addr)
{
    const struct as_map *m = __atomic_load_n(&as->map, __ATOMIC_ACQUIRE);
    int lo = 0, hi = m->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        const struct as_span *s = &m->spans[mid];
        if (addr < s->start)
            hi = mid;
        else if (addr >= s->end)
            lo = mid + 1;
        else
            return s;
    }
    return NULL;
}

const struct mem_region *as_lookup(struct address_space *as, uint64_t addr)
{
    const struct as_span *s = as_find(as, addr);
    return s ? s->r : NULL;
}

int as_regions(struct address_space *as, struct mem_region *out, int max)
{
    pthread_mutex_lock(&as->lock);
    int n = 0;
    for (struct as_node *x = as->nodes; x; x = x->next)
        if (x->live && n < max)
            out[n++] = x->r;
    pthread_mutex_unlock(&as->lock);
    for (int i = 1; i < n; i++)             /* insertion sort by base */
        for (int j = i; j > 0 && out[j - 1].base > out[j].base; j--) {
            struct mem_region t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

static uint64_t size_mask(unsigned size)
{
    return size >= 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}

/* One access entirely inside span s. */
static uint64_t as_read_in(struct address_space *as, const struct as_span *s,
                           uint64_t addr, unsigned size)
{
    const struct mem_region *r = s->r;
    if (r->ram) {
        uint64_t v = 0;
        memcpy(&v, (uint8_t *)r->ram + (addr - r->base), size);
        return v;
    }
    if (!r->ops || !r->ops->read)
        return size_mask(size);
    if (as->ml)
        ml_lock(as->ml);
    uint64_t v = r->ops->read(r->opaque, addr - r->base, size);
    if (as->ml)
        ml_unlock(as->ml);
    return v & size_mask(size);
}

static void as_write_in(struct address_space *as, const struct as_span *s,
                        uint64_t addr, uint64_t val, unsigned size)
{
    const struct mem_region *r = s->r;
    if (r->ram) {
        memcpy((uint8_t *)r->ram + (addr - r->base), &val, size);
        as_ram_written(as, addr, size);
        return;
    }
    if (!r->ops || !r->ops->write)
        return;
    if (as->ml)
        ml_lock(as->ml);
    r->ops->write(r->opaque, addr - r->base, val & size_mask(size), size);
    if (as->ml)
        ml_unlock(as->ml);
}

uint64_t as_read(struct address_space *as, uint64_t addr, unsigned size)
{
    const struct as_span *s = as_find(as, addr);
    if (s && addr + size <= s->end)
        return as_read_in(as, s, addr, size);
    /* Unassigned, or straddling two regions: byte by byte, little endian. */
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++) {
        const struct as_span *b = as_find(as, addr + i);
        uint64_t byte = b ? as_read_in(as, b, addr + i, 1) : 0xff;
        v |= (byte & 0xff) << (8 * i);
    }
    return v;
}

void as_write(struct address_space *as, uint64_t addr, uint64_t value, unsigned size)
{
    const struct as_span *s = as_find(as, addr);
    if (s && addr + size <= s->end) {
        as_write_in(as, s, addr, value, size);
        return;
    }
    for (unsigned i = 0; i < size; i++) {
        const struct as_span *b = as_find(as, addr + i);
        if (b)
            as_write_in(as, b, addr + i, (value >> (8 * i)) & 0xff, 1);
    }
}

void *as_ram_ptr(struct address_space *as, uint64_t gpa, uint64_t len)
{
    const struct as_span *s = as_find(as, gpa);
    if (!s || !s->r->ram || len > s->end - gpa)
        return NULL;
    return (uint8_t *)s->r->ram + (gpa - s->r->base);
}

void *as_ram_ptr_memo(struct address_space *as, struct as_memo *memo, uint64_t gpa, uint64_t len)
{
    /* retired lists live as long as the space, so a list's address is
     * never reused for a newer one */
    const struct as_map *m = __atomic_load_n(&as->map, __ATOMIC_ACQUIRE);
    if (memo->map == m && gpa >= memo->start && gpa < memo->end && len <= memo->end - gpa)
        return memo->host + (gpa - memo->start);
    const struct as_span *s = as_find(as, gpa);
    if (!s || !s->r->ram || len > s->end - gpa)
        return NULL;
    *memo = (struct as_memo){ m, s->start, s->end, (uint8_t *)s->r->ram + (s->start - s->r->base) };
    return memo->host + (gpa - s->start);
}

int as_rw(struct address_space *as, uint64_t gpa, void *buf, uint64_t len, bool is_write)
{
    uint8_t *p = buf;
    while (len) {
        const struct as_span *s = as_find(as, gpa);
        if (!s)
            return -EFAULT;
        uint64_t chunk = s->end - gpa < len ? s->end - gpa : len;
        if (s->r->ram) {
            uint8_t *h = (uint8_t *)s->r->ram + (gpa - s->r->base);
            if (is_write) {
                memcpy(h, p, chunk);
                as_ram_written(as, gpa, chunk);
            } else {
                memcpy(p, h, chunk);
            }
        } else {
            for (uint64_t i = 0; i < chunk; i++) {
                if (is_write)
                    as_write_in(as, s, gpa + i, p[i], 1);
                else
                    p[i] = (uint8_t)as_read_in(as, s, gpa + i, 1);
            }
        }
        p += chunk;
        gpa += chunk;
        len -= chunk;
    }
    return 0;
}

void as_set_ram_write_hook(struct address_space *as, as_ram_write_hook *hook, void *opaque)
{
    as->hook_opaque = opaque;
    __atomic_store_n(&as->hook, hook, __ATOMIC_RELEASE);
}

void as_ram_written(struct address_space *as, uint64_t gpa, uint64_t len)
{
    as_ram_write_hook *h = __atomic_load_n(&as->hook, __ATOMIC_ACQUIRE);
    if (h)
        h(as->hook_opaque, gpa, len);
}

int as_set_ram_listener(struct address_space *as, as_ram_listener *fn, void *opaque)
{
    int ret = 0;
    pthread_mutex_lock(&as->lock);
    as->ram_listener = fn;
    as->ram_listener_opaque = opaque;
    for (struct as_node *n = as->nodes; n && fn && !ret; n = n->next)
        if (n->live && n->r.ram)
            ret = fn(opaque, &n->r, true);
    pthread_mutex_unlock(&as->lock);
    return ret;
}

void as_set_ioeventfd_handler(struct address_space *as, as_ioeventfd_fn *fn, void *opaque)
{
    as->ioeventfd = fn;
    as->ioeventfd_opaque = opaque;
}

int as_ioeventfd(struct address_space *as, uint64_t addr, unsigned len, int fd, bool assign)
{
    if (!as->ioeventfd)
        return -ENOTSUP;
    return as->ioeventfd(as->ioeventfd_opaque, as, addr, len, fd, assign);
}
