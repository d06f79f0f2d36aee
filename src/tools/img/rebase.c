/* rebase: point an image at a new backing file. Safe mode first copies into
 * the image every range it doesn't allocate where old and new backing
 * differ, so its contents stay the same; -u only rewrites the header. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "tools/img/img.h"

#define REBASE_BUF (1 << 20)

/* Read [off, off+len) of bs (NULL: no backing) into buf; past its end is zero. */
static int read_or_zero(struct bdev *bs, int64_t size, int64_t off, uint8_t *buf, int64_t len)
{
    int64_t n = bs && off < size ? (size - off < len ? size - off : len) : 0;
    memset(buf + n, 0, len - n);
    return n ? bdev_pread(bs, off, buf, n) : 0;
}

static int rebase_copy(struct bdev *bs, struct bdev *old, struct bdev *new, bool progress)
{
    int64_t size = bdev_getlength(bs);
    int64_t old_size = old ? bdev_getlength(old) : 0, new_size = new ? bdev_getlength(new) : 0;
    uint8_t *a = malloc(REBASE_BUF), *b = malloc(REBASE_BUF);
    int ret = a && b ? 0 : -ENOMEM;
    progress_init(progress);
    for (int64_t off = 0; ret == 0 && off < size; ) {
        uint64_t pnum = 0;
        int64_t len = size - off < REBASE_BUF ? size - off : REBASE_BUF;
        int st = bdev_block_status(bs, off, len, &pnum, NULL, NULL);
        if (st < 0 || !pnum) {
            ret = st < 0 ? st : -EIO;
            break;
        }
        if (!(st & BDEV_STATUS_ALLOCATED)) {
            ret = read_or_zero(old, old_size, off, a, pnum);
            if (ret >= 0)
                ret = read_or_zero(new, new_size, off, b, pnum);
            /* write back only the differing 512-byte sectors */
            for (int64_t pos = 0; ret >= 0 && pos < (int64_t)pnum; ) {
                int64_t n = (int64_t)pnum - pos < 512 ? (int64_t)pnum - pos : 512;
                if (!memcmp(a + pos, b + pos, n)) {
                    pos += n;
                    continue;
                }
                int64_t run = n;
                while (pos + run < (int64_t)pnum) {
                    int64_t m = (int64_t)pnum - pos - run < 512 ? (int64_t)pnum - pos - run : 512;
                    if (!memcmp(a + pos + run, b + pos + run, m))
                        break;
                    run += m;
                }
                ret = bdev_pwrite(bs, off + pos, a + pos, run, 0);
                pos += run;
            }
        }
        off += pnum;
        progress_update(off, size);
    }
    progress_end();
    free(a);
    free(b);
    return ret < 0 ? ret : 0;
}

int img_rebase(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' }, { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' }, { NULL, 0, NULL, 0 }
    };
    const char *fmt = NULL, *out_base = NULL, *out_fmt = NULL, *cache = NULL;
    bool quiet = false, unsafe = false, progress = false, force_share = false;
    int c;
    while ((c = getopt_long(argc, argv, ":hf:F:b:upt:T:qU", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': img_help(); return 0;
        case 'f': fmt = optarg; break;
        case 'F': out_fmt = optarg; break;
        case 'b': out_base = optarg; break;
        case 'u': unsafe = true; break;
        case 'p': progress = true; break;
        case 't': cache = optarg; break;
        case 'q': quiet = true; break;
        case 'U': force_share = true; break;
        case 'T': case OPT_OBJECT: case OPT_IMAGE_OPTS: return img_unsupported_option(c);
        default: return img_bad_option(c, argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return img_usage_error("Expecting one image file name");
    if (!out_base)
        return img_usage_error("Must specify backing file (-b) or use '-b \"\"'");
    const char *filename = argv[optind];
    int flags = BDEV_O_RDWR | (unsafe ? BDEV_O_NO_BACKING : 0);
    if (cache && img_parse_cache(cache, &flags) < 0)
        return 1;
    struct bdev *bs = img_open(filename, fmt, flags, quiet), *nb = NULL;
    if (!bs)
        return 1;
    int status = 1, ret;
    if (!*out_base)
        out_base = NULL;
    if (!unsafe) {
        if (out_base) {
            char *path = img_full_backing_name(filename, out_base);
            nb = img_open(path, out_fmt, force_share ? BDEV_O_FORCE_SHARE : 0, quiet);
            free(path);
            if (!nb)
                goto out;
            if (!out_fmt)
                out_fmt = bdev_format_name(nb);
        }
        ret = rebase_copy(bs, bdev_backing(bs), nb, progress && !quiet);
        if (ret < 0) {
            error_report("Error while rebasing: %s", strerror(-ret));
            goto out;
        }
    } else if (out_base && !out_fmt) {
        error_report("Could not change the backing file to '%s': backing format must be specified",
                     out_base);
        goto out;
    }
    ret = bs->drv->change_backing_file ? bs->drv->change_backing_file(bs, out_base, out_fmt)
                                       : -ENOTSUP;
    if (ret == -ENOSPC) {
        error_report("Could not change the backing file to '%s': No space left in the file header",
                     out_base ? out_base : "");
        goto out;
    } else if (ret < 0) {
        error_report("Could not change the backing file to '%s': %s", out_base ? out_base : "",
                     strerror(-ret));
        goto out;
    }
    status = 0;
out:
    if (nb)
        bdev_close(nb);
    bdev_close(bs);
    return status;
}
