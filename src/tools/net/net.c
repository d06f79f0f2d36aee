/* quokka-net: a host bridge for VMs in one command, and its exact undo.
 *   quokka-net up BRIDGE --address 192.168.10.1/24 [--nat UPLINK] [--dhcp]
 *   quokka-net down BRIDGE
 *   quokka-net status
 * `up` creates the bridge with that address, turns on IPv4 forwarding,
 * masquerades the bridge's subnet out of UPLINK (an nftables table of its
 * own), serves DHCP and DNS on it (dnsmasq if it is installed, else a
 * small server of ours: serve.c), and allows it in bridge.conf; what it
 * changed is written to a state file, and `down` undoes exactly that.
 * Environment: QUOKKA_NET_STATE_DIR (/run/quokka-net), QUOKKA_BRIDGE_CONF
 * (/etc/quokka/bridge.conf), QUOKKA_NET_DHCP=builtin|dnsmasq (which DHCP
 * server; default: dnsmasq if found), QUOKKA_NET_DNS_UPSTREAM (the
 * built-in server's resolver; default: /etc/resolv.conf's first). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "net/bridge-conf.h"
#include "serve.h"

struct state {
    char bridge[16], address[64], uplink[16];
    int forward_was;          /* -1: untouched */
    int dnsmasq_pid;                 /* the DHCP server's pid, dnsmasq or ours */
    int dhcp_builtin;
    int conf_added;
};

static const char *state_dir(void)
{
    const char *d = getenv("QUOKKA_NET_STATE_DIR");
    return d ? d : "/run/quokka-net";
}

static const char *conf_path(void)
{
    const char *c = getenv("QUOKKA_BRIDGE_CONF");
    return c ? c : BRIDGE_CONF_PATH;
}

static int run(const char *first, ...)
{
    const char *argv[32];
    int n = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 31; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (!pid) {
        execvp(argv[0], (char **)argv);
        fprintf(stderr, "quokka-net: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : -EIO;
}

static void state_file(const char *br, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.state", state_dir(), br);
}

static int state_save(const struct state *s)
{
    char p[512];
    mkdir(state_dir(), 0755);
    state_file(s->bridge, p, sizeof(p));
    FILE *f = fopen(p, "w");
    if (!f)
        return -errno;
    fprintf(f, "bridge=%s\naddress=%s\nuplink=%s\nforward_was=%d\ndnsmasq_pid=%d\n"
               "dhcp_builtin=%d\nconf_added=%d\n", s->bridge, s->address, s->uplink,
            s->forward_was, s->dnsmasq_pid, s->dhcp_builtin, s->conf_added);
    return fclose(f) ? -errno : 0;
}

static int state_load(const char *br, struct state *s)
{
    char p[512], line[256];
    state_file(br, p, sizeof(p));
    FILE *f = fopen(p, "r");
    if (!f)
        return -errno;
    memset(s, 0, sizeof(*s));
    s->forward_was = -1;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq++ = 0;
        if (!strcmp(line, "bridge")) snprintf(s->bridge, sizeof(s->bridge), "%s", eq);
        else if (!strcmp(line, "address")) snprintf(s->address, sizeof(s->address), "%s", eq);
        else if (!strcmp(line, "uplink")) snprintf(s->uplink, sizeof(s->uplink), "%s", eq);
        else if (!strcmp(line, "forward_was")) s->forward_was = atoi(eq);
        else if (!strcmp(line, "dnsmasq_pid")) s->dnsmasq_pid = atoi(eq);
        else if (!strcmp(line, "dhcp_builtin")) s->dhcp_builtin = atoi(eq);
        else if (!strcmp(line, "conf_added")) s->conf_added = atoi(eq);
    }
    fclose(f);
    return 0;
}

static int read_forward(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_forward", "r");
    int v = -1;
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static int write_forward(int v)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_forward", "w");
    if (!f)
        return -errno;
    fprintf(f, "%d\n", v);
    return fclose(f) ? -errno : 0;
}

/* "A.B.C.D/N" -> network, first and last DHCP addresses (upper half of the subnet). */
static int parse_cidr(const char *s, char *net, char *lo, char *hi, int *bits)
{
    char a[64];
    snprintf(a, sizeof(a), "%s", s);
    char *slash = strchr(a, '/');
    if (!slash)
        return -EINVAL;
    *slash = 0;
    *bits = atoi(slash + 1);
    struct in_addr in;
    if (inet_pton(AF_INET, a, &in) != 1 || *bits < 8 || *bits > 30)
        return -EINVAL;
    uint32_t mask = ~0u << (32 - *bits), h = ntohl(in.s_addr), n = h & mask, size = ~mask + 1;
    struct in_addr x;
    x.s_addr = htonl(n);
    inet_ntop(AF_INET, &x, net, 16);
    x.s_addr = htonl(n + size / 2);
    inet_ntop(AF_INET, &x, lo, 16);
    x.s_addr = htonl(n + size - 2);
    inet_ntop(AF_INET, &x, hi, 16);
    return 0;
}

static int conf_allow(const char *br)
{
    struct bridge_acl acl = {0};
    struct error err = {0};
    if (!access(conf_path(), F_OK) && bridge_conf_check(conf_path(), br, &acl, &err) < 0) {
        fprintf(stderr, "quokka-net: %s\n", err.msg);
        return -EINVAL;
    }
    if (acl.allowed && !acl.denied)
        return 0;
    if (acl.denied) {
        fprintf(stderr, "quokka-net: warning: %s denies %s; VMs can't use it\n", conf_path(), br);
        return 0;
    }
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", conf_path());
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        mkdir(dir, 0755);
    }
    FILE *f = fopen(conf_path(), "a");
    if (!f)
        return -errno;
    fprintf(f, "allow %s\n", br);
    return fclose(f) ? -errno : 1;
}

