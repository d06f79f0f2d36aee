/* ACPI fixed hardware, PIIX4-like: PM1a event and control blocks, the
 * 24-bit PM timer at 3.579545 MHz, a GPE0 block, the power button, S5
 * power-off through SLP_TYP/SLP_EN, and the reset control port 0xCF9 that
 * the FADT names as its reset register. The SCI is ISA IRQ9, level. */
#ifndef QUOKKA_HW_ACPI_PM_H
#define QUOKKA_HW_ACPI_PM_H

#include <stdint.h>
#include "hw/irq.h"

#define ACPI_PM_BASE 0x600        /* PM1a_EVT 0x600 (4), PM1a_CNT 0x604 (2), PM_TMR 0x608 (4) */
#define ACPI_PM1_EVT (ACPI_PM_BASE + 0)
#define ACPI_PM1_CNT (ACPI_PM_BASE + 4)
#define ACPI_PM_TMR (ACPI_PM_BASE + 8)
#define ACPI_GPE0_BASE 0x620      /* 4 bytes: status, enable */
#define ACPI_GPE0_LEN 4
#define ACPI_SCI_IRQ 9
#define ACPI_RESET_PORT 0xcf9
#define ACPI_RESET_VALUE 0x06
#define ACPI_PM_TIMER_HZ 3579545
#define ACPI_SLP_TYP_S5 0         /* what the DSDT's _S5 package says */

struct address_space;
struct acpi_pm;

struct acpi_pm_ops {
    void (*poweroff)(void *opaque);
    void (*reset)(void *opaque);
};

struct acpi_pm *acpi_pm_new(struct address_space *io, struct irq sci,
                            const struct acpi_pm_ops *ops, void *opaque);
void acpi_pm_free(struct acpi_pm *pm);
void acpi_pm_reset(struct acpi_pm *pm);
/* Press the power button (system_powerdown). */
void acpi_pm_power_button(struct acpi_pm *pm);
/* 24-bit PM timer value now. */
uint32_t acpi_pm_timer(void);

#endif
