/* From -drive/-device descriptions to PCI functions on the bus: opens the
 * images (snapshot=on behind a temporary qcow2 overlay), resolves drive=
 * and chardev= references and calls each model's constructor. */
#include "hw/pci/pci-board.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "block/block.h"
#include "block/block_int.h"
#include "hw/pci/pci.h"
#include "hw/virtio/virtio-balloon.h"
#include "hw/virtio/virtio-blk.h"
#include "hw/virtio/virtio-net.h"
#include "hw/virtio/virtio-rng.h"
#include "hw/virtio/virtio-serial.h"
#include "net/netdev.h"
#include "util/opts.h"

struct model_ctx {
    struct pci_bus *bus;
    struct mainloop *ml;
    struct pci_board_config *cfg;
    struct opts *o;
    int devfn;
    const char *id;
};

struct model {
    const char *name, *alias, *desc;
    const char *props;            /* help text, one "name=<type>" per line */
    int (*create)(struct model_ctx *c, struct error *err);
};

/* ---- drives ---- */

/* Escape commas for an option string value. */
static char *escape_commas(const char *s)
{
    char *o = malloc(2 * strlen(s) + 1), *p = o;
    if (!o)
        return NULL;
    for (; *s; s++) {
        *p++ = *s;
        if (*s == ',')
            *p++ = ',';
    }
    *p = 0;
    return o;
}

/* snapshot=on: writes go to a temporary qcow2 overlay over the image,
 * unlinked as soon as it is open so nothing is left behind at exit. */
static int drive_open_snapshot(struct drive_config *dc, int flags, struct bdev **out,
                               struct error *err)
{
    struct bdev *base;
    int r = bdev_open_simple(&base, dc->file, dc->format, flags & ~BDEV_O_RDWR, err);
    if (r < 0)
        return r;
    char fmt[32];
    snprintf(fmt, sizeof(fmt), "%s", bdev_format_name(base));
    int64_t size = bdev_getlength(base);
    bdev_close(base);
    char abs[PATH_MAX];
    if (size < 0 || !realpath(dc->file, abs))
        return error_set_errno(err, size < 0 ? (int)size : -errno,
                               "Could not get the size of '%s'", dc->file);
    const char *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/vl.XXXXXX", tmpdir);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return error_set_errno(err, -errno, "Could not create a temporary overlay in %s",
                               tmpdir);
    close(fd);
    char *eb = escape_commas(abs), *spec = NULL;
    if (!eb || asprintf(&spec, "backing_file=%s,backing_fmt=%s", eb, fmt) < 0)
        spec = NULL;
    free(eb);
    struct opts o = {0};
    const struct block_driver *q = block_driver_find("qcow2");
    r = !spec || !q ? -ENOMEM : opts_parse(&o, spec, NULL, err);
    if (!r)
        r = q->create(tmp, size, &o, err);
    if (!r)
        r = bdev_open_simple(out, tmp, "qcow2", (flags | BDEV_O_RDWR) & ~BDEV_O_NOCACHE, err);
    opts_free(&o);
    free(spec);
    unlink(tmp);
    return r;
}

static int drive_open(struct drive_config *dc, int extra, struct bdev **out, struct error *err)
{
    int flags = dc->flags | extra | (dc->read_only ? 0 : BDEV_O_RDWR);
    int r = dc->snapshot ? drive_open_snapshot(dc, flags, out, err)
                         : bdev_open_simple(out, dc->file, dc->format, flags, err);
    return r;
}

static struct drive_config *find_drive(struct pci_board_config *cfg, const char *id)
{
    for (int i = 0; i < cfg->n_drives; i++)
        if (cfg->drives[i].id && !strcmp(cfg->drives[i].id, id))
            return &cfg->drives[i];
    return NULL;
}

/* ---- models ---- */

static int get_uint(struct opts *o, const char *key, uint64_t def, uint64_t max, uint64_t *v,
                    struct error *err)
{
    int r = opts_get_u64(o, key, def, v, err);
    if (!r && *v > max)
        r = error_set(err, -EINVAL, "Parameter '%s' expects a value up to %llu", key,
                      (unsigned long long)max);
    return r;
}

static int blk_open(struct model_ctx *c, struct drive_config *dc, bool share_rw,
                    struct virtio_blk_conf *conf, struct error *err)
{
    struct bdev *bs;
    int r = drive_open(dc, share_rw ? BDEV_O_SHARE_RW : 0, &bs, err);
    if (r < 0)
        return r;
    conf->bs = bs;
    conf->read_only = dc->read_only;
    conf->discard_unmap = dc->discard_unmap;
    conf->detect_zeroes = dc->detect_zeroes;
    if (!conf->serial)
        conf->serial = dc->serial;
    struct pci_dev *d = virtio_blk_pci_new(c->bus, c->ml, c->devfn, c->id, conf, err);
    if (!d) {
        bdev_close(bs);
        return err && err->code ? err->code : -EINVAL;
    }
    return 0;
}

