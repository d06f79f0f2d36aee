/* snapshot: list, create, apply and delete internal snapshots. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "tools/img/img.h"

enum { SN_LIST = 1, SN_CREATE, SN_APPLY, SN_DELETE };

static void list_snapshots(struct bdev *bs)
{
    struct bdev_snapshot *sn = NULL;
    int n = bs->drv->snapshot_list ? bs->drv->snapshot_list(bs, &sn) : 0;
    if (n > 0) {
        printf("Snapshot list:\n");
        img_snapshot_dump(stdout, NULL);
        printf("\n");
        for (int i = 0; i < n; i++) {
            img_snapshot_dump(stdout, &sn[i]);
            printf("\n");
        }
    }
    free(sn);
}

int img_snapshot(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' }, { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' }, { NULL, 0, NULL, 0 }
    };
    int action = 0, flags = BDEV_O_RDWR, c;
    const char *name = NULL;
    bool quiet = false, force_share = false;
    while ((c = getopt_long(argc, argv, ":la:c:d:hqU", longopts, NULL)) != -1) {
        int a = 0;
        switch (c) {
        case 'h': img_help(); return 0;
        case 'l': a = SN_LIST; break;
        case 'a': a = SN_APPLY; name = optarg; break;
        case 'c': a = SN_CREATE; name = optarg; break;
        case 'd': a = SN_DELETE; name = optarg; break;
        case 'q': quiet = true; break;
        case 'U': force_share = true; break;
        case OPT_OBJECT: case OPT_IMAGE_OPTS: return img_unsupported_option(c);
        default: return img_bad_option(c, argv[optind - 1]);
        }
        if (a) {
            if (action)
                return img_usage_error("Cannot mix '-l', '-a', '-c', '-d'");
            action = a;
        }
    }
    if (optind != argc - 1)
        return img_usage_error("Expecting one image file name");
    if (!action)
        action = SN_LIST;
    if (action == SN_LIST)
        flags = BDEV_O_NO_BACKING | (force_share ? BDEV_O_FORCE_SHARE : 0);
    else if (force_share) {
        error_report("option -U is only allowed when listing snapshots");
        return 1;
    }
    struct bdev *bs = img_open(argv[optind], NULL, flags | BDEV_O_NO_BACKING, quiet);
    if (!bs)
        return 1;
    struct error err = { 0 };
    int ret = 0;
    const char *what = NULL;
    switch (action) {
    case SN_LIST:
        list_snapshots(bs);
        break;
    case SN_CREATE:
        what = "create";
        ret = bs->drv->snapshot_create ? bs->drv->snapshot_create(bs, name, &err) : -ENOTSUP;
        break;
    case SN_APPLY:
        what = "apply";
        ret = bs->drv->snapshot_goto ? bs->drv->snapshot_goto(bs, name, &err) : -ENOTSUP;
        break;
    case SN_DELETE:
        what = "delete";
        ret = bs->drv->snapshot_delete ? bs->drv->snapshot_delete(bs, name, &err) : -ENOTSUP;
        break;
    }
    if (ret < 0) {
        if (!err.msg[0])    /* qemu-img's wording for a bare errno */
            snprintf(err.msg, sizeof(err.msg), "%d (%s)", ret, strerror(-ret));
        error_report("Could not %s snapshot '%s': %s", what, name, err.msg);
    }
    bdev_close(bs);
    return ret < 0 ? 1 : 0;
}
