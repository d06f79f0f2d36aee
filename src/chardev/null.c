/* null backend: output is discarded, input never arrives. */
#include "chardev/chardev_int.h"

#include <errno.h>
#include <stdlib.h>

static int null_write(struct chardev *chr, const uint8_t *buf, int len) { return len; }
static void null_free(struct chardev *chr) { free(chr); }

static const struct chardev_ops null_ops = { .write = null_write, .free = null_free };

struct chardev *chardev_null_open(struct mainloop *ml, struct opts *o, struct error *err)
{
    struct chardev *chr = calloc(1, sizeof(*chr));
    if (!chr)
        return error_set(err, -ENOMEM, "out of memory"), NULL;
    chardev_init(chr, &null_ops, ml, "null");
    return chr;
}