static int create_blk(struct model_ctx *c, struct error *err)
{
    struct opts *o = c->o;
    const char *drive = opts_get(o, "drive");
    struct virtio_blk_conf conf = { .serial = opts_get(o, "serial") };
    uint64_t nq, qs, lbs, pbs;
    bool share = false;
    int r = get_uint(o, "num-queues", 1, 64, &nq, err);
    if (!r) r = get_uint(o, "queue-size", 256, 1024, &qs, err);
    if (!r) r = get_uint(o, "logical_block_size", 512, 32768, &lbs, err);
    if (!r) r = get_uint(o, "physical_block_size", 512, 32768, &pbs, err);
    if (!r) r = opts_get_bool(o, "share-rw", false, &share, err);
    if (!r) r = opts_check_unused(o, err);
    if (r)
        return r;
    if (!nq || qs < 4 || (qs & (qs - 1)))
        return error_set(err, -EINVAL, "num-queues must be at least 1 and queue-size a power "
                         "of two from 4 to %d", 1024);
    if (lbs < 512 || (lbs & (lbs - 1)) || pbs < lbs || (pbs & (pbs - 1)))
        return error_set(err, -EINVAL, "block sizes must be powers of two, physical >= "
                         "logical >= 512");
    if (!drive)
        return error_set(err, -EINVAL, "drive property not set");
    struct drive_config *dc = find_drive(c->cfg, drive);
    if (!dc)
        return error_set(err, -ENOENT, "Property 'virtio-blk-pci.drive' can't find value '%s'",
                         drive);
    if (dc->claimed)
        return error_set(err, -EBUSY, "Drive '%s' is already in use by another device", drive);
    dc->claimed = true;
    conf.num_queues = nq;
    conf.queue_size = qs;
    conf.logical_block_size = lbs;
    conf.physical_block_size = pbs;
    return blk_open(c, dc, share, &conf, err);
}

static int create_rng(struct model_ctx *c, struct error *err)
{
    if (opts_get(c->o, "rng"))
        return error_set(err, -ENOTSUP, "rng= backends are not supported yet (getrandom is used)");
    int r = opts_check_unused(c->o, err);
    if (r)
        return r;
    return virtio_rng_pci_new(c->bus, c->devfn, c->id, err) ? 0 : err->code;
}

static int create_balloon(struct model_ctx *c, struct error *err)
{
    int r = opts_check_unused(c->o, err);
    if (r)
        return r;
    return virtio_balloon_pci_new(c->bus, c->devfn, c->id, err) ? 0 : err->code;
}

static int create_serial(struct model_ctx *c, struct error *err)
{
    uint64_t max;
    int r = get_uint(c->o, "max_ports", 31, 31, &max, err);
    if (!r)
        r = opts_check_unused(c->o, err);
    if (r)
        return r;
    return virtio_serial_pci_new(c->bus, c->ml, c->devfn, c->id, max ? max : 1, err) ? 0
                                                                                   : err->code;
}

static int create_port(struct model_ctx *c, bool console, struct error *err)
{
    const char *chr = opts_get(c->o, "chardev"), *name = opts_get(c->o, "name");
    const char *bus = opts_get(c->o, "bus");
    uint64_t nr = 0;
    bool has_nr = opts_get(c->o, "nr") != NULL;
    int r = has_nr ? get_uint(c->o, "nr", 0, 30, &nr, err) : 0;
    if (!r)
        r = opts_check_unused(c->o, err);
    if (r)
        return r;
    return virtio_serial_add_port(c->bus, bus, c->id, chr, name, console,
                                  has_nr ? (int)nr : -1, err);
}

static int create_console(struct model_ctx *c, struct error *err) { return create_port(c, true, err); }
static int create_sport(struct model_ctx *c, struct error *err) { return create_port(c, false, err); }

static int create_net(struct model_ctx *c, struct error *err)
{
    return virtio_net_board_create(c->bus, c->ml, c->devfn, c->id, c->o, err);
}

static const struct model models[] = {
    { "virtio-blk-pci", "virtio-blk", "Virtio block device",
      "drive=<str>  serial=<str>  num-queues=<uint16>  queue-size=<uint16>\n"
      "logical_block_size=<size>  physical_block_size=<size>  share-rw=<bool>",
      create_blk },
    { "virtio-rng-pci", "virtio-rng", "Virtio RNG device (entropy from the host's getrandom)",
      "", create_rng },
    { "virtio-balloon-pci", "virtio-balloon", "Virtio memory balloon (balloon, info balloon)",
      "", create_balloon },
    { "virtio-net-pci", "virtio-net", "Virtio network device",
      "netdev=<str>  mac=<str>", create_net },
    { "virtio-serial-pci", "virtio-serial", "Virtio serial controller (consoles and ports)",
      "max_ports=<uint32>", create_serial },
    { "virtconsole", NULL, "Virtio console port (hvc0..) on a virtio-serial bus",
      "chardev=<str>  name=<str>  nr=<uint32>  bus=<str>", create_console },
    { "virtserialport", NULL, "Virtio serial port (/dev/vportNpM, /dev/virtio-ports/NAME)",
      "chardev=<str>  name=<str>  nr=<uint32>  bus=<str>", create_sport },
};
#define N_MODELS (sizeof(models) / sizeof(models[0]))

