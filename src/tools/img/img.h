/* quokka-img internals: the pieces every subcommand shares (option
 * parsing helpers, opening images with qemu-img's messages, JSON output in
 * qemu-img's layout, the progress bar). Each subcommand lives in its own
 * file and exports one `img_<name>(argc, argv)` returning the exit status. */
#ifndef QUOKKA_TOOLS_IMG_IMG_H
#define QUOKKA_TOOLS_IMG_IMG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "block/block.h"
#include "block/block_int.h"

struct json_object;

/* Subcommands: argv[0] is the subcommand name; return the exit status. */
int img_create(int argc, char **argv);
int img_info(int argc, char **argv);
int img_check(int argc, char **argv);
int img_convert(int argc, char **argv);
int img_resize(int argc, char **argv);
int img_snapshot(int argc, char **argv);
int img_map(int argc, char **argv);
int img_compare(int argc, char **argv);
int img_commit(int argc, char **argv);
int img_rebase(int argc, char **argv);
int img_amend(int argc, char **argv);
int img_measure(int argc, char **argv);
int img_dd(int argc, char **argv);
int img_bench(int argc, char **argv);

/* Long options every subcommand shares are numbered from here. */
enum {
    OPT_OUTPUT = 256, OPT_BACKING_CHAIN, OPT_OBJECT, OPT_IMAGE_OPTS,
    OPT_TARGET_IMAGE_OPTS, OPT_TARGET_IS_ZERO, OPT_SHRINK, OPT_PREALLOC,
    OPT_FORCE, OPT_SIZE, OPT_PATTERN, OPT_FLUSH_INTERVAL, OPT_NO_DRAIN,
    OPT_START_OFFSET, OPT_MAX_LENGTH, OPT_SALVAGE, OPT_BITMAPS, OPT_HELP,
};

/* "Try 'qemu-img --help'"-style usage error; returns 1. */
int img_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the error for an unknown option / missing argument and return 1. */
int img_bad_option(int c, const char *prog_opt);
void img_help(void);
/* Report an option we recognise but do not implement; returns 1. */
int img_unsupported_option(int c);

/* "human" or "json"; returns -1 (and reports) for anything else. */
enum { OFMT_HUMAN, OFMT_JSON };
int img_parse_output(const char *s);
/* Cache mode string to BDEV_O_* flags; -1 on an unknown mode (reported). */
int img_parse_cache(const char *mode, int *flags);

/* Open with qemu-img's message on failure ("Could not open 'x': ..."). */
struct bdev *img_open(const char *filename, const char *fmt, int flags, bool quiet);

/* The image's bytes on the host ("disk size"), or -1 if unknown. */
int64_t img_allocated_size(struct bdev *bs);
/* Backing file path relative to the image's directory, as qemu resolves it. */
char *img_full_backing_name(const char *image, const char *backing);

/* Parse a size argument like qemu-img ("1G", "512", "1.5M", "10b"). */
int img_parse_size(const char *s, uint64_t *out);

/* JSON printed byte-for-byte as qemu-img prints it: 4-space indentation,
 * object members in the order QEMU's QDict iterates them. */
void qjson_print(FILE *f, struct json_object *o);
/* The human dump of a QObject tree (info's format-specific block). */
void qjson_dump_human(FILE *f, struct json_object *o, int indent);

/* Progress bar: "    (12.34/100%)\r" on stdout when enabled. */
void progress_init(bool enabled);
void progress_update(double done, double total);
void progress_end(void);

struct opts;
/* Create an image (create, convert); errors reported with the file name. */
int img_do_create(const char *filename, const char *fmt, uint64_t size, struct opts *o,
                  bool quiet);
/* `-o help` listing; `only` (NULL-terminated) restricts the names (amend). */
void img_print_opts_help(const struct block_driver *drv, const char *title,
                         const char *const *only);

/* Snapshot table line (NULL: the header), as qemu's snapshot dump. */
void img_snapshot_dump(FILE *f, const struct bdev_snapshot *sn);

#endif
