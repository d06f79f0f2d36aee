/* What chardev backends share: the object, its ops table, and helpers for
 * feeding host input to the frontend with flow control. One backend per
 * file (stdio.c, mux.c, null.c, file.c, pty.c, socket.c). */
#ifndef QUOKKA_CHARDEV_CHARDEV_INT_H
#define QUOKKA_CHARDEV_CHARDEV_INT_H

#include <stdbool.h>
#include "chardev/chardev.h"
#include "util/opts.h"

struct chardev_ops {
    /* Write all of buf; returns len or -errno. */
    int (*write)(struct chardev *chr, const uint8_t *buf, int len);
    /* Optional: the frontend has room again (default: resume in_fd). */
    void (*accept_input)(struct chardev *chr);
    /* Optional: attach for backends with several frontends (mux). */
    int (*attach)(struct chardev *chr, const struct chardev_frontend *fe, struct error *err);
    void (*free)(struct chardev *chr);
};

struct chardev {
    const struct chardev_ops *ops;
    struct mainloop *ml;
    char *id;
    char *filename;             /* as `info chardev` shows it */
    struct chardev_frontend fe;
    bool attached;
    int in_fd;                  /* host fd read for input, -1 if none */
    bool in_watched;            /* in_fd registered with the loop */
    bool in_paused;             /* frontend full: not polling in_fd */
    bool connected;             /* host side open (a socket has a peer) */
    struct chardev *next;
};

/* A backend's constructor: opts are the -chardev keys (id already taken);
 * it must consume every key it understands. Returns a chardev whose first
 * member is set by chardev_init(), or NULL with err set. */
typedef struct chardev *chardev_open_fn(struct mainloop *ml, struct opts *o, struct error *err);

chardev_open_fn chardev_stdio_open, chardev_null_open, chardev_file_open, chardev_pty_open,
    chardev_socket_open;
/* Mux over an existing backend (mon:X, mux=on). */
struct chardev *chardev_mux_new(struct mainloop *ml, struct chardev *backend, struct error *err);

void chardev_init(struct chardev *chr, const struct chardev_ops *ops, struct mainloop *ml,
                  const char *filename);

/* Host input: how much the frontend takes now (0: pause), and delivery. */
int chardev_fe_room(struct chardev *chr);
void chardev_fe_receive(struct chardev *chr, const uint8_t *buf, int len);
void chardev_fe_event(struct chardev *chr, int event);

/* Poll fd for input on chr's behalf (flow-controlled); eof(chr) is called
 * on end of file or error (may be NULL: then input just stops). */
int chardev_watch_input(struct chardev *chr, int fd, void (*eof)(struct chardev *chr));
void chardev_unwatch_input(struct chardev *chr);

/* write(2) all of buf to a possibly non-blocking fd, waiting in poll(2). */
int chardev_write_fd(int fd, const uint8_t *buf, int len);

/* Prints where a pty went, once its id is known. */
void chardev_pty_announce(struct chardev *chr);

/* Called by the mux on Ctrl-A x. */
void chardev_quit(void);

#endif
