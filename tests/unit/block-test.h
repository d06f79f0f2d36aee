/* Small helpers shared by the block layer unit tests: a scratch directory,
 * file creation and a byte pattern that differs per offset. */
#ifndef QUOKKA_TESTS_BLOCK_TEST_H
#define QUOKKA_TESTS_BLOCK_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char bt_dir[256];

/* Make a fresh scratch directory; bt_path() names files inside it. */
static inline int bt_setup(void **state)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(bt_dir, sizeof(bt_dir), "%s/quokka-block.XXXXXX", tmp ? tmp : "/tmp");
    return mkdtemp(bt_dir) ? 0 : -1;
}

static inline int bt_teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bt_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static inline const char *bt_path(const char *name)
{
    static char buf[4][300];
    static int turn;
    char *p = buf[turn++ & 3];
    snprintf(p, 300, "%s/%s", bt_dir, name);
    return p;
}

/* Byte at image offset off in pattern `seed`: never the same for nearby
 * offsets or different seeds, so misplaced data shows. */
static inline uint8_t bt_byte(uint64_t off, int seed)
{
    uint64_t x = off * 0x9E3779B97F4A7C15ULL + (uint64_t)seed * 0xBF58476D1CE4E5B9ULL;
    return (uint8_t)(x >> 56) | 1;   /* never zero: zero means "not written" */
}

static inline void bt_fill(uint8_t *buf, uint64_t off, size_t len, int seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = bt_byte(off + i, seed);
}

/* Index of the first byte that differs from the pattern, or -1. */
static inline long bt_check(const uint8_t *buf, uint64_t off, size_t len, int seed)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != bt_byte(off + i, seed))
            return (long)i;
    return -1;
}

static inline int bt_is_zero(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i])
            return 0;
    return 1;
}

/* Write a whole host file directly (bypassing the block layer). */
static inline void bt_write_file(const char *path, const void *data, size_t len, off_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (len && fwrite(data, 1, len, f) != len)
        abort();
    fclose(f);
    if (size > (off_t)len && truncate(path, size) != 0)
        abort();
}

#endif
