/* bench: keep -d requests of -s bytes in flight until -c have completed,
 * stepping through the image by -S, and time the run (qemu-img bench).
 * Each completion submits the next request from the completion thread, so
 * the main thread only waits for the end. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tools/img/img.h"

struct bench {
    struct bdev *bs;
    bool write;
    int64_t image_size, offset;
    uint64_t bufsize, step;
    int count, submitted, done, flush_interval, since_flush;
    bool drain;
    int ret;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

struct bench_slot {
    struct bench *b;
    struct iovec iov;
};

static void bench_cb(void *opaque, int ret);

/* Called with b->lock held; returns false when nothing is left to send. */
static bool bench_next(struct bench *b, int64_t *off)
{
    if (b->submitted >= b->count || b->ret < 0)
        return false;
    *off = b->offset;
    b->submitted++;
    b->offset += b->step;
    if (b->image_size <= (int64_t)b->bufsize)
        b->offset = 0;
    else
        b->offset %= b->image_size - b->bufsize;
    return true;
}

static void bench_submit(struct bench_slot *s, int64_t off)
{
    struct bench *b = s->b;
    int ret = b->write ? bdev_aio_pwritev(b->bs, off, &s->iov, 1, 0, bench_cb, s)
                       : bdev_aio_preadv(b->bs, off, &s->iov, 1, bench_cb, s);
    if (ret < 0)
        bench_cb(s, ret);
}

static void bench_cb(void *opaque, int ret)
{
    struct bench_slot *s = opaque;
    struct bench *b = s->b;
    int64_t off;
    pthread_mutex_lock(&b->lock);
    if (ret < 0 && b->ret == 0) {
        b->ret = ret;
        error_report("Failed request: %s", strerror(-ret));
    }
    b->done++;
    bool flush = false;
    if (b->flush_interval && ++b->since_flush >= b->flush_interval) {
        b->since_flush = 0;
        flush = true;
    }
    bool more = bench_next(b, &off);
    pthread_mutex_unlock(&b->lock);
    if (flush)
        bdev_flush(b->bs);
    if (more) {
        bench_submit(s, off);
        return;
    }
    pthread_mutex_lock(&b->lock);
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static int parse_int(const char *s, const char *what, long min, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || *end || v < min || v > INT32_MAX) {
        error_report("Invalid %s specified", what);
        return -1;
    }
    *out = v;
    return 0;
}

int img_bench(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' }, { "flush-interval", required_argument, NULL, OPT_FLUSH_INTERVAL },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "pattern", required_argument, NULL, OPT_PATTERN },
        { "no-drain", no_argument, NULL, OPT_NO_DRAIN },
        { "force-share", no_argument, NULL, 'U' }, { NULL, 0, NULL, 0 }
    };
    struct bench b = { .count = 75000, .bufsize = 4096, .drain = true };
    const char *fmt = NULL;
    long depth = 64, v, pattern = 0;
    uint64_t u, offset = 0, step = 0;
    int flags = 0, c;
    bool quiet = false;
    while ((c = getopt_long(argc, argv, ":hc:d:f:ni:o:qs:S:t:wU", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': img_help(); return 0;
        case 'c': if (parse_int(optarg, "request count", 1, &v)) return 1; b.count = v; break;
        case 'd': if (parse_int(optarg, "queue depth", 1, &depth)) return 1; break;
        case 'f': fmt = optarg; break;
        case 'n': flags |= BDEV_O_NOCACHE; break;
        case 'i':
            if (!strcmp(optarg, "threads")) {
                flags |= BDEV_O_AIO_THREADS;
            } else if (strcmp(optarg, "native") && strcmp(optarg, "io_uring")) {
                error_report("Invalid aio option: %s", optarg);
                return 1;
            }
            break;
        case 'o':
            if (img_parse_size(optarg, &offset) < 0) {
                error_report("Invalid offset specified");
                return 1;
            }
            break;
        case 'q': quiet = true; break;
        case 's':
            if (img_parse_size(optarg, &u) < 0 || !u || u > INT32_MAX) {
                error_report("Invalid buffer size specified");
                return 1;
            }
            b.bufsize = u;
            break;
        case 'S':
            if (img_parse_size(optarg, &step) < 0 || step > INT32_MAX) {
                error_report("Invalid step size specified");
                return 1;
            }
            break;
        case 't': if (img_parse_cache(optarg, &flags) < 0) return 1; break;
        case 'w': b.write = true; flags |= BDEV_O_RDWR; break;
        case 'U': flags |= BDEV_O_FORCE_SHARE; break;
        case OPT_PATTERN: if (parse_int(optarg, "pattern byte", 0, &pattern) || pattern > 255) return 1; break;
        case OPT_FLUSH_INTERVAL: if (parse_int(optarg, "flush interval", 0, &v)) return 1; b.flush_interval = v; break;
        case OPT_NO_DRAIN: b.drain = false; break;
        case OPT_IMAGE_OPTS: return img_unsupported_option(c);
        default: return img_bad_option(c, argv[optind - 1]);
        }
    }
    (void)quiet;
    if (optind != argc - 1)
        return img_usage_error("Expecting one image file name");
    if (b.flush_interval && b.flush_interval < depth) {
        error_report("Flush interval can't be smaller than depth");
        return 1;
    }
    if (b.flush_interval && !b.write) {
        error_report("--flush-interval is only available in write tests");
        return 1;
    }
    b.bs = img_open(argv[optind], fmt, flags, quiet);
    if (!b.bs)
        return 1;
    b.image_size = bdev_getlength(b.bs);
    b.step = step ? step : b.bufsize;
    b.offset = offset;
    if (depth > b.count)
        depth = b.count;
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);
    struct bench_slot *slots = calloc(depth, sizeof(*slots));
    for (long i = 0; i < depth; i++) {
        void *buf;
        if (posix_memalign(&buf, 4096, b.bufsize))
            return 1;
        memset(buf, (int)pattern, b.bufsize);
        slots[i] = (struct bench_slot){ &b, { buf, b.bufsize } };
    }
    printf("Sending %d %s requests, %llu bytes each, %ld in parallel (starting at offset %llu, "
           "step size %llu)\n", b.count, b.write ? "write" : "read", (unsigned long long)b.bufsize,
           depth, (unsigned long long)offset, (unsigned long long)b.step);
    if (b.flush_interval)
        printf("Sending flush every %d requests\n", b.flush_interval);
    fflush(stdout);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < depth; i++) {
        int64_t off;
        pthread_mutex_lock(&b.lock);
        bool more = bench_next(&b, &off);
        pthread_mutex_unlock(&b.lock);
        if (more)
            bench_submit(&slots[i], off);
    }
    pthread_mutex_lock(&b.lock);
    while (b.done < b.submitted || (b.submitted < b.count && b.ret == 0))
        pthread_cond_wait(&b.cond, &b.lock);
    pthread_mutex_unlock(&b.lock);
    if (b.write && b.ret == 0)
        bdev_flush(b.bs);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("Run completed in %3.3f seconds.\n",
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    bdev_close(b.bs);
    for (long i = 0; i < depth; i++)
        free(slots[i].iov.iov_base);
    free(slots);
    return b.ret < 0 ? 1 : 0;
}