static const struct model *find_model(const char *name)
{
    for (size_t i = 0; i < N_MODELS; i++)
        if (!strcmp(models[i].name, name) || (models[i].alias && !strcmp(models[i].alias, name)))
            return &models[i];
    return NULL;
}

bool pci_board_model_known(const char *name) { return find_model(name) != NULL; }

static bool is_port_model(const struct model *m)
{
    return !strcmp(m->name, "virtconsole") || !strcmp(m->name, "virtserialport");
}

/* One line per model, as QEMU's -device help prints them. */
void pci_board_list_models(FILE *out)
{
    for (size_t i = 0; i < N_MODELS; i++) {
        const struct model *m = &models[i];
        fprintf(out, "name \"%s\", bus %s", m->name, is_port_model(m) ? "virtio-serial-bus" : "PCI");
        if (m->alias)
            fprintf(out, ", alias \"%s\"", m->alias);
        fprintf(out, ", desc \"%s\"\n", m->desc);
    }
}

int pci_board_model_help(const char *name, FILE *out)
{
    const struct model *m = find_model(name);
    if (!m)
        return -ENOENT;
    fprintf(out, "%s options (%s):\n", m->name, m->desc);
    const char *p = m->props;
    while (*p) {
        const char *e = strchr(p, '\n');
        int n = e ? (int)(e - p) : (int)strlen(p);
        fprintf(out, "  %.*s\n", n, p);
        p += n + (e != NULL);
    }
    if (!is_port_model(m))
        fprintf(out, "  addr=<int32>  bus=<str>  id=<str>\n");
    return 0;
}

/* addr=SLOT[.FN], hex as QEMU reads it ("05.0", "0x5"). */
static int parse_addr(const char *s, int *devfn, struct error *err)
{
    char *end;
    unsigned long slot = strtoul(s, &end, 16), fn = 0;
    if (end != s && *end == '.')
        fn = strtoul(end + 1, &end, 16);
    if (end == s || *end || slot >= PCI_MAX_DEV || fn > 7)
        return error_set(err, -EINVAL, "Property 'addr' doesn't take value '%s'", s);
    *devfn = (int)(slot << 3 | fn);
    return 0;
}

static int create_device(struct pci_bus *bus, struct mainloop *ml, struct pci_board_config *cfg,
                         const char *spec, struct error *err)
{
    struct opts o;
    if (opts_parse(&o, spec, "driver", err) < 0)
        return -EINVAL;
    const char *drv = opts_get(&o, "driver");
    const struct model *m = drv ? find_model(drv) : NULL;
    int r = 0;
    struct model_ctx c = { bus, ml, cfg, &o, -1, opts_get(&o, "id") };
    if (!m)
        r = error_set(err, -EINVAL, "'%s' is not a valid device model name", drv ? drv : "");
    bool port = m && is_port_model(m);
    const char *busname = port ? NULL : opts_get(&o, "bus");
    const char *addr = port ? NULL : opts_get(&o, "addr");
    if (!r && busname && strcmp(busname, "pci.0"))
        r = error_set(err, -ENOENT, "Bus '%s' not found", busname);
    if (!r && addr)
        r = parse_addr(addr, &c.devfn, err);
    if (!r)
        r = m->create(&c, err);
    opts_free(&o);
    return r;
}

static int create_drive_device(struct pci_bus *bus, struct mainloop *ml,
                               struct pci_board_config *cfg, struct drive_config *dc,
                               struct error *err)
{
    struct model_ctx c = { bus, ml, cfg, NULL, -1, NULL };
    struct virtio_blk_conf conf = { .num_queues = 1, .queue_size = 256,
                                    .logical_block_size = 512, .physical_block_size = 512 };
    dc->claimed = true;
    int r = blk_open(&c, dc, false, &conf, err);
    if (r < 0)
        error_prepend(err, "%s: ", dc->spec);
    return r;
}

int pci_board_populate(struct pci_bus *bus, struct mainloop *ml, struct pci_board_config *cfg,
                       struct error *err)
{
    if (!cfg)
        return 0;
    int nr = net_open_all(ml, err);      /* -netdev backends, before the NICs that use them */
    if (nr < 0)
        return nr;
    for (int i = 0; i < cfg->n_drives; i++)
        if (cfg->snapshot)
            cfg->drives[i].snapshot = true;
    for (int i = 0; i < cfg->n_devices; i++) {
        struct device_config *dv = &cfg->devices[i];
        int r;
        if (!dv->spec) {
            if (dv->drive < 0 || dv->drive >= cfg->n_drives)
                continue;
            r = create_drive_device(bus, ml, cfg, &cfg->drives[dv->drive], err);
        } else {
            r = create_device(bus, ml, cfg, dv->spec, err);
            if (r < 0)
                error_prepend(err, "-device %s: ", dv->spec);
        }
        if (r < 0)
            return r;
    }
    for (int i = 0; i < cfg->n_drives; i++)
        if (!cfg->drives[i].claimed)
            warn_report("%s: drive is not used by any device", cfg->drives[i].spec);
    return 0;
}
