/* compare: are two images' contents equal? Exit 0 identical, 1 different,
 * 2 could not open, 3 block status failed, 4 read failed (as qemu-img). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "tools/img/img.h"
#include "util/iov.h"

#define CMP_BUF (2 << 20)

/* Length of the leading run of equal (or unequal, *differ) 512-byte sectors. */
static int64_t same_run(const uint8_t *a, const uint8_t *b, int64_t len, bool *differ)
{
    int64_t n = len < 512 ? len : 512;
    *differ = memcmp(a, b, n) != 0;
    int64_t pos = n;
    while (pos < len) {
        n = len - pos < 512 ? len - pos : 512;
        if ((memcmp(a + pos, b + pos, n) != 0) != *differ)
            break;
        pos += n;
    }
    return pos;
}

/* Reports the first sector that isn't zero; returns 0, 1 (mismatch) or 4. */
static int check_empty(struct bdev *bs, int64_t off, int64_t len, const char *name,
                       uint8_t *buf, bool quiet)
{
    int ret = bdev_pread(bs, off, buf, len);
    if (ret < 0) {
        error_report("Error while reading offset %" PRId64 " of %s: %s", off, name, strerror(-ret));
        return 4;
    }
    for (int64_t pos = 0; pos < len; pos += 512) {
        int64_t n = len - pos < 512 ? len - pos : 512;
        if (!buffer_is_zero(buf + pos, n)) {
            if (!quiet)
                printf("Content mismatch at offset %" PRId64 "!\n", off + pos);
            return 1;
        }
    }
    return 0;
}

struct cmp {
    struct bdev *bs[2];
    const char *name[2];
    int64_t size[2];
    uint8_t *buf[2];
    bool strict, quiet;
};

static int cmp_status(struct cmp *c, int i, int64_t off, int64_t len, uint64_t *pnum)
{
    int depth;
    int st = bdev_block_status_above(c->bs[i], off, len, pnum, NULL, NULL, &depth);
    if (st < 0)
        error_report("Sector allocation test failed for %s", c->name[i]);
    return st;
}

static int cmp_common(struct cmp *c, int64_t total)
{
    for (int64_t off = 0; off < total; ) {
        uint64_t p1 = 0, p2 = 0;
        int s1 = cmp_status(c, 0, off, c->size[0] - off, &p1);
        int s2 = s1 < 0 ? s1 : cmp_status(c, 1, off, c->size[1] - off, &p2);
        if (s1 < 0 || s2 < 0)
            return 3;
        if (!p1 || !p2)
            return 3;
        int64_t chunk = p1 < p2 ? p1 : p2;
        if (chunk > total - off)
            chunk = total - off;
        if (c->strict && s1 != s2) {
            if (!c->quiet)
                printf("Strict mode: Offset %" PRId64 " block status mismatch!\n", off);
            return 1;
        }
        if ((s1 & BDEV_STATUS_ZERO) && (s2 & BDEV_STATUS_ZERO)) {
            /* both read as zeroes; one known zero: only the other is read */
        } else if (!((s1 | s2) & BDEV_STATUS_ZERO)) {
            chunk = chunk < CMP_BUF ? chunk : CMP_BUF;
            for (int i = 0; i < 2; i++) {
                int ret = bdev_pread(c->bs[i], off, c->buf[i], chunk);
                if (ret < 0) {
                    error_report("Error while reading offset %" PRId64 " of %s: %s", off,
                                 c->name[i], strerror(-ret));
                    return 4;
                }
            }
            bool differ;
            int64_t run = same_run(c->buf[0], c->buf[1], chunk, &differ);
            if (differ || run != chunk) {
                if (!c->quiet)
                    printf("Content mismatch at offset %" PRId64 "!\n", off + (differ ? 0 : run));
                return 1;
            }
        } else {
            chunk = chunk < CMP_BUF ? chunk : CMP_BUF;
            int i = (s1 & BDEV_STATUS_ZERO) ? 1 : 0;
            int ret = check_empty(c->bs[i], off, chunk, c->name[i], c->buf[0], c->quiet);
            if (ret)
                return ret;
        }
        off += chunk;
        progress_update(off, total);
    }
    return 0;
}

/* The tail of the longer image must read as zeroes. */
static int cmp_tail(struct cmp *c, int64_t total)
{
    int i = c->size[0] > c->size[1] ? 0 : 1;
    if (!c->quiet)
        printf("Warning: Image size mismatch!\n");
    for (int64_t off = total; off < c->size[i]; ) {
        uint64_t pnum = 0;
        int st = cmp_status(c, i, off, c->size[i] - off, &pnum);
        if (st < 0 || !pnum)
            return 3;
        int64_t chunk = pnum;
        if (!(st & BDEV_STATUS_ZERO)) {
            chunk = chunk < CMP_BUF ? chunk : CMP_BUF;
            int ret = check_empty(c->bs[i], off, chunk, c->name[i], c->buf[0], c->quiet);
            if (ret)
                return ret;
        }
        off += chunk;
    }
    return 0;
}

int img_compare(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' }, { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' }, { NULL, 0, NULL, 0 }
    };
    const char *fmt1 = NULL, *fmt2 = NULL;
    struct cmp c = { 0 };
    int flags = 0, ch;
    bool progress = false;
    while ((ch = getopt_long(argc, argv, ":hf:F:T:pqsU", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h': img_help(); return 0;
        case 'f': fmt1 = optarg; break;
        case 'F': fmt2 = optarg; break;
        case 'T': if (img_parse_cache(optarg, &flags) < 0) return 2; break;
        case 'p': progress = true; break;
        case 'q': c.quiet = true; break;
        case 's': c.strict = true; break;
        case 'U': flags |= BDEV_O_FORCE_SHARE; break;
        case OPT_OBJECT: case OPT_IMAGE_OPTS: img_unsupported_option(ch); return 2;
        default: img_bad_option(ch, argv[optind - 1]); return 2;
        }
    }
    if (optind != argc - 2) {
        img_usage_error("Expecting two image file names");
        return 2;
    }
    c.name[0] = argv[optind];
    c.name[1] = argv[optind + 1];
    int ret = 2;
    if (!(c.bs[0] = img_open(c.name[0], fmt1, flags, c.quiet)) ||
        !(c.bs[1] = img_open(c.name[1], fmt2, flags, c.quiet)))
        goto out;
    for (int i = 0; i < 2; i++) {
        c.size[i] = bdev_getlength(c.bs[i]);
        if (c.size[i] < 0) {
            error_report("Can't get size of %s: %s", c.name[i], strerror((int)-c.size[i]));
            ret = 4;
            goto out;
        }
        c.buf[i] = malloc(CMP_BUF);
    }
    if (c.strict && c.size[0] != c.size[1]) {
        if (!c.quiet)
            printf("Strict mode: Image size mismatch!\n");
        ret = 1;
        goto out;
    }
    int64_t total = c.size[0] < c.size[1] ? c.size[0] : c.size[1];
    progress_init(progress && !c.quiet);
    ret = cmp_common(&c, total);
    if (ret == 0 && c.size[0] != c.size[1])
        ret = cmp_tail(&c, total);
    progress_end();
    if (ret == 0 && !c.quiet)
        printf("Images are identical.\n");
out:
    for (int i = 0; i < 2; i++) {
        if (c.bs[i])
            bdev_close(c.bs[i]);
        free(c.buf[i]);
    }
    return ret;
}
