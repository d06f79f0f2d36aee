/* The -p progress line: "    (12.34/100%)\r", redrawn when the figure
 * moves by a percent or more (as qemu-img), then a final newline. */
#include <stdio.h>
#include "tools/img/img.h"

static struct {
    bool on;
    double last;
} progress;

void progress_init(bool enabled)
{
    progress.on = enabled;
    progress.last = -1;
    if (enabled) {
        printf("    (%3.2f/100%%)\r", 0.0);
        fflush(stdout);
    }
}

void progress_update(double done, double total)
{
    if (!progress.on)
        return;
    double pct = total > 0 ? done * 100.0 / total : 100.0;
    if (pct > 100)
        pct = 100;
    if (pct - progress.last < 1.0 && pct < 100)
        return;
    progress.last = pct;
    printf("    (%3.2f/100%%)\r", pct);
    fflush(stdout);
}

void progress_end(void)
{
    if (!progress.on)
        return;
    printf("    (%3.2f/100%%)\r\n", 100.0);
    fflush(stdout);
    progress.on = false;
}
