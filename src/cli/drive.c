/* -drive, -hda/-hdb, -blockdev and -snapshot. Drives default to if=virtio:
 * the PC board has no IDE controller. */
#include "cli/drive.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "block/block.h"
#include "cli/cli.h"
#include "hw/pci/pci-board.h"
#include "hw/virtio/virtio-blk.h"
#include "util/opts.h"

static struct pci_board_config *board(struct cli *c)
{
    if (!c->cfg.pci)
        c->cfg.pci = calloc(1, sizeof(*c->cfg.pci));
    return c->cfg.pci;
}

static struct drive_config *new_drive(struct cli *c, const char *opt, const char *arg,
                                      struct error *err)
{
    struct pci_board_config *b = board(c);
    if (!b) {
        error_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    if (b->n_drives == PCI_BOARD_MAX_DRIVES) {
        error_set(err, -ENOSPC, "too many drives (at most %d)", PCI_BOARD_MAX_DRIVES);
        return NULL;
    }
    struct drive_config *d = &b->drives[b->n_drives];
    memset(d, 0, sizeof(*d));
    if (asprintf(&d->spec, "%s %s", opt, arg) < 0) {
        error_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    return d;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static int parse_cache(const char *v, int *flags, struct error *err)
{
    static const struct { const char *name; int flags; } modes[] = {
        { "none", BDEV_O_NOCACHE }, { "writeback", 0 }, { "writethrough", BDEV_O_WRITETHROUGH },
        { "directsync", BDEV_O_NOCACHE | BDEV_O_WRITETHROUGH }, { "unsafe", BDEV_O_UNSAFE },
    };
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (!strcmp(v, modes[i].name)) {
            *flags |= modes[i].flags;
            return 0;
        }
    return error_set(err, -EINVAL, "invalid cache option '%s'", v);
}

/* Keys -drive and -blockdev share. */
static int parse_common(struct opts *o, struct drive_config *d, struct error *err)
{
    const char *v;
    bool b;
    if ((v = opts_get(o, "aio"))) {
        if (!strcmp(v, "threads"))
            d->flags |= BDEV_O_AIO_THREADS;
        else if (strcmp(v, "io_uring") && strcmp(v, "native"))
            return error_set(err, -EINVAL, "invalid aio option '%s'", v);
    }
    if ((v = opts_get(o, "discard"))) {
        if (!strcmp(v, "unmap") || !strcmp(v, "on"))
            d->discard_unmap = true;
        else if (strcmp(v, "ignore") && strcmp(v, "off"))
            return error_set(err, -EINVAL, "Invalid discard option '%s'", v);
    }
    if ((v = opts_get(o, "detect-zeroes"))) {
        if (!strcmp(v, "on"))
            d->detect_zeroes = VBLK_DZ_ON;
        else if (!strcmp(v, "unmap"))
            d->detect_zeroes = VBLK_DZ_UNMAP;
        else if (strcmp(v, "off"))
            return error_set(err, -EINVAL, "Parameter 'detect-zeroes' does not accept value '%s'",
                             v);
        if (d->detect_zeroes == VBLK_DZ_UNMAP && !d->discard_unmap)
            return error_set(err, -EINVAL, "setting detect-zeroes to unmap is not allowed "
                             "without setting discard operation to unmap");
    }
    if ((v = opts_get(o, "file.locking")) && strcmp(v, "auto")) {
        int r = opts_get_bool(o, "file.locking", true, &b, err);
        if (r < 0)
            return r;
        if (!b)
            d->flags |= BDEV_O_NO_LOCK;
    }
    return 0;
}

/* The drive is complete: count it, and give an if=virtio one its device
 * at this point of the command line. */
static int commit_drive(struct cli *c, struct drive_config *d, struct error *err)
{
    struct pci_board_config *b = c->cfg.pci;
    if (d->iface == DRIVE_IF_VIRTIO) {
        if (b->n_devices == PCI_BOARD_MAX_DEVICES)
            return error_set(err, -ENOSPC, "too many devices");
        b->devices[b->n_devices++] = (struct device_config){ NULL, b->n_drives };
    }
    b->n_drives++;
    return 0;
}

static int finish_drive(struct cli *c, struct opts *o, struct drive_config *d, struct error *err)
{
    int r = opts_check_unused(o, err);
    if (!r && !d->file)
        r = error_set(err, -EINVAL, "A block device must be specified for \"file\"");
    if (!r)
        r = commit_drive(c, d, err);
    if (!r)
        return 0;
    free(d->spec);
    free(d->id);
    free(d->file);
    free(d->format);
    free(d->serial);
    return r;
}

int cli_opt_drive(struct cli *c, const char *arg, struct error *err)
{
    struct drive_config *d = new_drive(c, "-drive", arg, err);
    struct opts o;
    if (!d || opts_parse(&o, arg, "file", err) < 0)
        return -EINVAL;
    const char *v;
    int r = 0;
    bool ro = false, snap = false;
    d->iface = DRIVE_IF_VIRTIO;
    d->file = dup_or_null(opts_get(&o, "file"));
    d->format = dup_or_null(opts_get(&o, "format"));
    d->id = dup_or_null(opts_get(&o, "id"));
    d->serial = dup_or_null(opts_get(&o, "serial"));
    opts_get(&o, "index");                       /* order is the command line's */
    if ((v = opts_get(&o, "if"))) {
        if (!strcmp(v, "none"))
            d->iface = DRIVE_IF_NONE;
        else if (strcmp(v, "virtio"))
            r = error_set(err, -ENOTSUP, "if=%s is not supported (use if=virtio or if=none)", v);
    }
    if (!r && (v = opts_get(&o, "media")) && strcmp(v, "disk"))
        r = error_set(err, -ENOTSUP, "media=%s is not supported yet (only disk)", v);
    if (!r && (v = opts_get(&o, "cache")))
        r = parse_cache(v, &d->flags, err);
    if (!r)
        r = opts_get_bool(&o, "readonly", false, &ro, err);
    if (!r && !ro)
        r = opts_get_bool(&o, "read-only", false, &ro, err);
    if (!r)
        r = opts_get_bool(&o, "snapshot", false, &snap, err);
    if (!r)
        r = parse_common(&o, d, err);
    d->read_only = ro;
    d->snapshot = snap;
    if (!r)
        r = finish_drive(c, &o, d, err);
    opts_free(&o);
    return r;
}

static int add_hd(struct cli *c, const char *opt, const char *file, struct error *err)
{
    struct drive_config *d = new_drive(c, opt, file, err);
    if (!d)
        return -ENOMEM;
    d->iface = DRIVE_IF_VIRTIO;
    d->file = strdup(file);
    return commit_drive(c, d, err);
}

int cli_opt_hda(struct cli *c, const char *arg, struct error *err) { return add_hd(c, "-hda", arg, err); }
int cli_opt_hdb(struct cli *c, const char *arg, struct error *err) { return add_hd(c, "-hdb", arg, err); }
int cli_add_image(struct cli *c, const char *file, struct error *err) { return add_hd(c, "-hda", file, err); }

int cli_opt_snapshot(struct cli *c, const char *arg, struct error *err)
{
    struct pci_board_config *b = board(c);
    if (!b)
        return error_set(err, -ENOMEM, "out of memory");
    b->snapshot = true;
    return 0;
}

/* The plain -blockdev forms: driver=file,filename=F ; driver=raw|qcow2 with
 * file.driver=file,file.filename=F or file=NODE (a driver=file node). */
int cli_opt_blockdev(struct cli *c, const char *arg, struct error *err)
{
    struct drive_config *d = new_drive(c, "-blockdev", arg, err);
    struct opts o;
    if (!d || opts_parse(&o, arg, NULL, err) < 0)
        return -EINVAL;
    const char *drv = opts_get(&o, "driver"), *node = opts_get(&o, "node-name");
    const char *v;
    bool ro = false, direct = false;
    int r = 0;
    d->iface = DRIVE_IF_NONE;
    if (!drv || !node)
        r = error_set(err, -EINVAL, "Parameter '%s' is missing", !drv ? "driver" : "node-name");
    if (!r && !strcmp(drv, "file")) {
        d->file = dup_or_null(opts_get(&o, "filename"));
        d->format = strdup("raw");
    } else if (!r && (!strcmp(drv, "raw") || !strcmp(drv, "qcow2"))) {
        d->format = strdup(drv);
        if ((v = opts_get(&o, "file")) && !strchr(v, '/')) {
            /* A file node given by name: take it over. */
            struct pci_board_config *b = c->cfg.pci;
            for (int i = 0; i < b->n_drives; i++)
                if (b->drives[i].id && !strcmp(b->drives[i].id, v) && b->drives[i].file)
                    d->file = strdup(b->drives[i].file), b->drives[i].claimed = true,
                    d->flags |= b->drives[i].flags;
            if (!d->file)
                r = error_set(err, -ENOENT, "Cannot find device='' nor node-name='%s'", v);
        } else if (v) {
            d->file = strdup(v);
        } else {
            d->file = dup_or_null(opts_get(&o, "file.filename"));
            if ((v = opts_get(&o, "file.driver")) && strcmp(v, "file"))
                r = error_set(err, -ENOTSUP, "file.driver=%s is not supported", v);
        }
    } else if (!r) {
        r = error_set(err, -ENOTSUP, "-blockdev driver '%s' is not supported (file, raw, qcow2)",
                      drv);
    }
    d->id = dup_or_null(node);
    if (!r)
        r = opts_get_bool(&o, "read-only", false, &ro, err);
    if (!r)
        r = opts_get_bool(&o, "cache.direct", false, &direct, err);
    if (!r && !direct)
        r = opts_get_bool(&o, "file.cache.direct", false, &direct, err);
    if (!r && (v = opts_get(&o, "locking")) && !strcmp(v, "off"))
        d->flags |= BDEV_O_NO_LOCK;
    if (!r)
        r = parse_common(&o, d, err);
    d->read_only = ro;
    if (direct)
        d->flags |= BDEV_O_NOCACHE;
    if (!r)
        r = finish_drive(c, &o, d, err);
    opts_free(&o);
    return r;
}
