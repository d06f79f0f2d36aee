/* create: make a new image, printing qemu-img's "Formatting ..." line. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "tools/img/img.h"
#include "util/opts.h"

/* The order (and defaults) in which qemu-img lists a format's options. */
struct fmt_print {
    const char *name;
    const char *def;        /* printed when the user gave none */
    bool numeric;           /* printed as the parsed number */
};

static const struct fmt_print qcow2_print[] = {
    { "cluster_size", "65536", true }, { "extended_l2", "off" }, { "preallocation" },
    { "compression_type", "zlib" }, { "size" }, { "compat" }, { "backing_file" },
    { "backing_fmt" }, { "data_file" }, { "data_file_raw" }, { "encryption" },
    { "lazy_refcounts", "off" }, { "refcount_bits", "16", true }, { NULL }
};
static const struct fmt_print raw_print[] = { { "size" }, { "preallocation" }, { NULL } };

static bool img_opt_known(const struct block_driver *drv, const char *key)
{
    if (!strcmp(key, "size"))
        return true;
    for (const struct create_opt_desc *d = drv->create_opts; d && d->name; d++)
        if (!strcmp(d->name, key))
            return true;
    return false;
}

static int desc_cmp(const void *a, const void *b)
{
    return strcmp(((const struct create_opt_desc *)a)->name,
                  ((const struct create_opt_desc *)b)->name);
}

static const char *type_text(const char *type)
{
    return !strcmp(type, "bool") ? "bool (on/off)" : type;
}

/* `-o help`: the format's options, sorted, as qemu-img lists them. With
 * `only` non-NULL, just those names (amend). */
void img_print_opts_help(const struct block_driver *drv, const char *title,
                         const char *const *only)
{
    struct create_opt_desc all[64];
    int n = 0;
    bool has_size = false;
    for (const struct create_opt_desc *d = drv->create_opts; d && d->name && n < 63; d++) {
        bool keep = !only;
        for (int i = 0; only && only[i]; i++)
            keep |= !strcmp(only[i], d->name);
        if (keep)
            all[n++] = *d;
        has_size |= !strcmp(d->name, "size");
    }
    if (!has_size)
        all[n++] = (struct create_opt_desc){ "size", "size", "Virtual disk size" };
    qsort(all, n, sizeof(all[0]), desc_cmp);
    printf("%s", title);
    for (int i = 0; i < n; i++) {
        char head[128];
        snprintf(head, sizeof(head), "  %s=<%s>", all[i].name, type_text(all[i].type));
        printf("%s%*s - %s\n", head, (int)(strlen(head) < 24 ? 24 - strlen(head) : 0), "",
               all[i].help ? all[i].help : "");
    }
}

static void print_formatting(const char *filename, const char *fmt, uint64_t size,
                             struct opts *o)
{
    const struct fmt_print *list = !strcmp(fmt, "qcow2") ? qcow2_print :
                                   !strcmp(fmt, "raw") ? raw_print : NULL;
    printf("Formatting '%s', fmt=%s", filename, fmt);
    if (!list) {
        printf(" size=%llu", (unsigned long long)size);
        for (int i = 0; i < o->n; i++)
            if (strcmp(o->v[i].key, "size"))
                printf(" %s=%s", o->v[i].key, o->v[i].value ? o->v[i].value : "on");
        printf("\n");
        return;
    }
    for (; list->name; list++) {
        if (!strcmp(list->name, "size")) {
            printf(" size=%llu", (unsigned long long)size);
            continue;
        }
        const char *v = NULL;
        for (int i = 0; i < o->n; i++)
            if (!strcmp(o->v[i].key, list->name))
                v = o->v[i].value ? o->v[i].value : "on";
        if (!v)
            v = list->def;
        if (!v)
            continue;
        uint64_t num;
        if (list->numeric && parse_size(v, 1, &num) == 0)
            printf(" %s=%llu", list->name, (unsigned long long)num);
        else
            printf(" %s=%s", list->name, v);
    }
    printf("\n");
}

/* Replace or add key=value in o (for -b/-F, which qemu-img folds into -o). */
static void opts_put(struct opts *o, const char *key, const char *value)
{
    for (int i = 0; i < o->n; i++) {
        if (!strcmp(o->v[i].key, key)) {
            free(o->v[i].value);
            o->v[i].value = strdup(value);
            return;
        }
    }
    o->v = realloc(o->v, (o->n + 1) * sizeof(*o->v));
    o->v[o->n++] = (struct opt){ strdup(key), strdup(value), false };
}

static const char *opts_peek(const struct opts *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->v[i].key, key))
            return o->v[i].value ? o->v[i].value : "on";
    return NULL;
}

static bool opts_wants_help(const char *s)
{
    return !strcmp(s, "help") || !strcmp(s, "?") || strstr(s, ",help") ||
           !strncmp(s, "help,", 5);
}

/* Shared with convert: create FILENAME of format FMT with -o options in o
 * (consumed), size SIZE. Reports errors prefixed by the file name. */
int img_do_create(const char *filename, const char *fmt, uint64_t size, struct opts *o,
                  bool quiet)
{
    const struct block_driver *drv = block_driver_find(fmt);
    struct error err = { 0 };
    if (!drv) {
        error_report("%s: Unknown file format '%s'", filename, fmt);
        return -EINVAL;
    }
    if (!drv->create) {
        error_report("%s: Format driver '%s' does not support image creation", filename, fmt);
        return -ENOTSUP;
    }
    for (int i = 0; i < o->n; i++) {
        if (!img_opt_known(drv, o->v[i].key)) {
            error_report("%s: Invalid parameter '%s'", filename, o->v[i].key);
            return -EINVAL;
        }
    }
    if (!quiet) {
        print_formatting(filename, fmt, size, o);
        fflush(stdout);
    }
    opts_get(o, "size");
    int ret = drv->create(filename, size, o, &err);
    if (ret >= 0 && opts_check_unused(o, &err) < 0)
        ret = -EINVAL;
    if (ret < 0) {
        if (!err.msg[0])
            snprintf(err.msg, sizeof(err.msg), "%s", strerror(-ret));
        error_report("%s: %s", filename, err.msg);
    }
    return ret;
}

