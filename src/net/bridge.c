/* -netdev bridge: the tap is made by quokka-bridge-helper (setuid root or
 * with CAP_NET_ADMIN), which checks bridge.conf, attaches the tap to the
 * bridge and passes its fd back over a socketpair (SCM_RIGHTS). Same
 * command line as qemu-bridge-helper: HELPER --br=BRIDGE --fd=N. */
#include <errno.h>
#include <limits.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "net/net_int.h"

bool net_find_bridge_helper(char *path, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            snprintf(path, len, "%s/quokka-bridge-helper", self);
            if (!access(path, X_OK))
                return true;
        }
    }
    for (const char *p = getenv("PATH"); p && *p;) {
        const char *end = strchr(p, ':');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        snprintf(path, len, "%.*s/quokka-bridge-helper", (int)l, p);
        if (!access(path, X_OK))
            return true;
        p = end ? end + 1 : NULL;
    }
    /* Not found: the bare name makes exec's own error name the helper. */
    snprintf(path, len, "quokka-bridge-helper");
    return false;
}

static int recv_fd(int sock, struct error *err)
{
    char byte;
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
    struct iovec v = { &byte, 1 };
    struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = u.b,
                        .msg_controllen = sizeof(u.b) };
    ssize_t n;
    do
        n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&m) : NULL;
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
        c->cmsg_len != CMSG_LEN(sizeof(int)))
        return -EIO;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(fd));
    return fd;
}

/* Run the helper; returns the tap fd or -errno (the helper's stderr
 * reaches the user directly, with its reason). */
int net_bridge_run_helper(const char *helper, const char *br, struct error *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return error_set_errno(err, -errno, "socketpair");
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return error_set_errno(err, -errno, "fork");
    }
    if (!pid) {
        char fdarg[32], brarg[64];
        int fd = dup(sv[1]);               /* without CLOEXEC */
        snprintf(fdarg, sizeof(fdarg), "--fd=%d", fd);
        snprintf(brarg, sizeof(brarg), "--br=%s", br);
        /* --use-vnet as QEMU passes it: the tap then carries virtio headers */
        execlp(helper, helper, "--use-vnet", brarg, fdarg, (char *)NULL);
        fprintf(stderr, "failed to execute helper %s: %s\n", helper, strerror(errno));
        _exit(127);
    }
    close(sv[1]);
    int fd = recv_fd(sv[0], err);
    close(sv[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (fd >= 0 && WIFEXITED(st) && !WEXITSTATUS(st))
        return fd;
    if (fd >= 0)
        close(fd);
    return error_set(err, -EIO, "bridge helper failed");
}

int net_bridge_create(struct mainloop *ml, struct opts *o, const char *name,
                      struct net_client **out, struct error *err)
{
    const char *br = opts_get(o, "br"), *helper = opts_get(o, "helper");
    int r = opts_check_unused(o, err);
    if (r)
        return r;
    char def[PATH_MAX];
    if (!helper) {
        net_find_bridge_helper(def, sizeof(def));
        helper = def;
    }
    int fd = net_bridge_run_helper(helper, br ? br : "br0", err);
    if (fd < 0)
        return fd;
    struct ifreq ifr = {0};
    char ifname[IFNAMSIZ] = "";
    if (ioctl(fd, TUNGETIFF, &ifr) == 0)
        snprintf(ifname, sizeof(ifname), "%s", ifr.ifr_name);
    r = net_tap_from_fd(ml, fd, (ifr.ifr_flags & IFF_VNET_HDR) != 0, name, ifname, NULL, out,
                        err);
    if (r)
        close(fd);
    return r;
}
