/* info: what an image is (human or JSON), optionally the whole chain. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>
#include "tools/img/img.h"
#include "util/opts.h"

void img_snapshot_dump(FILE *f, const struct bdev_snapshot *sn)
{
    if (!sn) {
        fprintf(f, "%-10s%-17s%8s%20s%13s%11s", "ID", "TAG", "VM SIZE", "DATE",
                "VM CLOCK", "ICOUNT");
        return;
    }
    char date[64], clk[64], size[32], icount[32] = "";
    time_t t = sn->date_sec;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    uint64_t secs = sn->vm_clock_nsec / 1000000000ULL;
    snprintf(clk, sizeof(clk), "%02d:%02d:%02d.%03d", (int)(secs / 3600),
             (int)((secs / 60) % 60), (int)(secs % 60),
             (int)((sn->vm_clock_nsec / 1000000) % 1000));
    format_size(sn->vm_state_size, size, sizeof(size));
    if (sn->icount != (uint64_t)-1)
        snprintf(icount, sizeof(icount), "%llu", (unsigned long long)sn->icount);
    fprintf(f, "%-9s %-16s %8s%20s%13s%11s", sn->id, sn->name, size, date, clk, icount);
}

static struct json_object *snapshot_json(const struct bdev_snapshot *sn)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(sn->id));
    json_object_object_add(o, "name", json_object_new_string(sn->name));
    json_object_object_add(o, "vm-state-size", json_object_new_int64(sn->vm_state_size));
    json_object_object_add(o, "date-sec", json_object_new_int64(sn->date_sec));
    json_object_object_add(o, "date-nsec", json_object_new_int64(sn->date_nsec));
    json_object_object_add(o, "vm-clock-sec", json_object_new_int64(sn->vm_clock_nsec / 1000000000ULL));
    json_object_object_add(o, "vm-clock-nsec", json_object_new_int64(sn->vm_clock_nsec % 1000000000ULL));
    if (sn->icount != (uint64_t)-1)
        json_object_object_add(o, "icount", json_object_new_int64(sn->icount));
    return o;
}

/* ImageInfo for one node, members added in QAPI order (the QDict order of
 * the output depends on it only for hash collisions). */
static struct json_object *image_info(struct bdev *bs, const char *filename)
{
    struct json_object *o = json_object_new_object();
    struct bdev_info bi = { 0 };
    if (bs->drv->get_info)
        bs->drv->get_info(bs, &bi);
    json_object_object_add(o, "filename", json_object_new_string(filename));
    json_object_object_add(o, "format", json_object_new_string(bdev_format_name(bs)));
    json_object_object_add(o, "dirty-flag", json_object_new_boolean(bi.dirty));
    int64_t asz = img_allocated_size(bs);
    if (asz >= 0)
        json_object_object_add(o, "actual-size", json_object_new_int64(asz));
    json_object_object_add(o, "virtual-size", json_object_new_int64(bdev_getlength(bs)));
    if (bi.cluster_size)
        json_object_object_add(o, "cluster-size", json_object_new_int64(bi.cluster_size));
    const char *bf = bdev_backing_filename(bs);
    if (bf && *bf) {
        char *full = img_full_backing_name(filename, bf);
        json_object_object_add(o, "backing-filename", json_object_new_string(bf));
        json_object_object_add(o, "full-backing-filename", json_object_new_string(full));
        if (bs->backing_format && *bs->backing_format)
            json_object_object_add(o, "backing-filename-format",
                                   json_object_new_string(bs->backing_format));
        free(full);
    }
    if (bs->drv->snapshot_list) {
        struct bdev_snapshot *sn = NULL;
        int n = bs->drv->snapshot_list(bs, &sn);
        if (n > 0) {
            struct json_object *a = json_object_new_array();
            for (int i = 0; i < n; i++)
                json_object_array_add(a, snapshot_json(&sn[i]));
            json_object_object_add(o, "snapshots", a);
        }
        free(sn);
    }
    if (bi.format_specific)
        json_object_object_add(o, "format-specific", bi.format_specific);
    return o;
}

