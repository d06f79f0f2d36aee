/* MSI-X: the capability, a vector table and pending-bit array in one
 * 4 KiB memory BAR, and delivery through the board's irqchip. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "hw/irq.h"
#include "hw/pci/pci.h"

#define MSIX_PBA_OFF 0x800
#define MSIX_BAR_SIZE 0x1000
#define MSIX_MAX 128                     /* table and PBA both fit the BAR */

enum { MSIX_CTRL_ENABLE = 1 << 15, MSIX_CTRL_MASKALL = 1 << 14, MSIX_ENTRY_MASKED = 1 };

struct msix {
    struct pci_dev *d;
    struct irqchip *chip;
    int nvec;
    unsigned cap;                        /* config offset of the capability */
    uint8_t table[MSIX_MAX * 16];
    uint64_t pba[MSIX_MAX / 64];
};




static uint16_t msix_ctrl(const struct msix *m)
{
    uint16_t v;
    memcpy(&v, m->d->cfg + m->cap + 2, 2);
    return v;
}

static bool entry_masked(const struct msix *m, unsigned v)
{
    uint32_t ctl;
    memcpy(&ctl, m->table + v * 16 + 12, 4);
    return (ctl & MSIX_ENTRY_MASKED) || (msix_ctrl(m) & MSIX_CTRL_MASKALL);
}

static void msix_send(struct msix *m, unsigned v)
{
    uint64_t addr;
    uint32_t data;
    memcpy(&addr, m->table + v * 16, 8);
    memcpy(&data, m->table + v * 16 + 8, 4);
    if (m->chip && m->chip->send_msi)
        m->chip->send_msi(m->chip, addr, data);
}

/* A vector became unmasked: deliver what it held back. */
static void msix_flush_pending(struct msix *m)
{
    if (!(msix_ctrl(m) & MSIX_CTRL_ENABLE))
        return;
    for (int v = 0; v < m->nvec; v++) {
        if ((m->pba[v / 64] >> (v % 64) & 1) && !entry_masked(m, v)) {
            m->pba[v / 64] &= ~(1ULL << (v % 64));
            msix_send(m, v);
        }
    }
}

bool msix_enabled(const struct pci_dev *d)
{
    return d->msix && (msix_ctrl(d->msix) & MSIX_CTRL_ENABLE);
}

int msix_vectors(const struct pci_dev *d) { return d->msix ? d->msix->nvec : 0; }

bool msix_message(const struct pci_dev *d, unsigned v, uint64_t *addr, uint32_t *data)
{
    const struct msix *m = d->msix;
    if (!msix_enabled(d) || v >= (unsigned)m->nvec || entry_masked(m, v))
        return false;
    memcpy(addr, m->table + v * 16, 8);
    memcpy(data, m->table + v * 16 + 8, 4);
    return true;
}

bool msix_notify(struct pci_dev *d, unsigned v)
{
    struct msix *m = d->msix;
    if (!msix_enabled(d) || v >= (unsigned)m->nvec)
        return false;
    if (entry_masked(m, v))
        m->pba[v / 64] |= 1ULL << (v % 64);
    else
        msix_send(m, v);
    return true;
}

static uint64_t msix_read(void *opaque, uint64_t off, unsigned size)
{
    struct msix *m = opaque;
    uint64_t v = 0;
    if (off < (uint64_t)m->nvec * 16 && off + size <= (uint64_t)m->nvec * 16)
        memcpy(&v, m->table + off, size);
    else if (off >= MSIX_PBA_OFF && off + size <= MSIX_PBA_OFF + sizeof(m->pba))
        memcpy(&v, (uint8_t *)m->pba + (off - MSIX_PBA_OFF), size);
    return v;
}

static void msix_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct msix *m = opaque;
    if (off >= (uint64_t)m->nvec * 16 || off + size > (uint64_t)m->nvec * 16)
        return;                          /* the PBA is read-only */
    memcpy(m->table + off, &val, size);
    msix_flush_pending(m);
}

static const struct mem_ops msix_ops = { msix_read, msix_write };

static void msix_reset_state(struct msix *m)
{
    memset(m->table, 0, sizeof(m->table));
    for (int v = 0; v < m->nvec; v++)
        m->table[v * 16 + 12] = MSIX_ENTRY_MASKED;
    memset(m->pba, 0, sizeof(m->pba));
    m->d->cfg[m->cap + 3] &= ~((MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL) >> 8);
}

void msix_reset(struct pci_dev *d)
{
    if (d->msix)
        msix_reset_state(d->msix);
}

/* The control word changed (enable, function mask): pending vectors may go. */
void msix_config_written(struct pci_dev *d, unsigned off, unsigned size)
{
    struct msix *m = d->msix;
    if (m && off <= m->cap + 3 && off + size > m->cap + 2)
        msix_flush_pending(m);
}

int msix_init(struct pci_dev *d, int nvec, int bar_index)
{
    if (nvec < 1 || nvec > MSIX_MAX || d->msix)
        return -EINVAL;
    struct msix *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->d = d;
    m->nvec = nvec;
    m->chip = pci_bus_irqchip(d->bus);
    int cap = pci_dev_add_cap(d, PCI_CAP_MSIX, 12);
    int r = cap < 0 ? cap : pci_dev_set_bar(d, bar_index, MSIX_BAR_SIZE, PCI_BAR_MEM32, &msix_ops, m);
    if (r < 0) {
        free(m);
        return r;
    }
    m->cap = cap;
    uint16_t ctrl = nvec - 1;
    uint32_t table = bar_index, pba = MSIX_PBA_OFF | bar_index;
    memcpy(d->cfg + cap + 2, &ctrl, 2);
    memcpy(d->cfg + cap + 4, &table, 4);
    memcpy(d->cfg + cap + 8, &pba, 4);
    d->wmask[cap + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL) >> 8;
    d->msix = m;
    msix_reset_state(m);
    return 0;
}

void msix_free(struct msix *m) { free(m); }
