/* convert: copy one or more images (concatenated) into a new image.
 *
 * A pool of -m worker threads takes the source in fixed, aligned chunks
 * (handing one out is a counter bump under the lock). Each worker asks the
 * source which parts of its chunk hold data, reads them, and writes them;
 * reads always run in parallel, writes go out in source order unless -W (so
 * the target is laid out sequentially, as qemu-img does). Compressed
 * targets are written out of order on purpose: the compression inside each
 * write then runs on every core at once. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "tools/img/img.h"
#include "util/iov.h"
#include "util/opts.h"

enum { PIECE_DATA, PIECE_ZERO, PIECE_BACKING };
enum { MAX_PIECES = 512 };

struct cvt {
    struct bdev **src;
    int64_t *src_size;
    int nsrc;
    int64_t total;
    struct bdev *dst;
    bool compressed, zero_init, target_has_backing, in_order;
    uint64_t min_sparse, chunk, cluster;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    int64_t next_off;         /* next source byte to hand out */
    uint64_t next_seq, write_seq;
    int ret;
    int64_t done;
};

/* One run of a chunk whose status is uniform, in target offsets. */
struct piece {
    int64_t off, len;
    int kind;
};

struct item {
    int64_t off, len;         /* in the concatenated source = target offsets */
    uint64_t seq;
    struct piece p[MAX_PIECES];
    int n;
};

/* Hand out the next chunk (lock held); false when done or failed. */
static bool cvt_next(struct cvt *s, struct item *it)
{
    if (s->ret < 0 || s->next_off >= s->total)
        return false;
    it->off = s->next_off;
    it->len = s->chunk - (it->off % s->chunk);
    if (it->len > s->total - it->off)
        it->len = s->total - it->off;
    it->seq = s->next_seq++;
    s->next_off = it->off + it->len;
    return true;
}

static void add_piece(struct item *it, int64_t off, int64_t len, int kind)
{
    struct piece *last = it->n ? &it->p[it->n - 1] : NULL;
    if (last && last->kind == kind && last->off + last->len == off) {
        last->len += len;
    } else if (it->n == MAX_PIECES) {   /* too fragmented: copy the rest */
        last->len = off + len - last->off;
        last->kind = PIECE_DATA;
    } else {
        it->p[it->n++] = (struct piece){ off, len, kind };
    }
}

/* A compressed write covers whole clusters: a cluster is zero or backing
 * only if all of it is, else it is data (read whole, through the chain). */
static void round_to_clusters(struct cvt *s, struct item *it)
{
    struct piece in[MAX_PIECES];
    int n = it->n, k = 0;
    memcpy(in, it->p, n * sizeof(in[0]));
    it->n = 0;
    for (int64_t c = it->off; c < it->off + it->len; c += s->cluster) {
        int64_t ce = c + (int64_t)s->cluster, end = it->off + it->len;
        if (ce > end)
            ce = end;
        while (k < n && in[k].off + in[k].len <= c)
            k++;
        int kind = in[k].kind;
        for (int j = k; j < n && in[j].off < ce; j++)
            if (in[j].kind != kind)
                kind = PIECE_DATA;
        add_piece(it, c, ce - c, kind);
    }
}

/* Split the chunk into runs by block status (-S 0: all of it is data). */
static int cvt_plan(struct cvt *s, struct item *it)
{
    it->n = 0;
    if (!s->min_sparse && !s->target_has_backing && !s->compressed) {
        add_piece(it, it->off, it->len, PIECE_DATA);
        return 0;
    }
    int64_t off = it->off, end = it->off + it->len, base = 0;
    int i = 0;
    while (off < end) {
        while (off >= base + s->src_size[i])
            base += s->src_size[i++];
        int64_t n = end - off, left = base + s->src_size[i] - off;
        if (n > left)
            n = left;
        uint64_t pnum = 0;
        int st, depth;
        /* with -B only the source's top layer is copied: the rest is the
         * target's backing file */
        if (s->target_has_backing)
            st = bdev_block_status(s->src[i], off - base, n, &pnum, NULL, NULL);
        else
            st = bdev_block_status_above(s->src[i], off - base, n, &pnum, NULL, NULL, &depth);
        if (st < 0) {
            error_report("error while reading block status at offset %lld: %s",
                         (long long)off, strerror(-st));
            return st;
        }
        if (!pnum || (int64_t)pnum > n)
            pnum = n;
        int kind = (st & BDEV_STATUS_ZERO) ? PIECE_ZERO : (st & BDEV_STATUS_DATA) ? PIECE_DATA :
                   s->target_has_backing ? PIECE_BACKING : PIECE_DATA;
        add_piece(it, off, pnum, kind);
        off += pnum;
    }
    if (s->compressed)
        round_to_clusters(s, it);
    return 0;
}

