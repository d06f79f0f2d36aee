/* measure: how big would a new image be, for a given size or for the
 * contents of an existing image. The qcow2 figures follow the metadata
 * layout of docs/interop/qcow2.txt: one header cluster, L2 tables for every
 * cluster, the L1 table, and refcount blocks/table covering everything
 * (including themselves). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "tools/img/img.h"
#include "util/opts.h"

static uint64_t div_up(uint64_t a, uint64_t b) { return (a + b - 1) / b; }
static uint64_t round_up(uint64_t a, uint64_t b) { return div_up(a, b) * b; }

/* Refcount blocks + table clusters to count `clusters` clusters plus
 * themselves: iterate to the fixed point. */
static uint64_t refcount_meta_bytes(uint64_t clusters, uint64_t cluster_size, int refcount_bits)
{
    uint64_t per_block = cluster_size * 8 / refcount_bits;
    uint64_t per_table = cluster_size / 8;
    uint64_t table = 0, blocks = 0, n = 0, last;
    do {
        last = n;
        blocks = div_up(clusters + table + blocks, per_block);
        table = div_up(blocks, per_table);
        n = clusters + blocks + table;
    } while (n != last);
    return (blocks + table) * cluster_size;
}

int64_t qcow2_calc_full_size(uint64_t size, uint64_t cluster_size, int refcount_bits,
                             bool extended_l2)
{
    uint64_t total = round_up(size, cluster_size);
    uint64_t l2e = extended_l2 ? 16 : 8;
    uint64_t meta = cluster_size;                           /* header */
    uint64_t nl2e = round_up(total / cluster_size, cluster_size / l2e);
    meta += nl2e * l2e;                                     /* L2 tables */
    uint64_t nl1e = round_up(nl2e * l2e / cluster_size, cluster_size / 8);
    meta += nl1e * 8;                                       /* L1 table */
    meta += refcount_meta_bytes((meta + total) / cluster_size, cluster_size, refcount_bits);
    return meta + total;
}

struct measure {
    uint64_t required, fully;
    bool has_bitmaps;
};

/* Bytes of data the source really holds, cluster-rounded (zero ranges skipped). */
static int source_data_bytes(struct bdev *in, uint64_t cluster, uint64_t *out)
{
    int64_t size = bdev_getlength(in);
    uint64_t req = 0;
    for (int64_t off = 0; off < size; ) {
        uint64_t pnum = 0;
        int st = bdev_block_status_above(in, off, size - off, &pnum, NULL, NULL, NULL);
        if (st < 0 || !pnum)
            return st < 0 ? st : -EIO;
        if (!(st & BDEV_STATUS_ZERO) && (st & BDEV_STATUS_DATA)) {
            pnum = round_up(off + pnum, cluster) - off;
            req += off % cluster + pnum;
        }
        off += pnum;
    }
    *out = req;
    return 0;
}

static bool source_v3(struct bdev *in)
{
    struct bdev_info bi = { 0 };
    bool v3 = false;
    if (strcmp(bdev_format_name(in), "qcow2") || !in->drv->get_info || in->drv->get_info(in, &bi))
        return false;
    struct json_object *data, *compat;
    if (bi.format_specific && json_object_object_get_ex(bi.format_specific, "data", &data) &&
        json_object_object_get_ex(data, "compat", &compat))
        v3 = strcmp(json_object_get_string(compat), "0.10") != 0;
    if (bi.format_specific)
        json_object_put(bi.format_specific);
    return v3;
}

static int measure_qcow2(struct opts *o, uint64_t size, struct bdev *in, struct measure *m,
                         struct error *err)
{
    uint64_t cluster, rbits;
    bool ext = false;
    const char *prealloc = opts_get(o, "preallocation"), *compat = opts_get(o, "compat");
    if (opts_get_size(o, "cluster_size", 65536, &cluster, err) < 0 ||
        opts_get_u64(o, "refcount_bits", 16, &rbits, err) < 0 ||
        opts_get_bool(o, "extended_l2", false, &ext, err) < 0)
        return -EINVAL;
    if (cluster < 512 || cluster > (2 << 20) || (cluster & (cluster - 1)))
        return error_set(err, -EINVAL, "Cluster size must be a power of two between 512 and 2048k");
    if (!rbits || rbits > 64 || (rbits & (rbits - 1)))
        return error_set(err, -EINVAL, "Refcount width must be a power of two and may not exceed 64 bits");
    bool v2 = compat && (!strcmp(compat, "0.10") || !strcmp(compat, "v2"));
    bool has_backing = opts_get(o, "backing_file") != NULL;
    opts_get(o, "backing_fmt");
    opts_get(o, "lazy_refcounts");
    opts_get(o, "compression_type");
    uint64_t vsize = round_up(in ? (uint64_t)bdev_getlength(in) : size, cluster);
    uint64_t req = 0;
    if (in) {
        if (has_backing)
            req = vsize;
        else if (source_data_bytes(in, cluster, &req) < 0)
            return error_set(err, -EIO, "Unable to get block status");
        m->has_bitmaps = !v2 && source_v3(in);
    }
    if (prealloc && (!strcmp(prealloc, "full") || !strcmp(prealloc, "falloc")))
        req = vsize;
    m->fully = qcow2_calc_full_size(vsize, cluster, rbits, ext);
    m->required = m->fully - vsize + req;
    return 0;
}

static void print_measure(const struct measure *m, int ofmt)
{
    if (ofmt == OFMT_JSON) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "required", json_object_new_int64(m->required));
        json_object_object_add(o, "fully-allocated", json_object_new_int64(m->fully));
        if (m->has_bitmaps)
            json_object_object_add(o, "bitmaps", json_object_new_int64(0));
        qjson_print(stdout, o);
        json_object_put(o);
        return;
    }
    printf("required size: %llu\n", (unsigned long long)m->required);
    printf("fully allocated size: %llu\n", (unsigned long long)m->fully);
    if (m->has_bitmaps)
        printf("bitmaps size: %d\n", 0);
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
        case 'l': case OPT_OBJECT: case OPT_IMAGE_OPTS: break;
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
    struct measure m = { 0 };
    struct bdev *in = NULL;
    int status = 1;
    if (options && opts_parse(&o, options, NULL, &err) < 0) {
        error_report_err(&err);
        goto out;
    }
    if (filename && !(in = img_open(filename, fmt, flags, false)))
        goto out;
    if (!strcmp(out_fmt, "qcow2")) {
        if (measure_qcow2(&o, size, in, &m, &err) < 0) {
            error_report_err(&err);
            goto out;
        }
    } else if (!strcmp(out_fmt, "raw")) {
        opts_get(&o, "preallocation");
        m.required = m.fully = in ? (uint64_t)bdev_getlength(in) : round_up(size, 512);
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
