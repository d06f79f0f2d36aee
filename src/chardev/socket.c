/* socket backend: unix (path=) or tcp (host=, port=), as a client or a
 * server (server=on) that serves one peer at a time. A server waits for its
 * first peer before the guest starts unless wait=off (legacy: nowait).
 * Output while no peer is connected is discarded, as in QEMU. */
#include "chardev/chardev_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "util/mainloop.h"

struct socket_chr {
    struct chardev chr;
    int listen_fd, fd;
    bool listening_watched;
    char *unlink_path;          /* our unix server socket, removed on free */
};

static void sock_close_peer(struct socket_chr *s)
{
    if (s->fd < 0)
        return;
    chardev_unwatch_input(&s->chr);
    close(s->fd);
    s->fd = -1;
    s->chr.connected = false;
    chardev_fe_event(&s->chr, CHARDEV_CLOSED);
}

static void sock_eof(struct chardev *chr)
{
    sock_close_peer((struct socket_chr *)chr);
}

static void sock_set_peer(struct socket_chr *s, int fd)
{
    s->fd = fd;
    s->chr.connected = true;
    chardev_watch_input(&s->chr, fd, sock_eof);
    chardev_fe_event(&s->chr, CHARDEV_OPENED);
}

static void sock_accept(void *opaque, uint32_t events)
{
    struct socket_chr *s = opaque;
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (s->fd >= 0) {
        close(fd);          /* one peer at a time */
        return;
    }
    sock_set_peer(s, fd);
}

static int sock_write(struct chardev *chr, const uint8_t *buf, int len)
{
    struct socket_chr *s = (struct socket_chr *)chr;
    int done = 0;
    while (s->fd >= 0 && done < len) {
        ssize_t n = send(s->fd, buf + done, len - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += n;
        } else if (n < 0 && errno == EAGAIN) {
            struct pollfd p = { .fd = s->fd, .events = POLLOUT };
            poll(&p, 1, 1000);
        } else if (n < 0 && errno != EINTR) {
            sock_close_peer(s);
        }
    }
    return len;
}

static void sock_free(struct chardev *chr)
{
    struct socket_chr *s = (struct socket_chr *)chr;
    if (s->fd >= 0) {
        chardev_unwatch_input(chr);
        close(s->fd);
    }
    if (s->listen_fd >= 0) {
        if (s->listening_watched)
            ml_del_fd(chr->ml, s->listen_fd);
        close(s->listen_fd);
    }
    if (s->unlink_path)
        unlink(s->unlink_path);
    free(s->unlink_path);
    free(s);
}

static const struct chardev_ops socket_ops = { .write = sock_write, .free = sock_free };

static int unix_socket(const char *path, bool server, struct error *err)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(a.sun_path))
        return error_set(err, -ENAMETOOLONG, "UNIX socket path '%s' is too long", path);
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return error_set_errno(err, -errno, "Failed to create socket");
    if (server) {
        unlink(path);
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1) < 0) {
            int e = -errno;
            close(fd);
            return error_set_errno(err, e, "Failed to bind socket to %s", path);
        }
    } else if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int e = -errno;
        close(fd);
        return error_set_errno(err, e, "Failed to connect to '%s'", path);
    }
    return fd;
}

static int tcp_socket(const char *host, const char *port, bool server, struct error *err)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = server ? AI_PASSIVE : 0 };
    struct addrinfo *res;
    int r = getaddrinfo(host && *host ? host : NULL, port, &hints, &res);
    if (r != 0)
        return error_set(err, -EINVAL, "address resolution failed for %s:%s: %s",
                         host ? host : "", port, gai_strerror(r));
    int fd = -1, e = -EINVAL;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = -errno;
            continue;
        }
        int one = 1;
        if (server) {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            r = bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? listen(fd, 1) : -1;
        } else {
            r = connect(fd, ai->ai_addr, ai->ai_addrlen);
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        if (r < 0) {
            e = -errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return error_set_errno(err, e, "Failed to %s %s:%s", server ? "listen on" : "connect to",
                               host ? host : "", port);
    return fd;
}

struct chardev *chardev_socket_open(struct mainloop *ml, struct opts *o, struct error *err)
{
    const char *path = opts_get(o, "path"), *host = opts_get(o, "host");
    const char *port = opts_get(o, "port");
    bool server, wait, nowait;
    if (opts_get_bool(o, "server", false, &server, err) < 0 ||
        opts_get_bool(o, "nowait", false, &nowait, err) < 0 ||
        opts_get_bool(o, "wait", !nowait, &wait, err) < 0)
        return NULL;
    if (!path && !port)
        return error_set(err, -EINVAL, "chardev: socket: 'path' or 'port' is required"), NULL;
    int fd = path ? unix_socket(path, server, err) : tcp_socket(host, port, server, err);
    if (fd < 0)
        return NULL;
    struct socket_chr *s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        return error_set(err, -ENOMEM, "out of memory"), NULL;
    }
    char name[1200];
    if (path)
        snprintf(name, sizeof(name), "unix:%s%s", path, server ? ",server=on" : "");
    else
        snprintf(name, sizeof(name), "tcp:%s:%s%s", host ? host : "", port,
                 server ? ",server=on" : "");
    chardev_init(&s->chr, &socket_ops, ml, name);
    s->fd = s->listen_fd = -1;
    if (!server) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        sock_set_peer(s, fd);
        return &s->chr;
    }
    s->listen_fd = fd;
    s->chr.connected = false;
    if (path)
        s->unlink_path = strdup(path);
    if (wait) {
        fprintf(stderr, "%s: info: waiting for connection on: %s\n", error_progname(), name);
        int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0)
            sock_set_peer(s, c);
    }
    if (ml_add_fd(ml, fd, EPOLLIN, sock_accept, s) == 0)
        s->listening_watched = true;
    return &s->chr;
}