static int read_src(struct cvt *s, int64_t off, void *buf, int64_t len)
{
    int64_t base = 0;
    int i = 0;
    while (len > 0) {
        while (off >= base + s->src_size[i])
            base += s->src_size[i++];
        int64_t n = base + s->src_size[i] - off;
        if (n > len)
            n = len;
        int ret = bdev_pread(s->src[i], off - base, buf, n);
        if (ret < 0) {
            error_report("error while reading at byte %lld: %s", (long long)off, strerror(-ret));
            return ret;
        }
        off += n, len -= n, buf = (char *)buf + n;
    }
    return 0;
}

static int write_zero(struct cvt *s, int64_t off, int64_t len)
{
    if (s->zero_init || len <= 0)
        return 0;
    return bdev_pwrite_zeroes(s->dst, off, len, BDEV_REQ_MAY_UNMAP);
}

/* Write buf, leaving runs of at least min_sparse zero bytes unwritten (or
 * written as zeroes when the target isn't known to read as zero). */
static int write_sparse(struct cvt *s, int64_t off, const uint8_t *buf, int64_t len)
{
    if (!s->min_sparse)
        return bdev_pwrite(s->dst, off, buf, len, 0);
    int64_t pos = 0;
    while (pos < len) {
        int64_t step = s->min_sparse - ((off + pos) % s->min_sparse);
        if (step > len - pos)
            step = len - pos;
        bool zero = buffer_is_zero(buf + pos, step);
        int64_t run = step;
        while (pos + run < len) {
            int64_t n = s->min_sparse < (uint64_t)(len - pos - run) ? (int64_t)s->min_sparse :
                        len - pos - run;
            if (buffer_is_zero(buf + pos + run, n) != zero)
                break;
            run += n;
        }
        int ret = zero ? write_zero(s, off + pos, run) :
                         bdev_pwrite(s->dst, off + pos, buf + pos, run, 0);
        if (ret < 0)
            return ret;
        pos += run;
    }
    return 0;
}

static int write_compressed(struct cvt *s, int64_t off, const uint8_t *buf, int64_t len)
{
    for (int64_t pos = 0; pos < len; pos += s->cluster) {
        int64_t n = len - pos < (int64_t)s->cluster ? len - pos : (int64_t)s->cluster;
        int ret;
        if (buffer_is_zero(buf + pos, n))
            ret = write_zero(s, off + pos, n);
        else
            ret = bdev_pwrite_compressed(s->dst, off + pos, buf + pos, n);
        if (ret < 0)
            return ret;
    }
    return 0;
}

static int cvt_write(struct cvt *s, const struct item *it, const uint8_t *buf)
{
    for (int k = 0; k < it->n; k++) {
        const struct piece *p = &it->p[k];
        const uint8_t *data = buf + (p->off - it->off);
        int ret = p->kind == PIECE_BACKING ? 0 :
                  p->kind == PIECE_ZERO ? write_zero(s, p->off, p->len) :
                  s->compressed ? write_compressed(s, p->off, data, p->len) :
                  write_sparse(s, p->off, data, p->len);
        if (ret < 0) {
            error_report("error while writing at byte %lld: %s", (long long)p->off,
                         strerror(-ret));
            return ret;
        }
    }
    return 0;
}

static int cvt_read(struct cvt *s, struct item *it, uint8_t *buf)
{
    int ret = cvt_plan(s, it);
    for (int k = 0; ret == 0 && k < it->n; k++)
        if (it->p[k].kind == PIECE_DATA)
            ret = read_src(s, it->p[k].off, buf + (it->p[k].off - it->off), it->p[k].len);
    return ret;
}

