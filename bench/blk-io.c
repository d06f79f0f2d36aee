/* Guest side of bench/blk.sh: O_DIRECT I/O on a block device, timed in the
 * guest. Built static on the host and carried into the guest on a disk.
 *   blk-io seqwrite|seqread|randwrite|randread DEV MIB_OR_OPS
 * Prints "RESULT <mode> <bytes> <seconds>". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    const char *mode = argv[1];
    long n = atol(argv[3]);
    int wr = strstr(mode, "write") != NULL, rnd = !strncmp(mode, "rand", 4);
    int fd = open(argv[2], (wr ? O_RDWR : O_RDONLY) | O_DIRECT);
    if (fd < 0) {
        perror(argv[2]);
        return 1;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    size_t bs = rnd ? 4096 : 1 << 20;
    long ops = rnd ? n : n;                      /* seq: n MiB, rand: n operations */
    void *buf;
    if (posix_memalign(&buf, 4096, bs))
        return 1;
    memset(buf, 0x5a, bs);
    uint64_t x = 88172645463325252ULL;
    double t0 = now();
    for (long i = 0; i < ops; i++) {
        off_t off;
        if (rnd) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            off = (off_t)(x % (uint64_t)(size / 4096)) * 4096;
        } else {
            off = (off_t)((i * (off_t)bs) % size);
        }
        ssize_t r = wr ? pwrite(fd, buf, bs, off) : pread(fd, buf, bs, off);
        if (r != (ssize_t)bs) {
            perror("io");
            return 1;
        }
    }
    if (wr)
        fsync(fd);
    double t = now() - t0;
    printf("RESULT %s %ld %.3f\n", mode, ops * (long)bs, t);
    return 0;
}
