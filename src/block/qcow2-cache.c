/* qcow2 metadata cache: one-cluster tables (L2 tables, refcount blocks) kept
 * in memory in their on-disk (big-endian) form, found by a small hash and
 * evicted by the clock algorithm. A dirty table is written only after the
 * cache it depends on has been written and the file node synced, which is
 * how refcount updates reach the disk before the L2 entries using them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "block/qcow2.h"

int qcow2_cache_init(struct qcow2_cache *c, int n, size_t table_size)
{
    memset(c, 0, sizeof(*c));
    c->n = n;
    c->table_size = table_size;
    c->nbuckets = n * 2 + 1;
    c->e = calloc(n, sizeof(*c->e));
    c->buckets = malloc(c->nbuckets * sizeof(int));
    if (posix_memalign((void **)&c->mem, 4096, (size_t)n * table_size))
        c->mem = NULL;
    if (!c->e || !c->buckets || !c->mem) {
        qcow2_cache_destroy(c);
        return -ENOMEM;
    }
    for (int i = 0; i < c->nbuckets; i++)
        c->buckets[i] = -1;
    for (int i = 0; i < n; i++)
        c->e[i].hash_next = -1;
    return 0;
}

void qcow2_cache_destroy(struct qcow2_cache *c)
{
    free(c->e);
    free(c->buckets);
    free(c->mem);
    c->e = NULL;
    c->buckets = NULL;
    c->mem = NULL;
}

static int bucket_of(struct qcow2_cache *c, uint64_t offset)
{
    uint64_t k = offset / c->table_size;
    return (int)(((k * 0x9e3779b97f4a7c15ull) >> 20) % (uint64_t)c->nbuckets);
}

static void *table_at(struct qcow2_cache *c, int i)
{
    return c->mem + (size_t)i * c->table_size;
}

static int lookup(struct qcow2_cache *c, uint64_t offset)
{
    for (int i = c->buckets[bucket_of(c, offset)]; i >= 0; i = c->e[i].hash_next)
        if (c->e[i].offset == offset)
            return i;
    return -1;
}

bool qcow2_cache_has(struct qcow2_cache *c, uint64_t offset)
{
    return lookup(c, offset) >= 0;
}

static void unhash(struct qcow2_cache *c, int i)
{
    int *p = &c->buckets[bucket_of(c, c->e[i].offset)];
    while (*p >= 0 && *p != i)
        p = &c->e[*p].hash_next;
    if (*p == i)
        *p = c->e[i].hash_next;
    c->e[i].hash_next = -1;
    c->e[i].offset = 0;
    c->e[i].dirty = false;
}

static void rehash(struct qcow2_cache *c, int i, uint64_t offset)
{
    int b = bucket_of(c, offset);
    c->e[i].offset = offset;
    c->e[i].hash_next = c->buckets[b];
    c->buckets[b] = i;
}

static bool any_dirty(struct qcow2_cache *c)
{
    for (int i = 0; i < c->n; i++)
        if (c->e[i].dirty)
            return true;
    return false;
}

/* Make the dependency durable before a table of c is written. */
static int flush_dependency(struct qcow2_state *s, struct qcow2_cache *c)
{
    if (!c->depends)
        return 0;
    int ret = qcow2_cache_flush(s, c->depends);
    if (ret < 0)
        return ret;
    /* Also orders guest data before the L2 entries that point to it. */
    return qcow2_barrier(s);
}

static int write_entry(struct qcow2_state *s, struct qcow2_cache *c, int i)
{
    int ret = bdev_pwrite(s->bs->file, c->e[i].offset, table_at(c, i), c->table_size, 0);
    if (ret < 0)
        return ret;
    c->e[i].dirty = false;
    return 0;
}

int qcow2_cache_flush(struct qcow2_state *s, struct qcow2_cache *c)
{
    if (!any_dirty(c))
        return 0;
    int ret = flush_dependency(s, c);
    if (ret < 0)
        return ret;
    for (int i = 0; i < c->n; i++) {
        if (c->e[i].dirty) {
            ret = write_entry(s, c, i);
            if (ret < 0)
                return ret;
        }
    }
    return 0;
}

/* Pick a free or evictable slot (writing it back if dirty). */
static int find_victim(struct qcow2_state *s, struct qcow2_cache *c, int *out)
{
    for (int pass = 0; pass < 2 * c->n + 1; pass++) {
        int i = c->clock;
        c->clock = (c->clock + 1) % c->n;
        struct qcow2_cache_entry *e = &c->e[i];
        if (e->ref)
            continue;
        if (e->offset && e->used_recently) {
            e->used_recently = false;
            continue;
        }
        if (e->dirty) {
            int ret = flush_dependency(s, c);
            if (ret == 0)
                ret = write_entry(s, c, i);
            if (ret < 0)
                return ret;
        }
        if (e->offset)
            unhash(c, i);
        *out = i;
        return 0;
    }
    return -ENOSPC;   /* every slot in use: a caller leaked a reference */
}

static int get(struct qcow2_state *s, struct qcow2_cache *c, uint64_t offset, void **table,
               bool read)
{
    int i = lookup(c, offset);
    if (i < 0) {
        int ret = find_victim(s, c, &i);
        if (ret < 0)
            return ret;
        if (read) {
            ret = bdev_pread(s->bs->file, offset, table_at(c, i), c->table_size);
            if (ret < 0)
                return ret;
        }
        rehash(c, i, offset);
    }
    c->e[i].ref++;
    c->e[i].used_recently = true;
    *table = table_at(c, i);
    return 0;
}

int qcow2_cache_get(struct qcow2_state *s, struct qcow2_cache *c, uint64_t offset, void **table)
{
    return get(s, c, offset, table, true);
}

int qcow2_cache_get_empty(struct qcow2_state *s, struct qcow2_cache *c, uint64_t offset,
                          void **table)
{
    return get(s, c, offset, table, false);
}

static int index_of(struct qcow2_cache *c, const void *table)
{
    return (int)(((const uint8_t *)table - c->mem) / c->table_size);
}

void qcow2_cache_put(struct qcow2_cache *c, void **table)
{
    int i = index_of(c, *table);
    if (c->e[i].ref > 0)
        c->e[i].ref--;
    *table = NULL;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, void *table)
{
    c->e[index_of(c, table)].dirty = true;
}

void qcow2_cache_discard(struct qcow2_cache *c, uint64_t offset)
{
    int i = lookup(c, offset);
    if (i >= 0 && c->e[i].ref == 0)
        unhash(c, i);
    else if (i >= 0)
        c->e[i].dirty = false;
}

void qcow2_cache_empty(struct qcow2_cache *c)
{
    for (int i = 0; i < c->n; i++)
        if (c->e[i].offset && c->e[i].ref == 0)
            unhash(c, i);
}