static int size_error(void)
{
    error_report("Invalid image size specified. You may use k, M, G, T, P or E suffixes for");
    error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
    return 1;
}

/* Open the backing file to check it and learn its size, as qemu-img does
 * unless -u. Returns 0 or 1 (reported). */
static int check_backing(const char *filename, struct opts *o, bool unsafe, bool have_size,
                         uint64_t *size)
{
    const char *bf = opts_peek(o, "backing_file");
    const char *bfmt = opts_peek(o, "backing_fmt");
    if (!bf)
        return 0;
    char *path = img_full_backing_name(filename, bf);
    int ret = 0;
    if (!bfmt) {
        error_report("%s: Backing file specified without backing format", filename);
        if (!unsafe) {
            struct bdev *b = NULL;
            struct error err = { 0 };
            if (bdev_open_simple(&b, path, NULL, BDEV_O_NO_BACKING | BDEV_O_FORCE_SHARE, &err) == 0) {
                fprintf(stderr, "Detected format of %s.", bdev_format_name(b));  /* sic */
                bdev_close(b);
            }
        }
        ret = 1;
    } else if (!unsafe || !have_size) {
        struct bdev *b = NULL;
        struct error err = { 0 };
        if (bdev_open_simple(&b, path, bfmt, BDEV_O_FORCE_SHARE, &err) < 0) {
            if (unsafe) {
                error_report("%s: Image creation needs a size parameter", filename);
            } else {
                error_report("%s: %s", filename, err.msg[0] ? err.msg : strerror(-err.code));
                fprintf(stderr, "Could not open backing image.\n");
            }
            ret = 1;
        } else {
            if (!have_size)
                *size = bdev_getlength(b);
            bdev_close(b);
        }
    }
    free(path);
    return ret;
}

/* The part of create after option parsing; optstr stays the caller's. */
static int create_main(int argc, char **argv, const char *fmt, const char *optstr,
                       const char *base, const char *base_fmt, bool quiet, bool unsafe)
{
    const struct block_driver *drv = block_driver_find(fmt);
    if (optstr && opts_wants_help(optstr)) {
        if (!drv) {
            error_report("Unknown file format '%s'", fmt);
            return 1;
        }
        char title[64];
        snprintf(title, sizeof(title), "Supported %s options:\n", fmt);
        img_print_opts_help(drv, title, NULL);
        printf("\nThe protocol level may support further options.\n"
               "Specify the target filename to include those options.\n");
        return 0;
    }
    if (optind >= argc)
        return img_usage_error("Expecting image file name");
    const char *filename = argv[optind++];
    uint64_t size = 0;
    bool have_size = false;
    if (optind < argc) {
        if (img_parse_size(argv[optind], &size) < 0)
            return size_error();
        have_size = true;
        optind++;
    }
    if (optind != argc)
        return img_usage_error("Unexpected argument: %s", argv[optind]);

    struct opts o = { 0 };
    struct error err = { 0 };
    int status = 1;
    if (optstr && opts_parse(&o, optstr, NULL, &err) < 0) {
        error_report_err(&err);
        goto out;
    }
    if (base)
        opts_put(&o, "backing_file", base);
    if (base_fmt)
        opts_put(&o, "backing_fmt", base_fmt);
    const char *osize = opts_peek(&o, "size");
    if (osize && !have_size) {
        if (img_parse_size(osize, &size) < 0) {
            size_error();
            goto out;
        }
        have_size = true;
    }
    if (!drv) {
        error_report("%s: Unknown file format '%s'", filename, fmt);
        goto out;
    }
    if (check_backing(filename, &o, unsafe, have_size, &size))
        goto out;
    if (!have_size && !opts_peek(&o, "backing_file")) {
        error_report("%s: Image creation needs a size parameter", filename);
        goto out;
    }
    status = img_do_create(filename, fmt, size, &o, quiet) < 0 ? 1 : 0;
out:
    opts_free(&o);
    return status;
}

int img_create(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' }, { "object", required_argument, NULL, OPT_OBJECT },
        { NULL, 0, NULL, 0 }
    };
    const char *fmt = "raw", *base = NULL, *base_fmt = NULL;
    char *optstr = NULL;
    bool quiet = false, unsafe = false;
    int c;
    while ((c = getopt_long(argc, argv, ":F:b:f:ho:qu", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': img_help(); free(optstr); return 0;
        case 'F': base_fmt = optarg; break;
        case 'b': base = optarg; break;
        case 'f': fmt = optarg; break;
        case 'o': {
            char *n = optstr ? NULL : strdup(optarg);
            if (optstr && asprintf(&n, "%s,%s", optstr, optarg) < 0)
                n = NULL;
            free(optstr);
            optstr = n;
            break;
        }
        case 'q': quiet = true; break;
        case 'u': unsafe = true; break;
        case OPT_OBJECT: return img_unsupported_option(c);
        default: free(optstr); return img_bad_option(c, argv[optind - 1]);
        }
    }
    int status = create_main(argc, argv, fmt, optstr, base, base_fmt, quiet, unsafe);
    free(optstr);
    return status;
}