static void *cvt_worker(void *opaque)
{
    struct cvt *s = opaque;
    uint8_t *buf = NULL;
    struct item *it = malloc(sizeof(*it));
    if (!it || posix_memalign((void **)&buf, 4096, s->chunk)) {
        free(it);
        return NULL;
    }
    pthread_mutex_lock(&s->lock);
    while (cvt_next(s, it)) {
        pthread_mutex_unlock(&s->lock);
        int ret = cvt_read(s, it, buf);
        pthread_mutex_lock(&s->lock);
        while (s->in_order && s->write_seq != it->seq && s->ret == 0)
            pthread_cond_wait(&s->cond, &s->lock);
        bool failed = s->ret < 0;
        pthread_mutex_unlock(&s->lock);
        if (ret == 0 && !failed)
            ret = cvt_write(s, it, buf);
        pthread_mutex_lock(&s->lock);
        if (ret < 0 && s->ret == 0)
            s->ret = ret;
        s->write_seq++;
        s->done += it->len;
        progress_update(s->done, s->total);
        if (s->in_order)
            pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    free(buf);
    free(it);
    return NULL;
}

static int cvt_run(struct cvt *s, int nthreads)
{
    pthread_t th[64];
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (nthreads > 64)
        nthreads = 64;
    int started = 0;
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&th[started], NULL, cvt_worker, s) == 0)
            started++;
    if (!started)
        cvt_worker(s);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    return s->ret;
}

struct cvt_args {
    const char *fmt, *out_fmt, *out_base, *base_fmt, *cache, *src_cache;
    char *options;
    bool compress, progress, quiet, no_create, target_is_zero, force_share, unordered;
    int64_t min_sparse;
    int parallel;
};

static int cvt_parse(int argc, char **argv, struct cvt_args *a)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' }, { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "target-image-opts", no_argument, NULL, OPT_TARGET_IMAGE_OPTS },
        { "target-is-zero", no_argument, NULL, OPT_TARGET_IS_ZERO },
        { "salvage", no_argument, NULL, OPT_SALVAGE }, { "bitmaps", no_argument, NULL, OPT_BITMAPS },
        { "force-share", no_argument, NULL, 'U' }, { NULL, 0, NULL, 0 }
    };
    int c;
    while ((c = getopt_long(argc, argv, ":hf:O:B:Cco:l:S:pt:T:qnm:WUr:F:", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': img_help(); exit(0);
        case 'f': a->fmt = optarg; break;
        case 'O': a->out_fmt = optarg; break;
        case 'B': a->out_base = optarg; break;
        case 'F': a->base_fmt = optarg; break;
        case 'c': a->compress = true; break;
        case 'o': {
            char *n = NULL;
            if (a->options ? asprintf(&n, "%s,%s", a->options, optarg) < 0 : !(n = strdup(optarg)))
                return 1;
            free(a->options);
            a->options = n;
            break;
        }
        case 'S': {
            uint64_t v;
            if (img_parse_size(optarg, &v) < 0 || v > INT32_MAX / 512 * 512 ||
                (v % 512 && v)) {
                error_report("Invalid buffer size for sparse output specified. Valid sizes are "
                             "multiples of 512 up to 2147483136.");
                return 1;
            }
            a->min_sparse = v;
            break;
        }
        case 'p': a->progress = true; break;
        case 't': a->cache = optarg; break;
        case 'T': a->src_cache = optarg; break;
        case 'q': a->quiet = true; break;
        case 'n': a->no_create = true; break;
        case 'm': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 64) {
                error_report("Invalid number of coroutines. Allowed number of coroutines is "
                             "between 1 and 64");
                return 1;
            }
            a->parallel = v;
            break;
        }
        case 'W': a->unordered = true; break;
        case 'U': a->force_share = true; break;
        case OPT_TARGET_IS_ZERO: a->target_is_zero = true; break;
        case 'l':
            /* reading an internal snapshot in place needs a driver entry
             * point the block layer doesn't offer yet: refuse, never ignore */
            error_report("Failed to load snapshot: converting from an internal snapshot (-l) "
                         "is not supported");
            return 1;
        case 'C': case 'r': case OPT_OBJECT: case OPT_IMAGE_OPTS:
        case OPT_TARGET_IMAGE_OPTS: case OPT_SALVAGE: case OPT_BITMAPS:
            return img_unsupported_option(c);
        default: return img_bad_option(c, argv[optind - 1]);
        }
    }
    return 0;
}

