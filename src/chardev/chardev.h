/* Character devices: the host side of a serial port, a virtio console or
 * the monitor. A frontend (UART, monitor) writes bytes out and receives
 * bytes through a callback; it never touches a host fd. */
#ifndef QUOKKA_CHARDEV_CHARDEV_H
#define QUOKKA_CHARDEV_CHARDEV_H

#include <stddef.h>
#include <stdint.h>
#include "util/error.h"

struct mainloop;
struct chardev;

struct chardev_frontend {
    /* How many bytes the frontend can take now (flow control; 0 = later). */
    int (*can_receive)(void *opaque);
    void (*receive)(void *opaque, const uint8_t *buf, int len);
    /* Connection events (enum chardev_event): for sockets 1 opened, 0
     * closed; a mux also sends break and focus changes. May be NULL. */
    void (*event)(void *opaque, int opened);
    void *opaque;
};

/* Create from a -serial/-monitor style spec ("stdio", "mon:stdio", "null",
 * "file:PATH", "pty", "unix:PATH,server,nowait", "tcp:HOST:PORT,server,nowait")
 * or a -chardev option string ("socket,id=c0,path=...,server=on,wait=off"). */
struct chardev *chardev_new_spec(struct mainloop *ml, const char *spec, const char *id,
                                 struct error *err);
struct chardev *chardev_new_opts(struct mainloop *ml, const char *opts, struct error *err);
struct chardev *chardev_find(const char *id);
void chardev_free(struct chardev *chr);

/* Attach a frontend. For a mux (mon:stdio) each attach adds one focus
 * target; Ctrl-A c cycles between them. */
int chardev_attach(struct chardev *chr, const struct chardev_frontend *fe, struct error *err);
/* Write all of buf (may block briefly on a full pipe; never drops silently). */
int chardev_write(struct chardev *chr, const uint8_t *buf, int len);
/* The frontend can take more input now: resume reading the host side. */
void chardev_accept_input(struct chardev *chr);

/* Values of the frontend's event argument. Frontends that only care about
 * connections must compare with CHARDEV_OPENED, not test for non-zero. */
enum chardev_event {
    CHARDEV_CLOSED = 0,
    CHARDEV_OPENED = 1,
    CHARDEV_BREAK = 2,          /* Ctrl-A b on a mux: a UART line break */
    CHARDEV_FOCUS_IN = 3,       /* a mux gave this frontend the input */
    CHARDEV_FOCUS_OUT = 4,
};

/* What Ctrl-A x on a mux does (the machine's quit); default: exit(0). */
void chardev_set_quit_handler(void (*fn)(void *opaque), void *opaque);
/* For `info chardev`: calls fn for each chardev in creation order. */
void chardev_foreach(void (*fn)(void *opaque, const char *id, const char *filename),
                     void *opaque);
/* Free every chardev (restores the terminal). */
void chardev_free_all(void);

#endif
