/* quokka-bridge-helper --br=BRIDGE --fd=N [--use-vnet]
 *
 * Creates a tap, attaches it to BRIDGE if bridge.conf allows it, and hands
 * the tap's fd back over the unix socket N (SCM_RIGHTS). Meant to be
 * installed setuid root or with CAP_NET_ADMIN, so it trusts nothing from
 * its caller but the bridge name: the ACL path is fixed unless the helper
 * runs with no privilege gained at exec (no setuid, no file capabilities;
 * then QUOKKA_BRIDGE_CONF may name another, which tests use). Same interface as qemu-bridge-helper. */
#include <errno.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "net/bridge-conf.h"
#include "net/net_int.h"

static void usage(void)
{
    fprintf(stderr, "Usage: quokka-bridge-helper [--use-vnet] --br=bridge --fd=unixfd\n");
}

static int send_fd(int sock, int fd)
{
    char byte = 0;
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
    memset(&u, 0, sizeof(u));
    struct iovec v = { &byte, 1 };
    struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = u.b,
                        .msg_controllen = sizeof(u.b) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(sock, &m, 0) == 1 ? 0 : -errno;
}

static int attach(const char *br, const char *tap)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    struct ifreq ifr = {0};
    int r = 0;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", tap);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        r = -errno;
    ifr.ifr_flags |= IFF_UP;
    if (!r && ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        r = -errno;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", br);
    ifr.ifr_ifindex = (int)if_nametoindex(tap);
    if (!r && ioctl(s, SIOCBRADDIF, &ifr) < 0)
        r = -errno;
    close(s);
    return r;
}

int main(int argc, char **argv)
{
    const char *br = NULL;
    int unixfd = -1;
    bool vnet = false;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--br=", 5))
            br = argv[i] + 5;
        else if (!strncmp(argv[i], "--fd=", 5))
            unixfd = atoi(argv[i] + 5);
        else if (!strcmp(argv[i], "--use-vnet"))
            vnet = true;
        else {
            usage();
            return 2;
        }
    }
    if (!br || unixfd < 0 || strlen(br) >= IFNAMSIZ || strchr(br, '/')) {
        usage();
        return 2;
    }
    const char *conf = BRIDGE_CONF_PATH;
    /* AT_SECURE is set for setuid and for file-capability binaries alike */
    if (!getauxval(AT_SECURE) && getenv("QUOKKA_BRIDGE_CONF"))
        conf = getenv("QUOKKA_BRIDGE_CONF");
    struct bridge_acl acl = {0};
    struct error err = {0};
    if (bridge_conf_check(conf, br, &acl, &err) < 0) {
        fprintf(stderr, "quokka-bridge-helper: failed to parse ACL file: %s\n", err.msg);
        return 1;
    }
    if (acl.denied || !acl.allowed) {
        fprintf(stderr, "quokka-bridge-helper: access denied by acl file: bridge '%s' is not "
                "allowed in %s\n", br, conf);
        return 1;
    }
    char tap[IFNAMSIZ];
    int fd = net_tap_open("tap%d", vnet, tap, &err);
    if (fd < 0) {
        fprintf(stderr, "quokka-bridge-helper: %s\n", err.msg);
        return 1;
    }
    int r = attach(br, tap);
    if (r < 0) {
        fprintf(stderr, "quokka-bridge-helper: failed to add %s to bridge %s: %s\n", tap, br,
                strerror(-r));
        return 1;
    }
    if ((r = send_fd(unixfd, fd)) < 0) {
        fprintf(stderr, "quokka-bridge-helper: failed to send the tap fd: %s\n", strerror(-r));
        return 1;
    }
    return 0;
}