/* Create the target (unless -n) and open it; NULL on error (reported). */
static struct bdev *cvt_target(struct cvt_args *a, const char *out, int64_t size, bool *has_backing)
{
    struct opts o = { 0 };
    struct error err = { 0 };
    if (a->options && opts_parse(&o, a->options, NULL, &err) < 0) {
        error_report_err(&err);
        return NULL;
    }
    if (a->out_base) {
        o.v = realloc(o.v, (o.n + 2) * sizeof(*o.v));
        o.v[o.n++] = (struct opt){ strdup("backing_file"), strdup(a->out_base), false };
        if (a->base_fmt)
            o.v[o.n++] = (struct opt){ strdup("backing_fmt"), strdup(a->base_fmt), false };
    }
    for (int i = 0; i < o.n; i++)
        if (!strcmp(o.v[i].key, "backing_file"))
            *has_backing = true;
    if (!a->no_create && img_do_create(out, a->out_fmt, size, &o, true) < 0) {
        opts_free(&o);
        return NULL;
    }
    opts_free(&o);
    int flags = BDEV_O_RDWR | BDEV_O_UNSAFE;
    if (a->cache && img_parse_cache(a->cache, &flags) < 0)
        return NULL;
    struct bdev *dst = img_open(out, a->out_fmt, flags, a->quiet);
    if (dst && a->no_create && bdev_backing_filename(dst))
        *has_backing = true;
    return dst;
}

int img_convert(int argc, char **argv)
{
    struct cvt_args a = { .out_fmt = "raw", .min_sparse = 4096, .parallel = 8 };
    if (cvt_parse(argc, argv, &a))
        return 1;
    if (a.options && (!strcmp(a.options, "help") || !strcmp(a.options, "?"))) {
        const struct block_driver *drv = block_driver_find(a.out_fmt);
        if (!drv) {
            error_report("Unknown file format '%s'", a.out_fmt);
            return 1;
        }
        char title[64];
        snprintf(title, sizeof(title), "Supported %s options:\n", a.out_fmt);
        img_print_opts_help(drv, title, NULL);
        printf("\nThe protocol level may support further options.\n"
               "Specify the target filename to include those options.\n");
        return 0;
    }
    if (argc - optind < 2)
        return img_usage_error("Expecting image file name");
    const struct block_driver *odrv = block_driver_find(a.out_fmt);
    if (!odrv) {
        error_report("Unknown file format '%s'", a.out_fmt);
        return 1;
    }
    if (a.compress && !odrv->pwrite_compressed) {
        error_report("Compression not supported for this file format");
        return 1;
    }
    struct cvt s = { .nsrc = argc - optind - 1, .compressed = a.compress,
                     .min_sparse = a.min_sparse };
    const char *out = argv[argc - 1];
    s.src = calloc(s.nsrc, sizeof(*s.src));
    s.src_size = calloc(s.nsrc, sizeof(*s.src_size));
    int src_flags = a.force_share ? BDEV_O_FORCE_SHARE : 0, status = 1;
    if (a.src_cache && img_parse_cache(a.src_cache, &src_flags) < 0)
        goto out;
    for (int i = 0; i < s.nsrc; i++) {
        s.src[i] = img_open(argv[optind + i], a.fmt, src_flags, a.quiet);
        if (!s.src[i])
            goto out;
        s.src_size[i] = bdev_getlength(s.src[i]);
        if (s.src_size[i] < 0) {
            error_report("Could not get size of %s: %s", argv[optind + i],
                         strerror((int)-s.src_size[i]));
            goto out;
        }
        s.total += s.src_size[i];
    }
    s.dst = cvt_target(&a, out, s.total, &s.target_has_backing);
    if (!s.dst)
        goto out;
    if (a.no_create && bdev_getlength(s.dst) < s.total) {
        error_report("Error: Output image too small");   /* qemu-img's words */
        goto out;
    }
    struct bdev_info bi = { 0 };
    if (s.dst->drv->get_info && s.dst->drv->get_info(s.dst, &bi) == 0 && bi.format_specific)
        json_object_put(bi.format_specific);
    s.cluster = bi.cluster_size ? bi.cluster_size : 65536;
    /* chunks of whole target clusters; compressed ones smaller so that
     * every worker has clusters to compress */
    s.chunk = s.compressed ? (s.cluster < (1u << 20) ? 1u << 20 : s.cluster) :
              (s.cluster > (2u << 20) ? s.cluster : 2u << 20);
    s.zero_init = a.target_is_zero || (!a.no_create && !s.target_has_backing);
    s.target_has_backing = s.target_has_backing && a.out_base;
    s.in_order = !a.unordered && !s.compressed;
    progress_init(a.progress && !a.quiet);
    int ret = cvt_run(&s, a.parallel);
    if (ret == 0)
        ret = bdev_flush(s.dst);
    progress_end();
    status = ret < 0 ? 1 : 0;
out:
    if (s.dst)
        bdev_close(s.dst);
    for (int i = 0; i < s.nsrc; i++)
        if (s.src[i])
            bdev_close(s.src[i]);
    free(s.src);
    free(s.src_size);
    free(a.options);
    return status;
}
