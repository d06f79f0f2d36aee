/* The monitor's command table and handlers: run control and inspection
 * through the machine's functions (machine/machine.h). */
#include "monitor/monitor_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chardev/chardev.h"
#include "hw/memory.h"
#include "machine/machine.h"
#include "monitor/balloon-cmds.h"
#include "monitor/net-cmds.h"
#include "util/version.h"

static void cmd_help(struct monitor *mon, const struct mon_args *a)
{
    const struct mon_arg *name = mon_arg(a, "name");
    if (!name) {
        mon_help(mon, "");
        return;
    }
    char prefix[300];
    snprintf(prefix, sizeof(prefix), "%s", name->str);
    mon_help(mon, !strcmp(prefix, "info") ? "info " : prefix);
}

static void cmd_info_status(struct monitor *mon, const struct mon_args *a)
{
    static const char *const names[] = {
        [RUN_STATE_RUNNING] = "running",
        [RUN_STATE_PAUSED] = "paused",
        [RUN_STATE_SHUTDOWN] = "paused (shutdown)",
        [RUN_STATE_GUEST_PANICKED] = "paused (guest-panicked)",
    };
    enum run_state st = machine_run_state(mon->m);
    if (st == RUN_STATE_PAUSED && mon->prelaunch)
        mon_printf(mon, "VM status: paused (prelaunch)\n");
    else
        mon_printf(mon, "VM status: %s\n", names[st]);
}

static void cmd_info_registers(struct monitor *mon, const struct mon_args *a)
{
    const struct mon_arg *all = mon_arg(a, "all");
    if (all && strcmp(all->str, "-a")) {
        mon_printf(mon, "info registers: unknown option '%s'\n", all->str);
        return;
    }
    static char buf[16384];
    int n = machine_cpu_count(mon->m);
    for (int i = 0; i < n; i++) {
        if (!all && i != mon->cpu)
            continue;
        if (all)
            mon_printf(mon, "\nCPU#%d\n", i);
        if (machine_format_cpu_regs(mon->m, i, buf, sizeof(buf)) < 0) {
            mon_printf(mon, "CPU#%d: registers unavailable\n", i);
            continue;
        }
        chardev_write(mon->chr, (const uint8_t *)buf, strlen(buf));
    }
}

static void cmd_info_cpus(struct monitor *mon, const struct mon_args *a)
{
    static char buf[16384];
    if (machine_format_cpus(mon->m, buf, sizeof(buf)) >= 0)
        chardev_write(mon->chr, (const uint8_t *)buf, strlen(buf));
}

static void print_space(struct monitor *mon, struct address_space *as, const char *name)
{
    struct mem_region r[256];
    int n = as ? as_regions(as, r, 256) : 0;
    mon_printf(mon, "address-space: %s\n", name);
    for (int i = 0; i < n && i < 256; i++)
        mon_printf(mon, "  %016" PRIx64 "-%016" PRIx64 " (prio %d, %s): %s\n", r[i].base,
                   r[i].base + r[i].size - 1, r[i].priority, r[i].ram ? "ram" : "i/o",
                   r[i].name ? r[i].name : "");
    mon_printf(mon, "\n");
}

static void cmd_info_mtree(struct monitor *mon, const struct mon_args *a)
{
    print_space(mon, machine_memory(mon->m), "memory");
    print_space(mon, machine_io(mon->m), "I/O");
}

static void cmd_info_pci(struct monitor *mon, const struct mon_args *a)
{
    static char buf[32768];
    if (machine_format_pci(mon->m, buf, sizeof(buf)) > 0)
        mon_printf(mon, "%s", buf);
}

static void print_chardev(void *opaque, const char *id, const char *filename)
{
    mon_printf(opaque, "%s: filename=%s\n", id, filename);
}

static void cmd_info_chardev(struct monitor *mon, const struct mon_args *a)
{
    chardev_foreach(print_chardev, mon);
}

static void cmd_info_version(struct monitor *mon, const struct mon_args *a)
{
    mon_printf(mon, "%s\n", QUOKKA_VERSION);
}

static void cmd_stop(struct monitor *mon, const struct mon_args *a)
{
    mon->prelaunch = false;
    machine_pause(mon->m);
}

static void cmd_cont(struct monitor *mon, const struct mon_args *a)
{
    mon->prelaunch = false;
    machine_resume(mon->m);
}

static void cmd_system_reset(struct monitor *mon, const struct mon_args *a)
{
    machine_request_reset(mon->m);
}

static void cmd_system_powerdown(struct monitor *mon, const struct mon_args *a)
{
    machine_request_powerdown(mon->m);
}

static void cmd_quit(struct monitor *mon, const struct mon_args *a)
{
    machine_request_quit(mon->m);
}

static void cmd_cpu(struct monitor *mon, const struct mon_args *a)
{
    const struct mon_arg *idx = mon_arg(a, "index");
    if (idx->num >= (uint64_t)machine_cpu_count(mon->m)) {
        mon_printf(mon, "invalid CPU index %" PRIu64 "\n", idx->num);
        return;
    }
    mon->cpu = idx->num;
}

