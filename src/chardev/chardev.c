/* Chardev registry, spec parsing (legacy -serial forms and -chardev option
 * strings), and the flow-controlled input path shared by fd backends. */
#include "chardev/chardev_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "util/mainloop.h"

static struct chardev *chardevs;
static void (*quit_fn)(void *);
static void *quit_opaque;

/* Per-fd read callbacks need to find the chardev and its eof hook. */
struct watch {
    struct chardev *chr;
    void (*eof)(struct chardev *chr);
};
static struct watch *watch_of(struct chardev *chr);

void chardev_init(struct chardev *chr, const struct chardev_ops *ops, struct mainloop *ml,
                  const char *filename)
{
    chr->ops = ops;
    chr->ml = ml;
    chr->filename = strdup(filename);
    chr->in_fd = -1;
    chr->connected = true;
}

static void chardev_register(struct chardev *chr, const char *id)
{
    chr->id = strdup(id ? id : "");
    struct chardev **p = &chardevs;
    while (*p)
        p = &(*p)->next;
    *p = chr;
    chardev_pty_announce(chr);
}

struct chardev *chardev_find(const char *id)
{
    for (struct chardev *c = chardevs; c; c = c->next)
        if (!strcmp(c->id, id))
            return c;
    return NULL;
}

void chardev_foreach(void (*fn)(void *, const char *, const char *), void *opaque)
{
    for (struct chardev *c = chardevs; c; c = c->next)
        fn(opaque, c->id, c->filename);
}

static const struct {
    const char *name;
    chardev_open_fn *open;
} backends[] = {
    { "stdio", chardev_stdio_open },
    { "null", chardev_null_open },
    { "file", chardev_file_open },
    { "pty", chardev_pty_open },
    { "socket", chardev_socket_open },
};

static struct chardev *open_backend(struct mainloop *ml, struct opts *o, const char *id,
                                    struct error *err)
{
    const char *type = opts_get(o, "backend");
    bool mux = false;
    if (!type)
        return error_set(err, -EINVAL, "chardev: backend type is missing"), NULL;
    if (opts_get_bool(o, "mux", false, &mux, err) < 0)
        return NULL;
    if (id && chardev_find(id))
        return error_set(err, -EEXIST, "attempt to add duplicate property '%s' to object", id),
               NULL;
    chardev_open_fn *open = NULL;
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (!strcmp(backends[i].name, type))
            open = backends[i].open;
    if (!open)
        return error_set(err, -EINVAL, "'%s' is not a valid char driver name", type), NULL;
    struct chardev *chr = open(ml, o, err);
    if (!chr)
        return NULL;
    if (opts_check_unused(o, err) < 0) {
        chr->ops->free(chr);
        return NULL;
    }
    if (!mux) {
        chardev_register(chr, id);
        return chr;
    }
    char bid[256];
    snprintf(bid, sizeof(bid), "%s-base", id ? id : "mux");
    chardev_register(chr, bid);
    struct chardev *m = chardev_mux_new(ml, chr, err);
    if (m)
        chardev_register(m, id);
    return m;
}

struct chardev *chardev_new_opts(struct mainloop *ml, const char *s, struct error *err)
{
    struct opts o;
    if (opts_parse(&o, s, "backend", err) < 0)
        return NULL;
    const char *id = opts_get(&o, "id");
    struct chardev *chr = NULL;
    if (!id)
        error_set(err, -EINVAL, "chardev: \"%s\" missing id= option", s);
    else
        chr = open_backend(ml, &o, id, err);
    opts_free(&o);
    return chr;
}

/* Turn "unix:PATH,server,nowait" / "tcp:HOST:PORT,..." / "file:PATH" into
 * -chardev keys, so both spellings share one parser. */
static int spec_to_opts(const char *spec, struct opts *o, struct error *err)
{
    const char *rest = NULL, *type = spec;
    char *tmp = NULL;
    int r;
    if (!strncmp(spec, "unix:", 5) || !strncmp(spec, "file:", 5)) {
        type = spec[0] == 'u' ? "socket" : "file";
        r = asprintf(&tmp, "%s,path=%s", type, spec + 5);
    } else if (!strncmp(spec, "tcp:", 4)) {
        rest = spec + 4;
        const char *colon = strrchr(rest, ':');
        const char *comma = strchr(rest, ',');
        if (comma && colon > comma)
            colon = NULL;
        if (!colon)
            return error_set(err, -EINVAL, "tcp: expects HOST:PORT in '%s'", spec);
        r = asprintf(&tmp, "socket,host=%.*s,port=%s", (int)(colon - rest), rest, colon + 1);
    } else {
        r = asprintf(&tmp, "%s", spec);
    }
    if (r < 0)
        return -ENOMEM;
    r = opts_parse(o, tmp, "backend", err);
    free(tmp);
    return r;
}

