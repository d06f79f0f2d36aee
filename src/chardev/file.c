/* file backend: output to a file (truncated unless append=on), optional
 * input from another file (path= for output, input-path= for input). */
#include "chardev/chardev_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct file_chr {
    struct chardev chr;
    int out_fd, in_fd;
};

static int file_write(struct chardev *chr, const uint8_t *buf, int len)
{
    return chardev_write_fd(((struct file_chr *)chr)->out_fd, buf, len);
}

static void file_free(struct chardev *chr)
{
    struct file_chr *f = (struct file_chr *)chr;
    if (f->out_fd >= 0)
        close(f->out_fd);
    if (f->in_fd >= 0)
        close(f->in_fd);
    free(f);
}

static const struct chardev_ops file_ops = { .write = file_write, .free = file_free };

struct chardev *chardev_file_open(struct mainloop *ml, struct opts *o, struct error *err)
{
    const char *path = opts_get(o, "path");
    const char *in = opts_get(o, "input-path");
    bool append;
    if (opts_get_bool(o, "append", false, &append, err) < 0)
        return NULL;
    if (!path || !*path)
        return error_set(err, -EINVAL, "chardev: file: no filename given"), NULL;
    struct file_chr *f = calloc(1, sizeof(*f));
    if (!f)
        return error_set(err, -ENOMEM, "out of memory"), NULL;
    f->in_fd = -1;
    f->out_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0666);
    if (f->out_fd < 0) {
        error_set_errno(err, -errno, "Could not open '%s'", path);
        free(f);
        return NULL;
    }
    char name[1024];
    snprintf(name, sizeof(name), "file:%s", path);
    chardev_init(&f->chr, &file_ops, ml, name);
    if (in) {
        f->in_fd = open(in, O_RDONLY | O_CLOEXEC);
        if (f->in_fd < 0) {
            error_set_errno(err, -errno, "Could not open '%s'", in);
            file_free(&f->chr);
            return NULL;
        }
        chardev_watch_input(&f->chr, f->in_fd, NULL);
    }
    return &f->chr;
}
