/*
 * TSC-based delays, calibrated once against PIT channel 0 read back with
 * the counter-latch command (port 0x61 and so channel 2's gate are missing
 * on QEMU microvm). Both 8259s are masked first so IRQ0 cannot arrive
 * through ExtINT; the IOAPIC pins are masked from reset. If the PIT does
 * not count, fall back to CPUID leaf 0x40000010, then 0x16, then a 3 GHz
 * guess: the delays only need to be long enough and the timeouts are
 * generous.
 */
#include "guest.h"

#define PIT_HZ      1193182
#define CAL_MS      10

static uint64_t khz;
static const char *source = "none";

static uint16_t pit0_count(void)
{
	outb(0x43, 0x00);                       /* latch channel 0 */
	uint8_t lo = inb(0x40);
	return (uint16_t)(lo | inb(0x40) << 8);
}

static uint64_t calibrate_pit(void)
{
	outb(0x21, 0xff);                       /* mask both 8259s */
	outb(0xa1, 0xff);
	outb(0x43, 0x34);                       /* ch0, lo/hi, mode 2 (rate) */
	outb(0x40, 0xff);
	outb(0x40, 0xff);
	uint16_t prev = pit0_count();
	uint64_t t0 = rdtsc(), t1 = t0, ticks = 0;
	while (ticks < PIT_HZ * CAL_MS / 1000) {
		uint16_t now = pit0_count();
		ticks += (uint16_t)(prev - now);  /* counts down, wraps at 0 */
		prev = now;
		t1 = rdtsc();
		if (t1 - t0 > (1ull << 33))
			return 0;                       /* not counting */
	}
	outb(0x43, 0x30);                       /* ch0 mode 0: one more edge, then idle */
	outb(0x40, 0);
	outb(0x40, 0);
	return (t1 - t0) * PIT_HZ / ticks / 1000;
}

uint64_t tsc_khz(void)
{
	if (khz)
		return khz;
	uint32_t r[4];
	if ((khz = calibrate_pit())) {
		source = "pit";
		return khz;
	}
	cpuid(0x40000000, 0, r);
	if (r[0] >= 0x40000010) {
		cpuid(0x40000010, 0, r);
		if (r[0]) {
			source = "cpuid-0x40000010";
			return khz = r[0];
		}
	}
	cpuid(0, 0, r);
	if (r[0] >= 0x16) {
		cpuid(0x16, 0, r);
		if (r[0]) {
			source = "cpuid-0x16";
			return khz = (uint64_t)r[0] * 1000;
		}
	}
	source = "guess";
	return khz = 3000000;
}

const char *tsc_source(void)
{
	tsc_khz();
	return source;
}

void udelay(uint64_t us)
{
	if (!khz) {     /* the PIT calibration itself waits CAL_MS */
		uint64_t t0 = rdtsc();
		tsc_khz();
		uint64_t spent = (rdtsc() - t0) * 1000 / khz;
		if (spent >= us)
			return;
		us -= spent;
	}
	uint64_t end = rdtsc() + us * khz / 1000;
	while (rdtsc() < end)
		cpu_relax();
}

uint64_t tsc_deadline_ms(uint64_t ms)
{
	return rdtsc() + ms * tsc_khz();
}
