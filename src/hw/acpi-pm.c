/* ACPI PM1 fixed registers, PM timer, GPE0 and reset control. */
#include "hw/acpi-pm.h"

#include <stdbool.h>
#include <stdlib.h>
#include "hw/memory.h"
#include "util/mainloop.h"

enum { STS_TMR = 1 << 0, STS_PWRBTN = 1 << 8, STS_WAK = 1 << 15,
       CNT_SCI_EN = 1 << 0, CNT_SLP_EN = 1 << 13 };

struct acpi_pm {
    uint16_t sts, en, cnt;
    uint16_t gpe_sts, gpe_en;
    struct irq sci;
    int sci_level;
    const struct acpi_pm_ops *ops;
    void *opaque;
};

uint32_t acpi_pm_timer(void)
{
    return (uint32_t)((__int128)clock_ns() * ACPI_PM_TIMER_HZ / 1000000000LL) & 0xffffff;
}

static void acpi_pm_update_sci(struct acpi_pm *pm)
{
    int level = ((pm->sts & pm->en & STS_PWRBTN) || (pm->gpe_sts & pm->gpe_en)) &&
                (pm->cnt & CNT_SCI_EN);
    if (level != pm->sci_level) {
        pm->sci_level = level;
        irq_set(&pm->sci, level);
    }
}

static uint64_t pm_read(void *opaque, uint64_t off, unsigned size)
{
    struct acpi_pm *pm = opaque;
    uint64_t v;
    switch (off & ~1ULL) {
    case 0: v = pm->sts | ((uint32_t)pm->en << 16); break;
    case 2: v = pm->en; break;
    case 4: v = pm->cnt & ~CNT_SLP_EN; break;
    case 8: v = acpi_pm_timer(); break;
    default: return ~0ULL;
    }
    return off & 1 ? v >> 8 : v;
}

static void pm_write_cnt(struct acpi_pm *pm, uint16_t v)
{
    pm->cnt = (v & ~CNT_SLP_EN) | CNT_SCI_EN;    /* no SMI: ACPI mode always on */
    if ((v & CNT_SLP_EN) && ((v >> 10) & 7) == ACPI_SLP_TYP_S5 && pm->ops && pm->ops->poweroff)
        pm->ops->poweroff(pm->opaque);
}

static void pm_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct acpi_pm *pm = opaque;
    if (off == 0) {
        pm->sts &= ~(uint16_t)val;               /* write one to clear */
        if (size == 4)
            pm->en = val >> 16;
    } else if (off == 1) {
        pm->sts &= ~(uint16_t)(val << 8);
    } else if (off == 2) {
        pm->en = size == 1 ? (pm->en & 0xff00) | (val & 0xff) : (uint16_t)val;
    } else if (off == 3) {
        pm->en = (pm->en & 0xff) | (uint16_t)(val << 8);
    } else if (off == 4) {
        pm_write_cnt(pm, size == 1 ? (pm->cnt & 0xff00) | (val & 0xff) : (uint16_t)val);
    } else if (off == 5) {
        pm_write_cnt(pm, (pm->cnt & 0xff) | (uint16_t)(val << 8));
    }
    acpi_pm_update_sci(pm);
}

static uint64_t gpe_read(void *opaque, uint64_t off, unsigned size)
{
    struct acpi_pm *pm = opaque;
    uint32_t all = pm->gpe_sts | ((uint32_t)pm->gpe_en << 16);
    return all >> (off * 8);
}

static void gpe_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct acpi_pm *pm = opaque;
    for (unsigned i = 0; i < size && off + i < 4; i++) {
        uint8_t b = val >> (8 * i);
        unsigned o = off + i;
        if (o < 2)
            pm->gpe_sts &= ~(uint16_t)(b << (8 * o));
        else
            pm->gpe_en = (pm->gpe_en & ~(0xff << (8 * (o - 2)))) | (b << (8 * (o - 2)));
    }
    acpi_pm_update_sci(pm);
}

static uint64_t rst_read(void *opaque, uint64_t off, unsigned size) { return 0; }

static void rst_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct acpi_pm *pm = opaque;
    if ((val & 4) && pm->ops && pm->ops->reset)
        pm->ops->reset(pm->opaque);
}

static const struct mem_ops pm_ops = { pm_read, pm_write };
static const struct mem_ops gpe_ops = { gpe_read, gpe_write };
static const struct mem_ops rst_ops = { rst_read, rst_write };

void acpi_pm_power_button(struct acpi_pm *pm)
{
    pm->sts |= STS_PWRBTN;
    acpi_pm_update_sci(pm);
}

void acpi_pm_reset(struct acpi_pm *pm)
{
    pm->sts = pm->en = 0;
    pm->cnt = CNT_SCI_EN;
    pm->gpe_sts = pm->gpe_en = 0;
    acpi_pm_update_sci(pm);
}

struct acpi_pm *acpi_pm_new(struct address_space *io, struct irq sci,
                            const struct acpi_pm_ops *ops, void *opaque)
{
    struct acpi_pm *pm = calloc(1, sizeof(*pm));
    if (!pm)
        return NULL;
    pm->sci = sci;
    pm->ops = ops;
    pm->opaque = opaque;
    acpi_pm_reset(pm);
    if (io) {
        as_add_io(io, ACPI_PM_BASE, 12, &pm_ops, pm, "acpi-pm", 0);
        as_add_io(io, ACPI_GPE0_BASE, ACPI_GPE0_LEN, &gpe_ops, pm, "acpi-gpe0", 0);
        as_add_io(io, ACPI_RESET_PORT, 1, &rst_ops, pm, "reset-control", 1);
    }
    return pm;
}

void acpi_pm_free(struct acpi_pm *pm) { free(pm); }
