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
    /* Connection events for sockets: 1 opened, 0 closed. May be NULL. */
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

#endif
