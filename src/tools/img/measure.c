/* measure: how big would a new image be, for a given size or for the
 * contents of an existing image. The qcow2 arithmetic is the driver's
 * (block/qcow2-measure.c); this file parses and prints. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "tools/img/img.h"
#include "block/qcow2-meta.h"
#include "util/opts.h"

static uint64_t round_up(uint64_t a, uint64_t b) { return (a + b - 1) / b * b; }

static void print_measure(const struct qcow2_measure_info *m, int ofmt)
{
    if (ofmt == OFMT_JSON) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "required", json_object_new_int64(m->required));
        json_object_object_add(o, "fully-allocated", json_object_new_int64(m->fully_allocated));
        if (m->has_bitmaps)
            json_object_object_add(o, "bitmaps", json_object_new_int64(m->bitmaps));
        qjson_print(stdout, o);
        json_object_put(o);
        return;
    }
    printf("required size: %llu\n", (unsigned long long)m->required);
    printf("fully allocated size: %llu\n", (unsigned long long)m->fully_allocated);
    if (m->has_bitmaps)
        printf("bitmaps size: %llu\n", (unsigned long long)m->bitmaps);
}

int img_measure(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' }, { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "size", required_argument, NULL, OPT_SIZE },
        { "force-share", no_argument, NULL, 'U' }, { NULL, 0, NULL, 0 }
    };
    const char *fmt = NULL, *out_fmt = "raw";
    char *options = NULL;
    int ofmt = OFMT_HUMAN, c, flags = 0;
    uint64_t size = 0;
    bool have_size = false;
    while ((c = getopt_long(argc, argv, ":hf:O:o:l:U", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': img_help(); return 0;
        case 'f': fmt = optarg; break;
        case 'O': out_fmt = optarg; break;
        case 'o': {
            char *n = NULL;
            if (options ? asprintf(&n, "%s,%s", options, optarg) < 0 : !(n = strdup(optarg)))
                return 1;
            free(options);
            options = n;
            break;
        }
        case 'U': flags |= BDEV_O_FORCE_SHARE; break;
        case OPT_OUTPUT: if ((ofmt = img_parse_output(optarg)) < 0) return 1; break;
        case OPT_SIZE:
            if (img_parse_size(optarg, &size) < 0) {
                error_report("Invalid image size specified. You may use k, M, G, T, P or E suffixes for");
                error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
                return 1;
            }
            have_size = true;
            break;
        case 'l':
            error_report("Failed to load snapshot: measuring an internal snapshot (-l) "
                         "is not supported");
            return 1;
        case OPT_OBJECT: case OPT_IMAGE_OPTS: return img_unsupported_option(c);
        default: return img_bad_option(c, argv[optind - 1]);
        }
    }
    if (optind < argc - 1)
        return img_usage_error("Expecting one image file name");
    const char *filename = optind < argc ? argv[optind] : NULL;
    if (filename && have_size) {
        error_report("--size N cannot be used together with a filename.");
        return 1;
    }
    if (!filename && !have_size) {
        error_report("Either --size N or one filename must be specified.");
        return 1;
    }
    if (!block_driver_find(out_fmt)) {
        error_report("Unknown file format '%s'", out_fmt);
        return 1;
    }
    struct opts o = { 0 };
    struct error err = { 0 };
    struct qcow2_measure_info m = { 0 };
    struct bdev *in = NULL;
    int status = 1;
    if (options && opts_parse(&o, options, NULL, &err) < 0) {
        error_report_err(&err);
        goto out;
    }
    if (filename && !(in = img_open(filename, fmt, flags, false)))
        goto out;
    if (!strcmp(out_fmt, "qcow2")) {
        if (qcow2_measure(&o, size, in, &m, &err) < 0) {
            error_report_err(&err);
            goto out;
        }
    } else if (!strcmp(out_fmt, "raw")) {
        opts_get(&o, "preallocation");
        m.required = m.fully_allocated = in ? (uint64_t)bdev_getlength(in) : round_up(size, 512);
    } else {
        error_report("Format driver '%s' does not support size measurement", out_fmt);
        goto out;
    }
    opts_get(&o, "size");
    if (opts_check_unused(&o, &err) < 0) {
        error_report_err(&err);
        goto out;
    }
    print_measure(&m, ofmt);
    status = 0;
out:
    if (in)
        bdev_close(in);
    opts_free(&o);
    free(options);
    return status;
}