struct chardev *chardev_new_spec(struct mainloop *ml, const char *spec, const char *id,
                                 struct error *err)
{
    bool mux = !strncmp(spec, "mon:", 4);
    if (mux)
        spec += 4;
    if (!strcmp(spec, "vc") || !strncmp(spec, "vc:", 3))
        spec = "null";      /* no graphical console: a text console shows nothing */
    struct opts o;
    if (spec_to_opts(spec, &o, err) < 0)
        return NULL;
    if (mux) {
        o.v = realloc(o.v, sizeof(*o.v) * (o.n + 1));
        o.v[o.n++] = (struct opt){ .key = strdup("mux"), .value = strdup("on") };
        /* Ctrl-C belongs to the guest when the monitor shares the terminal. */
        if (!strcmp(spec, "stdio")) {
            o.v = realloc(o.v, sizeof(*o.v) * (o.n + 1));
            o.v[o.n++] = (struct opt){ .key = strdup("signal"), .value = strdup("off") };
        }
    }
    struct chardev *chr = open_backend(ml, &o, id, err);
    opts_free(&o);
    return chr;
}

void chardev_free(struct chardev *chr)
{
    if (!chr)
        return;
    for (struct chardev **p = &chardevs; *p; p = &(*p)->next) {
        if (*p == chr) {
            *p = chr->next;
            break;
        }
    }
    chardev_unwatch_input(chr);
    free(chr->id);
    free(chr->filename);
    chr->ops->free(chr);
}

void chardev_free_all(void)
{
    /* Newest first: a mux goes before the backend under it. */
    while (chardevs) {
        struct chardev *last = chardevs;
        while (last->next)
            last = last->next;
        chardev_free(last);
    }
}

int chardev_attach(struct chardev *chr, const struct chardev_frontend *fe, struct error *err)
{
    if (chr->ops->attach)
        return chr->ops->attach(chr, fe, err);
    if (chr->attached)
        return error_set(err, -EBUSY, "chardev '%s' is already in use", chr->id);
    chr->fe = *fe;
    chr->attached = true;
    if (chr->connected)
        chardev_fe_event(chr, CHARDEV_OPENED);
    chardev_accept_input(chr);
    return 0;
}

int chardev_write(struct chardev *chr, const uint8_t *buf, int len)
{
    return chr->ops->write(chr, buf, len);
}

void chardev_accept_input(struct chardev *chr)
{
    if (chr->ops->accept_input) {
        chr->ops->accept_input(chr);
        return;
    }
    if (chr->in_watched && chr->in_paused) {
        chr->in_paused = false;
        ml_mod_fd(chr->ml, chr->in_fd, EPOLLIN);
    }
}

int chardev_fe_room(struct chardev *chr)
{
    if (!chr->attached)
        return 4096;        /* nobody listens: read and drop */
    return chr->fe.can_receive ? chr->fe.can_receive(chr->fe.opaque) : 4096;
}

void chardev_fe_receive(struct chardev *chr, const uint8_t *buf, int len)
{
    if (chr->attached && chr->fe.receive)
        chr->fe.receive(chr->fe.opaque, buf, len);
}

void chardev_fe_event(struct chardev *chr, int event)
{
    if (chr->attached && chr->fe.event)
        chr->fe.event(chr->fe.opaque, event);
}

/* The watch list is tiny (a few chardevs); a static table keeps it simple. */
static struct watch watches[64];

static struct watch *watch_of(struct chardev *chr)
{
    for (size_t i = 0; i < sizeof(watches) / sizeof(watches[0]); i++)
        if (watches[i].chr == chr)
            return &watches[i];
    return NULL;
}

static void input_ready(void *opaque, uint32_t events)
{
    struct watch *w = opaque;
    struct chardev *chr = w->chr;
    uint8_t buf[4096];
    int room = chardev_fe_room(chr);
    if (room <= 0) {
        chr->in_paused = true;
        ml_mod_fd(chr->ml, chr->in_fd, 0);
        return;
    }
    if (room > (int)sizeof(buf))
        room = sizeof(buf);
    ssize_t n = read(chr->in_fd, buf, room);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        void (*eof)(struct chardev *) = w->eof;
        chardev_unwatch_input(chr);
        if (eof)
            eof(chr);
        return;
    }
    chardev_fe_receive(chr, buf, n);
}

int chardev_watch_input(struct chardev *chr, int fd, void (*eof)(struct chardev *chr))
{
    struct watch *w = watch_of(NULL);
    if (!w)
        return -ENOSPC;
    int r = ml_add_fd(chr->ml, fd, EPOLLIN, input_ready, w);
    if (r < 0)
        return r;       /* e.g. EPERM: a regular file or /dev/null, never readable later */
    w->chr = chr;
    w->eof = eof;
    chr->in_fd = fd;
    chr->in_watched = true;
    chr->in_paused = false;
    return 0;
}

void chardev_unwatch_input(struct chardev *chr)
{
    struct watch *w = watch_of(chr);
    if (!chr->in_watched || !w)
        return;
    ml_del_fd(chr->ml, chr->in_fd);
    w->chr = NULL;
    chr->in_watched = false;
    chr->in_fd = -1;
}

int chardev_write_fd(int fd, const uint8_t *buf, int len)
{
    int done = 0;
    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n > 0) {
            done += n;
        } else if (n < 0 && errno == EAGAIN) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            poll(&p, 1, 1000);
        } else if (n < 0 && errno != EINTR) {
            return -errno;
        }
    }
    return len;
}

void chardev_set_quit_handler(void (*fn)(void *), void *opaque)
{
    quit_fn = fn;
    quit_opaque = opaque;
}

void chardev_quit(void)
{
    if (quit_fn) {
        quit_fn(quit_opaque);
        return;
    }
    chardev_free_all();
    exit(0);
}