static void conf_unallow(const char *br)
{
    FILE *f = fopen(conf_path(), "r");
    if (!f)
        return;
    char want[64], line[512], *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    snprintf(want, sizeof(want), "allow %s\n", br);
    bool removed = false;
    while (fgets(line, sizeof(line), f)) {
        if (!removed && !strcmp(line, want)) {
            removed = true;
            continue;
        }
        fputs(line, m);
    }
    fclose(f);
    fclose(m);
    if (removed && (f = fopen(conf_path(), "w"))) {
        fwrite(out, 1, len, f);
        fclose(f);
    }
    free(out);
}

static int start_dnsmasq(const struct state *s, const char *lo, const char *hi, int bits)
{
    char range[96], pidf[512], iface[48];
    (void)bits;
    snprintf(range, sizeof(range), "--dhcp-range=%s,%s,1h", lo, hi);
    snprintf(pidf, sizeof(pidf), "--pid-file=%s/%s.dnsmasq.pid", state_dir(), s->bridge);
    snprintf(iface, sizeof(iface), "--interface=%s", s->bridge);
    if (run("dnsmasq", "--conf-file=/dev/null", iface, "--bind-interfaces",
            "--except-interface=lo", range, pidf, "--leasefile-ro", (char *)NULL) < 0)
        return -EIO;
    char p[512];
    snprintf(p, sizeof(p), "%s/%s.dnsmasq.pid", state_dir(), s->bridge);
    FILE *f = fopen(p, "r");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return pid;
}

static int cmd_down(const char *br);

static bool on_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[512];
    for (const char *p = path ? path : "/usr/sbin:/usr/bin:/sbin:/bin"; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, prog);
        if (n && !access(buf, X_OK))
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

/* DHCP and DNS for the bridge: dnsmasq when present (or asked for),
 * else ours. The server's pid, or <= 0. */
static int start_dhcp(struct state *s, const char *addr, const char *lo, const char *hi,
                      int bits)
{
    const char *want = getenv("QUOKKA_NET_DHCP");
    bool ours = want ? !strcmp(want, "builtin") : !on_path("dnsmasq");
    if (!ours)
        return start_dnsmasq(s, lo, hi, bits);
    struct in_addr a, l, h;
    char ip[64];
    snprintf(ip, sizeof(ip), "%.*s", (int)strcspn(addr, "/"), addr);
    if (inet_pton(AF_INET, ip, &a) != 1 || inet_pton(AF_INET, lo, &l) != 1 ||
        inet_pton(AF_INET, hi, &h) != 1)
        return -EINVAL;
    struct serve_conf c = { .bridge = s->bridge, .addr = ntohl(a.s_addr),
                            .mask = ~0u << (32 - bits), .lo = ntohl(l.s_addr),
                            .hi = ntohl(h.s_addr), .upstream = serve_upstream() };
    s->dhcp_builtin = 1;
    return serve_start(&c);
}

