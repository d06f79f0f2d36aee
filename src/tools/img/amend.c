/* amend: change options of an existing image (qcow2: compat, lazy_refcounts,
 * refcount_bits, backing file, size). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "tools/img/img.h"
#include "util/opts.h"

/* What qemu-img lets amend change for qcow2 (the rest is creation-only). */
static const char *const qcow2_amendable[] = {
    "backing_file", "backing_fmt", "compat", "data_file", "data_file_raw",
    "lazy_refcounts", "refcount_bits", "size", NULL
};

static bool in_list(const char *const *l, const char *s)
{
    for (; *l; l++)
        if (!strcmp(*l, s))
            return true;
    return false;
}

static bool creation_opt(const struct block_driver *drv, const char *key)
{
    for (const struct create_opt_desc *d = drv->create_opts; d && d->name; d++)
        if (!strcmp(d->name, key))
            return true;
    return false;
}

int img_amend(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' }, { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force", no_argument, NULL, OPT_FORCE }, { NULL, 0, NULL, 0 }
    };
    const char *fmt = NULL, *cache = NULL;
    char *options = NULL;
    bool quiet = false, force = false, progress = false;
    int c;
    while ((c = getopt_long(argc, argv, ":ho:f:t:pq", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': img_help(); return 0;
        case 'o': {
            char *n = NULL;
            if (options ? asprintf(&n, "%s,%s", options, optarg) < 0 : !(n = strdup(optarg)))
                return 1;
            free(options);
            options = n;
            break;
        }
        case 'f': fmt = optarg; break;
        case 't': cache = optarg; break;
        case 'p': progress = true; break;
        case 'q': quiet = true; break;
        case OPT_FORCE: force = true; break;
        case OPT_OBJECT: case OPT_IMAGE_OPTS: return img_unsupported_option(c);
        default: return img_bad_option(c, argv[optind - 1]);
        }
    }
    if (!options)
        return img_usage_error("Must specify options (-o)");
    bool help = !strcmp(options, "help") || !strcmp(options, "?");
    if (help && optind == argc) {
        const struct block_driver *drv = fmt ? block_driver_find(fmt) : NULL;
        if (!drv) {
            error_report(fmt ? "Unknown file format '%s'" :
                         "Expecting one image file name%s", fmt ? fmt : "");
            return 1;
        }
        if (!drv->amend) {
            error_report("Format driver '%s' does not support option amendment", fmt);
            return 1;
        }
        char title[64];
        snprintf(title, sizeof(title), "Amend options for '%s':\n", fmt);
        img_print_opts_help(drv, title, qcow2_amendable);
        return 0;
    }
    if (optind != argc - 1)
        return img_usage_error("Expecting one image file name");
    int flags = BDEV_O_RDWR | BDEV_O_NO_BACKING;
    if (cache && img_parse_cache(cache, &flags) < 0)
        return 1;
    struct bdev *bs = img_open(argv[optind], fmt, flags, quiet);
    if (!bs)
        return 1;
    int status = 1;
    struct opts o = { 0 };
    struct error err = { 0 };
    const struct block_driver *drv = bs->drv;
    if (!drv->amend) {
        error_report("Format driver '%s' does not support option amendment", drv->name);
        goto out;
    }
    if (help) {
        char title[64];
        snprintf(title, sizeof(title), "Amend options for '%s':\n", drv->name);
        img_print_opts_help(drv, title, qcow2_amendable);
        status = 0;
        goto out;
    }
    if (opts_parse(&o, options, NULL, &err) < 0) {
        error_report_err(&err);
        goto out;
    }
    for (int i = 0; i < o.n; i++) {
        if (!in_list(qcow2_amendable, o.v[i].key) || !creation_opt(drv, o.v[i].key)) {
            error_report("Invalid parameter '%s'", o.v[i].key);
            if (creation_opt(drv, o.v[i].key))
                fprintf(stderr, "This option is only supported for image creation\n");
            goto out;
        }
    }
    /* The driver reports no intermediate progress: the bar shows start and end. */
    progress_init(progress && !quiet);
    progress_update(0, 1);
    int ret = drv->amend(bs, &o, force, &err);
    if (ret >= 0)
        progress_update(1, 1);
    progress_end();
    if (ret < 0 || opts_check_unused(&o, &err) < 0) {
        error_report_err(&err);
        goto out;
    }
    status = 0;
out:
    opts_free(&o);
    free(options);
    bdev_close(bs);
    return status;
}
