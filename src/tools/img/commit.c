/* commit: write the data of the top image (and any layers above -b base)
 * into the base, then empty the top unless -d (or -b, which implies it). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "tools/img/img.h"

#define COMMIT_BUF (2 << 20)

static bool same_file(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/* Copy everything allocated above depth base_depth from top into base. */
static int commit_copy(struct bdev *top, struct bdev *base, int base_depth, bool progress)
{
    int64_t size = bdev_getlength(top);
    uint8_t *buf = malloc(COMMIT_BUF);
    int ret = buf ? 0 : -ENOMEM;
    progress_init(progress);
    for (int64_t off = 0; ret == 0 && off < size; ) {
        uint64_t pnum = 0;
        int depth = 0;
        int64_t len = size - off < COMMIT_BUF ? size - off : COMMIT_BUF;
        int st = bdev_block_status_above(top, off, len, &pnum, NULL, NULL, &depth);
        if (st < 0 || !pnum) {
            ret = st < 0 ? st : -EIO;
            break;
        }
        if (depth < base_depth) {
            if (st & BDEV_STATUS_ZERO) {
                ret = bdev_pwrite_zeroes(base, off, pnum, BDEV_REQ_MAY_UNMAP);
            } else {
                ret = bdev_pread(top, off, buf, pnum);
                if (ret >= 0)
                    ret = bdev_pwrite(base, off, buf, pnum, 0);
            }
        }
        off += pnum;
        progress_update(off, size);
    }
    progress_end();
    free(buf);
    if (ret >= 0)
        ret = bdev_flush(base);
    return ret < 0 ? ret : 0;
}

int img_commit(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' }, { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS }, { NULL, 0, NULL, 0 }
    };
    const char *fmt = NULL, *base_name = NULL, *cache = NULL;
    bool quiet = false, drop = false, progress = false;
    int c;
    while ((c = getopt_long(argc, argv, ":f:ht:b:dpqr:", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': img_help(); return 0;
        case 'f': fmt = optarg; break;
        case 't': cache = optarg; break;
        case 'b': base_name = optarg; drop = true; break;   /* -b implies -d */
        case 'd': drop = true; break;
        case 'p': progress = true; break;
        case 'q': quiet = true; break;
        case 'r': case OPT_OBJECT: case OPT_IMAGE_OPTS: return img_unsupported_option(c);
        default: return img_bad_option(c, argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return img_usage_error("Expecting one image file name");
    int flags = BDEV_O_RDWR | BDEV_O_NO_LOCK;
    if (cache && img_parse_cache(cache, &flags) < 0)
        return 1;
    struct bdev *top = img_open(argv[optind], fmt, flags, quiet), *base = NULL, *node;
    if (!top)
        return 1;
    int depth = 1, status = 1;
    /* qemu-img resolves -b relative to the directory of each image in turn */
    for (struct bdev *parent = top; (node = bdev_backing(parent)); parent = node, depth++) {
        if (!base_name)
            break;
        char *cand = img_full_backing_name(bdev_filename(parent), base_name);
        bool hit = cand && same_file(cand, bdev_filename(node));
        free(cand);
        if (hit)
            break;
    }
    if (!bdev_backing(top)) {
        error_report("Image does not have a backing file");
        goto out;
    }
    if (!node) {
        error_report("Did not find '%s' in the backing chain of '%s'", base_name, argv[optind]);
        goto out;
    }
    /* The chain holds the base read-only; write through a node of our own. */
    base = img_open(bdev_filename(node), bdev_format_name(node), flags, quiet);
    if (!base)
        goto out;
    struct error err = { 0 };
    if (bdev_getlength(base) < bdev_getlength(top) &&
        bdev_truncate(base, bdev_getlength(top), false, NULL, &err) < 0) {
        error_report("Top image is larger than base image, and base image could not be resized: %s",
                     err.msg);
        goto out;
    }
    int ret = commit_copy(top, base, depth, progress && !quiet);
    if (ret < 0) {
        error_report("Block job failed: %s", strerror(-ret));
        goto out;
    }
    if (!drop && top->drv->make_empty) {
        ret = top->drv->make_empty(top);
        if (ret < 0) {
            error_report("Could not empty %s: %s", argv[optind], strerror(-ret));
            goto out;
        }
    }
    if (!quiet)
        printf("Image committed.\n");
    status = 0;
out:
    if (base)
        bdev_close(base);
    bdev_close(top);
    return status;
}