static int64_t jint(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : -1;
}

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static void dump_human(struct json_object *o)
{
    char vsz[32], dsz[32];
    struct json_object *v;
    format_size(jint(o, "virtual-size"), vsz, sizeof(vsz));
    if (jint(o, "actual-size") >= 0)
        format_size(jint(o, "actual-size"), dsz, sizeof(dsz));
    else
        snprintf(dsz, sizeof(dsz), "unavailable");
    printf("image: %s\nfile format: %s\nvirtual size: %s (%lld bytes)\ndisk size: %s\n",
           jstr(o, "filename"), jstr(o, "format"), vsz, (long long)jint(o, "virtual-size"), dsz);
    if (jint(o, "cluster-size") >= 0)
        printf("cluster_size: %lld\n", (long long)jint(o, "cluster-size"));
    if (json_object_object_get_ex(o, "dirty-flag", &v) && json_object_get_boolean(v))
        printf("cleanly shut down: no\n");
    const char *bf = jstr(o, "backing-filename"), *full = jstr(o, "full-backing-filename");
    if (bf) {
        printf("backing file: %s", bf);
        if (full && strcmp(bf, full))
            printf(" (actual path: %s)", full);
        printf("\n");
        if (jstr(o, "backing-filename-format"))
            printf("backing file format: %s\n", jstr(o, "backing-filename-format"));
    }
    if (json_object_object_get_ex(o, "snapshots", &v)) {
        printf("Snapshot list:\n");
        img_snapshot_dump(stdout, NULL);
        printf("\n");
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            struct json_object *s = json_object_array_get_idx(v, i);
            struct bdev_snapshot sn = {
                .vm_state_size = jint(s, "vm-state-size"),
                .date_sec = jint(s, "date-sec"), .date_nsec = jint(s, "date-nsec"),
                .vm_clock_nsec = jint(s, "vm-clock-sec") * 1000000000ULL + jint(s, "vm-clock-nsec"),
                .icount = jint(s, "icount"),
            };
            snprintf(sn.id, sizeof(sn.id), "%s", jstr(s, "id"));
            snprintf(sn.name, sizeof(sn.name), "%s", jstr(s, "name"));
            img_snapshot_dump(stdout, &sn);
            printf("\n");
        }
    }
    if (json_object_object_get_ex(o, "format-specific", &v)) {
        struct json_object *data;
        printf("Format specific information:\n");
        if (json_object_object_get_ex(v, "data", &data))
            qjson_dump_human(stdout, data, 1);
    }
}

int img_info(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' }, { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "backing-chain", no_argument, NULL, OPT_BACKING_CHAIN },
        { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' }, { NULL, 0, NULL, 0 }
    };
    const char *fmt = NULL;
    int ofmt = OFMT_HUMAN, flags = 0, c;
    bool chain = false;
    while ((c = getopt_long(argc, argv, ":f:hU", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': img_help(); return 0;
        case 'f': fmt = optarg; break;
        case 'U': flags |= BDEV_O_FORCE_SHARE; break;
        case OPT_OUTPUT: if ((ofmt = img_parse_output(optarg)) < 0) return 1; break;
        case OPT_BACKING_CHAIN: chain = true; break;
        case OPT_OBJECT: case OPT_IMAGE_OPTS: return img_unsupported_option(c);
        default: return img_bad_option(c, argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return img_usage_error("Expecting one image file name");
    const char *filename = argv[optind];
    /* Like qemu-img, open each image of the chain on its own, so a missing
     * backing file is reported under its own name. */
    struct json_object *list = json_object_new_array();
    char *name = strdup(filename), *next_fmt = fmt ? strdup(fmt) : NULL;
    int status = 0;
    for (int depth = 0; name; depth++) {
        if (depth > 256) {
            error_report("Backing file '%s' creates an infinite loop.", name);
            status = 1;
            break;
        }
        struct bdev *bs = img_open(name, next_fmt, flags | BDEV_O_NO_BACKING, false);
        if (!bs) {
            status = 1;
            break;
        }
        json_object_array_add(list, image_info(bs, name));
        const char *bf = bdev_backing_filename(bs);
        char *next = chain && bf && *bf ? img_full_backing_name(name, bf) : NULL;
        free(next_fmt);
        next_fmt = next && bs->backing_format && *bs->backing_format ?
                   strdup(bs->backing_format) : NULL;
        bdev_close(bs);
        free(name);
        name = next;
    }
    free(name);
    free(next_fmt);
    if (status) {
        json_object_put(list);
        return status;
    }
    if (ofmt == OFMT_JSON) {
        qjson_print(stdout, chain ? list : json_object_array_get_idx(list, 0));
    } else {
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            if (i)
                printf("\n");
            dump_human(json_object_array_get_idx(list, i));
        }
    }
    json_object_put(list);
    return 0;
}
