/* MC146818 real-time clock and CMOS NVRAM (ports 0x70/0x71, ISA IRQ8):
 * the host's UTC time in BCD or binary, update-in-progress, periodic,
 * alarm and update-ended interrupts, 128 bytes of NVRAM. */
#ifndef QUOKKA_HW_RTC_H
#define QUOKKA_HW_RTC_H

#include <stdint.h>
#include "hw/irq.h"

struct address_space;
struct mainloop;
struct rtc;

struct rtc *rtc_new(struct address_space *io, struct mainloop *ml, struct irq irq8);
void rtc_free(struct rtc *r);
void rtc_reset(struct rtc *r);
/* NVRAM bytes the firmware would fill (memory size, CPU count, ...). */
void rtc_set_cmos(struct rtc *r, int index, uint8_t val);
uint8_t rtc_get_cmos(struct rtc *r, int index);
/* Fill the standard memory-size bytes: below_4g and above_4g in bytes. */
void rtc_set_mem_size(struct rtc *r, uint64_t below_4g, uint64_t above_4g);

#endif
