/* What the test guest's checks share: console output, results, PCI
 * configuration space, the TSC. All of it runs at CPL3. */
#ifndef TESTGUEST_GUEST_H
#define TESTGUEST_GUEST_H

#include <stdint.h>

void putc_(char c);
void puts_(const char *s);
/* "ok WHAT" or "FAIL WHAT" (counted). */
void result(int ok, const char *what);
uint32_t pci_read(int bus, int dev, int fn, int off);
void pci_write(int bus, int dev, int fn, int off, uint32_t v);
/* a starts with b. */
int str_eq(const char *a, const char *b);
void check_virtio_blk(void);
void check_virtio_net(void);
/* The number after "key=" on the kernel command line, or def. */
uint64_t cmdline_num(const char *key, uint64_t def);
void blkbench(uint64_t mib, uint64_t req_kib, uint64_t depth);

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

#endif
