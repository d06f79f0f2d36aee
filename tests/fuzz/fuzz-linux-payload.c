/* Fuzz the host-side kernel unpacking: any bytes as a compressed payload
 * (format by magic) and, unpacked or not, as a vmlinux ELF for the
 * checks that decide whether its segments may be loaded. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "machine/linux-boot.h"
#include "machine/linux-unpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct error err = {0};
    uint8_t *out = NULL;
    size_t n = 0;
    if (linux_unpack(data, size, &out, &n, &err) == 0) {
        err = (struct error){0};
        linux_elf_check(out, n, &err);
        free(out);
    }
    err = (struct error){0};
    linux_elf_check(data, size, &err);
    return 0;
}
