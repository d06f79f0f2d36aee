/* quokka-img: the qemu-img drop-in. main() picks the subcommand; the helpers
 * here are the ones every subcommand shares. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "tools/img/img.h"
#include "block/qcow2-meta.h"
#include "util/opts.h"

struct img_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
};

static const struct img_cmd img_cmds[] = {
    { "amend", img_amend },     { "bench", img_bench },     { "check", img_check },
    { "commit", img_commit },   { "compare", img_compare }, { "convert", img_convert },
    { "create", img_create },   { "dd", img_dd },           { "info", img_info },
    { "map", img_map },         { "measure", img_measure }, { "snapshot", img_snapshot },
    { "rebase", img_rebase },   { "resize", img_resize },
};

static const char img_help_text[] =
"usage: quokka-img [standard options] command [command options]\n"
"Disk image utility (qemu-img compatible)\n"
"\n"
"    '-h', '--help'       display this help and exit\n"
"    '-V', '--version'    output version information and exit\n"
"\n"
"Command syntax:\n"
"  amend [-p] [-q] [-f fmt] [-t cache] [--force] -o options filename\n"
"  bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-i aio] [-n] [--no-drain] [-o offset] [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] [-t cache] [-w] [-U] filename\n"
"  check [-q] [-f fmt] [--output=ofmt] [-r [leaks | all]] [-T src_cache] [-U] filename\n"
"  commit [-q] [-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] [-p] filename\n"
"  compare [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U] filename1 filename2\n"
"  convert [--target-is-zero] [-U] [-C] [-c] [-p] [-q] [-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt] [-B backing_file [-F backing_fmt]] [-o options] [-S sparse_size] [-r rate_limit] [-m num_coroutines] [-W] filename [filename2 [...]] output_filename\n"
"  create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] filename [size]\n"
"  dd [-U] [-f fmt] [-O output_fmt] [bs=block_size] [count=blocks] [skip=blocks] if=input of=output\n"
"  info [-f fmt] [--output=ofmt] [--backing-chain] [-U] filename\n"
"  map [-f fmt] [--start-offset=offset] [--max-length=len] [--output=ofmt] [-U] filename\n"
"  measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | [-f fmt] filename]\n"
"  snapshot [-U] [-q] [-l | -a snapshot | -c snapshot | -d snapshot] filename\n"
"  rebase [-U] [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u] -b backing_file [-F backing_fmt] filename\n"
"  resize [-f fmt] [--preallocation=prealloc] [-q] [--shrink] filename [+ | -]size\n"
"\n"
"Command parameters:\n"
"  'filename' is a disk image filename\n"
"  'fmt' is the disk image format. It is guessed automatically in most cases\n"
"  'cache' is the cache mode used to write the output disk image, the valid\n"
"    options are: 'none', 'writeback' (default, except for convert), 'writethrough',\n"
"    'directsync' and 'unsafe' (default for convert)\n"
"  'size' is the disk image size in bytes. Optional suffixes\n"
"    'k' or 'K' (kilobyte, 1024), 'M' (megabyte, 1024k), 'G' (gigabyte, 1024M),\n"
"    'T' (terabyte, 1024G), 'P' (petabyte, 1024T) and 'E' (exabyte, 1024P)  are\n"
"    supported. 'b' is ignored.\n"
"  'options' is a comma separated list of format specific options in a\n"
"    name=value format. Use -o help for an overview of the options supported by\n"
"    the used format\n"
"  '-c' indicates that target image must be compressed (qcow format only)\n"
"  '-u' allows unsafe backing chains.\n"
"  '-p' show progress of command (only certain commands)\n"
"  '-q' use Quiet mode - do not print any output (except errors)\n"
"  '-S' sparse size for convert (default 4k; 0: fully allocate)\n"
"  '--output' takes the format in which the output must be done (human or json)\n"
"  '-n' skips the target volume creation\n"
"\n"
"Parameters to check subcommand:\n"
"  '-r' tries to repair any inconsistencies that are found during the check.\n"
"       '-r leaks' repairs only cluster leaks, whereas '-r all' fixes all\n"
"       kinds of errors.\n"
"\n"
"Parameters to convert subcommand:\n"
"  '-m' specifies how many requests work in parallel (defaults to 8)\n"
"  '-W' allow to write to the target out of order rather than sequential\n"
"\n"
"Parameters to snapshot subcommand:\n"
"  '-a' applies a snapshot, '-c' creates, '-d' deletes, '-l' lists all snapshots\n"
"\n"
"Parameters to compare subcommand:\n"
"  '-f' first image format\n"
"  '-F' second image format\n"
"  '-s' run in Strict mode - fail on different image size or sector allocation\n"
"\n"
"Parameters to dd subcommand:\n"
"  'bs=BYTES' read and write up to BYTES bytes at a time (default: 512)\n"
"  'count=N' copy only N input blocks\n"
"  'if=FILE' read from FILE\n"
"  'of=FILE' write to FILE\n"
"  'skip=N' skip N bs-sized blocks at the start of input\n"
"\n"
"Supported formats:";

/* Naming the drivers here also makes the linker pull them out of the
 * library: block.c only refers to the qcow2 driver weakly. */
