/* balloon TARGET (MiB unless suffixed, as QEMU's HMP reads it) and
 * info balloon, with QEMU's messages. */
#include "monitor/balloon-cmds.h"

#include <inttypes.h>
#include "hw/virtio/virtio-balloon.h"
#include "util/opts.h"

void cmd_balloon(struct monitor *mon, const struct mon_args *a)
{
    const char *s = mon_arg(a, "value")->str;
    uint64_t bytes;
    if (parse_size(s, 1 << 20, &bytes) < 0) {
        mon_printf(mon, "invalid size: '%s'\n", s);
        return;
    }
    struct error err = {0};
    if (virtio_balloon_set_target(bytes, &err) < 0)
        mon_printf(mon, "Error: %s\n", err.msg);
}

void cmd_info_balloon(struct monitor *mon, const struct mon_args *a)
{
    struct error err = {0};
    uint64_t bytes;
    if (virtio_balloon_actual(&bytes, &err) < 0)
        mon_printf(mon, "Error: %s\n", err.msg);
    else
        mon_printf(mon, "balloon: actual=%" PRIu64 "\n", bytes >> 20);
}
