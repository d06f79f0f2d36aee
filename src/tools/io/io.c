/* quokka-io: the qemu-io subset tests need. Runs each -c command in order
 * against one image opened through the block layer:
 *
 *   quokka-io [-f fmt] [-r] [-n] [-t cache] [-c cmd]... file
 *
 * Commands: read [-P pat] [-v] off len; write [-P pat] [-z [-u]] [-c] off len;
 * discard off len; flush; aio_read/aio_write (same flags) ...; aio_flush;
 * echo text (prints text, so a script can tell how far a run got).
 * Sizes take k/M/G suffixes. Exit status 1 if any command failed. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "block/block.h"
#include "util/opts.h"

struct io_ctx {
    struct bdev *bs;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int inflight;
    int aio_errors;
};

struct io_args {
    int pattern;         /* -1: none */
    bool zero, unmap, compressed, verbose;
    uint64_t off, len;
};

static void human(uint64_t n, char *buf, int len)
{
    format_size(n, buf, len);
}

static void report(const char *what, uint64_t off, uint64_t len, double secs)
{
    char sz[32];
    human(len, sz, sizeof(sz));
    printf("%s %llu/%llu bytes at offset %llu\n", what, (unsigned long long)len,
           (unsigned long long)len, (unsigned long long)off);
    printf("%s, 1 ops; %.4f sec\n", sz, secs);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Split "cmd -x -P 5 off len" into args; returns the command's argc. */
static int split(char *s, char **argv, int max)
{
    int n = 0;
    for (char *t = strtok(s, " \t"); t && n < max; t = strtok(NULL, " \t"))
        argv[n++] = t;
    return n;
}

static int parse_args(int argc, char **argv, struct io_args *a)
{
    memset(a, 0, sizeof(*a));
    a->pattern = -1;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "-P") && i + 1 < argc)
            a->pattern = (int)strtol(argv[++i], NULL, 0);
        else if (!strcmp(f, "-z"))
            a->zero = true;
        else if (!strcmp(f, "-u"))
            a->unmap = true;
        else if (!strcmp(f, "-c"))
            a->compressed = true;
        else if (!strcmp(f, "-v"))
            a->verbose = true;
        else if (!strcmp(f, "-q"))
            ;
        else {
            fprintf(stderr, "%s: invalid option -- '%s'\n", argv[0], f);
            return -EINVAL;
        }
    }
    if (argc - i != 2 || parse_size(argv[i], 1, &a->off) || parse_size(argv[i + 1], 1, &a->len)) {
        fprintf(stderr, "%s: expects offset and length\n", argv[0]);
        return -EINVAL;
    }
    return 0;
}

static int verify(const uint8_t *buf, const struct io_args *a)
{
    if (a->pattern < 0)
        return 0;
    for (uint64_t i = 0; i < a->len; i++) {
        if (buf[i] != (uint8_t)a->pattern) {
            uint64_t j = i;
            while (j < a->len && buf[j] != (uint8_t)a->pattern)
                j++;
            printf("Pattern verification failed at offset %llu, %llu bytes\n",
                   (unsigned long long)(a->off + i), (unsigned long long)(j - i));
            return -EIO;
        }
    }
    return 0;
}

static void dump(const uint8_t *buf, uint64_t off, uint64_t len)
{
    for (uint64_t i = 0; i < len; i += 16) {
        printf("%08llx: ", (unsigned long long)(off + i));
        for (uint64_t j = i; j < i + 16 && j < len; j++)
            printf(" %02x", buf[j]);
        printf("\n");
    }
}

static int do_rw(struct io_ctx *c, const char *cmd, const struct io_args *a, bool write)
{
    uint8_t *buf = malloc(a->len ? a->len : 1);
    if (!buf)
        return -ENOMEM;
    memset(buf, a->pattern < 0 ? 0xcd : a->pattern, a->len);
    double t0 = now();
    int ret;
    if (!write)
        ret = bdev_pread(c->bs, a->off, buf, a->len);
    else if (a->zero)
        ret = bdev_pwrite_zeroes(c->bs, a->off, a->len, a->unmap ? BDEV_REQ_MAY_UNMAP : 0);
    else if (a->compressed)
        ret = bdev_pwrite_compressed(c->bs, a->off, buf, a->len);
    else
        ret = bdev_pwrite(c->bs, a->off, buf, a->len, 0);
    if (ret < 0) {
        printf("%s failed: %s\n", cmd, strerror(-ret));
    } else {
        if (!write && a->verbose)
            dump(buf, a->off, a->len);
        ret = write ? 0 : verify(buf, a);
        if (ret == 0)
            report(write ? "wrote" : "read", a->off, a->len, now() - t0);
    }
    free(buf);
    return ret;
}

struct aio_req {
    struct io_ctx *c;
    struct io_args a;
    bool write;
    uint8_t *buf;
    struct iovec iov;
};

static void aio_done(void *opaque, int ret)
{
    struct aio_req *r = opaque;
    struct io_ctx *c = r->c;
    if (ret == 0 && !r->write)
        ret = verify(r->buf, &r->a);
    pthread_mutex_lock(&c->lock);
    if (ret < 0) {
        printf("aio_%s failed: %s\n", r->write ? "write" : "read", strerror(-ret));
        c->aio_errors++;
    } else {
        report(r->write ? "wrote" : "read", r->a.off, r->a.len, 0);
    }
    fflush(stdout);
    c->inflight--;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    free(r->buf);
    free(r);
}

