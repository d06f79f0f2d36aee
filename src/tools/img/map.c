/* map: where each range of the image lives, printed exactly as qemu-img
 * map prints it (human: allocated ranges and their host offsets; JSON: every
 * range with its depth in the chain and its status). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include "tools/img/img.h"

struct map_entry {
    int64_t start, length, offset, depth;
    bool data, zero, present, has_offset;
    const char *filename;       /* NULL: none */
};

/* Status of [offset, offset+bytes) walking down the chain until some node
 * says data or zero, as qemu-img's get_block_status. */
static int map_status(struct bdev *bs, int64_t offset, int64_t bytes, struct map_entry *e)
{
    int depth = 0, ret;
    uint64_t pnum = 0, map = 0;
    struct bdev *file = NULL;
    for (;;) {
        pnum = 0, map = 0, file = NULL;
        ret = bdev_block_status(bs, offset, bytes, &pnum, &map, &file);
        if (ret < 0)
            return ret;
        if (!pnum)
            return -EIO;
        bytes = pnum;
        if (ret & (BDEV_STATUS_ZERO | BDEV_STATUS_DATA))
            break;
        if (!bdev_backing(bs)) {
            /* unallocated at the bottom reads as zeroes */
            ret |= BDEV_STATUS_ZERO;
            break;
        }
        bs = bdev_backing(bs);
        depth++;
    }
    bool has_offset = ret & BDEV_STATUS_OFFSET;
    *e = (struct map_entry){
        .start = offset, .length = bytes, .offset = has_offset ? (int64_t)map : 0,
        .depth = depth, .data = ret & BDEV_STATUS_DATA, .zero = ret & BDEV_STATUS_ZERO,
        .present = ret & BDEV_STATUS_ALLOCATED, .has_offset = has_offset,
        .filename = file && has_offset ? bdev_filename(file) : NULL,
    };
    return 0;
}

static bool mergeable(const struct map_entry *a, const struct map_entry *b)
{
    if (!a->length || a->zero != b->zero || a->data != b->data || a->depth != b->depth ||
        a->present != b->present || !a->filename != !b->filename ||
        a->has_offset != b->has_offset)
        return false;
    if (a->filename && strcmp(a->filename, b->filename))
        return false;
    return !a->has_offset || a->offset + a->length == b->offset;
}

static int dump_entry(int ofmt, const struct map_entry *e, struct map_entry *next)
{
    if (ofmt == OFMT_HUMAN) {
        if (e->data && !e->has_offset) {
            error_report("File contains external, encrypted or compressed clusters.");
            return -1;
        }
        if (e->data && !e->zero)
            printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n", (uint64_t)e->start,
                   (uint64_t)e->length, (uint64_t)(e->has_offset ? e->offset : 0),
                   e->filename ? e->filename : "");
        /* human output ignores zero vs. unallocated: coalesce more */
        if (next && (!next->data || next->zero)) {
            next->data = false;
            next->zero = true;
        }
        return 0;
    }
    printf("{ \"start\": %" PRId64 ", \"length\": %" PRId64 ", \"depth\": %" PRId64
           ", \"present\": %s, \"zero\": %s, \"data\": %s", e->start, e->length, e->depth,
           e->present ? "true" : "false", e->zero ? "true" : "false", e->data ? "true" : "false");
    if (e->has_offset)
        printf(", \"offset\": %" PRId64, e->offset);
    putchar('}');
    if (next)
        puts(",");
    return 0;
}

int img_map(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' }, { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { "start-offset", required_argument, NULL, 's' },
        { "max-length", required_argument, NULL, 'l' }, { NULL, 0, NULL, 0 }
    };
    const char *fmt = NULL;
    int ofmt = OFMT_HUMAN, flags = 0, c;
    uint64_t start = 0, maxlen = INT64_MAX;
    while ((c = getopt_long(argc, argv, ":f:hU", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': img_help(); return 0;
        case 'f': fmt = optarg; break;
        case 'U': flags |= BDEV_O_FORCE_SHARE; break;
        case 's':
            if (img_parse_size(optarg, &start) < 0) {
                error_report("Invalid start offset specified! You may use k, M, G, T, P or E suffixes for ");
                error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
                return 1;
            }
            break;
        case 'l':
            if (img_parse_size(optarg, &maxlen) < 0) {
                error_report("Invalid length specified! You may use k, M, G, T, P or E suffixes for ");
                error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
                return 1;
            }
            break;
        case OPT_OUTPUT: if ((ofmt = img_parse_output(optarg)) < 0) return 1; break;
        case OPT_OBJECT: case OPT_IMAGE_OPTS: return img_unsupported_option(c);
        default: return img_bad_option(c, argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return img_usage_error("Expecting one image file name");
    struct bdev *bs = img_open(argv[optind], fmt, flags, false);
    if (!bs)
        return 1;
    int64_t length = bdev_getlength(bs);
    if (length < 0) {
        error_report("Failed to get size for '%s'", argv[optind]);
        bdev_close(bs);
        return 1;
    }
    if (maxlen < (uint64_t)length - start && start < (uint64_t)length)
        length = start + maxlen;
    if (ofmt == OFMT_HUMAN)
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
    else
        putchar('[');
    struct map_entry curr = { .length = 0 }, next;
    int ret = 0;
    for (int64_t off = start; off < length; ) {
        int64_t n = length - off < (1LL << 30) ? length - off : 1LL << 30;
        ret = map_status(bs, off, n, &next);
        if (ret < 0) {
            error_report("Could not read file metadata: %s", strerror(-ret));
            break;
        }
        off += next.length;
        if (curr.length) {
            if (mergeable(&curr, &next)) {
                curr.length += next.length;
                continue;
            }
            if ((ret = dump_entry(ofmt, &curr, &next)) < 0)
                break;
        }
        curr = next;
    }
    if (ret == 0)
        ret = dump_entry(ofmt, &curr, NULL);
    if (ofmt == OFMT_JSON)
        puts("]");
    bdev_close(bs);
    return ret < 0 ? 1 : 0;
}
