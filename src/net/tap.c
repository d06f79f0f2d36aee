/* -netdev tap: a /dev/net/tun interface in TAP mode (ifname=, fd=,
 * script=/downscript= run with the interface name, vnet_hdr=). As QEMU's,
 * vnet_hdr is on unless turned off: the kernel then puts a virtio_net_hdr
 * (12 bytes, virtio 1.x) before each frame. A virtio NIC peered with the
 * tap passes those headers through, so checksums and segmentation are the
 * kernel's job (TUNSETOFFLOAD follows what the guest's driver accepts);
 * for any other peer the header is zero going out and dropped coming in. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "net/net_int.h"
#include "util/mainloop.h"

#define TAP_VNET_HDR NET_VNET_HDR_LEN

struct nettap {
    struct net_client nc;
    struct mainloop *ml;
    int fd;
    bool vnet_hdr, polling;
    char ifname[IFNAMSIZ];
    char *downscript;
    uint8_t buf[TAP_VNET_HDR + NET_MAX_FRAME + 1];   /* a full buffer: the frame was cut */
};

static void tap_poll(struct nettap *t, bool on)
{
    if (t->polling != on) {
        ml_mod_fd(t->ml, t->fd, on ? EPOLLIN : 0);
        t->polling = on;
    }
}

static void tap_readable(void *opaque, uint32_t events)
{
    struct nettap *t = opaque;
    unsigned skip = t->vnet_hdr && !t->nc.vnet_hdr ? TAP_VNET_HDR : 0;
    for (int i = 0; i < 64; i++) {
        if (!net_peer_can_receive(&t->nc)) {
            tap_poll(t, false);
            return;
        }
        ssize_t n = read(t->fd, t->buf, sizeof(t->buf));
        if (n <= (ssize_t)skip)
            return;
        if (n == (ssize_t)sizeof(t->buf)) {
            t->nc.dropped++;
            continue;
        }
        net_send_buf(&t->nc, t->buf + skip, (size_t)n - skip);
    }
}

static void tap_resume(struct net_client *nc) { tap_poll(nc->opaque, true); }

static ssize_t tap_receive(struct net_client *nc, const struct iovec *iov, int cnt)
{
    struct nettap *t = nc->opaque;
    uint8_t hdr[TAP_VNET_HDR] = {0};
    struct iovec v[17];
    int k = 0;
    size_t len = 0;
    if (t->vnet_hdr && !nc->vnet_hdr)        /* the peer's frames carry none */
        v[k++] = (struct iovec){ hdr, sizeof(hdr) };
    for (int i = 0; i < cnt && k < 17; i++) {
        v[k++] = iov[i];
        len += iov[i].iov_len;
    }
    ssize_t n;
    do
        n = writev(t->fd, v, k);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : (ssize_t)len;
}

static void tap_info(struct net_client *nc, char *buf, int len)
{
    struct nettap *t = nc->opaque;
    snprintf(buf, len, "ifname=%s%s", t->ifname, t->vnet_hdr ? ",vnet_hdr=on" : "");
}

