/* check: consistency check and repair, with qemu-img's report and exit
 * codes (0 clean, 1 check failed, 2 corruptions, 3 leaks, 63 unsupported). */
#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <json-c/json.h>
#include "tools/img/img.h"

static void dump_human(const struct bdev_check_result *r, bool quiet)
{
    if (quiet)
        return;
    if (!(r->corruptions || r->leaks || r->check_errors)) {
        printf("No errors were found on the image.\n");
    } else {
        if (r->corruptions)
            printf("\n%d errors were found on the image.\n"
                   "Data may be corrupted, or further writes to the image may corrupt it.\n",
                   r->corruptions);
        if (r->leaks)
            printf("\n%d leaked clusters were found on the image.\n"
                   "This means waste of disk space, but no harm to data.\n", r->leaks);
        if (r->check_errors)
            printf("\n%d internal errors have occurred during the check.\n", r->check_errors);
    }
    if (r->total_clusters && r->allocated_clusters)
        printf("%llu/%llu = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed clusters\n",
               (unsigned long long)r->allocated_clusters, (unsigned long long)r->total_clusters,
               r->allocated_clusters * 100.0 / r->total_clusters,
               r->fragmented_clusters * 100.0 / r->allocated_clusters,
               r->compressed_clusters * 100.0 / r->allocated_clusters);
    if (r->image_end_offset)
        printf("Image end offset: %lld\n", (long long)r->image_end_offset);
}

static void add_nz(struct json_object *o, const char *key, int64_t v)
{
    if (v)
        json_object_object_add(o, key, json_object_new_int64(v));
}

static void dump_json(const struct bdev_check_result *r, const char *filename, const char *fmt)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "filename", json_object_new_string(filename));
    json_object_object_add(o, "format", json_object_new_string(fmt));
    json_object_object_add(o, "check-errors", json_object_new_int64(r->check_errors));
    add_nz(o, "image-end-offset", r->image_end_offset);
    add_nz(o, "corruptions", r->corruptions);
    add_nz(o, "leaks", r->leaks);
    add_nz(o, "corruptions-fixed", r->corruptions_fixed);
    add_nz(o, "leaks-fixed", r->leaks_fixed);
    add_nz(o, "total-clusters", r->total_clusters);
    add_nz(o, "allocated-clusters", r->allocated_clusters);
    add_nz(o, "fragmented-clusters", r->fragmented_clusters);
    add_nz(o, "compressed-clusters", r->compressed_clusters);
    qjson_print(stdout, o);
    json_object_put(o);
}

int img_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' }, { "format", required_argument, NULL, 'f' },
        { "repair", required_argument, NULL, 'r' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' }, { NULL, 0, NULL, 0 }
    };
    const char *fmt = NULL;
    int ofmt = OFMT_HUMAN, flags = BDEV_O_CHECK, fix = 0, c;
    bool quiet = false;
    while ((c = getopt_long(argc, argv, ":hf:r:T:qU", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': img_help(); return 0;
        case 'f': fmt = optarg; break;
        case 'r':
            flags |= BDEV_O_RDWR;
            if (!strcmp(optarg, "leaks")) {
                fix = BDEV_FIX_LEAKS;
            } else if (!strcmp(optarg, "all")) {
                fix = BDEV_FIX_LEAKS | BDEV_FIX_ERRORS;
            } else {
                return img_usage_error("Unknown option value for -r (expecting 'leaks' or 'all'): %s",
                                       optarg);
            }
            break;
        case 'T': if (img_parse_cache(optarg, &flags) < 0) return 1; break;
        case 'q': quiet = true; break;
        case 'U': flags |= BDEV_O_FORCE_SHARE; break;
        case OPT_OUTPUT: if ((ofmt = img_parse_output(optarg)) < 0) return 1; break;
        case OPT_OBJECT: case OPT_IMAGE_OPTS: return img_unsupported_option(c);
        default: return img_bad_option(c, argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return img_usage_error("Expecting one image file name");
    if (ofmt == OFMT_JSON)
        quiet = true;       /* repair chatter would break the JSON */
    const char *filename = argv[optind];
    struct bdev *bs = img_open(filename, fmt, flags, quiet);
    if (!bs)
        return 1;
    if (!bs->drv->check) {
        error_report("This image format does not support checks");
        bdev_close(bs);
        return 63;
    }
    struct bdev_check_result r = { 0 };
    int ret = bs->drv->check(bs, &r, fix, stderr);
    if (ret == 0 && fix && (r.corruptions_fixed || r.leaks_fixed)) {
        int lf = r.leaks_fixed, cf = r.corruptions_fixed;
        if (!quiet)
            printf("The following inconsistencies were found and repaired:\n\n"
                   "    %d leaked clusters\n    %d corruptions\n\n"
                   "Double checking the fixed image now...\n", lf, cf);
        memset(&r, 0, sizeof(r));
        ret = bs->drv->check(bs, &r, 0, stderr);
        r.leaks_fixed = lf;
        r.corruptions_fixed = cf;
    }
    if (ret == 0) {
        if (ofmt == OFMT_JSON)
            dump_json(&r, filename, bdev_format_name(bs));
        else
            dump_human(&r, quiet);
    }
    int status;
    if (ret < 0 || r.check_errors) {
        if (ret < 0)
            error_report("Check failed: %s", strerror(-ret));
        else
            error_report("Check failed");
        status = 1;
    } else {
        status = r.corruptions ? 2 : r.leaks ? 3 : 0;
    }
    bdev_close(bs);
    return status;
}
