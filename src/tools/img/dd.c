/* dd: copy bs-sized blocks from if= to a newly created of=, as qemu-img dd
 * (count= bounds the input end, skip= its start). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "tools/img/img.h"
#include "util/opts.h"

struct dd_args {
    const char *in, *out;
    uint64_t bs, count, skip;
    bool has_count, has_skip;
};

static int dd_arg(struct dd_args *d, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq) {
        error_report("unrecognized operand %s", arg);
        return -1;
    }
    size_t klen = eq - arg;
    const char *v = eq + 1;
    uint64_t n;
    if (!strncmp(arg, "if", klen) && klen == 2) {
        d->in = v;
    } else if (!strncmp(arg, "of", klen) && klen == 2) {
        d->out = v;
    } else if ((klen == 2 && !strncmp(arg, "bs", 2)) || (klen == 5 && !strncmp(arg, "count", 5)) ||
               (klen == 4 && !strncmp(arg, "skip", 4))) {
        if (img_parse_size(v, &n) < 0 || (klen == 2 && (n == 0 || n > INT32_MAX))) {
            error_report("invalid number: '%s'", v);
            return -1;
        }
        if (klen == 2)
            d->bs = n;
        else if (klen == 5)
            d->count = n, d->has_count = true;
        else
            d->skip = n, d->has_skip = true;
    } else {
        error_report("unrecognized operand %s", arg);
        return -1;
    }
    return 0;
}

int img_dd(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' }, { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' }, { NULL, 0, NULL, 0 }
    };
    const char *fmt = NULL, *out_fmt = "raw";
    struct dd_args d = { .bs = 512 };
    int flags = 0, c;
    while ((c = getopt_long(argc, argv, ":hf:O:U", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': img_help(); return 0;
        case 'f': fmt = optarg; break;
        case 'O': out_fmt = optarg; break;
        case 'U': flags |= BDEV_O_FORCE_SHARE; break;
        case OPT_OBJECT: case OPT_IMAGE_OPTS: return img_unsupported_option(c);
        default: return img_bad_option(c, argv[optind - 1]);
        }
    }
    for (int i = optind; i < argc; i++)
        if (dd_arg(&d, argv[i]) < 0)
            return 1;
    if (!d.in || !d.out) {
        error_report("Must specify both input and output files");
        return 1;
    }
    struct bdev *in = img_open(d.in, fmt, flags, false), *out = NULL;
    if (!in)
        return 1;
    int status = 1;
    int64_t size = bdev_getlength(in);
    if (size < 0) {
        error_report("Failed to get size for '%s'", d.in);
        goto end;
    }
    if (d.has_count && d.count <= (uint64_t)INT64_MAX / d.bs && (uint64_t)size > d.count * d.bs)
        size = d.count * d.bs;
    int64_t in_pos = 0;
    if (d.has_skip) {
        if (d.skip > (uint64_t)INT64_MAX / d.bs || (int64_t)(d.skip * d.bs) > size)
            in_pos = size;
        else
            in_pos = d.skip * d.bs;
    }
    struct opts o = { 0 };
    if (img_do_create(d.out, out_fmt, size - in_pos, &o, true) < 0)
        goto end;
    out = img_open(d.out, out_fmt, BDEV_O_RDWR, false);
    if (!out)
        goto end;
    uint8_t *buf = malloc(d.bs);
    int64_t out_pos = 0;
    int ret = buf ? 0 : -ENOMEM;
    while (ret == 0 && in_pos < size) {
        int64_t n = size - in_pos < (int64_t)d.bs ? size - in_pos : (int64_t)d.bs;
        ret = bdev_pread(in, in_pos, buf, n);
        if (ret < 0) {
            error_report("error while reading from input image file: %s", strerror(-ret));
            break;
        }
        in_pos += n;
        ret = bdev_pwrite(out, out_pos, buf, n, 0);
        if (ret < 0) {
            error_report("error while writing to output image file: %s", strerror(-ret));
            break;
        }
        out_pos += n;
        ret = 0;
    }
    free(buf);
    status = ret < 0 ? 1 : 0;
end:
    if (out)
        bdev_close(out);
    bdev_close(in);
    return status;
}