static int cmd_up(const char *br, const char *addr, const char *uplink, bool dhcp)
{
    char net[16], lo[16], hi[16], table[40];
    int bits;
    if (!addr || parse_cidr(addr, net, lo, hi, &bits) < 0) {
        fprintf(stderr, "quokka-net: --address A.B.C.D/N is required (N from 8 to 30)\n");
        return 2;
    }
    struct state s = { .forward_was = -1 };
    if (state_load(br, &s) == 0) {
        fprintf(stderr, "quokka-net: %s is already up (quokka-net down %s first)\n", br, br);
        return 1;
    }
    memset(&s, 0, sizeof(s));
    s.forward_was = -1;
    snprintf(s.bridge, sizeof(s.bridge), "%s", br);
    snprintf(s.address, sizeof(s.address), "%s", addr);
    snprintf(s.uplink, sizeof(s.uplink), "%s", uplink ? uplink : "");
    if (run("ip", "link", "add", br, "type", "bridge", (char *)NULL) < 0) {
        fprintf(stderr, "quokka-net: could not create bridge %s\n", br);
        return 1;
    }
    if (state_save(&s) < 0) {
        fprintf(stderr, "quokka-net: cannot write state in %s\n", state_dir());
        run("ip", "link", "del", br, (char *)NULL);
        return 1;
    }
    int r = run("ip", "addr", "add", addr, "dev", br, (char *)NULL);
    if (!r)
        r = run("ip", "link", "set", br, "up", (char *)NULL);
    int fw = read_forward();
    if (!r && fw == 0) {
        s.forward_was = 0;
        r = write_forward(1);
    }
    snprintf(table, sizeof(table), "quokka_%s", br);
    if (!r && uplink) {
        char rule[160];
        snprintf(rule, sizeof(rule), "add rule ip %s post ip saddr %s/%d oifname \"%s\" masquerade",
                 table, net, bits, uplink);
        r = run("nft", "add", "table", "ip", table, (char *)NULL);
        char chain[160];
        snprintf(chain, sizeof(chain), "add chain ip %s post { type nat hook postrouting priority 100 ; }",
                 table);
        if (!r)
            r = run("nft", chain, (char *)NULL);
        if (!r)
            r = run("nft", rule, (char *)NULL);
    }
    if (!r && dhcp) {
        int pid = start_dhcp(&s, addr, lo, hi, bits);
        if (pid <= 0) {
            fprintf(stderr, "quokka-net: could not start a DHCP server on %s\n", br);
            r = -ENOENT;
        }
        s.dnsmasq_pid = pid > 0 ? pid : 0;
    }
    if (!r) {
        int c = conf_allow(br);
        r = c < 0 ? c : 0;
        s.conf_added = c == 1;
    }
    state_save(&s);
    if (r) {
        fprintf(stderr, "quokka-net: setting up %s failed; undoing\n", br);
        cmd_down(br);
        return 1;
    }
    printf("%s up: %s%s%s%s%s\n", br, addr, uplink ? ", NAT via " : "", uplink ? uplink : "",
           dhcp ? ", DHCP " : "", dhcp ? lo : "");
    return 0;
}

static int cmd_down(const char *br)
{
    struct state s;
    if (state_load(br, &s) < 0) {
        fprintf(stderr, "quokka-net: %s was not set up by quokka-net up\n", br);
        return 1;
    }
    if (s.dnsmasq_pid > 0)
        kill(s.dnsmasq_pid, SIGTERM);
    char table[40], p[512];
    snprintf(table, sizeof(table), "quokka_%s", br);
    if (s.uplink[0])
        run("nft", "delete", "table", "ip", table, (char *)NULL);
    if (s.forward_was == 0)
        write_forward(0);
    if (s.conf_added)
        conf_unallow(br);
    run("ip", "link", "del", br, (char *)NULL);
    snprintf(p, sizeof(p), "%s/%s.dnsmasq.pid", state_dir(), br);
    unlink(p);
    state_file(br, p, sizeof(p));
    unlink(p);
    printf("%s down\n", br);
    return 0;
}

static int cmd_status(void)
{
    DIR *d = opendir(state_dir());
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 7 || strcmp(e->d_name + l - 6, ".state"))
            continue;
        char br[64];
        snprintf(br, sizeof(br), "%.*s", (int)(l - 6), e->d_name);
        struct state s;
        if (state_load(br, &s) < 0)
            continue;
        bool alive = s.dnsmasq_pid > 0 && kill(s.dnsmasq_pid, 0) == 0;
        printf("%s: address %s, NAT %s, DHCP %s, forwarding %s\n", s.bridge, s.address,
               s.uplink[0] ? s.uplink : "off",
               !s.dnsmasq_pid ? "off" : s.dhcp_builtin ? (alive ? "built-in running" : "built-in gone")
                                               : (alive ? "dnsmasq running" : "dnsmasq gone"),
               read_forward() == 1 ? "on" : "off");
        n++;
    }
    if (d)
        closedir(d);
    if (!n)
        printf("no bridges set up by quokka-net\n");
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "Usage: quokka-net up BRIDGE --address A.B.C.D/N [--nat UPLINK] [--dhcp]\n"
                    "       quokka-net down BRIDGE\n       quokka-net status\n");
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "status"))
        return cmd_status();
    if (argc == 3 && !strcmp(argv[1], "down"))
        return cmd_down(argv[2]);
    if (argc < 3 || strcmp(argv[1], "up") || argv[2][0] == '-' || strlen(argv[2]) > 10) {
        usage();
        return 2;
    }
    const char *addr = NULL, *uplink = NULL;
    bool dhcp = false;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--address") && i + 1 < argc)
            addr = argv[++i];
        else if (!strcmp(argv[i], "--nat") && i + 1 < argc)
            uplink = argv[++i];
        else if (!strcmp(argv[i], "--dhcp"))
            dhcp = true;
        else {
            usage();
            return 2;
        }
    }
    return cmd_up(argv[2], addr, uplink, dhcp);
}