static int run_script(const char *script, const char *ifname, struct error *err)
{
    pid_t pid = fork();
    if (pid < 0)
        return error_set_errno(err, -errno, "fork");
    if (!pid) {
        execl(script, script, ifname, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        return error_set(err, -EIO, "network script %s failed with status %d", script,
                         WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}

static void tap_cleanup(struct net_client *nc)
{
    struct nettap *t = nc->opaque;
    if (t->downscript)
        run_script(t->downscript, t->ifname, NULL);
}

static void tap_set_offload(struct net_client *nc, unsigned off)
{
    struct nettap *t = nc->opaque;
    unsigned f = (off & NET_OFFLOAD_CSUM ? TUN_F_CSUM : 0) |
                 (off & NET_OFFLOAD_TSO4 ? TUN_F_TSO4 : 0) |
                 (off & NET_OFFLOAD_TSO6 ? TUN_F_TSO6 : 0) |
                 (off & NET_OFFLOAD_ECN ? TUN_F_TSO_ECN : 0);
    if (ioctl(t->fd, TUNSETOFFLOAD, f) < 0 && f)
        warn_report("netdev %s: the tap refuses offloads %#x: %s", nc->name, f,
                    strerror(errno));
}

static const struct net_client_ops tap_ops = {
    .type = "tap", .receive = tap_receive, .resume = tap_resume, .info = tap_info,
    .cleanup = tap_cleanup, .set_offload = tap_set_offload,
};

int net_tap_from_fd(struct mainloop *ml, int fd, bool vnet_hdr, const char *name,
                    const char *ifname, const char *downscript, struct net_client **out,
                    struct error *err)
{
    struct nettap *t = calloc(1, sizeof(*t));
    if (!t)
        return error_set(err, -ENOMEM, "out of memory");
    t->ml = ml;
    t->fd = fd;
    t->vnet_hdr = vnet_hdr;
    snprintf(t->ifname, sizeof(t->ifname), "%s", ifname ? ifname : "");
    if (downscript && !(t->downscript = strdup(downscript))) {
        free(t);
        return error_set(err, -ENOMEM, "out of memory");
    }
    if (vnet_hdr && ioctl(fd, TUNSETVNETHDRSZ, &(int){ TAP_VNET_HDR }) < 0) {
        free(t->downscript);
        free(t);
        return error_set_errno(err, -errno, "could not set the tap's virtio header size");
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    int r = net_client_add(&t->nc, &tap_ops, name, t);
    t->nc.vnet_hdr_capable = vnet_hdr;
    if (!r)
        r = ml_add_fd(ml, fd, EPOLLIN, tap_readable, t);
    if (r) {
        free(t->downscript);
        free(t);
        return error_set(err, r, "could not watch the tap fd");
    }
    t->polling = true;
    *out = &t->nc;
    return 0;
}

/* Open /dev/net/tun as a TAP named ifname (may be a pattern like tap%d). */
int net_tap_open(const char *ifname, bool vnet_hdr, char *actual, struct error *err)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return error_set_errno(err, -errno, "could not open /dev/net/tun");
    struct ifreq ifr = {0};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet_hdr ? IFF_VNET_HDR : 0);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname && *ifname ? ifname : "tap%d");
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = -errno;
        close(fd);
        return error_set_errno(err, e, "could not configure /dev/net/tun (%s)", ifr.ifr_name);
    }
    snprintf(actual, IFNAMSIZ, "%s", ifr.ifr_name);
    return fd;
}

int net_tap_create(struct mainloop *ml, struct opts *o, const char *name,
                   struct net_client **out, struct error *err)
{
    const char *ifname = opts_get(o, "ifname"), *fds = opts_get(o, "fd");
    const char *script = opts_get(o, "script"), *down = opts_get(o, "downscript");
    bool vh = true, vh_given = opts_get(o, "vnet_hdr") != NULL;
    int r = opts_get_bool(o, "vnet_hdr", true, &vh, err);
    if (!r)
        r = opts_check_unused(o, err);
    if (r)
        return r;
    if (script && !strcmp(script, "no"))
        script = NULL;
    if (down && !strcmp(down, "no"))
        down = NULL;
    char actual[IFNAMSIZ] = "";
    int fd;
    if (fds) {
        char *end;
        fd = (int)strtol(fds, &end, 10);
        if (*end || fd < 0 || fcntl(fd, F_GETFD) < 0)
            return error_set(err, -EBADF, "fd=%s is not an open file descriptor", fds);
        if (ifname || script)
            return error_set(err, -EINVAL, "fd= can't be used with ifname= or script=");
        struct ifreq ifr = {0};
        if (ioctl(fd, TUNGETIFF, &ifr) == 0)
            snprintf(actual, sizeof(actual), "%s", ifr.ifr_name);
        if (vh && vh_given && !(ifr.ifr_flags & IFF_VNET_HDR))
            return error_set(err, -EINVAL, "vnet_hdr=on but the tap fd has no vnet header");
        vh = ifr.ifr_flags & IFF_VNET_HDR;
    } else {
        fd = net_tap_open(ifname, vh, actual, err);
        if (fd < 0)
            return fd;
        if (script && (r = run_script(script, actual, err)) < 0) {
            close(fd);
            return r;
        }
    }
    r = net_tap_from_fd(ml, fd, vh, name, actual, down, out, err);
    if (r && !fds)
        close(fd);
    return r;
}