static int do_aio(struct io_ctx *c, const struct io_args *a, bool write)
{
    struct aio_req *r = calloc(1, sizeof(*r));
    if (!r || !(r->buf = malloc(a->len ? a->len : 1))) {
        free(r);
        return -ENOMEM;
    }
    r->c = c;
    r->a = *a;
    r->write = write;
    memset(r->buf, a->pattern < 0 ? 0xcd : a->pattern, a->len);
    r->iov = (struct iovec){ r->buf, a->len };
    pthread_mutex_lock(&c->lock);
    c->inflight++;
    pthread_mutex_unlock(&c->lock);
    int ret = write ? bdev_aio_pwritev(c->bs, a->off, &r->iov, 1, 0, aio_done, r)
                    : bdev_aio_preadv(c->bs, a->off, &r->iov, 1, aio_done, r);
    if (ret < 0) {
        pthread_mutex_lock(&c->lock);
        c->inflight--;
        pthread_mutex_unlock(&c->lock);
        free(r->buf);
        free(r);
    }
    return ret;
}

static void drain(struct io_ctx *c)
{
    pthread_mutex_lock(&c->lock);
    while (c->inflight)
        pthread_cond_wait(&c->cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
}

static int run_cmd(struct io_ctx *c, const char *line)
{
    char *s = strdup(line), *argv[32];
    if (!s)
        return -ENOMEM;
    int argc = split(s, argv, 32), ret = 0;
    struct io_args a;
    const char *cmd = argc ? argv[0] : "";
    if (!argc) {
        ret = 0;
    } else if (!strcmp(cmd, "echo")) {
        const char *t = line + strspn(line, " \t") + 4;
        printf("%s\n", t + strspn(t, " \t"));
    } else if (!strcmp(cmd, "flush")) {
        ret = bdev_flush(c->bs);
    } else if (!strcmp(cmd, "aio_flush")) {
        drain(c);
        ret = bdev_flush(c->bs);
    } else if (!strcmp(cmd, "read") || !strcmp(cmd, "write")) {
        ret = parse_args(argc, argv, &a);
        if (ret == 0)
            ret = do_rw(c, cmd, &a, cmd[0] == 'w');
    } else if (!strcmp(cmd, "aio_read") || !strcmp(cmd, "aio_write")) {
        ret = parse_args(argc, argv, &a);
        if (ret == 0)
            ret = do_aio(c, &a, cmd[4] == 'w');
    } else if (!strcmp(cmd, "discard")) {
        ret = parse_args(argc, argv, &a);
        if (ret == 0)
            ret = bdev_pdiscard(c->bs, a.off, a.len);
        if (ret == 0)
            printf("discard %llu/%llu bytes at offset %llu\n", (unsigned long long)a.len,
                   (unsigned long long)a.len, (unsigned long long)a.off);
    } else if (!strcmp(cmd, "quit")) {
        ret = 1;
    } else {
        printf("command \"%s\" not found\n", cmd);
        ret = -EINVAL;
    }
    if (ret < 0 && (!strcmp(cmd, "flush") || !strcmp(cmd, "aio_flush")))
        printf("%s failed: %s\n", cmd, strerror(-ret));
    fflush(stdout);
    free(s);
    return ret;
}

static int cache_flags(const char *mode, int *flags)
{
    if (!strcmp(mode, "none"))
        *flags |= BDEV_O_NOCACHE;
    else if (!strcmp(mode, "writethrough"))
        *flags |= BDEV_O_WRITETHROUGH;
    else if (!strcmp(mode, "directsync"))
        *flags |= BDEV_O_NOCACHE | BDEV_O_WRITETHROUGH;
    else if (!strcmp(mode, "unsafe"))
        *flags |= BDEV_O_UNSAFE;
    else if (strcmp(mode, "writeback"))
        return -EINVAL;
    return 0;
}

int main(int argc, char **argv)
{
    const char *fmt = NULL, **cmds = calloc(argc, sizeof(char *));
    int ncmds = 0, flags = BDEV_O_RDWR, opt;
    error_set_progname("quokka-io");
    while ((opt = getopt(argc, argv, "f:rnt:c:U")) != -1) {
        switch (opt) {
        case 'f': fmt = optarg; break;
        case 'r': flags &= ~BDEV_O_RDWR; break;
        case 'n': flags |= BDEV_O_NOCACHE; break;
        case 'U': flags |= BDEV_O_FORCE_SHARE; break;
        case 't':
            if (cache_flags(optarg, &flags) < 0)
                die("Invalid cache option: %s", optarg);
            break;
        case 'c': cmds[ncmds++] = optarg; break;
        default:
            fprintf(stderr, "usage: quokka-io [-f fmt] [-r] [-n] [-t cache] [-c cmd]... file\n");
            return 1;
        }
    }
    if (optind != argc - 1)
        die("Expecting one image file name");
    if (flags & BDEV_O_FORCE_SHARE)
        flags &= ~BDEV_O_RDWR;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct io_ctx c = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
    struct error err = { 0 };
    if (bdev_open_simple(&c.bs, argv[optind], fmt, flags, &err) < 0) {
        error_report_err(&err);
        free(cmds);
        return 1;
    }
    int failed = 0;
    for (int i = 0; i < ncmds; i++) {
        int ret = run_cmd(&c, cmds[i]);
        if (ret == 1)
            break;
        failed |= ret < 0;
    }
    drain(&c);
    failed |= c.aio_errors > 0;
    bdev_close(c.bs);
    free(cmds);
    return failed;
}
