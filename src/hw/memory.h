/* Guest physical address spaces: memory (RAM + MMIO) and I/O ports.
 *
 * One dispatch serves every accelerator: KVM exits and the emulated CPU's
 * slow path both land in as_read/as_write; devices do DMA through
 * as_rw/as_ram_ptr and never see a host address beyond RAM.
 * Handlers run with the device lock held (util/mainloop.h). */
#ifndef QUOKKA_HW_MEMORY_H
#define QUOKKA_HW_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mainloop;

/* A device's register window. offset is relative to the region base;
 * size is 1, 2, 4 or 8. Reads of unassigned space return all ones. */
struct mem_ops {
    uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
    void (*write)(void *opaque, uint64_t offset, uint64_t value, unsigned size);
};

struct mem_region {
    uint64_t base, size;
    void *ram;                    /* host memory for RAM regions, else NULL */
    const struct mem_ops *ops;    /* for I/O regions */
    void *opaque;
    const char *name;
    int priority;                 /* higher wins where regions overlap (e.g. APIC over RAM) */
};

struct address_space;

struct address_space *as_new(const char *name, struct mainloop *ml);
void as_free(struct address_space *as);
int as_add_ram(struct address_space *as, uint64_t base, uint64_t size, void *host, const char *name);
int as_add_io(struct address_space *as, uint64_t base, uint64_t size, const struct mem_ops *ops,
              void *opaque, const char *name, int priority);
/* Remove the region registered at base with this opaque (PCI BAR moves). */
int as_del(struct address_space *as, uint64_t base, void *opaque);
/* Region covering addr (highest priority), or NULL. Safe from vCPU threads
 * without the device lock (the region list is replaced, not edited). */
const struct mem_region *as_lookup(struct address_space *as, uint64_t addr);
/* Snapshot of all regions, sorted by base, for `info mtree`; returns count. */
int as_regions(struct address_space *as, struct mem_region *out, int max);

/* Accesses that may hit a device: take the device lock around the handler. */
uint64_t as_read(struct address_space *as, uint64_t addr, unsigned size);
void as_write(struct address_space *as, uint64_t addr, uint64_t value, unsigned size);

/* Host pointer for [gpa, gpa+len) if it is all inside one RAM region, else NULL. */
void *as_ram_ptr(struct address_space *as, uint64_t gpa, uint64_t len);
/* The same through a caller's memo of the last RAM span it hit (one
 * thread's: a vCPU walking page tables asks for the same RAM again and
 * again). The memo holds while the region list is the one it came from. */
struct as_memo {
    const void *map;
    uint64_t start, end;
    uint8_t *host;
};
void *as_ram_ptr_memo(struct address_space *as, struct as_memo *memo, uint64_t gpa, uint64_t len);
/* Device DMA: copies through RAM (and MMIO, a byte at a time). Returns 0 or -EFAULT. */
int as_rw(struct address_space *as, uint64_t gpa, void *buf, uint64_t len, bool is_write);

/* Called after any write to RAM not done by the emulated CPU itself (DMA,
 * loaders), so the CPU can drop decoded code for those bytes. */
typedef void as_ram_write_hook(void *opaque, uint64_t gpa, uint64_t len);
void as_set_ram_write_hook(struct address_space *as, as_ram_write_hook *hook, void *opaque);
/* Tell the hook that [gpa, gpa+len) of RAM changed behind its back (a
 * device or loader wrote through as_ram_ptr). as_rw/as_write call it. */
void as_ram_written(struct address_space *as, uint64_t gpa, uint64_t len);

/* An accelerator that maps RAM itself (KVM memory slots) follows RAM
 * regions: the listener hears of every RAM region already there at once,
 * then of each added (added=true) or removed one, e.g. a RAM-backed BAR
 * mapped or unmapped after the VM was made. A failed add makes as_add_ram
 * fail. Called with the space's region lock held: it must not call back
 * into the space. Returns 0 or -errno. */
typedef int as_ram_listener(void *opaque, const struct mem_region *r, bool added);
int as_set_ram_listener(struct address_space *as, as_ram_listener *fn, void *opaque);

/* Doorbells: a guest write of len bytes at addr signals eventfd fd
 * without leaving the guest (KVM's ioeventfd), when the accelerator
 * offers it; assign=false removes it. -ENOTSUP where not offered (emu):
 * the region's write handler then runs as usual. */
typedef int as_ioeventfd_fn(void *opaque, struct address_space *as, uint64_t addr, unsigned len,
                            int fd, bool assign);
void as_set_ioeventfd_handler(struct address_space *as, as_ioeventfd_fn *fn, void *opaque);
int as_ioeventfd(struct address_space *as, uint64_t addr, unsigned len, int fd, bool assign);

#endif