static uint64_t load_le(const uint8_t *p, int size)
{
    uint64_t v = 0;
    for (int i = size - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void print_value(struct monitor *mon, char format, int size, uint64_t v)
{
    int bits = size * 8;
    switch (format) {
    case 'o':
        mon_printf(mon, " %#*" PRIo64, (bits + 2) / 3, v);
        break;
    case 'u':
        mon_printf(mon, " %*" PRIu64, (bits * 10 + 32) / 33, v);
        break;
    case 'd': {
        int64_t s = bits == 64 ? (int64_t)v : (int64_t)(v << (64 - bits)) >> (64 - bits);
        mon_printf(mon, " %*" PRId64, (bits * 10 + 32) / 33, s);
        break;
    }
    case 'c':
        if (v >= 32 && v < 127 && v != '\\' && v != '\'')
            mon_printf(mon, " '%c'", (int)v);
        else
            mon_printf(mon, " '\\x%02x'", (unsigned)v);
        break;
    default:
        mon_printf(mon, " 0x%0*" PRIx64, bits / 4, v);
        break;
    }
}

/* x and xp: count units of memory, 16 bytes a line (8 for bytes), as QEMU. */
static void memory_dump(struct monitor *mon, const struct mon_args *a, bool phys)
{
    const struct mon_arg *f = mon_arg(a, "fmt");
    uint64_t addr = mon_arg(a, "addr")->num;
    int size = f->unit, line = size == 1 ? 8 : 16;
    uint64_t len = (uint64_t)f->count * size;
    mon->last_format = f->format;
    mon->last_unit = f->unit;
    while (len > 0) {
        uint8_t buf[16];
        int l = len < (uint64_t)line ? (int)len : line;
        int r = phys ? machine_read_phys(mon->m, addr, buf, l)
                     : machine_read_virt(mon->m, mon->cpu, addr, buf, l);
        if (r < 0) {
            mon_printf(mon, "Cannot access memory at %s address 0x%" PRIx64 "\n",
                       phys ? "physical" : "virtual", addr);
            return;
        }
        mon_printf(mon, "%016" PRIx64 ":", addr);
        for (int i = 0; i < l; i += size)
            print_value(mon, f->format, size, load_le(buf + i, size));
        mon_printf(mon, "\n");
        addr += l;
        len -= l;
    }
}

static void cmd_x(struct monitor *mon, const struct mon_args *a) { memory_dump(mon, a, false); }
static void cmd_xp(struct monitor *mon, const struct mon_args *a) { memory_dump(mon, a, true); }

const struct mon_cmd mon_cmds[] = {
    { "help|?", "name:S?", "[cmd]", "show the help", cmd_help },
    { "stop", "", "", "stop emulation", cmd_stop },
    { "cont|c", "", "", "resume emulation", cmd_cont },
    { "system_reset", "", "", "reset the system", cmd_system_reset },
    { "system_powerdown", "", "", "send system power down event", cmd_system_powerdown },
    { "quit|q", "", "", "quit the emulator", cmd_quit },
    { "cpu", "index:l", "index", "set the default CPU", cmd_cpu },
    { "x", "fmt:/,addr:l", "/fmt addr", "virtual memory dump starting at 'addr'", cmd_x },
    { "xp", "fmt:/,addr:l", "/fmt addr", "physical memory dump starting at 'addr'", cmd_xp },
    { "info status", "", "", "show the current VM status (running|paused)", cmd_info_status },
    { "info registers", "all:s?", "[-a]", "show the cpu registers (-a: all CPUs)",
      cmd_info_registers },
    { "info cpus", "", "", "show infos for each CPU", cmd_info_cpus },
    { "info mtree", "", "", "show memory tree", cmd_info_mtree },
    { "info pci", "", "", "show PCI info", cmd_info_pci },
    { "info chardev", "", "", "show the character devices", cmd_info_chardev },
    { "info version", "", "", "show the version of Quokka", cmd_info_version },
    { "hostfwd_add", "a:s,b:s?", "[netdev_id] [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport",
      "redirect TCP or UDP connections from host to guest (user networking)", cmd_hostfwd_add },
    { "hostfwd_remove", "a:s,b:s?", "[netdev_id] [tcp|udp]:[hostaddr]:hostport",
      "remove host-to-guest TCP or UDP redirection", cmd_hostfwd_remove },
    { "set_link", "name:s,state:s", "name on|off", "change the link status of a network adapter",
      cmd_set_link },
    { "info network", "", "", "show the network state", cmd_info_network },
    { "info usernet", "", "", "show user network stack connection states", cmd_info_usernet },
    { "balloon", "value:s", "target", "request VM to change its memory allocation (in MB)",
      cmd_balloon },
    { "info balloon", "", "", "show balloon information", cmd_info_balloon },
    { NULL },
};
