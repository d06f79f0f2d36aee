/* resize: grow or (with --shrink) shrink an image; "+N"/"-N" are relative. */
#include <getopt.h>
#include <string.h>
#include "tools/img/img.h"

int img_resize(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' }, { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "preallocation", required_argument, NULL, OPT_PREALLOC },
        { "shrink", no_argument, NULL, OPT_SHRINK }, { NULL, 0, NULL, 0 }
    };
    const char *fmt = NULL, *prealloc = NULL;
    bool quiet = false, shrink = false;
    int c;
    /* "-1G" would look like an option: qemu-img takes the size off first. */
    const char *size_arg = argc > 1 ? argv[argc - 1] : NULL;
    if (size_arg && size_arg[0] == '-' && size_arg[1] >= '0' && size_arg[1] <= '9')
        argc--;
    else
        size_arg = NULL;
    while ((c = getopt_long(argc, argv, ":f:hq", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': img_help(); return 0;
        case 'f': fmt = optarg; break;
        case 'q': quiet = true; break;
        case OPT_PREALLOC: prealloc = optarg; break;
        case OPT_SHRINK: shrink = true; break;
        case OPT_OBJECT: case OPT_IMAGE_OPTS: return img_unsupported_option(c);
        default: return img_bad_option(c, argv[optind - 1]);
        }
    }
    if (!size_arg) {
        if (optind != argc - 2)
            return img_usage_error("Expecting image file name and size");
        size_arg = argv[argc - 1];
    } else if (optind != argc - 1) {
        return img_usage_error("Expecting image file name and size");
    }
    const char *filename = argv[optind];
    int rel = 0;
    if (size_arg[0] == '+' || size_arg[0] == '-')
        rel = size_arg[0] == '+' ? 1 : -1, size_arg++;
    uint64_t n;
    if (img_parse_size(size_arg, &n) < 0) {
        error_report("Invalid size specified.");
        return 1;
    }
    struct bdev *bs = img_open(filename, fmt, BDEV_O_RDWR, quiet);
    if (!bs)
        return 1;
    int64_t cur = bdev_getlength(bs);
    int64_t want = rel > 0 ? cur + (int64_t)n : rel < 0 ? cur - (int64_t)n : (int64_t)n;
    int status = 1;
    if (cur < 0) {
        error_report("Could not get image size: %s", strerror((int)-cur));
    } else if (want < 0) {
        error_report("New image size must be positive");
    } else if (want < cur && !shrink) {
        error_report("Use the --shrink option to perform a shrink operation.");
        warn_report("Shrinking an image will delete all data beyond the shrunken image's end. "
                    "Before performing such an operation, make sure there is no important "
                    "data there.");
    } else {
        struct error err = { 0 };
        int ret = bdev_truncate(bs, want, shrink, prealloc, &err);
        if (ret < 0) {
            if (err.msg[0])
                error_report_err(&err);
            else
                error_report("%s", strerror(-ret));
        } else {
            if (!quiet)
                printf("Image resized.\n");
            status = 0;
        }
    }
    bdev_close(bs);
    return status;
}