static const struct block_driver *const img_drivers[] = { &bdrv_file, &bdrv_qcow2, &bdrv_raw };
/* Likewise the qcow2 driver reaches its snapshot, check and amend code
 * through weak references (so it links without them), and weak references
 * pull nothing out of a static library: name one entry point of each. */
__attribute__((used)) static const void *const img_qcow2_meta[] = {
    (const void *)qcow2_snapshot_list, (const void *)qcow2_check, (const void *)qcow2_amend,
};

void img_help(void)
{
    fputs(img_help_text, stdout);
    for (size_t i = 0; i < sizeof(img_drivers) / sizeof(img_drivers[0]); i++)
        printf(" %s", img_drivers[i]->name);
    printf("\n");
}

int img_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", error_progname());
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for more information\n", error_progname());
    return 1;
}

/* getopt was run with a leading ':'; word the errors as qemu-img does. */
int img_bad_option(int c, const char *arg)
{
    if (c == ':')
        return img_usage_error("missing argument for option '%s'", arg);
    return img_usage_error("unrecognized option '%s'", arg);
}

/* Options qemu-img has that we parse but do not implement: refuse them by
 * name rather than run without what the user asked for. */
int img_unsupported_option(int c)
{
    const char *name;
    switch (c) {
    case OPT_OBJECT: name = "--object"; break;
    case OPT_IMAGE_OPTS: name = "--image-opts"; break;
    case OPT_TARGET_IMAGE_OPTS: name = "--target-image-opts"; break;
    case OPT_SALVAGE: name = "--salvage"; break;
    case OPT_BITMAPS: name = "--bitmaps"; break;
    default: {
        static char buf[8];
        snprintf(buf, sizeof(buf), "-%c", c);
        name = buf;
    }
    }
    error_report("option '%s' is not supported", name);
    return 1;
}

int img_parse_output(const char *s)
{
    if (!strcmp(s, "human"))
        return OFMT_HUMAN;
    if (!strcmp(s, "json"))
        return OFMT_JSON;
    error_report("--output must be used with human or json as argument.");
    return -1;
}

int img_parse_cache(const char *mode, int *flags)
{
    *flags &= ~(BDEV_O_NOCACHE | BDEV_O_WRITETHROUGH | BDEV_O_UNSAFE);
    if (!strcmp(mode, "none") || !strcmp(mode, "off"))
        *flags |= BDEV_O_NOCACHE;
    else if (!strcmp(mode, "directsync"))
        *flags |= BDEV_O_NOCACHE | BDEV_O_WRITETHROUGH;
    else if (!strcmp(mode, "writethrough"))
        *flags |= BDEV_O_WRITETHROUGH;
    else if (!strcmp(mode, "unsafe"))
        *flags |= BDEV_O_UNSAFE;
    else if (strcmp(mode, "writeback")) {
        error_report("Invalid cache option: %s", mode);
        return -1;
    }
    return 0;
}

struct bdev *img_open(const char *filename, const char *fmt, int flags, bool quiet)
{
    struct bdev *bs = NULL;
    struct error err = { 0 };
    if (fmt && !block_driver_find(fmt)) {
        error_report("Unknown file format '%s'", fmt);
        return NULL;
    }
    if (bdev_open_simple(&bs, filename, fmt, flags, &err) < 0) {
        if (!err.msg[0])
            snprintf(err.msg, sizeof(err.msg), "%s", strerror(-(err.code ? err.code : EIO)));
        error_report("Could not open '%s': %s", filename, err.msg);
        return NULL;
    }
    return bs;
}

int64_t img_allocated_size(struct bdev *bs)
{
    for (; bs; bs = bs->file) {
        if (bs->drv->allocated_size)
            return bs->drv->allocated_size(bs);
    }
    return -1;
}

char *img_full_backing_name(const char *image, const char *backing)
{
    if (backing[0] == '/' || strstr(backing, "://") || !strchr(image, '/'))
        return strdup(backing);
    const char *slash = strrchr(image, '/');
    size_t dirlen = slash - image + 1;
    char *out = malloc(dirlen + strlen(backing) + 1);
    if (!out)
        return NULL;
    memcpy(out, image, dirlen);
    strcpy(out + dirlen, backing);
    return out;
}

int img_parse_size(const char *s, uint64_t *out)
{
    if (!*s || s[0] == '-')
        return -EINVAL;
    int ret = parse_size(s, 1, out);
    if (ret < 0)
        return ret;
    if (*out > INT64_MAX)
        return -ERANGE;
    return 0;
}

int main(int argc, char **argv)
{
    error_set_progname("quokka-img");
    if (argc < 2)
        return img_usage_error("Not enough arguments");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        img_help();
        return 0;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        printf("quokka-img version 7.2.0 (Quokka)\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof(img_cmds) / sizeof(img_cmds[0]); i++) {
        if (!strcmp(cmd, img_cmds[i].name)) {
            /* getopt starts over for the subcommand's own options. */
            optind = 0;
            return img_cmds[i].fn(argc - 1, argv + 1);
        }
    }
    return img_usage_error("Command not found: %s", cmd);
}
